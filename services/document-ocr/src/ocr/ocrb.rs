//! A second recogniser for MRZ characters: every character cell of a line matched against OCR-B's own glyphs.
//!
//! ICAO 9303 prints the MRZ in one typeface (OCR-B, ISO 1073-2) at one pitch, so a character can be recognised
//! by comparing its cell with the 37 glyphs it may be, rendered at the line's own cap height and blurred as much
//! as the line is. Tesseract's LSTM, trained on many prints, is sometimes confidently wrong on soft photos (G for
//! Q, 8 for B); normalised cross-correlation with the real glyph shapes is a second opinion whose errors are
//! different ones. The reader merges both, so a character on which they disagree is doubtful and no check digit
//! or name is trusted on one reader's word.
//!
//! Geometry comes from Tesseract: its character boxes give the line's pitch and position (a least-squares fit,
//! so single boxes may be off), the ink profile gives the cap height and baseline.

use std::path::Path;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use image::GrayImage;

use super::{engine::OcrError, geometry::least_squares};
use crate::mrz::{Glyph, round_partner};

/// The characters an MRZ may hold.
const CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<";

/// Blur (σ, px) the rendered glyphs are matched at; a line picks the one that fits it best.
const BLURS: [f32; 4] = [0.4, 0.9, 1.5, 2.2];

/// Sizes of the glyphs, relative to the cap height the ink profile shows, a line is tried at.
const SIZES: [f32; 5] = [0.8, 0.86, 0.92, 0.97, 1.02];

/// Width-to-height ratios of the glyphs, relative to the font's, a line is tried at.
const ASPECTS: [f32; 5] = [0.88, 0.94, 1.0, 1.06, 1.12];

/// Cells whose fit chooses the line's glyph size and blur.
const PROBE_CELLS: usize = 10;

/// How sharply a difference in correlation becomes a difference in probability: the softmax temperature is this
/// many times the line's misfit (one less its cells' median best correlation; see [`temperature`]).
///
/// Measured on generated phone captures (300 pages, seeds 5000–5299) with the temperature at k × misfit: k 0.08
/// and 0.15 passed 92 % of genuine pages, 0.25 86 %, 0.4 78 %; the fixed 0.01 it replaces (≈ 0.3 × a phone
/// line's typical misfit of 0.03) 84 %, with no wrong field under `pass` at any k. 0.15 lies where that curve
/// has flattened. OCR-B had been under-confident: of 7,578 characters it gave ≥ 0.9 on phone captures none was
/// wrong, so its doubt held right readings for review.
const SHARPNESS: f32 = 0.15;

/// The least temperature, for a line that fits its glyphs all but perfectly (a clean render).
const MIN_TEMPERATURE: f32 = 0.002;

/// Alternatives below this probability are not reported.
const KEEP_ALTERNATIVE: f32 = 0.01;

/// OCR-B, loaded once and shared by every worker.
pub struct OcrB {
    font: FontVec,
    /// The cap height (of `H`) at a pixel scale of 1.
    cap: f32,
}

impl std::fmt::Debug for OcrB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcrB").field("cap", &self.cap).finish()
    }
}

/// Where one MRZ line lies in the image: cell centres `x0 + pitch · i`, cap top and baseline.
#[derive(Debug, Clone, Copy)]
struct LineGeometry {
    x0: f32,
    pitch: f32,
    top: f32,
    base: f32,
}

/// One glyph rendered for a line: zero-mean, unit-norm coverage in a cell-sized window.
struct Template {
    ch: u8,
    values: Vec<f32>,
}

/// A cell-sized window: its size and the margin around the cap height.
#[derive(Debug, Clone, Copy)]
struct Window {
    w: usize,
    h: usize,
    pad: usize,
}

impl Window {
    /// A line's cell: its pitch wide, its cap height and a margin high.
    fn of(g: &LineGeometry) -> Self {
        let pad = ((g.base - g.top) * 0.3).round() as usize + 2;
        Self {
            w: g.pitch.round() as usize + 2,
            h: (g.base - g.top).round() as usize + 2 * pad,
            pad,
        }
    }
}

