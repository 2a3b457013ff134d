//! Loading models: ONNX Runtime once per process, every file checked against the manifest's sha256, every
//! session's inputs and outputs checked against what the manifest declares, then one warm-up run each.

pub mod manifest;

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard, OnceLock},
};

use idv_shared::verdict::{ModelRef, sha256_hex};
use ort::{
    environment::Environment,
    session::{Session, builder::GraphOptimizationLevel},
    value::{TensorElementType, TensorRef, ValueType},
};
use serde::Serialize;
use utoipa::ToSchema;

pub use manifest::Manifest;
use manifest::{ModelCommon, QualitySpec, Thresholds};

/// Why models could not be loaded. Start-up stops on any of these; a reload keeps the old models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The manifest is inconsistent.
    #[error("model manifest: {0}")]
    Manifest(String),
    /// The manifest file cannot be read or parsed.
    #[error("model manifest {path}: {cause}")]
    ManifestFile {
        /// The file.
        path: String,
        /// Why.
        cause: String,
    },
    /// ONNX Runtime's library could not be loaded.
    #[error(
        "ONNX Runtime from {path}: {cause} (run scripts/fetch-models.py, or set FACE_ORT_DYLIB / ORT_DYLIB_PATH)"
    )]
    Runtime {
        /// The library path tried.
        path: String,
        /// Why.
        cause: String,
    },
    /// A model file is missing.
    #[error("model '{model}': cannot read {path}: {cause} (run scripts/fetch-models.py)")]
    Missing {
        /// Model name.
        model: String,
        /// File path.
        path: String,
        /// Why.
        cause: String,
    },
    /// A model file's hash differs from the manifest's.
    #[error(
        "model '{model}': {path} has sha256 {actual}, the manifest expects {expected}; refusing to load it"
    )]
    HashMismatch {
        /// Model name.
        model: String,
        /// File path.
        path: String,
        /// From the manifest.
        expected: String,
        /// Of the file.
        actual: String,
    },
    /// The model's graph does not match what the manifest declares.
    #[error("model '{model}': {what}")]
    Signature {
        /// Model name.
        model: String,
        /// What differs.
        what: String,
    },
    /// ONNX Runtime refused the model or failed to run it.
    #[error("model '{model}': ONNX Runtime: {cause}")]
    Session {
        /// Model name.
        model: String,
        /// Why.
        cause: String,
    },
}

impl ModelError {
    /// What a caller may be told: which model and what is wrong, without file paths, hashes or runtime messages
    /// (those go to the service log).
    pub fn client_detail(&self) -> String {
        match self {
            Self::Manifest(m) => format!("model manifest: {m}"),
            Self::ManifestFile { .. } => "the model manifest cannot be read or parsed".into(),
            Self::Runtime { .. } => "ONNX Runtime could not be loaded".into(),
            Self::Missing { model, .. } => format!("model '{model}': its file cannot be read"),
            Self::HashMismatch { model, .. } => {
                format!("model '{model}': the file's sha256 differs from the manifest's")
            }
            Self::Signature { model, what } => format!("model '{model}': {what}"),
            Self::Session { model, .. } => format!("model '{model}': ONNX Runtime refused it"),
        }
    }
}

/// How sessions are built.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// ONNX Runtime's shared library.
    pub dylib: PathBuf,
    /// Intra-op threads per session.
    pub threads: usize,
    /// Session pairs to build (one per inference worker).
    pub slots: usize,
}

/// One worker's sessions.
pub struct Sessions {
    /// The face detector.
    pub detector: Session,
    /// The face embedder.
    pub embedder: Session,
}

/// A loaded, checked, warmed-up generation of models: the manifest it came from and a session pair per worker.
pub struct ModelSet {
    /// The manifest.
    pub manifest: Manifest,
    /// Which load this is (1 at start-up, +1 per successful reload).
    pub generation: u64,
    /// What `/v1/models` shows.
    pub listing: Vec<ModelInfo>,
    slots: Vec<Mutex<Sessions>>,
}

impl std::fmt::Debug for ModelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSet")
            .field("generation", &self.generation)
            .field("slots", &self.slots.len())
            .finish()
    }
}

/// A model as `/v1/models` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelInfo {
    /// `detector` or `embedder`.
    pub role: String,
    /// Name from the manifest.
    pub name: String,
    /// Version from the manifest.
    pub version: String,
    /// Architecture family: how the service feeds the model and reads its outputs.
    pub family: manifest::Family,
    /// sha256 of the loaded file (checked against the manifest).
    pub sha256: String,
    /// Licence of the weights.
    pub licence: String,
    /// Whether the licence forbids commercial use.
    pub non_commercial: bool,
    /// Where the file came from.
    pub source: manifest::Source,
    /// Inputs as the loaded graph declares them (-1: free dimension).
    pub inputs: Vec<manifest::TensorSpec>,
    /// Outputs as the loaded graph declares them.
    pub outputs: Vec<manifest::TensorSpec>,
    /// Threshold profiles (embedder only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profiles: Option<std::collections::BTreeMap<String, Thresholds>>,
    /// Quality floors (embedder only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualitySpec>,
}

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// ONNX Runtime, loaded once per process from `dylib`.
fn environment(dylib: &Path) -> Result<Environment, ModelError> {
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(dylib)
                .map_err(|e| e.to_string())?
                .with_name("face-match")
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|cause| ModelError::Runtime {
            path: dylib.display().to_string(),
            cause,
        })
}

