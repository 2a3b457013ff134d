//! The in-memory store: the embedded default for one process. A mutex makes every operation atomic; entries are
//! dropped once their retention passes, and the whole store is capped.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use async_trait::async_trait;

use super::{
    Canceled, ChallengeStore, CheckEnd, CheckStart, Created, Idempotency, Resent, StoreError,
};
use crate::challenge::model::{Challenge, ChallengeId, Policy, Status};

#[derive(Default)]
struct NumberState {
    starts: VecDeque<i64>,
    fails: u32,
    blocked: bool,
}

struct IdemEntry {
    id: ChallengeId,
    fingerprint: String,
    until_ms: i64,
}

#[derive(Default)]
struct State {
    challenges: HashMap<ChallengeId, (Challenge, i64)>,
    numbers: HashMap<String, NumberState>,
    idem: HashMap<(String, String), IdemEntry>,
}

impl State {
    /// Drops what has outlived its retention. O(n), so it runs only when the store is full.
    fn sweep(&mut self, now_ms: i64, window_ms: i64) {
        self.challenges.retain(|_, (_, until)| *until > now_ms);
        self.idem.retain(|_, e| e.until_ms > now_ms);
        self.numbers.retain(|_, n| {
            while n.starts.front().is_some_and(|t| *t <= now_ms - window_ms) {
                n.starts.pop_front();
            }
            !n.starts.is_empty() || n.fails > 0 || n.blocked
        });
    }

    fn challenge_of(
        &mut self,
        id: &ChallengeId,
        tenant: &str,
        now_ms: i64,
    ) -> Option<&mut Challenge> {
        match self.challenges.get_mut(id) {
            Some((c, until)) if c.tenant == tenant && *until > now_ms => Some(c),
            _ => None,
        }
    }
}

/// Challenges in this process's memory.
pub struct MemoryStore {
    state: Mutex<State>,
    capacity: usize,
}

impl MemoryStore {
    /// A store holding at most `capacity` challenges.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied step (each is a few field writes), so the
        // state is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn close_if_expired(c: &mut Challenge, now_ms: i64) -> bool {
    if c.status == Status::Pending && now_ms >= c.expires_ms {
        c.status = Status::Expired;
    }
    c.status != Status::Pending
}

