//! Pages without an MRZ, as users upload them by mistake or on purpose: blank paper, sensor noise, a landscape
//! photo. The reader must answer these quickly with `mrz_not_found`, without stalling its workers.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;

use crate::render::{add_noise, jpeg};

/// Kinds of junk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Junk {
    /// An off-white sheet photographed under uneven light, 1200×900.
    Blank,
    /// Uniform random colour noise, 600×400.
    NoiseSmall,
    /// Uniform random colour noise, 1200×800.
    NoiseLarge,
    /// A synthetic landscape (sky, hills, textured ground), 1600×1000.
    Landscape,
}

impl Junk {
    /// Every kind.
    pub const ALL: [Self; 4] = [
        Self::Blank,
        Self::NoiseSmall,
        Self::NoiseLarge,
        Self::Landscape,
    ];
}

/// One junk page as JPEG, deterministic per seed.
pub fn junk(kind: Junk, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7a_4b);
    let img = match kind {
        Junk::Blank => {
            let mut img = RgbImage::from_fn(1200, 900, |x, y| {
                let v = 225.0 - 25.0 * (x as f32 / 1200.0) - 10.0 * (y as f32 / 900.0);
                Rgb([v as u8, v as u8, (v - 6.0) as u8])
            });
            add_noise(&mut img, 5.0, &mut rng);
            img
        }
        Junk::NoiseSmall | Junk::NoiseLarge => {
            let (w, h) = if kind == Junk::NoiseSmall {
                (600, 400)
            } else {
                (1200, 800)
            };
            let mut img = RgbImage::new(w, h);
            for p in img.pixels_mut() {
                *p = Rgb([rng.random(), rng.random(), rng.random()]);
            }
            img
        }
        Junk::Landscape => landscape(&mut rng),
    };
    jpeg(&img, 85)
}

/// Sky gradient, a sun, two ranges of hills and grass-like ground: photo statistics without text.
fn landscape(rng: &mut StdRng) -> RgbImage {
    let (w, h) = (1600u32, 1000u32);
    let (f1, f2, p1, p2) = (
        rng.random_range(0.002..0.006f32),
        rng.random_range(0.008..0.02f32),
        rng.random_range(0.0..6.3f32),
        rng.random_range(0.0..6.3f32),
    );
    let (sx, sy) = (
        rng.random_range(200..1400) as f32,
        rng.random_range(80..300) as f32,
    );
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let far = 450.0 + 80.0 * (xf * f1 + p1).sin() + 25.0 * (xf * f2 + p2).sin();
        let near = 650.0 + 60.0 * (xf * f1 * 1.7 + p2).sin() + 15.0 * (xf * f2 * 2.3).sin();
        if yf > near {
            let g = 90.0 + 30.0 * ((xf * 0.9).sin() * (yf * 1.3).cos());
            Rgb([(g * 0.5) as u8, g as u8, (g * 0.3) as u8])
        } else if yf > far {
            let t = (yf - far) / 200.0;
            Rgb([
                (80.0 + 20.0 * t) as u8,
                (95.0 + 15.0 * t) as u8,
                (120.0 - 10.0 * t) as u8,
            ])
        } else if (xf - sx).hypot(yf - sy) < 45.0 {
            Rgb([255, 245, 210])
        } else {
            let t = yf / far;
            Rgb([
                (110.0 + 90.0 * t) as u8,
                (160.0 + 60.0 * t) as u8,
                (235.0 - 10.0 * t) as u8,
            ])
        }
    });
    add_noise(&mut img, 4.0, rng);
    img
}
