//! Finding the document in a photo: the page's quadrilateral against the surface it lies on, so that perspective
//! can be undone before the MRZ is looked for.
//!
//! A phone photo shows the page (light paper or card) on a darker desk. On a small copy of the image, the page
//! is the largest light region; its four edges are lines fitted to the region's outline between rough corners
//! (extremes of x ± y), which tolerates rounded card corners, a dark photo touching an edge and noise. A scan,
//! where the page fills the frame and no border is darker than it, has no quadrilateral to find: the image is
//! the page.

use image::GrayImage;

use super::{
    band::otsu,
    geometry::{Point, distance, least_squares},
    prepare::shrink,
};

/// Long side of the copy the page is looked for on.
const SEARCH_SIDE: u32 = 400;

/// Share of the image's border that must be darker than the page before a quadrilateral is looked for.
const DARK_BORDER: f64 = 0.5;

/// Least share of the image the page must cover.
const MIN_AREA: f64 = 0.15;

/// The page's corners in image pixels: top-left, top-right, bottom-right, bottom-left as seen in the photo.
pub type Quad = [Point; 4];

/// Where the page is.
#[derive(Debug, Clone, PartialEq)]
pub enum Located {
    /// The image is the page (a scan, or a photo cropped to the page).
    Whole,
    /// The page is this quadrilateral of the image.
    Quad(Quad),
}

