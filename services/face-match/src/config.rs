//! Configuration of face-match: the common settings (see `idv_shared::config`) plus its own.

use serde::Deserialize;

/// Settings only face-match has. Set through the service prefix (e.g. `FACE_…`) or the
/// `[face-match]` table of `IDV_CONFIG_FILE`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {}
