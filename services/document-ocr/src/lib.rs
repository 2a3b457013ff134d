//! document-ocr: Reads passports, ID cards and visas: MRZ located, OCRed with Tesseract and validated per ICAO 9303.
//!
//! [`App::build`] wires the kernel and the service's state; [`App::router`] serves it, so tests can run the
//! whole service on `127.0.0.1:0`.

pub mod config;
pub mod document;
pub mod error;
pub mod mrz;
pub mod ocr;
pub mod routes;

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use idv_shared::{
    Kernel,
    auth::AuthContext,
    clock::{SharedClock, SystemClock},
    config::CommonConfig,
    kernel::{KernelError, assemble, base_openapi},
    verdict::ServiceName,
};

/// This service.
pub const SERVICE: ServiceName = ServiceName::DocumentOcr;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Auth, limits, stores, auditor.
    pub kernel: Arc<Kernel>,
    /// This service's own settings.
    pub settings: Arc<config::Settings>,
    /// The domain service.
    pub documents: Arc<document::DocumentReader>,
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
    /// Builds the kernel, loads the OCR engines and the service state from configuration.
    pub async fn build(
        common: CommonConfig,
        settings: config::Settings,
    ) -> Result<Self, KernelError> {
        Self::build_with(common, settings, SystemClock::shared()).await
    }

    /// Like [`App::build`] on another clock (tests fix the date).
    pub async fn build_with(
        common: CommonConfig,
        settings: config::Settings,
        clock: SharedClock,
    ) -> Result<Self, KernelError> {
        settings.validate().map_err(KernelError::Config)?;
        let kernel = Arc::new(Kernel::build_with_clock(SERVICE, common, clock).await?);
        kernel.set_ready("ocr", false);
        let fallback = Some(settings.fallback_language.clone()).filter(|l| !l.is_empty());
        let ocrb = if settings.mrz_font.as_os_str().is_empty() {
            None
        } else {
            let ocrb = ocr::ocrb::OcrB::load(&settings.mrz_font)
                .map_err(|e| KernelError::Config(e.to_string()))?;
            Some(Arc::new(ocrb))
        };
        let spec = ocr::engine::EngineSpec {
            datapath: settings.tessdata.clone(),
            primary: settings.language.clone(),
            fallback,
            ocrb,
        };
        let (workers, capacity) = (settings.worker_count(), settings.queue_capacity);
        let pool =
            tokio::task::spawn_blocking(move || ocr::engine::start_pool(spec, workers, capacity))
                .await
                .map_err(|e| KernelError::Config(e.to_string()))?
                .map_err(|e| KernelError::Config(e.to_string()))?;
        tracing::info!(workers, queue = capacity, language = %settings.language, "OCR engines loaded");
        // Tesseract's OpenMP threads, one per core by default, compete with the other workers': measured here,
        // pages took several times as long and ran out of their budget. The image and scripts set it.
        if std::env::var_os("OMP_THREAD_LIMIT").is_none() {
            tracing::warn!(
                "OMP_THREAD_LIMIT is not set: set it to 1, or Tesseract's threads slow every OCR worker"
            );
        }
        kernel.set_ready("ocr", true);
        Ok(Self::from_parts(kernel, settings, pool))
    }

    /// The service over a built kernel and an OCR pool however it was started (tests start one whose
    /// workers fail). `/readyz` answers 503 while any of the pool's workers is gone.
    pub fn from_parts(
        kernel: Arc<Kernel>,
        settings: config::Settings,
        pool: Arc<ocr::engine::Pool>,
    ) -> Self {
        let watched = pool.clone();
        kernel.watch_ready("ocr", move || watched.healthy());
        let documents = Arc::new(document::DocumentReader::new(
            kernel.ports(),
            pool,
            settings.decode,
            settings.policy(),
            settings.max_document(),
        ));
        Self {
            state: AppState {
                kernel,
                settings: Arc::new(settings),
                documents,
            },
        }
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
        "Reads passports, ID cards and visas: MRZ located, OCRed with Tesseract and validated per ICAO 9303.",
    )
}

/// The OpenAPI document, without building a kernel (for `document-ocr openapi` and the drift test).
pub fn openapi() -> utoipa::openapi::OpenApi {
    idv_shared::kernel::openapi_document(openapi_base(), routes::router())
}
