//! The document-ocr domain service: fetch the artifact, read its MRZ on an OCR worker, judge it, and issue
//! the verdict once its ledger entry is durable. Returns only the fields asked for; logs none.

use std::{collections::BTreeMap, sync::Arc};

use chrono::NaiveDate;
use idv_shared::{
    auth::Caller,
    imaging::{DecodeLimits, decode_rgb},
    kernel::ServicePorts,
    store::{ArtifactId, ArtifactKind},
    verdict::{Outcome, Reason, ReasonCode, Verdict, VerdictDraft},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    SERVICE,
    error::OcrServiceError,
    mrz::{CheckOutcome, Correction, Mrz, MrzFormat, Sex},
    ocr::{
        engine::{OcrError, Pool},
        reader,
    },
};

/// What kind of document the caller expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum DocumentHint {
    /// Any format.
    #[default]
    Auto,
    /// TD3.
    Passport,
    /// TD1 or TD2.
    IdCard,
    /// MRV-A or MRV-B.
    Visa,
}

impl DocumentHint {
    fn allows(self, f: MrzFormat) -> bool {
        match self {
            Self::Auto => true,
            Self::Passport => f == MrzFormat::Td3,
            Self::IdCard => matches!(f, MrzFormat::Td1 | MrzFormat::Td2),
            Self::Visa => matches!(f, MrzFormat::MrvA | MrzFormat::MrvB),
        }
    }
}

/// Every field a caller may ask for.
pub const FIELDS: [&str; 10] = [
    "document_code",
    "issuing_state",
    "surname",
    "given_names",
    "document_number",
    "nationality",
    "birth_date",
    "sex",
    "expiry_date",
    "optional_data",
];

/// One returned field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldValue {
    /// Normalised value (dates as ISO 8601, names with spaces, fillers removed).
    pub value: String,
    /// Confidence in this field, 0–1: OCR confidence, halved when its check digit fails, lowered when repaired.
    pub confidence: f64,
}

/// How the MRZ was read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OcrInfo {
    /// Language data used (`mrz` or the fallback).
    pub language: String,
    /// Clockwise rotation applied to the page, degrees.
    pub rotation_degrees: u16,
    /// Tesseract's confidence in the weakest MRZ line, 0–1.
    pub confidence: f64,
}

/// The `result` of a document-ocr verdict.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OcrResult {
    /// The MRZ format, when one was read.
    pub format: Option<MrzFormat>,
    /// The requested fields.
    pub fields: BTreeMap<String, FieldValue>,
    /// Every check digit and whether it holds.
    pub checks: Vec<CheckOutcome>,
    /// Repairs applied to the returned fields.
    pub corrections: Vec<Correction>,
    /// Requested fields holding a character that could not be read with certainty (no check digit or list
    /// confirmed it): never `pass`; a retake may read them.
    pub uncertain_fields: Vec<String>,
    /// OCR details, when an MRZ was read.
    pub ocr: Option<OcrInfo>,
}

/// The request, parsed.
#[derive(Debug, Clone)]
pub struct OcrQuery {
    /// The document image.
    pub artifact: ArtifactId,
    /// Expected kind.
    pub hint: DocumentHint,
    /// Fields to return (all when `None`).
    pub fields: Option<Vec<String>>,
}

/// The service.
pub struct DocumentReader {
    ports: ServicePorts,
    pool: Arc<Pool>,
    decode: DecodeLimits,
    policy: Policy,
    budget: std::time::Duration,
}

impl std::fmt::Debug for DocumentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentReader")
            .field("pool", &self.pool)
            .finish()
    }
}

fn reason(code: ReasonCode, detail: impl Into<String>) -> Reason {
    Reason {
        code,
        detail: detail.into(),
    }
}

