//! Alignment: a least-squares similarity transform (rotation, uniform scale, translation) maps the five
//! landmarks onto the embedder's template; the crop is sampled bilinearly through its inverse.

use image::{Rgb, RgbImage};

/// A 2×3 affine matrix `[a, -b, tx; b, a, ty]`: source → crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// scale·cos θ
    pub a: f64,
    /// scale·sin θ
    pub b: f64,
    /// x translation
    pub tx: f64,
    /// y translation
    pub ty: f64,
}

impl Similarity {
    /// The closed-form least-squares fit of `dst ≈ T(src)` (Umeyama without reflection, in 2-D).
    pub fn fit(src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> Option<Self> {
        let n = src.len() as f64;
        let mean = |p: &[[f32; 2]; 5]| {
            let (sx, sy) = p.iter().fold((0.0, 0.0), |(x, y), q| {
                (x + f64::from(q[0]), y + f64::from(q[1]))
            });
            (sx / n, sy / n)
        };
        let (msx, msy) = mean(src);
        let (mdx, mdy) = mean(dst);
        let (mut dot, mut cross, mut var) = (0.0, 0.0, 0.0);
        for (s, d) in src.iter().zip(dst) {
            let (sx, sy) = (f64::from(s[0]) - msx, f64::from(s[1]) - msy);
            let (dx, dy) = (f64::from(d[0]) - mdx, f64::from(d[1]) - mdy);
            dot += sx * dx + sy * dy;
            cross += sx * dy - sy * dx;
            var += sx * sx + sy * sy;
        }
        if var < 1e-9 {
            return None;
        }
        let (a, b) = (dot / var, cross / var);
        Some(Self {
            a,
            b,
            tx: mdx - (a * msx - b * msy),
            ty: mdy - (b * msx + a * msy),
        })
    }

    /// Maps a source point into the crop.
    pub fn apply(&self, p: [f32; 2]) -> [f64; 2] {
        let (x, y) = (f64::from(p[0]), f64::from(p[1]));
        [
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        ]
    }
}

/// Samples the `side`×`side` crop: each crop pixel is looked up in the source through the inverse transform
/// (bilinear; outside the image counts as black, like OpenCV's `warpAffine` with a constant border).
pub fn warp(img: &RgbImage, t: &Similarity, side: u32) -> RgbImage {
    let det = t.a * t.a + t.b * t.b;
    // Inverse of [a -b; b a] is [a b; -b a] / det.
    let (ia, ib) = (t.a / det, t.b / det);
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let raw = img.as_raw();
    let mut out = RgbImage::new(side, side);
    for v in 0..side {
        for u in 0..side {
            let (du, dv) = (f64::from(u) - t.tx, f64::from(v) - t.ty);
            let sx = ia * du + ib * dv;
            let sy = -ib * du + ia * dv;
            let (x0, y0) = (sx.floor() as i64, sy.floor() as i64);
            let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
            let mut px = [0.0f64; 3];
            for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
                for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
                    let (x, y) = (x0 + dx, y0 + dy);
                    if x < 0 || y < 0 || x >= w || y >= h {
                        continue;
                    }
                    let i = ((y * w + x) * 3) as usize;
                    for c in 0..3 {
                        px[c] += wx * wy * f64::from(raw[i + c]);
                    }
                }
            }
            out.put_pixel(u, v, Rgb(px.map(|c| c.round().clamp(0.0, 255.0) as u8)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: [[f32; 2]; 5] = [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ];

    #[test]
    fn recovers_a_known_similarity() {
        // Source = template rotated by 30°, scaled ×2, shifted: the fit must map it back exactly.
        let (c, s) = (
            30f64.to_radians().cos() * 2.0,
            30f64.to_radians().sin() * 2.0,
        );
        let src = TEMPLATE.map(|[x, y]| {
            let (x, y) = (f64::from(x), f64::from(y));
            [
                (c * x - s * y + 100.0) as f32,
                (s * x + c * y + 40.0) as f32,
            ]
        });
        let t = Similarity::fit(&src, &TEMPLATE).unwrap_or(Similarity {
            a: 0.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        });
        for (p, q) in src.iter().zip(TEMPLATE) {
            let m = t.apply(*p);
            assert!((m[0] - f64::from(q[0])).abs() < 1e-3 && (m[1] - f64::from(q[1])).abs() < 1e-3);
        }
        assert!((t.a.hypot(t.b) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn degenerate_landmarks_do_not_fit() {
        assert!(Similarity::fit(&[[3.0, 3.0]; 5], &TEMPLATE).is_none());
    }

    #[test]
    fn identity_warp_copies_pixels() {
        let img = RgbImage::from_fn(8, 8, |x, y| Rgb([x as u8 * 10, y as u8 * 10, 7]));
        let t = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        let out = warp(&img, &t, 8);
        assert_eq!(out, img);
        let shifted = warp(&img, &Similarity { tx: 2.0, ..t }, 8);
        assert_eq!(
            shifted.get_pixel(0, 0),
            &Rgb([0, 0, 0]),
            "outside the source is black"
        );
        assert_eq!(shifted.get_pixel(2, 0), img.get_pixel(0, 0));
    }
}
