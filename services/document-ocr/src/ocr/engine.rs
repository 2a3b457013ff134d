//! Tesseract engines, each loaded once and used by one thread at a time, on the suite's worker pool
//! (`idv_shared::workers`): overload is refused at once (the caller answers `503 overloaded`).

use std::{path::PathBuf, sync::Arc};

use idv_shared::workers::{PoolError, WorkerPool};
use image::GrayImage;
use tesseract::{PageSegMode, Tesseract};

use super::{
    hocr::{self, Line},
    ocrb::OcrB,
};

/// The MRZ alphabet, the only characters Tesseract may answer.
const WHITELIST: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<";

/// Why OCR failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OcrError {
    /// An engine could not be created (missing language data, broken install).
    #[error("Tesseract with '{language}' from {datapath}: {cause} (run scripts/fetch-models.py)")]
    Init {
        /// Language.
        language: String,
        /// Data folder.
        datapath: String,
        /// Why.
        cause: String,
    },
    /// The OCR-B typeface could not be loaded.
    #[error(
        "OCR-B glyphs from {path}: {cause} (install Debian's fonts-ocr-b, or set OCR_MRZ_FONT)"
    )]
    Font {
        /// The font file.
        path: String,
        /// Why.
        cause: String,
    },
    /// Recognition failed.
    #[error("Tesseract: {0}")]
    Recognise(String),
    /// Every worker is busy and the queue is full.
    #[error(
        "all {workers} OCR workers are busy and {capacity} documents are waiting; retry shortly"
    )]
    Overloaded {
        /// Workers.
        workers: usize,
        /// Queue capacity.
        capacity: usize,
    },
    /// A worker failed.
    #[error("the OCR worker failed")]
    WorkerFailed,
}

/// What an engine is set up to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// MRZ lines: the MRZ alphabet only, one block.
    Mrz,
    /// Printed text of any kind (the visual zone): no whitelist, read as one block.
    Text,
}

/// One Tesseract engine, set up for MRZ text (or, from [`OcrEngine::text`], for the visual zone).
pub struct OcrEngine {
    datapath: String,
    language: String,
    mode: Mode,
    tess: Option<Tesseract>,
}

impl std::fmt::Debug for OcrEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcrEngine")
            .field("language", &self.language)
            .finish()
    }
}

impl OcrEngine {
    /// Loads `language` from `datapath`, for MRZ lines.
    pub fn new(datapath: &str, language: &str) -> Result<Self, OcrError> {
        Self::load(datapath, language, Mode::Mrz)
    }

    /// Loads `language` from `datapath`, for general printed text.
    pub fn text(datapath: &str, language: &str) -> Result<Self, OcrError> {
        Self::load(datapath, language, Mode::Text)
    }

    fn load(datapath: &str, language: &str, mode: Mode) -> Result<Self, OcrError> {
        let mut engine = Self {
            datapath: datapath.to_owned(),
            language: language.to_owned(),
            mode,
            tess: None,
        };
        engine.tess = Some(engine.fresh()?);
        Ok(engine)
    }

    fn fresh(&self) -> Result<Tesseract, OcrError> {
        let init = |cause: String| OcrError::Init {
            language: self.language.clone(),
            datapath: self.datapath.clone(),
            cause,
        };
        let t = Tesseract::new(Some(&self.datapath), Some(&self.language))
            .map_err(|e| init(e.to_string()))?;
        if self.mode == Mode::Text {
            let mut t = t
                .set_variable("hocr_char_boxes", "1")
                .map_err(|e| init(e.to_string()))?;
            // One uniform block: a document's visual zone is a column of labels and values, which the automatic
            // layout splits into pieces and partly drops.
            t.set_page_seg_mode(PageSegMode::PsmSingleBlock);
            return Ok(t);
        }
        let mut t = t
            .set_variable("tessedit_char_whitelist", WHITELIST)
            .map_err(|e| init(e.to_string()))?
            // MRZs are dark on light: Tesseract's second, inverted pass over weak words only costs time.
            .set_variable("tessedit_do_invert", "0")
            .map_err(|e| init(e.to_string()))?
            // Per-character confidences and the LSTM's alternatives in the hOCR output: the reader repairs only
            // characters that Tesseract itself found ambiguous.
            .set_variable("lstm_choice_mode", "2")
            .map_err(|e| init(e.to_string()))?
            .set_variable("hocr_char_boxes", "1")
            .map_err(|e| init(e.to_string()))?;
        t.set_page_seg_mode(PageSegMode::PsmSingleBlock);
        Ok(t)
    }

