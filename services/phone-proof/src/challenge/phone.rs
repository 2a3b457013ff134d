//! The phone number, parsed once from its artifact and never stored or logged.

use phonenumber::{Mode, Type, metadata::DATABASE};
use serde::Deserialize;

/// Why a number artifact was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhoneError {
    /// The artifact is not `{"phone_number": "…"}`.
    #[error("the phone artifact must be a JSON object {{\"phone_number\": \"+…\"}}")]
    Shape,
    /// The string is not a valid number.
    #[error(
        "the phone number is not a valid international number (international form with country code, e.g. +<country><number>)"
    )]
    Invalid,
    /// VoIP (NIST SP 800-63B forbids it for out-of-band codes).
    #[error("VoIP numbers cannot receive one-time codes (NIST SP 800-63B 5.1.3.1)")]
    Voip,
    /// Premium-rate or shared-cost.
    #[error("premium-rate and shared-cost numbers cannot receive one-time codes")]
    Premium,
    /// A kind of number that cannot receive codes at all.
    #[error("this kind of number ({0}) cannot receive one-time codes")]
    Unreachable(&'static str),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneArtifact {
    phone_number: String,
}

/// A valid, reachable phone number in E.164. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    e164: String,
}

impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhoneNumber([redacted])")
    }
}

impl PhoneNumber {
    /// Parses the artifact's JSON. Only international form is accepted: the artifact carries no region hint.
    pub fn from_artifact(bytes: &[u8]) -> Result<Self, PhoneError> {
        let a: PhoneArtifact = serde_json::from_slice(bytes).map_err(|_| PhoneError::Shape)?;
        Self::parse(&a.phone_number)
    }

    /// Parses one number.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let raw = raw.trim();
        if !raw.starts_with('+') || raw.len() > 32 {
            return Err(PhoneError::Invalid);
        }
        let n = phonenumber::parse(None, raw).map_err(|_| PhoneError::Invalid)?;
        if !n.is_valid_with(&DATABASE) {
            return Err(PhoneError::Invalid);
        }
        match n.number_type(&DATABASE) {
            Type::Voip => return Err(PhoneError::Voip),
            Type::PremiumRate | Type::SharedCost => return Err(PhoneError::Premium),
            Type::Pager => return Err(PhoneError::Unreachable("pager")),
            Type::Uan => return Err(PhoneError::Unreachable("universal access number")),
            Type::Voicemail => return Err(PhoneError::Unreachable("voicemail access")),
            Type::Emergency | Type::ShortCode => return Err(PhoneError::Unreachable("short code")),
            _ => {}
        }
        Ok(Self {
            e164: n.format().mode(Mode::E164).to_string(),
        })
    }

    /// The E.164 form, for the sender and the keyed hash only.
    pub fn e164(&self) -> &str {
        &self.e164
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_to_e164_and_refuses_voip_premium_and_garbage() {
        let n = PhoneNumber::parse("+49 151 1234 5678").unwrap();
        assert_eq!(n.e164(), "+4915112345678");
        assert_eq!(format!("{n:?}"), "PhoneNumber([redacted])");
        assert_eq!(
            PhoneNumber::parse("+44 56 1234 5678"),
            Err(PhoneError::Voip)
        );
        assert_eq!(
            PhoneNumber::parse("+1 900 555 0123"),
            Err(PhoneError::Premium)
        );
        assert_eq!(PhoneNumber::parse("+49 12"), Err(PhoneError::Invalid));
        assert_eq!(PhoneNumber::parse("015112345678"), Err(PhoneError::Invalid));
        assert_eq!(
            PhoneNumber::from_artifact(br#"{"phone": "+4915112345678"}"#),
            Err(PhoneError::Shape)
        );
        assert!(PhoneNumber::from_artifact(br#"{"phone_number": "+14155552671"}"#).is_ok());
    }
}
