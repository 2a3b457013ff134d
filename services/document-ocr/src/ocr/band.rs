//! Finding the MRZ band on a straightened crop before OCR, so Tesseract reads two or three lines instead of the
//! whole lower half of the page (field text, photo, background print): the cost of a read follows the amount of
//! text-like matter it is given.
//!
//! MRZ lines are the widest text on a document: a row through them crosses ink in almost every column, which a
//! field value (beside the photo) or the photo itself never does. The band is the lowest such line together with
//! the one or two lines just above it that look alike (similar height, small gap).

use image::GrayImage;

/// Column bins a row is divided into when measuring how far across it text runs.
const BINS: usize = 30;

/// Width the bottom of the page is scaled to before the band is looked for and cut: about 18 px per character of
/// a TD3 line, which the MRZ model still reads exactly while taking a third less time than at 1,200 px.
pub const OCR_WIDTH: u32 = 800;

/// Rows of a text line, top inclusive, bottom exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    top: u32,
    bottom: u32,
    /// First and last column bin with text, over the run's rows.
    bins: (usize, usize),
}

impl Run {
    fn height(&self) -> u32 {
        self.bottom - self.top
    }
}

/// Otsu's threshold of a grey image.
pub fn otsu(img: &GrayImage) -> u8 {
    let mut hist = [0f64; 256];
    for p in img.as_raw() {
        hist[usize::from(*p)] += 1.0;
    }
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(v, n)| v as f64 * n).sum();
    let (mut weight_bg, mut sum_bg, mut best, mut best_t) = (0.0, 0.0, -1.0, 128u8);
    for (t, n) in hist.iter().enumerate() {
        weight_bg += n;
        sum_bg += t as f64 * n;
        let weight_fg = total - weight_bg;
        if weight_bg == 0.0 || weight_fg == 0.0 {
            continue;
        }
        let (mean_bg, mean_fg) = (sum_bg / weight_bg, (sum_all - sum_bg) / weight_fg);
        let between = weight_bg * weight_fg * (mean_bg - mean_fg).powi(2);
        if between > best {
            best = between;
            best_t = t as u8;
        }
    }
    best_t
}

/// How cleanly Otsu's threshold splits `img` into two classes: the between-class share of the variance, 0–1.
fn separation(img: &GrayImage) -> f64 {
    let t = otsu(img);
    let (mut n, mut sum, mut sq) = ([0f64; 2], [0f64; 2], 0f64);
    for p in img.as_raw() {
        let (v, k) = (f64::from(*p), usize::from(*p > t));
        n[k] += 1.0;
        sum[k] += v;
        sq += v * v;
    }
    let total = n[0] + n[1];
    if n[0] == 0.0 || n[1] == 0.0 {
        return 0.0;
    }
    let mean = (sum[0] + sum[1]) / total;
    let variance = sq / total - mean * mean;
    if variance <= f64::EPSILON {
        return 0.0;
    }
    let (m0, m1) = (sum[0] / n[0], sum[1] / n[1]);
    (n[0] / total) * (n[1] / total) * (m0 - m1).powi(2) / variance
}

/// Below this separation (the median of a band's four quarters) a band is a texture, not print: measured on
/// 1,050 generated bands of every capture level, print separates at 0.78 or more, landscape and noise pages at
/// 0.68 or less.
const PRINT_SEPARATION: f64 = 0.73;

/// Whether a band is ink on paper (two well-separated grey levels), not grass, foliage or noise that happens to
/// cross the width: a texture costs Tesseract hundreds of milliseconds to read as nothing. Measured per quarter
/// of the band, so that light falling off along a photographed page does not count against it.
pub fn printed(band: &GrayImage) -> bool {
    let (w, h) = band.dimensions();
    if w < 8 || h == 0 {
        return false;
    }
    let mut quarters: Vec<f64> = (0..4)
        .map(|i| separation(&image::imageops::crop_imm(band, i * w / 4, 0, w / 4, h).to_image()))
        .collect();
    quarters.sort_by(f64::total_cmp);
    (quarters[1] + quarters[2]) / 2.0 >= PRINT_SEPARATION
}

/// For every row, the bins in which the row crosses ink at least twice (a stroke in, a stroke out).
fn row_bins(img: &GrayImage, threshold: u8) -> Vec<Vec<bool>> {
    let w = img.width() as usize;
    img.as_raw()
        .chunks_exact(w.max(1))
        .map(|row| {
            let mut edges = [0u8; BINS];
            let mut prev = false;
            for (x, p) in row.iter().enumerate() {
                let ink = *p <= threshold;
                if ink != prev {
                    let bin = (x * BINS) / w;
                    edges[bin] = edges[bin].saturating_add(1);
                    prev = ink;
                }
            }
            edges.iter().map(|&e| e >= 2).collect()
        })
        .collect()
}