impl DocumentReader {
    /// A reader over the kernel's ports and an OCR pool; `budget` is each document's worker time at most.
    /// The ports' clock says what "today" is, for expiry and date centuries.
    pub fn new(
        ports: ServicePorts,
        pool: Arc<Pool>,
        decode: DecodeLimits,
        policy: Policy,
        budget: std::time::Duration,
    ) -> Self {
        Self {
            ports,
            pool,
            decode,
            policy,
            budget,
        }
    }

    /// Reads and judges a document; returns the recorded verdict.
    pub async fn verify(
        &self,
        caller: &Caller,
        q: OcrQuery,
    ) -> Result<Verdict<OcrResult>, OcrServiceError> {
        let artifact = self
            .ports
            .artifacts
            .fetch(&q.artifact, &caller.regions, ArtifactKind::Image)
            .await?;
        let (bytes, limits, today) = (
            artifact.bytes.clone(),
            self.decode,
            self.ports.clock.today(),
        );
        let limit = self.budget;
        let scan = self
            .pool
            .run(
                move |engines, gone| -> Result<reader::Scan, OcrServiceError> {
                    // The budget counts from the worker taking the job: decoding is part of it.
                    let budget = reader::Budget::new(limit, gone);
                    let page =
                        tracing::debug_span!("decode").in_scope(|| decode_rgb(&bytes, limits))?;
                    Ok(reader::read_within(engines, &page.image, today, &budget)?)
                },
            )
            .await
            .map_err(OcrError::from)??;
        let (verdict, confidence, reasons, result) = judge(scan, &q, today, self.policy);
        let format = result.format.map_or("none", MrzFormat::as_str);
        let draft = VerdictDraft {
            service: SERVICE,
            verdict,
            confidence,
            reasons,
            result,
            artifacts: vec![artifact.custody()],
            model: None,
            format: Some(format),
        };
        Ok(self.ports.verdicts.issue(&caller.tenant, draft).await?)
    }
}

fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn field_of(correction_field: &str) -> &str {
    match correction_field {
        "names" => "surname",
        other => other,
    }
}

fn wanted(fields: Option<&[String]>, name: &str) -> bool {
    fields.is_none_or(|f| {
        f.iter()
            .any(|x| x == name || (name == "surname" && x == "given_names"))
    })
}

fn fields(m: &Mrz, r: &reader::Reading, only: Option<&[String]>) -> BTreeMap<String, FieldValue> {
    use crate::mrz::Checked;
    let holds = |c: Checked| {
        m.checks
            .iter()
            .find(|x| x.field == c)
            .is_none_or(|x| x.holds)
    };
    let corrected = |f: &str| {
        m.corrections
            .iter()
            .any(|c| c.field == f || (c.field == "names" && (f == "surname" || f == "given_names")))
    };
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let all: [(&str, String, Option<Checked>); 10] = [
        ("document_code", m.document_code.clone(), None),
        ("issuing_state", m.issuing_state.clone(), None),
        ("surname", m.surname.clone(), None),
        ("given_names", m.given_names.clone(), None),
        (
            "document_number",
            m.document_number.clone(),
            Some(Checked::DocumentNumber),
        ),
        ("nationality", m.nationality.clone(), None),
        ("birth_date", date(m.birth_date), Some(Checked::BirthDate)),
        (
            "sex",
            match m.sex {
                Sex::Male => "M",
                Sex::Female => "F",
                Sex::Unspecified => "X",
            }
            .to_owned(),
            None,
        ),
        (
            "expiry_date",
            date(m.expiry_date),
            Some(Checked::ExpiryDate),
        ),
        (
            "optional_data",
            m.optional_data.clone(),
            Some(Checked::OptionalData),
        ),
    ];
    all.into_iter()
        .filter(|(name, ..)| only.is_none_or(|f| f.iter().any(|x| x == name)))
        .map(|(name, value, check)| {
            let mut c = r.confidence;
            if check.is_some_and(|k| !holds(k)) || !holds(Checked::Composite) {
                c *= 0.5;
            }
            if corrected(name) {
                c *= 0.85;
            }
            if m.uncertain.iter().any(|u| u == name) {
                c *= 0.5;
            }
            (
                name.to_owned(),
                FieldValue {
                    value,
                    confidence: round(c),
                },
            )
        })
        .collect()
}

