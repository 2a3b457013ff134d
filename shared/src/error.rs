//! RFC 9457 problem details: the one error shape every service answers with.
//!
//! Handlers return [`ApiError`]; it becomes a response carrying a [`Problem`] in its extensions, and the
//! [`crate::http::problem_middleware`] renders it with the request id (which only the middleware knows). Error responses
//! that did not come from our code (tower-http's body limit, timeouts, axum's own rejections) are rewritten
//! into the same shape there, so a client never sees a plain-text error.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Base of the `type` URI of every problem; the code is appended.
pub const PROBLEM_TYPE_BASE: &str = "https://errors.idv.local/";

/// Stable machine-readable error codes. Clients switch on these, so never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, wrong types, missing fields, bad parameters.
    InvalidRequest,
    /// No valid bearer token: missing, malformed, expired, wrongly signed or for another audience.
    Unauthorized,
    /// The token is valid but lacks the route's scope.
    Forbidden,
    /// The artifact lives in a region the caller or this deployment may not use, or its tag disagrees.
    ResidencyViolation,
    /// No artifact with that ID exists.
    ArtifactNotFound,
    /// The artifact exceeds the size limit of its kind.
    ArtifactTooLarge,
    /// The artifact's content is not of a supported type (sniffed, not trusted), or the request's content type is wrong.
    UnsupportedMedia,
    /// Too many requests; retry after the `Retry-After` header.
    RateLimited,
    /// A backing store (object store, Redis) did not answer.
    StoreUnavailable,
    /// The service is at capacity; retry shortly.
    Overloaded,
    /// A component of the service (models, engines) is not ready yet or has failed; `/readyz` names it.
    NotReady,
    /// No challenge with that ID exists (phone-proof).
    ChallengeNotFound,
    /// The named threshold profile is not in the loaded model manifest; `GET /v1/models` lists them (face-match).
    ProfileNotFound,
    /// The challenge has expired (phone-proof).
    ChallengeExpired,
    /// The phone number does not parse or is not a valid number for its country (phone-proof).
    InvalidPhoneNumber,
    /// The number is a VoIP number; NIST SP 800-63B forbids them for out-of-band codes (phone-proof).
    VoipNumberRefused,
    /// The number is premium-rate or shared-cost; codes are never sent to them (phone-proof).
    PremiumNumberRefused,
    /// The number is blocked after too many consecutive failed checks; an operator can unblock it (phone-proof).
    PhoneBlocked,
    /// Too many challenges for this phone number in the window; retry after `Retry-After` (phone-proof).
    PhoneRateLimited,
    /// The challenge is no longer pending, so it cannot be resent or canceled (phone-proof).
    ChallengeNotPending,
    /// The challenge has used its sends, or the next resend is not yet available (phone-proof).
    ResendLimited,
    /// The `Idempotency-Key` was already used with a different request (phone-proof).
    IdempotencyConflict,
    /// The message could not be delivered to the SMS gateway after retries; the challenge is `failed` (phone-proof).
    DeliveryFailed,
    /// A model reload was refused (bad manifest, hash or signature); the running models stay (face-match).
    ModelRejected,
    /// The request body exceeds the route's limit.
    PayloadTooLarge,
    /// The image's bytes do not decode: truncated, corrupt, or not what its signature says (face-match, document-ocr).
    InvalidImage,
    /// The image's pixel dimensions exceed the decoder's limit, whatever its byte size (face-match, document-ocr).
    ImageTooLarge,
    /// No route at that path.
    NotFound,
    /// The route exists but not for that method.
    MethodNotAllowed,
    /// The request took longer than the server's limit.
    Timeout,
    /// An unexpected failure; details are in the server log under the request id.
    Internal,
}

