//! `/v1/phone/challenges…`: create, verify, read, resend, cancel.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use idv_shared::{
    auth::{Authorized, PhoneChallenge, PhoneVerify},
    error::{ApiError, ErrorCode, Problem},
    http::ApiJson,
    store::ArtifactId,
    verdict::Verdict,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AppState,
    challenge::{
        model::{Challenge, ChallengeId, Channel, Status},
        service::PhoneResult,
    },
};
use idv_shared::clock::to_datetime;

/// Start a phone challenge.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChallenge {
    /// A JSON artifact `{"phone_number": "+…"}` in a region the token allows.
    pub phone_artifact_id: ArtifactId,
    /// How to deliver the code.
    pub channel: Channel,
}

/// Check a code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyCode {
    /// The code the user received: 6–9 digits as a string.
    #[schema(example = "042517")]
    pub code: String,
}

/// A challenge as callers see it. No phone number, no code.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChallengeView {
    /// The challenge id.
    #[schema(example = "chl_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P")]
    pub challenge_id: String,
    /// Where it stands.
    pub status: Status,
    /// Delivery channel.
    pub channel: Channel,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the current code stops working.
    pub expires_at: DateTime<Utc>,
    /// Checks left.
    pub attempts_remaining: u32,
    /// Sends left.
    pub sends_remaining: u32,
    /// When a resend is allowed; absent when no resend is possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_available_at: Option<DateTime<Utc>>,
    /// When it was approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
}

impl ChallengeView {
    fn of(c: &Challenge, state: &AppState) -> Self {
        let p = state.phone.policy();
        let status = c.status_at(state.phone.now_ms());
        let sends_remaining = p.max_sends.saturating_sub(c.sends);
        Self {
            challenge_id: c.id.to_string(),
            status,
            channel: c.channel,
            created_at: to_datetime(c.created_ms),
            expires_at: to_datetime(c.expires_ms),
            attempts_remaining: p.max_checks.saturating_sub(c.checks),
            sends_remaining,
            resend_available_at: (status == Status::Pending && sends_remaining > 0)
                .then(|| to_datetime(c.next_send_ms)),
            verified_at: c.verified_ms.map(to_datetime),
        }
    }
}

fn challenge_id(raw: &str) -> Result<ChallengeId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(ErrorCode::ChallengeNotFound, "no challenge with this id"))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::invalid("Idempotency-Key must be 1–255 visible ASCII characters")
        })?;
    Ok(Some(key.to_owned()))
}

