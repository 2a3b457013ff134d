//! Preparing pixels for Tesseract: grey with the contrast stretched, turned upright, straightened and scaled.
//!
//! Everything here runs on every document before OCR, so it works on raw rows rather than per-pixel accessors,
//! converts only the rows it needs, and straightens and scales in a single resampling pass.

use image::{GrayImage, Luma, RgbImage, imageops};

/// Grey (Rec. 709 luma) of the rows from `top` down, contrast stretched between their 1st and 99th percentile.
pub fn grey_rows(rgb: &RgbImage, top: u32) -> GrayImage {
    let (w, h) = rgb.dimensions();
    let top = top.min(h);
    let start = top as usize * w as usize * 3;
    let grey: Vec<u8> = rgb.as_raw()[start..]
        .chunks_exact(3)
        .map(|p| {
            // Rec. 709 weights in 1/256ths.
            let (r, g, b) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
            ((54 * r + 183 * g + 19 * b + 128) >> 8) as u8
        })
        .collect();
    let mut grey = GrayImage::from_raw(w, h - top, grey).unwrap_or_default();
    stretch(&mut grey);
    grey
}

/// The whole page, grey and stretched.
pub fn normalise(rgb: &RgbImage) -> GrayImage {
    grey_rows(rgb, 0)
}

/// Stretches contrast so the 1st percentile becomes black and the 99th white: faint or grey-on-grey scans
/// reach the contrast the MRZ model was trained on.
pub fn stretch(grey: &mut GrayImage) {
    let mut hist = [0u64; 256];
    for p in grey.as_raw() {
        hist[usize::from(*p)] += 1;
    }
    let total: u64 = hist.iter().sum();
    let quantile = |q: f64| {
        let target = (total as f64 * q) as u64;
        let mut acc = 0;
        for (v, n) in hist.iter().enumerate() {
            acc += n;
            if acc >= target {
                return v as i32;
            }
        }
        255
    };
    let (lo, hi) = (quantile(0.01), quantile(0.99));
    if hi - lo <= 10 {
        return;
    }
    let lut: Vec<u8> = (0..256)
        .map(|v| ((v - lo) * 255 / (hi - lo)).clamp(0, 255) as u8)
        .collect();
    for p in grey.iter_mut() {
        *p = lut[usize::from(*p)];
    }
}

/// The page turned clockwise by a multiple of 90°.
pub fn rotated(grey: &GrayImage, quarter_turns: u8) -> GrayImage {
    match quarter_turns % 4 {
        1 => imageops::rotate90(grey),
        2 => imageops::rotate180(grey),
        3 => imageops::rotate270(grey),
        _ => grey.clone(),
    }
}

/// The rows from `from_percent` % of the height down.
pub fn lower_part(grey: &GrayImage, from_percent: u32) -> GrayImage {
    let (w, h) = grey.dimensions();
    let top = h * from_percent.min(100) / 100;
    imageops::crop_imm(grey, 0, top, w, h - top).to_image()
}

/// Averages `k`×`k` blocks: a cheap, alias-free shrink by an integer factor.
pub fn shrink(img: &GrayImage, k: u32) -> GrayImage {
    if k <= 1 {
        return img.clone();
    }
    let (w, h) = img.dimensions();
    let (sw, sh) = ((w / k).max(1), (h / k).max(1));
    let src = img.as_raw();
    let mut sums = vec![0u32; sw as usize];
    let mut out = Vec::with_capacity((sw * sh) as usize);
    for by in 0..sh {
        sums.iter_mut().for_each(|s| *s = 0);
        for y in by * k..((by + 1) * k).min(h) {
            let row = &src[(y * w) as usize..((y + 1) * w) as usize];
            for (x, v) in row.iter().take((sw * k) as usize).enumerate() {
                sums[x / k as usize] += u32::from(*v);
            }
        }
        out.extend(sums.iter().map(|s| (s / (k * k)) as u8));
    }
    GrayImage::from_raw(sw, sh, out).unwrap_or_default()
}

/// `img` with its edges sharpened (an unsharp mask over a 3×3 binomial blur, `amount` of the difference
/// added back): a soft phone photo's strokes regain the contrast the MRZ model was trained on.
pub fn sharpen(img: &GrayImage, amount: f32) -> GrayImage {
    let (w, h) = img.dimensions();
    if w < 3 || h < 3 {
        return img.clone();
    }
    let src = img.as_raw();
    let (wi, hi) = (w as usize, h as usize);
    let mut out = src.clone();
    const K: [i32; 3] = [1, 2, 1];
    for y in 1..hi - 1 {
        for x in 1..wi - 1 {
            let mut sum = 0i32;
            for (dy, ky) in K.iter().enumerate() {
                let row = (y + dy - 1) * wi;
                for (dx, kx) in K.iter().enumerate() {
                    sum += ky * kx * i32::from(src[row + x + dx - 1]);
                }
            }
            let v = f32::from(src[y * wi + x]);
            let blurred = sum as f32 / 16.0;
            out[y * wi + x] = (v + amount * (v - blurred)).round().clamp(0.0, 255.0) as u8;
        }
    }
    GrayImage::from_raw(w, h, out).unwrap_or_else(|| img.clone())
}

