//! Everything that can go wrong in phone-proof, each mapped to one documented problem+json code.

use idv_shared::{
    error::{ApiError, ErrorCode},
    store::FetchError,
};

use crate::{
    challenge::{model::Status, phone::PhoneError},
    sender::DeliveryError,
    store::StoreError,
};

/// A phone-proof failure.
#[derive(Debug, thiserror::Error)]
pub enum PhoneProofError {
    /// The phone artifact could not be fetched.
    #[error(transparent)]
    Artifact(#[from] FetchError),
    /// The artifact does not hold an acceptable number.
    #[error(transparent)]
    Phone(#[from] PhoneError),
    /// The request is malformed (bad code format, bad idempotency key).
    #[error("{0}")]
    Invalid(String),
    /// No such challenge for this tenant.
    #[error("no challenge with this id")]
    NotFound,
    /// The number is blocked.
    #[error(
        "this phone number is blocked after too many failed checks; an operator can unblock it"
    )]
    Blocked,
    /// Too many challenges for the number.
    #[error("too many challenges for this phone number; retry later")]
    NumberLimited {
        /// Seconds until the next is allowed.
        retry_after: u64,
    },
    /// Idempotency key reused for another request.
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyConflict,
    /// The challenge is not pending.
    #[error("the challenge is {}", .0.as_str())]
    NotPending(Status),
    /// No sends left or too early.
    #[error("{}", match .retry_after { Some(_) => "the next resend is not available yet", None => "this challenge has used all its sends" })]
    ResendLimited {
        /// Seconds until the next send, if one is left.
        retry_after: Option<u64>,
    },
    /// The gateway did not take the message.
    #[error("the code could not be delivered; the challenge is failed")]
    Delivery(#[from] DeliveryError),
    /// The challenge store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The artifact changed since the challenge was created.
    #[error("the phone artifact changed since the challenge was created")]
    ArtifactChanged,
    /// Any other failure (already an API error, e.g. from the auditor).
    #[error("{}", .0.detail)]
    Api(ApiError),
}

impl From<ApiError> for PhoneProofError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<PhoneProofError> for ApiError {
    fn from(e: PhoneProofError) -> Self {
        let detail = e.to_string();
        match e {
            PhoneProofError::Artifact(f) => f.into(),
            PhoneProofError::Phone(p) => ApiError::new(
                match p {
                    PhoneError::Shape => ErrorCode::InvalidRequest,
                    PhoneError::Invalid | PhoneError::Unreachable(_) => {
                        ErrorCode::InvalidPhoneNumber
                    }
                    PhoneError::Voip => ErrorCode::VoipNumberRefused,
                    PhoneError::Premium => ErrorCode::PremiumNumberRefused,
                },
                detail,
            ),
            PhoneProofError::Invalid(_) => ApiError::new(ErrorCode::InvalidRequest, detail),
            PhoneProofError::NotFound => ApiError::new(ErrorCode::ChallengeNotFound, detail),
            PhoneProofError::Blocked => ApiError::new(ErrorCode::PhoneBlocked, detail),
            PhoneProofError::NumberLimited { retry_after } => {
                ApiError::new(ErrorCode::PhoneRateLimited, detail).retry_after(retry_after)
            }
            PhoneProofError::IdempotencyConflict => {
                ApiError::new(ErrorCode::IdempotencyConflict, detail)
            }
            PhoneProofError::NotPending(Status::Expired) => {
                ApiError::new(ErrorCode::ChallengeExpired, detail)
            }
            PhoneProofError::NotPending(_) | PhoneProofError::ArtifactChanged => {
                ApiError::new(ErrorCode::ChallengeNotPending, detail)
            }
            PhoneProofError::ResendLimited { retry_after } => {
                let err = ApiError::new(ErrorCode::ResendLimited, detail);
                match retry_after {
                    Some(s) => err.retry_after(s),
                    None => err,
                }
            }
            PhoneProofError::Delivery(d) => {
                tracing::error!(error = %d, "code delivery failed");
                ApiError::new(ErrorCode::DeliveryFailed, detail).retry_after(5)
            }
            PhoneProofError::Store(StoreError::Full) => {
                ApiError::new(ErrorCode::Overloaded, "the challenge store is full").retry_after(5)
            }
            PhoneProofError::Store(s) => {
                tracing::error!(error = %s, "challenge store failed");
                idv_shared::metrics::record_store_error("challenges", "unavailable");
                ApiError::new(
                    ErrorCode::StoreUnavailable,
                    "the challenge store is unavailable; nothing was decided",
                )
                .retry_after(2)
            }
            PhoneProofError::Api(a) => a,
        }
    }
}
