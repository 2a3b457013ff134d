//! Signed audit tokens and the audit ledger, joined in the [`Auditor`]: the only way a verdict is made.

pub mod checkpoint;
pub mod jws;
pub mod ledger;
pub mod verify;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Instant,
};

use serde::{Deserialize, Serialize};
use tracing::Instrument;

pub use checkpoint::{CheckpointPolicy, Checkpoints, HeadSigner};
pub use jws::{Jwk, Jwks, KeyRing};
pub use ledger::{Ledger, PostgresLedger, Verification};

/// Where a service's ledger is kept.
#[derive(Debug, Clone)]
pub enum LedgerTarget {
    /// A JSON-lines file (one process).
    File(PathBuf),
    /// A PostgreSQL table (replicas share it).
    Postgres(PostgresLedger),
}

use crate::{
    clock::SharedClock,
    error::ApiError,
    verdict::{
        ArtifactRef, ModelRef, ServiceName, Verdict, VerdictDraft, new_verification_id, sha256_hex,
    },
};

/// What an audit token asserts, and what the ledger records (plus the token's digest). Ids, digests and codes
/// only: no PII.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditClaims {
    /// `idv:<service>`.
    pub iss: String,
    /// The verification id.
    pub vid: String,
    /// The caller's tenant.
    pub tenant: String,
    /// `pass`, `fail` or `review`.
    pub verdict: String,
    /// Calibrated confidence.
    pub confidence: f64,
    /// Reason codes.
    pub reasons: Vec<String>,
    /// Inputs with their digests and regions.
    pub artifacts: Vec<ArtifactRef>,
    /// The deciding model, where one decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    /// sha256 of the verdict's `result` as serialized in the response (compact JSON).
    pub result_sha256: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
}

/// The ledger's record of a verdict.
#[derive(Serialize)]
struct LedgerRecord<'a> {
    #[serde(flatten)]
    claims: &'a AuditClaims,
    token_sha256: String,
}

/// Signs verdicts and records them in the ledger before they are returned.
pub struct Auditor {
    service: ServiceName,
    /// Shared with the ledger writer, which signs checkpoints with the active key.
    keys: Arc<RwLock<Arc<KeyRing>>>,
    keys_path: PathBuf,
    ledger: Ledger,
    clock: SharedClock,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("service", &self.service)
            .field("ledger", &self.ledger)
            .finish()
    }
}

/// Why the auditor could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuditSetupError {
    /// The key ring.
    #[error(transparent)]
    Keys(#[from] jws::JwsError),
    /// The ledger.
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
}

