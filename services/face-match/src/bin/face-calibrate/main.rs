//! `face-calibrate --pairs pairs.csv`: scores labelled image pairs with a manifest's models and recommends
//! thresholds and a calibration to paste into the manifest. Offline tooling, kept out of the service.

mod calibrate;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use face_match::{SERVICE, config::Settings, models::RuntimeOptions};

/// Score labelled pairs (`a,b,same|different` per line) and recommend thresholds and a calibration.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The CSV of pairs.
    #[arg(long)]
    pairs: PathBuf,
    /// The manifest whose models to use (default: the configured one).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Largest acceptable false-match rate at the pass threshold.
    #[arg(long, default_value_t = 0.001)]
    target_fmr: f64,
    /// Largest acceptable false-non-match rate at the fail threshold.
    #[arg(long, default_value_t = 0.01)]
    target_fnmr: f64,
    /// Print JSON (scores and report) instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (_, settings) = idv_shared::config::load::<Settings>(SERVICE).context("configuration")?;
    let list = calibrate::read_pairs(&cli.pairs).map_err(anyhow::Error::msg)?;
    let options = RuntimeOptions {
        dylib: settings.ort_dylib_path(),
        threads: settings.ort_threads.max(1),
        slots: 1,
    };
    let manifest = cli.manifest.unwrap_or(settings.manifest);
    let scored = calibrate::score_pairs(&manifest, &options, &list)?;
    let report = calibrate::report(&scored, cli.target_fmr, cli.target_fnmr);
    if cli.json {
        let out = serde_json::json!({"pairs": scored, "report": report});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", calibrate::render(&report, &scored));
    }
    Ok(())
}
