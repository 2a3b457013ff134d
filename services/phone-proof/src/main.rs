//! The phone-proof binary: `phone-proof` serves; `phone-proof openapi` prints the OpenAPI document.

use anyhow::Context;
use phone_proof::{App, SERVICE, config::Settings, openapi};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        println!("{}", openapi().to_pretty_json()?);
        return Ok(());
    }
    let (common, settings) =
        idv_shared::config::load::<Settings>(SERVICE).context("configuration")?;
    idv_shared::telemetry::init(&common.log, SERVICE)
        .map_err(anyhow::Error::msg)
        .context("telemetry")?;
    let listener = tokio::net::TcpListener::bind(common.bind)
        .await
        .with_context(|| format!("bind {}", common.bind))?;
    let app = App::build(common, settings).await.context("start-up")?;
    app.serve(listener).await.context("serve")
}
