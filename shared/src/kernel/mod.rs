//! The kernel every service stands on: it builds, from configuration, what the contracts require of all of
//! them (gateway auth and rate limits, residency-checked stores, the auditor, the clock) and hands each part
//! out as a port. Domain services receive [`ServicePorts`], the `Authorized` extractor an [`AuthContext`];
//! neither can reach the rest. The common endpoints, the router and serving live in the submodules.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::{
    audit::{AuditSetupError, Auditor},
    auth::{AuthContext, Authenticator, JwksSource, dev::DEV_ISSUER, dev::DevIssuer},
    clock::{SharedClock, SystemClock},
    config::CommonConfig,
    error::{ApiError, ErrorCode},
    limits::{
        FailMode, MemoryRateLimiter, RateLimitSettings, RateLimiter, redis::RedisRateLimiter,
    },
    store::{ArtifactStores, Residency},
    verdict::ServiceName,
};

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A configuration value is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// Keys or ledger.
    #[error("audit: {0}")]
    Audit(#[from] AuditSetupError),
    /// The gateway key set.
    #[error("auth: {0}")]
    Auth(String),
    /// Files.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Whether a component is ready, asked at every `/readyz`.
type ReadyProbe = Box<dyn Fn() -> bool + Send + Sync>;

type ReloadHook = Box<dyn Fn() + Send + Sync>;

/// What a domain service may use of the kernel: where artifacts come from, who signs and records verdicts,
/// and what time it is. Nothing else (keys, limits, configuration) is reachable from it.
#[derive(Debug, Clone)]
pub struct ServicePorts {
    /// Residency-checked artifact fetch.
    pub artifacts: Arc<ArtifactStores>,
    /// Verdict signing and the ledger: a verdict is returned only once its entry is durable.
    pub verdicts: Arc<Auditor>,
    /// The one clock.
    pub clock: SharedClock,
}

/// Shared services of one running verification service.
pub struct Kernel {
    service: ServiceName,
    config: CommonConfig,
    auth: AuthContext,
    auditor: Arc<Auditor>,
    stores: Arc<ArtifactStores>,
    clock: SharedClock,
    dev_issuer: bool,
    components: Mutex<BTreeMap<&'static str, bool>>,
    probes: Mutex<Vec<(&'static str, ReadyProbe)>>,
    reload_hooks: Mutex<Vec<ReloadHook>>,
}

/// A router whose state is the kernel itself (the kernel's own tests) authorises through it.
impl axum::extract::FromRef<Arc<Kernel>> for AuthContext {
    fn from_ref(kernel: &Arc<Kernel>) -> Self {
        kernel.auth_context()
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("service", &self.service)
            .field("stores", &self.stores)
            .finish()
    }
}

impl Kernel {
    /// Builds the kernel from configuration on the system clock: opens stores, keys and ledger, loads the
    /// gateway key set.
    pub async fn build(service: ServiceName, config: CommonConfig) -> Result<Self, KernelError> {
        Self::build_with_clock(service, config, SystemClock::shared()).await
    }

    /// Like [`Kernel::build`] on another clock: tokens, verdicts, checkpoints and keys are all dated by it.
    pub async fn build_with_clock(
        service: ServiceName,
        config: CommonConfig,
        clock: SharedClock,
    ) -> Result<Self, KernelError> {
        config.validate().map_err(KernelError::Config)?;
        std::fs::create_dir_all(&config.data_dir)?;
        crate::metrics::init();
        let (auth, dev_issuer) = match &config.auth.jwks {
            Some(location) => {
                let issuer = config.auth.issuer.clone().ok_or_else(|| {
                    KernelError::Config("auth.issuer is required when auth.jwks is set".into())
                })?;
                let min_refetch = Duration::from_secs(config.auth.jwks_min_refetch_secs);
                let jwks = JwksSource::from_location(location, min_refetch)
                    .await
                    .map_err(|e| KernelError::Auth(e.to_string()))?;
                (
                    Authenticator::new(service.as_str(), issuer, jwks, &config.auth, clock.clone()),
                    false,
                )
            }
            None => {
                let dev = DevIssuer::load_or_create(&config.data_dir, clock.clone())
                    .map_err(|e| KernelError::Auth(e.to_string()))?;
                tracing::warn!(
                    issuer = DEV_ISSUER,
                    "TRUSTING THE LOCAL DEV ISSUER: anyone with this machine's data dir can mint tokens. \
                     Set IDV_AUTH__JWKS and IDV_AUTH__ISSUER for any shared or production deployment."
                );
                let issuer = config
                    .auth
                    .issuer
                    .clone()
                    .unwrap_or_else(|| DEV_ISSUER.to_owned());
                (
                    Authenticator::new(
                        service.as_str(),
                        issuer,
                        dev.jwks_source(),
                        &config.auth,
                        clock.clone(),
                    ),
                    true,
                )
            }
        };
        let stores = build_stores(&config).await?;
        let auditor = Auditor::open(
            service,
            &config.audit_keys_path(),
            &config.ledger_target(service),
            config.audit.queue_capacity,
            config.audit.checkpoints(),
            clock.clone(),
        )?;
        tracing::info!(?stores, ledger = auditor.ledger_backend(), "kernel ready");
        let limiter = build_limiter(service, &config.rate_limit)?;
        Ok(Self {
            service,
            config,
            auth: AuthContext {
                authenticator: Arc::new(auth),
                limiter,
            },
            auditor: Arc::new(auditor),
            stores: Arc::new(stores),
            clock,
            dev_issuer,
            components: Mutex::new(BTreeMap::new()),
            probes: Mutex::new(Vec::new()),
            reload_hooks: Mutex::new(Vec::new()),
        })
    }

    /// Which service this is.
    pub fn service(&self) -> ServiceName {
        self.service
    }

    /// The common configuration it was built from.
    pub fn config(&self) -> &CommonConfig {
        &self.config
    }

    /// Whether the embedded dev issuer is trusted.
    pub fn trusts_dev_issuer(&self) -> bool {
        self.dev_issuer
    }

    /// The parts a domain service uses.
    pub fn ports(&self) -> ServicePorts {
        ServicePorts {
            artifacts: self.stores.clone(),
            verdicts: self.auditor.clone(),
            clock: self.clock.clone(),
        }
    }

    /// What the `Authorized` extractor uses.
    pub fn auth_context(&self) -> AuthContext {
        self.auth.clone()
    }

    /// The residency-checked stores (tests and tools put artifacts through them).
    pub fn stores(&self) -> &Arc<ArtifactStores> {
        &self.stores
    }

    /// The auditor (tests read its ledger; serving flushes it on shutdown).
    pub fn auditor(&self) -> &Arc<Auditor> {
        &self.auditor
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// `Ok` when every region's store answers and every component is ready; otherwise the problem `/readyz`
    /// answers with, naming what is not.
    pub async fn readiness(&self) -> Result<(), ApiError> {
        let unreachable = self.stores.unreachable().await;
        if !unreachable.is_empty() {
            let names: Vec<&str> = unreachable.iter().map(Residency::as_str).collect();
            return Err(ApiError::new(
                ErrorCode::StoreUnavailable,
                format!("stores not answering: {}", names.join(", ")),
            )
            .retry_after(5));
        }
        let waiting: Vec<&str> = match self.components.lock() {
            Ok(c) => c
                .iter()
                .filter(|(_, ready)| !**ready)
                .map(|(name, _)| *name)
                .collect(),
            Err(_) => vec!["components"],
        };
        let failing: Vec<&str> = match self.probes.lock() {
            Ok(p) => p
                .iter()
                .filter(|(_, ready)| !ready())
                .map(|(name, _)| *name)
                .collect(),
            Err(_) => vec!["components"],
        };
        let waiting = [waiting, failing].concat();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::NotReady,
                format!("not ready: {}", waiting.join(", ")),
            )
            .retry_after(5))
        }
    }

    /// Marks a service component (e.g. `models`) ready or not, for `/readyz`.
    pub fn set_ready(&self, component: &'static str, ready: bool) {
        if let Ok(mut c) = self.components.lock() {
            c.insert(component, ready);
        }
    }

    /// Asks `probe` at every `/readyz` whether `component` is ready (a worker pool whose workers are gone is
    /// not, long after start-up said it was).
    pub fn watch_ready(
        &self,
        component: &'static str,
        probe: impl Fn() -> bool + Send + Sync + 'static,
    ) {
        if let Ok(mut p) = self.probes.lock() {
            p.push((component, Box::new(probe)));
        }
    }

    /// Registers work to do on SIGHUP (audit keys are always re-read).
    pub fn on_reload(&self, hook: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut hooks) = self.reload_hooks.lock() {
            hooks.push(Box::new(hook));
        }
    }

    /// Re-reads audit keys and a gateway key file, and runs the registered reload hooks.
    pub fn reload(&self) {
        match self.auditor.reload_keys() {
            Ok(kid) => tracing::info!(active_kid = %kid, "audit keys reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "audit key reload failed; keeping the current keys")
            }
        }
        match self.auth.authenticator.reload_keys() {
            Ok(keys) => tracing::info!(keys, "gateway keys reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "gateway key reload failed; keeping the current keys")
            }
        }
        if let Ok(hooks) = self.reload_hooks.lock() {
            for hook in hooks.iter() {
                hook();
            }
        }
    }
}

mod endpoints;
mod router;
mod serve;
mod stores;

pub use endpoints::{Health, base_openapi, common_routes, openapi_document};
pub use router::assemble;
pub use serve::serve;
pub use stores::build_stores;

/// The rate limiter the settings ask for: Redis when `rate_limit.redis_url` is set (shared by replicas), else
/// this process's memory. Without an explicit `when_unavailable`, phone-proof fails closed and the others open.
fn build_limiter(
    service: ServiceName,
    settings: &RateLimitSettings,
) -> Result<Arc<dyn RateLimiter>, KernelError> {
    let Some(url) = &settings.redis_url else {
        return Ok(Arc::new(MemoryRateLimiter::new(settings.clone())));
    };
    let mode = settings.when_unavailable.unwrap_or(match service {
        ServiceName::PhoneProof => FailMode::Closed,
        _ => FailMode::Open,
    });
    let limiter = RedisRateLimiter::connect(url.expose(), settings, mode)
        .map_err(|_| KernelError::Config("IDV_RATE_LIMIT__REDIS_URL is not a Redis URL".into()))?;
    tracing::info!(?limiter, "rate limits shared through Redis");
    Ok(Arc::new(limiter))
}