/// Text lines that run across most of the width, top to bottom.
fn wide_runs(rows: &[Vec<bool>]) -> Vec<Run> {
    let coverage: Vec<f32> = rows
        .iter()
        .map(|r| r.iter().filter(|b| **b).count() as f32 / BINS as f32)
        .collect();
    let max = coverage.iter().copied().fold(0.0, f32::max);
    let wide = (max * 0.6).max(0.45);
    let mut runs: Vec<Run> = Vec::new();
    for (y, c) in coverage.iter().enumerate() {
        if *c < wide {
            continue;
        }
        let y = y as u32;
        let first = rows[y as usize].iter().position(|b| *b).unwrap_or(0);
        let last = rows[y as usize]
            .iter()
            .rposition(|b| *b)
            .unwrap_or(BINS - 1);
        match runs.last_mut() {
            // Gaps of a row or two inside a line come from thin strokes and noise.
            Some(run) if y <= run.bottom + 2 => {
                run.bottom = y + 1;
                run.bins = (run.bins.0.min(first), run.bins.1.max(last));
            }
            _ => runs.push(Run {
                top: y,
                bottom: y + 1,
                bins: (first, last),
            }),
        }
    }
    runs.retain(|r| r.height() >= 6);
    runs
}

/// The MRZ band: the lowest wide line and up to two alike lines just above it, as a range of `runs`.
fn mrz_runs(runs: &[Run]) -> Option<std::ops::RangeInclusive<usize>> {
    let last = runs.len().checked_sub(1)?;
    let line = runs[last].height() as f32;
    let mut first = last;
    while first > 0 && last - first < 2 {
        let run = runs[first - 1];
        let alike = (0.5..=2.0).contains(&(run.height() as f32 / line));
        let close = (runs[first].top.saturating_sub(run.bottom) as f32) <= 2.0 * line;
        if !(alike && close) {
            break;
        }
        first -= 1;
    }
    (first < last).then_some(first..=last)
}

/// Ink is darker than this on a contrast-stretched image; a column lighter than it on every row of the MRZ lines
/// is blank.
const INK: u8 = 160;

/// Blank columns kept of each run between characters, as a share of the line height.
const GAP_KEPT: f32 = 0.15;

/// The crop of `img` (about [`OCR_WIDTH`] wide) holding its MRZ lines with a margin, or `None` when no band of
/// two or three wide lines is found (the caller then reads a larger region).
///
/// The gaps between characters are narrowed: Tesseract's LSTM scales each line to a fixed height and steps
/// along its width, so its cost follows the width it is given. MRZ characters sit on a fixed pitch with blank
/// columns between them; cutting each blank run down to a sliver keeps every glyph as printed and every
/// character apart, and removes about a third of the width (a third of the OCR time).
pub fn mrz_band(img: &GrayImage) -> Option<Band> {
    let (w, h) = img.dimensions();
    if w < BINS as u32 * 4 || h < 12 {
        return None;
    }
    let runs = wide_runs(&row_bins(img, otsu(img)));
    let lines = &runs[mrz_runs(&runs)?];
    let (first, last) = (lines.first()?, lines.last()?);
    let line_height = lines.iter().map(Run::height).max().unwrap_or(1);
    let top = first.top.saturating_sub(line_height);
    let bottom = (last.bottom + line_height).min(h);
    let bin_w = w as f32 / BINS as f32;
    let left_bin = lines
        .iter()
        .map(|r| r.bins.0)
        .min()
        .unwrap_or(0)
        .saturating_sub(2);
    let right_bin = (lines.iter().map(|r| r.bins.1).max().unwrap_or(BINS) + 3).min(BINS);
    let left = (left_bin as f32 * bin_w) as usize;
    let right = ((right_bin as f32 * bin_w) as usize).min(w as usize);
    let raw = img.as_raw();
    let width = w as usize;
    let blank = |x: usize| {
        lines
            .iter()
            .all(|r| (r.top..r.bottom).all(|y| raw[y as usize * width + x] > INK))
    };
    let kept_gap = (GAP_KEPT * line_height as f32).ceil() as usize;
    let mut columns = Vec::with_capacity(right - left);
    let mut gap = 0;
    for x in left..right {
        gap = if blank(x) { gap + 1 } else { 0 };
        if gap <= kept_gap {
            columns.push(x);
        }
    }
    let rows = (top..bottom).flat_map(|y| {
        let row = &raw[y as usize * width..(y as usize + 1) * width];
        columns.iter().map(move |&x| row[x])
    });
    let image = GrayImage::from_raw(columns.len() as u32, bottom - top, rows.collect())?;
    Some(Band {
        image,
        columns: columns.into_iter().map(|x| x as u32).collect(),
        top,
    })
}

/// An MRZ band cut out of an image, with where its pixels came from.
#[derive(Debug, Clone)]
pub struct Band {
    /// The band, gaps narrowed: what Tesseract reads.
    pub image: GrayImage,
    /// For each column of `image`, its column in the source image.
    pub columns: Vec<u32>,
    /// The source row of `image`'s first row.
    pub top: u32,
}

