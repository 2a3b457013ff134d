//! The face-match binary: `face-match` serves; `face-match openapi` prints the OpenAPI document;
//! `face-match calibrate --pairs pairs.csv` recommends thresholds from labelled pairs.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use face_match::{App, SERVICE, calibrate, config::Settings, models::RuntimeOptions, openapi};

#[derive(Parser)]
#[command(version, about = "Selfie-to-document face verification")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Print the OpenAPI document.
    Openapi,
    /// Score labelled pairs (`a,b,same|different` per line) and recommend thresholds and a calibration.
    Calibrate {
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
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (common, settings) =
        idv_shared::config::load::<Settings>(SERVICE).context("configuration")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            println!("{}", openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Calibrate {
            pairs,
            manifest,
            target_fmr,
            target_fnmr,
            json,
        } => {
            let list = calibrate::read_pairs(&pairs).map_err(anyhow::Error::msg)?;
            let options = RuntimeOptions {
                dylib: settings.ort_dylib_path(),
                threads: settings.ort_threads.max(1),
                slots: 1,
            };
            let manifest = manifest.unwrap_or(settings.manifest);
            let scored = tokio::task::spawn_blocking(move || {
                calibrate::score_pairs(&manifest, &options, &list)
            })
            .await??;
            let report = calibrate::report(&scored, target_fmr, target_fnmr);
            if json {
                let out = serde_json::json!({"pairs": scored, "report": report});
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", calibrate::render(&report, &scored));
            }
            Ok(())
        }
        Command::Serve => {
            idv_shared::telemetry::init(&common.log);
            let listener = tokio::net::TcpListener::bind(common.bind)
                .await
                .with_context(|| format!("bind {}", common.bind))?;
            let app = App::build(common, settings).await.context("start-up")?;
            app.serve(listener).await.context("serve")
        }
    }
}
