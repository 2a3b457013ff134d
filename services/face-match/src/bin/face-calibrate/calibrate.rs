//! `face-calibrate`: scores labelled image pairs with the manifest's models and turns the genuine and
//! impostor score distributions into thresholds and a logistic calibration that can be pasted into the manifest.

use std::{
    collections::HashMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use idv_shared::imaging::DecodeLimits;
use serde::Serialize;

use face_match::{
    models::{ModelError, ModelSet, RuntimeOptions},
    pipeline::{self, Analysis},
};

/// A labelled pair of image files.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    /// First image.
    pub a: PathBuf,
    /// Second image.
    pub b: PathBuf,
    /// Same person?
    pub same: bool,
}

/// A scored pair.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    /// The pair.
    pub pair: Pair,
    /// Cosine similarity, absent when an image had no face.
    pub similarity: Option<f64>,
}

/// Reads `a,b,label` lines (label: same/different, genuine/impostor, 1/0); `#` starts a comment; relative
/// paths are relative to the CSV's folder.
pub fn read_pairs(csv: &Path) -> Result<Vec<Pair>, String> {
    let text = std::fs::read_to_string(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let base = csv.parent().unwrap_or(Path::new("."));
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let [a, b, label] = cols[..] else {
            return Err(format!("line {}: expected `a,b,label`", n + 1));
        };
        let same = match label.to_ascii_lowercase().as_str() {
            "same" | "genuine" | "1" | "true" => true,
            "different" | "impostor" | "0" | "false" => false,
            // A header line.
            "label" | "same_person" if pairs.is_empty() => continue,
            other => return Err(format!("line {}: unknown label '{other}'", n + 1)),
        };
        pairs.push(Pair {
            a: base.join(a),
            b: base.join(b),
            same,
        });
    }
    Ok(pairs)
}

/// Scores every pair, analysing each distinct image once.
pub fn score_pairs(
    manifest: &Path,
    options: &RuntimeOptions,
    pairs: &[Pair],
) -> Result<Vec<Scored>, ModelError> {
    let set = ModelSet::load(
        manifest,
        &RuntimeOptions {
            slots: 1,
            ..options.clone()
        },
        1,
    )?;
    let mut sessions = set.sessions(0).ok_or_else(|| ModelError::Session {
        model: "calibrate".into(),
        cause: "no sessions".into(),
    })?;
    let mut cache: HashMap<PathBuf, Option<Vec<f32>>> = HashMap::new();
    let mut embed = |path: &Path| -> Option<Vec<f32>> {
        if let Some(e) = cache.get(path) {
            return e.clone();
        }
        let e = std::fs::read(path)
            .ok()
            .and_then(|bytes| {
                pipeline::analyse(
                    &bytes,
                    DecodeLimits::default(),
                    &set.manifest,
                    &mut sessions,
                )
                .ok()
            })
            .and_then(|a: Analysis| a.chosen.map(|(_, e)| e));
        if e.is_none() {
            eprintln!("calibrate: no face on {}", path.display());
        }
        cache.insert(path.to_owned(), e.clone());
        e
    };
    Ok(pairs
        .iter()
        .map(|pair| {
            let (a, b) = (embed(&pair.a), embed(&pair.b));
            let similarity = match (a, b) {
                (Some(a), Some(b)) => Some(pipeline::cosine(&a, &b)),
                _ => None,
            };
            Scored {
                pair: pair.clone(),
                similarity,
            }
        })
        .collect())
}

/// Distribution summary of one class.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Stats {
    /// Pairs scored.
    pub n: usize,
    /// Lowest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Highest.
    pub max: f64,
}

fn stats(xs: &[f64]) -> Stats {
    if xs.is_empty() {
        return Stats::default();
    }
    Stats {
        n: xs.len(),
        min: xs.iter().copied().fold(f64::INFINITY, f64::min),
        mean: xs.iter().sum::<f64>() / xs.len() as f64,
        max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Error rates at one threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// The threshold.
    pub threshold: f64,
    /// Impostor pairs at or above it (false matches), as a fraction.
    pub fmr: f64,
    /// Genuine pairs below it (false non-matches), as a fraction.
    pub fnmr: f64,
}

/// What calibration recommends.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Genuine scores.
    pub genuine: Stats,
    /// Impostor scores.
    pub impostor: Stats,
    /// Pairs where an image had no face.
    pub unscored: usize,
    /// Lowest genuine minus highest impostor: positive means the sets separate.
    pub margin: f64,
    /// FMR/FNMR over candidate thresholds.
    pub table: Vec<Rates>,
    /// Recommended pass threshold (the lowest with FMR ≤ target; from a normal fit of the impostor scores when
    /// there are too few impostor pairs to observe the target).
    pub pass: f64,
    /// Whether `pass` came from the normal tail rather than the observed rates.
    pub pass_from_tail: bool,
    /// Recommended fail threshold (the highest ≤ pass with FNMR ≤ target).
    pub fail: f64,
    /// Target FMR.
    pub target_fmr: f64,
    /// Target FNMR.
    pub target_fnmr: f64,
    /// Logistic slope.
    pub a: f64,
    /// Logistic intercept.
    pub b: f64,
}