/// How far (px) a cell's window is moved about its expected place to find its glyph.
#[derive(Debug, Clone, Copy)]
struct Reach {
    x: i64,
    y: i64,
}

impl Reach {
    /// While the line's pitch is Tesseract's estimate: a fifth of a cell across.
    fn wide(g: &LineGeometry) -> Self {
        Self {
            x: (g.pitch * 0.2).round().max(1.0) as i64,
            y: ((g.base - g.top) * 0.08).round().max(1.0) as i64,
        }
    }

    /// Once the pitch is refitted to the glyphs: what perspective left uneven.
    fn narrow(g: &LineGeometry) -> Self {
        Self {
            x: (g.pitch * 0.1).round().max(1.0) as i64,
            y: 1,
        }
    }
}

/// How a band's print looks to the matcher.
#[derive(Debug, Clone, Copy)]
struct Style {
    /// Glyph cap height relative to the ink profile's.
    size: f32,
    /// Glyph widths relative to the font's at that height: a page rectified from a photo, or printed by another
    /// printer, is seldom stretched alike both ways (and OCR-B's O and 0 differ by little more than width).
    aspect: f32,
    /// Blur, σ px.
    sigma: f32,
}

impl OcrB {
    /// Loads the typeface from an OpenType/TrueType file (Debian's `fonts-ocr-b`).
    pub fn load(path: &Path) -> Result<Self, OcrError> {
        let fail = |cause: String| OcrError::Font {
            path: path.display().to_string(),
            cause,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let font = FontVec::try_from_vec(bytes).map_err(|e| fail(e.to_string()))?;
        let scale = PxScale::from(100.0);
        let cap = font
            .outline_glyph(
                font.glyph_id('H')
                    .with_scale_and_position(scale, point(0.0, 0.0)),
            )
            .map(|g| g.px_bounds().height() / 100.0)
            .filter(|c| *c > 0.1)
            .ok_or_else(|| fail("no outline for 'H': not an OCR-B font".into()))?;
        for ch in CHARSET {
            if font.glyph_id(char::from(*ch)).0 == 0 {
                return Err(fail(format!("no glyph for '{}'", char::from(*ch))));
            }
        }
        Ok(Self { font, cap })
    }

    /// Reads the MRZ lines of `img` that Tesseract read as characters boxed `boxes` (`[x0, y0, x1, y1]` in
    /// `img`'s pixels, in order; a few may be missing or extra), each `width` characters long: each cell's
    /// character, its probability and the alternatives. `None` for a line whose boxes do not describe a
    /// fixed-pitch line.
    pub fn lines(
        &self,
        img: &GrayImage,
        lines: &[(Vec<[u32; 4]>, usize)],
    ) -> Vec<Option<Vec<Glyph>>> {
        let ink = Ink::of(img);
        let geometries: Vec<Option<LineGeometry>> = lines
            .iter()
            .map(|(boxes, width)| geometry(img, boxes, *width))
            .collect();
        // One print, one style: measured on the line with the most characters other than fillers (a filler's
        // chevron fits many sizes), and applied to the others at the same cap height in pixels.
        let style = lines
            .iter()
            .zip(&geometries)
            .filter_map(|((boxes, width), g)| Some((boxes.len(), *width, (*g)?)))
            .max_by_key(|(n, _, _)| *n)
            .and_then(|(_, width, g)| Some((self.style(&ink, &g, width)?, g.base - g.top)));
        lines
            .iter()
            .zip(geometries)
            .map(|((_, width), g)| {
                let (g, (s, h)) = (g?, style?);
                let s = Style {
                    size: s.size * h / (g.base - g.top),
                    ..s
                };
                Some(self.read_line(&ink, g, *width, s))
            })
            .collect()
    }

    /// The glyph size (relative to the cap height the ink profile shows, which blur overstates), their width and
    /// the blur under which cells spread over a line fit their best glyphs best: size first, then width, then
    /// blur.
    fn style(&self, ink: &Ink, g: &LineGeometry, width: usize) -> Option<Style> {
        let window = Window::of(g);
        let reach = Reach::wide(g);
        let h = g.base - g.top;
        let probes: Vec<usize> = (0..PROBE_CELLS).map(|k| k * width / PROBE_CELLS).collect();
        let pick = |candidates: Vec<Style>| {
            candidates
                .into_iter()
                .map(|style| {
                    let t = self.templates(h * style.size, style.aspect, window, style.sigma);
                    let fit: f32 = probes
                        .iter()
                        .map(|i| best(&scores(ink, g, window, &t, *i, reach)).1.0)
                        .sum();
                    (fit, style)
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, s)| s)
        };
        let start = Style {
            size: 1.0,
            aspect: 1.0,
            sigma: BLURS[1],
        };
        let size = pick(
            SIZES
                .iter()
                .map(|size| Style {
                    size: *size,
                    ..start
                })
                .collect(),
        )?
        .size;
        let aspect = pick(
            ASPECTS
                .iter()
                .map(|aspect| Style {
                    size,
                    aspect: *aspect,
                    ..start
                })
                .collect(),
        )?
        .aspect;
        pick(
            BLURS
                .iter()
                .map(|sigma| Style {
                    size,
                    aspect,
                    sigma: *sigma,
                })
                .collect(),
        )
    }

    /// Reads one line's cells: once with a wide search of each cell's position, from which the line's pitch is
    /// refitted to where the glyphs really are, then, if that moved the cells, again with a narrow search.
    fn read_line(&self, ink: &Ink, mut g: LineGeometry, width: usize, style: Style) -> Vec<Glyph> {
        let window = Window::of(&g);
        let templates = self.templates(
            (g.base - g.top) * style.size,
            style.aspect,
            window,
            style.sigma,
        );
        let first: Vec<Vec<(f32, i64)>> = (0..width)
            .map(|i| scores(ink, &g, window, &templates, i, Reach::wide(&g)))
            .collect();
        let shifts: Vec<(f32, f32)> = first
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let (_, (score, dx)) = best(s);
                (score > 0.6).then_some((i as f32, g.x0 + g.pitch * i as f32 + dx as f32))
            })
            .collect();
        let end = |g: &LineGeometry| g.x0 + g.pitch * (width as f32 - 1.0);
        if shifts.len() * 2 > width
            && let Some((x0, pitch)) = fit_line(&shifts)
            && (pitch - g.pitch).abs() < g.pitch * 0.05
        {
            let refitted = LineGeometry { x0, pitch, ..g };
            if (x0 - g.x0).abs() > 0.5 || (end(&refitted) - end(&g)).abs() > 0.5 {
                g = refitted;
                let narrow: Vec<Vec<(f32, i64)>> = (0..width)
                    .map(|i| scores(ink, &g, window, &templates, i, Reach::narrow(&g)))
                    .collect();
                let t = temperature(&narrow);
                return narrow.iter().map(|s| to_glyph(&templates, s, t)).collect();
            }
        }
        let t = temperature(&first);
        first.iter().map(|s| to_glyph(&templates, s, t)).collect()
    }

    /// Every MRZ glyph rendered with cap height `h` and widths `aspect` times the font's, centred in `window`,
    /// blurred by `sigma`.
    fn templates(&self, h: f32, aspect: f32, window: Window, sigma: f32) -> Vec<Template> {
        let size = h / self.cap;
        let scale = PxScale {
            x: size * aspect,
            y: size,
        };
        let scaled = self.font.as_scaled(scale);
        CHARSET
            .iter()
            .map(|ch| {
                let mut cov = vec![0f32; window.w * window.h];
                let id = scaled.glyph_id(char::from(*ch));
                let origin = window.w as f32 / 2.0 - scaled.h_advance(id) / 2.0;
                let baseline = window.pad as f32 + h;
                let glyph = id.with_scale_and_position(scale, point(origin, baseline));
                if let Some(outline) = self.font.outline_glyph(glyph) {
                    let b = outline.px_bounds();
                    outline.draw(|gx, gy, c| {
                        let (x, y) = (
                            b.min.x as i64 + i64::from(gx),
                            b.min.y as i64 + i64::from(gy),
                        );
                        if (0..window.w as i64).contains(&x) && (0..window.h as i64).contains(&y) {
                            cov[y as usize * window.w + x as usize] += c.min(1.0);
                        }
                    });
                }
                let blurred = blur(&cov, window.w, window.h, sigma);
                Template {
                    ch: *ch,
                    values: normalised(&blurred),
                }
            })
            .collect()
    }
}

