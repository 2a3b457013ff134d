//! Finding the MRZ band on a straightened crop before OCR, so Tesseract reads two or three lines instead of the
//! whole lower half of the page (field text, photo, background print): the cost of a read follows the amount of
//! text-like matter it is given.
//!
//! MRZ lines are the widest text on a document: a row through them crosses ink in almost every column, which a
//! field value (beside the photo) or the photo itself never does. The band is the lowest such line together with
//! the one or two lines just above it that look alike (similar height, small gap).

use image::{GrayImage, imageops};

/// Column bins a row is divided into when measuring how far across it text runs.
const BINS: usize = 30;

/// Width the band is scaled to for OCR: about 18 px per character of a TD3 line, which the MRZ model still reads
/// exactly while taking a third less time than at the locator's 1,200 px.
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
fn otsu(img: &GrayImage) -> u8 {
    let mut hist = [0f64; 256];
    for p in img.pixels() {
        hist[usize::from(p[0])] += 1.0;
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

/// For every row, the bins in which the row crosses ink at least twice (a stroke in, a stroke out).
fn row_bins(img: &GrayImage, threshold: u8) -> Vec<Vec<bool>> {
    let (w, h) = img.dimensions();
    (0..h)
        .map(|y| {
            let mut edges = [0u8; BINS];
            let mut prev = false;
            for x in 0..w {
                let ink = img.get_pixel(x, y)[0] <= threshold;
                if ink != prev {
                    let bin = (x as usize * BINS) / w as usize;
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

/// The MRZ band: the lowest wide line and up to two alike lines just above it.
fn mrz_runs(runs: &[Run]) -> Option<(Run, Run)> {
    let last = *runs.last()?;
    let line = last.height() as f32;
    let mut first = last;
    let mut count = 1;
    for run in runs.iter().rev().skip(1) {
        let alike = (0.5..=2.0).contains(&(run.height() as f32 / line));
        let close = (first.top.saturating_sub(run.bottom) as f32) <= 2.0 * line;
        if !(alike && close) || count == 3 {
            break;
        }
        first = *run;
        count += 1;
    }
    (count >= 2).then_some((first, last))
}

/// The crop of `img` holding its MRZ lines with a margin, scaled for OCR as if `img` were [`OCR_WIDTH`] wide, or
/// `None` when no band of two or three wide lines is found (the caller then reads a larger region).
pub fn mrz_band(img: &GrayImage) -> Option<GrayImage> {
    let (w, h) = img.dimensions();
    if w < BINS as u32 * 4 || h < 12 {
        return None;
    }
    let runs = wide_runs(&row_bins(img, otsu(img)));
    let (first, last) = mrz_runs(&runs)?;
    let margin = last.height().max(first.height());
    let top = first.top.saturating_sub(margin);
    let bottom = (last.bottom + margin).min(h);
    let bin_w = w as f32 / BINS as f32;
    let left_bin = first.bins.0.min(last.bins.0).saturating_sub(2);
    let right_bin = (first.bins.1.max(last.bins.1) + 3).min(BINS);
    let left = (left_bin as f32 * bin_w) as u32;
    let right = ((right_bin as f32 * bin_w) as u32).min(w);
    let band = imageops::crop_imm(img, left, top, right - left, bottom - top).to_image();
    let f = (OCR_WIDTH as f32 / w as f32).min(1.0);
    let (bw, bh) = band.dimensions();
    Some(imageops::resize(
        &band,
        ((bw as f32 * f) as u32).max(1),
        ((bh as f32 * f) as u32).max(1),
        imageops::FilterType::Triangle,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white image with dark "text" blocks: alternating 3-px strokes across `[x0, x1)` on rows `[y0, y1)`.
    fn page(w: u32, h: u32, lines: &[(u32, u32, u32, u32)]) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            let ink = lines.iter().any(|&(x0, x1, y0, y1)| {
                (x0..x1).contains(&x) && (y0..y1).contains(&y) && x % 6 < 3
            });
            image::Luma([if ink { 20 } else { 230 }])
        })
    }

    #[test]
    fn the_two_lowest_wide_lines_are_the_band_and_narrow_text_is_left_out() {
        let img = page(
            1200,
            400,
            &[
                (450, 1100, 40, 70),  // a field value beside the photo
                (60, 1140, 280, 305), // MRZ line 1
                (60, 1140, 330, 355), // MRZ line 2
            ],
        );
        let band = mrz_band(&img).expect("band");
        // Both lines and a margin of one line height, scaled by 800/1200; the field text (which would make it
        // over 240 px) is not in it.
        assert!(
            band.height() >= 50 && band.height() <= 90,
            "{}",
            band.height()
        );
        assert!(band.width() >= 720, "{}", band.width());
    }

    #[test]
    fn three_lines_of_a_td1_are_kept_together() {
        let img = page(
            1200,
            400,
            &[
                (100, 1100, 200, 225),
                (100, 1100, 250, 275),
                (100, 1100, 300, 325),
            ],
        );
        let band = mrz_band(&img).expect("band");
        assert!(band.height() >= 83, "{}", band.height());
    }

    #[test]
    fn a_single_line_or_a_blank_page_is_not_a_band() {
        assert!(mrz_band(&page(1200, 400, &[(60, 1140, 300, 325)])).is_none());
        assert!(mrz_band(&page(1200, 400, &[])).is_none());
    }
}
