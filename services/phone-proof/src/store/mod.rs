//! The challenge store port. Every operation is one atomic step, so that replicas sharing a backend behave as
//! one: two checks of one challenge never both pass, and a check is counted before its code is compared.
//!
//! Two backends pass the same tests: [`memory::MemoryStore`] (embedded default, one process) and
//! [`redis::RedisStore`] (Lua scripts, keys expire with their challenge).

pub mod memory;
pub mod redis;

use async_trait::async_trait;

use crate::challenge::model::{Challenge, ChallengeId, Policy};

/// The backend failed; the operation may or may not have happened, so callers answer 503 and never pass.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend did not answer or answered garbage.
    #[error("challenge store unavailable: {0}")]
    Unavailable(String),
    /// The in-memory store is full.
    #[error("challenge store full")]
    Full,
}

/// An `Idempotency-Key` and the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// The caller's key (scoped to its tenant by the store).
    pub key: String,
    /// sha256 of what the request asked for; the same key with another fingerprint is a conflict.
    pub fingerprint: String,
}

/// What [`ChallengeStore::create`] did.
#[derive(Debug)]
pub enum Created {
    /// Stored a new challenge.
    New,
    /// The idempotency key already names a challenge (which may belong to another request).
    Existing {
        /// That challenge, if it is still stored.
        challenge: Option<Box<Challenge>>,
        /// Whether the earlier request had the same fingerprint.
        same_request: bool,
    },
    /// The number is blocked.
    Blocked,
    /// The number has had its challenges for the window.
    Limited {
        /// When the next one is allowed (ms).
        retry_at_ms: i64,
    },
}

/// What starting a check did.
#[derive(Debug)]
pub enum CheckStart {
    /// No such challenge for this tenant.
    NotFound,
    /// The number is blocked; nothing was counted.
    Blocked,
    /// The challenge is not pending (its effective status is stored, so expiry is recorded).
    Closed(Box<Challenge>),
    /// Every check is counted and some are still comparing their codes; nothing was counted. The challenge stays
    /// pending until they finish, and closes as `max_attempts_reached` only if all of them fail.
    NoChecksLeft(Box<Challenge>),
    /// One check was counted; compare the code, then call [`ChallengeStore::finish_check`].
    Counted(Box<Challenge>),
}

/// What finishing a check did.
#[derive(Debug)]
pub enum CheckEnd {
    /// This check approved the challenge.
    Approved(Box<Challenge>),
    /// The code matched but the challenge had already left `pending` (a concurrent check won, or it was canceled).
    Closed(Box<Challenge>),
    /// Wrong code; the challenge as it stands now (pending, or `max_attempts_reached` once every check is used
    /// and every counted one has failed).
    Rejected {
        /// The challenge.
        challenge: Box<Challenge>,
        /// This failure blocked the number.
        blocked_now: bool,
    },
    /// The challenge vanished between the two steps (expired from the store).
    NotFound,
}

/// What a resend did.
#[derive(Debug)]
pub enum Resent {
    /// No such challenge for this tenant.
    NotFound,
    /// Not pending.
    Closed(Box<Challenge>),
    /// No sends left, or too early.
    Limited {
        /// When the next send is allowed (ms), if ever.
        retry_at_ms: Option<i64>,
    },
    /// Counted; the expiry moved. Deliver the same code again.
    Ok(Box<Challenge>),
}

/// What a cancel did.
#[derive(Debug)]
pub enum Canceled {
    /// No such challenge for this tenant.
    NotFound,
    /// Not pending.
    Closed(Box<Challenge>),
    /// Now canceled.
    Ok(Box<Challenge>),
}

/// Challenge state, behind one trait so backends are interchangeable.
#[async_trait]
pub trait ChallengeStore: Send + Sync + 'static {
    /// Stores a new challenge unless its idempotency key is known, its number is blocked or over its window.
    async fn create(
        &self,
        challenge: &Challenge,
        idempotency: Option<&Idempotency>,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<Created, StoreError>;

    /// Reads a challenge of `tenant`.
    async fn get(&self, id: &ChallengeId, tenant: &str) -> Result<Option<Challenge>, StoreError>;

    /// Counts one check if the challenge is pending, unexpired, under its check limit and its number unblocked.
    async fn begin_check(
        &self,
        id: &ChallengeId,
        tenant: &str,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<CheckStart, StoreError>;

    /// Records the comparison's result: approve (only from `pending`), or count a failure for the number.
    async fn finish_check(
        &self,
        challenge: &Challenge,
        matched: bool,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<CheckEnd, StoreError>;

    /// Counts a send and moves the expiry (never past the hard cap).
    async fn resend(
        &self,
        id: &ChallengeId,
        tenant: &str,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<Resent, StoreError>;

    /// Cancels a pending challenge.
    async fn cancel(
        &self,
        id: &ChallengeId,
        tenant: &str,
        now_ms: i64,
    ) -> Result<Canceled, StoreError>;

    /// Marks a pending challenge `failed` (delivery failed for good).
    async fn mark_failed(&self, id: &ChallengeId) -> Result<(), StoreError>;

    /// Lifts a number's block and clears its failure count; `true` if it was blocked.
    async fn unblock(&self, number_key: &str) -> Result<bool, StoreError>;

    /// Whether the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A short name for logs and `/readyz`.
    fn describe(&self) -> String;
}