/// The image as ink: dark is high, as f32.
struct Ink {
    w: usize,
    h: usize,
    values: Vec<f32>,
}

impl Ink {
    fn of(img: &GrayImage) -> Self {
        Self {
            w: img.width() as usize,
            h: img.height() as usize,
            values: img.as_raw().iter().map(|p| 255.0 - f32::from(*p)).collect(),
        }
    }

    /// The pixel at (x, y), edges repeated outside the image.
    fn at(&self, x: i64, y: i64) -> f32 {
        let x = x.clamp(0, self.w as i64 - 1) as usize;
        let y = y.clamp(0, self.h as i64 - 1) as usize;
        self.values[y * self.w + x]
    }
}

/// Zero mean, unit norm (all zeros when flat).
fn normalised(v: &[f32]) -> Vec<f32> {
    let mean = v.iter().sum::<f32>() / v.len().max(1) as f32;
    let centred: Vec<f32> = v.iter().map(|x| x - mean).collect();
    let norm = centred.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm < 1e-6 {
        return vec![0.0; v.len()];
    }
    centred.into_iter().map(|x| x / norm).collect()
}

/// A separable Gaussian blur with edges repeated.
fn blur(v: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    let radius = (sigma * 3.0).ceil() as i64;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0f32; src.len()];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (k, weight) in kernel.iter().enumerate() {
                    let d = k as i64 - radius;
                    let (sx, sy) = if horizontal {
                        ((x as i64 + d).clamp(0, w as i64 - 1) as usize, y)
                    } else {
                        (x, (y as i64 + d).clamp(0, h as i64 - 1) as usize)
                    };
                    acc += weight * src[sy * w + sx];
                }
                out[y * w + x] = acc;
            }
        }
        out
    };
    pass(&pass(v, true), false)
}

