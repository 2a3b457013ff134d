//! Configuration of face-match: the common settings (see `idv_shared::config`) plus its own.

use std::path::PathBuf;

use idv_shared::imaging::DecodeLimits;
use serde::Deserialize;

/// Settings only face-match has. Set through the service prefix (e.g. `FACE_WORKERS=2`,
/// `FACE_MANIFEST=/etc/idv/models/manifest.toml`) or the `[face-match]` table of `IDV_CONFIG_FILE`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The model manifest; model files are resolved relative to its folder.
    pub manifest: PathBuf,
    /// ONNX Runtime's shared library. Unset: `ORT_DYLIB_PATH`, then `.cache/onnxruntime/libonnxruntime.so`
    /// under the working directory (where `scripts/fetch-models.py` puts it).
    pub ort_dylib: Option<PathBuf>,
    /// Inference worker threads, each with its own sessions. 0: one per core.
    pub workers: usize,
    /// ONNX Runtime intra-op threads per session.
    pub ort_threads: usize,
    /// Images waiting for a worker at most (a pair is two); past it requests get `503 overloaded` at once.
    pub queue_capacity: usize,
    /// Pixel limits of decoded images.
    pub decode: DecodeLimits,
    /// The profile used when a request names none.
    pub default_profile: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            manifest: PathBuf::from("models/manifest.toml"),
            ort_dylib: None,
            workers: 0,
            ort_threads: 1,
            queue_capacity: 16,
            decode: DecodeLimits::default(),
            default_profile: "default".into(),
        }
    }
}

impl Settings {
    /// The worker count to run: the setting, or one per available core.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }

    /// Where ONNX Runtime is loaded from.
    pub fn ort_dylib_path(&self) -> PathBuf {
        self.ort_dylib
            .clone()
            .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(".cache/onnxruntime/libonnxruntime.so"))
    }
}
