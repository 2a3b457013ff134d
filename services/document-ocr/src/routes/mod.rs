//! HTTP routes of document-ocr. Handlers stay thin: parse at the edge, call the domain, answer.

mod documents;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub use documents::OcrRequest;

/// The service's own routes; the common ones come from the kernel.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(documents::read_document))
}
