//! face-match: Selfie-to-document face verification on ONNX Runtime with swappable models.
//!
//! Layers: [`routes`] (HTTP edge) → [`service`] (fetch, run, decide, record) → [`engine`] (bounded inference
//! workers) → [`pipeline`] (decode, detect, align, embed) with [`models`] (manifest, checked sessions);
//! [`matching`] holds the decision rules. [`App::build`] wires it all on the shared kernel; [`App::router`]
//! serves it, so tests can run the whole service on `127.0.0.1:0`.

pub mod config;
pub mod engine;
pub mod error;
pub mod matching;
pub mod models;
pub mod pipeline;
pub mod routes;
pub mod service;

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use idv_shared::{
    Kernel,
    auth::AuthContext,
    config::CommonConfig,
    kernel::{KernelError, assemble, base_openapi},
    verdict::ServiceName,
};

use engine::Engine;
use models::RuntimeOptions;
use service::FaceMatcher;

/// This service.
pub const SERVICE: ServiceName = ServiceName::FaceMatch;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Auth, limits, stores, auditor.
    pub kernel: Arc<Kernel>,
    /// This service's own settings.
    pub settings: Arc<config::Settings>,
    /// The domain service.
    pub faces: Arc<FaceMatcher>,
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

/// Starts the inference engine from settings: loads, checks and warms every model (blocking).
pub fn start_engine(settings: &config::Settings) -> Result<Arc<Engine>, models::ModelError> {
    let options = RuntimeOptions {
        dylib: settings.ort_dylib_path(),
        threads: settings.ort_threads,
        slots: settings.worker_count(),
    };
    Engine::start(settings.manifest.clone(), options, settings.queue_capacity)
}

impl App {
    /// Builds the kernel, loads the models and the service state. Fails, saying which, when a model's hash or
    /// signature does not match the manifest.
    pub async fn build(
        common: CommonConfig,
        settings: config::Settings,
    ) -> Result<Self, KernelError> {
        let kernel = Arc::new(Kernel::build(SERVICE, common).await?);
        kernel.set_ready("models", false);
        let for_engine = settings.clone();
        let engine = tokio::task::spawn_blocking(move || start_engine(&for_engine))
            .await
            .map_err(|e| KernelError::Config(e.to_string()))?
            .map_err(|e| KernelError::Config(e.to_string()))?;
        let set = engine.current();
        if !set
            .manifest
            .embedder
            .profiles
            .contains_key(&settings.default_profile)
        {
            return Err(KernelError::Config(format!(
                "default_profile '{}' is not a profile of the manifest",
                settings.default_profile
            )));
        }
        tracing::info!(
            detector = %set.manifest.detector.common.name,
            embedder = %set.manifest.embedder.common.name,
            workers = settings.worker_count(),
            queue = settings.queue_capacity,
            "models loaded and warmed up"
        );
        kernel.set_ready("models", true);
        let watched = engine.clone();
        kernel.watch_ready("inference", move || watched.healthy());
        let reload_engine = engine.clone();
        kernel.on_reload(move || {
            let engine = reload_engine.clone();
            // SIGHUP handlers must not block; the load runs beside the serving workers.
            let _ = std::thread::Builder::new()
                .name("face-reload".into())
                .spawn(move || {
                    if let Err(e) = engine.reload() {
                        tracing::error!(error = %e, "model reload refused; the running models stay");
                    }
                });
        });
        let faces = Arc::new(FaceMatcher::new(
            kernel.ports(),
            engine,
            settings.decode,
            settings.default_profile.clone(),
        ));
        Ok(Self {
            state: AppState {
                kernel,
                settings: Arc::new(settings),
                faces,
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

fn openapi_base() -> utoipa::openapi::OpenApi {
    base_openapi(
        SERVICE,
        env!("CARGO_PKG_VERSION"),
        "Selfie-to-document face verification on ONNX Runtime with swappable models.",
    )
}

/// The OpenAPI document, without building a kernel (for `face-match openapi` and the drift test).
pub fn openapi() -> utoipa::openapi::OpenApi {
    idv_shared::kernel::openapi_document(openapi_base(), routes::router())
}
