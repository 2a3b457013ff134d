//! `POST /v1/faces/match`.

use axum::extract::State;
use idv_shared::{
    auth::{Authorized, FaceVerify},
    error::{ApiError, Problem},
    http::ApiJson,
    store::ArtifactId,
    verdict::Verdict,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{AppState, error::FaceMatchError, matching::MatchResult, service::MatchQuery};

/// Two images to compare.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// The trusted image, usually the portrait on the identity document.
    pub reference_artifact_id: ArtifactId,
    /// The image to check, usually a selfie; it should show exactly one face.
    pub probe_artifact_id: ArtifactId,
    /// Threshold profile from the model manifest (`GET /v1/models` lists them); the service default when absent.
    #[schema(
        example = "default",
        pattern = "^[A-Za-z0-9_-]{1,64}$",
        min_length = 1,
        max_length = 64
    )]
    pub profile: Option<String>,
}

/// Is the face on the probe the face on the reference? Both artifacts are fetched from their residency store,
/// decoded (EXIF orientation applied), and the largest face of each is detected, aligned and embedded. The
/// cosine similarity of the embeddings is judged against the profile's thresholds: `pass` at or above the pass
/// threshold, `fail` below the fail threshold, `review` between them or when the evidence is weak (a face too
/// small, low quality, several faces on the probe). No face on an image is a `fail` naming that image.
/// Reasons: `face_mismatch`, `no_face_reference`, `no_face_probe`, `multiple_faces`, `face_too_small`,
/// `low_quality`.
#[utoipa::path(post, path = "/v1/faces/match", tag = "face-match",
    request_body = MatchRequest,
    responses(
        (status = 200, description = "The verdict, recorded in the audit ledger", body = Verdict<MatchResult>),
        (status = 400, description = "`invalid_request`: malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, `residency_violation`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`artifact_not_found`, `profile_not_found` (the manifest has no such threshold profile)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`artifact_too_large` (bytes), `image_too_large` (pixels)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media`: not a JPEG, PNG, WebP or TIFF", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_image`: truncated or corrupt image", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` (every inference worker busy), `store_unavailable`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("gateway_jwt" = ["face:verify"])))]
pub async fn match_faces(
    auth: Authorized<FaceVerify>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<MatchRequest>,
) -> Result<ApiJson<Verdict<MatchResult>>, ApiError> {
    if let Some(p) = &req.profile {
        let ok = !p.is_empty()
            && p.len() <= 64
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(FaceMatchError::Invalid(
                "profile must be 1–64 letters, digits, '_' or '-'".into(),
            )
            .into());
        }
    }
    let query = MatchQuery {
        reference: req.reference_artifact_id,
        probe: req.probe_artifact_id,
        profile: req.profile,
    };
    Ok(ApiJson(state.faces.verify(&auth.caller, query).await?))
}