impl Auditor {
    /// Opens the key ring (creating it on first run) and the ledger, which signs checkpoints with that ring.
    pub fn open(
        service: ServiceName,
        keys_path: &Path,
        ledger: &LedgerTarget,
        queue_capacity: usize,
        checkpoints: CheckpointPolicy,
        clock: SharedClock,
    ) -> Result<Self, AuditSetupError> {
        let keys = Arc::new(RwLock::new(Arc::new(KeyRing::load_or_create(
            keys_path, &*clock,
        )?)));
        let signer = keys.clone();
        let sign: HeadSigner = Box::new(move |claims| {
            let ring = match signer.read() {
                Ok(k) => k.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            ring.sign(claims)
                .map_err(|e| tracing::error!(error = %e, "checkpoint not signed"))
                .ok()
        });
        let checkpoints = Checkpoints {
            policy: checkpoints,
            sign,
            clock: clock.clone(),
        };
        let ledger = match ledger {
            LedgerTarget::File(path) => {
                Ledger::open_with_checkpoints(path, queue_capacity, checkpoints)?
            }
            LedgerTarget::Postgres(pg) => {
                Ledger::start(Box::new(pg.sink()?), queue_capacity, Some(checkpoints))?
            }
        };
        Ok(Self {
            service,
            keys,
            keys_path: keys_path.to_owned(),
            ledger,
            clock,
        })
    }

    fn ring(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The public keys of every key in the ring.
    pub fn jwks(&self) -> Jwks {
        self.ring().jwks()
    }

    /// Re-reads the key file (after `idvctl audit rotate-key`); on error the current keys stay.
    pub fn reload_keys(&self) -> Result<String, jws::JwsError> {
        let ring = KeyRing::load(&self.keys_path)?;
        let kid = ring.active().0.to_owned();
        if let Ok(mut k) = self.keys.write() {
            *k = Arc::new(ring);
        }
        Ok(kid)
    }

    /// Signs a verdict, makes its ledger entry durable, and only then returns it.
    pub async fn issue<R: Serialize>(
        &self,
        tenant: &str,
        draft: VerdictDraft<R>,
    ) -> Result<Verdict<R>, ApiError> {
        let started = Instant::now();
        let created_at = self.clock.now();
        let id = new_verification_id();
        let result_json = serde_json::to_vec(&draft.result).map_err(ApiError::internal)?;
        let claims = AuditClaims {
            iss: format!("idv:{}", self.service),
            vid: id.clone(),
            tenant: tenant.to_owned(),
            verdict: draft.verdict.as_str().to_owned(),
            confidence: draft.confidence,
            reasons: draft
                .reasons
                .iter()
                .map(|r| r.code.as_str().to_owned())
                .collect(),
            artifacts: draft.artifacts.clone(),
            model: draft.model.clone(),
            result_sha256: sha256_hex(&result_json),
            iat: created_at.timestamp(),
        };
        let audit_token = self.ring().sign(&claims).map_err(ApiError::internal)?;
        let record = LedgerRecord {
            claims: &claims,
            token_sha256: sha256_hex(audit_token.as_bytes()),
        };
        self.ledger
            .append(&record)
            .instrument(tracing::debug_span!(
                "ledger.commit",
                backend = ledger_kind(self.ledger.backend())
            ))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "audit ledger append failed; verdict withheld");
                let code = match e {
                    ledger::LedgerError::Unavailable(_) => {
                        crate::error::ErrorCode::StoreUnavailable
                    }
                    _ => crate::error::ErrorCode::Internal,
                };
                ApiError::new(code, "the verdict could not be recorded; it was not issued")
            })?;
        crate::metrics::record_stage(self.service.as_str(), "audit", started.elapsed());
        let reasons: Vec<&'static str> = draft.reasons.iter().map(|r| r.code.as_str()).collect();
        let region = draft
            .artifacts
            .first()
            .map_or("-", |a| a.residency.as_str());
        crate::metrics::record_verdict(
            self.service.as_str(),
            draft.verdict.as_str(),
            &reasons,
            draft.format,
            region,
        );
        crate::telemetry::annotate_request(|| {
            use opentelemetry::{Array, KeyValue, StringValue, Value};
            let codes = reasons.iter().map(|r| StringValue::from(*r)).collect();
            let mut attributes = vec![
                KeyValue::new("idv.verdict", draft.verdict.as_str()),
                KeyValue::new("idv.confidence", draft.confidence),
                KeyValue::new("idv.reasons", Value::Array(Array::String(codes))),
            ];
            if let Some(m) = &draft.model {
                attributes.push(KeyValue::new(
                    "idv.model",
                    format!("{}@{}", m.name, m.version),
                ));
            }
            attributes
        });
        Ok(Verdict {
            id,
            service: draft.service,
            verdict: draft.verdict,
            confidence: draft.confidence,
            reasons: draft.reasons,
            result: draft.result,
            artifacts: draft.artifacts,
            model: draft.model,
            audit_token,
            created_at,
        })
    }

    /// Signs other short-lived tokens a service issues (e.g. phone-proof's proof token) with the audit key, so
    /// they verify against the same `/.well-known/jwks.json`.
    pub fn sign_token<C: Serialize>(&self, claims: &C) -> Result<String, jws::JwsError> {
        self.ring().sign(claims)
    }

    /// Commits what is queued and stops the ledger writer (graceful shutdown).
    pub fn shutdown(&self) {
        self.ledger.shutdown();
    }

    /// The ledger's file, when it is kept in one.
    pub fn ledger_path(&self) -> Option<&Path> {
        self.ledger.path()
    }

    /// Where the ledger is kept (`file:<path>` or `postgres`), for logs.
    pub fn ledger_backend(&self) -> &str {
        self.ledger.backend()
    }
}

/// The ledger backend's kind (`file`, `postgres`) without its location, for spans.
fn ledger_kind(backend: &str) -> &str {
    backend.split(':').next().unwrap_or(backend)
}
