//! The keys that keep codes and numbers out of storage: a ring of master secrets, rotated without a restart.
//!
//! Each master secret derives two keys: one seals code secrets (an HMAC-SHA256 keystream over the challenge id),
//! one names numbers (HMAC-SHA256 of tenant and number, the only form a number is stored or counted under). The
//! ring's **last** secret seals new challenges, and each sealed value carries its secret's id, so challenges made
//! before a rotation still open. The ring's **first** secret names numbers, so per-number limits, counts and
//! blocks carry over a rotation; a reload that would change it is refused (it would silently reset them).
//!
//! A ring is one secret per line (or comma-separated), each at least 32 bytes as hex or base64; `#` starts a
//! comment. From a file (`PHONE_SECRET_KEY_FILE`, e.g. a mounted Kubernetes Secret, or the one created in the
//! data dir) it is re-read on SIGHUP: to rotate, append a new secret and signal; to retire the old sealing secret,
//! remove its line once the challenges it sealed have expired (`retain_secs`).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac};
use idv_shared::fsutil::{Create, write_private};
use sha2::Sha256;

use super::{code::SECRET_LEN, model::ChallengeId};

type HmacSha256 = Hmac<Sha256>;

/// Why the keys could not be loaded or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A secret is too short or not base64/hex, or the ring is empty or repeats a secret.
    #[error("phone-proof secret key ring: {0}")]
    Malformed(String),
    /// The key file could not be read or created.
    #[error("phone-proof key file {path}: {cause}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        cause: String,
    },
    /// A reload would change the secret that names numbers.
    #[error(
        "the ring's first secret (id {running}) names numbers and must stay first; the file's first is {file}: \
         keeping the current keys"
    )]
    NamingKeyChanged {
        /// The running ring's first id.
        running: String,
        /// The file's first id.
        file: String,
    },
}

/// Where the ring comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A configured value (`PHONE_SECRET_KEY`): fixed until restart.
    Value(String),
    /// A file the operator provides (`PHONE_SECRET_KEY_FILE`), re-read on reload.
    File(PathBuf),
    /// The data dir's own file, created with one random secret by the first service to start.
    DataDir(PathBuf),
}

struct Master {
    id: String,
    number: [u8; 32],
    seal: [u8; 32],
}

struct Ring {
    masters: Vec<Master>,
}

impl Ring {
    fn parse(text: &str) -> Result<Self, KeyError> {
        let mut masters: Vec<Master> = Vec::new();
        for (i, item) in text
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let secret = hex::decode(item)
                .ok()
                .or_else(|| B64.decode(item).ok())
                .filter(|k| k.len() >= 32)
                .ok_or_else(|| {
                    KeyError::Malformed(format!(
                        "secret {} is not at least 32 bytes of hex or base64",
                        i + 1
                    ))
                })?;
            let m = Master::derive(&secret);
            if masters.iter().any(|o| o.id == m.id) {
                return Err(KeyError::Malformed(format!(
                    "secret {} repeats an earlier one",
                    i + 1
                )));
            }
            masters.push(m);
        }
        if masters.is_empty() {
            return Err(KeyError::Malformed("no secret".into()));
        }
        Ok(Self { masters })
    }

    fn naming(&self) -> &Master {
        &self.masters[0]
    }

    fn sealing(&self) -> &Master {
        &self.masters[self.masters.len() - 1]
    }
}

impl Master {
    fn derive(secret: &[u8]) -> Self {
        let id = hmac(secret, &[b"idv phone-proof key id v1"]);
        Self {
            id: hex::encode(&id[..4]),
            number: hmac(secret, &[b"idv phone-proof number-hash v1"]),
            seal: hmac(secret, &[b"idv phone-proof code-seal v1"]),
        }
    }

    fn keystream(&self, id: &ChallengeId) -> [u8; 32] {
        hmac(&self.seal, &[id.as_str().as_bytes()])
    }
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

/// The service's key ring. `Debug` shows ids only.
pub struct Keys {
    ring: RwLock<Arc<Ring>>,
    file: Option<PathBuf>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ring = self.ring();
        f.debug_struct("Keys")
            .field(
                "ids",
                &ring.masters.iter().map(|m| &m.id).collect::<Vec<_>>(),
            )
            .field("file", &self.file)
            .finish()
    }
}

fn file_error(path: &Path, cause: &dyn std::fmt::Display) -> KeyError {
    KeyError::File {
        path: path.display().to_string(),
        cause: cause.to_string(),
    }
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|e| file_error(path, &e))
}

impl Keys {
    /// A fixed ring of one master secret (tests and tools).
    pub fn from_master(master: &[u8]) -> Self {
        Self {
            ring: RwLock::new(Arc::new(Ring {
                masters: vec![Master::derive(master)],
            })),
            file: None,
        }
    }

    /// Loads the ring from its source.
    pub fn load(source: KeySource) -> Result<Self, KeyError> {
        let (text, file) = match source {
            KeySource::Value(v) => (v, None),
            KeySource::File(path) => (read(&path)?, Some(path)),
            KeySource::DataDir(path) => {
                if !path.exists() {
                    let mut master = [0u8; 32];
                    getrandom::fill(&mut master).map_err(|e| file_error(&path, &e))?;
                    // Services starting together must end up with one key, not one each: the first wins.
                    write_private(&path, hex::encode(master).as_bytes(), Create::Exclusive)
                        .map_err(|e| file_error(&path, &e))?;
                }
                (read(&path)?, Some(path))
            }
        };
        Ok(Self {
            ring: RwLock::new(Arc::new(Ring::parse(&text)?)),
            file,
        })
    }

    /// Whether [`Keys::reload`] can change anything (the ring comes from a file).
    pub fn reloadable(&self) -> bool {
        self.file.is_some()
    }

