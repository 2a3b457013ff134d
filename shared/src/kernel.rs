//! The kernel every service stands on: auth, limits, stores, auditor; the common endpoints; the middleware
//! stack; and serving with graceful shutdown.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    error_handling::HandleErrorLayer,
    extract::{DefaultBodyLimit, FromRef, State},
    http::{HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    audit::{AuditSetupError, Auditor, Jwks},
    auth::{Authenticator, JwksSource, dev::DEV_ISSUER, dev::DevIssuer},
    config::{CommonConfig, RegionStore},
    error::{ApiError, ErrorCode},
    http::{MakeRequestUlid, REQUEST_ID},
    limits::RateLimiter,
    store::{ArtifactStores, LocalStore, MemoryStore, ObjectStore, Residency, S3Store},
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

/// Shared services of one running verification service.
pub struct Kernel {
    /// Which service this is.
    pub service: ServiceName,
    /// Its common configuration.
    pub config: CommonConfig,
    /// Gateway token checks.
    pub auth: Authenticator,
    /// Per-tenant, per-route limits.
    pub limiter: RateLimiter,
    /// Verdict signing and ledger.
    pub auditor: Auditor,
    /// Residency-checked artifact stores.
    pub stores: ArtifactStores,
    /// Whether the embedded dev issuer is trusted.
    pub dev_issuer: bool,
    components: Mutex<BTreeMap<&'static str, bool>>,
    probes: Mutex<Vec<(&'static str, ReadyProbe)>>,
    reload_hooks: Mutex<Vec<ReloadHook>>,
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
    /// Builds the kernel from configuration: opens stores, keys and ledger, loads the gateway key set.
    pub async fn build(service: ServiceName, config: CommonConfig) -> Result<Self, KernelError> {
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
                    Authenticator::new(service.as_str(), issuer, jwks, &config.auth),
                    false,
                )
            }
            None => {
                let dev = DevIssuer::load_or_create(&config.data_dir)
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
                    Authenticator::new(service.as_str(), issuer, dev.jwks_source(), &config.auth),
                    true,
                )
            }
        };
        let stores = build_stores(&config).await?;
        let auditor = Auditor::open(
            service,
            &config.audit_keys_path(),
            &config.ledger_path(service),
            config.audit.queue_capacity,
            config.audit.checkpoints(),
        )?;
        tracing::info!(?stores, ledger = %auditor.ledger_path().display(), "kernel ready");
        Ok(Self {
            service,
            limiter: RateLimiter::new(config.rate_limit),
            config,
            auth,
            auditor,
            stores,
            dev_issuer,
            components: Mutex::new(BTreeMap::new()),
            probes: Mutex::new(Vec::new()),
            reload_hooks: Mutex::new(Vec::new()),
        })
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
        match self.auth.reload_keys() {
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

/// Opens the artifact stores of every configured region (tools use this without a whole kernel).
pub async fn build_stores(config: &CommonConfig) -> Result<ArtifactStores, KernelError> {
    let mut regions: BTreeMap<Residency, Arc<dyn ObjectStore>> = BTreeMap::new();
    for (name, store) in config.effective_regions() {
        let region: Residency = name
            .parse()
            .map_err(|e| KernelError::Config(format!("region '{name}': {e}")))?;
        let store: Arc<dyn ObjectStore> = match store {
            RegionStore::Local { path } => {
                let path =
                    path.unwrap_or_else(|| config.data_dir.join("artifacts").join(region.as_str()));
                Arc::new(LocalStore::open(path)?)
            }
            RegionStore::S3(settings) => Arc::new(S3Store::connect(&settings).await),
            RegionStore::Memory => Arc::new(MemoryStore::default()),
        };
        regions.insert(region, store);
    }
    Ok(ArtifactStores::new(regions, config.artifacts))
}

/// The OpenAPI parts every service shares.
#[derive(OpenApi)]
#[openapi(
    components(schemas(crate::error::Problem, crate::error::ErrorCode, crate::verdict::Outcome,
        crate::verdict::ReasonCode, crate::verdict::Reason, crate::verdict::ArtifactRef, crate::verdict::ModelRef,
        crate::verdict::ServiceName)),
    modifiers(&BearerAuth),
    tags((name = "operations", description = "Health, readiness, metrics and audit keys"))
)]
struct CommonApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "gateway_jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Short-lived gateway JWT (EdDSA, ES256 or RS256) with iss, aud = the service, exp, iat \
                         (lifetime at most 15 minutes), scope, tenant and residency.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The base OpenAPI document of a service.
pub fn base_openapi(
    service: ServiceName,
    version: &str,
    description: &str,
) -> utoipa::openapi::OpenApi {
    let mut doc = CommonApi::openapi();
    doc.info.title = format!("idv {service}");
    doc.info.version = version.to_owned();
    doc.info.description = Some(description.to_owned());
    doc.info.license = Some(utoipa::openapi::License::new("Apache-2.0"));
    doc
}

