//! Drawing a document page and distorting it like a phone photo or a scan.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use document_ocr::mrz::MrzFormat;
use image::{Rgb, RgbImage, imageops};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;

use crate::Identity;

/// Where Debian's `fonts-ocr-b` puts OCR-B.
pub const FONT_PATH: &str = "/usr/share/fonts/opentype/ocr-b/OCRB.otf";

/// Loads OCR-B (from `DOCGEN_FONT` or [`FONT_PATH`]).
pub fn load_font() -> Result<FontVec, String> {
    let path = std::env::var("DOCGEN_FONT").unwrap_or_else(|_| FONT_PATH.to_owned());
    let bytes =
        std::fs::read(&path).map_err(|e| format!("{path}: {e} (install Debian's fonts-ocr-b)"))?;
    FontVec::try_from_vec(bytes).map_err(|e| format!("{path}: {e}"))
}

/// How a page is degraded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distortion {
    /// Level name (`clean`, `mild`, `strong`).
    pub level: &'static str,
    /// Rotation, degrees (±).
    pub max_rotation_deg: f32,
    /// Gaussian blur σ, pixels.
    pub blur_sigma: f32,
    /// Gaussian noise σ, grey levels.
    pub noise_sigma: f32,
    /// Scale range (the page is resized by a factor drawn from it).
    pub scale: (f32, f32),
    /// JPEG quality.
    pub jpeg_quality: u8,
}

impl Distortion {
    /// No distortion but JPEG at quality 95.
    pub const CLEAN: Self = Self {
        level: "clean",
        max_rotation_deg: 0.0,
        blur_sigma: 0.0,
        noise_sigma: 0.0,
        scale: (1.0, 1.0),
        jpeg_quality: 95,
    };
    /// A decent scan or photo: ±2°, slight blur and noise, 85–115 % scale, JPEG 85.
    pub const MILD: Self = Self {
        level: "mild",
        max_rotation_deg: 2.0,
        blur_sigma: 0.6,
        noise_sigma: 4.0,
        scale: (0.85, 1.15),
        jpeg_quality: 85,
    };
    /// A poor photo: ±5°, blur, noise, 70–120 % scale, JPEG 60.
    pub const STRONG: Self = Self {
        level: "strong",
        max_rotation_deg: 5.0,
        blur_sigma: 1.1,
        noise_sigma: 9.0,
        scale: (0.7, 1.2),
        jpeg_quality: 60,
    };

    /// By name.
    pub fn named(name: &str) -> Option<Self> {
        [Self::CLEAN, Self::MILD, Self::STRONG]
            .into_iter()
            .find(|d| d.level == name)
    }
}

/// Page size in pixels (12 px per mm) of each format's document.
fn page(format: MrzFormat) -> (u32, u32) {
    match format {
        MrzFormat::Td1 => (1028, 648),
        MrzFormat::Td2 | MrzFormat::MrvB => (1260, 888),
        MrzFormat::Td3 | MrzFormat::MrvA => (1500, 1056),
    }
}

fn blend(img: &mut RgbImage, x: i32, y: i32, ink: [u8; 3], alpha: f32) {
    if x < 0 || y < 0 || x >= img.width() as i32 || y >= img.height() as i32 {
        return;
    }
    let p = img.get_pixel_mut(x as u32, y as u32);
    for c in 0..3 {
        p[c] = (f32::from(p[c]) * (1.0 - alpha) + f32::from(ink[c]) * alpha).round() as u8;
    }
}

/// Draws `text` with its first glyph's origin at (x, baseline); a fixed `pitch` (MRZ) or the font's advances.
fn text(
    img: &mut RgbImage,
    font: &FontVec,
    s: &str,
    (x, baseline): (f32, f32),
    size: f32,
    pitch: Option<f32>,
    ink: [u8; 3],
) {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut pen = x;
    for ch in s.chars() {
        let id = scaled.glyph_id(ch);
        let glyph = id.with_scale_and_position(PxScale::from(size), point(pen, baseline));
        if let Some(outline) = font.outline_glyph(glyph) {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, cov| {
                blend(
                    img,
                    b.min.x as i32 + gx as i32,
                    b.min.y as i32 + gy as i32,
                    ink,
                    cov.min(1.0),
                )
            });
        }
        pen += pitch.unwrap_or_else(|| scaled.h_advance(id));
    }
}