fn rates(genuine: &[f64], impostor: &[f64], t: f64) -> Rates {
    let frac = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    Rates {
        threshold: t,
        fmr: frac(impostor.iter().filter(|s| **s >= t).count(), impostor.len()),
        fnmr: frac(genuine.iter().filter(|s| **s < t).count(), genuine.len()),
    }
}

/// Platt scaling: logistic regression of the label on the score, with Platt's smoothed targets so that
/// separable data still gives a finite slope. Newton's method on two parameters.
pub fn fit_logistic(genuine: &[f64], impostor: &[f64]) -> (f64, f64) {
    let (np, nn) = (genuine.len() as f64, impostor.len() as f64);
    let (tp, tn) = ((np + 1.0) / (np + 2.0), 1.0 / (nn + 2.0));
    let data: Vec<(f64, f64)> = genuine
        .iter()
        .map(|s| (*s, tp))
        .chain(impostor.iter().map(|s| (*s, tn)))
        .collect();
    let (mut a, mut b) = (1.0, 0.0);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for &(s, t) in &data {
            let p = 1.0 / (1.0 + (-(a * s + b)).exp());
            let (d, w) = (p - t, p * (1.0 - p));
            ga += d * s;
            gb += d;
            haa += w * s * s;
            hab += w * s;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-15 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-9 {
            break;
        }
    }
    (a, b)
}

/// Builds the report from scored pairs.
pub fn report(scored: &[Scored], target_fmr: f64, target_fnmr: f64) -> Report {
    let pick = |same: bool| -> Vec<f64> {
        scored
            .iter()
            .filter(|s| s.pair.same == same)
            .filter_map(|s| s.similarity)
            .collect()
    };
    let (genuine, impostor) = (pick(true), pick(false));
    let grid: Vec<f64> = (0..=80).map(|i| f64::from(i) * 0.01).collect();
    let table: Vec<Rates> = grid
        .iter()
        .map(|t| rates(&genuine, &impostor, *t))
        .collect();
    let empirical_pass = table
        .iter()
        .find(|r| r.fmr <= target_fmr)
        .map_or(0.8, |r| r.threshold);
    // Too few impostor pairs to observe the target FMR: extrapolate the impostor tail as a normal
    // distribution instead of trusting the largest impostor seen.
    let tail =
        target_fmr > 0.0 && (impostor.len() as f64) * target_fmr < 1.0 && impostor.len() >= 2;
    let pass = if tail {
        let (m, sd) = mean_sd(&impostor);
        let t = m + upper_quantile(target_fmr) * sd;
        ((t * 100.0).ceil() / 100.0).max(empirical_pass).min(0.8)
    } else {
        empirical_pass
    };
    let fail = grid
        .iter()
        .map(|t| rates(&genuine, &impostor, *t))
        .filter(|r| r.threshold <= pass && r.fnmr <= target_fnmr)
        .map(|r| r.threshold)
        .fold(f64::NEG_INFINITY, f64::max);
    let fail = if fail.is_finite() { fail } else { pass };
    let (g, i) = (stats(&genuine), stats(&impostor));
    let (a, b) = fit_logistic(&genuine, &impostor);
    Report {
        margin: g.min - i.max,
        genuine: g,
        impostor: i,
        unscored: scored.iter().filter(|s| s.similarity.is_none()).count(),
        table: table
            .into_iter()
            .filter(|r| (r.threshold * 100.0).round() as i64 % 5 == 0)
            .collect(),
        pass,
        fail,
        target_fmr,
        target_fnmr,
        pass_from_tail: tail,
        a,
        b,
    }
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

/// z such that P(Z > z) = p for a standard normal (Abramowitz & Stegun 26.2.23, error < 4.5e-4).
pub fn upper_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-12, 0.5);
    let t = (-2.0 * p.ln()).sqrt();
    t - (2.515_517 + 0.802_853 * t + 0.010_328 * t * t)
        / (1.0 + 1.432_788 * t + 0.189_269 * t * t + 0.001_308 * t * t * t)
}

