//! From pixels to a parsed MRZ, within a time budget:
//!
//! 1. the page is found against the desk it lies on and its perspective undone (`page`, `geometry`);
//! 2. the MRZ band is looked for on the bottom of each side of the rectified page, upright first: a side with
//!    no band costs no OCR, so a page's orientation comes from the band's geometry, not from reading four
//!    rotations;
//! 3. each band is read by Tesseract and, on a photographed page or a scan Tesseract did not settle, by OCR-B's
//!    glyphs cell by cell (`ocrb`), with Tesseract's reading as evidence; while the reading leaves a check
//!    failing or a character doubtful, Tesseract reads it again from other preparations of the same pixels; the
//!    readings are merged glyph by glyph and settled by ICAO's rules (`mrz::parse_read`);
//! 4. larger regions are read only when no band was found and the page looks like text at all, so a photo of a
//!    landscape or of noise answers `mrz_not_found` in milliseconds.
//!
//! The budget bounds all of it together and stops at once when the caller is gone.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use image::{GrayImage, RgbImage};

use super::{
    band::{self, Band},
    engine::{Engines, OcrEngine, OcrError},
    find,
    geometry::rectify,
    hocr::Line,
    merge::{Pass, Passes, weakest_line},
    page::{self, Located},
    prepare::{lower_part, normalise, rotated, sharpen, skew_angle, straighten, stretch},
    viz,
};
use crate::mrz::{self, Glyph, Mrz};

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
    /// Whether the page was found on a background and its perspective undone.
    pub rectified: bool,
    /// OCR passes merged into this reading.
    pub passes: usize,
    /// Fields the visual zone prints differently from the MRZ (`surname`, `given_names`, `document_number`).
    pub viz_mismatch: Vec<String>,
}

/// What a read found.
#[derive(Debug)]
pub enum Scan {
    /// No lines shaped like an MRZ.
    NotFound,
    /// Lines shaped like an MRZ that do not parse as any format: the MRZ is there but reads too badly.
    Unreadable,
    /// The time budget ran out (or the caller left) before any reading; `seen` tells whether MRZ-shaped lines
    /// had been seen.
    OutOfTime {
        /// MRZ-shaped lines were seen.
        seen: bool,
    },
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

/// How long one document may keep a worker, and whether its caller is still waiting.
pub struct Budget<'a> {
    deadline: Instant,
    cancelled: &'a (dyn Fn() -> bool + 'a),
}

impl std::fmt::Debug for Budget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("deadline", &self.deadline)
            .finish()
    }
}

fn never() -> bool {
    false
}

impl<'a> Budget<'a> {
    /// `limit` from now; `cancelled` says when the caller is gone.
    pub fn new(limit: Duration, cancelled: &'a (dyn Fn() -> bool + 'a)) -> Self {
        Self {
            deadline: Instant::now() + limit,
            cancelled,
        }
    }

    /// Whether no more work should start.
    pub fn spent(&self) -> bool {
        Instant::now() >= self.deadline || (self.cancelled)()
    }

    /// Whether less than `reserve` is left (or the caller is gone): optional work stops so that what must
    /// follow still fits.
    pub fn short_of(&self, reserve: Duration) -> bool {
        Instant::now() + reserve >= self.deadline || (self.cancelled)()
    }
}

/// The default budget of a document's worker time (the service's `max_document_ms`).
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(1500);

/// Where ICAO puts the MRZ: the lower part of the page, from this far down (%).
const BOTTOM_FROM: u32 = 55;

/// Width the larger regions are read at: about 27 px per character of a TD3 line.
const REGION_WIDTH: u32 = 1200;

/// How a band is prepared, in turn, while its readings do not settle it: the width it is straightened to, and
/// how much it is sharpened (0: not).
const BAND_PASSES: [(u32, f32); 5] = [
    (band::OCR_WIDTH, 0.0),
    (band::OCR_WIDTH, 1.5),
    (1000, 1.0),
    (700, 1.0),
    (900, 2.0),
];

/// The longest side a located page is rectified to.
const PAGE_SIDE: u32 = 1600;

/// A glyph padded where a line was read short: no evidence for it, so doubtful.
fn padding() -> Glyph {
    Glyph {
        ch: b'<',
        conf: 0.5,
        alternatives: Vec::new(),
    }
}

