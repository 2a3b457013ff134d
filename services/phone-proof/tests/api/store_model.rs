//! Model-based test of the challenge store port. Random schedules of create, begin check, finish check (checks
//! of one challenge left in flight and finished in any order, as concurrent requests do), resend, cancel,
//! delivery failure, unblock and clock steps run step by step against the in-memory store and Redis.
//!
//! Every step must give the same answer on both stores (so the two are provably in step), and the answers must
//! keep the rules: at most one approval per challenge; a counted check with the right code approves unless the
//! challenge was closed by something other than checks (approved, canceled, expired, failed); and a challenge
//! shows `max_attempts_reached` only once every counted check has settled.

use std::collections::HashMap;

use idv_shared::{store::ArtifactId, verdict::ArtifactRef};
use phone_proof::{
    challenge::model::{Challenge, ChallengeId, Channel, Policy, Status},
    store::{
        ChallengeStore, CheckEnd, CheckStart, Idempotency, memory::MemoryStore, redis::RedisStore,
    },
};

use crate::helpers::redis_url;

const SCHEDULES: u64 = 150;
const STEPS: usize = 80;

/// xorshift64*: a schedule is reproducible from its seed, printed when it fails.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn policy() -> Policy {
    Policy {
        max_checks: 3,
        max_sends: 3,
        code_ttl_ms: 60_000,
        resend_interval_ms: 10_000,
        number_max: 4,
        number_window_ms: 600_000,
        block_after: 5,
        // Redis expires keys in real time, the memory store by the schedule's clock: retention far beyond any
        // schedule's clock keeps the two comparable.
        retain_ms: 24 * 3_600_000,
        idempotency_ttl_ms: 600_000,
    }
}

fn new_challenge(number: usize, now: i64) -> Challenge {
    Challenge {
        id: ChallengeId::generate(),
        tenant: "acme".into(),
        number_key: format!("number{number}"),
        artifact: ArtifactRef {
            id: ArtifactId::generate("eu".parse().unwrap()),
            sha256: "00".repeat(32),
            residency: "eu".parse().unwrap(),
        },
        channel: Channel::Sms,
        status: Status::Pending,
        checks: 0,
        failed: 0,
        sends: 1,
        created_ms: now,
        expires_ms: now + policy().code_ttl_ms,
        max_expires_ms: now + 300_000,
        next_send_ms: now + policy().resend_interval_ms,
        verified_ms: None,
        sealed_secret: "sealed".into(),
    }
}

/// A counted check whose comparison has not been recorded yet.
struct InFlight {
    challenge: Challenge,
    matched: bool,
}

/// What the schedule knows about one challenge.
#[derive(Default)]
struct Seen {
    approvals: u32,
    in_flight: u32,
}

fn status_of(debug: &str) -> Option<Status> {
    [
        Status::Pending,
        Status::Approved,
        Status::Expired,
        Status::Canceled,
        Status::MaxAttemptsReached,
        Status::Failed,
    ]
    .into_iter()
    .find(|s| debug.contains(&format!("status: {s:?},")))
}

