//! Compact JWS with Ed25519 (`alg: EdDSA`), and Ed25519 key rings with public JWKS.
//!
//! Audit tokens and dev gateway tokens are both signed here. Verification pins the algorithm: a token whose
//! header says anything but `EdDSA` is refused before any key is looked at.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Why a token or key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// The header names another algorithm.
    #[error("algorithm not allowed")]
    Algorithm,
    /// No key with the header's `kid`.
    #[error("unknown key id")]
    UnknownKid,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// The claims could not be serialized, so nothing was signed.
    #[error("claims not serializable: {0}")]
    Encode(String),
    /// A key file could not be read or written.
    #[error("key file {path}: {cause}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        cause: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// One public key as a JWK (OKP / Ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// A public key set (`/.well-known/jwks.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwks {
    /// The keys, newest first.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    fn verifying_key(&self, kid: &str) -> Option<VerifyingKey> {
        let jwk = self
            .keys
            .iter()
            .find(|k| k.kid == kid && k.kty == "OKP" && k.crv == "Ed25519")?;
        let raw: [u8; 32] = B64.decode(&jwk.x).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&raw).ok()
    }
}

/// Signs claims as a compact JWS with `alg: EdDSA` and the key's `kid`. Claims that do not serialize (a map
/// with non-string keys, a failing `Serialize`) are an error, never a signature over something else.
pub fn sign<C: Serialize>(claims: &C, kid: &str, key: &SigningKey) -> Result<String, JwsError> {
    let header = Header {
        alg: "EdDSA".into(),
        typ: Some("JWT".into()),
        kid: Some(kid.into()),
    };
    let encode = |e: serde_json::Error| JwsError::Encode(e.to_string());
    let header = B64.encode(serde_json::to_vec(&header).map_err(encode)?);
    let payload = B64.encode(serde_json::to_vec(claims).map_err(encode)?);
    let signing_input = format!("{header}.{payload}");
    let signature = key.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        B64.encode(signature.to_bytes())
    ))
}

/// Verifies a compact JWS against a key set and returns its claims. Only `EdDSA` is accepted.
pub fn verify<C: DeserializeOwned>(token: &str, jwks: &Jwks) -> Result<C, JwsError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header: Header = serde_json::from_slice(&B64.decode(h).map_err(|_| JwsError::Malformed)?)
        .map_err(|_| JwsError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(JwsError::Algorithm);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| jwks.verifying_key(kid))
        .ok_or(JwsError::UnknownKid)?;
    let sig: [u8; 64] = B64
        .decode(s)
        .map_err(|_| JwsError::Malformed)?
        .try_into()
        .map_err(|_| JwsError::Malformed)?;
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    key.verify_strict(format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|_| JwsError::Signature)?;
    serde_json::from_slice(&B64.decode(p).map_err(|_| JwsError::Malformed)?)
        .map_err(|_| JwsError::Malformed)
}

/// Reads a token's header `kid` without verifying anything (for error messages and key lookup).
pub fn peek_kid(token: &str) -> Option<String> {
    let header: Header =
        serde_json::from_slice(&B64.decode(token.split('.').next()?).ok()?).ok()?;
    header.kid
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    created_at: DateTime<Utc>,
    /// The 32-byte Ed25519 seed, base64url.
    seed: String,
}

#[derive(Serialize, Deserialize, Default)]
struct KeyFile {
    /// Newest (active) first.
    keys: Vec<StoredKey>,
}

/// Ed25519 signing keys persisted in one JSON file (mode 0600): the newest signs, all verify.
pub struct KeyRing {
    path: PathBuf,
    keys: Vec<(String, SigningKey)>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KeyRing")
            .field("path", &self.path)
            .field("kids", &kids)
            .field("secrets", &"[redacted]")
            .finish()
    }
}

fn key_err(path: &Path, cause: impl std::fmt::Display) -> JwsError {
    JwsError::KeyFile {
        path: path.to_owned(),
        cause: cause.to_string(),
    }
}

fn new_key(created_at: DateTime<Utc>) -> Result<(String, SigningKey, StoredKey), getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    let kid = format!(
        "{}-{}",
        created_at.format("%Y%m%d"),
        &ulid::Ulid::new().to_string()[16..]
    )
    .to_lowercase();
    let stored = StoredKey {
        kid: kid.clone(),
        created_at,
        seed: B64.encode(seed),
    };
    Ok((kid, SigningKey::from_bytes(&seed), stored))
}

impl KeyRing {
    /// Loads the ring at `path`, creating it with one fresh key (dated by `clock`) when the file does not
    /// exist.
    pub fn load_or_create(path: &Path, clock: &dyn Clock) -> Result<Self, JwsError> {
        if !path.exists() {
            let (_, _, stored) = new_key(clock.now()).map_err(|e| key_err(path, e))?;
            write_key_file(path, &KeyFile { keys: vec![stored] }, Create::Exclusive)?;
        }
        Self::load(path)
    }