/// Σ a·b, in eight independent sums so that the compiler can keep them in one vector register (a single
/// running sum of floats cannot be reordered, so it would not be vectorised).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The best-scoring glyph's index and (score, shift).
fn best(scores: &[(f32, i64)]) -> (usize, (f32, i64)) {
    scores
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.0.total_cmp(&b.1.0))
        .unwrap_or((0, (f32::MIN, 0)))
}

/// Each glyph's best correlation with cell `i` over small shifts of the window, and the horizontal shift it
/// was best at.
fn scores(
    ink: &Ink,
    g: &LineGeometry,
    window: Window,
    templates: &[Template],
    i: usize,
    reach: Reach,
) -> Vec<(f32, i64)> {
    let cx = g.x0 + g.pitch * i as f32;
    let left = (cx - window.w as f32 / 2.0).round() as i64;
    let top = (g.top - window.pad as f32).round() as i64;
    let (reach_x, reach_y) = (reach.x, reach.y);
    let mut best = vec![(f32::MIN, 0i64); templates.len()];
    let mut patch = vec![0f32; window.w * window.h];
    for dy in -reach_y..=reach_y {
        for dx in -reach_x..=reach_x {
            for y in 0..window.h {
                for x in 0..window.w {
                    patch[y * window.w + x] = ink.at(left + dx + x as i64, top + dy + y as i64);
                }
            }
            let mean = patch.iter().sum::<f32>() / patch.len() as f32;
            let norm = patch
                .iter()
                .map(|p| (p - mean) * (p - mean))
                .sum::<f32>()
                .sqrt();
            if norm < 1e-3 {
                continue;
            }
            for (t, b) in templates.iter().zip(best.iter_mut()) {
                // The template has zero mean, so the patch's mean drops out of the dot product.
                let dot = dot(&t.values, &patch);
                if dot / norm > b.0 {
                    *b = (dot / norm, dx);
                }
            }
        }
    }
    best
}

