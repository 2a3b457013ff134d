//! Configuration of document-ocr: the common settings (see `idv_shared::config`) plus its own.

use serde::Deserialize;

/// Settings only document-ocr has. Set through the service prefix (e.g. `OCR_…`) or the
/// `[document-ocr]` table of `IDV_CONFIG_FILE`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {}
