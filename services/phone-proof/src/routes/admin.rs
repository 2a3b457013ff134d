//! Operator routes.

use axum::extract::State;
use idv_shared::{
    auth::{Authorized, PhoneAdmin},
    error::{ApiError, Problem},
    http::ApiJson,
    store::ArtifactId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;

/// Which number to unblock, as an artifact (operators do not handle numbers either).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnblockRequest {
    /// A JSON artifact `{"phone_number": "+…"}`.
    pub phone_artifact_id: ArtifactId,
}

/// What the unblock did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnblockResponse {
    /// Whether the number (for the caller's tenant) was blocked.
    pub unblocked: bool,
}

/// Lift the block a number gets after too many consecutive failed checks, for the caller's tenant.
#[utoipa::path(post, path = "/v1/phone/admin/unblock", tag = "phone-proof",
    request_body = UnblockRequest,
    responses(
        (status = 200, description = "Done", body = UnblockResponse),
        (status = 400, description = "`invalid_request`, `invalid_phone_number`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, `residency_violation`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`artifact_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`artifact_too_large`, `payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media`: the body is not JSON, or the artifact is not", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`store_unavailable`, `overloaded`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("gateway_jwt" = ["phone:admin"])))]
pub async fn unblock(
    auth: Authorized<PhoneAdmin>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<UnblockRequest>,
) -> Result<ApiJson<UnblockResponse>, ApiError> {
    let unblocked = state
        .phone
        .unblock(&auth.caller, &req.phone_artifact_id)
        .await?;
    Ok(ApiJson(UnblockResponse { unblocked }))
}