/// Renders the page of an identity and its MRZ lines, distorted, as JPEG; with `photo`, that photo (e.g. a face
/// for face-match) fills the photo area instead of the drawn placeholder.
pub fn render(
    font: &FontVec,
    format: MrzFormat,
    id: &Identity,
    lines: &[String],
    d: Distortion,
    seed: u64,
    photo: Option<&RgbImage>,
) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_d0c5);
    let (w, h) = page(format);
    // Security-print background: a pastel gradient with guilloche-like waves.
    let tint = [
        rng.random_range(200..240u8),
        rng.random_range(215..245u8),
        rng.random_range(205..240u8),
    ];
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let wave = ((x as f32 / 23.0 + (y as f32 / 41.0).sin() * 3.0 + phase).sin() * 6.0) as i16;
        let g = (y * 20 / h) as i16;
        Rgb(tint.map(|c| (i16::from(c) + wave + g).clamp(0, 255) as u8))
    });
    // Photo area with a face-like shape (kept abstract: the OCR must not care).
    let (px, py, pw, ph) = (w / 20, h / 6, w * 22 / 100, h * 45 / 100);
    if let Some(photo) = photo {
        // Cover the area, cropping the photo's longer side around its centre, as ID photos are cut.
        let (iw, ih) = photo.dimensions();
        let f = (pw as f32 / iw as f32).max(ph as f32 / ih as f32);
        let scaled = imageops::resize(
            photo,
            ((iw as f32 * f).ceil() as u32).max(pw),
            ((ih as f32 * f).ceil() as u32).max(ph),
            imageops::FilterType::Triangle,
        );
        let (sx, sy) = ((scaled.width() - pw) / 2, (scaled.height() - ph) / 2);
        let cut = imageops::crop_imm(&scaled, sx, sy, pw, ph).to_image();
        imageops::replace(&mut img, &cut, i64::from(px), i64::from(py));
    }
    for y in (py..py + ph).filter(|_| photo.is_none()) {
        for x in px..px + pw {
            let (dx, dy) = (
                (x - px) as f32 / pw as f32 - 0.5,
                (y - py) as f32 / ph as f32 - 0.42,
            );
            let head = dx * dx / 0.09 + dy * dy / 0.16 < 1.0;
            let shoulders = dy > 0.3 && dx.abs() < 0.45;
            let v = if head {
                150
            } else if shoulders {
                70
            } else {
                215
            };
            img.put_pixel(x, y, Rgb([v, v - 10, v - 20]));
        }
    }
    let ink = [25, 25, 35];
    let title = match format {
        MrzFormat::Td3 => "PASSPORT  PASS  PASSEPORT",
        MrzFormat::MrvA | MrzFormat::MrvB => "VISA",
        _ => "IDENTITY CARD  CARTE D IDENTITE",
    };
    let fs = h as f32 / 28.0;
    let x0 = (px + pw) as f32 + w as f32 * 0.05;
    text(
        &mut img,
        font,
        title,
        (x0, h as f32 * 0.1),
        fs * 1.2,
        None,
        ink,
    );
    let fields = [
        ("Surname / Nom", id.surname.clone()),
        ("Given names / Prenoms", id.given_names.clone()),
        ("Nationality", id.nationality.clone()),
        (
            "Date of birth",
            id.birth_date.format("%d %b %Y").to_string().to_uppercase(),
        ),
        ("Sex", id.sex.to_string().replace('<', "X")),
        (
            "Date of expiry",
            id.expiry_date.format("%d %b %Y").to_string().to_uppercase(),
        ),
        ("Document no.", id.document_number.clone()),
    ];
    for (i, (label, value)) in fields.iter().enumerate() {
        let y = h as f32 * (0.2 + i as f32 * 0.075);
        text(
            &mut img,
            font,
            label,
            (x0, y),
            fs * 0.6,
            None,
            [90, 90, 110],
        );
        text(&mut img, font, value, (x0, y + fs * 0.95), fs, None, ink);
    }
    // The MRZ: ICAO's 2.54 mm character pitch, lines about 4.2 mm apart, in the bottom band.
    let pitch = 30.5;
    let size = 40.0;
    let n = lines.len() as f32;
    let left = (w as f32 - pitch * lines[0].len() as f32) / 2.0;
    for (i, line) in lines.iter().enumerate() {
        let baseline = h as f32 - h as f32 * 0.06 - (n - 1.0 - i as f32) * 52.0;
        text(
            &mut img,
            font,
            line,
            (left, baseline),
            size,
            Some(pitch),
            [10, 10, 10],
        );
    }
    distort(img, d, &mut rng)
}

fn gaussian(rng: &mut StdRng) -> f32 {
    let (u1, u2): (f32, f32) = (rng.random_range(1e-6..1.0), rng.random_range(0.0..1.0));
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn rotate(img: &RgbImage, deg: f32, fill: Rgb<u8>) -> RgbImage {
    let (w, h) = img.dimensions();
    let (s, c) = deg.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let (sx, sy) = (c * dx + s * dy + cx, -s * dx + c * dy + cy);
        if sx < 0.0 || sy < 0.0 || sx >= (w - 1) as f32 || sy >= (h - 1) as f32 {
            return fill;
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let p = |xx, yy| img.get_pixel(xx, yy).0.map(f32::from);
        let (a, b, cc, d) = (p(x0, y0), p(x0 + 1, y0), p(x0, y0 + 1), p(x0 + 1, y0 + 1));
        Rgb(std::array::from_fn(|k| {
            let top = a[k] + (b[k] - a[k]) * fx;
            let bottom = cc[k] + (d[k] - cc[k]) * fx;
            (top + (bottom - top) * fy).round() as u8
        }))
    })
}

fn distort(mut img: RgbImage, d: Distortion, rng: &mut StdRng) -> Vec<u8> {
    if d.max_rotation_deg > 0.0 {
        let deg = rng.random_range(-d.max_rotation_deg..=d.max_rotation_deg);
        img = rotate(&img, deg, Rgb([200, 200, 195]));
    }
    if d.scale.0 != 1.0 || d.scale.1 != 1.0 {
        let f = rng.random_range(d.scale.0..=d.scale.1);
        let (w, h) = img.dimensions();
        img = imageops::resize(
            &img,
            (w as f32 * f) as u32,
            (h as f32 * f) as u32,
            imageops::FilterType::Triangle,
        );
    }
    if d.blur_sigma > 0.0 {
        img = imageops::blur(&img, d.blur_sigma);
    }
    if d.noise_sigma > 0.0 {
        for p in img.pixels_mut() {
            let n = gaussian(rng) * d.noise_sigma;
            for c in p.0.iter_mut() {
                *c = (f32::from(*c) + n).clamp(0.0, 255.0) as u8;
            }
        }
    }
    let mut out = Vec::new();
    let _ = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, d.jpeg_quality)
        .encode_image(&img);
    out
}