/// What one OCR pass saw.
enum Seen {
    Nothing,
    MrzLike,
    /// The MRZ lines, the weakest line's confidence, and each line's character boxes as Tesseract read them.
    Lines(Pass, f64, Vec<Vec<[u32; 4]>>),
}

fn ocr(engine: &mut OcrEngine, img: &GrayImage) -> Result<Seen, OcrError> {
    let read: Vec<Line> = engine.read(img)?;
    let text: String = read.iter().map(|l| format!("{}\n", l.text)).collect();
    let Some((start, lines)) = find::mrz_lines(&text) else {
        return Ok(if find::has_mrz_like_line(&text) {
            Seen::MrzLike
        } else {
            Seen::Nothing
        });
    };
    let mut pass = Vec::new();
    let mut boxes = Vec::new();
    // The weakest line, because the name line has no check digit to catch what OCR got wrong in it.
    let mut confidence = 1.0f64;
    for (fitted, line) in lines.iter().zip(&read[start..]) {
        confidence = confidence.min(line.confidence);
        let width = fitted.text.len();
        let mut glyphs: Vec<Glyph> = line
            .glyphs
            .iter()
            .skip(fitted.skip)
            .take(width)
            .cloned()
            .collect();
        glyphs.resize_with(width, padding);
        pass.push(glyphs);
        boxes.push(line.boxes.iter().skip(fitted.skip).copied().collect());
    }
    Ok(Seen::Lines(pass, confidence, boxes))
}

/// Where a band Tesseract read came from: the straightened region, and the band cut from it with its gaps
/// narrowed. OCR-B reads the region, where the characters keep their fixed pitch.
struct Origin<'a> {
    cut: &'a Band,
    straight: &'a GrayImage,
}

/// Better readings hold more check digits, then fail fewer, then leave fewer fields doubtful, then need fewer
/// repairs. A check over nothing but fillers (empty optional data) holds for any reading and is no evidence: it
/// is not counted, or a visa's reading with a stray character before its first line, taken for a passport's,
/// would outscore the right one by its empty optional data and pass over its failing composite (measured on
/// phone captures of forged visas, whose readings never settle: the wrong format's `review` won over the right
/// one's `fail`).
fn score(m: &Mrz) -> (usize, i64, i64, i64) {
    let evidence = |c: &&mrz::CheckOutcome| {
        c.holds && !(c.field == mrz::Checked::OptionalData && m.optional_data.is_empty())
    };
    (
        m.checks.iter().filter(evidence).count(),
        -(m.checks.iter().filter(|c| !c.holds).count() as i64),
        -(m.uncertain.len() as i64),
        -(m.corrections.len() as i64),
    )
}

/// The state of one document's read.
struct Search<'a, 'b> {
    engines: &'a mut Engines,
    budget: &'a Budget<'b>,
    today: NaiveDate,
    best: Option<Reading>,
    seen: bool,
    rectified: bool,
}

impl Search<'_, '_> {
    fn keep(&mut self, r: Reading) {
        if self
            .best
            .as_ref()
            .is_none_or(|b| score(&r.mrz) > score(&b.mrz))
        {
            self.best = Some(r);
        }
    }

    fn settled(&self) -> bool {
        self.best.as_ref().is_some_and(|b| b.mrz.settled())
    }