    /// Loads an existing ring.
    pub fn load(path: &Path) -> Result<Self, JwsError> {
        let raw = std::fs::read(path).map_err(|e| key_err(path, e))?;
        let file: KeyFile = serde_json::from_slice(&raw).map_err(|e| key_err(path, e))?;
        let mut keys = Vec::with_capacity(file.keys.len());
        for k in file.keys {
            let seed: [u8; 32] = B64
                .decode(&k.seed)
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| key_err(path, format!("key {} has a bad seed", k.kid)))?;
            keys.push((k.kid, SigningKey::from_bytes(&seed)));
        }
        if keys.is_empty() {
            return Err(key_err(path, "no keys"));
        }
        Ok(Self {
            path: path.to_owned(),
            keys,
        })
    }

    /// Adds a new key that signs from now on; older keys stay in the JWKS so old tokens still verify.
    /// Returns the new `kid`.
    pub fn rotate(path: &Path, clock: &dyn Clock) -> Result<String, JwsError> {
        let raw = std::fs::read(path).map_err(|e| key_err(path, e))?;
        let mut file: KeyFile = serde_json::from_slice(&raw).map_err(|e| key_err(path, e))?;
        let (kid, _, stored) = new_key(clock.now()).map_err(|e| key_err(path, e))?;
        file.keys.insert(0, stored);
        write_key_file(path, &file, Create::Replace)?;
        Ok(kid)
    }

    /// The active key and its id.
    pub fn active(&self) -> (&str, &SigningKey) {
        let (kid, key) = &self.keys[0];
        (kid, key)
    }

    /// Signs claims with the active key.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, JwsError> {
        let (kid, key) = self.active();
        sign(claims, kid, key)
    }

    /// The public key set, newest first.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .keys
                .iter()
                .map(|(kid, key)| Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    x: B64.encode(key.verifying_key().as_bytes()),
                    kid: kid.clone(),
                    alg: "EdDSA".into(),
                    use_: "sig".into(),
                })
                .collect(),
        }
    }

    /// The file the ring lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

use crate::fsutil::Create;

fn write_key_file(path: &Path, file: &KeyFile, how: Create) -> Result<(), JwsError> {
    let body = serde_json::to_vec_pretty(file).map_err(|e| key_err(path, e))?;
    crate::fsutil::write_private(path, &body, how).map_err(|e| key_err(path, e))
}

/// Claims of any JSON shape, for tools that print what a token holds.
pub type AnyClaims = BTreeMap<String, serde_json::Value>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_first_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let kids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        KeyRing::load_or_create(&path, &crate::clock::SystemClock)
                            .unwrap()
                            .active()
                            .0
                            .to_owned()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(kids.windows(2).all(|w| w[0] == w[1]), "{kids:?}");
        assert_eq!(KeyRing::load(&path).unwrap().active().0, kids[0]);
    }

    #[test]
    fn rotation_keeps_old_tokens_verifiable_and_pins_the_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let ring = KeyRing::load_or_create(&path, &crate::clock::SystemClock).unwrap();
        let old = ring.sign(&serde_json::json!({"n": 1})).unwrap();
        let new_kid = KeyRing::rotate(&path, &crate::clock::SystemClock).unwrap();
        let ring = KeyRing::load(&path).unwrap();
        assert_eq!(ring.active().0, new_kid);
        let jwks = ring.jwks();
        assert_eq!(jwks.keys.len(), 2);
        let claims: AnyClaims = verify(&old, &jwks).unwrap();
        assert_eq!(claims["n"], 1);
        let fresh = ring.sign(&serde_json::json!({"n": 2})).unwrap();
        assert_eq!(peek_kid(&fresh).as_deref(), Some(new_kid.as_str()));
        assert!(verify::<AnyClaims>(&fresh, &jwks).is_ok());

        // Tampered payload, forged alg, unknown kid.
        let mut parts: Vec<String> = fresh.split('.').map(str::to_owned).collect();
        parts[1] = B64.encode(br#"{"n":3}"#);
        assert!(matches!(
            verify::<AnyClaims>(&parts.join("."), &jwks),
            Err(JwsError::Signature)
        ));
        parts[0] = B64.encode(br#"{"alg":"none","kid":"x"}"#);
        assert!(matches!(
            verify::<AnyClaims>(&parts.join("."), &jwks),
            Err(JwsError::Algorithm)
        ));
        let stranger =
            KeyRing::load_or_create(&dir.path().join("other.json"), &crate::clock::SystemClock)
                .unwrap();
        assert!(matches!(
            verify::<AnyClaims>(&stranger.sign(&1).unwrap(), &jwks),
            Err(JwsError::UnknownKid)
        ));
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn claims_that_do_not_serialize_are_an_error_not_an_empty_signature() {
        let dir = tempfile::tempdir().unwrap();
        let ring =
            KeyRing::load_or_create(&dir.path().join("keys.json"), &crate::clock::SystemClock)
                .unwrap();
        // JSON object keys must be strings: a map keyed by tuples cannot be serialized.
        let claims: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
        assert!(matches!(ring.sign(&claims), Err(JwsError::Encode(_))));
    }
}