/// Start a challenge: parse the number from its artifact, send a code, answer `201`.
///
/// With an `Idempotency-Key`, a repeat of the same request answers `200` with the same challenge (header
/// `Idempotent-Replayed: true`) and sends nothing.
#[utoipa::path(post, path = "/v1/phone/challenges", tag = "phone-proof",
    request_body = CreateChallenge,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", min_length = 1, max_length = 255,
        description = "1–255 visible ASCII characters. Same key and request → same challenge (24 h)")),
    responses(
        (status = 201, description = "Challenge created and code sent", body = ChallengeView),
        (status = 200, description = "Idempotent replay: the earlier challenge", body = ChallengeView),
        (status = 400, description = "`invalid_request` (body, header), `invalid_phone_number`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, `residency_violation`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`artifact_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`artifact_too_large`, `payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media`: the artifact is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`voip_number_refused`, `premium_number_refused`, `idempotency_conflict`", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "`phone_blocked`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (tenant), `phone_rate_limited` (number); see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`delivery_failed`: the challenge is `failed`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`store_unavailable`, `overloaded`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("gateway_jwt" = ["phone:challenge"])))]
pub async fn create(
    auth: Authorized<PhoneChallenge>,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateChallenge>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let out = state
        .phone
        .create(&auth.caller, &req.phone_artifact_id, req.channel, key)
        .await?;
    let view = ChallengeView::of(&out.challenge, &state);
    let location = HeaderValue::from_str(&format!("/v1/phone/challenges/{}", view.challenge_id))
        .map_err(ApiError::internal)?;
    if out.created {
        Ok((
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            ApiJson(view),
        )
            .into_response())
    } else {
        Ok((
            StatusCode::OK,
            [
                (header::LOCATION, location),
                (
                    header::HeaderName::from_static("idempotent-replayed"),
                    HeaderValue::from_static("true"),
                ),
            ],
            ApiJson(view),
        )
            .into_response())
    }
}

/// Check a code. Always a verdict (with its ledger entry) when the challenge exists: `pass` carries a proof
/// token; `fail` says why (`code_mismatch`, `challenge_expired`, `max_attempts_reached`, `already_verified`,
/// `challenge_canceled`, `challenge_failed`). Every call counts against the challenge's checks while it is pending.
#[utoipa::path(post, path = "/v1/phone/challenges/{id}/verify", tag = "phone-proof",
    request_body = VerifyCode,
    params(("id" = String, Path, description = "Challenge id (`chl_…`)")),
    responses(
        (status = 200, description = "The verdict", body = Verdict<PhoneResult>),
        (status = 400, description = "`invalid_request`: the code is not 6–9 digits", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`challenge_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media`: the body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "`phone_blocked`: nothing was counted", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`store_unavailable`: nothing was decided", body = Problem, content_type = "application/problem+json"),
    ),
    security(("gateway_jwt" = ["phone:verify"])))]
pub async fn verify(
    auth: Authorized<PhoneVerify>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<VerifyCode>,
) -> Result<ApiJson<Verdict<PhoneResult>>, ApiError> {
    let id = challenge_id(&id)?;
    Ok(ApiJson(
        state.phone.verify(&auth.caller, &id, &req.code).await?,
    ))
}

/// Read a challenge's status.
#[utoipa::path(get, path = "/v1/phone/challenges/{id}", tag = "phone-proof",
    params(("id" = String, Path, description = "Challenge id (`chl_…`)")),
    responses(
        (status = 200, description = "The challenge", body = ChallengeView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`challenge_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`store_unavailable`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("gateway_jwt" = ["phone:challenge"])))]
pub async fn status(
    auth: Authorized<PhoneChallenge>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<ChallengeView>, ApiError> {
    let id = challenge_id(&id)?;
    let c = state.phone.get(&auth.caller, &id).await?;
    Ok(ApiJson(ChallengeView::of(&c, &state)))
}

/// Cancel a pending challenge.
#[utoipa::path(delete, path = "/v1/phone/challenges/{id}", tag = "phone-proof",
    params(("id" = String, Path, description = "Challenge id (`chl_…`)")),
    responses(
        (status = 200, description = "Canceled", body = ChallengeView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`challenge_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`challenge_not_pending`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`challenge_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`store_unavailable`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("gateway_jwt" = ["phone:challenge"])))]
pub async fn cancel(
    auth: Authorized<PhoneChallenge>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<ChallengeView>, ApiError> {
    let id = challenge_id(&id)?;
    let c = state.phone.cancel(&auth.caller, &id).await?;
    Ok(ApiJson(ChallengeView::of(&c, &state)))
}

/// Send the same code again. The expiry moves forward, never past the challenge's hard cap; sends are limited
/// in number and spacing.
#[utoipa::path(post, path = "/v1/phone/challenges/{id}/resend", tag = "phone-proof",
    params(("id" = String, Path, description = "Challenge id (`chl_…`)")),
    responses(
        (status = 200, description = "Sent again", body = ChallengeView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, `residency_violation`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`challenge_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`challenge_not_pending`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`challenge_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`resend_limited` (see `Retry-After`), `rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`delivery_failed`: the challenge is `failed`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`store_unavailable`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("gateway_jwt" = ["phone:challenge"])))]
pub async fn resend(
    auth: Authorized<PhoneChallenge>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<ChallengeView>, ApiError> {
    let id = challenge_id(&id)?;
    let c = state.phone.resend(&auth.caller, &id).await?;
    Ok(ApiJson(ChallengeView::of(&c, &state)))
}