    /// Reads `img` with the primary engine, merging with earlier passes of the same band; true once settled.
    /// With `cells`, OCR-B reads the lines too (once per band): from `origin`, where `img` was cut from with its
    /// gaps narrowed (none: `img` is as straightened), as OCR-B needs the fixed pitch.
    fn pass(
        &mut self,
        img: &GrayImage,
        cells: bool,
        origin: Option<&Origin<'_>>,
        turns: u8,
        passes: &mut Passes,
        conf: &mut f64,
    ) -> Result<bool, OcrError> {
        match ocr(&mut self.engines.primary, img)? {
            Seen::Nothing => {}
            Seen::MrzLike => self.seen = true,
            Seen::Lines(pass, c, boxes) => {
                self.seen = true;
                // The first reading of a band is read a second time, by OCR-B's glyphs, cell by cell.
                let second = match self.engines.ocrb.as_deref() {
                    Some(ocrb) if cells && passes.ocrb.is_none() => {
                        let source = origin.map_or(img, |o| o.straight);
                        let lines: Vec<(Vec<[u32; 4]>, usize)> = pass
                            .iter()
                            .zip(&boxes)
                            .map(|(line, b)| {
                                let b = match origin {
                                    Some(o) => b.iter().map(|x| o.cut.to_source(*x)).collect(),
                                    None => b.clone(),
                                };
                                (b, line.len())
                            })
                            .collect();
                        Some(ocrb.lines(source, &lines))
                    }
                    _ => None,
                };
                passes.tesseract.push(pass);
                passes.ocrb = passes.ocrb.take().or(second);
                *conf = conf.max(c);
                // The latest pass alone, and all passes of its shape merged.
                // Tesseract's latest pass alone is a candidate only where OCR-B did not read: otherwise two of
                // its confident misreads that cancel in a check digit would stand beside the right reading.
                let alone = passes
                    .tesseract
                    .last()
                    .filter(|_| passes.ocrb.is_none())
                    .cloned()
                    .map(|p| (p, *conf));
                let merged = passes.merged().map(|p| {
                    let c = weakest_line(&p);
                    (p, c)
                });
                let witnesses = passes.witnesses();
                for (glyphs, confidence) in [merged, alone].into_iter().flatten() {
                    if let Ok(m) = mrz::parse_read(&glyphs, &witnesses, self.today) {
                        self.keep(Reading {
                            mrz: m,
                            confidence,
                            language: self.engines.primary.language().to_owned(),
                            quarter_turns: turns,
                            rectified: self.rectified,
                            passes: passes.count(),
                            viz_mismatch: Vec::new(),
                        });
                    }
                }
            }
        }
        Ok(self.settled())
    }

