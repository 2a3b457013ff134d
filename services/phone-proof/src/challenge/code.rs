//! One-time codes.
//!
//! A challenge's code is the TOTP (RFC 6238, via `totp-rs`) of a fresh 160-bit secret at the challenge's creation
//! time, so a resend yields the same code. The secret is stored sealed ([`super::keys`]), so a dump of the store
//! reveals no usable code.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

/// Bytes of a code secret (RFC 4226 recommends 160 bits).
pub const SECRET_LEN: usize = 20;

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
    use crate::challenge::{keys::Keys, model::ChallengeId};

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
    }
}
