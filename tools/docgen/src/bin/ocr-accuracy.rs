//! `ocr-accuracy`: document-ocr's reader and verdict rules over generated documents of every format and capture
//! level, forged documents and junk pages; prints, as Markdown, fields exact, genuine documents passed and
//! **failed** (false rejects), wrong fields under `pass` (must be zero), forged documents caught (`fail`),
//! returned values that differ from the print because of a repair (must be zero), and per-document latency.
//!
//!   OMP_THREAD_LIMIT=1 cargo run --release -p docgen --bin ocr-accuracy -- --count 500 --forged 100 --junk 10
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
use docgen::{Distortion, Forged, Identity, Junk, generate, generate_forged, junk, load_font};
use document_ocr::{
    document::{DocumentHint, OcrQuery, OcrResult, Policy, judge},
    mrz::MrzFormat,
    ocr::{
        engine::{Engines, OcrEngine},
        ocrb::OcrB,
        reader,
    },
};
use idv_shared::{
    imaging::{DecodeLimits, decode_rgb},
    store::ArtifactId,
    verdict::{Outcome, Reason, ReasonCode},
};

#[derive(Parser)]
struct Cli {
    /// Genuine documents, spread evenly over the formats × levels.
    #[arg(long, default_value_t = 300)]
    count: u64,
    /// Forged documents (one check-digit-protected character changed), spread over formats, levels and fields.
    #[arg(long, default_value_t = 0)]
    forged: u64,
    /// Junk pages of each kind (blank, noise 600×400, noise 1200×800, landscape).
    #[arg(long, default_value_t = 0)]
    junk: u64,
    /// Mild documents also read turned by 90°, 180° and 270° (each turn this many).
    #[arg(long, default_value_t = 0)]
    rotated: u64,
    /// Distortion levels, comma separated (clean, mild, strong, phone, keystone).
    #[arg(long, default_value = "clean,mild,strong,phone,keystone")]
    levels: String,
    /// Formats, comma separated (TD1, TD2, TD3, MRV-A, MRV-B).
    #[arg(long, default_value = "TD1,TD2,TD3,MRV-A,MRV-B")]
    formats: String,
    /// First seed (genuine documents use seed, seed+1, …; forgeries and junk their own ranges above it).
    #[arg(long, default_value_t = 1000)]
    seed: u64,
    /// Worker threads, each with its own Tesseract.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Folder with mrz.traineddata.
    #[arg(long, default_value = ".cache/tessdata")]
    tessdata: String,
    /// The OCR-B typeface the reader matches MRZ characters against; empty for Tesseract alone.
    #[arg(long, default_value = "/usr/share/fonts/opentype/ocr-b/OCRB.otf")]
    mrz_font: String,
    /// The least share a misread must carry to excuse a failing check (the service's `OCR_MIN_MISREAD_SHARE`).
    #[arg(long, default_value_t = document_ocr::config::Settings::default().min_misread_share)]
    min_misread_share: f32,
    /// Read only these seeds of the ranges above, comma separated (to look again at pages `--verbose` listed).
    #[arg(long, value_delimiter = ',')]
    only: Vec<u64>,
    /// Print every genuine document that did not pass, and every forgery that was not caught.
    #[arg(long)]
    verbose: bool,
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

fn engines(tessdata: &str, mrz_font: &str) -> anyhow::Result<Engines> {
    let ocrb = if mrz_font.is_empty() {
        None
    } else {
        Some(Arc::new(OcrB::load(std::path::Path::new(mrz_font))?))
    };
    Ok(Engines {
        primary: OcrEngine::new(tessdata, "mrz")?,
        fallback: OcrEngine::new(tessdata, "eng").ok(),
        viz: OcrEngine::text(tessdata, "eng").ok(),
        ocrb,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn query() -> anyhow::Result<OcrQuery> {
    Ok(OcrQuery {
        artifact: ArtifactId::generate("eu".parse()?),
        hint: DocumentHint::Auto,
        fields: None,
    })
}

/// What the verdict says of each failing check (how it was read, and for a misread that would excuse it, its
/// share): what `--min-misread-share` weighs.
fn check_details(reasons: &[Reason]) -> Vec<&str> {
    reasons
        .iter()
        .filter(|r| r.code == ReasonCode::CheckDigitMismatch)
        .map(|r| r.detail.as_str())
        .collect()
}

/// Decodes and reads one page as the service does, timed as one.
fn read(
    engines: &mut Engines,
    jpeg: &[u8],
    today: chrono::NaiveDate,
    policy: Policy,
) -> anyhow::Result<(Outcome, Vec<Reason>, OcrResult, f64)> {
    let t = Instant::now();
    let page = decode_rgb(jpeg, DecodeLimits::default())?;
    let scan = reader::read(engines, &page.image, today)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let (verdict, _, reasons, result) = judge(scan, &query()?, today, policy);
    Ok((verdict, reasons, result, ms))
}

/// The `--dir` mode: decode, locate, OCR and parse each file in turn, timed as one.
fn read_folder(
    dir: &std::path::Path,
    tessdata: &str,
    mrz_font: &str,
    policy: Policy,
) -> anyhow::Result<()> {
    let manifest: Vec<Entry> = serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)?;
    anyhow::ensure!(!manifest.is_empty(), "no documents in {}", dir.display());
    let mut engines = engines(tessdata, mrz_font)?;
    let today = idv_shared::clock::Clock::today(&idv_shared::clock::SystemClock);
    let (mut found, mut fields, mut docs, mut ms) = (0, 0, 0, Vec::new());
    for entry in &manifest {
        let bytes = std::fs::read(dir.join(&entry.file))?;
        let (_, _, result, took) = read(&mut engines, &bytes, today, policy)?;
        ms.push(took);
        if result.format.is_none() {
            continue;
        }
        found += 1;
        let right = exact_fields(&result, &entry.identity);
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
        "optional_data" => id.optional_data.clone(),
        _ => id.expiry_date.to_string(),
    }
}

fn value<'a>(result: &'a OcrResult, field: &str) -> Option<&'a str> {
    result.fields.get(field).map(|v| v.value.as_str())
}

fn exact_fields(result: &OcrResult, id: &Identity) -> usize {
    FIELDS
        .iter()
        .filter(|f| value(result, f) == Some(expected(id, f).as_str()))
        .count()
}

/// Every field read other than printed, as `field="read"/"printed"` (synthetic data: safe to print).
fn misread(result: &OcrResult, id: &Identity) -> Vec<String> {
    FIELDS
        .iter()
        .filter(|f| value(result, f) != Some(expected(id, f).as_str()))
        .map(|f| {
            format!(
                "{f}={:?}/{:?}",
                value(result, f).unwrap_or_default(),
                expected(id, f)
            )
        })
        .collect()
}

/// Fields returned with a value that differs from the print, where a repair touched that field.
fn repaired_wrong(result: &OcrResult, id: &Identity) -> Vec<String> {
    let touched = |f: &str| {
        result
            .corrections
            .iter()
            .any(|c| c.field == f || (c.field == "names" && (f == "surname" || f == "given_names")))
    };
    FIELDS
        .iter()
        .chain(std::iter::once(&"optional_data"))
        .filter(|f| touched(f))
        .filter(|f| value(result, f).is_some_and(|v| v != expected(id, f)))
        .map(|f| (*f).to_owned())
        .collect()
}

fn parse_format(name: &str) -> anyhow::Result<MrzFormat> {
    Ok(match name {
        "TD1" => MrzFormat::Td1,
        "TD2" => MrzFormat::Td2,
        "TD3" => MrzFormat::Td3,
        "MRV-A" => MrzFormat::MrvA,
        "MRV-B" => MrzFormat::MrvB,
        other => anyhow::bail!("unknown format {other}"),
    })
}

#[derive(Clone, Copy)]
enum Job {
    Genuine(MrzFormat, Distortion, u64),
    Forged(MrzFormat, Distortion, u64, Forged),
    Junk(Junk, u64),
    Rotated(MrzFormat, u64, u8),
}

impl Job {
    /// The seed its page is drawn from.
    fn seed(&self) -> u64 {
        match *self {
            Job::Genuine(.., seed)
            | Job::Forged(_, _, seed, _)
            | Job::Junk(_, seed)
            | Job::Rotated(_, seed, _) => seed,
        }
    }
}

#[derive(Default, Clone)]
struct Tally {
    docs: u64,
    fields: u64,
    exact: u64,
    passed: u64,
    review: u64,
    failed: u64,
    wrong_passed: u64,
    repaired_wrong: u64,
    reasons: BTreeMap<String, u64>,
    ms: Vec<f64>,
}

impl Tally {
    fn add(&mut self, verdict: Outcome, reasons: &[Reason], ms: f64) {
        self.docs += 1;
        match verdict {
            Outcome::Pass => self.passed += 1,
            Outcome::Review => self.review += 1,
            Outcome::Fail => self.failed += 1,
        }
        for r in reasons {
            *self.reasons.entry(r.code.as_str().to_owned()).or_default() += 1;
        }
        self.ms.push(ms);
    }

