//! HTTP routes of face-match. Handlers stay thin: parse at the edge, call the domain, answer.

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// The service's own routes; the common ones come from the kernel.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
