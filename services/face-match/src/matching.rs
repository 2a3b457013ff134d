//! The decision: two analysed images and a threshold profile become a verdict, its calibrated confidence and
//! its reasons. Pure, so every rule is unit-tested without models.

use idv_shared::verdict::{Outcome, Reason, ReasonCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    models::manifest::{Calibration, QualitySpec, Thresholds},
    pipeline::{ChosenFace, detect::Face},
};

/// What one image contributed to a match.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImageReport {
    /// The chosen (largest) face; absent when none was found.
    pub face: Option<ChosenFace>,
    /// Faces found above the detector threshold.
    pub faces_detected: usize,
    /// Boxes of the other faces, largest first (at most 10). On the probe, those at least the profile's
    /// `other_face_ratio` of the compared face's size hold the verdict for review; smaller ones do not.
    pub other_faces: Vec<crate::pipeline::FaceBox>,
    /// EXIF orientation applied before detection (1 = none).
    pub exif_orientation: u8,
    /// Decoded width and height in pixels.
    pub dimensions: [u32; 2],
}

/// The `result` of a face-match verdict.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MatchResult {
    /// Cosine similarity of the two embeddings (-1..1); absent when a face is missing.
    pub similarity: Option<f64>,
    /// P(same person | similarity) from the manifest's calibration.
    pub match_probability: Option<f64>,
    /// The profile used.
    pub profile: String,
    /// Its thresholds.
    pub thresholds: Thresholds,
    /// The document photo.
    pub reference: ImageReport,
    /// The selfie.
    pub probe: ImageReport,
    /// The detector that found the faces (the embedder is the verdict's `model`).
    pub detector: idv_shared::verdict::ModelRef,
}

/// A decision before it is signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The outcome.
    pub verdict: Outcome,
    /// Calibrated belief in it.
    pub confidence: f64,
    /// Why.
    pub reasons: Vec<Reason>,
    /// Similarity and probability, when both faces exist.
    pub similarity: Option<(f64, f64)>,
}

/// One side of the pair as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// The chosen face, if any.
    pub face: Option<&'a ChosenFace>,
    /// Every face found, largest first (the chosen one first).
    pub faces: &'a [Face],
    /// The best detector score anywhere on the image.
    pub best_score: f32,
}

fn reason(code: ReasonCode, detail: String) -> Reason {
    Reason { code, detail }
}

