//! `POST /v1/documents/ocr`.

use axum::extract::State;
use idv_shared::{
    auth::{Authorized, OcrVerify},
    error::{ApiError, Problem},
    http::ApiJson,
    store::ArtifactId,
    verdict::Verdict,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    AppState,
    document::{DocumentHint, FIELDS, OcrQuery, OcrResult},
    error::OcrServiceError,
};

/// A document to read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OcrRequest {
    /// A photo or scan of the document's data page.
    pub artifact_id: ArtifactId,
    /// What kind of document to expect; `auto` accepts any MRZ format.
    #[serde(default)]
    pub document_hint: DocumentHint,
    /// Fields to return (data minimisation); all when absent. One of `document_code`, `issuing_state`,
    /// `surname`, `given_names`, `document_number`, `nationality`, `birth_date`, `sex`, `expiry_date`,
    /// `optional_data`.
    #[schema(schema_with = field_names)]
    pub fields: Option<Vec<String>>,
}

/// The schema of `fields`, from the one list the service checks against ([`FIELDS`]).
fn field_names() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(FIELDS.iter().copied())),
        )
        .examples([serde_json::json!([
            "birth_date",
            "expiry_date",
            "nationality"
        ])])
        .build()
}

/// Read the machine-readable zone of a passport, ID card or visa (TD1, TD2, TD3, MRV-A, MRV-B), scanned or
/// photographed on a surface (the page is found and its perspective undone): Tesseract with MRZ language data,
/// every ICAO 9303 check digit verified, a character changed only where Tesseract itself found it ambiguous and
/// a check digit or the field's type settles it (each repair reported; country codes are checked against the
/// list, never changed to fit it), names and the document number looked up in the visual zone when the reading
/// is not sure. `fail` only for what the image
/// shows for certain: `check_digit_mismatch` on characters read without doubt, `document_expired`,
/// `invalid_date`, `mrz_not_found`, a document of another kind than hinted. `review` for a doubtful reading
/// (`image_quality`, with `result.uncertain_fields`: ask for a retake; `mrz_unreadable`;
/// `time_budget_exhausted`; `viz_mrz_mismatch`) and for `corrected_characters`, `unknown_country_code`,
/// `low_confidence`. `pass` otherwise. Only the requested fields are returned; nothing of the document is
/// logged.
#[utoipa::path(post, path = "/v1/documents/ocr", tag = "document-ocr",
    request_body = OcrRequest,
    responses(
        (status = 200, description = "The verdict, recorded in the audit ledger", body = Verdict<OcrResult>),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, `residency_violation`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`artifact_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`artifact_too_large` (bytes), `image_too_large` (pixels)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_image`: truncated or corrupt image", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` (every OCR worker busy), `store_unavailable`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("gateway_jwt" = ["ocr:verify"])))]
pub async fn read_document(
    auth: Authorized<OcrVerify>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<OcrRequest>,
) -> Result<ApiJson<Verdict<OcrResult>>, ApiError> {
    if let Some(bad) = req
        .fields
        .iter()
        .flatten()
        .find(|f| !FIELDS.contains(&f.as_str()))
    {
        return Err(OcrServiceError::Invalid(format!(
            "unknown field '{bad}'; known: {}",
            FIELDS.join(", ")
        ))
        .into());
    }
    let query = OcrQuery {
        artifact: req.artifact_id,
        hint: req.document_hint,
        fields: req.fields,
    };
    Ok(ApiJson(state.documents.verify(&auth.caller, query).await?))
}
