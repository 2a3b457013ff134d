//! Configuration of phone-proof: the common settings (see `idv_shared::config`) plus its own.

use serde::Deserialize;

/// Settings only phone-proof has. Set through the service prefix (e.g. `PHONE_…`) or the
/// `[phone-proof]` table of `IDV_CONFIG_FILE`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {}