/// Decides. `similarity` is present exactly when both sides have a face.
pub fn decide(
    reference: Side<'_>,
    probe: Side<'_>,
    similarity: Option<f64>,
    thresholds: Thresholds,
    calibration: Calibration,
    quality: QualitySpec,
) -> Decision {
    let mut reasons = Vec::new();
    let (Some(r), Some(p), Some(s)) = (reference.face, probe.face, similarity) else {
        // No face: the claim cannot be supported. Confidence is the detector's belief that there is none.
        let mut best: f64 = 0.0;
        if reference.face.is_none() {
            reasons.push(reason(
                ReasonCode::NoFaceReference,
                "no face was found on the reference image".into(),
            ));
            best = best.max(f64::from(reference.best_score));
        }
        if probe.face.is_none() {
            reasons.push(reason(
                ReasonCode::NoFaceProbe,
                "no face was found on the probe image".into(),
            ));
            best = best.max(f64::from(probe.best_score));
        }
        return Decision {
            verdict: Outcome::Fail,
            confidence: round(1.0 - best),
            reasons,
            similarity: None,
        };
    };
    let probability = calibration.probability(s);
    let mut verdict = if s >= thresholds.pass {
        Outcome::Pass
    } else if s < thresholds.fail {
        reasons.push(reason(
            ReasonCode::FaceMismatch,
            format!(
                "similarity {s:.3} is below the fail threshold {:.2}",
                thresholds.fail
            ),
        ));
        Outcome::Fail
    } else {
        reasons.push(reason(
            ReasonCode::FaceMismatch,
            format!(
                "similarity {s:.3} is between the fail ({:.2}) and pass ({:.2}) thresholds",
                thresholds.fail, thresholds.pass
            ),
        ));
        Outcome::Review
    };
    let mut weak = false;
    // A second face near the subject's size is a fraud signal (someone else holding the phone, a photo held up
    // beside the face); a bystander far behind is not.
    if let Some((chosen, others)) = probe.faces.split_first() {
        let least = thresholds.other_face_ratio * f64::from(chosen.size());
        let comparable = others
            .iter()
            .filter(|f| f64::from(f.size()) >= least)
            .count();
        if comparable > 0 {
            weak = true;
            reasons.push(reason(
                ReasonCode::MultipleFaces,
                format!(
                    "{comparable} other face(s) on the probe image at least {:.2} of the compared face's size \
                     ({} smaller); the largest was compared",
                    thresholds.other_face_ratio,
                    others.len() - comparable
                ),
            ));
        }
    }
    for (name, face) in [("reference", r), ("probe", p)] {
        if f64::from(face.eye_distance_px) < quality.min_eye_distance_px {
            weak = true;
            reasons.push(reason(
                ReasonCode::FaceTooSmall,
                format!(
                    "{name} face: {:.0} px between the eyes, below {:.0}",
                    face.eye_distance_px, quality.min_eye_distance_px
                ),
            ));
        }
        if face.quality.score < quality.min_quality {
            weak = true;
            reasons.push(reason(
                ReasonCode::LowQuality,
                format!(
                    "{name} face: quality {:.2} (detection {:.2}, sharpness {:.2}, frontal {:.2}) is below {:.2}",
                    face.quality.score,
                    face.quality.detection,
                    face.quality.sharpness,
                    face.quality.frontal,
                    quality.min_quality
                ),
            ));
        }
    }
    // Poor evidence can neither confirm nor refute: a blurred or tiny genuine face scores low too.
    if weak {
        verdict = Outcome::Review;
    }
    let confidence = match verdict {
        Outcome::Pass => probability,
        Outcome::Fail => 1.0 - probability,
        Outcome::Review => probability.max(1.0 - probability),
    };
    Decision {
        verdict,
        confidence: round(confidence),
        reasons,
        similarity: Some((round(s), round(probability))),
    }
}

fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{FaceBox, quality::Quality};

    const T: Thresholds = Thresholds {
        pass: 0.4,
        fail: 0.28,
        other_face_ratio: 0.5,
    };
    const C: Calibration = Calibration { a: 17.0, b: -6.0 };
    const Q: QualitySpec = QualitySpec {
        min_eye_distance_px: 20.0,
        min_quality: 0.35,
    };

    fn face(eye: f32, quality: f64) -> ChosenFace {
        ChosenFace {
            bbox: FaceBox {
                x: 0.0,
                y: 0.0,
                width: 100.0,
                height: 120.0,
            },
            detection_score: 0.9,
            eye_distance_px: eye,
            quality: Quality {
                score: quality,
                detection: 1.0,
                sharpness: quality,
                frontal: 1.0,
            },
        }
    }

    /// Square faces of these sides, largest first.
    fn faces(sides: &[f32]) -> Vec<Face> {
        sides
            .iter()
            .map(|&s| Face {
                bbox: [0.0, 0.0, s, s],
                score: 0.9,
                landmarks: [[0.0; 2]; 5],
            })
            .collect()
    }

    fn side<'a>(f: Option<&'a ChosenFace>, faces: &'a [Face]) -> Side<'a> {
        Side {
            face: f,
            faces,
            best_score: if f.is_some() { 0.9 } else { 0.2 },
        }
    }

    fn codes(d: &Decision) -> Vec<ReasonCode> {
        d.reasons.iter().map(|r| r.code).collect()
    }

    #[test]
    fn thresholds_split_pass_review_fail() {
        let f = face(60.0, 0.9);
        let one = faces(&[100.0]);
        let pass = decide(
            side(Some(&f), &one),
            side(Some(&f), &one),
            Some(0.4),
            T,
            C,
            Q,
        );
        assert_eq!((pass.verdict, codes(&pass)), (Outcome::Pass, vec![]));
        assert!((pass.confidence - C.probability(0.4)).abs() < 1e-4);
        let review = decide(
            side(Some(&f), &one),
            side(Some(&f), &one),
            Some(0.3),
            T,
            C,
            Q,
        );
        assert_eq!(
            (review.verdict, codes(&review)),
            (Outcome::Review, vec![ReasonCode::FaceMismatch])
        );
        let fail = decide(
            side(Some(&f), &one),
            side(Some(&f), &one),
            Some(0.05),
            T,
            C,
            Q,
        );
        assert_eq!(
            (fail.verdict, codes(&fail)),
            (Outcome::Fail, vec![ReasonCode::FaceMismatch])
        );
        assert!(fail.confidence > 0.99);
    }

    #[test]
    fn weak_evidence_caps_at_review() {
        let good = face(60.0, 0.9);
        let one = faces(&[100.0]);
        let small = face(12.0, 0.9);
        let blurred = face(60.0, 0.1);
        let d = decide(
            side(Some(&good), &one),
            side(Some(&small), &one),
            Some(0.8),
            T,
            C,
            Q,
        );
        assert_eq!(
            (d.verdict, codes(&d)),
            (Outcome::Review, vec![ReasonCode::FaceTooSmall])
        );
        let d = decide(
            side(Some(&blurred), &one),
            side(Some(&good), &one),
            Some(0.1),
            T,
            C,
            Q,
        );
        assert_eq!(d.verdict, Outcome::Review);
        assert_eq!(
            codes(&d),
            vec![ReasonCode::FaceMismatch, ReasonCode::LowQuality]
        );
    }

    #[test]
    fn only_a_second_face_of_comparable_size_holds_the_verdict() {
        let good = face(60.0, 0.9);
        let one = faces(&[100.0]);
        let decide_with = |probe: &[Face], t: Thresholds| {
            decide(
                side(Some(&good), &one),
                side(Some(&good), probe),
                Some(0.8),
                t,
                C,
                Q,
            )
        };
        // Bystanders 3–5× smaller: listed by the service, but the verdict stands.
        let bystanders = faces(&[100.0, 33.0, 20.0]);
        let d = decide_with(&bystanders, T);
        assert_eq!((d.verdict, codes(&d)), (Outcome::Pass, vec![]));
        // A second face of about the subject's size, or just at the ratio: review.
        for second in [90.0, 50.0] {
            let two = faces(&[100.0, second, 20.0]);
            let d = decide_with(&two, T);
            assert_eq!(
                (d.verdict, codes(&d)),
                (Outcome::Review, vec![ReasonCode::MultipleFaces]),
                "second face {second}"
            );
            assert!(d.reasons[0].detail.contains("1 other face(s)"));
            assert!(d.reasons[0].detail.contains("(1 smaller)"));
        }
        // A profile may count bystanders too.
        let strict = Thresholds {
            other_face_ratio: 0.3,
            ..T
        };
        let d = decide_with(&bystanders, strict);
        assert_eq!(d.verdict, Outcome::Review);
        // Faces on the reference (a document's ghost portrait) never hold the verdict.
        let d = decide(
            side(Some(&good), &bystanders),
            side(Some(&good), &faces(&[100.0, 95.0])),
            Some(0.8),
            T,
            C,
            Q,
        );
        assert_eq!(codes(&d), vec![ReasonCode::MultipleFaces]);
        let d = decide(
            side(Some(&good), &faces(&[100.0, 95.0])),
            side(Some(&good), &one),
            Some(0.8),
            T,
            C,
            Q,
        );
        assert_eq!(d.verdict, Outcome::Pass);
    }

    #[test]
    fn missing_faces_fail_with_their_side_named() {
        let good = face(60.0, 0.9);
        let one = faces(&[100.0]);
        let d = decide(side(None, &[]), side(Some(&good), &one), None, T, C, Q);
        assert_eq!(
            (d.verdict, codes(&d)),
            (Outcome::Fail, vec![ReasonCode::NoFaceReference])
        );
        assert!((d.confidence - 0.8).abs() < 1e-9);
        let d = decide(side(None, &[]), side(None, &[]), None, T, C, Q);
        assert_eq!(
            codes(&d),
            vec![ReasonCode::NoFaceReference, ReasonCode::NoFaceProbe]
        );
    }
}
