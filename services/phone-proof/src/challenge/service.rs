//! The phone-proof rules, over their own ports (challenge store, sender, keys) and the kernel's (artifacts,
//! verdicts, clock).

use std::{sync::Arc, time::Instant};

use idv_shared::{
    auth::Caller,
    clock::to_datetime,
    kernel::ServicePorts,
    store::{ArtifactId, ArtifactKind},
    verdict::{Outcome, Reason, ReasonCode, Verdict, VerdictDraft, rfc3339, sha256_hex},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    code,
    keys::Keys,
    model::{Challenge, ChallengeId, Channel, Policy, Status},
    phone::PhoneNumber,
};
use crate::{
    SERVICE,
    error::PhoneProofError,
    sender::{Message, SendKind, Sender},
    store::{Canceled, ChallengeStore, CheckEnd, CheckStart, Created, Idempotency, Resent},
};

/// The `result` of a phone verification verdict.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PhoneResult {
    /// The challenge checked.
    #[schema(example = "chl_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P")]
    pub challenge_id: String,
    /// The challenge's status after this check.
    pub status: Status,
    /// Checks left.
    pub attempts_remaining: u32,
    /// On `pass`: a short-lived EdDSA JWS proving possession (verify with `/.well-known/jwks.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_token: Option<String>,
    /// When the proof token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Claims of the proof token a pass carries. The number appears only as a keyed hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofClaims {
    /// `idv:phone-proof`.
    pub iss: String,
    /// Always `phone_proof`.
    pub typ: String,
    /// Keyed hash (HMAC-SHA256) of tenant and E.164 number.
    pub sub: String,
    /// The tenant the proof is for.
    pub tenant: String,
    /// The challenge.
    pub chl: String,
    /// When the code was verified (RFC 3339).
    pub verified_at: String,
    /// Issued at (s).
    pub iat: i64,
    /// Expiry (s); at most 10 minutes after `iat`.
    pub exp: i64,
    /// Unique token id, for replay detection by the relying party.
    pub jti: String,
}

/// How a challenge was created.
#[derive(Debug)]
pub struct CreateOutcome {
    /// The challenge.
    pub challenge: Challenge,
    /// False when an idempotent replay returned an earlier challenge.
    pub created: bool,
}

/// The phone-proof service.
pub struct PhoneProof {
    kernel: ServicePorts,
    store: Arc<dyn ChallengeStore>,
    sender: Arc<dyn Sender>,
    keys: Arc<Keys>,
    policy: Policy,
    code_digits: u32,
    code_ttl_ms: i64,
    max_lifetime_ms: i64,
    proof_ttl_secs: i64,
}

/// The parts a [`PhoneProof`] is built from.
pub struct Ports {
    /// Challenge state.
    pub store: Arc<dyn ChallengeStore>,
    /// Delivery.
    pub sender: Arc<dyn Sender>,
    /// Number-hash and sealing keys.
    pub keys: Arc<Keys>,
}

fn ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn secs_until(now_ms: i64, at_ms: i64) -> u64 {
    u64::try_from((at_ms - now_ms + 999) / 1000)
        .unwrap_or(0)
        .max(1)
}

impl PhoneProof {
    /// Wires the rules to their ports and the kernel's.
    pub fn new(kernel: ServicePorts, ports: Ports, s: &crate::config::Settings) -> Self {
        Self {
            kernel,
            store: ports.store,
            sender: ports.sender,
            keys: ports.keys,
            policy: Policy {
                max_checks: s.max_checks,
                max_sends: s.max_sends,
                code_ttl_ms: ms(s.code_ttl_secs),
                resend_interval_ms: ms(s.resend_interval_secs),
                number_max: s.number_max_challenges,
                number_window_ms: ms(s.number_window_secs),
                block_after: s.block_after_failures,
                retain_ms: ms(s.retain_secs),
                idempotency_ttl_ms: ms(s.idempotency_ttl_secs),
            },
            code_digits: s.code_digits,
            code_ttl_ms: ms(s.code_ttl_secs),
            max_lifetime_ms: ms(s.max_lifetime_secs),
            proof_ttl_secs: i64::try_from(s.proof_ttl_secs).unwrap_or(600),
        }
    }