async fn run_schedule(seed: u64, memory: &MemoryStore, redis: &RedisStore) -> Vec<String> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let policy = policy();
    let mut now: i64 = 1_700_000_000_000;
    let mut ids: Vec<ChallengeId> = Vec::new();
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut seen: HashMap<ChallengeId, Seen> = HashMap::new();
    let mut log = Vec::new();
    for step in 0..STEPS {
        let pick = rng.below(100);
        let (what, m, r) = if pick < 15 || ids.is_empty() {
            let c = new_challenge(rng.below(2), now);
            let idem = rng.chance(30).then(|| Idempotency {
                key: format!("key{}", rng.below(3)),
                fingerprint: format!("fp{}", rng.below(2)),
            });
            let m = memory.create(&c, idem.as_ref(), &policy, now).await;
            let r = redis.create(&c, idem.as_ref(), &policy, now).await;
            if matches!(m, Ok(phone_proof::store::Created::New)) {
                ids.push(c.id.clone());
            }
            ("create", format!("{m:?}"), format!("{r:?}"))
        } else if pick < 50 {
            let id = ids[rng.below(ids.len())].clone();
            let tenant = if rng.chance(5) { "globex" } else { "acme" };
            let m = memory.begin_check(&id, tenant, &policy, now).await;
            let r = redis.begin_check(&id, tenant, &policy, now).await;
            if let Ok(CheckStart::Counted(c)) = &m {
                seen.entry(id).or_default().in_flight += 1;
                in_flight.push(InFlight {
                    challenge: (**c).clone(),
                    matched: rng.chance(40),
                });
            }
            ("begin_check", format!("{m:?}"), format!("{r:?}"))
        } else if pick < 80 && !in_flight.is_empty() {
            let check = in_flight.swap_remove(rng.below(in_flight.len()));
            let m = memory
                .finish_check(&check.challenge, check.matched, &policy, now)
                .await;
            let r = redis
                .finish_check(&check.challenge, check.matched, &policy, now)
                .await;
            let s = seen.entry(check.challenge.id.clone()).or_default();
            s.in_flight -= 1;
            match &m {
                Ok(CheckEnd::Approved(_)) => {
                    s.approvals += 1;
                    assert!(s.approvals <= 1, "seed {seed}: a second approval");
                }
                Ok(CheckEnd::Closed(c)) if check.matched => assert!(
                    !matches!(c.status, Status::Pending | Status::MaxAttemptsReached),
                    "seed {seed} step {step}: a counted right code was refused on a {:?} challenge",
                    c.status
                ),
                other => assert!(
                    !check.matched,
                    "seed {seed} step {step}: a counted right code answered {other:?}"
                ),
            }
            ("finish_check", format!("{m:?}"), format!("{r:?}"))
        } else if pick < 87 {
            let id = ids[rng.below(ids.len())].clone();
            let m = memory.resend(&id, "acme", &policy, now).await;
            let r = redis.resend(&id, "acme", &policy, now).await;
            ("resend", format!("{m:?}"), format!("{r:?}"))
        } else if pick < 91 {
            let id = ids[rng.below(ids.len())].clone();
            let m = memory.cancel(&id, "acme", now).await;
            let r = redis.cancel(&id, "acme", now).await;
            ("cancel", format!("{m:?}"), format!("{r:?}"))
        } else if pick < 93 {
            let id = ids[rng.below(ids.len())].clone();
            let m = memory.mark_failed(&id).await;
            let r = redis.mark_failed(&id).await;
            let (m, r) = (
                memory.get(&id, "acme").await.map(|_| m.is_ok()),
                redis.get(&id, "acme").await.map(|_| r.is_ok()),
            );
            ("mark_failed", format!("{m:?}"), format!("{r:?}"))
        } else if pick < 95 {
            let number = format!("number{}", rng.below(2));
            let m = memory.unblock(&number).await;
            let r = redis.unblock(&number).await;
            ("unblock", format!("{m:?}"), format!("{r:?}"))
        } else {
            now += rng.below(40_000) as i64;
            continue;
        };
        assert_eq!(m, r, "seed {seed} step {step} ({what}): memory vs Redis");
        assert!(!m.contains("Err("), "seed {seed} step {step}: {m}");
        // `max_attempts_reached` only once no counted check of that challenge is still being compared.
        if status_of(&m) == Some(Status::MaxAttemptsReached) {
            for (id, s) in &seen {
                if m.contains(id.as_str()) {
                    assert_eq!(
                        s.in_flight, 0,
                        "seed {seed} step {step}: closed with checks in flight: {m}"
                    );
                }
            }
        }
        log.push(what.to_owned());
    }
    log
}

#[tokio::test]
async fn random_schedules_give_the_same_answers_on_both_stores_and_keep_the_rules() {
    let mut kinds: HashMap<String, usize> = HashMap::new();
    let prefix = format!("idvmodel:{}", ulid::Ulid::new());
    for seed in 0..SCHEDULES {
        // Fresh stores per schedule, so that numbers' blocks and windows start clean on both.
        let memory = MemoryStore::new(10_000);
        let redis = RedisStore::connect(
            &redis_url(),
            &format!("{prefix}:{seed}"),
            std::time::Duration::from_secs(2),
        )
        .unwrap();
        for what in run_schedule(seed, &memory, &redis).await {
            *kinds.entry(what).or_default() += 1;
        }
    }
    // The schedules exercised every operation, not just creation.
    for what in ["create", "begin_check", "finish_check", "resend", "cancel"] {
        assert!(
            kinds.get(what).copied().unwrap_or(0) > 100,
            "{what}: {kinds:?}"
        );
    }
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}
