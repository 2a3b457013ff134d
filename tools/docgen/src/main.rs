//! `docgen`: writes synthetic documents (JPEG) and a manifest of their expected fields.
//!
//!   cargo run --release -p docgen -- --count 300 --out var/docs

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use docgen::{Distortion, generate_with, load_font};
use document_ocr::mrz::MrzFormat;

#[derive(Parser)]
#[command(about = "Render synthetic identity documents with valid MRZs")]
struct Cli {
    /// Documents to write (spread over TD1, TD2, TD3 and the three distortion levels).
    #[arg(long, default_value_t = 30)]
    count: u64,
    /// Output folder.
    #[arg(long, default_value = "var/docs")]
    out: PathBuf,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only this format (TD1, TD2, TD3, MRV-A, MRV-B); all three card/booklet formats in turn by default.
    #[arg(long)]
    format: Option<String>,
    /// Only this distortion level (clean, mild, strong); all three in turn by default.
    #[arg(long)]
    distortion: Option<String>,
    /// Reference date for validity (YYYY-MM-DD); today by default.
    #[arg(long)]
    today: Option<chrono::NaiveDate>,
    /// A photo (e.g. a face) to print in the photo area of every page, instead of the drawn placeholder.
    #[arg(long)]
    photo: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let font = load_font().map_err(anyhow::Error::msg)?;
    let today = cli
        .today
        .unwrap_or_else(|| idv_shared::clock::Clock::today(&idv_shared::clock::SystemClock));
    std::fs::create_dir_all(&cli.out).with_context(|| cli.out.display().to_string())?;
    let photo = match &cli.photo {
        Some(path) => Some(
            image::open(path)
                .with_context(|| path.display().to_string())?
                .to_rgb8(),
        ),
        None => None,
    };
    let formats = [MrzFormat::Td1, MrzFormat::Td2, MrzFormat::Td3];
    let levels = [Distortion::CLEAN, Distortion::MILD, Distortion::STRONG];
    let mut manifest = Vec::new();
    for i in 0..cli.count {
        let seed = cli.seed + i;
        let format = match cli.format.as_deref() {
            Some("TD1") => MrzFormat::Td1,
            Some("TD2") => MrzFormat::Td2,
            Some("TD3") => MrzFormat::Td3,
            Some("MRV-A") => MrzFormat::MrvA,
            Some("MRV-B") => MrzFormat::MrvB,
            Some(other) => anyhow::bail!("unknown format {other}"),
            None => formats[(i % 3) as usize],
        };
        let level = match cli.distortion.as_deref() {
            Some(name) => {
                Distortion::named(name).with_context(|| format!("unknown distortion {name}"))?
            }
            None => levels[((i / 3) % 3) as usize],
        };
        let doc = generate_with(&font, format, level, seed, today, photo.as_ref());
        let name = format!("doc-{seed:05}.jpg");
        std::fs::write(cli.out.join(&name), &doc.jpeg)?;
        manifest.push(serde_json::json!({
            "file": name, "format": format, "distortion": level.level, "seed": seed,
            "lines": doc.lines, "identity": doc.identity,
        }));
    }
    std::fs::write(
        cli.out.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    println!("{} documents in {}", cli.count, cli.out.display());
    Ok(())
}
