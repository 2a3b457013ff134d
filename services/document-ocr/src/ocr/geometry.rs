//! Plane geometry for pages photographed at an angle: the projective map (homography) between a page's four
//! corners in the photo and an upright rectangle, and resampling through it.
//!
//! The reader uses it to rectify a located page before looking for the MRZ; `tools/docgen` uses the same map to
//! synthesise phone captures, so the two cannot drift apart in what "perspective" means.

use image::{GrayImage, Luma};

/// A point in pixel coordinates (x right, y down).
pub type Point = (f64, f64);

/// A 3×3 projective map, `h[8]` normalised to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography([f64; 9]);

impl Homography {
    /// The map taking each `from[i]` to `to[i]`, or `None` when three of the points are collinear (no unique
    /// map exists).
    pub fn between(from: [Point; 4], to: [Point; 4]) -> Option<Self> {
        // Eight equations in h0..h7 (h8 = 1): for each pair, u = (h0 x + h1 y + h2) / (h6 x + h7 y + 1), and v
        // likewise with h3..h5.
        let mut a = [[0f64; 9]; 8];
        for (i, ((x, y), (u, v))) in from.iter().zip(to.iter()).enumerate() {
            a[2 * i] = [*x, *y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, *u];
            a[2 * i + 1] = [0.0, 0.0, 0.0, *x, *y, 1.0, -v * x, -v * y, *v];
        }
        let h = solve(a)?;
        Some(Self([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0]))
    }

    /// The map from the upright rectangle `width`×`height` onto the quadrilateral `quad` (top-left, top-right,
    /// bottom-right, bottom-left): sampling the photo at `apply(u, v)` for every output pixel rectifies it.
    pub fn rectangle_to(quad: [Point; 4], width: f64, height: f64) -> Option<Self> {
        Self::between(
            [(0.0, 0.0), (width, 0.0), (width, height), (0.0, height)],
            quad,
        )
    }

    /// Where `(x, y)` goes, or `None` on the line the map sends to infinity.
    pub fn apply(&self, (x, y): Point) -> Option<Point> {
        let h = &self.0;
        let w = h[6] * x + h[7] * y + h[8];
        if w.abs() < 1e-12 {
            return None;
        }
        Some((
            (h[0] * x + h[1] * y + h[2]) / w,
            (h[3] * x + h[4] * y + h[5]) / w,
        ))
    }
}

/// Gaussian elimination with partial pivoting on an 8×9 augmented matrix.
fn solve(mut a: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-10 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (row, r) in a.iter_mut().enumerate() {
            if row != col {
                let f = r[col] / pivot_row[col];
                if f != 0.0 {
                    for (x, p) in r.iter_mut().zip(pivot_row).skip(col) {
                        *x -= f * p;
                    }
                }
            }
        }
    }
    let mut x = [0f64; 8];
    for (i, xi) in x.iter_mut().enumerate() {
        *xi = a[i][8] / a[i][i];
    }
    Some(x)
}

/// Bilinear sample of `img` at `(x, y)`, or `None` outside it.
pub fn sample(img: &GrayImage, (x, y): Point) -> Option<u8> {
    let (w, h) = img.dimensions();
    if x < 0.0 || y < 0.0 || x > f64::from(w) - 1.0 || y > f64::from(h) - 1.0 {
        return None;
    }
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - f64::from(x0), y - f64::from(y0));
    let p = |xx, yy| f64::from(img.get_pixel(xx, yy)[0]);
    let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
    let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
    Some((top * (1.0 - fy) + bottom * fy).round() as u8)
}

/// The quadrilateral `quad` of `img` resampled onto an upright `width`×`height` image (white where the map
/// leaves the photo).
pub fn rectify(img: &GrayImage, quad: [Point; 4], width: u32, height: u32) -> Option<GrayImage> {
    let map = Homography::rectangle_to(quad, f64::from(width), f64::from(height))?;
    let mut out = GrayImage::new(width, height);
    for (u, v, px) in out.enumerate_pixels_mut() {
        let at = map.apply((f64::from(u) + 0.5, f64::from(v) + 0.5));
        let value = at.and_then(|(x, y)| sample(img, (x - 0.5, y - 0.5)));
        *px = Luma([value.unwrap_or(255)]);
    }
    Some(out)
}

/// Euclidean distance.
pub fn distance(a: Point, b: Point) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

/// The least-squares line `s = a·t + b` through `(t, s)` points, as `(a, b)`; `None` for no points or when
/// every `t` is the same.
pub fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if n == 0.0 {
        return None;
    }
    let (st, ss) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (t, s)| (a + t, b + s));
    let (mt, ms) = (st / n, ss / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (t, s)| {
        (num + (t - mt) * (s - ms), den + (t - mt).powi(2))
    });
    (den > 0.0).then(|| {
        let a = num / den;
        (a, ms - a * mt)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_sends_each_corner_where_it_was_asked() {
        let quad = [(10.0, 20.0), (300.0, 5.0), (320.0, 210.0), (0.0, 190.0)];
        let map = Homography::rectangle_to(quad, 100.0, 50.0).unwrap_or_else(|| unreachable!());
        for (corner, want) in [(0.0, 0.0), (100.0, 0.0), (100.0, 50.0), (0.0, 50.0)]
            .into_iter()
            .zip(quad)
        {
            let got = map.apply(corner).unwrap_or_default();
            assert!(distance(got, want) < 1e-6, "{got:?} {want:?}");
        }
    }

    #[test]
    fn collinear_points_have_no_map() {
        let line = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)];
        assert!(Homography::between(line, line).is_none());
    }

    #[test]
    fn rectifying_a_tilted_quad_restores_a_stripe() {
        // A dark stripe across rows 40–60 of a 200×100 page, drawn through the inverse map into a photo.
        let quad = [(30.0, 40.0), (250.0, 20.0), (270.0, 160.0), (20.0, 150.0)];
        let to_page = Homography::between(
            quad,
            [(0.0, 0.0), (200.0, 0.0), (200.0, 100.0), (0.0, 100.0)],
        )
        .unwrap_or_else(|| unreachable!());
        let photo = GrayImage::from_fn(300, 200, |x, y| {
            let (u, v) = to_page
                .apply((f64::from(x), f64::from(y)))
                .unwrap_or((-1.0, -1.0));
            let inside = (0.0..200.0).contains(&u) && (0.0..100.0).contains(&v);
            Luma([match (inside, (40.0..60.0).contains(&v)) {
                (false, _) => 0,
                (true, true) => 20,
                (true, false) => 230,
            }])
        });
        let page = rectify(&photo, quad, 200, 100).unwrap_or_default();
        assert!(page.get_pixel(100, 50)[0] < 60);
        assert!(page.get_pixel(100, 20)[0] > 200 && page.get_pixel(100, 80)[0] > 200);
    }
}
