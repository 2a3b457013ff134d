//! The standard verdict every verification endpoint returns on HTTP 200.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::{digest::sha256_hex, store::ArtifactRef};

/// Which service decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceName {
    /// Document OCR and MRZ validation.
    DocumentOcr,
    /// Selfie-to-document face matching.
    FaceMatch,
    /// One-time-code proof of phone possession.
    PhoneProof,
}

impl ServiceName {
    /// Wire name, also the JWT audience and the ledger's file name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DocumentOcr => "document-ocr",
            Self::FaceMatch => "face-match",
            Self::PhoneProof => "phone-proof",
        }
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The evidence supports the claim.
    Pass,
    /// The evidence contradicts the claim (mismatch, wrong code, expired document…).
    Fail,
    /// The evidence is too weak to decide; a human or a retry should look.
    Review,
}

impl Outcome {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Review => "review",
        }
    }
}

/// Stable reason codes of every service. Never rename one; add new ones at the end of their group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    // document-ocr
    /// No MRZ band was found on the image.
    MrzNotFound,
    /// An MRZ was found but could not be read into a known format.
    MrzUnreadable,
    /// A check digit does not hold; `detail` names which.
    CheckDigitMismatch,
    /// The document's expiry date has passed.
    DocumentExpired,
    /// A date field is not a valid date.
    InvalidDate,
    /// A country code is neither ISO 3166-1 alpha-3 nor an ICAO special code.
    UnknownCountryCode,
    /// OCR confidence is too low to decide.
    LowConfidence,
    /// OCR confusions were repaired, each confirmed by a check digit.
    CorrectedCharacters,
    /// Some characters could not be read with certainty (the fields are listed in the result's
    /// `uncertain_fields`): ask the user for a sharper, evenly lit, straight-on photo.
    ImageQuality,
    /// The document's OCR time budget ran out before a reading settled.
    TimeBudgetExhausted,
    /// The visual zone prints a name differently from the MRZ; `detail` names the field.
    VizMrzMismatch,
    // face-match
    /// The faces do not belong to the same person.
    FaceMismatch,
    /// No face on the reference image.
    NoFaceReference,
    /// No face on the probe image.
    NoFaceProbe,
    /// More than one face on the probe image.
    MultipleFaces,
    /// A face is too small to compare reliably.
    FaceTooSmall,
    /// Image quality is too poor to decide.
    LowQuality,
    // phone-proof
    /// The submitted code is wrong.
    CodeMismatch,
    /// The challenge expired before a correct code arrived.
    ChallengeExpired,
    /// The challenge has used all its checks.
    MaxAttemptsReached,
    /// The challenge was already verified; codes are accepted once.
    AlreadyVerified,
    /// The challenge was canceled.
    ChallengeCanceled,
    /// The challenge's code could not be delivered, so it accepts no code.
    ChallengeFailed,
}

impl ReasonCode {
    /// Wire name (snake_case), also used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MrzNotFound => "mrz_not_found",
            Self::MrzUnreadable => "mrz_unreadable",
            Self::CheckDigitMismatch => "check_digit_mismatch",
            Self::DocumentExpired => "document_expired",
            Self::InvalidDate => "invalid_date",
            Self::UnknownCountryCode => "unknown_country_code",
            Self::LowConfidence => "low_confidence",
            Self::CorrectedCharacters => "corrected_characters",
            Self::ImageQuality => "image_quality",
            Self::TimeBudgetExhausted => "time_budget_exhausted",
            Self::VizMrzMismatch => "viz_mrz_mismatch",
            Self::FaceMismatch => "face_mismatch",
            Self::NoFaceReference => "no_face_reference",
            Self::NoFaceProbe => "no_face_probe",
            Self::MultipleFaces => "multiple_faces",
            Self::FaceTooSmall => "face_too_small",
            Self::LowQuality => "low_quality",
            Self::CodeMismatch => "code_mismatch",
            Self::ChallengeExpired => "challenge_expired",
            Self::MaxAttemptsReached => "max_attempts_reached",
            Self::AlreadyVerified => "already_verified",
            Self::ChallengeCanceled => "challenge_canceled",
            Self::ChallengeFailed => "challenge_failed",
        }
    }
}

/// One reason behind a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    /// Stable code.
    pub code: ReasonCode,
    /// Human explanation; never holds PII.
    pub detail: String,
}

/// The model that decided, where one did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelRef {
    /// Model name from the manifest.
    pub name: String,
    /// Model version from the manifest.
    pub version: String,
    /// sha256 of the model file.
    pub sha256: String,
}

/// The standard verdict. `R` is the service-specific `result`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Verdict<R> {
    /// Unique verification id (`vrf_` + ULID).
    #[schema(example = "vrf_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P")]
    pub id: String,
    /// The deciding service.
    pub service: ServiceName,
    /// The decision.
    pub verdict: Outcome,
    /// Calibrated belief in the decision, 0..1.
    #[schema(minimum = 0.0, maximum = 1.0, example = 0.93)]
    pub confidence: f64,
    /// Stable reason codes with details; empty on a clean pass.
    pub reasons: Vec<Reason>,
    /// Service-specific result with minimal PII.
    pub result: R,
    /// Chain of custody of every input.
    pub artifacts: Vec<ArtifactRef>,
    /// The model that decided, where one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    /// Compact JWS (EdDSA) over the verdict's essentials; verify with `GET /.well-known/jwks.json`.
    pub audit_token: String,
    /// When the verdict was made (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
}

/// A verdict before it is signed and recorded: what domain logic hands to the [`crate::audit::Auditor`].
#[derive(Debug, Clone)]
pub struct VerdictDraft<R> {
    /// The deciding service.
    pub service: ServiceName,
    /// The decision.
    pub verdict: Outcome,
    /// Calibrated belief in the decision, 0..1.
    pub confidence: f64,
    /// Reasons.
    pub reasons: Vec<Reason>,
    /// Service-specific result.
    pub result: R,
    /// Inputs.
    pub artifacts: Vec<ArtifactRef>,
    /// Deciding model.
    pub model: Option<ModelRef>,
    /// The document format read (`TD1`, `TD3`, …; `none` when no MRZ was read), for document-ocr's metrics:
    /// review and fail rates by format are the false-reject signal operators watch. `None` elsewhere. A metric
    /// label only, never part of the verdict or its token.
    pub format: Option<&'static str>,
}

/// A new verification id.
pub fn new_verification_id() -> String {
    format!("vrf_{}", ulid::Ulid::new())
}

/// RFC 3339 with seconds, as used in tokens and the ledger.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
