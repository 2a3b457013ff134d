//! HTTP routes of face-match. Handlers stay thin: parse at the edge, call the domain, answer.

mod faces;
mod models;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub use faces::MatchRequest;
pub use models::ModelsResponse;

/// The service's own routes; the common ones come from the kernel.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(faces::match_faces))
        .routes(routes!(models::list))
        .routes(routes!(models::reload))
}
