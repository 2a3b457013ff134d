//! Configuration of phone-proof: the common settings (see `idv_shared::config`) plus its own.
//!
//! Every limit has a default that follows NIST SP 800-63B for out-of-band codes; [`Settings::validate`] refuses
//! values outside what the standard allows (e.g. a code lifetime over 10 minutes).

use std::path::PathBuf;

use idv_shared::config::Secret;
use serde::Deserialize;

/// Settings only phone-proof has. Set through the service prefix (e.g. `PHONE_CODE_DIGITS=8`,
/// `PHONE_SENDER__KIND=webhook`) or the `[phone-proof]` table of `IDV_CONFIG_FILE`. `REDIS_URL` selects the
/// Redis store when `PHONE_REDIS_URL` is not set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Digits per code, 6–9. (RFC 4226 truncation yields 31 bits, so a 10-digit code could not be uniform;
    /// `totp-rs` stops at 9 for the same reason.)
    pub code_digits: u32,
    /// Lifetime of a code from its last send, in seconds (≤ 600).
    pub code_ttl_secs: u64,
    /// Hard cap on a challenge's life from creation, in seconds (≤ 600); resends never extend past it.
    pub max_lifetime_secs: u64,
    /// Checks allowed per challenge.
    pub max_checks: u32,
    /// Sends allowed per challenge (the first one included).
    pub max_sends: u32,
    /// Seconds between two sends of one challenge.
    pub resend_interval_secs: u64,
    /// New challenges allowed per phone number (and tenant) in [`Self::number_window_secs`].
    pub number_max_challenges: u32,
    /// The per-number window, in seconds.
    pub number_window_secs: u64,
    /// Consecutive failed checks after which a number is blocked until unblocked or verified.
    pub block_after_failures: u32,
    /// Lifetime of the proof token a pass carries, in seconds (≤ 600).
    pub proof_ttl_secs: u64,
    /// How long a finished challenge stays readable (status, replay refusal) after it expires, in seconds.
    pub retain_secs: u64,
    /// How long an `Idempotency-Key` maps to its challenge, in seconds.
    pub idempotency_ttl_secs: u64,
    /// Challenges the in-memory store holds at most; past it new challenges get `503 overloaded`.
    pub memory_max_challenges: usize,
    /// Redis URL; unset means the in-memory store (one process only).
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key, so several deployments (or tests) can share one Redis.
    pub redis_prefix: String,
    /// Redis connect and response timeout, in milliseconds: a down Redis becomes a fast 503.
    pub redis_timeout_ms: u64,
    /// The master secrets for number hashing and code sealing, as a ring (≥ 32 bytes each, base64 or hex,
    /// comma-separated; the first names numbers, the last seals new codes; `challenge::keys`). Fixed until restart.
    /// Unset, and without `secret_key_file`: a random key is created once in `<data_dir>/phone-proof/secret.key`
    /// (0600). Replicas sharing Redis must share the ring.
    pub secret_key: Option<Secret>,
    /// A file holding the ring, one secret per line (e.g. a mounted Kubernetes Secret), re-read on SIGHUP: append
    /// a secret and signal to rotate.
    pub secret_key_file: Option<PathBuf>,
    /// How codes leave the service.
    pub sender: SenderSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            code_digits: 6,
            code_ttl_secs: 300,
            max_lifetime_secs: 600,
            max_checks: 5,
            max_sends: 5,
            resend_interval_secs: 30,
            number_max_challenges: 5,
            number_window_secs: 600,
            block_after_failures: 100,
            proof_ttl_secs: 300,
            retain_secs: 3600,
            idempotency_ttl_secs: 86_400,
            memory_max_challenges: 1_000_000,
            redis_url: std::env::var("REDIS_URL")
                .ok()
                .filter(|s| !s.is_empty())
                .map(Secret::new),
            redis_prefix: "idv:phone".into(),
            redis_timeout_ms: 1000,
            secret_key: None,
            secret_key_file: None,
            sender: SenderSettings::default(),
        }
    }
}

/// Which sender delivers codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    /// Append to a local outbox file (embedded default; the only place a code is ever written).
    Outbox,
    /// POST a signed CloudEvent to an SMS gateway.
    Webhook,
}

/// Delivery settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SenderSettings {
    /// Outbox or webhook.
    pub kind: SenderKind,
    /// Outbox file; default `<data_dir>/outbox/phone-proof.jsonl`.
    pub outbox_path: Option<PathBuf>,
    /// The SMS gateway's URL (webhook).
    pub webhook_url: Option<String>,
    /// Signing secrets, `whsec_<base64>`, comma-separated; every one signs, so the receiver can rotate.
    pub webhook_secrets: Option<Secret>,
    /// Attempts per message, the first included.
    pub webhook_attempts: u32,
    /// Per-attempt timeout, in milliseconds.
    pub webhook_timeout_ms: u64,
    /// First retry delay in milliseconds; doubles per retry.
    pub webhook_backoff_ms: u64,
    /// `source` of the CloudEvents.
    pub event_source: String,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            kind: SenderKind::Outbox,
            outbox_path: None,
            webhook_url: None,
            webhook_secrets: None,
            webhook_attempts: 3,
            webhook_timeout_ms: 2000,
            webhook_backoff_ms: 200,
            event_source: "urn:idv:phone-proof".into(),
        }
    }
}

/// A setting outside what the service (or NIST SP 800-63B) allows.
#[derive(Debug, thiserror::Error)]
#[error("invalid phone-proof setting: {0}")]
pub struct InvalidSettings(pub String);

impl Settings {
    /// Checks the bounds the standard sets.
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        let bad = |m: &str| Err(InvalidSettings(m.to_owned()));
        if !(6..=9).contains(&self.code_digits) {
            return bad("code_digits must be 6–9");
        }
        if self.code_ttl_secs == 0 || self.code_ttl_secs > 600 {
            return bad("code_ttl_secs must be 1–600 (NIST: at most 10 minutes)");
        }
        if self.max_lifetime_secs < self.code_ttl_secs || self.max_lifetime_secs > 600 {
            return bad("max_lifetime_secs must be between code_ttl_secs and 600");
        }
        if self.proof_ttl_secs == 0 || self.proof_ttl_secs > 600 {
            return bad("proof_ttl_secs must be 1–600");
        }
        if self.max_checks == 0 || self.max_sends == 0 || self.number_max_challenges == 0 {
            return bad("max_checks, max_sends and number_max_challenges must be at least 1");
        }
        if self.block_after_failures == 0 {
            return bad("block_after_failures must be at least 1");
        }
        if self.secret_key.is_some() && self.secret_key_file.is_some() {
            return bad("set secret_key or secret_key_file, not both");
        }
        if self.sender.kind == SenderKind::Webhook
            && (self.sender.webhook_url.is_none() || self.sender.webhook_secrets.is_none())
        {
            return bad("the webhook sender needs sender.webhook_url and sender.webhook_secrets");
        }
        if self.sender.webhook_attempts == 0 {
            return bad("sender.webhook_attempts must be at least 1");
        }
        Ok(())
    }
}