#[async_trait]
impl ChallengeStore for MemoryStore {
    async fn create(
        &self,
        challenge: &Challenge,
        idempotency: Option<&Idempotency>,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<Created, StoreError> {
        let mut st = self.lock();
        if let Some(idem) = idempotency {
            let key = (challenge.tenant.clone(), idem.key.clone());
            if let Some(e) = st.idem.get(&key).filter(|e| e.until_ms > now_ms) {
                let same_request = e.fingerprint == idem.fingerprint;
                let id = e.id.clone();
                let existing = st.challenge_of(&id, &challenge.tenant, now_ms).cloned();
                return Ok(Created::Existing {
                    challenge: existing.map(Box::new),
                    same_request,
                });
            }
        }
        // Every map is bounded by the same capacity: idempotency keys and number states outlive challenges.
        let full = |st: &State| {
            st.challenges.len() >= self.capacity
                || st.idem.len() >= self.capacity
                || st.numbers.len() >= self.capacity
        };
        if full(&st) {
            st.sweep(now_ms, policy.number_window_ms);
            if full(&st) {
                return Err(StoreError::Full);
            }
        }
        let number = st.numbers.entry(challenge.number_key.clone()).or_default();
        if number.blocked {
            return Ok(Created::Blocked);
        }
        while number
            .starts
            .front()
            .is_some_and(|t| *t <= now_ms - policy.number_window_ms)
        {
            number.starts.pop_front();
        }
        if number.starts.len() >= policy.number_max as usize {
            let oldest = number.starts.front().copied().unwrap_or(now_ms);
            return Ok(Created::Limited {
                retry_at_ms: oldest + policy.number_window_ms,
            });
        }
        number.starts.push_back(now_ms);
        let until = challenge.max_expires_ms + policy.retain_ms;
        st.challenges
            .insert(challenge.id.clone(), (challenge.clone(), until));
        if let Some(idem) = idempotency {
            st.idem.insert(
                (challenge.tenant.clone(), idem.key.clone()),
                IdemEntry {
                    id: challenge.id.clone(),
                    fingerprint: idem.fingerprint.clone(),
                    until_ms: now_ms + policy.idempotency_ttl_ms,
                },
            );
        }
        Ok(Created::New)
    }

    async fn get(&self, id: &ChallengeId, tenant: &str) -> Result<Option<Challenge>, StoreError> {
        // Retention is enforced by the sweep; a reader may see a challenge slightly past it, which is harmless.
        let st = self.lock();
        Ok(st
            .challenges
            .get(id)
            .filter(|(c, _)| c.tenant == tenant)
            .map(|(c, _)| c.clone()))
    }

    async fn begin_check(
        &self,
        id: &ChallengeId,
        tenant: &str,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<CheckStart, StoreError> {
        let mut st = self.lock();
        let Some(c) = st.challenge_of(id, tenant, now_ms) else {
            return Ok(CheckStart::NotFound);
        };
        if close_if_expired(c, now_ms) {
            return Ok(CheckStart::Closed(Box::new(c.clone())));
        }
        let nk = c.number_key.clone();
        if st.numbers.get(&nk).is_some_and(|n| n.blocked) {
            return Ok(CheckStart::Blocked);
        }
        let Some(c) = st.challenge_of(id, tenant, now_ms) else {
            return Ok(CheckStart::NotFound);
        };
        if c.checks >= policy.max_checks {
            if !c.checks_exhausted(policy) {
                return Ok(CheckStart::NoChecksLeft(Box::new(c.clone())));
            }
            c.status = Status::MaxAttemptsReached;
            return Ok(CheckStart::Closed(Box::new(c.clone())));
        }
        c.checks += 1;
        Ok(CheckStart::Counted(Box::new(c.clone())))
    }

    async fn finish_check(
        &self,
        challenge: &Challenge,
        matched: bool,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<CheckEnd, StoreError> {
        let mut st = self.lock();
        let Some(c) = st.challenge_of(&challenge.id, &challenge.tenant, now_ms) else {
            return Ok(CheckEnd::NotFound);
        };
        if matched {
            if c.status != Status::Pending {
                return Ok(CheckEnd::Closed(Box::new(c.clone())));
            }
            c.status = Status::Approved;
            c.verified_ms = Some(now_ms);
            let c = c.clone();
            if let Some(n) = st.numbers.get_mut(&c.number_key) {
                n.fails = 0;
            }
            return Ok(CheckEnd::Approved(Box::new(c)));
        }
        c.failed = c.failed.saturating_add(1);
        if c.status == Status::Pending && c.checks_exhausted(policy) {
            c.status = Status::MaxAttemptsReached;
        }
        let c = c.clone();
        let n = st.numbers.entry(c.number_key.clone()).or_default();
        n.fails = n.fails.saturating_add(1);
        let blocked_now = !n.blocked && n.fails >= policy.block_after;
        n.blocked |= blocked_now;
        Ok(CheckEnd::Rejected {
            challenge: Box::new(c),
            blocked_now,
        })
    }

    async fn resend(
        &self,
        id: &ChallengeId,
        tenant: &str,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<Resent, StoreError> {
        let mut st = self.lock();
        let Some(c) = st.challenge_of(id, tenant, now_ms) else {
            return Ok(Resent::NotFound);
        };
        if close_if_expired(c, now_ms) {
            return Ok(Resent::Closed(Box::new(c.clone())));
        }
        if c.sends >= policy.max_sends {
            return Ok(Resent::Limited { retry_at_ms: None });
        }
        if now_ms < c.next_send_ms {
            return Ok(Resent::Limited {
                retry_at_ms: Some(c.next_send_ms),
            });
        }
        c.sends += 1;
        c.expires_ms = (now_ms + policy.code_ttl_ms).min(c.max_expires_ms);
        c.next_send_ms = now_ms + policy.resend_interval_ms;
        Ok(Resent::Ok(Box::new(c.clone())))
    }

    async fn cancel(
        &self,
        id: &ChallengeId,
        tenant: &str,
        now_ms: i64,
    ) -> Result<Canceled, StoreError> {
        let mut st = self.lock();
        let Some(c) = st.challenge_of(id, tenant, now_ms) else {
            return Ok(Canceled::NotFound);
        };
        if close_if_expired(c, now_ms) {
            return Ok(Canceled::Closed(Box::new(c.clone())));
        }
        c.status = Status::Canceled;
        Ok(Canceled::Ok(Box::new(c.clone())))
    }

    async fn mark_failed(&self, id: &ChallengeId) -> Result<(), StoreError> {
        let mut st = self.lock();
        if let Some((c, _)) = st.challenges.get_mut(id)
            && c.status == Status::Pending
        {
            c.status = Status::Failed;
        }
        Ok(())
    }

    async fn unblock(&self, number_key: &str) -> Result<bool, StoreError> {
        let mut st = self.lock();
        Ok(match st.numbers.get_mut(number_key) {
            Some(n) => {
                n.fails = 0;
                std::mem::take(&mut n.blocked)
            }
            None => false,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn describe(&self) -> String {
        format!("memory (capacity {})", self.capacity)
    }
}