    /// Re-reads the ring's file; on any error the current ring stays. Returns the number of secrets and the
    /// sealing secret's id.
    pub fn reload(&self) -> Result<(usize, String), KeyError> {
        let Some(path) = &self.file else {
            let ring = self.ring();
            return Ok((ring.masters.len(), ring.sealing().id.clone()));
        };
        let next = Ring::parse(&read(path)?)?;
        let running = self.ring().naming().id.clone();
        if next.naming().id != running {
            return Err(KeyError::NamingKeyChanged {
                running,
                file: next.naming().id.clone(),
            });
        }
        let out = (next.masters.len(), next.sealing().id.clone());
        if let Ok(mut r) = self.ring.write() {
            *r = Arc::new(next);
        }
        Ok(out)
    }

    fn ring(&self) -> Arc<Ring> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The keyed hash that stands for a number of a tenant in storage, limits and proof tokens (hex).
    pub fn number_key(&self, tenant: &str, e164: &str) -> String {
        hex::encode(hmac(
            &self.ring().naming().number,
            &[tenant.as_bytes(), e164.as_bytes()],
        ))
    }

    /// Seals a code secret for storage under the sealing secret: `<key id>:<hex>`.
    pub fn seal(&self, id: &ChallengeId, secret: &[u8; SECRET_LEN]) -> String {
        let ring = self.ring();
        let m = ring.sealing();
        let sealed: Vec<u8> = secret
            .iter()
            .zip(m.keystream(id))
            .map(|(s, k)| s ^ k)
            .collect();
        format!("{}:{}", m.id, hex::encode(sealed))
    }

    /// Opens a sealed secret with the secret that sealed it; `None` if it is not one of the ring's. A value
    /// without a key id was sealed before rings existed, by what is now the first secret.
    pub fn open(&self, id: &ChallengeId, sealed: &str) -> Option<[u8; SECRET_LEN]> {
        let ring = self.ring();
        let (m, hex_part) = match sealed.split_once(':') {
            Some((kid, rest)) => (ring.masters.iter().find(|m| m.id == kid)?, rest),
            None => (ring.naming(), sealed),
        };
        let bytes: [u8; SECRET_LEN] = hex::decode(hex_part).ok()?.try_into().ok()?;
        let mut out = [0u8; SECRET_LEN];
        for (o, (b, k)) in out.iter_mut().zip(bytes.iter().zip(m.keystream(id))) {
            *o = b ^ k;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> String {
        hex::encode([byte; 32])
    }

    #[test]
    fn a_rotation_seals_with_the_new_secret_and_still_opens_and_names_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ring");
        std::fs::write(&file, format!("{}\n", secret(1))).unwrap();
        let keys = Keys::load(KeySource::File(file.clone())).unwrap();
        let (old_id, fresh) = (ChallengeId::generate(), [9u8; SECRET_LEN]);
        let old_sealed = keys.seal(&old_id, &fresh);
        let number = keys.number_key("acme", "+4915112345678");

        std::fs::write(
            &file,
            format!("# naming\n{}\n{} # new\n", secret(1), secret(2)),
        )
        .unwrap();
        let (count, active) = keys.reload().unwrap();
        assert_eq!(count, 2);
        let new_id = ChallengeId::generate();
        let new_sealed = keys.seal(&new_id, &fresh);
        assert!(new_sealed.starts_with(&format!("{active}:")));
        assert_ne!(
            new_sealed.split(':').next(),
            old_sealed.split(':').next(),
            "sealed under the new secret"
        );
        assert_eq!(keys.open(&old_id, &old_sealed), Some(fresh));
        assert_eq!(keys.open(&new_id, &new_sealed), Some(fresh));
        assert_eq!(keys.number_key("acme", "+4915112345678"), number);

        // Retiring the first sealing secret is refused: it names numbers.
        std::fs::write(&file, secret(2)).unwrap();
        assert!(matches!(
            keys.reload(),
            Err(KeyError::NamingKeyChanged { .. })
        ));
        assert_eq!(keys.open(&new_id, &new_sealed), Some(fresh), "kept");
        // A broken file leaves the ring as it was.
        std::fs::write(&file, "short").unwrap();
        assert!(keys.reload().is_err());
        assert_eq!(keys.open(&old_id, &old_sealed), Some(fresh));
    }

    #[test]
    fn values_sealed_before_rings_open_with_the_first_secret() {
        let keys = Keys::load(KeySource::Value(format!("{},{}", secret(1), secret(2)))).unwrap();
        let id = ChallengeId::generate();
        let legacy = Master::derive(&[1u8; 32]);
        let sealed: Vec<u8> = [5u8; SECRET_LEN]
            .iter()
            .zip(legacy.keystream(&id))
            .map(|(s, k)| s ^ k)
            .collect();
        assert_eq!(
            keys.open(&id, &hex::encode(sealed)),
            Some([5u8; SECRET_LEN])
        );
        assert_eq!(keys.open(&id, "00000000:00"), None, "an unknown key id");
    }

    #[test]
    fn malformed_rings_are_refused() {
        for bad in [
            "",
            "short",
            &format!("{},{}", secret(1), secret(1)),
            "# only a comment",
        ] {
            assert!(
                Keys::load(KeySource::Value(bad.to_owned())).is_err(),
                "{bad}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let created = dir.path().join("phone-proof").join("secret.key");
        let a = Keys::load(KeySource::DataDir(created.clone())).unwrap();
        let b = Keys::load(KeySource::DataDir(created)).unwrap();
        assert_eq!(
            a.number_key("t", "+1"),
            b.number_key("t", "+1"),
            "one key, made once"
        );
    }
}
