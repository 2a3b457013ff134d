//! From pixels to a parsed MRZ: try the MRZ lines located on the bottom part of the page, then that whole part,
//! then the whole page, in the four rotations, with the MRZ language first and `eng` as the fallback; keep the
//! reading whose check digits hold best. The first try settles almost every document; the others are there for
//! pages the locator misreads.

use chrono::NaiveDate;
use image::RgbImage;

use super::{
    Region, band, crop,
    engine::{Engines, OcrEngine, OcrError},
    find, normalise, rotated,
};
use crate::mrz::{self, Mrz};

/// How the MRZ was read.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The parsed MRZ (after confirmed repairs).
    pub mrz: Mrz,
    /// Tesseract's confidence in the weakest MRZ line, 0–1.
    pub confidence: f64,
    /// The language data that read it.
    pub language: String,
    /// Clockwise quarter turns applied to the page first.
    pub quarter_turns: u8,
}

fn score(m: &Mrz) -> (usize, i64) {
    (
        m.checks.iter().filter(|c| c.holds).count(),
        -(m.corrections.len() as i64),
    )
}

/// What one OCR pass found.
enum Found {
    /// No lines shaped like an MRZ.
    Nothing,
    /// MRZ-shaped lines that do not parse: the page is the right way up, the reading is bad.
    Lines,
    /// A parsed MRZ.
    Read(Box<Reading>),
}

fn attempt(
    engine: &mut OcrEngine,
    img: &image::GrayImage,
    turns: u8,
    today: NaiveDate,
) -> Result<Found, OcrError> {
    let read = engine.read(img)?;
    let text: String = read.iter().map(|(l, _)| format!("{l}\n")).collect();
    let Some((start, lines)) = find::mrz_lines(&text) else {
        return Ok(if find::has_mrz_like_line(&text) {
            Found::Lines
        } else {
            Found::Nothing
        });
    };
    // Confidence of the MRZ lines only, not of the other text on the crop; the weakest line, because the name
    // line has no check digit to catch what OCR got wrong in it.
    let confidence = read[start..start + lines.len()]
        .iter()
        .map(|(_, c)| *c)
        .fold(1.0, f64::min);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    Ok(match mrz::parse(&refs, today) {
        Ok(mrz) => Found::Read(Box::new(Reading {
            mrz,
            confidence,
            language: engine.language().to_owned(),
            quarter_turns: turns,
        })),
        Err(_) => Found::Lines,
    })
}

/// Reads the MRZ of a page, or `None` when no MRZ is found anywhere.
pub fn read(
    engines: &mut Engines,
    page: &RgbImage,
    today: NaiveDate,
) -> Result<Option<Reading>, OcrError> {
    let grey = normalise(page);
    let mut best: Option<Reading> = None;
    let keep = |best: &mut Option<Reading>, r: Reading| {
        if best.as_ref().is_none_or(|b| score(&r.mrz) > score(&b.mrz)) {
            *best = Some(r);
        }
    };
    let mut upright = false;
    for turns in [0u8, 2, 1, 3] {
        let page = rotated(&grey, turns);
        let bottom = crop(&page, Region::Bottom);
        let tries = [band::mrz_band(&bottom), Some(bottom.clone()), None];
        for (i, img) in tries.into_iter().enumerate() {
            // The whole page is only prepared when the cheaper crops did not settle it.
            let img = match img {
                Some(img) => img,
                None if i == 2 => crop(&page, Region::Full),
                None => continue,
            };
            match attempt(&mut engines.primary, &img, turns, today)? {
                Found::Read(r) => {
                    let done = r.mrz.checks_hold();
                    keep(&mut best, *r);
                    if done {
                        return Ok(best);
                    }
                }
                Found::Lines => upright = true,
                Found::Nothing => {}
            }
        }
        if let Some(fallback) = engines.fallback.as_mut()
            && (best.is_some() || upright)
        {
            // The MRZ is on this side but reads badly: let the general model have a go.
            if let Found::Read(r) = attempt(fallback, &bottom, turns, today)? {
                keep(&mut best, *r);
            }
        }
        // Once MRZ lines were seen this way up, the other rotations only cost time (up to nine more reads).
        if best.is_some() || upright {
            break;
        }
    }
    Ok(best)
}
