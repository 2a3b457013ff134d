//! From pixels to a parsed MRZ: try the MRZ lines located on the bottom part of the page, then that whole part,
//! then the whole page, in the four rotations, with the MRZ language first and `eng` as the fallback; keep the
//! reading whose check digits hold best. The first try settles almost every document; the others are there for
//! pages the locator misreads.

use chrono::NaiveDate;
use image::{GrayImage, RgbImage};

use super::{
    band,
    engine::{Engines, OcrEngine, OcrError},
    find,
    prepare::{grey_rows, lower_part, normalise, rotated, skew_angle, straighten},
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

/// What a read (or one OCR pass of it) found.
#[derive(Debug)]
pub enum Scan {
    /// No lines shaped like an MRZ.
    NotFound,
    /// Lines shaped like an MRZ that do not parse as any format: the MRZ is there but reads too badly.
    Unreadable,
    /// A parsed MRZ.
    Read(Box<Reading>),
}

impl Scan {
    /// The reading, when the MRZ was read.
    pub fn reading(&self) -> Option<&Reading> {
        match self {
            Self::Read(r) => Some(r),
            _ => None,
        }
    }
}

fn attempt(
    engine: &mut OcrEngine,
    img: &image::GrayImage,
    turns: u8,
    today: NaiveDate,
) -> Result<Scan, OcrError> {
    let read = engine.read(img)?;
    let text: String = read.iter().map(|(l, _)| format!("{l}\n")).collect();
    let Some((start, lines)) = find::mrz_lines(&text) else {
        return Ok(if find::has_mrz_like_line(&text) {
            Scan::Unreadable
        } else {
            Scan::NotFound
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
        Ok(mrz) => Scan::Read(Box::new(Reading {
            mrz,
            confidence,
            language: engine.language().to_owned(),
            quarter_turns: turns,
        })),
        Err(_) => Scan::Unreadable,
    })
}

/// Where ICAO puts the MRZ: the lower part of the page, from this far down (%).
const BOTTOM_FROM: u32 = 55;

/// Width the larger regions (the whole bottom, the whole page) are read at: about 27 px per character of a TD3
/// line, what the MRZ model reads best when it must also pass over other print.
const REGION_WIDTH: u32 = 1200;

/// The page as the reader needs it, each view made only when a try asks for it: an upright page is settled
/// from its bottom rows alone, without converting, stretching or turning the rest.
struct Views<'a> {
    rgb: &'a RgbImage,
    grey: Option<GrayImage>,
}

impl Views<'_> {
    /// The whole page, grey, turned.
    fn page(&mut self, turns: u8) -> GrayImage {
        let rgb = self.rgb;
        rotated(self.grey.get_or_insert_with(|| normalise(rgb)), turns)
    }

    /// The bottom part of the page turned this way, grey.
    fn bottom(&mut self, turns: u8) -> GrayImage {
        if turns == 0 && self.grey.is_none() {
            grey_rows(self.rgb, self.rgb.height() * BOTTOM_FROM / 100)
        } else {
            lower_part(&self.page(turns), BOTTOM_FROM)
        }
    }
}

/// Reads the MRZ of a page: the best reading, or whether MRZ-shaped lines were seen at all.
pub fn read(engines: &mut Engines, page: &RgbImage, today: NaiveDate) -> Result<Scan, OcrError> {
    let mut views = Views {
        rgb: page,
        grey: None,
    };
    let mut best: Option<Reading> = None;
    let keep = |best: &mut Option<Reading>, r: Reading| {
        if best.as_ref().is_none_or(|b| score(&r.mrz) > score(&b.mrz)) {
            *best = Some(r);
        }
    };
    let mut upright = false;
    for turns in [0u8, 2, 1, 3] {
        let bottom = views.bottom(turns);
        let angle = skew_angle(&bottom);
        // The band is looked for on the bottom straightened at OCR width, so it needs no further scaling; the
        // larger regions are only prepared when the band did not settle it.
        let band = band::mrz_band(&straighten(&bottom, angle, band::OCR_WIDTH));
        let mut region: Option<GrayImage> = None;
        for i in 0..3 {
            let found = match i {
                0 => match &band {
                    Some(band) => attempt(&mut engines.primary, band, turns, today)?,
                    None => continue,
                },
                1 => {
                    let region =
                        region.get_or_insert_with(|| straighten(&bottom, angle, REGION_WIDTH));
                    attempt(&mut engines.primary, region, turns, today)?
                }
                _ => {
                    let whole = views.page(turns);
                    let whole = straighten(&whole, skew_angle(&whole), REGION_WIDTH);
                    attempt(&mut engines.primary, &whole, turns, today)?
                }
            };
            match found {
                Scan::Read(r) => {
                    let done = r.mrz.checks_hold();
                    keep(&mut best, *r);
                    if done {
                        return Ok(settle(best, true));
                    }
                }
                Scan::Unreadable => upright = true,
                Scan::NotFound => {}
            }
        }
        if let Some(fallback) = engines.fallback.as_mut()
            && (best.is_some() || upright)
        {
            // The MRZ is on this side but reads badly: let the general model have a go.
            let region = region.get_or_insert_with(|| straighten(&bottom, angle, REGION_WIDTH));
            if let Scan::Read(r) = attempt(fallback, region, turns, today)? {
                keep(&mut best, *r);
            }
        }
        // Once MRZ lines were seen this way up, the other rotations only cost time (up to nine more reads).
        if best.is_some() || upright {
            break;
        }
    }
    Ok(settle(best, upright))
}

fn settle(best: Option<Reading>, upright: bool) -> Scan {
    match best {
        Some(r) => Scan::Read(Box::new(r)),
        None if upright => Scan::Unreadable,
        None => Scan::NotFound,
    }
}