/// The share of their joint probability the less likely of O and 0 keeps at least: never nothing, so a field's
/// class can decide, but under the 0.10 at which an alternative makes a character doubtful, so an O or 0 OCR-B
/// tells apart stays certain. (Measured on 1,500 generated pages: a third instead held 9 % more of the phone
/// captures for review, over optional data without a check digit, and sent 7 more of 40 forged phone and
/// keystone pages to review instead of fail.)
const ROUND_PAIR_SHARE: f32 = 0.05;

/// A line's softmax temperature, from how well its cells fit their best glyphs at all.
///
/// Under a model of the cell as its glyph plus noise, the log-odds between two glyphs grow with the difference
/// of their correlations divided by the residual the best fit leaves, `1 − correlation`. The line's median cell
/// measures that residual for its print, blur and noise together: a line that fits OCR-B closely tells glyphs
/// apart from smaller differences, and a print that is not quite OCR-B (another cut, a worn ribbon) fits worse
/// and so is read with less confidence instead of more.
fn temperature(cells: &[Vec<(f32, i64)>]) -> f32 {
    let mut fits: Vec<f32> = cells.iter().map(|s| best(s).1.0).collect();
    let misfit = median(&mut fits).map_or(1.0, |m| (1.0 - m).clamp(0.0, 1.0));
    (SHARPNESS * misfit).max(MIN_TEMPERATURE)
}

/// Correlations turned into a glyph: the best, its probability, and the alternatives.
fn to_glyph(templates: &[Template], scores: &[(f32, i64)], temperature: f32) -> Glyph {
    let top = best(scores).1.0;
    let weights: Vec<f32> = scores
        .iter()
        .map(|(s, _)| ((s - top) / temperature).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    let mut ranked: Vec<(u8, f32)> = templates
        .iter()
        .zip(&weights)
        .map(|(t, w)| (t.ch, w / total))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    // OCR-B's O and 0 differ by little more than width, and a page's width is the least certain thing about
    // it: whichever is read, the other keeps a share, for the field's class to take where it must.
    if let Some(partner) = round_partner(ranked[0].0)
        && let Some(i) = ranked.iter().position(|(c, _)| *c == partner)
    {
        let pair = ranked[0].1 + ranked[i].1;
        let least = pair * ROUND_PAIR_SHARE;
        if ranked[i].1 < least {
            ranked[0].1 = pair - least;
            ranked[i].1 = least;
        }
    } else if let Some(partner) = round_partner(ranked[0].0) {
        let least = ranked[0].1 * ROUND_PAIR_SHARE;
        ranked[0].1 -= least;
        ranked.push((partner, least));
    }
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (ch, conf) = ranked[0];
    Glyph {
        ch,
        conf,
        alternatives: ranked[1..]
            .iter()
            .copied()
            .filter(|(_, p)| *p >= KEEP_ALTERNATIVE)
            .collect(),
    }
}

/// A line's geometry from its character boxes and ink.
fn geometry(img: &GrayImage, boxes: &[[u32; 4]], width: usize) -> Option<LineGeometry> {
    if boxes.len() < 20 || boxes.len() + 3 < width {
        return None;
    }
    let centres: Vec<(f32, f32)> = boxes
        .iter()
        .enumerate()
        .map(|(i, b)| (i as f32, (b[0] + b[2]) as f32 / 2.0))
        .collect();
    // A robust start (medians: a dropped or split character shifts only its neighbours), then least squares
    // over the boxes near it.
    let mut steps: Vec<f32> = centres.windows(2).map(|w| w[1].1 - w[0].1).collect();
    let pitch = median(&mut steps)?;
    let mut offsets: Vec<f32> = centres.iter().map(|(i, c)| c - pitch * i).collect();
    let x0 = median(&mut offsets)?;
    let near: Vec<(f32, f32)> = centres
        .iter()
        .copied()
        .filter(|(i, c)| (c - (x0 + pitch * i)).abs() < pitch * 0.3)
        .collect();
    let (mut x0, pitch) = if near.len() * 3 >= centres.len() {
        fit_line(&near)?
    } else {
        (x0, pitch)
    };
    if pitch < 5.0 {
        return None;
    }
    let mut tops: Vec<f32> = boxes.iter().map(|b| b[1] as f32).collect();
    let mut bottoms: Vec<f32> = boxes.iter().map(|b| b[3] as f32).collect();
    let (top, base) = (median(&mut tops)?, median(&mut bottoms)?);
    let right = x0 + pitch * (width as f32 - 0.5);
    let (top, base) = ink_rows(img, x0 - pitch / 2.0, right, top, base)?;
    // Tesseract sometimes drops, splits or invents a character, so its boxes' indices may be a cell or two off
    // the print: the first cell is where the line's ink begins (the first character is never a filler).
    let left = first_ink(img, x0 - pitch * 2.5, x0 + pitch * 2.5, top, base)?;
    let k = ((left + pitch * 0.35 - x0) / pitch)
        .round()
        .clamp(-2.0, 2.0);
    x0 += k * pitch;
    (base - top >= 6.0).then_some(LineGeometry {
        x0,
        pitch,
        top,
        base,
    })
}

/// The first column between `from` and `to` that holds a glyph on rows `top..base`: whose ink there, less its
/// ink on as many rows just above the line, is over a third of the way to the line's inkiest column. The
/// difference leaves out what runs across the lines, such as a page edge left at the band's border.
fn first_ink(img: &GrayImage, from: f32, to: f32, top: f32, base: f32) -> Option<f32> {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (from, to) = ((from as i64).clamp(0, w - 1), (to as i64).clamp(0, w - 1));
    let (top, base) = ((top as i64).clamp(0, h - 1), (base as i64).clamp(0, h - 1));
    let rows = base - top;
    if to <= from || rows <= 0 {
        return None;
    }
    let raw = img.as_raw();
    let ink = |x: i64, y: i64| 255.0 - f32::from(raw[(y.clamp(0, h - 1) * w + x) as usize]);
    let profile: Vec<f32> = (from..=to)
        .map(|x| {
            let line: f32 = (top..base).map(|y| ink(x, y)).sum();
            let above: f32 = (top - rows..top).map(|y| ink(x, y)).sum();
            line - above
        })
        .collect();
    let peak = profile.iter().fold(0f32, |a, b| a.max(*b));
    let threshold = peak / 3.0;
    profile
        .iter()
        .position(|v| *v >= threshold && peak > 1.0)
        .map(|i| (from + i as i64) as f32)
}

/// The median of `v` (reordered).
fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    Some(v[v.len() / 2])
}

