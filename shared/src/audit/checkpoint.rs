//! Signed checkpoints of the audit ledger. A hash chain alone has no anchor: whoever can write the file can edit
//! an entry and recompute every later hash. So the writer regularly signs the chain head (seq, hash, time) with
//! the service's audit key and appends that signature to the chain as an entry of its own. Rewriting history
//! before a checkpoint then needs the private key; `idvctl ledger verify --jwks` checks every checkpoint.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `typ` of checkpoint claims, so a checkpoint can never pass for another token signed by the same key.
pub const CHECKPOINT_TYP: &str = "idv_ledger_checkpoint";

/// What a checkpoint signs: the chain head just before the checkpoint entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointClaims {
    /// Always [`CHECKPOINT_TYP`].
    pub typ: String,
    /// The `seq` of the last entry covered.
    pub seq: u64,
    /// That entry's hash.
    pub hash: String,
    /// When it was signed (seconds since the epoch).
    pub at: i64,
    /// The most entries the writer lets pass between checkpoints, so a verifier can tell removed checkpoints.
    pub every: u64,
}

/// When the writer signs a checkpoint: after `every_entries` entries, or once `every` has passed since the last
/// one with entries waiting, and when the ledger is opened or shut down with entries not yet covered.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// Most entries between two checkpoints (at least 1).
    pub every_entries: u64,
    /// Longest an entry waits for its checkpoint.
    pub every: Duration,
}

/// Signs checkpoint claims as a compact JWS; `None` if it cannot (the writer then logs and tries again later).
pub type HeadSigner = Box<dyn Fn(&CheckpointClaims) -> Option<String> + Send>;

/// Checkpointing for a ledger: when, and with what key.
pub struct Checkpoints {
    /// When.
    pub policy: CheckpointPolicy,
    /// With what key.
    pub sign: HeadSigner,
    /// What dates each checkpoint's `at`.
    pub clock: crate::clock::SharedClock,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointRecord<'a> {
    checkpoint: &'a str,
}

/// The ledger record of a checkpoint.
pub(crate) fn record(jws: &str) -> String {
    // A compact JWS is base64url and dots: nothing to escape.
    format!("{{\"checkpoint\":\"{jws}\"}}")
}

/// The JWS of a checkpoint record, or `None` for any other record.
pub(crate) fn parse_record(record_json: &str) -> Option<&str> {
    if !record_json.starts_with("{\"checkpoint\":") {
        return None;
    }
    serde_json::from_str::<CheckpointRecord<'_>>(record_json)
        .ok()
        .map(|r| r.checkpoint)
}