impl ErrorCode {
    /// The HTTP status this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ResidencyViolation => StatusCode::FORBIDDEN,
            Self::ArtifactNotFound
            | Self::ChallengeNotFound
            | Self::ProfileNotFound
            | Self::NotFound => StatusCode::NOT_FOUND,
            Self::ArtifactTooLarge | Self::PayloadTooLarge | Self::ImageTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::InvalidImage | Self::ModelRejected => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::StoreUnavailable | Self::Overloaded | Self::NotReady => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::ChallengeExpired => StatusCode::GONE,
            Self::InvalidPhoneNumber => StatusCode::BAD_REQUEST,
            Self::VoipNumberRefused | Self::PremiumNumberRefused | Self::IdempotencyConflict => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::PhoneBlocked => StatusCode::LOCKED,
            Self::PhoneRateLimited | Self::ResendLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ChallengeNotPending => StatusCode::CONFLICT,
            Self::DeliveryFailed => StatusCode::BAD_GATEWAY,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::ResidencyViolation => "residency_violation",
            Self::ArtifactNotFound => "artifact_not_found",
            Self::ArtifactTooLarge => "artifact_too_large",
            Self::UnsupportedMedia => "unsupported_media",
            Self::RateLimited => "rate_limited",
            Self::StoreUnavailable => "store_unavailable",
            Self::Overloaded => "overloaded",
            Self::NotReady => "not_ready",
            Self::ChallengeNotFound => "challenge_not_found",
            Self::ProfileNotFound => "profile_not_found",
            Self::ChallengeExpired => "challenge_expired",
            Self::InvalidPhoneNumber => "invalid_phone_number",
            Self::VoipNumberRefused => "voip_number_refused",
            Self::PremiumNumberRefused => "premium_number_refused",
            Self::PhoneBlocked => "phone_blocked",
            Self::PhoneRateLimited => "phone_rate_limited",
            Self::ChallengeNotPending => "challenge_not_pending",
            Self::ResendLimited => "resend_limited",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::DeliveryFailed => "delivery_failed",
            Self::ModelRejected => "model_rejected",
            Self::PayloadTooLarge => "payload_too_large",
            Self::InvalidImage => "invalid_image",
            Self::ImageTooLarge => "image_too_large",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }

    /// The problem title (RFC 9457 `title`) of this code.
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "Invalid request",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::ResidencyViolation => "Residency violation",
            Self::ArtifactNotFound => "Artifact not found",
            Self::ArtifactTooLarge => "Artifact too large",
            Self::UnsupportedMedia => "Unsupported media",
            Self::RateLimited => "Rate limited",
            Self::StoreUnavailable => "Store unavailable",
            Self::Overloaded => "Overloaded",
            Self::NotReady => "Not ready",
            Self::ChallengeNotFound => "Challenge not found",
            Self::ProfileNotFound => "Profile not found",
            Self::ChallengeExpired => "Challenge expired",
            Self::InvalidPhoneNumber => "Invalid phone number",
            Self::VoipNumberRefused => "VoIP number refused",
            Self::PremiumNumberRefused => "Premium-rate number refused",
            Self::PhoneBlocked => "Phone number blocked",
            Self::PhoneRateLimited => "Too many challenges for this number",
            Self::ChallengeNotPending => "Challenge not pending",
            Self::ResendLimited => "Resend not available",
            Self::IdempotencyConflict => "Idempotency key conflict",
            Self::DeliveryFailed => "Delivery failed",
            Self::ModelRejected => "Model reload refused",
            Self::PayloadTooLarge => "Payload too large",
            Self::InvalidImage => "Invalid image",
            Self::ImageTooLarge => "Image dimensions too large",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Timeout => "Request timeout",
            Self::Internal => "Internal error",
        }
    }

    /// The code a bare error status maps to, for responses produced outside our handlers.
    pub(crate) fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMedia,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::REQUEST_TIMEOUT => Self::Timeout,
            StatusCode::SERVICE_UNAVAILABLE => Self::Overloaded,
            s if s.is_client_error() => Self::InvalidRequest,
            _ => Self::Internal,
        }
    }
}

/// The problem+json body (RFC 9457) with our `code` and `request_id` extensions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://errors.idv.local/residency_violation",
    "title": "Residency violation",
    "status": 403,
    "code": "residency_violation",
    "detail": "the token does not allow region 'us'",
    "request_id": "01JD3Z8Q8Y5Q0W6F9T3K2M1N4P"
}))]
pub struct Problem {
    /// URI naming the problem type; ends in the code.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short human summary of the type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human explanation of this occurrence; never holds internals or PII.
    pub detail: String,
    /// The request id, also in the `x-request-id` response header.
    pub request_id: String,
}

/// An error a handler answers with. `detail` is shown to the client, so it must not hold internals or PII.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Stable code.
    pub code: ErrorCode,
    /// Client-facing explanation.
    pub detail: String,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a code and a client-facing detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// Adds a `Retry-After` hint.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// An internal error: logs the cause (which may hold internals) and tells the client nothing of it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "an internal error occurred; quote the request id when reporting it",
        )
    }

    /// Shorthand for `invalid_request`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, detail)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl std::error::Error for ApiError {}

/// Marker left in a response's extensions; the middleware turns it into the body.
#[derive(Clone)]
pub(crate) struct PendingProblem(pub(crate) ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.code.status().into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(PendingProblem(self));
        res
    }
}

/// Renders a problem body for a request id. Used by the middleware and by code that answers outside it.
pub fn render_problem(err: &ApiError, request_id: &str) -> Response {
    let problem = Problem {
        type_uri: format!("{PROBLEM_TYPE_BASE}{}", err.code.as_str()),
        title: err.code.title().to_owned(),
        status: err.code.status().as_u16(),
        code: err.code,
        detail: err.detail.clone(),
        request_id: request_id.to_owned(),
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut res = (err.code.status(), body).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if let Some(secs) = err.retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}