/// Least squares `c = a + b·i`, as `(a, b)`.
fn fit_line(points: &[(f32, f32)]) -> Option<(f32, f32)> {
    let wide: Vec<(f64, f64)> = points
        .iter()
        .map(|(i, c)| (f64::from(*i), f64::from(*c)))
        .collect();
    let (b, a) = least_squares(&wide)?;
    Some((a as f32, b as f32))
}

/// The cap top and baseline of the ink between columns `left..right` near rows `top..base`: where the rows'
/// ink rises above, and falls back below, 40 % of the line's fullest row.
fn ink_rows(img: &GrayImage, left: f32, right: f32, top: f32, base: f32) -> Option<(f32, f32)> {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let height = (base - top).max(4.0);
    let from = ((top - height * 0.5) as i64).clamp(0, h - 1);
    let to = ((base + height * 0.5) as i64).clamp(0, h - 1);
    let (l, r) = (
        (left as i64).clamp(0, w - 1),
        (right as i64).clamp(0, w - 1),
    );
    if to <= from || r <= l {
        return None;
    }
    let raw = img.as_raw();
    let profile: Vec<f32> = (from..=to)
        .map(|y| {
            let row = &raw[(y * w + l) as usize..=(y * w + r) as usize];
            row.iter().map(|p| 255.0 - f32::from(*p)).sum::<f32>()
        })
        .collect();
    let floor = profile.iter().fold(f32::MAX, |a, b| a.min(*b));
    let peak = profile.iter().fold(f32::MIN, |a, b| a.max(*b));
    if peak - floor < 1.0 {
        return None;
    }
    let threshold = floor + (peak - floor) * 0.4;
    // The run over the threshold that holds the middle of Tesseract's rows.
    let middle = (((top + base) / 2.0) as i64 - from).clamp(0, profile.len() as i64 - 1) as usize;
    let mut start = middle;
    while start > 0 && profile[start - 1] >= threshold {
        start -= 1;
    }
    let mut end = middle;
    while end + 1 < profile.len() && profile[end + 1] >= threshold {
        end += 1;
    }
    Some((
        (from as usize + start) as f32,
        (from as usize + end + 1) as f32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FONT: &str = "/usr/share/fonts/opentype/ocr-b/OCRB.otf";

    /// `lines` printed in OCR-B on white at `pitch` px and cap height `cap`, glyphs `aspect` times as wide,
    /// blurred by `sigma`; and boxes for each character as Tesseract would give them (centred on the cell).
    fn printed(
        ocrb: &OcrB,
        lines: &[&str],
        (pitch, cap, aspect, sigma): (f32, f32, f32, f32),
    ) -> (GrayImage, Vec<Vec<[u32; 4]>>) {
        let (left, top, gap) = (40.0, 30.0, cap * 0.9);
        let width = (left * 2.0 + pitch * lines[0].len() as f32) as usize;
        let height = (top * 2.0 + (cap + gap) * lines.len() as f32) as usize;
        let mut ink = vec![0f32; width * height];
        let size = cap / ocrb.cap;
        let scale = PxScale {
            x: size * aspect,
            y: size,
        };
        let mut boxes = Vec::new();
        for (l, text) in lines.iter().enumerate() {
            let baseline = top + cap + (cap + gap) * l as f32;
            let mut line = Vec::new();
            for (i, ch) in text.chars().enumerate() {
                let id = ocrb.font.glyph_id(ch);
                let advance = ocrb.font.as_scaled(scale).h_advance(id);
                let centre = left + pitch * (i as f32 + 0.5);
                let glyph =
                    id.with_scale_and_position(scale, point(centre - advance / 2.0, baseline));
                if let Some(o) = ocrb.font.outline_glyph(glyph) {
                    let b = o.px_bounds();
                    o.draw(|x, y, c| {
                        let (x, y) = (b.min.x as usize + x as usize, b.min.y as usize + y as usize);
                        if x < width && y < height {
                            ink[y * width + x] = (ink[y * width + x] + c).min(1.0);
                        }
                    });
                }
                let half = pitch * 0.35;
                line.push([
                    (centre - half) as u32,
                    (baseline - cap) as u32,
                    (centre + half) as u32,
                    baseline as u32,
                ]);
            }
            boxes.push(line);
        }
        let ink = blur(&ink, width, height, sigma);
        let px: Vec<u8> = ink
            .iter()
            .map(|v| (235.0 - 215.0 * v).clamp(0.0, 255.0) as u8)
            .collect();
        let img = GrayImage::from_raw(width as u32, height as u32, px).unwrap_or_default();
        (img, boxes)
    }

    fn text(glyphs: &[Glyph]) -> String {
        glyphs.iter().map(|g| char::from(g.ch)).collect()
    }

    const TD3: [&str; 2] = [
        "P<UTOLINDQVIST<<IOANA<MARIA<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    ];

    #[test]
    fn soft_small_print_is_read_cell_by_cell() {
        let Ok(ocrb) = OcrB::load(Path::new(FONT)) else {
            panic!("{FONT} missing: install Debian's fonts-ocr-b");
        };
        for style in [
            (16.0, 20.0, 1.0, 1.4),
            (24.0, 30.0, 1.0, 0.6),
            (17.0, 21.0, 1.1, 1.8),
        ] {
            let (img, boxes) = printed(&ocrb, &TD3, style);
            let read = ocrb.lines(&img, &[(boxes[0].clone(), 44), (boxes[1].clone(), 44)]);
            for (line, want) in read.iter().zip(TD3) {
                let Some(line) = line else {
                    panic!("{style:?}: no geometry");
                };
                // O and 0 are left to the field's class: compare with them folded together.
                let fold = |s: &str| s.replace('O', "0");
                assert_eq!(fold(&text(line)), fold(want), "{style:?}");
            }
        }
    }

    #[test]
    fn boxes_a_cell_off_or_missing_do_not_shift_the_line() {
        let Ok(ocrb) = OcrB::load(Path::new(FONT)) else {
            panic!("{FONT} missing");
        };
        let (img, boxes) = printed(&ocrb, &TD3, (18.0, 22.0, 1.0, 1.2));
        // Tesseract missed two fillers in the middle and invented a character before the line.
        let mut b = boxes[0].clone();
        b.drain(30..32);
        let mut invented = b[0];
        invented[0] -= 17;
        invented[2] -= 17;
        b.insert(0, invented);
        let read = ocrb.lines(&img, &[(b, 44)]);
        let Some(Some(line)) = read.first() else {
            panic!("no geometry");
        };
        assert_eq!(text(line).replace('0', "O"), TD3[0]);
        // Too few boxes to say anything.
        assert!(ocrb.lines(&img, &[(boxes[0][..10].to_vec(), 44)])[0].is_none());
    }

    #[test]
    fn o_and_0_always_keep_each_other_as_an_alternative() {
        let Ok(ocrb) = OcrB::load(Path::new(FONT)) else {
            panic!("{FONT} missing");
        };
        let (img, boxes) = printed(&ocrb, &TD3, (20.0, 25.0, 1.0, 0.5));
        let read = ocrb.lines(&img, &[(boxes[1].clone(), 44)]);
        let Some(Some(line)) = read.first() else {
            panic!("no geometry");
        };
        // "L898902C36UTO…": the 0 at column 6 and the O at column 13.
        for g in [&line[5], &line[12]] {
            let partner = round_partner(g.ch).unwrap_or(b'?');
            let share = g
                .alternatives
                .iter()
                .find(|(c, _)| *c == partner)
                .map_or(0.0, |a| a.1);
            assert!(share >= (g.conf + share) * ROUND_PAIR_SHARE - 1e-4, "{g:?}");
        }
        // Other characters on a sharp print are sure.
        assert!(line[0].conf > 0.9 && line[0].ch == b'L', "{:?}", line[0]);
    }

    #[test]
    fn the_same_margin_is_surer_on_a_line_that_fits_its_glyphs_closely() {
        // Two glyphs 0.01 apart in correlation, on lines whose cells fit their glyphs at 0.98 and at 0.90.
        let cells =
            |fit: f32| -> Vec<Vec<(f32, i64)>> { vec![vec![(fit, 0), (fit - 0.01, 0)]; 44] };
        let (close, loose) = (temperature(&cells(0.98)), temperature(&cells(0.90)));
        assert!((close - SHARPNESS * 0.02).abs() < 1e-6, "{close}");
        assert!((loose - SHARPNESS * 0.10).abs() < 1e-6, "{loose}");
        let templates: Vec<Template> = [b'B', b'8']
            .iter()
            .map(|ch| Template {
                ch: *ch,
                values: Vec::new(),
            })
            .collect();
        let sure = to_glyph(&templates, &cells(0.98)[0], close);
        let unsure = to_glyph(&templates, &cells(0.90)[0], loose);
        assert_eq!((sure.ch, unsure.ch), (b'B', b'B'));
        assert!(
            sure.conf > 0.95 && unsure.conf < 0.75,
            "{sure:?} {unsure:?}"
        );
        // A perfect fit still leaves the runner-up a share to be weighed by.
        assert!((temperature(&cells(1.0)) - MIN_TEMPERATURE).abs() < 1e-9);
        assert!((temperature(&[]) - SHARPNESS).abs() < 1e-6);
    }

    #[test]
    fn a_file_that_is_not_ocr_b_is_refused() {
        assert!(OcrB::load(Path::new("/nonexistent.otf")).is_err());
        let junk = std::env::temp_dir().join("not-a-font.otf");
        let _ = std::fs::write(&junk, b"not a font");
        assert!(OcrB::load(&junk).is_err());
    }
}