fn early(outcome: Outcome, confidence: f64, code: ReasonCode, detail: &str) -> Judged {
    let empty = OcrResult {
        format: None,
        fields: BTreeMap::new(),
        checks: vec![],
        corrections: vec![],
        uncertain_fields: vec![],
        ocr: None,
    };
    (outcome, confidence, vec![reason(code, detail)], empty)
}

/// A verdict's parts: outcome, confidence, reasons, result.
pub type Judged = (Outcome, f64, Vec<Reason>, OcrResult);

/// How strictly a reading is judged: the operator's choices a verdict rests on (see `config::Settings`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// OCR confidence (0–1) below which a verdict is at best `review`.
    pub min_confidence: f64,
    /// The least share (0–1) of its doubtful characters' weight a misread must carry to excuse a failing check
    /// (see `Mrz::misread_shares`); 0: any misread the recognisers weighed excuses it.
    pub min_misread_share: f32,
}

/// Turns a reading into a verdict, separating "cannot read" from "invalid":
/// - `fail` only for what the image shows for certain: no MRZ at all, a check digit that fails on characters read
///   without doubt, a date that is not a date, an expired document, the wrong kind of document; and, where the
///   policy's `min_misread_share` is above 0 (the operator's choice), a check only a misread less likely than
///   that would explain, on an otherwise sound reading;
/// - `review` when the reading is doubtful (`image_quality`, with the fields in `uncertain_fields`; an MRZ seen
///   but unreadable; the time budget spent), on repairs, unknown country codes or low OCR confidence;
/// - `pass` otherwise.
///
/// Public so the accuracy tool judges exactly as the service does.
pub fn judge(scan: reader::Scan, q: &OcrQuery, today: NaiveDate, policy: Policy) -> Judged {
    let min_confidence = policy.min_confidence;
    let r = match scan {
        reader::Scan::Read(r) => r,
        reader::Scan::NotFound => {
            return early(
                Outcome::Fail,
                0.9,
                ReasonCode::MrzNotFound,
                "no machine-readable zone was found on the image",
            );
        }
        reader::Scan::Unreadable => {
            return early(
                Outcome::Review,
                0.5,
                ReasonCode::MrzUnreadable,
                "lines shaped like a machine-readable zone were found but do not read as any MRZ format; a \
                 sharper, evenly lit image may read",
            );
        }
        reader::Scan::OutOfTime { seen } => {
            let detail = if seen {
                "the OCR time budget ran out before the machine-readable zone read; a sharper, straight-on \
                 image reads faster"
            } else {
                "the OCR time budget ran out before a machine-readable zone was found"
            };
            return early(
                Outcome::Review,
                0.3,
                ReasonCode::TimeBudgetExhausted,
                detail,
            );
        }
    };
    let m = &r.mrz;
    if !q.hint.allows(m.format) {
        let detail = format!(
            "the document hint is {:?} but the MRZ is {:?}",
            q.hint, m.format
        );
        return early(
            Outcome::Fail,
            r.confidence,
            ReasonCode::MrzUnreadable,
            &detail,
        );
    }
    let mut reasons = Vec::new();
    let doubtful = |c: &CheckOutcome| m.doubtful_checks.contains(&c.field);
    // A failing check only a misread less likely than the policy allows would explain counts as one no misread
    // explains: the operator has weighed forgeries against misreads (0 keeps every weighed misread an excuse).
    let share_of = |c: &CheckOutcome| {
        m.misread_shares
            .iter()
            .find(|(k, _)| *k == c.field)
            .map(|(_, share)| *share)
    };
    let weak_excuse = |c: &CheckOutcome| share_of(c).filter(|s| *s < policy.min_misread_share);
    let unexplained_checks: Vec<crate::mrz::Checked> = m
        .checks
        .iter()
        .filter(|c| m.unexplained_checks.contains(&c.field) || weak_excuse(c).is_some())
        .map(|c| c.field)
        .collect();
    let unexplained = |c: &CheckOutcome| unexplained_checks.contains(&c.field);
    let failed: Vec<&CheckOutcome> = m.checks.iter().filter(|c| !c.holds).collect();
    for c in &failed {
        let how = if let Some(share) = weak_excuse(c) {
            format!(
                "and the likeliest misread that would make it hold has a share of {share:.2}, under the {:.2} a \
                 misread needs to excuse it",
                policy.min_misread_share
            )
        } else if unexplained(c) {
            "and no misread of its doubtful characters would make it hold".to_owned()
        } else if let Some(share) = share_of(c) {
            format!(
                "on characters that could not be read with certainty (the likeliest misread that would make it \
                 hold has a share of {share:.2})"
            )
        } else if doubtful(c) {
            "on characters that could not be read with certainty".to_owned()
        } else {
            "on characters read without doubt".to_owned()
        };
        reasons.push(reason(
            ReasonCode::CheckDigitMismatch,
            format!("the {:?} check digit does not hold, {how}", c.field),
        ));
    }
    let uncertain = |f: &str| m.uncertain.iter().any(|u| u == f);
    for f in &m.invalid_dates {
        reasons.push(reason(
            ReasonCode::InvalidDate,
            format!("{f} is not a valid date"),
        ));
    }
    let expiry_confirmed = m
        .checks
        .iter()
        .any(|c| c.field == crate::mrz::Checked::ExpiryDate && c.holds);
    let expired = expiry_confirmed && m.expiry_date.is_some_and(|d| d < today);
    if expired {
        reasons.push(reason(
            ReasonCode::DocumentExpired,
            "the document's expiry date has passed",
        ));
    }
    for f in &m.unknown_countries {
        reasons.push(reason(
            ReasonCode::UnknownCountryCode,
            format!("{f} is not an ISO 3166-1 or ICAO code"),
        ));
    }
    if !m.corrections.is_empty() {
        reasons.push(reason(
            ReasonCode::CorrectedCharacters,
            format!(
                "{} ambiguous character(s) settled, each confirmed by a check digit, the country list or the \
                 field's type",
                m.corrections.len()
            ),
        ));
    }
    let uncertain_fields: Vec<String> = m
        .uncertain
        .iter()
        .filter(|f| {
            q.fields
                .as_deref()
                .is_none_or(|only| only.iter().any(|x| x == *f))
        })
        .cloned()
        .collect();
    for f in &r.viz_mismatch {
        reasons.push(reason(
            ReasonCode::VizMrzMismatch,
            format!("the visual zone prints {f} differently from the machine-readable zone"),
        ));
    }
    if !m.uncertain.is_empty() {
        reasons.push(reason(
            ReasonCode::ImageQuality,
            format!(
                "{} field(s) could not be read with certainty; a sharper, evenly lit, straight-on photo may read",
                m.uncertain.len()
            ),
        ));
    }
    if r.confidence < min_confidence {
        reasons.push(reason(
            ReasonCode::LowConfidence,
            format!(
                "OCR confidence {:.2} is below {:.2}",
                r.confidence, min_confidence
            ),
        ));
    }
    // A rule broken by characters read without doubt condemns the document; one broken by doubtful characters
    // only says the image is poor. Neither condemns a reading that is doubtful as a whole (a weak reading) or on
    // the check's own lines (an unknown country code there): a line may be misaligned or misread, which a check
    // digit cannot tell from forgery. A country code with a character repaired by type (a digit where only
    // letters go) counts as unknown here: a line read one character out of place (measured on phone captures:
    // `XXA` read `XXK`, the number shifted by one) puts impossible characters in a code as easily as a misread
    // does. Such a line unsettles only its own checks: each line is read and aligned on its own, so a TD1 whose
    // nationality (line 2) reads wrong still condemns a number its line 1 reads for certain beside a known
    // issuing state (measured on phone captures: a forged number held for review by `UTO` read `UTD`).
    let unsettled: Vec<usize> = m
        .unknown_countries
        .iter()
        .chain(m.corrections.iter().map(|c| &c.field))
        .filter_map(|f| m.country_line(f))
        .collect();
    let confident = r.confidence >= min_confidence;
    let sound = |c: &CheckOutcome| {
        confident
            && m.check_lines(c.field)
                .iter()
                .all(|l| !unsettled.contains(l))
    };
    // A check no misread explains, on a reading with no other doubt, was broken by a change after its digit was
    // computed: doubt about the characters it covers does not excuse it, since its search weighed them. Doubt in
    // a field no check covers does not either (the names, the sex, a visa's optional data): its misreads cannot
    // be why a check fails. The document code is the exception: it decides the format, and so which checks
    // there are and where.
    let unchecked =
        |f: &str| f != "document_code" && !m.checks.iter().any(|c| c.field.covers().contains(&f));
    let covered = |f: &String| {
        unchecked(f)
            || unexplained_checks
                .iter()
                .any(|c| c.covers().contains(&f.as_str()))
    };
    let altered = failed.iter().any(|c| unexplained(c) && sound(c))
        && m.corrections.is_empty()
        && m.invalid_dates.is_empty()
        && r.viz_mismatch.is_empty()
        && m.uncertain.iter().all(covered);
    let hard = failed.iter().any(|c| sound(c) && !doubtful(c))
        || altered
        || expired
        || m.invalid_dates.iter().any(|f| !uncertain(f));
    // Every repair holds the verdict for review: measured on phone captures, a forged date's doubtful digit
    // "repaired" into one that holds made a forgery pass when date repairs did not.
    let soft = !failed.is_empty()
        || !m.invalid_dates.is_empty()
        || !m.unknown_countries.is_empty()
        || !m.corrections.is_empty()
        || !m.uncertain.is_empty()
        || r.confidence < min_confidence;
    let verdict = if hard {
        Outcome::Fail
    } else if soft {
        Outcome::Review
    } else {
        Outcome::Pass
    };
    // Every check digit that holds makes a wrong reading ten times less likely to pass unnoticed.
    let holding = m.checks.iter().filter(|c| c.holds).count() as i32;
    let confidence = match verdict {
        Outcome::Pass => 1.0 - (1.0 - r.confidence) * 10f64.powi(-holding),
        _ => r.confidence,
    };
    let result = OcrResult {
        format: Some(m.format),
        fields: fields(m, &r, q.fields.as_deref()),
        checks: m.checks.clone(),
        corrections: m
            .corrections
            .iter()
            .filter(|c| wanted(q.fields.as_deref(), field_of(&c.field)))
            .cloned()
            .collect(),
        uncertain_fields,
        ocr: Some(OcrInfo {
            language: r.language.clone(),
            rotation_degrees: u16::from(r.quarter_turns) * 90,
            confidence: round(r.confidence),
        }),
    };
    (verdict, round(confidence), reasons, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> OcrQuery {
        let region = "eu"
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid residency"));
        OcrQuery {
            artifact: ArtifactId::generate(region),
            hint: DocumentHint::Auto,
            fields: None,
        }
    }

    /// The policy the tests judge by: a confidence bar of 0.7, every weighed misread an excuse.
    const POLICY: Policy = Policy {
        min_confidence: 0.7,
        min_misread_share: 0.0,
    };

    fn reading(
        lines: [&str; 3],
        doubt: Option<(usize, usize, u8)>,
        confidence: f64,
    ) -> reader::Scan {
        read_with_doubts(&lines, doubt.as_slice(), confidence)
    }

    /// `lines` read with certainty but at each `(line, column, alternative)`: there the character read is
    /// doubtful (0.6) and the alternative weighed (0.3).
    fn read_with_doubts(
        lines: &[&str],
        doubts: &[(usize, usize, u8)],
        confidence: f64,
    ) -> reader::Scan {
        let today = NaiveDate::from_ymd_opt(2010, 1, 4).unwrap_or_default();
        let mut glyphs: Vec<Vec<crate::mrz::Glyph>> = lines
            .iter()
            .map(|l| l.bytes().map(crate::mrz::Glyph::certain).collect())
            .collect();
        for (l, c, alt) in doubts {
            glyphs[*l][*c].conf = 0.6;
            glyphs[*l][*c].alternatives = vec![(*alt, 0.3)];
        }
        let mrz = crate::mrz::parse_read(&glyphs, &[], today).unwrap_or_else(|e| panic!("{e}"));
        reader::Scan::Read(Box::new(reader::Reading {
            mrz,
            confidence,
            language: "mrz".into(),
            quarter_turns: 0,
            rectified: true,
            passes: 1,
            viz_mismatch: Vec::new(),
        }))
    }

    /// ICAO's TD1 specimen (valid until 2012, so judged in 2010) with its document number `D23145890` as given (a forger's 4 changed to 9 in
    /// `D23195890`, the check digit 7 left as it was).
    fn td1(number: &str) -> [String; 3] {
        [
            format!("I<UTO{number}7<<<<<<<<<<<<<<<"),
            "7408122F1204159UTO<<<<<<<<<<<6".into(),
            "ERIKSSON<<ANNA<MARIA<<<<<<<<<<".into(),
        ]
    }

    #[test]
    fn a_forged_number_fails_even_with_a_doubtful_character_that_does_not_explain_it() {
        let today = NaiveDate::from_ymd_opt(2010, 1, 4).unwrap_or_default();
        let judged = |number: &str, doubt, confidence| {
            let l = td1(number);
            judge(
                reading([&l[0], &l[1], &l[2]], doubt, confidence),
                &query(),
                today,
                POLICY,
            )
        };
        // The doubtful 2 could be a Z, which would not make the check hold: the number was altered.
        let (outcome, _, reasons, _) = judged("D23195890", Some((0, 6, b'Z')), 0.9);
        assert_eq!(outcome, Outcome::Fail, "{reasons:?}");
        // A doubtful S that Tesseract also read as 5, which would make it hold: a misread, so review.
        let (outcome, _, reasons, _) = judged("D2314S890", Some((0, 10, b'5')), 0.9);
        assert_eq!(outcome, Outcome::Review, "{reasons:?}");
        // The forged number read without doubt fails; but not on a line read too weakly to condemn anything.
        assert_eq!(judged("D23195890", None, 0.9).0, Outcome::Fail);
        assert_eq!(judged("D23195890", None, 0.5).0, Outcome::Review);
        // The genuine number passes.
        assert_eq!(judged("D23145890", None, 0.9).0, Outcome::Pass);
    }

    #[test]
    fn a_misread_less_likely_than_the_policy_allows_does_not_excuse_a_failing_check() {
        let today = NaiveDate::from_ymd_opt(2010, 1, 4).unwrap_or_default();
        let judged = |number: &str, doubt, min_misread_share| {
            let l = td1(number);
            let policy = Policy {
                min_misread_share,
                ..POLICY
            };
            judge(
                reading([&l[0], &l[1], &l[2]], Some(doubt), 0.9),
                &query(),
                today,
                policy,
            )
        };
        // The forged 9 read at 0.6, a 4 weighed at 0.3 (the printed original, which would make the check hold):
        // the misread's share is 0.3 / 0.9. Any weighed misread excuses it by default; a stricter policy does not.
        let forged = ("D23195890", (0, 9, b'4'));
        let (outcome, _, reasons, _) = judged(forged.0, forged.1, 0.0);
        assert_eq!(outcome, Outcome::Review);
        assert!(
            reasons
                .iter()
                .any(|r| r.detail.contains("a share of 0.33)")),
            "the detail tells the operator how likely the excusing misread is: {reasons:?}"
        );
        assert_eq!(judged(forged.0, forged.1, 0.3).0, Outcome::Review);
        let (outcome, _, reasons, _) = judged(forged.0, forged.1, 0.5);
        assert_eq!(outcome, Outcome::Fail, "{reasons:?}");
        assert!(
            reasons
                .iter()
                .any(|r| r.detail.contains("a share of 0.33, under the 0.50")),
            "{reasons:?}"
        );
        // The cost, which the operator weighs: a genuine number's S misread for its 5 as surely is condemned alike.
        let genuine = ("D2314S890", (0, 10, b'5'));
        assert_eq!(judged(genuine.0, genuine.1, 0.3).0, Outcome::Review);
        assert_eq!(judged(genuine.0, genuine.1, 0.5).0, Outcome::Fail);
        // A reading whose checks hold is untouched by the policy, doubtful characters and all.
        assert_eq!(judged("D23145890", (0, 9, b'A'), 1.0).0, Outcome::Pass);
    }

    #[test]
    fn doubt_where_no_check_looks_does_not_excuse_a_number_no_misread_explains() {
        let today = NaiveDate::from_ymd_opt(2010, 1, 4).unwrap_or_default();
        let l = td1("D23195890");
        let judged = |doubts: &[(usize, usize, u8)]| {
            judge(
                read_with_doubts(&[&l[0], &l[1], &l[2]], doubts, 0.9),
                &query(),
                today,
                POLICY,
            )
        };
        // The number's doubtful 2 could be a Z, which would not make its check hold; the name's doubtful R could
        // be a P, but no check covers the names, so that doubt cannot be why the number fails.
        let (outcome, _, reasons, result) = judged(&[(0, 6, b'Z'), (2, 1, b'P')]);
        assert_eq!(outcome, Outcome::Fail, "{reasons:?}");
        assert!(result.uncertain_fields.contains(&"surname".to_owned()));
        // Nor in the sex, which no check covers either.
        let (outcome, _, reasons, result) = judged(&[(0, 6, b'Z'), (1, 7, b'M')]);
        assert_eq!(outcome, Outcome::Fail, "{reasons:?}");
        assert!(result.uncertain_fields.contains(&"sex".to_owned()));
        // Doubt in the document code, which decides the format and so which checks there are, still holds the
        // verdict for review.
        let (outcome, _, reasons, _) = judged(&[(0, 6, b'Z'), (0, 0, b'A')]);
        assert_eq!(outcome, Outcome::Review, "{reasons:?}");
    }

    /// ICAO's TD2 specimen with optional data `AB12345`, its composite check digit 2 (computed for it).
    fn td2(number: &str, optional: &str) -> [String; 2] {
        [
            "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<".into(),
            format!("{number}7UTO7408122F1204159{optional}2"),
        ]
    }

    #[test]
    fn forged_optional_data_fails_on_the_composite_when_the_numbers_misread_is_explained() {
        let today = NaiveDate::from_ymd_opt(2010, 1, 4).unwrap_or_default();
        let judged = |optional: &str| {
            let l = td2("D2314589O", optional);
            // The number's last 0 read as a doubtful O, 0 weighed: its check fails until that is undone.
            judge(
                read_with_doubts(&[&l[0], &l[1]], &[(1, 8, b'0')], 0.9),
                &query(),
                today,
                POLICY,
            )
        };
        // TD2's optional data has no check digit of its own, only the composite's: with the O read as 0 the
        // number holds but the composite does not, and no misread explains both. A forger changed 2 to 9.
        let (outcome, _, reasons, _) = judged("AB19345");
        assert_eq!(outcome, Outcome::Fail, "{reasons:?}");
        // The printed optional data: the O read as 0 makes both hold, so the image is doubtful, not the document.
        let (outcome, _, reasons, _) = judged("AB12345");
        assert_eq!(outcome, Outcome::Review, "{reasons:?}");
        let l = td2("D23145890", "AB12345");
        let (outcome, _, reasons, _) = judge(
            read_with_doubts(&[&l[0], &l[1]], &[], 0.9),
            &query(),
            today,
            POLICY,
        );
        assert_eq!(outcome, Outcome::Pass, "{reasons:?}");
    }

    #[test]
    fn a_broken_check_condemns_nothing_when_a_country_code_on_its_lines_is_unknown() {
        let today = NaiveDate::from_ymd_opt(2010, 1, 4).unwrap_or_default();
        let l = td1("D23195890");
        // `UTO` read `UTK`, the K doubtful with O weighed: the code is returned as read, never fitted to the
        // list (a line read out of place fits it as easily), and the reading is held for review.
        let line = l[0].replacen("UTO", "UTK", 1);
        let (outcome, _, reasons, result) = judge(
            reading([&line, &l[1], &l[2]], Some((0, 4, b'O')), 0.9),
            &query(),
            today,
            POLICY,
        );
        assert!(result.corrections.is_empty(), "{:?}", result.corrections);
        assert!(
            reasons
                .iter()
                .any(|r| r.code == ReasonCode::UnknownCountryCode),
            "{reasons:?}"
        );
        assert_eq!(outcome, Outcome::Review, "{reasons:?}");
        // Read as printed, the same broken check fails the document.
        let (outcome, _, reasons, _) = judge(
            reading([&l[0], &l[1], &l[2]], None, 0.9),
            &query(),
            today,
            POLICY,
        );
        assert_eq!(outcome, Outcome::Fail, "{reasons:?}");
        // The nationality `UTO` read `UTD` on line 2 unsettles line 2's checks only: the forged number, read for
        // certain on line 1 beside a known issuing state, still fails the document…
        let nationality = l[1].replacen("UTO", "UTD", 1);
        let judged = |lines: [&str; 3]| judge(reading(lines, None, 0.9), &query(), today, POLICY);
        let (outcome, _, reasons, _) = judged([&l[0], &nationality, &l[2]]);
        assert_eq!(outcome, Outcome::Fail, "{reasons:?}");
        // …while a birth date broken on that line is held for review, and so is the genuine number (for the
        // unknown code alone).
        let birth = nationality.replacen("740812", "740813", 1);
        let genuine = td1("D23145890");
        for lines in [
            [&genuine[0], &birth, &genuine[2]],
            [&genuine[0], &nationality, &genuine[2]],
        ] {
            let (outcome, _, reasons, _) = judged(lines.map(String::as_str));
            assert_eq!(outcome, Outcome::Review, "{reasons:?}");
        }
        // On a TD2 the issuing state sits on the name line: unknown there, it does not excuse a forged number.
        let l = td2("D23195890", "AB12345");
        let state = l[0].replacen("UTO", "UTD", 1);
        let (outcome, _, reasons, _) = judge(
            read_with_doubts(&[&state, &l[1]], &[], 0.9),
            &query(),
            today,
            POLICY,
        );
        assert_eq!(outcome, Outcome::Fail, "{reasons:?}");
    }

    #[test]
    fn a_page_without_an_mrz_fails_and_an_mrz_that_does_not_read_is_held_for_review() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default();
        for (scan, code, outcome_wanted) in [
            (
                reader::Scan::NotFound,
                ReasonCode::MrzNotFound,
                Outcome::Fail,
            ),
            (
                reader::Scan::Unreadable,
                ReasonCode::MrzUnreadable,
                Outcome::Review,
            ),
            (
                reader::Scan::OutOfTime { seen: true },
                ReasonCode::TimeBudgetExhausted,
                Outcome::Review,
            ),
        ] {
            let (outcome, _, reasons, result) = judge(scan, &query(), today, POLICY);
            assert_eq!(outcome, outcome_wanted);
            assert_eq!(reasons.iter().map(|r| r.code).collect::<Vec<_>>(), [code]);
            assert!(result.fields.is_empty() && result.format.is_none());
        }
    }
}
