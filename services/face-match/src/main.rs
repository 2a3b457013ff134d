//! The face-match binary: `face-match` serves; `face-match openapi` prints the OpenAPI document. Offline
//! threshold calibration is its own binary, `face-calibrate`, so the service carries none of it.

use anyhow::Context;
use clap::{Parser, Subcommand};
use face_match::{App, SERVICE, config::Settings, openapi};

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
        Command::Serve => {
            idv_shared::telemetry::init(&common.log, SERVICE)
                .map_err(anyhow::Error::msg)
                .context("telemetry")?;
            let listener = tokio::net::TcpListener::bind(common.bind)
                .await
                .with_context(|| format!("bind {}", common.bind))?;
            let app = App::build(common, settings).await.context("start-up")?;
            app.serve(listener).await.context("serve")
        }
    }
}
