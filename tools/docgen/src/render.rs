//! Drawing a document page and distorting it like a phone photo or a scan.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use document_ocr::{
    mrz::MrzFormat,
    ocr::geometry::{Homography, Point},
};
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
    /// Phone captures: the page lies on a desk and is photographed at an angle (`None` for scans).
    pub capture: Option<Capture>,
}

/// How a phone photographs a page lying on a desk: the page scaled by [`Distortion::scale`] into a frame with
/// the desk around it, its corners moved by perspective, one edge possibly foreshortened (keystone), the light
/// uneven; then blurred by a σ drawn from `blur`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Capture {
    /// Each corner moves up to this share of the page's width and height, independently.
    pub perspective: f32,
    /// One edge, chosen at random, is this much shorter (a share of its length, drawn from the range).
    pub keystone: (f32, f32),
    /// Blur σ range, pixels (replaces [`Distortion::blur_sigma`]).
    pub blur: (f32, f32),
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
        capture: None,
    };
    /// A decent scan or photo: ±2°, slight blur and noise, 85–115 % scale, JPEG 85.
    pub const MILD: Self = Self {
        level: "mild",
        max_rotation_deg: 2.0,
        blur_sigma: 0.6,
        noise_sigma: 4.0,
        scale: (0.85, 1.15),
        jpeg_quality: 85,
        capture: None,
    };
    /// A poor photo: ±5°, blur, noise, 70–120 % scale, JPEG 60.
    pub const STRONG: Self = Self {
        level: "strong",
        max_rotation_deg: 5.0,
        blur_sigma: 1.1,
        noise_sigma: 9.0,
        scale: (0.7, 1.2),
        jpeg_quality: 60,
        capture: None,
    };
    /// A phone photo of the page on a dark desk: perspective (each corner moved up to 3 % of the page), ±5°,
    /// the page at 60–75 % of its print size, blur σ 1.2–1.8, noise σ 12, JPEG 70.
    pub const PHONE: Self = Self {
        level: "phone",
        max_rotation_deg: 5.0,
        blur_sigma: 0.0,
        noise_sigma: 12.0,
        scale: (0.6, 0.75),
        jpeg_quality: 70,
        capture: Some(Capture {
            perspective: 0.03,
            keystone: (0.0, 0.0),
            blur: (1.2, 1.8),
        }),
    };
    /// The phone held at a slant: one page edge 16–23 % shorter than the opposite one, ±4°, on the desk.
    pub const KEYSTONE: Self = Self {
        level: "keystone",
        max_rotation_deg: 4.0,
        blur_sigma: 0.0,
        noise_sigma: 6.0,
        scale: (0.75, 0.9),
        jpeg_quality: 80,
        capture: Some(Capture {
            perspective: 0.01,
            keystone: (0.16, 0.23),
            blur: (0.6, 1.0),
        }),
    };

    /// Every level, scans first.
    pub const ALL: [Self; 5] = [
        Self::CLEAN,
        Self::MILD,
        Self::STRONG,
        Self::PHONE,
        Self::KEYSTONE,
    ];

    /// By name.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.level == name)
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
        bilinear(img, sx, sy)
    })
}

/// A dark desk: wood-like grain over a base colour, under light that falls off across the frame.
fn desk(w: u32, h: u32, rng: &mut StdRng) -> RgbImage {
    let base = [
        rng.random_range(35..80u8),
        rng.random_range(28..60u8),
        rng.random_range(20..50u8),
    ];
    let (period, phase, tilt) = (
        rng.random_range(6.0..18.0f32),
        rng.random_range(0.0..std::f32::consts::TAU),
        rng.random_range(-0.3..0.3f32),
    );
    RgbImage::from_fn(w, h, |x, y| {
        let (x, y) = (x as f32, y as f32);
        let grain = ((x + tilt * y) / period + (y / 97.0).sin() * 2.0 + phase).sin() * 9.0;
        Rgb(base.map(|c| (f32::from(c) + grain).clamp(0.0, 255.0) as u8))
    })
}

