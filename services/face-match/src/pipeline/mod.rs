//! The face pipeline of one image: decode → detect → choose → align → embed, with each stage timed.
//! Runs on an inference worker (see [`crate::engine`]) with that worker's sessions.

pub mod align;
pub mod detect;
pub mod quality;

use std::time::{Duration, Instant};

use idv_shared::imaging::{DecodeError, DecodeLimits, decode_rgb};
use image::RgbImage;
use ndarray::Array4;
use ort::{session::Session, value::TensorRef};
use serde::Serialize;
use utoipa::ToSchema;

use crate::models::{Manifest, Sessions};
use detect::Face;
use quality::Quality;

/// Why one image could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The bytes are not a usable image.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Inference failed (a model or runtime fault, not the caller's).
    #[error("inference: {0}")]
    Inference(String),
}

fn inference(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Inference(e.to_string())
}

/// Time spent per stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    /// Decoding and orientation.
    pub decode: Duration,
    /// Letterbox, detector run and decoding of its outputs.
    pub detect: Duration,
    /// Transform fit and crop sampling.
    pub align: Duration,
    /// Embedder run and normalisation.
    pub embed: Duration,
    /// Of which inside ONNX Runtime (detector + embedder).
    pub inference: Duration,
}

/// A face box in source pixels.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq)]
pub struct FaceBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

/// The face chosen on an image.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChosenFace {
    /// Where it is.
    #[serde(rename = "box")]
    pub bbox: FaceBox,
    /// Detector score.
    pub detection_score: f32,
    /// Distance between the eye centres in source pixels: the landmark-based size.
    pub eye_distance_px: f32,
    /// Quality factors.
    pub quality: Quality,
}

/// What one image yielded.
#[derive(Debug)]
pub struct Analysis {
    /// Every face above the detector threshold, largest first.
    pub faces: Vec<Face>,
    /// The chosen (largest) face, its quality and its unit-length embedding.
    pub chosen: Option<(ChosenFace, Vec<f32>)>,
    /// The best detector score seen anywhere, kept or not.
    pub best_score: f32,
    /// EXIF orientation applied at decode (1 = none).
    pub exif_orientation: u8,
    /// Decoded width and height.
    pub dimensions: (u32, u32),
    /// Per-stage times.
    pub times: StageTimes,
    /// The aligned crop of the chosen face (kept for the reference-agreement test and calibration tools).
    pub crop: Option<RgbImage>,
}

/// Runs the whole pipeline on encoded bytes.
pub fn analyse(
    bytes: &[u8],
    limits: DecodeLimits,
    manifest: &Manifest,
    sessions: &mut Sessions,
) -> Result<Analysis, PipelineError> {
    let started = Instant::now();
    let decoded = tracing::debug_span!("decode").in_scope(|| decode_rgb(bytes, limits))?;
    let decode = started.elapsed();
    let mut analysis = analyse_image(&decoded.image, manifest, sessions)?;
    analysis.times.decode = decode;
    analysis.exif_orientation = decoded.exif_orientation;
    Ok(analysis)
}

/// Runs detection, alignment and embedding on decoded pixels.
pub fn analyse_image(
    image: &RgbImage,
    manifest: &Manifest,
    sessions: &mut Sessions,
) -> Result<Analysis, PipelineError> {
    let mut times = StageTimes::default();
    let t = Instant::now();
    let (faces, best_score, detector_time) = tracing::debug_span!("detect")
        .in_scope(|| detect(&mut sessions.detector, manifest, image))?;
    times.detect = t.elapsed();
    times.inference += detector_time;
    let mut chosen = None;
    let mut crop = None;
    if let Some(face) = faces.first() {
        let t = Instant::now();
        let align_span = tracing::debug_span!("align").entered();
        let template = manifest.embedder.alignment.template;
        let side = manifest.embedder.common.input.size;
        let transform = align::Similarity::fit(&face.landmarks, &template);
        times.align = t.elapsed();
        if let Some(transform) = transform {
            let aligned = align::warp(image, &transform, side);
            times.align = t.elapsed();
            drop(align_span);
            let t = Instant::now();
            let (embedding, embed_time) = tracing::debug_span!("embed")
                .in_scope(|| embed(&mut sessions.embedder, manifest, &aligned))?;
            times.embed = t.elapsed();
            times.inference += embed_time;
            let quality =
                quality::assess(face, &aligned, manifest.detector.params.detection_quality);
            let [x1, y1, x2, y2] = face.bbox;
            chosen = Some((
                ChosenFace {
                    bbox: FaceBox {
                        x: x1,
                        y: y1,
                        width: x2 - x1,
                        height: y2 - y1,
                    },
                    detection_score: face.score,
                    eye_distance_px: face.eye_distance(),
                    quality,
                },
                embedding,
            ));
            crop = Some(aligned);
        }
    }
    Ok(Analysis {
        faces,
        chosen,
        best_score,
        exif_orientation: 1,
        dimensions: image.dimensions(),
        times,
        crop,
    })
}

