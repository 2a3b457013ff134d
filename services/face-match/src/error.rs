//! Everything that can go wrong in face-match, each mapped to one documented problem+json code.

use idv_shared::{
    error::{ApiError, ErrorCode},
    imaging::DecodeError,
    store::FetchError,
};

use crate::{engine::EngineError, models::ModelError};

/// Which of the two images a failure concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The document photo.
    Reference,
    /// The selfie.
    Probe,
}

impl Role {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Probe => "probe",
        }
    }
}

/// A face-match failure.
#[derive(Debug, thiserror::Error)]
pub enum FaceMatchError {
    /// An artifact could not be fetched.
    #[error("{} artifact: {source}", .role.as_str())]
    Artifact {
        /// Which one.
        role: Role,
        /// Why.
        source: FetchError,
    },
    /// An artifact is not a usable image.
    #[error("{} image: {source}", .role.as_str())]
    Image {
        /// Which one.
        role: Role,
        /// Why.
        source: DecodeError,
    },
    /// The request names an unknown profile.
    #[error("unknown profile '{0}'; GET /v1/models lists the profiles")]
    UnknownProfile(String),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// No inference capacity right now.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Inference failed.
    #[error("inference failed")]
    Inference(String),
    /// A reload was refused.
    #[error(transparent)]
    Models(#[from] ModelError),
}

impl From<FaceMatchError> for ApiError {
    fn from(e: FaceMatchError) -> Self {
        let detail = e.to_string();
        match e {
            FaceMatchError::Artifact { source, .. } => {
                let base = ApiError::from(source);
                let retry = base.retry_after;
                let err = ApiError::new(base.code, detail);
                match retry {
                    Some(s) => err.retry_after(s),
                    None => err,
                }
            }
            FaceMatchError::Image { source, .. } => {
                ApiError::new(ApiError::from(source).code, detail)
            }
            FaceMatchError::UnknownProfile(_) => ApiError::new(ErrorCode::ProfileNotFound, detail),
            FaceMatchError::Invalid(_) => ApiError::new(ErrorCode::InvalidRequest, detail),
            FaceMatchError::Engine(EngineError::Overloaded { .. }) => {
                ApiError::new(ErrorCode::Overloaded, detail).retry_after(1)
            }
            FaceMatchError::Engine(EngineError::WorkerFailed) => ApiError::internal(detail),
            FaceMatchError::Inference(cause) => ApiError::internal(cause),
            FaceMatchError::Models(m) => {
                tracing::warn!(error = %m, "models rejected; the running models stay");
                ApiError::new(ErrorCode::ModelRejected, m.client_detail())
            }
        }
    }
}