/// The largest 4-connected region of `light` pixels, as a mask.
fn largest_region(light: &[bool], w: usize, h: usize) -> (Vec<bool>, usize) {
    let mut label = vec![0u32; w * h];
    let (mut best, mut best_size, mut next) = (0u32, 0usize, 0u32);
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !light[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        stack.push(start);
        let mut size = 0;
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            let mut visit = |j: usize| {
                if light[j] && label[j] == 0 {
                    label[j] = next;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        if size > best_size {
            (best, best_size) = (next, size);
        }
    }
    (
        label.iter().map(|l| *l == best && best != 0).collect(),
        best_size,
    )
}

/// A line `a·t + b` fitted to `(t, s)` samples by least squares, refitted once without the samples more than
/// 2 px off (text or a photo touching the edge).
fn fit(samples: &[(f64, f64)]) -> Option<(f64, f64)> {
    let solve = |pts: &[(f64, f64)]| (pts.len() >= 5).then(|| least_squares(pts)).flatten();
    let (a, b) = solve(samples)?;
    let kept: Vec<(f64, f64)> = samples
        .iter()
        .copied()
        .filter(|(t, s)| (a * t + b - s).abs() <= 2.0)
        .collect();
    solve(&kept).or(Some((a, b)))
}

/// Where the lines `y = a1·x + b1` (a near-horizontal edge) and `x = a2·y + b2` (a near-vertical one) cross.
fn cross((a1, b1): (f64, f64), (a2, b2): (f64, f64)) -> Option<Point> {
    let d = 1.0 - a1 * a2;
    if d.abs() < 1e-9 {
        return None;
    }
    let y = (a1 * b2 + b1) / d;
    Some((a2 * y + b2, y))
}

/// Whether `q` is convex with its corners in order.
fn convex(q: &Quad) -> bool {
    let turn = |a: Point, b: Point, c: Point| (b.0 - a.0) * (c.1 - b.1) - (b.1 - a.1) * (c.0 - b.0);
    (0..4).all(|i| turn(q[i], q[(i + 1) % 4], q[(i + 2) % 4]) > 0.0)
}

fn area(q: &Quad) -> f64 {
    (0..4)
        .map(|i| q[i].0 * q[(i + 1) % 4].1 - q[(i + 1) % 4].0 * q[i].1)
        .sum::<f64>()
        .abs()
        / 2.0
}

/// Finds the page on a grey photo.
pub fn locate(grey: &GrayImage) -> Located {
    let (w, h) = grey.dimensions();
    let k = (w.max(h) / SEARCH_SIDE).max(1);
    let small = shrink(grey, k);
    let (sw, sh) = (small.width() as usize, small.height() as usize);
    if sw < 20 || sh < 20 {
        return Located::Whole;
    }
    let t = otsu(&small);
    let light: Vec<bool> = small.as_raw().iter().map(|p| *p > t).collect();
    let border: Vec<usize> = (0..sw)
        .flat_map(|x| [x, (sh - 1) * sw + x])
        .chain((0..sh).flat_map(|y| [y * sw, y * sw + sw - 1]))
        .collect();
    let dark = border.iter().filter(|i| !light[**i]).count() as f64 / border.len() as f64;
    if dark < DARK_BORDER {
        return Located::Whole;
    }
    let (region, size) = largest_region(&light, sw, sh);
    if (size as f64) < MIN_AREA * (sw * sh) as f64 {
        return Located::Whole;
    }
    let at = |x: usize, y: usize| region[y * sw + x];
    // Rough corners: the region's extremes along the diagonals.
    let (mut tl, mut tr, mut br, mut bl) = (
        (0, 0, i64::MAX),
        (0, 0, i64::MIN),
        (0, 0, i64::MIN),
        (0, 0, i64::MAX),
    );
    for y in 0..sh {
        for x in 0..sw {
            if !at(x, y) {
                continue;
            }
            let (s, d) = ((x + y) as i64, x as i64 - y as i64);
            if s < tl.2 {
                tl = (x, y, s);
            }
            if s > br.2 {
                br = (x, y, s);
            }
            if d > tr.2 {
                tr = (x, y, d);
            }
            if d < bl.2 {
                bl = (x, y, d);
            }
        }
    }
    // Edge samples from the middle 70 % between rough corners: the outermost region pixel per column or row.
    let span = |a: usize, b: usize| {
        let (lo, hi) = (a.min(b), a.max(b));
        let margin = (hi - lo) * 15 / 100;
        (lo + margin)..(hi - margin).max(lo + margin)
    };
    let column = |x: usize, from_top: bool| {
        let mut ys: Box<dyn Iterator<Item = usize>> = if from_top {
            Box::new(0..sh)
        } else {
            Box::new((0..sh).rev())
        };
        ys.find(|y| at(x, *y)).map(|y| (x as f64, y as f64))
    };
    let row = |y: usize, from_left: bool| {
        let mut xs: Box<dyn Iterator<Item = usize>> = if from_left {
            Box::new(0..sw)
        } else {
            Box::new((0..sw).rev())
        };
        xs.find(|x| at(*x, y)).map(|x| (y as f64, x as f64))
    };
    let top: Vec<_> = span(tl.0, tr.0).filter_map(|x| column(x, true)).collect();
    let bottom: Vec<_> = span(bl.0, br.0).filter_map(|x| column(x, false)).collect();
    let left: Vec<_> = span(tl.1, bl.1).filter_map(|y| row(y, true)).collect();
    let right: Vec<_> = span(tr.1, br.1).filter_map(|y| row(y, false)).collect();
    let (Some(top), Some(bottom), Some(left), Some(right)) =
        (fit(&top), fit(&bottom), fit(&left), fit(&right))
    else {
        return Located::Whole;
    };
    // Pixel centres of the small copy, back in the photo's pixels; the region's outermost pixels lie half a
    // pixel inside the edge.
    let corners = [
        cross(top, left),
        cross(top, right),
        cross(bottom, right),
        cross(bottom, left),
    ];
    let scale = f64::from(k);
    let mut quad: Quad = [(0.0, 0.0); 4];
    for (q, c) in quad.iter_mut().zip(corners) {
        let Some((x, y)) = c else {
            return Located::Whole;
        };
        *q = ((x + 0.5) * scale, (y + 0.5) * scale);
    }
    if !convex(&quad) || area(&quad) < MIN_AREA * f64::from(w) * f64::from(h) {
        return Located::Whole;
    }
    Located::Quad(quad)
}

/// The size to rectify a page to: its longest top/bottom and left/right edges (a foreshortened edge is the
/// shorter one), capped at `max_side` on the longer side.
pub fn rectified_size(q: &Quad, max_side: u32) -> (u32, u32) {
    let width = distance(q[0], q[1]).max(distance(q[3], q[2]));
    let height = distance(q[0], q[3]).max(distance(q[1], q[2]));
    let f = (f64::from(max_side) / width.max(height)).min(1.0);
    (
        ((width * f).round() as u32).max(1),
        ((height * f).round() as u32).max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocr::geometry::Homography;

    /// A light 600×400 page drawn through `quad` onto a dark 900×700 desk.
    fn photo(quad: Quad) -> GrayImage {
        let to_page = Homography::between(
            quad,
            [(0.0, 0.0), (600.0, 0.0), (600.0, 400.0), (0.0, 400.0)],
        )
        .unwrap_or_else(|| unreachable!());
        GrayImage::from_fn(900, 700, |x, y| {
            let (u, v) = to_page
                .apply((f64::from(x) + 0.5, f64::from(y) + 0.5))
                .unwrap_or((-1.0, -1.0));
            let inside = (0.0..600.0).contains(&u) && (0.0..400.0).contains(&v);
            // Some "text" on the page, darker than the paper but not as dark as the desk.
            let text = inside && (v as u32 % 40) < 6 && (u as u32 % 9) < 4;
            image::Luma([match (inside, text) {
                (false, _) => 50,
                (true, true) => 90,
                (true, false) => 215,
            }])
        })
    }

    #[test]
    fn a_tilted_page_on_a_desk_is_found_to_within_a_few_pixels() {
        let quad = [
            (140.0, 120.0),
            (760.0, 90.0),
            (790.0, 560.0),
            (110.0, 600.0),
        ];
        let Located::Quad(found) = locate(&photo(quad)) else {
            panic!("no page found");
        };
        for (f, q) in found.iter().zip(quad) {
            assert!(distance(*f, q) < 6.0, "{found:?} vs {quad:?}");
        }
        let (w, h) = rectified_size(&found, 2000);
        assert!(
            (670..=700).contains(&w) && (465..=490).contains(&h),
            "{w}×{h}"
        );
    }

    #[test]
    fn a_scan_is_its_own_page() {
        let scan = GrayImage::from_fn(800, 500, |x, y| {
            image::Luma([if y % 50 < 8 && x % 11 < 5 { 30 } else { 230 }])
        });
        assert_eq!(locate(&scan), Located::Whole);
        assert_eq!(locate(&GrayImage::new(10, 10)), Located::Whole);
    }
}