/// Health answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
    /// The service.
    pub service: ServiceName,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz(State(kernel): State<Arc<Kernel>>) -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        service: kernel.service,
    })
}

/// Models are loaded and every region's store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = Health),
    (status = 503, body = crate::error::Problem, content_type = "application/problem+json",
        description = "A store or component is not ready; `detail` names it")
))]
async fn readyz(State(kernel): State<Arc<Kernel>>) -> Result<axum::Json<Health>, ApiError> {
    let unreachable = kernel.stores.unreachable().await;
    if !unreachable.is_empty() {
        let names: Vec<&str> = unreachable.iter().map(Residency::as_str).collect();
        return Err(ApiError::new(
            ErrorCode::StoreUnavailable,
            format!("stores not answering: {}", names.join(", ")),
        )
        .retry_after(5));
    }
    let waiting: Vec<&str> = match kernel.components.lock() {
        Ok(c) => c
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(name, _)| *name)
            .collect(),
        Err(_) => vec!["components"],
    };
    let failing: Vec<&str> = match kernel.probes.lock() {
        Ok(p) => p
            .iter()
            .filter(|(_, ready)| !ready())
            .map(|(name, _)| *name)
            .collect(),
        Err(_) => vec!["components"],
    };
    let waiting = [waiting, failing].concat();
    if !waiting.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NotReady,
            format!("not ready: {}", waiting.join(", ")),
        )
        .retry_after(5));
    }
    Ok(axum::Json(Health {
        status: "ready",
        service: kernel.service,
    }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, body = String, content_type = "text/plain")))]
async fn metrics_endpoint() -> Response {
    let mut res = crate::metrics::render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}

/// Public keys that verify this service's audit tokens, including rotated-out ones.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations", responses((status = 200, body = Jwks)))]
async fn jwks(State(kernel): State<Arc<Kernel>>) -> Response {
    let mut res = axum::Json(kernel.auditor.jwks()).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    res
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no route matches this path")
}

/// The endpoints every service has: health, readiness, metrics, audit keys.
pub fn common_routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Kernel>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_endpoint))
        .routes(routes!(jwks))
}

/// A service's routes plus the common ones, under its base document: the one place both the served router
/// and the OpenAPI document come from, so they cannot drift apart.
fn with_common_routes<S>(
    doc: utoipa::openapi::OpenApi,
    service_routes: OpenApiRouter<S>,
) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Kernel>: FromRef<S>,
{
    OpenApiRouter::with_openapi(doc)
        .merge(common_routes())
        .merge(service_routes)
}

/// A service's OpenAPI document, without building a kernel (for `<service> openapi` and the drift test).
pub fn openapi_document<S>(
    doc: utoipa::openapi::OpenApi,
    service_routes: OpenApiRouter<S>,
) -> utoipa::openapi::OpenApi
where
    S: Clone + Send + Sync + 'static,
    Arc<Kernel>: FromRef<S>,
{
    with_common_routes(doc, service_routes).into_openapi()
}

/// Assembles a service: its routes plus the common ones, OpenAPI at `/openapi.json` and `/docs`, the fallback,
/// and the middleware stack. Returns the router and the OpenAPI document (for the drift test).
pub fn assemble<S>(
    kernel: Arc<Kernel>,
    doc: utoipa::openapi::OpenApi,
    service_routes: OpenApiRouter<S>,
    state: S,
) -> (Router, utoipa::openapi::OpenApi)
where
    S: Clone + Send + Sync + 'static,
    Arc<Kernel>: FromRef<S>,
{
    let http = kernel.config.http;
    let (router, api) = with_common_routes(doc, service_routes).split_for_parts();
    let overloaded = |_: tower::BoxError| async {
        ApiError::new(
            ErrorCode::Overloaded,
            "too many requests in flight; retry shortly",
        )
        .retry_after(1)
    };
    // The documentation is merged before the layers, so its answers (and its 404s for unknown files) get a
    // request id, metrics and problem+json like every other response.
    let router = router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api.clone()))
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(http.max_in_flight),
        )
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(http.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(http.request_timeout_secs),
        ))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(crate::error::problem_middleware))
        .layer(middleware::from_fn(crate::http::observe_middleware))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUlid))
        .layer(middleware::from_fn(crate::http::sanitize_request_id))
        .with_state(state);
    (router, api)
}

/// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests and flushes the ledger. SIGHUP reloads.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    kernel: Arc<Kernel>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(service = %kernel.service, %addr, "listening");
    spawn_reload_on_sighup(kernel.clone());
    let grace = Duration::from_secs(kernel.config.http.shutdown_grace_secs);
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
    kernel.auditor.shutdown();
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