    fn pct(&self, n: u64) -> f64 {
        100.0 * n as f64 / self.docs.max(1) as f64
    }

    fn latency(&self) -> (f64, f64, f64) {
        let mut ms = self.ms.clone();
        ms.sort_by(f64::total_cmp);
        (
            percentile(&ms, 50.0),
            percentile(&ms, 95.0),
            percentile(&ms, 99.0),
        )
    }

    fn reasons(&self) -> String {
        self.reasons
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

type Tallies = BTreeMap<(String, String, String), Tally>;

fn jobs(cli: &Cli) -> anyhow::Result<Vec<Job>> {
    let formats: Vec<MrzFormat> = cli
        .formats
        .split(',')
        .map(parse_format)
        .collect::<anyhow::Result<_>>()?;
    let levels: Vec<Distortion> = cli
        .levels
        .split(',')
        .map(|l| Distortion::named(l).with_context(|| format!("unknown level {l}")))
        .collect::<anyhow::Result<_>>()?;
    let (nf, nl) = (formats.len() as u64, levels.len() as u64);
    let pick = |i: u64| (formats[(i % nf) as usize], levels[((i / nf) % nl) as usize]);
    let mut jobs = Vec::new();
    for i in 0..cli.count {
        let (f, l) = pick(i);
        jobs.push(Job::Genuine(f, l, cli.seed + i));
    }
    let fields = [
        Forged::DocumentNumber,
        Forged::BirthDate,
        Forged::ExpiryDate,
        Forged::OptionalData,
    ];
    for i in 0..cli.forged {
        let (f, l) = pick(i);
        let field = fields[((i / (nf * nl)) % 4) as usize];
        jobs.push(Job::Forged(f, l, cli.seed + 100_000 + i, field));
    }
    for i in 0..cli.junk {
        for kind in Junk::ALL {
            jobs.push(Job::Junk(kind, cli.seed + 200_000 + i));
        }
    }
    for i in 0..cli.rotated {
        for turns in [0, 1, 2, 3] {
            jobs.push(Job::Rotated(
                formats[(i % nf) as usize],
                cli.seed + 300_000 + i,
                turns,
            ));
        }
    }
    if !cli.only.is_empty() {
        jobs.retain(|j| cli.only.contains(&j.seed()));
    }
    Ok(jobs)
}

fn turned(jpeg: &[u8], turns: u8) -> anyhow::Result<Vec<u8>> {
    let img = image::load_from_memory(jpeg)?.to_rgb8();
    let img = match turns {
        1 => image::imageops::rotate90(&img),
        2 => image::imageops::rotate180(&img),
        3 => image::imageops::rotate270(&img),
        _ => img,
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img)?;
    Ok(out)
}

fn run(
    job: Job,
    engines: &mut Engines,
    font: &ab_glyph::FontVec,
    today: chrono::NaiveDate,
    policy: Policy,
    verbose: bool,
    tallies: &Mutex<Tallies>,
) -> anyhow::Result<()> {
    let fmt = |f: MrzFormat| format!("{f:?}");
    let (key, identity, jpeg) = match job {
        Job::Genuine(f, l, seed) => {
            let doc = generate(font, f, l, seed, today);
            (
                ("genuine", fmt(f), l.level.to_owned()),
                Some(doc.identity),
                doc.jpeg,
            )
        }
        Job::Forged(f, l, seed, field) => {
            let doc = generate_forged(font, f, l, seed, today, field);
            (
                ("forged", fmt(f), l.level.to_owned()),
                Some(doc.identity),
                doc.jpeg,
            )
        }
        Job::Junk(kind, seed) => (
            ("junk", String::new(), format!("{kind:?}")),
            None,
            junk(kind, seed),
        ),
        Job::Rotated(f, seed, turns) => {
            let doc = generate(font, f, Distortion::MILD, seed, today);
            (
                (
                    "rotated",
                    String::new(),
                    format!("{}°", u16::from(turns) * 90),
                ),
                Some(doc.identity),
                turned(&doc.jpeg, turns)?,
            )
        }
    };
    let seed = job.seed();
    let (verdict, reasons, result, ms) = read(engines, &jpeg, today, policy)?;
    let exact = identity.as_ref().map_or(0, |id| exact_fields(&result, id)) as u64;
    let wrong = identity
        .as_ref()
        .map(|id| repaired_wrong(&result, id))
        .unwrap_or_default();
    let genuine = matches!(job, Job::Genuine(..) | Job::Rotated(..));
    let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
    if let Some(id) = identity.as_ref().filter(|_| genuine) {
        if verdict == Outcome::Pass && exact < FIELDS.len() as u64 {
            for f in FIELDS {
                let (got, want) = (value(&result, f).unwrap_or_default(), expected(id, f));
                if got != want {
                    // Synthetic data: safe to print.
                    eprintln!(
                        "WRONG FIELD WITH PASS: {key:?} seed {seed} {f}: read {got:?}, printed {want:?}"
                    );
                }
            }
        } else if verbose && verdict != Outcome::Pass {
            let wrong = misread(&result, id);
            let why = check_details(&reasons);
            let repairs: Vec<String> = result
                .corrections
                .iter()
                .map(|c| format!("{}@{}:{} {}→{}", c.field, c.line, c.column, c.from, c.to))
                .collect();
            eprintln!(
                "genuine not passed: {key:?} seed {seed} {verdict:?} {codes:?} uncertain {:?} wrong {wrong:?} repairs {repairs:?} \
                 repaired≠print {:?} why {why:?}",
                result.uncertain_fields,
                repaired_wrong(&result, id)
            );
        }
    }
    if let (true, Job::Forged(.., field), Some(id)) = (verbose, job, identity.as_ref())
        && verdict != Outcome::Fail
    {
        let checks: Vec<String> = result
            .checks
            .iter()
            .map(|c| format!("{:?}:{}", c.field, if c.holds { "ok" } else { "FAILS" }))
            .collect();
        let misread = misread(&result, id);
        let why = check_details(&reasons);
        // Synthetic data: safe to print.
        eprintln!(
            "forgery not failed: {key:?} seed {seed} forged {field:?} {verdict:?} {codes:?} checks {checks:?} uncertain {:?} \
             corrections {} misread {misread:?} why {why:?}",
            result.uncertain_fields,
            result.corrections.len()
        );
    }
    if !wrong.is_empty() {
        eprintln!("REPAIRED VALUE DIFFERS FROM PRINT: {key:?} {wrong:?}");
    }
    let mut all = tallies.lock().map_err(|_| anyhow::anyhow!("lock"))?;
    let (kind, format, level) = key;
    let mut keys = vec![(kind.to_owned(), "all".to_owned(), level.clone())];
    if !format.is_empty() {
        keys.push((kind.to_owned(), format, level));
    }
    for k in keys {
        let t = all.entry(k).or_default();
        t.add(verdict, &reasons, ms);
        t.fields += FIELDS.len() as u64;
        t.exact += exact;
        t.repaired_wrong += wrong.len() as u64;
        if verdict == Outcome::Pass && exact < FIELDS.len() as u64 {
            t.wrong_passed += 1;
        }
    }
    Ok(())
}

fn report(all: &Tallies) {
    fn rows<'a>(
        all: &'a Tallies,
        kind: &'static str,
    ) -> impl Iterator<Item = (&'a (String, String, String), &'a Tally)> {
        all.iter().filter(move |((k, ..), _)| k == kind)
    }
    println!(
        "| format | distortion | documents | fields exact | passed | review | **failed** | wrong field with pass | repaired ≠ print | p50 ms | p95 ms | p99 ms |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((_, format, level), t) in rows(all, "genuine") {
        let (p50, p95, p99) = t.latency();
        println!(
            "| {format} | {level} | {} | {:.1} % ({}/{}) | {:.1} % | {:.1} % | {:.1} % | {} | {} | {p50:.0} | {p95:.0} | {p99:.0} |",
            t.docs,
            100.0 * t.exact as f64 / t.fields.max(1) as f64,
            t.exact,
            t.fields,
            t.pct(t.passed),
            t.pct(t.review),
            t.pct(t.failed),
            t.wrong_passed,
            t.repaired_wrong,
        );
    }
    let forged: Vec<_> = rows(all, "forged")
        .filter(|((_, f, _), _)| f == "all")
        .collect();
    if !forged.is_empty() {
        println!(
            "\n| forged documents | n | **fail** | review | pass | repaired ≠ print | reasons | p50 ms |"
        );
        println!("|---|---:|---:|---:|---:|---:|---|---:|");
        for ((_, _, level), t) in forged {
            println!(
                "| {level} | {} | {} | {} | {} | {} | {} | {:.0} |",
                t.docs,
                t.failed,
                t.review,
                t.passed,
                t.repaired_wrong,
                t.reasons(),
                t.latency().0
            );
        }
    }
    let junk: Vec<_> = rows(all, "junk").collect();
    if !junk.is_empty() {
        println!(
            "\n| junk page | n | verdicts (pass/review/fail) | reasons | p50 ms | p99 ms | max ms |"
        );
        println!("|---|---:|---|---|---:|---:|---:|");
        for ((_, _, kind), t) in junk {
            let (p50, _, p99) = t.latency();
            let max = t.ms.iter().copied().fold(0.0, f64::max);
            println!(
                "| {kind} | {} | {}/{}/{} | {} | {p50:.0} | {p99:.0} | {max:.0} |",
                t.docs,
                t.passed,
                t.review,
                t.failed,
                t.reasons()
            );
        }
    }
    let rotated: Vec<_> = rows(all, "rotated").collect();
    if !rotated.is_empty() {
        println!("\n| mild page turned | n | passed | fields exact | p50 ms | p95 ms |");
        println!("|---|---:|---:|---:|---:|---:|");
        for ((_, _, turn), t) in rotated {
            let (p50, p95, _) = t.latency();
            println!(
                "| {turn} | {} | {:.1} % | {:.1} % | {p50:.0} | {p95:.0} |",
                t.docs,
                t.pct(t.passed),
                100.0 * t.exact as f64 / t.fields.max(1) as f64
            );
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `cargo run` sets it (`.cargo/config.toml`); a binary run directly does not, and its figures mislead.
    if std::env::var_os("OMP_THREAD_LIMIT").is_none() {
        eprintln!(
            "warning: OMP_THREAD_LIMIT is not set: Tesseract's OpenMP threads fight over the cores, pages take \
             several times longer and run out of their time budget; set OMP_THREAD_LIMIT=1 to measure the service"
        );
    }
    let settings = document_ocr::config::Settings {
        min_misread_share: cli.min_misread_share,
        ..Default::default()
    };
    settings.validate().map_err(anyhow::Error::msg)?;
    let policy = settings.policy();
    if let Some(dir) = &cli.dir {
        return read_folder(dir, &cli.tessdata, &cli.mrz_font, policy);
    }
    let font = Arc::new(load_font().map_err(anyhow::Error::msg)?);
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).context("date")?;
    let jobs = Arc::new(jobs(&cli)?);
    let next = Arc::new(Mutex::new(0usize));
    let tallies: Arc<Mutex<Tallies>> = Arc::default();
    let started = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..cli.workers.max(1) {
        let (font, next, tallies, jobs, tessdata, mrz_font, verbose) = (
            font.clone(),
            next.clone(),
            tallies.clone(),
            jobs.clone(),
            cli.tessdata.clone(),
            cli.mrz_font.clone(),
            cli.verbose,
        );
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let mut engines = engines(&tessdata, &mrz_font)?;
            loop {
                let i = {
                    let mut n = next.lock().map_err(|_| anyhow::anyhow!("lock"))?;
                    *n += 1;
                    *n - 1
                };
                let Some(job) = jobs.get(i) else {
                    return Ok(());
                };
                run(*job, &mut engines, &font, today, policy, verbose, &tallies)?;
            }
        }));
    }
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    let wall = started.elapsed().as_secs_f64();
    report(&*tallies.lock().map_err(|_| anyhow::anyhow!("lock"))?);
    println!(
        "\n{} pages in {wall:.1} s on {} workers ({:.1} pages/s; the generator renders them in the same process)",
        jobs.len(),
        cli.workers,
        jobs.len() as f64 / wall
    );
    Ok(())
}