    /// Reads the band of one side at each preparation in turn until settled; `first` is the band as the side's
    /// geometry already found it at the first preparation.
    fn side(
        &mut self,
        bottom: &GrayImage,
        angle: f32,
        turns: u8,
        first: (GrayImage, Band),
    ) -> Result<bool, OcrError> {
        let (mut passes, mut conf) = (Passes::default(), 0.0);
        let mut first = Some(first);
        for (i, (width, sharpness)) in BAND_PASSES.into_iter().enumerate() {
            // After the first pass, keep time for the visual zone's cross-check.
            if self.budget.spent() || (i > 0 && self.budget.short_of(VIZ_RESERVE)) {
                return Ok(false);
            }
            let found = match first.take() {
                Some(band) if i == 0 => Some(band),
                _ => {
                    let straight = straighten(bottom, angle, width);
                    band::mrz_band(&straight).map(|b| (straight, b))
                }
            };
            let Some((straight, cut)) = found else {
                continue;
            };
            let sharpened = (sharpness > 0.0).then(|| sharpen(&cut.image, sharpness));
            let img = sharpened.as_ref().unwrap_or(&cut.image);
            let origin = Origin {
                cut: &cut,
                straight: &straight,
            };
            // A photographed page is read by OCR-B at once: on soft print Tesseract is sometimes sure and wrong.
            // A scan, which Tesseract reads right almost always, only once its first reading did not settle.
            // "At once" is from the first pass that finds the lines (OCR-B reads a band once): measured on a phone
            // page whose first pass saw none, Tesseract's third read alone passed `WM6BB63BE` for `WM68863BE`,
            // which OCR-B reads right at 1.00.
            let cells = i >= usize::from(!self.rectified);
            if self.pass(img, cells, Some(&origin), turns, &mut passes, &mut conf)? {
                return Ok(true);
            }
            // A first pass that saw nothing like an MRZ: this band is something else.
            if i == 0 && !self.seen {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// Reads a whole region (the bottom, or the page): for pages whose band the locator missed.
    fn region(&mut self, img: &GrayImage, turns: u8) -> Result<(), OcrError> {
        if self.budget.spent() {
            return Ok(());
        }
        let (mut passes, mut conf) = (Passes::default(), 0.0);
        let region = straighten(img, skew_angle(img), REGION_WIDTH);
        self.pass(&region, true, None, turns, &mut passes, &mut conf)?;
        if !self.settled()
            && (self.best.is_some() || self.seen)
            && !self.budget.spent()
            && let Some(fallback) = self.engines.fallback.as_mut()
            && let Seen::Lines(pass, c, _) = ocr(fallback, &region)?
            && let Ok(m) = mrz::parse_read(&pass, &[], self.today)
        {
            // The MRZ is on this side but reads badly: the general model has a go.
            let language = fallback.language().to_owned();
            self.keep(Reading {
                mrz: m,
                confidence: c,
                language,
                quarter_turns: turns,
                rectified: self.rectified,
                passes: 1,
                viz_mismatch: Vec::new(),
            });
        }
        Ok(())
    }
}

/// Worker time kept for the visual zone's cross-check when band passes are repeated.
const VIZ_RESERVE: Duration = Duration::from_millis(400);

/// Names read with less confidence than this are looked for in the visual zone too.
const VIZ_BELOW: f32 = 0.97;

/// The visual zone is the page above this share of its height (the MRZ lies below it).
const VIZ_BOTTOM: u32 = 76;

/// Looks the reading's names up in the visual zone when they rest on doubtful or less than sure OCR, and the
/// budget allows: a name printed as read there is confirmed (its doubt lifted), one printed a letter or two
/// differently is held for review.
fn cross_check(
    engines: &mut Engines,
    page: &GrayImage,
    reading: &mut Reading,
    budget: &Budget<'_>,
) -> Result<(), OcrError> {
    let m = &reading.mrz;
    let names_doubtful = m
        .uncertain
        .iter()
        .any(|f| f == "surname" || f == "given_names" || f == "document_number");
    let Some(engine) = engines.viz.as_mut() else {
        return Ok(());
    };
    // A photographed page's names are looked up even when they read confidently: on soft print the LSTM is
    // sometimes sure and wrong (K for X, G for Q), and no check digit would notice.
    if budget.spent() || (!names_doubtful && !reading.rectified && m.name_confidence >= VIZ_BELOW) {
        return Ok(());
    }
    let words = viz::words(
        engine,
        &viz::region(&rotated(page, reading.quarter_turns), VIZ_BOTTOM),
    )?;
    let m = &mut reading.mrz;
    for (field, name) in [
        ("surname", m.surname.clone()),
        ("given_names", m.given_names.clone()),
        ("document_number", m.document_number.clone()),
    ] {
        match viz::evidence(&name, &words) {
            viz::Evidence::Confirmed => m.uncertain.retain(|f| f != field),
            viz::Evidence::Mismatch => {
                if !m.uncertain.iter().any(|f| f == field) {
                    m.uncertain.push(field.to_owned());
                }
                reading.viz_mismatch.push(field.to_owned());
            }
            viz::Evidence::Silent => {}
        }
    }
    Ok(())
}

/// Whether a grey region could hold printed text at all: some ink, but not the half-and-half of noise or the
/// large dark areas of a photo.
fn looks_like_text(img: &GrayImage) -> bool {
    let t = band::otsu(img);
    let px = img.as_raw();
    let ink = px.iter().filter(|p| **p <= t).count() as f64 / px.len().max(1) as f64;
    // Between ink and paper there must be a real gap, not a threshold through the middle of a smooth spread.
    let (dark, light) = px.iter().fold((0u64, 0u64), |(d, l), p| {
        if *p < 80 {
            (d + 1, l)
        } else if *p > 170 {
            (d, l + 1)
        } else {
            (d, l)
        }
    });
    let contrasted = (dark + light) as f64 / px.len().max(1) as f64;
    (0.01..0.3).contains(&ink) && contrasted > 0.75
}

/// Reads the MRZ of a page with the default budget and no cancellation.
pub fn read(engines: &mut Engines, page: &RgbImage, today: NaiveDate) -> Result<Scan, OcrError> {
    read_within(engines, page, today, &Budget::new(DEFAULT_BUDGET, &never))
}

/// Reads the MRZ of a page within `budget`: the best reading, or what was seen instead.
pub fn read_within(
    engines: &mut Engines,
    photo: &RgbImage,
    today: NaiveDate,
    budget: &Budget<'_>,
) -> Result<Scan, OcrError> {
    let locating = tracing::debug_span!("page.locate").entered();
    let grey = normalise(photo);
    let (page, rectified) = match page::locate(&grey) {
        Located::Quad(quad) => {
            let (w, h) = page::rectified_size(&quad, PAGE_SIDE);
            match rectify(&grey, quad, w, h) {
                Some(mut p) => {
                    stretch(&mut p);
                    (p, true)
                }
                None => (grey, false),
            }
        }
        Located::Whole => (grey, false),
    };
    drop(locating);
    let mut search = Search {
        engines,
        budget,
        today,
        best: None,
        seen: false,
        rectified,
    };
    // Each side's bottom, straightened: upright first, then upside down, then the quarter turns. A side's
    // geometry is only computed when the sides before it did not settle the page.
    let (mut banded, mut empty_bands, mut textured) = (Vec::new(), 0, false);
    for turns in [0u8, 2, 1, 3] {
        if budget.spent() {
            break;
        }
        let bottom = lower_part(&rotated(&page, turns), BOTTOM_FROM);
        let angle = skew_angle(&bottom);
        let straight = straighten(&bottom, angle, band::OCR_WIDTH);
        // A band of texture, not print (grass, foliage): no OCR, and it answers for the page as an empty band
        // would.
        let band = band::mrz_band(&straight).filter(|b| {
            let print = band::printed(&b.image);
            textured |= !print;
            print
        });
        let band = band.map(|b| (straight, b));
        // Two bands that read as nothing MRZ-like: a photo's edges or a texture, not a turned document.
        if let Some(band) = band.filter(|_| empty_bands < 2) {
            banded.push(turns);
            let _side = tracing::debug_span!("mrz.band", quarter_turns = turns).entered();
            if search.side(&bottom, angle, turns, band)? {
                break;
            }
            if !search.seen && search.best.is_none() {
                empty_bands += 1;
            }
        }
        // Once MRZ lines were seen this way up, the other sides only cost time.
        if search.best.is_some() || search.seen {
            break;
        }
    }
    if !search.settled() && !budget.spent() {
        // No band read: the whole bottom of a side that showed MRZ-like lines, or of the upright side if the page
        // looks like text at all; then the whole page.
        let turns = search
            .best
            .as_ref()
            .map_or(banded.first().copied().unwrap_or(0), |b| b.quarter_turns);
        let upright = rotated(&page, turns);
        let bottom = lower_part(&upright, BOTTOM_FROM);
        // A band that read as nothing MRZ-like already answered for this page; with no band at all, only a page
        // that looks like text is worth reading whole.
        let worth = search.best.is_some()
            || search.seen
            || (banded.is_empty() && !textured && looks_like_text(&bottom));
        if worth {
            let _region = tracing::debug_span!("mrz.region", quarter_turns = turns).entered();
            search.region(&bottom, turns)?;
            // The whole page, for an MRZ outside the bottom of a photo whose page was not found; the bottom of
            // a found page is where its MRZ is, so when it showed nothing MRZ-like the rest cannot.
            if !search.settled() && search.best.is_none() && (!rectified || search.seen) {
                search.region(&upright, turns)?;
            }
        }
    }
    if let Some(best) = search.best.as_mut() {
        let _viz = tracing::debug_span!("viz.cross_check").entered();
        cross_check(search.engines, &page, best, budget)?;
        best.mrz.keep_unsettled_as_read();
    }
    Ok(match search.best {
        Some(r) => Scan::Read(Box::new(r)),
        None if budget.spent() => Scan::OutOfTime { seen: search.seen },
        None if search.seen => Scan::Unreadable,
        None => Scan::NotFound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_and_photos_do_not_look_like_text() {
        let noise = GrayImage::from_fn(300, 200, |x, y| {
            image::Luma([((x * 7919 + y * 104_729) % 251) as u8])
        });
        assert!(!looks_like_text(&noise));
        let sky = GrayImage::from_fn(300, 200, |_, y| image::Luma([(100 + y / 2) as u8]));
        assert!(!looks_like_text(&sky));
        let text = GrayImage::from_fn(300, 200, |x, y| {
            image::Luma([if y % 20 < 6 && x % 7 < 3 { 20 } else { 230 }])
        });
        assert!(looks_like_text(&text));
    }

    #[test]
    fn a_visa_read_as_a_passport_does_not_outscore_its_right_reading() {
        let today = NaiveDate::from_ymd_opt(2010, 1, 4).unwrap_or_default();
        // ICAO's MRV-A specimen without optional data, its expiry forged (961210 → 961219, the check digit
        // left); and the same read with a stray `5U` before the first line, which parses as a passport's (TD3),
        // its empty optional data's check holding for any reading and its composite failing.
        let line1 = "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<";
        let line2 = "L8988901C4XXX4009078F9612199<<<<<<<<<<<<<<<<";
        let stray = format!("5U{}", &line1[..42]);
        let (Ok(right), Ok(wrong)) = (
            mrz::parse(&[line1, line2], today),
            mrz::parse(&[&stray, line2], today),
        ) else {
            panic!("both readings parse");
        };
        assert_eq!(right.format, mrz::MrzFormat::MrvA);
        assert_eq!(wrong.format, mrz::MrzFormat::Td3);
        assert!(score(&right) > score(&wrong));
    }
}
