//! Reading the MRZ off an image with Tesseract: grey, contrast-stretched crops of the likely band (and the
//! whole page, in four rotations when needed), OCRed with the MRZ language data and a `A–Z 0–9 <` whitelist in
//! single-block mode, then the lines that fit an MRZ format picked out of the text.

pub mod band;
pub mod engine;
pub mod find;
pub mod reader;

use image::{GrayImage, RgbImage, imageops};

/// A crop handed to Tesseract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The bottom part of the page, where ICAO puts the MRZ.
    Bottom,
    /// The whole page.
    Full,
}

/// Grey, contrast stretched between the 1st and 99th percentile.
pub fn normalise(rgb: &RgbImage) -> GrayImage {
    let mut grey = imageops::grayscale(rgb);
    let mut hist = [0u64; 256];
    for p in grey.pixels() {
        hist[usize::from(p[0])] += 1;
    }
    let total: u64 = hist.iter().sum();
    let quantile = |q: f64| {
        let target = (total as f64 * q) as u64;
        let mut acc = 0;
        for (v, n) in hist.iter().enumerate() {
            acc += n;
            if acc >= target {
                return v as f32;
            }
        }
        255.0
    };
    let (lo, hi) = (quantile(0.01), quantile(0.99));
    if hi - lo > 10.0 {
        for p in grey.pixels_mut() {
            p[0] = ((f32::from(p[0]) - lo) * 255.0 / (hi - lo)).clamp(0.0, 255.0) as u8;
        }
    }
    grey
}

/// The page turned by a multiple of 90°.
pub fn rotated(grey: &GrayImage, quarter_turns: u8) -> GrayImage {
    match quarter_turns % 4 {
        1 => imageops::rotate90(grey),
        2 => imageops::rotate180(grey),
        3 => imageops::rotate270(grey),
        _ => grey.clone(),
    }
}

/// Straightens a band of text: the angle (within ±6°, 0.5° steps) whose horizontal projection is the most
/// peaked — lines of text aligned with the rows — found on a small copy, then applied to the full crop.
pub fn deskew(band: &GrayImage) -> GrayImage {
    let (w, h) = band.dimensions();
    let f = (400.0 / w as f32).min(1.0);
    let small = imageops::resize(
        band,
        ((w as f32 * f) as u32).max(1),
        ((h as f32 * f) as u32).max(1),
        imageops::FilterType::Triangle,
    );
    let (sw, sh) = small.dimensions();
    let ink: Vec<(f32, f32)> = small
        .enumerate_pixels()
        .filter(|(_, _, p)| p[0] < 110)
        .map(|(x, y, _)| (x as f32 - sw as f32 / 2.0, y as f32 - sh as f32 / 2.0))
        .collect();
    if ink.len() < 50 {
        return band.clone();
    }
    let peakedness = |deg: f32| {
        let (s, c) = deg.to_radians().sin_cos();
        let mut rows = vec![0f32; (sh as usize) * 2 + 1];
        for (x, y) in &ink {
            let r = (-s * x + c * y + sh as f32).round();
            if r >= 0.0 && (r as usize) < rows.len() {
                rows[r as usize] += 1.0;
            }
        }
        rows.iter().map(|v| v * v).sum::<f32>()
    };
    let best = (-12..=12)
        .map(|i| i as f32 * 0.5)
        .max_by(|a, b| peakedness(*a).total_cmp(&peakedness(*b)))
        .unwrap_or(0.0);
    if best.abs() < 0.25 {
        return band.clone();
    }
    rotate(band, best)
}

/// Rotates by `deg` about the centre (bilinear), filling with white.
fn rotate(img: &GrayImage, deg: f32) -> GrayImage {
    let (w, h) = img.dimensions();
    let (s, c) = deg.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    GrayImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let (sx, sy) = (c * dx - s * dy + cx, s * dx + c * dy + cy);
        if sx < 0.0 || sy < 0.0 || sx >= (w - 1) as f32 || sy >= (h - 1) as f32 {
            return image::Luma([255]);
        }
        let (x0, y0) = (sx as u32, sy as u32);
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let p = |xx, yy| f32::from(img.get_pixel(xx, yy)[0]);
        let top = p(x0, y0) + (p(x0 + 1, y0) - p(x0, y0)) * fx;
        let bottom = p(x0, y0 + 1) + (p(x0 + 1, y0 + 1) - p(x0, y0 + 1)) * fx;
        image::Luma([(top + (bottom - top) * fy).round() as u8])
    })
}

/// The crop of a region, scaled to 1,200 px wide and straightened.
pub fn crop(grey: &GrayImage, region: Region) -> GrayImage {
    let (w, h) = grey.dimensions();
    let part = match region {
        Region::Bottom => {
            let top = h * 55 / 100;
            imageops::crop_imm(grey, 0, top, w, h - top).to_image()
        }
        Region::Full => grey.clone(),
    };
    // About 27 px per MRZ character across a TD3 line: what the MRZ model reads best and fastest.
    let factor = 1200.0 / w as f32;
    let (pw, ph) = part.dimensions();
    let scaled = if (factor - 1.0).abs() < 0.05 {
        part
    } else {
        imageops::resize(
            &part,
            (pw as f32 * factor) as u32,
            (ph as f32 * factor).max(1.0) as u32,
            imageops::FilterType::Triangle,
        )
    };
    deskew(&scaled)
}