    /// The limits in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Now, by the service's clock (ms).
    pub fn now_ms(&self) -> i64 {
        self.kernel.clock.now_ms()
    }

    /// The challenge store (for readiness checks).
    pub fn store(&self) -> &Arc<dyn ChallengeStore> {
        &self.store
    }

    async fn phone_of(
        &self,
        caller: &Caller,
        id: &ArtifactId,
    ) -> Result<(PhoneNumber, idv_shared::verdict::ArtifactRef), PhoneProofError> {
        let artifact = self
            .kernel
            .artifacts
            .fetch(id, &caller.regions, ArtifactKind::Json)
            .await?;
        let phone = PhoneNumber::from_artifact(&artifact.bytes)?;
        Ok((phone, artifact.custody()))
    }

    async fn deliver(
        &self,
        c: &Challenge,
        phone: PhoneNumber,
        kind: SendKind,
    ) -> Result<(), PhoneProofError> {
        let secret = self.keys.open(&c.id, &c.sealed_secret).ok_or_else(|| {
            PhoneProofError::Api(idv_shared::error::ApiError::internal(
                "a sealed code secret does not open",
            ))
        })?;
        let message = Message {
            event_id: format!("evt_{}", ulid::Ulid::new()),
            challenge_id: c.id.to_string(),
            tenant: c.tenant.clone(),
            to: phone,
            channel: c.channel,
            code: code::code(&secret, self.code_digits, c.created_ms),
            expires_at: rfc3339(to_datetime(c.expires_ms)),
            kind,
        };
        let started = Instant::now();
        let sent = self.sender.send(&message).await;
        idv_shared::metrics::record_stage(SERVICE.as_str(), "deliver", started.elapsed());
        if let Err(e) = sent {
            // The challenge must not stay pending with a code nobody received.
            if let Err(store) = self.store.mark_failed(&c.id).await {
                tracing::error!(error = %store, challenge = %c.id, "could not mark the challenge failed");
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Starts a challenge for the number in `artifact_id` and sends its code.
    pub async fn create(
        &self,
        caller: &Caller,
        artifact_id: &ArtifactId,
        channel: Channel,
        idempotency_key: Option<String>,
    ) -> Result<CreateOutcome, PhoneProofError> {
        let (phone, custody) = self.phone_of(caller, artifact_id).await?;
        let now = self.now_ms();
        let id = ChallengeId::generate();
        let secret = code::new_secret()
            .map_err(|e| PhoneProofError::Api(idv_shared::error::ApiError::internal(e)))?;
        let challenge = Challenge {
            number_key: self.keys.number_key(&caller.tenant, phone.e164()),
            sealed_secret: self.keys.seal(&id, &secret),
            id,
            tenant: caller.tenant.clone(),
            artifact: custody,
            channel,
            status: Status::Pending,
            checks: 0,
            failed: 0,
            sends: 1,
            created_ms: now,
            expires_ms: now + self.code_ttl_ms,
            max_expires_ms: now + self.max_lifetime_ms,
            next_send_ms: now + self.policy.resend_interval_ms,
            verified_ms: None,
        };
        let idempotency = idempotency_key.map(|key| Idempotency {
            fingerprint: sha256_hex(format!("{artifact_id}\n{}", channel.as_str()).as_bytes()),
            key,
        });
        let started = Instant::now();
        let created = self
            .store
            .create(&challenge, idempotency.as_ref(), &self.policy, now)
            .await?;
        idv_shared::metrics::record_stage(SERVICE.as_str(), "store", started.elapsed());
        match created {
            Created::New => {
                self.deliver(&challenge, phone, SendKind::Initial).await?;
                tracing::info!(challenge = %challenge.id, channel = channel.as_str(), "challenge created");
                Ok(CreateOutcome {
                    challenge,
                    created: true,
                })
            }
            Created::Existing {
                challenge: Some(existing),
                same_request: true,
            } => Ok(CreateOutcome {
                challenge: *existing,
                created: false,
            }),
            Created::Existing { .. } => Err(PhoneProofError::IdempotencyConflict),
            Created::Blocked => Err(PhoneProofError::Blocked),
            Created::Limited { retry_at_ms } => Err(PhoneProofError::NumberLimited {
                retry_after: secs_until(now, retry_at_ms),
            }),
        }
    }

    /// The challenge as it stands.
    pub async fn get(
        &self,
        caller: &Caller,
        id: &ChallengeId,
    ) -> Result<Challenge, PhoneProofError> {
        self.store
            .get(id, &caller.tenant)
            .await?
            .ok_or(PhoneProofError::NotFound)
    }

    /// Checks a code and returns the verdict, after its ledger entry is durable.
    pub async fn verify(
        &self,
        caller: &Caller,
        id: &ChallengeId,
        submitted: &str,
    ) -> Result<Verdict<PhoneResult>, PhoneProofError> {
        if !(6..=9).contains(&submitted.len()) || !submitted.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneProofError::Invalid(
                "code must be a string of 6 to 9 digits".into(),
            ));
        }
        let now = self.now_ms();
        let started = Instant::now();
        let counted = match self
            .store
            .begin_check(id, &caller.tenant, &self.policy, now)
            .await?
        {
            CheckStart::NotFound => return Err(PhoneProofError::NotFound),
            CheckStart::Blocked => return Err(PhoneProofError::Blocked),
            CheckStart::Closed(c) => return self.closed_verdict(caller, &c).await,
            CheckStart::NoChecksLeft(c) => {
                return self
                    .issue(
                        caller,
                        &c,
                        Outcome::Fail,
                        1.0,
                        vec![Reason {
                            code: ReasonCode::MaxAttemptsReached,
                            detail: "every check of the challenge is used; the last ones are still being \
                                     decided, so its status stays pending until they are"
                                .into(),
                        }],
                        None,
                    )
                    .await;
            }
            CheckStart::Counted(c) => c,
        };
        let expected = self
            .keys
            .open(&counted.id, &counted.sealed_secret)
            .map(|s| code::code(&s, self.code_digits, counted.created_ms));
        let matched = expected.is_some_and(|e| code::matches(&e, submitted));
        let end = self
            .store
            .finish_check(&counted, matched, &self.policy, now)
            .await?;
        idv_shared::metrics::record_stage(SERVICE.as_str(), "store", started.elapsed());
        match end {
            CheckEnd::NotFound => Err(PhoneProofError::NotFound),
            CheckEnd::Closed(c) => self.closed_verdict(caller, &c).await,
            CheckEnd::Approved(c) => self.pass_verdict(caller, &c, now).await,
            CheckEnd::Rejected {
                challenge,
                blocked_now,
            } => {
                if blocked_now {
                    tracing::warn!(challenge = %challenge.id, "phone number blocked after consecutive failures");
                }
                let left = self.policy.max_checks.saturating_sub(challenge.checks);
                let detail = if left == 0 {
                    "the code is wrong; no checks are left".to_owned()
                } else {
                    format!("the code is wrong; {left} check(s) left")
                };
                self.issue(
                    caller,
                    &challenge,
                    Outcome::Fail,
                    1.0,
                    vec![Reason {
                        code: ReasonCode::CodeMismatch,
                        detail,
                    }],
                    None,
                )
                .await
            }
        }
    }

    async fn closed_verdict(
        &self,
        caller: &Caller,
        c: &Challenge,
    ) -> Result<Verdict<PhoneResult>, PhoneProofError> {
        let (code, detail) = match c.status {
            Status::Approved => (
                ReasonCode::AlreadyVerified,
                "the challenge was already verified; a code is accepted once",
            ),
            Status::Expired => (ReasonCode::ChallengeExpired, "the challenge expired"),
            Status::Canceled => (ReasonCode::ChallengeCanceled, "the challenge was canceled"),
            Status::MaxAttemptsReached => (
                ReasonCode::MaxAttemptsReached,
                "the challenge has used all its checks",
            ),
            Status::Failed | Status::Pending => (
                ReasonCode::ChallengeFailed,
                "the challenge's code was never delivered",
            ),
        };
        self.issue(
            caller,
            c,
            Outcome::Fail,
            1.0,
            vec![Reason {
                code,
                detail: detail.into(),
            }],
            None,
        )
        .await
    }

    async fn pass_verdict(
        &self,
        caller: &Caller,
        c: &Challenge,
        now: i64,
    ) -> Result<Verdict<PhoneResult>, PhoneProofError> {
        let iat = now / 1000;
        let verified = c.verified_ms.unwrap_or(now);
        let claims = ProofClaims {
            iss: format!("idv:{SERVICE}"),
            typ: "phone_proof".into(),
            sub: c.number_key.clone(),
            tenant: c.tenant.clone(),
            chl: c.id.to_string(),
            verified_at: rfc3339(to_datetime(verified)),
            iat,
            exp: iat + self.proof_ttl_secs,
            jti: format!("prf_{}", ulid::Ulid::new()),
        };
        let token = self
            .kernel
            .verdicts
            .sign_token(&claims)
            .map_err(|e| PhoneProofError::Api(idv_shared::error::ApiError::internal(e)))?;
        // A guess succeeds with probability checks / 10^digits; the confidence says so.
        let guess = f64::from(c.checks) / 10f64.powi(self.code_digits as i32);
        self.issue(
            caller,
            c,
            Outcome::Pass,
            1.0 - guess,
            vec![],
            Some((token, claims.exp)),
        )
        .await
    }

    async fn issue(
        &self,
        caller: &Caller,
        c: &Challenge,
        verdict: Outcome,
        confidence: f64,
        reasons: Vec<Reason>,
        proof: Option<(String, i64)>,
    ) -> Result<Verdict<PhoneResult>, PhoneProofError> {
        let status = c.status_at(self.now_ms());
        let (proof_token, proof_expires_at) = match proof {
            Some((t, exp)) => (Some(t), Some(to_datetime(exp * 1000))),
            None => (None, None),
        };
        let draft = VerdictDraft {
            service: SERVICE,
            verdict,
            confidence,
            reasons,
            result: PhoneResult {
                challenge_id: c.id.to_string(),
                status,
                attempts_remaining: self.policy.max_checks.saturating_sub(c.checks),
                proof_token,
                proof_expires_at,
            },
            artifacts: vec![c.artifact.clone()],
            model: None,
            format: None,
        };
        Ok(self.kernel.verdicts.issue(&caller.tenant, draft).await?)
    }

    /// Sends the same code again and moves the expiry (not past the hard cap).
    pub async fn resend(
        &self,
        caller: &Caller,
        id: &ChallengeId,
    ) -> Result<Challenge, PhoneProofError> {
        let now = self.now_ms();
        let c = match self
            .store
            .resend(id, &caller.tenant, &self.policy, now)
            .await?
        {
            Resent::NotFound => return Err(PhoneProofError::NotFound),
            Resent::Closed(c) => return Err(PhoneProofError::NotPending(c.status_at(now))),
            Resent::Limited { retry_at_ms } => {
                return Err(PhoneProofError::ResendLimited {
                    retry_after: retry_at_ms.map(|at| secs_until(now, at)),
                });
            }
            Resent::Ok(c) => *c,
        };
        let (phone, custody) = self.phone_of(caller, &c.artifact.id).await?;
        if custody.sha256 != c.artifact.sha256 {
            return Err(PhoneProofError::ArtifactChanged);
        }
        self.deliver(&c, phone, SendKind::Resend).await?;
        Ok(c)
    }

    /// Cancels a pending challenge.
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: &ChallengeId,
    ) -> Result<Challenge, PhoneProofError> {
        let now = self.now_ms();
        match self.store.cancel(id, &caller.tenant, now).await? {
            Canceled::NotFound => Err(PhoneProofError::NotFound),
            Canceled::Closed(c) => Err(PhoneProofError::NotPending(c.status_at(now))),
            Canceled::Ok(c) => Ok(*c),
        }
    }

    /// Lifts the block of the caller's tenant's number in `artifact_id`; `true` if it was blocked.
    pub async fn unblock(
        &self,
        caller: &Caller,
        artifact_id: &ArtifactId,
    ) -> Result<bool, PhoneProofError> {
        let (phone, _) = self.phone_of(caller, artifact_id).await?;
        let unblocked = self
            .store
            .unblock(&self.keys.number_key(&caller.tenant, phone.e164()))
            .await?;
        tracing::info!(unblocked, "operator unblock");
        Ok(unblocked)
    }
}
