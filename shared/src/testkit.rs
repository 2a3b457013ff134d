//! Helpers for the services' integration tests (feature `testkit`): serving on an ephemeral port, a
//! throwaway configuration, and the OpenAPI drift check.

use std::{net::SocketAddr, path::Path};

use crate::{config::CommonConfig, verdict::ServiceName};

/// A configuration for tests: everything under `data_dir`, folder stores for `eu` and `us`, readable logs.
pub fn test_config(service: ServiceName, data_dir: &Path) -> CommonConfig {
    let mut config = CommonConfig::for_service(service);
    config.data_dir = data_dir.to_owned();
    config.log.format = "pretty".into();
    config.log.filter = "warn".into();
    crate::telemetry::init(&config.log);
    config
}

/// Serves a router on `127.0.0.1:0` in the background and returns its address.
pub async fn serve_ephemeral(router: axum::Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

/// Compares the committed `openapi/<service>.json` with the document built from code. With
/// `UPDATE_OPENAPI=1` it rewrites the file instead. Returns a message describing any drift.
pub fn openapi_drift(api: &utoipa::openapi::OpenApi, file: &Path) -> Result<(), String> {
    let generated = api.to_pretty_json().map_err(|e| e.to_string())? + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(file, &generated).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let committed = std::fs::read_to_string(file).unwrap_or_default();
    if committed == generated {
        Ok(())
    } else {
        Err(format!(
            "{} differs from the code's OpenAPI document; regenerate it with `UPDATE_OPENAPI=1 cargo test openapi` \
             and commit the result",
            file.display()
        ))
    }
}
