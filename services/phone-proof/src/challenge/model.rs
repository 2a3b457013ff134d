//! The challenge and its state machine's vocabulary.

use std::collections::HashMap;

use idv_shared::{store::ArtifactId, verdict::ArtifactRef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A challenge id: `chl_` + ULID. Parsed once at the edge; anything else is "not found".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChallengeId(String);

impl ChallengeId {
    /// A fresh id.
    pub fn generate() -> Self {
        Self(format!("chl_{}", ulid::Ulid::new()))
    }

    /// The wire form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ChallengeId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.strip_prefix("chl_")
            .and_then(|u| ulid::Ulid::from_string(u).ok())
            .map(|u| Self(format!("chl_{u}")))
            .ok_or_else(|| "not a challenge id".to_owned())
    }
}

impl TryFrom<String> for ChallengeId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ChallengeId> for String {
    fn from(id: ChallengeId) -> Self {
        id.0
    }
}

impl std::fmt::Display for ChallengeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the code reaches the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Text message.
    Sms,
    /// Voice call reading the code.
    Voice,
}

impl Channel {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Voice => "voice",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "sms" => Some(Self::Sms),
            "voice" => Some(Self::Voice),
            _ => None,
        }
    }
}

/// Where a challenge is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the right code.
    Pending,
    /// The right code arrived; no code is accepted again.
    Approved,
    /// No right code arrived in time.
    Expired,
    /// Canceled by the caller.
    Canceled,
    /// Every check was used on wrong codes.
    MaxAttemptsReached,
    /// The code could not be delivered.
    Failed,
}

impl Status {
    /// Wire name, also the stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Expired => "expired",
            Self::Canceled => "canceled",
            Self::MaxAttemptsReached => "max_attempts_reached",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "expired" => Self::Expired,
            "canceled" => Self::Canceled,
            "max_attempts_reached" => Self::MaxAttemptsReached,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// One challenge as stored. Holds no phone number and no usable code: the number is a keyed hash (the
/// artifact ID is kept to resend), the code's secret is sealed with a key that never leaves the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    /// Its id.
    pub id: ChallengeId,
    /// The tenant that created it; other tenants see "not found".
    pub tenant: String,
    /// Keyed hash of tenant and E.164 number (hex).
    pub number_key: String,
    /// The phone artifact, for custody and resends.
    pub artifact: ArtifactRef,
    /// Delivery channel.
    pub channel: Channel,
    /// Stored status; see [`Challenge::status_at`] for the effective one.
    pub status: Status,
    /// Checks counted (each may still be comparing its code).
    pub checks: u32,
    /// Counted checks whose code was wrong. The challenge closes as `max_attempts_reached` only when every
    /// check is used and every counted one has failed, so a right code still being compared is never shut out.
    pub failed: u32,
    /// Sends made.
    pub sends: u32,
    /// Creation time (ms since the epoch); also the code's time input.
    pub created_ms: i64,
    /// The current code's expiry (ms).
    pub expires_ms: i64,
    /// The hard cap no resend extends past (ms).
    pub max_expires_ms: i64,
    /// Earliest next send (ms).
    pub next_send_ms: i64,
    /// When it was approved (ms).
    pub verified_ms: Option<i64>,
    /// The code secret, sealed (hex).
    pub sealed_secret: String,
}

impl Challenge {
    /// The status a reader should see: a pending challenge past its expiry is expired.
    pub fn status_at(&self, now_ms: i64) -> Status {
        if self.status == Status::Pending && now_ms >= self.expires_ms {
            Status::Expired
        } else {
            self.status
        }
    }

    /// Whether checks have closed the challenge: every check is used and every counted one has failed. A check
    /// that arrives over the limit while an earlier one is still comparing its code does not close it, so the
    /// right code in that earlier check still passes, whatever order concurrent checks finish in. (The Redis
    /// scripts `begin_check.lua` and `finish_check.lua` apply the same rule; a model-based test keeps them in step.)
    pub fn checks_exhausted(&self, policy: &Policy) -> bool {
        self.checks >= policy.max_checks && self.failed >= self.checks
    }

    /// The stored form: flat string fields (a Redis hash, or a map in memory).
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("id", self.id.to_string()),
            ("tenant", self.tenant.clone()),
            ("nk", self.number_key.clone()),
            ("art", self.artifact.id.to_string()),
            ("art_sha", self.artifact.sha256.clone()),
            ("art_res", self.artifact.residency.to_string()),
            ("channel", self.channel.as_str().into()),
            ("status", self.status.as_str().into()),
            ("checks", self.checks.to_string()),
            ("failed", self.failed.to_string()),
            ("sends", self.sends.to_string()),
            ("created", self.created_ms.to_string()),
            ("expires", self.expires_ms.to_string()),
            ("max_expires", self.max_expires_ms.to_string()),
            ("next_send", self.next_send_ms.to_string()),
            ("sealed", self.sealed_secret.clone()),
        ];
        if let Some(v) = self.verified_ms {
            f.push(("verified", v.to_string()));
        }
        f
    }

    /// Parses the stored form; `None` when a field is missing or malformed.
    pub fn from_fields(m: &HashMap<String, String>) -> Option<Self> {
        let s = |k: &str| m.get(k).cloned();
        let n = |k: &str| m.get(k).and_then(|v| v.parse::<i64>().ok());
        let u = |k: &str| m.get(k).and_then(|v| v.parse::<u32>().ok());
        let artifact_id: ArtifactId = s("art")?.parse().ok()?;
        Some(Self {
            id: s("id")?.parse().ok()?,
            tenant: s("tenant")?,
            number_key: s("nk")?,
            artifact: ArtifactRef {
                id: artifact_id,
                sha256: s("art_sha")?,
                residency: s("art_res")?.parse().ok()?,
            },
            channel: Channel::parse(m.get("channel")?)?,
            status: Status::parse(m.get("status")?)?,
            checks: u("checks")?,
            // Challenges stored before the field existed count as having no settled failures.
            failed: m.get("failed").map_or(Some(0), |v| v.parse().ok())?,
            sends: u("sends")?,
            created_ms: n("created")?,
            expires_ms: n("expires")?,
            max_expires_ms: n("max_expires")?,
            next_send_ms: n("next_send")?,
            verified_ms: n("verified"),
            sealed_secret: s("sealed")?,
        })
    }
}

/// The limits a store applies atomically; copied from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Checks per challenge.
    pub max_checks: u32,
    /// Sends per challenge.
    pub max_sends: u32,
    /// Code lifetime after a send (ms).
    pub code_ttl_ms: i64,
    /// Gap between sends (ms).
    pub resend_interval_ms: i64,
    /// Challenges per number in the window.
    pub number_max: u32,
    /// The per-number window (ms).
    pub number_window_ms: i64,
    /// Consecutive failures that block a number.
    pub block_after: u32,
    /// How long a challenge stays readable after its hard cap (ms).
    pub retain_ms: i64,
    /// How long an idempotency key is remembered (ms).
    pub idempotency_ttl_ms: i64,
}