impl Band {
    /// A box `[x0, y0, x1, y1]` of `image` in the source image's pixels.
    pub fn to_source(&self, b: [u32; 4]) -> [u32; 4] {
        let column = |x: u32| {
            let last = self.columns.len().saturating_sub(1);
            self.columns
                .get((x as usize).min(last))
                .copied()
                .unwrap_or(x)
        };
        [column(b[0]), b[1] + self.top, column(b[2]), b[3] + self.top]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white image with dark "text" blocks: `ink` px of every `period` columns across `[x0, x1)` on rows
    /// `[y0, y1)`.
    fn page_with(
        w: u32,
        h: u32,
        period: u32,
        ink: u32,
        lines: &[(u32, u32, u32, u32)],
    ) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            let dark = lines.iter().any(|&(x0, x1, y0, y1)| {
                (x0..x1).contains(&x) && (y0..y1).contains(&y) && (x - x0) % period < ink
            });
            image::Luma([if dark { 20 } else { 230 }])
        })
    }

    fn page(w: u32, h: u32, lines: &[(u32, u32, u32, u32)]) -> GrayImage {
        page_with(w, h, 6, 3, lines)
    }

    #[test]
    fn print_is_told_from_texture_even_under_falling_light() {
        let text = page(600, 40, &[(10, 590, 8, 32)]);
        assert!(printed(&text));
        // Light falling off by half along the band.
        let dim = GrayImage::from_fn(600, 40, |x, y| {
            let v = f64::from(text.get_pixel(x, y)[0]) * (1.0 - f64::from(x) / 1200.0);
            image::Luma([v as u8])
        });
        assert!(printed(&dim));
        // Grass-like texture: one bell of greys around a mid tone, no paper and no ink.
        let grass = GrayImage::from_fn(600, 40, |x, y| {
            let h = |k: u32| (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503 + k)) % 61;
            image::Luma([(70 + h(1) + h(2) + h(3)) as u8])
        });
        assert!(!printed(&grass));
        assert!(!printed(&GrayImage::new(4, 4)));
    }

    fn ink_columns(img: &GrayImage) -> usize {
        (0..img.width())
            .filter(|&x| (0..img.height()).any(|y| img.get_pixel(x, y)[0] <= INK))
            .count()
    }

    #[test]
    fn the_two_lowest_wide_lines_are_the_band_and_narrow_text_is_left_out() {
        let img = page(
            800,
            270,
            &[
                (300, 733, 27, 47),  // a field value beside the photo
                (40, 760, 187, 204), // MRZ line 1
                (40, 760, 220, 237), // MRZ line 2
            ],
        );
        let band = mrz_band(&img).expect("band").image;
        // Both lines and a margin of one line height; the field text (which would make it over 200 px) is not
        // in it.
        assert!((70..=100).contains(&band.height()), "{}", band.height());
        // The blank margins are cut to a sliver; the 3-px gaps between strokes are kept whole.
        assert!((715..=740).contains(&band.width()), "{}", band.width());
        assert_eq!(ink_columns(&band), 360);
    }

    #[test]
    fn gaps_between_characters_are_narrowed_and_no_ink_is_lost() {
        // "Characters" 8 px wide on a 20 px pitch, lines 17 px high: every 12 px gap is cut to 3 px.
        let img = page_with(800, 270, 20, 8, &[(40, 760, 187, 204), (40, 760, 220, 237)]);
        let cut = mrz_band(&img).expect("band");
        // Boxes of the narrowed band map back onto the source's fixed pitch: the 2nd character starts 20 px
        // after the 1st.
        let starts: Vec<u32> = (0..cut.image.width())
            .filter(|&x| cut.image.get_pixel(x, 190 - cut.top)[0] <= INK)
            .filter(|&x| x == 0 || cut.image.get_pixel(x - 1, 190 - cut.top)[0] > INK)
            .map(|x| cut.to_source([x, 0, x, 0])[0])
            .collect();
        assert_eq!(starts[..3], [40, 60, 80]);
        let b = cut.to_source([0, 5, 0, 9]);
        assert_eq!([b[1], b[3]], [5 + cut.top, 9 + cut.top]);
        let band = cut.image;
        assert_eq!(ink_columns(&band), 36 * 8);
        assert!(
            (36 * 11 - 3..=36 * 11 + 6).contains(&band.width()),
            "{}",
            band.width()
        );
    }

    #[test]
    fn three_lines_of_a_td1_are_kept_together() {
        let img = page(
            800,
            270,
            &[
                (67, 733, 133, 150),
                (67, 733, 167, 184),
                (67, 733, 200, 217),
            ],
        );
        let band = mrz_band(&img).expect("band").image;
        assert!(band.height() >= 84, "{}", band.height());
    }

    #[test]
    fn a_single_line_or_a_blank_page_is_not_a_band() {
        assert!(mrz_band(&page(800, 270, &[(40, 760, 200, 217)])).is_none());
        assert!(mrz_band(&page(800, 270, &[])).is_none());
    }
}