/// A face whose box spans at least this share of the image's width or height fills the frame. SCRFD scores
/// such faces low or misses them (it was trained on faces with room around them); capture screens that ask
/// for an oval, SDKs that send face crops and document portraits all produce them.
const FRAME_FILLING: f32 = 0.4;

/// The black margin, as a share of the image's width and height on each side, of the second detection pass on
/// frame-filling faces: the face then spans at most half the input, well inside what detectors saw in training.
const FRAME_MARGIN: f32 = 0.5;

/// Detects faces; returns them largest first, the best raw score and the time inside ONNX Runtime.
///
/// When the largest face fills the frame without a confident score, or no face is found, a second pass runs
/// with the image framed by a margin, and the pass whose largest face scores higher is kept: a face that
/// fills the frame is found as the face it is, and a normal photo costs one pass.
pub fn detect(
    session: &mut Session,
    manifest: &Manifest,
    image: &RgbImage,
) -> Result<(Vec<Face>, f32, Duration), PipelineError> {
    let first = detect_framed(session, manifest, image, 0.0)?;
    let confident = manifest.detector.params.detection_quality[1];
    let needs_margin = match first.0.first() {
        None => true,
        Some(face) => {
            let (w, h) = (image.width() as f32, image.height() as f32);
            face.score < confident
                && ((face.bbox[2] - face.bbox[0]) >= FRAME_FILLING * w
                    || (face.bbox[3] - face.bbox[1]) >= FRAME_FILLING * h)
        }
    };
    if !needs_margin {
        return Ok(first);
    }
    let second = detect_framed(session, manifest, image, FRAME_MARGIN)?;
    let score = |faces: &[Face]| faces.first().map_or(0.0, |f| f.score);
    let best = first.1.max(second.1);
    let time = first.2 + second.2;
    let faces = if score(&second.0) > score(&first.0) {
        second.0
    } else {
        first.0
    };
    Ok((faces, best, time))
}

/// One detector pass with the image framed by `margin` (see [`detect::letterbox`]); faces largest first.
fn detect_framed(
    session: &mut Session,
    manifest: &Manifest,
    image: &RgbImage,
    margin: f32,
) -> Result<(Vec<Face>, f32, Duration), PipelineError> {
    let spec = &manifest.detector;
    let lb = detect::letterbox(image, &spec.common.input, margin);
    let input = TensorRef::from_array_view(&lb.tensor).map_err(inference)?;
    let t = Instant::now();
    let outputs = session
        .run(ort::inputs![spec.common.input.name.as_str() => input])
        .map_err(inference)?;
    let run = t.elapsed();
    let mut slices = Vec::with_capacity(spec.common.outputs.len());
    for o in &spec.common.outputs {
        let value = outputs
            .get(&o.name)
            .ok_or_else(|| inference(format!("no output '{}'", o.name)))?;
        let (_, data) = value.try_extract_tensor::<f32>().map_err(inference)?;
        slices.push(data);
    }
    let (mut faces, best) = detect::decode(
        spec.common.family,
        &slices,
        (lb.width, lb.height),
        lb.placement,
        &spec.params,
    )
    .map_err(inference)?;
    faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
    Ok((faces, best, run))
}

/// Embeds an aligned crop; returns the unit-length embedding and the time inside ONNX Runtime.
pub fn embed(
    session: &mut Session,
    manifest: &Manifest,
    crop: &RgbImage,
) -> Result<(Vec<f32>, Duration), PipelineError> {
    let input = &manifest.embedder.common.input;
    // The image's channel for each of the tensor's (the swap is its own inverse).
    let order: [usize; 3] = if input.colour == "BGR" {
        [2, 1, 0]
    } else {
        [0, 1, 2]
    };
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    let raw = crop.as_raw();
    let tensor = Array4::from_shape_fn((1, 3, h, w), |(_, c, y, x)| {
        (f32::from(raw[(y * w + x) * 3 + order[c]]) - input.mean) / input.std
    });
    let value = TensorRef::from_array_view(&tensor).map_err(inference)?;
    let t = Instant::now();
    let outputs = session
        .run(ort::inputs![input.name.as_str() => value])
        .map_err(inference)?;
    let run = t.elapsed();
    let name = manifest
        .embedder
        .common
        .outputs
        .first()
        .map(|o| o.name.as_str())
        .unwrap_or_default();
    let out = outputs
        .get(name)
        .ok_or_else(|| inference(format!("no output '{name}'")))?;
    let (_, data) = out.try_extract_tensor::<f32>().map_err(inference)?;
    Ok((normalise(data), run))
}

/// Scales to unit length (a zero vector stays zero).
pub fn normalise(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return v.to_vec();
    }
    v.iter().map(|x| x / norm).collect()
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}