/// The page photographed on a desk (see [`Capture`]).
fn photograph(page: &RgbImage, d: Distortion, c: Capture, rng: &mut StdRng) -> RgbImage {
    let f = rng.random_range(d.scale.0..=d.scale.1);
    let page = imageops::resize(
        page,
        (page.width() as f32 * f) as u32,
        (page.height() as f32 * f) as u32,
        imageops::FilterType::Triangle,
    );
    let (pw, ph) = (f64::from(page.width()), f64::from(page.height()));
    let (mx, my) = (
        pw * rng.random_range(0.08..0.2f64),
        ph * rng.random_range(0.1..0.25f64),
    );
    let (w, h) = ((pw + 2.0 * mx) as u32, (ph + 2.0 * my) as u32);
    let mut corners: [Point; 4] = [(mx, my), (mx + pw, my), (mx + pw, my + ph), (mx, my + ph)];
    if c.keystone.1 > 0.0 {
        // Pull both ends of one edge towards its middle.
        let k = f64::from(rng.random_range(c.keystone.0..=c.keystone.1));
        let edge = rng.random_range(0..4usize);
        let (a, b) = (corners[edge], corners[(edge + 1) % 4]);
        let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
        let pull = |p: Point| (p.0 + (mid.0 - p.0) * k, p.1 + (mid.1 - p.1) * k);
        corners[edge] = pull(a);
        corners[(edge + 1) % 4] = pull(b);
    }
    let deg = f64::from(rng.random_range(-d.max_rotation_deg..=d.max_rotation_deg));
    let (s, cos) = deg.to_radians().sin_cos();
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let jitter = f64::from(c.perspective);
    for p in &mut corners {
        let (dx, dy) = (p.0 - cx, p.1 - cy);
        *p = (
            cx + cos * dx - s * dy + pw * jitter * rng.random_range(-1.0..=1.0),
            cy + s * dx + cos * dy + ph * jitter * rng.random_range(-1.0..=1.0),
        );
    }
    let rect = [(0.0, 0.0), (pw, 0.0), (pw, ph), (0.0, ph)];
    let mut frame = desk(w, h, rng);
    let Some(to_page) = Homography::between(corners, rect) else {
        return frame;
    };
    // Light from one side: 0.8–1.05 of full brightness across the frame.
    let (lx, ly) = (
        rng.random_range(-1.0..1.0f32),
        rng.random_range(-1.0..1.0f32),
    );
    for (x, y, px) in frame.enumerate_pixels_mut() {
        let (u, v) = to_page
            .apply((f64::from(x) + 0.5, f64::from(y) + 0.5))
            .unwrap_or((-1.0, -1.0));
        if u >= 0.0 && v >= 0.0 && u < pw - 1.0 && v < ph - 1.0 {
            *px = bilinear(&page, u as f32, v as f32);
        }
        let light =
            0.925 + 0.125 * (lx * (x as f32 / w as f32 - 0.5) + ly * (y as f32 / h as f32 - 0.5));
        px.0 = px.0.map(|v| (f32::from(v) * light).clamp(0.0, 255.0) as u8);
    }
    let sigma = rng.random_range(c.blur.0..=c.blur.1);
    imageops::blur(&frame, sigma)
}

fn bilinear(img: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (w, h) = img.dimensions();
    let (x0, y0) = ((x.floor() as u32).min(w - 1), (y.floor() as u32).min(h - 1));
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |xx, yy| img.get_pixel(xx, yy).0.map(f32::from);
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    Rgb(std::array::from_fn(|k| {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bottom = c[k] + (d[k] - c[k]) * fx;
        (top + (bottom - top) * fy).round() as u8
    }))
}

fn distort(mut img: RgbImage, d: Distortion, rng: &mut StdRng) -> Vec<u8> {
    if let Some(c) = d.capture {
        img = photograph(&img, d, c, rng);
    } else if d.max_rotation_deg > 0.0 {
        let deg = rng.random_range(-d.max_rotation_deg..=d.max_rotation_deg);
        img = rotate(&img, deg, Rgb([200, 200, 195]));
    }
    if d.capture.is_none() && (d.scale.0 != 1.0 || d.scale.1 != 1.0) {
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
    add_noise(&mut img, d.noise_sigma, rng);
    jpeg(&img, d.jpeg_quality)
}

/// Gaussian noise of σ grey levels, the same on the three channels (sensor luma noise).
pub(crate) fn add_noise(img: &mut RgbImage, sigma: f32, rng: &mut StdRng) {
    if sigma > 0.0 {
        for p in img.pixels_mut() {
            let n = gaussian(rng) * sigma;
            for c in p.0.iter_mut() {
                *c = (f32::from(*c) + n).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// `img` as JPEG.
pub(crate) fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(img);
    out
}
