//! `ocr-accuracy`: document-ocr's reader and verdict rules over generated documents of every card/booklet
//! format and distortion level; prints field-level exact-match rates, document pass rates, wrong fields that
//! passed (must be zero) and per-document latency, as Markdown.
//!
//!   OMP_THREAD_LIMIT=1 cargo run --release -p docgen --bin ocr-accuracy -- --count 300
//!
//! With `--dir`, reads a folder written by `docgen` instead, on one thread, and prints one row comparable with
//! `tools/ocr-compare/compare.py`'s (scripts/ocr-compare.sh puts them side by side).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use anyhow::Context;
use clap::Parser;
use docgen::{Distortion, Identity, generate, load_font};
use document_ocr::{
    document::{DocumentHint, OcrQuery, judge},
    mrz::MrzFormat,
    ocr::{
        engine::{Engines, OcrEngine},
        reader,
    },
};
use idv_shared::{
    imaging::{DecodeLimits, decode_rgb},
    store::ArtifactId,
    verdict::Outcome,
};

#[derive(Parser)]
struct Cli {
    /// Documents (spread evenly over TD1, TD2, TD3 × clean, mild, strong).
    #[arg(long, default_value_t = 300)]
    count: u64,
    /// Worker threads, each with its own Tesseract.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Folder with mrz.traineddata.
    #[arg(long, default_value = ".cache/tessdata")]
    tessdata: String,
    /// Read the documents of a `docgen` folder (its manifest.json) one at a time instead.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

/// One document of a `docgen` folder.
#[derive(serde::Deserialize)]
struct Entry {
    file: String,
    identity: Identity,
}

fn engines(tessdata: &str) -> anyhow::Result<Engines> {
    Ok(Engines {
        primary: OcrEngine::new(tessdata, "mrz")?,
        fallback: OcrEngine::new(tessdata, "eng").ok(),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

/// The `--dir` mode: decode, locate, OCR and parse each file in turn, timed as one.
fn read_folder(dir: &std::path::Path, tessdata: &str) -> anyhow::Result<()> {
    let manifest: Vec<Entry> = serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)?;
    anyhow::ensure!(!manifest.is_empty(), "no documents in {}", dir.display());
    let mut engines = engines(tessdata)?;
    let today = chrono::Utc::now().date_naive();
    let (mut found, mut fields, mut docs, mut ms) = (0, 0, 0, Vec::new());
    for entry in &manifest {
        let bytes = std::fs::read(dir.join(&entry.file))?;
        let t = Instant::now();
        let page = decode_rgb(&bytes, DecodeLimits::default())?;
        let scan = reader::read(&mut engines, &page.image, today)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        if scan.reading().is_none() {
            continue;
        }
        found += 1;
        let query = OcrQuery {
            artifact: ArtifactId::generate("eu".parse()?),
            hint: DocumentHint::Auto,
            fields: None,
        };
        let (_, _, _, result) = judge(scan, &query, today, 0.0);
        let right = FIELDS
            .iter()
            .filter(|f| {
                result
                    .fields
                    .get(**f)
                    .is_some_and(|v| v.value == expected(&entry.identity, f))
            })
            .count();
        fields += right;
        docs += usize::from(right == FIELDS.len());
    }
    let n = manifest.len();
    let mean = ms.iter().sum::<f64>() / n as f64;
    ms.sort_by(f64::total_cmp);
    println!(
        "| document-ocr reader (in-process, one thread) | {n} | {:.1} % | {:.1} % | {:.1} % | {:.0} | {:.0} | {mean:.0} |",
        100.0 * found as f64 / n as f64,
        100.0 * fields as f64 / (n * FIELDS.len()) as f64,
        100.0 * docs as f64 / n as f64,
        percentile(&ms, 50.0),
        percentile(&ms, 95.0),
    );
    Ok(())
}

/// Every field but the optional data (which TD2 truncates by design).
const FIELDS: [&str; 9] = {
    let all = document_ocr::document::FIELDS;
    [
        all[0], all[1], all[2], all[3], all[4], all[5], all[6], all[7], all[8],
    ]
};

fn expected(id: &Identity, field: &str) -> String {
    match field {
        "document_code" => id.document_code.clone(),
        "issuing_state" => id.issuing_state.clone(),
        "surname" => id.surname.clone(),
        "given_names" => id.given_names.clone(),
        "document_number" => id.document_number.clone(),
        "nationality" => id.nationality.clone(),
        "birth_date" => id.birth_date.to_string(),
        "sex" => id.sex.to_string().replace('<', "X"),
        _ => id.expiry_date.to_string(),
    }
}

#[derive(Default, Clone)]
struct Tally {
    docs: u64,
    fields: u64,
    exact: u64,
    passed: u64,
    passed_exact: u64,
    wrong_passed: u64,
    ms: Vec<f64>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(dir) = &cli.dir {
        return read_folder(dir, &cli.tessdata);
    }
    let font = Arc::new(load_font().map_err(anyhow::Error::msg)?);
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).context("date")?;
    let formats = [MrzFormat::Td1, MrzFormat::Td2, MrzFormat::Td3];
    let levels = [Distortion::CLEAN, Distortion::MILD, Distortion::STRONG];
    let next = Arc::new(Mutex::new(0u64));
    let tallies: Arc<Mutex<BTreeMap<(String, String), Tally>>> = Arc::default();
    let started = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..cli.workers.max(1) {
        let (font, next, tallies, tessdata, count) = (
            font.clone(),
            next.clone(),
            tallies.clone(),
            cli.tessdata.clone(),
            cli.count,
        );
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let mut engines = engines(&tessdata)?;
            loop {
                let i = {
                    let mut n = next.lock().map_err(|_| anyhow::anyhow!("lock"))?;
                    let i = *n;
                    *n += 1;
                    i
                };
                if i >= count {
                    return Ok(());
                }
                let (format, level) = (formats[(i % 3) as usize], levels[((i / 3) % 3) as usize]);
                let doc = generate(&font, format, level, 1000 + i, today);
                let t = Instant::now();
                let page = decode_rgb(&doc.jpeg, DecodeLimits::default())?;
                let scan = reader::read(&mut engines, &page.image, today)?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let query = OcrQuery {
                    artifact: ArtifactId::generate("eu".parse()?),
                    hint: DocumentHint::Auto,
                    fields: None,
                };
                let conf = scan.reading().map_or(0.0, |r| r.confidence);
                let min_confidence = document_ocr::config::Settings::default().min_confidence;
                let (verdict, _, _, result) = judge(scan, &query, today, min_confidence);
                let exact = FIELDS
                    .iter()
                    .filter(|f| result.fields.get(**f).is_some_and(|v| v.value == expected(&doc.identity, f)))
                    .count() as u64;
                if verdict == Outcome::Pass {
                    for f in FIELDS {
                        let got = result.fields.get(f).map(|v| v.value.clone()).unwrap_or_default();
                        let want = expected(&doc.identity, f);
                        if got != want {
                            // Synthetic data: safe to print.
                            eprintln!("wrong field with pass: doc {} ({format:?}, {}) {f}: read {got:?}, printed {want:?}, confidence {conf:.3}", 1000 + i, level.level);
                        }
                    }
                }
                let mut all = tallies.lock().map_err(|_| anyhow::anyhow!("lock"))?;
                for key in [(format!("{format:?}"), level.level.to_owned()), ("all".into(), level.level.to_owned())] {
                    let t = all.entry(key).or_default();
                    t.docs += 1;
                    t.fields += FIELDS.len() as u64;
                    t.exact += exact;
                    if verdict == Outcome::Pass {
                        t.passed += 1;
                        if exact == FIELDS.len() as u64 {
                            t.passed_exact += 1;
                        } else {
                            t.wrong_passed += 1;
                        }
                    }
                    t.ms.push(ms);
                }
            }
        }));
    }
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    let wall = started.elapsed().as_secs_f64();
    let all = tallies.lock().map_err(|_| anyhow::anyhow!("lock"))?;
    println!(
        "| format | distortion | documents | fields exact | documents passed | wrong field with pass | p50 ms | p95 ms |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for ((format, level), t) in all.iter() {
        let mut ms = t.ms.clone();
        ms.sort_by(f64::total_cmp);
        let pct = |p: f64| percentile(&ms, p);
        println!(
            "| {format} | {level} | {} | {:.1} % ({}/{}) | {:.1} % | {} | {:.0} | {:.0} |",
            t.docs,
            100.0 * t.exact as f64 / t.fields as f64,
            t.exact,
            t.fields,
            100.0 * t.passed as f64 / t.docs as f64,
            t.wrong_passed,
            pct(50.0),
            pct(95.0)
        );
    }
    println!(
        "\n{} documents in {wall:.1} s on {} workers ({:.1} documents/s)",
        cli.count,
        cli.workers,
        cli.count as f64 / wall
    );
    Ok(())
}
