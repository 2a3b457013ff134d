//! One-time codes and the keys that keep them out of storage.
//!
//! A challenge's code is the TOTP (RFC 6238, via `totp-rs`) of a fresh 160-bit secret at the challenge's creation
//! time, so a resend yields the same code. The secret is stored sealed: XORed with an HMAC-SHA256 keystream over
//! the challenge id under a key that never leaves the service, so a dump of the store reveals no usable code.
//! Phone numbers are stored only as HMAC-SHA256 of tenant and number under a second derived key.

use std::path::Path;

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac};
use idv_shared::fsutil::{Create, write_private};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use super::model::ChallengeId;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a code secret (RFC 4226 recommends 160 bits).
pub const SECRET_LEN: usize = 20;

/// The service's keys, derived from one master secret. `Debug` redacts.
pub struct Keys {
    number: [u8; 32],
    seal: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The configured master secret is too short or not base64/hex.
    #[error("phone-proof secret_key must be at least 32 bytes, base64 or hex")]
    Malformed,
    /// The key file could not be read or created.
    #[error("phone-proof key file {path}: {cause}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        cause: String,
    },
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn decode_master(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    hex::decode(s)
        .ok()
        .or_else(|| B64.decode(s).ok())
        .filter(|k| k.len() >= 32)
}

impl Keys {
    /// Derives the keys from a master secret.
    pub fn from_master(master: &[u8]) -> Self {
        Self {
            number: hmac(master, &[b"idv phone-proof number-hash v1"]),
            seal: hmac(master, &[b"idv phone-proof code-seal v1"]),
        }
    }

    /// The configured master secret, or the one in `file` (created once, 0600, first writer wins).
    pub fn load(configured: Option<&str>, file: &Path) -> Result<Self, KeyError> {
        if let Some(s) = configured {
            return decode_master(s)
                .map(|m| Self::from_master(&m))
                .ok_or(KeyError::Malformed);
        }
        let err = |cause: &dyn std::fmt::Display| KeyError::File {
            path: file.display().to_string(),
            cause: cause.to_string(),
        };
        if !file.exists() {
            let mut master = [0u8; 32];
            getrandom::fill(&mut master).map_err(|e| err(&e))?;
            write_private(file, hex::encode(master).as_bytes(), Create::Exclusive)
                .map_err(|e| err(&e))?;
        }
        let raw = std::fs::read_to_string(file).map_err(|e| err(&e))?;
        decode_master(&raw)
            .map(|m| Self::from_master(&m))
            .ok_or(KeyError::Malformed)
    }

    /// The keyed hash that stands for a number of a tenant in storage, limits and proof tokens (hex).
    pub fn number_key(&self, tenant: &str, e164: &str) -> String {
        hex::encode(hmac(&self.number, &[tenant.as_bytes(), e164.as_bytes()]))
    }

    fn keystream(&self, id: &ChallengeId) -> [u8; 32] {
        hmac(&self.seal, &[id.as_str().as_bytes()])
    }

    /// Seals a code secret for storage (hex).
    pub fn seal(&self, id: &ChallengeId, secret: &[u8; SECRET_LEN]) -> String {
        let ks = self.keystream(id);
        let sealed: Vec<u8> = secret.iter().zip(ks).map(|(s, k)| s ^ k).collect();
        hex::encode(sealed)
    }

    /// Opens a sealed secret; `None` if it is not one of ours.
    pub fn open(&self, id: &ChallengeId, sealed: &str) -> Option<[u8; SECRET_LEN]> {
        let bytes = hex::decode(sealed).ok()?;
        let bytes: [u8; SECRET_LEN] = bytes.try_into().ok()?;
        let ks = self.keystream(id);
        let mut out = [0u8; SECRET_LEN];
        for (i, (b, k)) in bytes.iter().zip(ks).enumerate() {
            out[i] = b ^ k;
        }
        Some(out)
    }
}

/// A fresh secret from the OS RNG.
pub fn new_secret() -> Result<[u8; SECRET_LEN], getrandom::Error> {
    let mut s = [0u8; SECRET_LEN];
    getrandom::fill(&mut s)?;
    Ok(s)
}

/// The code of a secret at a challenge's creation time.
pub fn code(secret: &[u8; SECRET_LEN], digits: u32, created_ms: i64) -> String {
    // `new_unchecked`: digits are validated by the settings (6–9; `TOTP::new` stops at 8).
    let totp = TOTP::new_unchecked(Algorithm::SHA1, digits as usize, 0, 30, secret.to_vec());
    totp.generate(u64::try_from(created_ms / 1000).unwrap_or(0))
}

/// Whether a submitted code equals the expected one, in time independent of where they differ.
pub fn matches(expected: &str, submitted: &str) -> bool {
    // Lengths are public (the format is documented); only content is compared in constant time.
    expected.len() == submitted.len() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_per_challenge_and_sealed_secrets_round_trip() {
        let keys = Keys::from_master(&[7u8; 32]);
        let id = ChallengeId::generate();
        let secret = new_secret().unwrap();
        let sealed = keys.seal(&id, &secret);
        assert_ne!(
            sealed,
            hex::encode(secret),
            "stored form must not be the secret"
        );
        assert_eq!(keys.open(&id, &sealed), Some(secret));
        assert_ne!(keys.open(&ChallengeId::generate(), &sealed), Some(secret));
        let c = code(&secret, 6, 1_700_000_000_000);
        assert_eq!(c.len(), 6);
        assert_eq!(c, code(&secret, 6, 1_700_000_000_000));
        assert_eq!(code(&secret, 9, 1_700_000_000_000).len(), 9);
        assert!(matches(&c, &c.clone()));
        assert!(!matches(&c, "12345"));
        assert_ne!(
            keys.number_key("t1", "+4915112345678"),
            keys.number_key("t2", "+4915112345678")
        );
        assert!(Keys::load(Some("short"), Path::new("/nonexistent")).is_err());
    }
}
