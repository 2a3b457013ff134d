//! Everything that can go wrong in document-ocr, each mapped to one documented problem+json code.

use idv_shared::{
    error::{ApiError, ErrorCode},
    imaging::DecodeError,
    store::FetchError,
};

use crate::ocr::engine::OcrError;

/// A document-ocr failure.
#[derive(Debug, thiserror::Error)]
pub enum OcrServiceError {
    /// The artifact could not be fetched.
    #[error(transparent)]
    Artifact(#[from] FetchError),
    /// The artifact is not a usable image.
    #[error(transparent)]
    Image(#[from] DecodeError),
    /// OCR failed or is overloaded.
    #[error(transparent)]
    Ocr(#[from] OcrError),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The verdict could not be issued.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<OcrServiceError> for ApiError {
    fn from(e: OcrServiceError) -> Self {
        match e {
            OcrServiceError::Artifact(f) => f.into(),
            OcrServiceError::Image(d) => d.into(),
            OcrServiceError::Ocr(o @ OcrError::Overloaded { .. }) => {
                ApiError::new(ErrorCode::Overloaded, o.to_string()).retry_after(1)
            }
            OcrServiceError::Ocr(o) => ApiError::internal(o),
            OcrServiceError::Invalid(d) => ApiError::new(ErrorCode::InvalidRequest, d),
            OcrServiceError::Api(a) => a,
        }
    }
}
