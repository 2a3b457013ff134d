//! Standard Webhooks signing (https://www.standardwebhooks.com): what phone-proof's SMS-gateway sender signs
//! with and what a receiver (such as `idvctl sms-sink`) checks.

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a `webhook-timestamp` may be from the receiver's clock.
pub const TOLERANCE_SECS: i64 = 300;

/// A signing key in the Standard Webhooks form `whsec_<base64>`. `Debug` redacts.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret([redacted])")
    }
}

impl SigningSecret {
    /// Parses `whsec_<base64>` (at least 24 bytes).
    pub fn parse(s: &str) -> Option<Self> {
        let raw = B64.decode(s.trim().strip_prefix("whsec_")?).ok()?;
        (raw.len() >= 24).then_some(Self(raw))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// Checks a delivery's `webhook-signature` header (space-separated `v1,<sig>` entries) against any of `secrets`,
/// and the timestamp against the receiver's clock.
pub fn verify(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    // The timestamp comes from a header: `now - ts` must not overflow (nor `abs` of `i64::MIN`).
    if now
        .checked_sub(ts)
        .and_then(i64::checked_abs)
        .is_none_or(|skew| skew > TOLERANCE_SECS)
    {
        return false;
    }
    secrets.iter().any(|secret| {
        let expected = secret.sign(id, ts, body);
        signatures
            .split(' ')
            .any(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_at_the_ends_of_the_integers_is_refused_without_overflow() {
        let secret = SigningSecret::parse(&format!("whsec_{}", B64.encode([7u8; 32]))).unwrap();
        let now = 1_700_000_000;
        let sig = secret.sign("msg_1", now, b"{}");
        assert!(verify(
            std::slice::from_ref(&secret),
            "msg_1",
            &now.to_string(),
            &sig,
            b"{}",
            now
        ));
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX, now - TOLERANCE_SECS - 1] {
            let sig = secret.sign("msg_1", ts, b"{}");
            assert!(
                !verify(
                    std::slice::from_ref(&secret),
                    "msg_1",
                    &ts.to_string(),
                    &sig,
                    b"{}",
                    now
                ),
                "{ts}"
            );
        }
        assert!(!verify(
            std::slice::from_ref(&secret),
            "msg_1",
            &i64::MAX.to_string(),
            &sig,
            b"{}",
            -2
        ));
    }
}
