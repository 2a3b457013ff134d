//! Serving with graceful shutdown; SIGHUP reloads keys.

use std::{sync::Arc, time::Duration};

use axum::Router;

use super::Kernel;

/// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests and flushes the ledger. SIGHUP reloads.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    kernel: Arc<Kernel>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(service = %kernel.service(), %addr, "listening");
    spawn_reload_on_sighup(kernel.clone());
    let grace = Duration::from_secs(kernel.config().http.shutdown_grace_secs);
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = signalled.send(());
    });
    // In-flight requests get `http.shutdown_grace_secs` after the signal; then the server is dropped, and a
    // request cut off there never got its verdict (every answered verdict is in the ledger already).
    let grace_over = async move {
        if on_signal.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server.into_future() => {
            served?;
            tracing::info!("in-flight requests finished; flushing the audit ledger");
        }
        () = grace_over => {
            tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over; requests still in flight were dropped");
        }
    }
    kernel.auditor().shutdown();
    crate::telemetry::shutdown().await;
    Ok(())
}

fn spawn_reload_on_sighup(kernel: Arc<Kernel>) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            kernel.reload();
        }
    });
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
