//! Content digests: what chains of custody, the ledger and model checks name bytes by.

use sha2::{Digest, Sha256};

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
