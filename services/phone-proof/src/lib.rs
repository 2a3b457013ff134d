//! phone-proof: One-time-code proof of phone possession.
//!
//! [`App::build`] wires the kernel and the service's state; [`App::router`] serves it, so tests can run the
//! whole service on `127.0.0.1:0`.

pub mod challenge;
pub mod config;
pub mod error;
pub mod routes;
pub mod sender;
pub mod store;

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::FromRef};
use challenge::{
    keys::{KeySource, Keys},
    service::{PhoneProof, Ports},
};
use config::{SenderKind, Settings};
use idv_shared::{
    Kernel,
    auth::AuthContext,
    clock::{SharedClock, SystemClock},
    config::CommonConfig,
    kernel::{KernelError, assemble, base_openapi},
    verdict::ServiceName,
};
use sender::{
    Sender,
    outbox::OutboxSender,
    webhook::{RetryPolicy, SigningSecret, WebhookSender},
};
use store::{ChallengeStore, memory::MemoryStore, redis::RedisStore};

/// This service.
pub const SERVICE: ServiceName = ServiceName::PhoneProof;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Auth, limits, stores, auditor.
    pub kernel: Arc<Kernel>,
    /// This service's own settings.
    pub settings: Arc<config::Settings>,
    /// The domain service.
    pub phone: Arc<PhoneProof>,
}

impl FromRef<AppState> for Arc<Kernel> {
    fn from_ref(state: &AppState) -> Self {
        state.kernel.clone()
    }
}

impl FromRef<AppState> for AuthContext {
    fn from_ref(state: &AppState) -> Self {
        state.kernel.auth_context()
    }
}

/// A built service, ready to serve.
pub struct App {
    /// Shared state.
    pub state: AppState,
}

impl App {
    /// Builds the kernel and the service state from configuration.
    pub async fn build(common: CommonConfig, settings: Settings) -> Result<Self, KernelError> {
        Self::build_with(common, settings, Overrides::default()).await
    }

    /// Like [`App::build`], with some ports replaced (tests move the clock).
    pub async fn build_with(
        common: CommonConfig,
        settings: Settings,
        overrides: Overrides,
    ) -> Result<Self, KernelError> {
        settings
            .validate()
            .map_err(|e| KernelError::Config(e.to_string()))?;
        let clock = overrides.clock.unwrap_or_else(SystemClock::shared);
        let kernel = Arc::new(Kernel::build_with_clock(SERVICE, common, clock.clone()).await?);
        let data_dir = kernel.config().data_dir.clone();
        let source = match (&settings.secret_key, &settings.secret_key_file) {
            (Some(value), _) => KeySource::Value(value.expose().to_owned()),
            (None, Some(file)) => KeySource::File(file.clone()),
            (None, None) => KeySource::DataDir(data_dir.join("phone-proof").join("secret.key")),
        };
        let keys = Arc::new(Keys::load(source).map_err(|e| KernelError::Config(e.to_string()))?);
        if keys.reloadable() {
            let keys = keys.clone();
            kernel.on_reload(move || match keys.reload() {
                Ok((secrets, sealing)) => {
                    tracing::info!(secrets, sealing_key_id = %sealing, "phone-proof keys reloaded")
                }
                Err(e) => tracing::error!(error = %e, "phone-proof key reload failed"),
            });
        }
        let store: Arc<dyn ChallengeStore> = match &settings.redis_url {
            Some(url) => Arc::new(
                RedisStore::connect(
                    url.expose(),
                    &settings.redis_prefix,
                    Duration::from_millis(settings.redis_timeout_ms),
                )
                .map_err(|e| KernelError::Config(format!("redis_url: {e}")))?,
            ),
            None => Arc::new(MemoryStore::new(settings.memory_max_challenges)),
        };
        let sender = build_sender(&settings, &data_dir, clock)?;
        tracing::info!(store = %store.describe(), sender = %sender.describe(), "phone-proof ports");
        spawn_readiness(kernel.clone(), store.clone());
        let ports = Ports {
            store,
            sender,
            keys,
        };
        let phone = Arc::new(PhoneProof::new(kernel.ports(), ports, &settings));
        Ok(Self {
            state: AppState {
                kernel,
                settings: Arc::new(settings),
                phone,
            },
        })
    }

    /// The router and its OpenAPI document.
    pub fn router(&self) -> (Router, utoipa::openapi::OpenApi) {
        assemble(
            self.state.kernel.clone(),
            openapi_base(),
            routes::router(),
            self.state.clone(),
        )
    }

    /// Serves on a bound listener until shutdown.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let (router, _) = self.router();
        idv_shared::kernel::serve(listener, router, self.state.kernel.clone()).await
    }
}

/// Ports a test (or an embedding) may replace.
#[derive(Default)]
pub struct Overrides {
    /// The clock (of the whole service: tokens, verdicts, challenges); default the system clock.
    pub clock: Option<SharedClock>,
}

fn build_sender(
    settings: &Settings,
    data_dir: &std::path::Path,
    clock: SharedClock,
) -> Result<Arc<dyn Sender>, KernelError> {
    let s = &settings.sender;
    match s.kind {
        SenderKind::Outbox => {
            let path = s
                .outbox_path
                .clone()
                .unwrap_or_else(|| data_dir.join("outbox").join("phone-proof.jsonl"));
            Ok(Arc::new(OutboxSender::open(&path)?))
        }
        SenderKind::Webhook => {
            let bad = |m: &str| KernelError::Config(format!("sender: {m}"));
            let url = s
                .webhook_url
                .clone()
                .ok_or_else(|| bad("webhook_url is required"))?;
            let secrets = s
                .webhook_secrets
                .as_ref()
                .map(|v| {
                    v.expose()
                        .split(',')
                        .map(SigningSecret::parse)
                        .collect::<Option<Vec<_>>>()
                })
                .unwrap_or_default()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    bad("webhook_secrets must be whsec_<base64> keys (≥ 24 bytes), comma-separated")
                })?;
            let retry = RetryPolicy {
                attempts: s.webhook_attempts,
                timeout: Duration::from_millis(s.webhook_timeout_ms),
                backoff: Duration::from_millis(s.webhook_backoff_ms),
            };
            let sender = WebhookSender::new(url, secrets, s.event_source.clone(), retry, clock)
                .map_err(|e| bad(&e.to_string()))?;
            Ok(Arc::new(sender))
        }
    }
}

/// Keeps `/readyz` in step with the challenge store.
fn spawn_readiness(kernel: Arc<Kernel>, store: Arc<dyn ChallengeStore>) {
    kernel.set_ready("challenge_store", true);
    let weak = Arc::downgrade(&kernel);
    drop(kernel);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let Some(kernel) = weak.upgrade() else { break };
            let ok = store.ping().await.is_ok();
            kernel.set_ready("challenge_store", ok);
        }
    });
}

fn openapi_base() -> utoipa::openapi::OpenApi {
    base_openapi(
        SERVICE,
        env!("CARGO_PKG_VERSION"),
        "One-time-code proof of phone possession.",
    )
}

/// The OpenAPI document, without building a kernel (for `phone-proof openapi` and the drift test).
pub fn openapi() -> utoipa::openapi::OpenApi {
    idv_shared::kernel::openapi_document(openapi_base(), routes::router())
}
