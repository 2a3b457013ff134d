//! `GET /v1/models` and `POST /v1/admin/models/reload`.

use axum::extract::State;
use idv_shared::{
    auth::{Authorized, FaceAdmin, FaceVerify},
    error::{ApiError, Problem},
    http::ApiJson,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{AppState, error::FaceMatchError, models::ModelInfo};

/// What is loaded.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsResponse {
    /// Load generation: 1 at start-up, +1 per successful reload.
    pub generation: u64,
    /// The profile used when a request names none.
    pub default_profile: String,
    /// Inference worker threads.
    pub workers: usize,
    /// Images (two per pair) that may wait for a worker before `503 overloaded`.
    pub queue_capacity: usize,
    /// The detector and the embedder.
    pub models: Vec<ModelInfo>,
}

fn listing(state: &AppState) -> ModelsResponse {
    let set = state.faces.engine().current();
    ModelsResponse {
        generation: set.generation,
        default_profile: state.faces.default_profile().to_owned(),
        workers: state.settings.worker_count(),
        queue_capacity: state.settings.queue_capacity,
        models: set.listing.clone(),
    }
}

/// The loaded models: name, version, sha256, licence (a non-commercial licence is flagged), the graph's input
/// and output shapes, and the embedder's threshold profiles and quality floors.
#[utoipa::path(get, path = "/v1/models", tag = "face-match",
    responses(
        (status = 200, description = "The loaded models", body = ModelsResponse),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("gateway_jwt" = ["face:verify"])))]
pub async fn list(
    _auth: Authorized<FaceVerify>,
    State(state): State<AppState>,
) -> ApiJson<ModelsResponse> {
    ApiJson(listing(&state))
}

/// Re-read the manifest and load its models (hashes and signatures checked, warmed up) next to the running
/// ones, then switch. Requests in flight finish on the models they started with. On any error nothing changes.
/// `SIGHUP` does the same.
#[utoipa::path(post, path = "/v1/admin/models/reload", tag = "face-match",
    responses(
        (status = 200, description = "Switched to the new generation", body = ModelsResponse),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`model_rejected`: the running models stay", body = Problem, content_type = "application/problem+json"),
    ),
    security(("gateway_jwt" = ["face:admin"])))]
pub async fn reload(
    _auth: Authorized<FaceAdmin>,
    State(state): State<AppState>,
) -> Result<ApiJson<ModelsResponse>, ApiError> {
    let engine = state.faces.engine().clone();
    tokio::task::spawn_blocking(move || engine.reload())
        .await
        .map_err(ApiError::internal)?
        .map_err(FaceMatchError::from)?;
    Ok(ApiJson(listing(&state)))
}