/// The report as text, ending with a manifest snippet.
pub fn render(r: &Report, scored: &[Scored]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "pairs:");
    for s in scored {
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let score = s
            .similarity
            .map_or("no face".to_owned(), |v| format!("{v:.4}"));
        let _ = writeln!(
            out,
            "  {:<9} {:>8}  {} ~ {}",
            if s.pair.same { "genuine" } else { "impostor" },
            score,
            name(&s.pair.a),
            name(&s.pair.b)
        );
    }
    for (label, st) in [("genuine", &r.genuine), ("impostor", &r.impostor)] {
        let _ = writeln!(
            out,
            "{label:<9} n={:<4} min={:.4} mean={:.4} max={:.4}",
            st.n, st.min, st.mean, st.max
        );
    }
    let _ = writeln!(out, "unscored pairs (no face): {}", r.unscored);
    let _ = writeln!(
        out,
        "margin (lowest genuine − highest impostor): {:.4}",
        r.margin
    );
    let _ = writeln!(out, "threshold    FMR     FNMR");
    for t in &r.table {
        let _ = writeln!(out, "  {:.2}     {:.4}  {:.4}", t.threshold, t.fmr, t.fnmr);
    }
    if r.pass_from_tail {
        let _ = writeln!(
            out,
            "note: with {} impostor pairs an FMR below {:.4} cannot be observed; `pass` extrapolates a normal fit of \
             the impostor scores to FMR {}. Collect more pairs before trusting it.",
            r.impostor.n,
            1.0 / r.impostor.n as f64,
            r.target_fmr
        );
    }
    let _ = writeln!(
        out,
        "\n# recommended for target FMR {} and FNMR {}: paste into models/manifest.toml",
        r.target_fmr, r.target_fnmr
    );
    let _ = writeln!(
        out,
        "[embedder.calibration]\na = {:.3}\nb = {:.3}\n",
        r.a, r.b
    );
    let _ = writeln!(
        out,
        "[embedder.profiles.calibrated]\npass = {:.2}\nfail = {:.2}",
        r.pass, r.fail
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(same: bool, s: f64) -> Scored {
        Scored {
            pair: Pair {
                a: "a".into(),
                b: "b".into(),
                same,
            },
            similarity: Some(s),
        }
    }

    #[test]
    fn thresholds_follow_the_targets() {
        let mut all: Vec<Scored> = [0.55, 0.6, 0.7, 0.45, 0.66]
            .iter()
            .map(|s| scored(true, *s))
            .collect();
        all.extend(
            [0.05, 0.1, 0.2, 0.31, -0.02]
                .iter()
                .map(|s| scored(false, *s)),
        );
        let r = report(&all, 0.0, 0.0);
        assert!(!r.pass_from_tail);
        assert_eq!(r.genuine.n, 5);
        assert!((r.margin - (0.45 - 0.31)).abs() < 1e-9);
        assert!((r.pass - 0.32).abs() < 1e-9, "{}", r.pass);
        assert!((r.fail - 0.32).abs() < 1e-9, "{}", r.fail);
        // The fitted curve separates the classes: P(same) rises through the gap.
        let p = |s: f64| 1.0 / (1.0 + (-(r.a * s + r.b)).exp());
        // Platt smoothing with five pairs per class caps the targets at 6/7 and 1/7.
        assert!(p(0.6) > 0.8 && p(0.1) < 0.2 && r.a > 0.0, "{} {}", r.a, r.b);
        let text = render(&r, &all);
        assert!(text.contains("[embedder.profiles.calibrated]"));
    }

    #[test]
    fn small_impostor_sets_extrapolate_the_tail() {
        assert!((upper_quantile(0.001) - 3.09).abs() < 0.01);
        assert!((upper_quantile(0.5)).abs() < 0.01);
        let mut all: Vec<Scored> = [0.55, 0.6, 0.7].iter().map(|s| scored(true, *s)).collect();
        all.extend([0.0, 0.1, -0.1, 0.05].iter().map(|s| scored(false, *s)));
        let r = report(&all, 0.001, 0.01);
        assert!(r.pass_from_tail);
        // mean 0.0125, sd ≈ 0.085: 0.0125 + 3.09 · 0.085 ≈ 0.28
        assert!((0.25..0.32).contains(&r.pass), "{}", r.pass);
    }

    #[test]
    fn reads_labelled_pairs() {
        let dir = tempfile_dir();
        let csv = dir.join("pairs.csv");
        let _ = std::fs::write(
            &csv,
            "a,b,label\nx.jpg, y.jpg, same # twins?\nx.jpg,z.jpg,0\n",
        );
        let pairs = read_pairs(&csv).unwrap_or_default();
        assert_eq!(pairs.len(), 2);
        assert!(pairs[0].same && !pairs[1].same);
        assert_eq!(pairs[0].b, dir.join("y.jpg"));
        let _ = std::fs::write(&csv, "x,y,maybe\n");
        assert!(read_pairs(&csv).is_err());
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("calib-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    }
}