/// The skew of the text on `img`, in degrees within ±6° (0.5° steps): the angle whose horizontal projection is
/// the most peaked, i.e. lines of text aligned with the rows. Measured on a copy about 400 px wide.
pub fn skew_angle(img: &GrayImage) -> f32 {
    let small = shrink(img, (img.width() / 400).max(1));
    let (sw, sh) = small.dimensions();
    let ink: Vec<(f32, f32)> = small
        .enumerate_pixels()
        .filter(|(_, _, p)| p[0] < 110)
        .map(|(x, y, _)| (x as f32 - sw as f32 / 2.0, y as f32 - sh as f32 / 2.0))
        .collect();
    if ink.len() < 50 {
        return 0.0;
    }
    let peakedness = |deg: f32| {
        let (s, c) = deg.to_radians().sin_cos();
        let mut rows = vec![0f32; (sh as usize) * 2 + 1];
        for (x, y) in &ink {
            let r = (-s * x + c * y + sh as f32 + 0.5) as i64;
            if let Some(row) = usize::try_from(r).ok().and_then(|r| rows.get_mut(r)) {
                *row += 1.0;
            }
        }
        rows.iter().map(|v| v * v).sum::<f32>()
    };
    let best = (-12..=12)
        .map(|i| i as f32 * 0.5)
        .max_by(|a, b| peakedness(*a).total_cmp(&peakedness(*b)))
        .unwrap_or(0.0);
    if best.abs() < 0.25 { 0.0 } else { best }
}

/// `img` rotated by `deg` about its centre and scaled to `width` px wide, in one bilinear pass, white outside.
/// Shrinks by more than 2× first average whole blocks, so fine print does not alias.
pub fn straighten(img: &GrayImage, deg: f32, width: u32) -> GrayImage {
    let k = (img.width() / width.max(1) / 2).max(1);
    let shrunk;
    let src = if k > 1 {
        shrunk = shrink(img, k);
        &shrunk
    } else {
        img
    };
    let (w, h) = src.dimensions();
    if w < 2 || h < 2 {
        return GrayImage::from_pixel(width.max(1), 1, Luma([255]));
    }
    let f = width.max(1) as f32 / w as f32;
    let (ow, oh) = (width.max(1), ((h as f32 * f).round() as u32).max(1));
    if deg == 0.0 && ow == w {
        return src.clone();
    }
    let (s, c) = deg.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let (ocx, ocy) = (ow as f32 / 2.0, oh as f32 / 2.0);
    // Source coordinates step by a fixed amount per output pixel, so they are walked in 16.16 fixed point
    // rather than recomputed; the bilinear weights are the top 8 bits of the fraction.
    const ONE: f32 = 65536.0;
    let (step_x, step_y) = ((c / f * ONE) as i64, (s / f * ONE) as i64);
    let (max_x, max_y) = (i64::from(w - 1) << 16, i64::from(h - 1) << 16);
    let raw = src.as_raw();
    let wi = w as usize;
    let mut out = Vec::with_capacity((ow * oh) as usize);
    for y in 0..oh {
        let (dx, dy) = ((0.5 - ocx) / f, (y as f32 + 0.5 - ocy) / f);
        let mut sx = ((c * dx - s * dy + cx - 0.5) * ONE) as i64;
        let mut sy = ((s * dx + c * dy + cy - 0.5) * ONE) as i64;
        for _ in 0..ow {
            if sx < 0 || sy < 0 || sx >= max_x || sy >= max_y {
                out.push(255);
            } else {
                let at = (sy >> 16) as usize * wi + (sx >> 16) as usize;
                let (fx, fy) = (((sx >> 8) & 0xFF) as u32, ((sy >> 8) & 0xFF) as u32);
                let p = |i: usize| u32::from(raw[i]);
                let top = p(at) * (256 - fx) + p(at + 1) * fx;
                let bottom = p(at + wi) * (256 - fx) + p(at + wi + 1) * fx;
                out.push(((top * (256 - fy) + bottom * fy + (1 << 15)) >> 16) as u8);
            }
            sx += step_x;
            sy += step_y;
        }
    }
    GrayImage::from_raw(ow, oh, out).unwrap_or_else(|| GrayImage::from_pixel(ow, oh, Luma([255])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// White with dark horizontal stripes (3 px of every 12 rows), like lines of text.
    fn stripes(w: u32, h: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            Luma([if y % 12 < 3 && x > w / 10 && x < w * 9 / 10 {
                10
            } else {
                240
            }])
        })
    }

    #[test]
    fn grey_rows_takes_the_lower_rows_and_stretches_them() {
        let rgb = RgbImage::from_fn(40, 10, |x, _| {
            let v = if x < 20 { 100 } else { 150 };
            image::Rgb([v, v, v])
        });
        let g = grey_rows(&rgb, 6);
        assert_eq!(g.dimensions(), (40, 4));
        assert_eq!((g.get_pixel(0, 0)[0], g.get_pixel(39, 3)[0]), (0, 255));
    }

    #[test]
    fn a_skewed_page_is_measured_and_straightened() {
        let page = stripes(800, 240);
        assert_eq!(skew_angle(&page), 0.0);
        let tilted = straighten(&page, 3.0, 800);
        let angle = skew_angle(&tilted);
        assert!((angle + 3.0).abs() <= 0.5, "{angle}");
        let back = straighten(&tilted, angle, 400);
        assert_eq!(back.width(), 400);
        assert_eq!(skew_angle(&back), 0.0);
    }

    #[test]
    fn straighten_scales_to_the_width_asked() {
        let page = stripes(3000, 600);
        let small = straighten(&page, 0.0, 800);
        assert_eq!(small.dimensions(), (800, 160));
        let big = straighten(&page, 1.0, 1200);
        assert_eq!(big.dimensions(), (1200, 240));
    }
}
