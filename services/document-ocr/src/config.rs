//! Configuration of document-ocr: the common settings (see `idv_shared::config`) plus its own.

use std::path::PathBuf;

use idv_shared::imaging::DecodeLimits;
use serde::Deserialize;

/// Settings only document-ocr has. Set through the service prefix (e.g. `OCR_WORKERS=2`) or the
/// `[document-ocr]` table of `IDV_CONFIG_FILE`. Run with `OMP_THREAD_LIMIT=1` so each engine stays on its
/// worker's core (the scripts set it).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Folder with `mrz.traineddata` (and `eng.traineddata` for the fallback).
    pub tessdata: PathBuf,
    /// Primary language.
    pub language: String,
    /// Fallback language; empty for none.
    pub fallback_language: String,
    /// The OCR-B typeface MRZ characters are also matched against (`OCR_MRZ_FONT`); empty for Tesseract alone.
    pub mrz_font: PathBuf,
    /// OCR worker threads, each with its own engines. 0: one per core.
    pub workers: usize,
    /// Documents waiting for a worker at most; past it requests get `503 overloaded` at once.
    pub queue_capacity: usize,
    /// Pixel limits of decoded images.
    pub decode: DecodeLimits,
    /// OCR confidence (0–1) below which a verdict is at best `review`.
    pub min_confidence: f64,
    /// The least share (0–1) a misread must carry to excuse a failing check (`OCR_MIN_MISREAD_SHARE`): where
    /// the likeliest misread of a check's doubtful characters that would make it hold weighs less than this
    /// against the characters as read, the check fails as a forgery does, instead of holding the document for
    /// review. 0 (the default) lets every misread the recognisers weighed excuse it: no doubtful reading condemns
    /// a document. Raising it catches more forged documents on poor captures and rejects some genuine ones; see
    /// `docs/accuracy.md` for both, measured.
    pub min_misread_share: f32,
    /// Worker time one document may take at most, all fallbacks together, in milliseconds (`OCR_MAX_DOCUMENT_MS`);
    /// past it the answer is `review` with `time_budget_exhausted`, never a timeout.
    pub max_document_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tessdata: PathBuf::from(".cache/tessdata"),
            language: "mrz".into(),
            fallback_language: "eng".into(),
            mrz_font: PathBuf::from("/usr/share/fonts/opentype/ocr-b/OCRB.otf"),
            workers: 0,
            queue_capacity: 16,
            decode: DecodeLimits::default(),
            min_confidence: 0.5,
            min_misread_share: 0.0,
            max_document_ms: 1500,
        }
    }
}

impl Settings {
    /// Checks what a wrong value would silently change: the judgement's thresholds are shares, 0–1.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(format!(
                "OCR_MIN_CONFIDENCE must be between 0 and 1, not {}",
                self.min_confidence
            ));
        }
        if !(0.0..=1.0).contains(&self.min_misread_share) {
            return Err(format!(
                "OCR_MIN_MISREAD_SHARE must be between 0 and 1, not {}",
                self.min_misread_share
            ));
        }
        Ok(())
    }

    /// How readings are judged under these settings.
    pub fn policy(&self) -> crate::document::Policy {
        crate::document::Policy {
            min_confidence: self.min_confidence,
            min_misread_share: self.min_misread_share,
        }
    }

    /// [`Settings::max_document_ms`] as a duration, at least 50 ms (less could read nothing).
    pub fn max_document(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.max_document_ms.max(50))
    }

    /// The worker count to run.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

#[cfg(test)]
mod tests {
    use super::Settings;

    #[test]
    fn thresholds_outside_zero_to_one_are_refused_at_start() {
        assert!(Settings::default().validate().is_ok());
        for share in [-0.1, 1.5, f32::NAN] {
            let s = Settings {
                min_misread_share: share,
                ..Settings::default()
            };
            assert!(s.validate().is_err(), "{share}");
        }
        let s = Settings {
            min_confidence: 2.0,
            ..Settings::default()
        };
        assert!(s.validate().is_err());
    }
}
