//! HTTP routes of phone-proof. Handlers stay thin: parse at the edge, call the domain, answer.

mod admin;
mod challenges;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub use challenges::{ChallengeView, CreateChallenge, VerifyCode};

/// The service's own routes; the common ones come from the kernel.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(challenges::create))
        .routes(routes!(challenges::status, challenges::cancel))
        .routes(routes!(challenges::verify))
        .routes(routes!(challenges::resend))
        .routes(routes!(admin::unblock))
}