impl ModelSet {
    /// Loads the manifest at `path` and everything it names.
    pub fn load(
        path: &Path,
        options: &RuntimeOptions,
        generation: u64,
    ) -> Result<Self, ModelError> {
        let manifest = Manifest::load(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let env = environment(&options.dylib)?;
        let detector_bytes = read_checked(dir, &manifest.detector.common)?;
        let embedder_bytes = read_checked(dir, &manifest.embedder.common)?;
        let mut slots = Vec::with_capacity(options.slots.max(1));
        for _ in 0..options.slots.max(1) {
            let mut detector =
                build_session(&env, &manifest.detector.common, &detector_bytes, options)?;
            let mut embedder =
                build_session(&env, &manifest.embedder.common, &embedder_bytes, options)?;
            warm_up(&mut detector, &manifest.detector.common, 160)?;
            warm_up(
                &mut embedder,
                &manifest.embedder.common,
                manifest.embedder.common.input.size,
            )?;
            slots.push(Mutex::new(Sessions { detector, embedder }));
        }
        let listing = {
            let first = slots.first().and_then(|s| s.lock().ok());
            let (d, e) = match &first {
                Some(s) => (signature(&s.detector), signature(&s.embedder)),
                None => (Default::default(), Default::default()),
            };
            vec![
                info("detector", &manifest.detector.common, d, None, None),
                info(
                    "embedder",
                    &manifest.embedder.common,
                    e,
                    Some(manifest.embedder.profiles.clone()),
                    Some(manifest.quality),
                ),
            ]
        };
        for m in [&manifest.detector.common, &manifest.embedder.common] {
            if is_non_commercial(&m.licence) {
                tracing::warn!(model = %m.name, licence = %m.licence, "model licence forbids commercial use");
            }
        }
        Ok(Self {
            manifest,
            generation,
            listing,
            slots,
        })
    }

    /// The session pair of worker `slot`. Each worker only ever locks its own slot, so this never waits.
    pub fn sessions(&self, slot: usize) -> Option<MutexGuard<'_, Sessions>> {
        // A panicked job poisons nothing real: the sessions hold no state between runs.
        let slot = self.slots.get(slot % self.slots.len().max(1))?;
        Some(slot.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The embedder as verdicts name it.
    pub fn embedder_ref(&self) -> ModelRef {
        model_ref(&self.manifest.embedder.common)
    }

    /// The detector as verdicts name it.
    pub fn detector_ref(&self) -> ModelRef {
        model_ref(&self.manifest.detector.common)
    }
}

fn model_ref(m: &ModelCommon) -> ModelRef {
    ModelRef {
        name: m.name.clone(),
        version: m.version.clone(),
        sha256: m.sha256.clone(),
    }
}

fn is_non_commercial(licence: &str) -> bool {
    let l = licence.to_ascii_lowercase();
    l.contains("non-commercial") || l.contains("noncommercial")
}

fn info(
    role: &str,
    m: &ModelCommon,
    (inputs, outputs): (Vec<manifest::TensorSpec>, Vec<manifest::TensorSpec>),
    profiles: Option<std::collections::BTreeMap<String, Thresholds>>,
    quality: Option<QualitySpec>,
) -> ModelInfo {
    ModelInfo {
        role: role.into(),
        name: m.name.clone(),
        version: m.version.clone(),
        family: m.family,
        sha256: m.sha256.clone(),
        licence: m.licence.clone(),
        non_commercial: is_non_commercial(&m.licence),
        source: m.source.clone(),
        inputs,
        outputs,
        profiles,
        quality,
    }
}

fn read_checked(dir: &Path, m: &ModelCommon) -> Result<Vec<u8>, ModelError> {
    let path = dir.join(&m.file);
    let bytes = std::fs::read(&path).map_err(|e| ModelError::Missing {
        model: m.name.clone(),
        path: path.display().to_string(),
        cause: e.to_string(),
    })?;
    let actual = sha256_hex(&bytes);
    if actual != m.sha256.to_ascii_lowercase() {
        return Err(ModelError::HashMismatch {
            model: m.name.clone(),
            path: path.display().to_string(),
            expected: m.sha256.clone(),
            actual,
        });
    }
    Ok(bytes)
}

fn session_err(
    m: &ModelCommon,
) -> impl Fn(ort::Error<ort::session::builder::SessionBuilder>) -> ModelError + '_ {
    move |e| ModelError::Session {
        model: m.name.clone(),
        cause: e.to_string(),
    }
}

fn build_session(
    env: &Environment,
    m: &ModelCommon,
    bytes: &[u8],
    options: &RuntimeOptions,
) -> Result<Session, ModelError> {
    let plain = |e: ort::Error| ModelError::Session {
        model: m.name.clone(),
        cause: e.to_string(),
    };
    let session = Session::builder(env)
        .map_err(plain)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(session_err(m))?
        .with_intra_threads(options.threads.max(1))
        .map_err(session_err(m))?
        .with_inter_threads(1)
        .map_err(session_err(m))?
        // Several workers share few cores: spinning threads would steal them from each other.
        .with_intra_op_spinning(false)
        .map_err(session_err(m))?
        .commit_from_memory(bytes)
        .map_err(plain)?;
    check_signature(&session, m)?;
    Ok(session)
}

fn shape_of(t: &ValueType) -> Vec<i64> {
    t.tensor_shape()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default()
}

fn signature(s: &Session) -> (Vec<manifest::TensorSpec>, Vec<manifest::TensorSpec>) {
    let list = |outlets: &[ort::value::Outlet]| {
        outlets
            .iter()
            .map(|o| manifest::TensorSpec {
                name: o.name().to_owned(),
                shape: shape_of(o.dtype()),
            })
            .collect()
    };
    (list(s.inputs()), list(s.outputs()))
}

/// Dimensions agree when they are equal or either side leaves them free (-1).
fn dims_agree(declared: &[i64], actual: &[i64]) -> bool {
    declared.len() == actual.len()
        && declared
            .iter()
            .zip(actual)
            .all(|(d, a)| *d < 0 || *a < 0 || d == a)
}

fn check_signature(s: &Session, m: &ModelCommon) -> Result<(), ModelError> {
    let bad = |what: String| ModelError::Signature {
        model: m.name.clone(),
        what,
    };
    let [input] = s.inputs() else {
        return Err(bad(format!(
            "the graph has {} inputs; the manifest declares one ('{}')",
            s.inputs().len(),
            m.input.name
        )));
    };
    if input.name() != m.input.name {
        return Err(bad(format!(
            "the graph's input is '{}', the manifest declares '{}'",
            input.name(),
            m.input.name
        )));
    }
    let got = shape_of(input.dtype());
    if !dims_agree(&m.input.shape, &got)
        || input.dtype().tensor_type() != Some(TensorElementType::Float32)
    {
        return Err(bad(format!(
            "input '{}' is {:?} {:?}; the manifest declares float32 {:?}",
            input.name(),
            input.dtype().tensor_type(),
            got,
            m.input.shape
        )));
    }
    for declared in &m.outputs {
        let Some(out) = s.outputs().iter().find(|o| o.name() == declared.name) else {
            let names: Vec<&str> = s.outputs().iter().map(|o| o.name()).collect();
            return Err(bad(format!(
                "the graph has no output '{}' (it has {names:?})",
                declared.name
            )));
        };
        let got = shape_of(out.dtype());
        if !dims_agree(&declared.shape, &got) {
            return Err(bad(format!(
                "output '{}' has shape {got:?}; the manifest declares {:?}",
                declared.name, declared.shape
            )));
        }
    }
    Ok(())
}

/// One run on a grey image, so the first request does not pay for lazy initialisation, and so a model that
/// loads but cannot run is refused at load time.
fn warm_up(s: &mut Session, m: &ModelCommon, side: u32) -> Result<(), ModelError> {
    let data = ndarray::Array4::<f32>::zeros((1, 3, side as usize, side as usize));
    let err = |e: ort::Error| ModelError::Session {
        model: m.name.clone(),
        cause: e.to_string(),
    };
    let input = TensorRef::from_array_view(&data).map_err(err)?;
    let outputs = s
        .run(ort::inputs![m.input.name.as_str() => input])
        .map_err(err)?;
    for declared in &m.outputs {
        let Some(value) = outputs.get(&declared.name) else {
            return Err(ModelError::Signature {
                model: m.name.clone(),
                what: format!("running it produced no output '{}'", declared.name),
            });
        };
        let (shape, _) = value.try_extract_tensor::<f32>().map_err(err)?;
        let got: Vec<i64> = shape.iter().copied().collect();
        if !dims_agree(&declared.shape, &got) {
            return Err(ModelError::Signature {
                model: m.name.clone(),
                what: format!(
                    "output '{}' came out as {got:?}; the manifest declares {:?}",
                    declared.name, declared.shape
                ),
            });
        }
    }
    Ok(())
}