    /// The language this engine reads.
    pub fn language(&self) -> &str {
        &self.language
    }

    /// Recognises a grey image; returns its text lines with their characters' confidences and alternatives.
    pub fn read(&mut self, img: &GrayImage) -> Result<Vec<Line>, OcrError> {
        let (w, h) = img.dimensions();
        let _span =
            tracing::debug_span!("ocr", language = %self.language, width = w, height = h).entered();
        let tess = match self.tess.take() {
            Some(t) => t,
            None => self.fresh()?,
        };
        let rec = |e: String| OcrError::Recognise(e);
        // The engine is consumed by each step; on failure a fresh one is made for the next call.
        let mut tess = tess
            .set_frame(img.as_raw(), w as i32, h as i32, 1, w as i32)
            .map_err(|e| rec(e.to_string()))?
            .set_source_resolution(300)
            .recognize()
            .map_err(|e| rec(e.to_string()))?;
        let hocr = tess.get_hocr_text(0).map_err(|e| rec(e.to_string()))?;
        self.tess = Some(tess);
        Ok(hocr::lines(&hocr))
    }
}

impl OcrEngine {
    /// Whether this engine is loaded (it is reloaded after a failed call).
    pub fn is_loaded(&self) -> bool {
        self.tess.is_some()
    }
}

/// A worker's engines: the MRZ model, and `eng` as the fallback and for the visual zone when configured.
#[derive(Debug)]
pub struct Engines {
    /// Primary (MRZ language data).
    pub primary: OcrEngine,
    /// Fallback for MRZ lines the primary cannot read.
    pub fallback: Option<OcrEngine>,
    /// The general model for the visual zone's printed names.
    pub viz: Option<OcrEngine>,
    /// OCR-B's glyphs, the second recogniser of MRZ characters.
    pub ocrb: Option<Arc<OcrB>>,
}

/// Where engines come from.
#[derive(Debug, Clone)]
pub struct EngineSpec {
    /// Folder holding the `.traineddata` files.
    pub datapath: PathBuf,
    /// Primary language (`mrz`).
    pub primary: String,
    /// Fallback language (`eng`), if any.
    pub fallback: Option<String>,
    /// OCR-B's glyphs, loaded once, if configured.
    pub ocrb: Option<Arc<OcrB>>,
}

impl EngineSpec {
    fn build(&self) -> Result<Engines, OcrError> {
        let dp = self.datapath.to_string_lossy().into_owned();
        Ok(Engines {
            primary: OcrEngine::new(&dp, &self.primary)?,
            fallback: self
                .fallback
                .as_deref()
                .map(|l| OcrEngine::new(&dp, l))
                .transpose()?,
            viz: self
                .fallback
                .as_deref()
                .map(|l| OcrEngine::text(&dp, l))
                .transpose()?,
            ocrb: self.ocrb.clone(),
        })
    }
}

/// The OCR workers: one set of [`Engines`] per thread, behind the suite's bounded queue.
pub type Pool = WorkerPool<Engines>;

/// Checks the spec by building one set of engines (a broken install fails start-up, not the first request),
/// then starts `workers` threads, each building its own; at most `capacity` documents wait.
pub fn start_pool(
    spec: EngineSpec,
    workers: usize,
    capacity: usize,
) -> Result<Arc<Pool>, OcrError> {
    drop(spec.build()?);
    WorkerPool::start("ocr", workers, capacity, move |_| spec.build())
        .map_err(|e| OcrError::Recognise(e.to_string()))
}

impl From<PoolError> for OcrError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Overloaded { workers, capacity } => Self::Overloaded { workers, capacity },
            PoolError::WorkerFailed => Self::WorkerFailed,
        }
    }
}
