//! The Redis store: shared by every replica. Each operation is one Lua script, so it is atomic on the server;
//! keys expire with their challenge. A Redis that does not answer within the timeout is a fast
//! [`StoreError::Unavailable`], never a wait.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use redis::{AsyncCommands, Script, aio::ConnectionManager};

use super::{
    Canceled, ChallengeStore, CheckEnd, CheckStart, Created, Idempotency, Resent, StoreError,
};
use crate::challenge::model::{Challenge, ChallengeId, Policy};

/// Failure counters outlive challenges so that "consecutive failures" spans them; they still expire eventually.
const FAILS_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

struct Scripts {
    create: Script,
    begin_check: Script,
    finish_check: Script,
    resend: Script,
    cancel: Script,
    mark_failed: Script,
}

/// Challenges in Redis.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    scripts: Scripts,
    describe: String,
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

type Reply = (String, Vec<String>);

fn parse(fields: Vec<String>) -> Result<Challenge, StoreError> {
    let mut map = HashMap::with_capacity(fields.len() / 2);
    let mut it = fields.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    Challenge::from_fields(&map)
        .ok_or_else(|| StoreError::Unavailable("a stored challenge is malformed".into()))
}

fn boxed(fields: Vec<String>) -> Result<Box<Challenge>, StoreError> {
    parse(fields).map(Box::new)
}

impl RedisStore {
    /// Connects lazily: the service starts while Redis is down and answers 503 until it is back.
    pub fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let host = client.get_connection_info().addr().to_string();
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            scripts: Scripts {
                create: Script::new(include_str!("lua/create.lua")),
                begin_check: Script::new(concat!(
                    include_str!("lua/prelude.lua"),
                    include_str!("lua/begin_check.lua")
                )),
                finish_check: Script::new(include_str!("lua/finish_check.lua")),
                resend: Script::new(concat!(
                    include_str!("lua/prelude.lua"),
                    include_str!("lua/resend.lua")
                )),
                cancel: Script::new(concat!(
                    include_str!("lua/prelude.lua"),
                    include_str!("lua/cancel.lua")
                )),
                mark_failed: Script::new(include_str!("lua/mark_failed.lua")),
            },
            describe: format!("redis ({host}, prefix {prefix})"),
        })
    }

    fn challenge_key(&self, id: &ChallengeId) -> String {
        format!("{}:c:{}", self.prefix, id)
    }

    fn number_prefix(&self) -> String {
        format!("{}:n:", self.prefix)
    }

    fn number_key(&self, nk: &str, what: &str) -> String {
        format!("{}:n:{}:{}", self.prefix, nk, what)
    }

    fn idem_key(&self, tenant: &str, key: &str) -> String {
        // The tenant is hashed so that any tenant string makes a well-formed key.
        let t = idv_shared::verdict::sha256_hex(tenant.as_bytes());
        format!("{}:i:{}:{}", self.prefix, &t[..32], key)
    }
}

#[async_trait]
impl ChallengeStore for RedisStore {
    #[tracing::instrument(level = "debug", name = "redis.create", skip_all)]
    async fn create(
        &self,
        challenge: &Challenge,
        idempotency: Option<&Idempotency>,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<Created, StoreError> {
        let ttl = (challenge.max_expires_ms - now_ms + policy.retain_ms).max(1);
        let idem_key = idempotency
            .map(|i| self.idem_key(&challenge.tenant, &i.key))
            .unwrap_or_else(|| format!("{}:i:none", self.prefix));
        let mut inv = self.scripts.create.prepare_invoke();
        inv.key(self.challenge_key(&challenge.id))
            .key(self.number_key(&challenge.number_key, "starts"))
            .key(self.number_key(&challenge.number_key, "blocked"))
            .key(idem_key)
            .arg(now_ms)
            .arg(policy.number_window_ms)
            .arg(policy.number_max)
            .arg(ttl)
            .arg(policy.idempotency_ttl_ms)
            .arg(if idempotency.is_some() { "1" } else { "0" })
            .arg(challenge.id.as_str())
            .arg(idempotency.map(|i| i.fingerprint.as_str()).unwrap_or(""));
        for (k, v) in challenge.to_fields() {
            inv.arg(k).arg(v);
        }
        let (tag, list): Reply = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match tag.as_str() {
            "new" => Ok(Created::New),
            "blocked" => Ok(Created::Blocked),
            "limited" => {
                let oldest: f64 = list.first().and_then(|s| s.parse().ok()).unwrap_or(0.0);
                Ok(Created::Limited {
                    retry_at_ms: oldest as i64 + policy.number_window_ms,
                })
            }
            "existing" => {
                let id: Option<ChallengeId> = list.first().and_then(|s| s.parse().ok());
                let same_request =
                    idempotency.map(|i| i.fingerprint.as_str()) == list.get(1).map(String::as_str);
                let challenge = match id {
                    Some(id) => self.get(&id, &challenge.tenant).await?,
                    None => None,
                };
                Ok(Created::Existing {
                    challenge: challenge.map(Box::new),
                    same_request,
                })
            }
            other => Err(StoreError::Unavailable(format!(
                "unexpected create reply {other}"
            ))),
        }
    }

    #[tracing::instrument(level = "debug", name = "redis.get", skip_all)]
    async fn get(&self, id: &ChallengeId, tenant: &str) -> Result<Option<Challenge>, StoreError> {
        let fields: Vec<String> = self
            .conn
            .clone()
            .hgetall(self.challenge_key(id))
            .await
            .map_err(unavailable)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let c = parse(fields)?;
        Ok((c.tenant == tenant).then_some(c))
    }

    #[tracing::instrument(level = "debug", name = "redis.begin_check", skip_all)]
    async fn begin_check(
        &self,
        id: &ChallengeId,
        tenant: &str,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<CheckStart, StoreError> {
        let (tag, fields): Reply = self
            .scripts
            .begin_check
            .key(self.challenge_key(id))
            .arg(tenant)
            .arg(now_ms)
            .arg(policy.max_checks)
            .arg(self.number_prefix())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match tag.as_str() {
            "notfound" => Ok(CheckStart::NotFound),
            "blocked" => Ok(CheckStart::Blocked),
            "closed" => Ok(CheckStart::Closed(boxed(fields)?)),
            "no_checks_left" => Ok(CheckStart::NoChecksLeft(boxed(fields)?)),
            "counted" => Ok(CheckStart::Counted(boxed(fields)?)),
            other => Err(StoreError::Unavailable(format!(
                "unexpected check reply {other}"
            ))),
        }
    }

    #[tracing::instrument(level = "debug", name = "redis.finish_check", skip_all)]
    async fn finish_check(
        &self,
        challenge: &Challenge,
        matched: bool,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<CheckEnd, StoreError> {
        let (tag, fields): Reply = self
            .scripts
            .finish_check
            .key(self.challenge_key(&challenge.id))
            .key(self.number_key(&challenge.number_key, "fails"))
            .key(self.number_key(&challenge.number_key, "blocked"))
            .arg(if matched { "1" } else { "0" })
            .arg(now_ms)
            .arg(policy.max_checks)
            .arg(policy.block_after)
            .arg(FAILS_TTL_MS)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match tag.as_str() {
            "notfound" => Ok(CheckEnd::NotFound),
            "approved" => Ok(CheckEnd::Approved(boxed(fields)?)),
            "closed" => Ok(CheckEnd::Closed(boxed(fields)?)),
            "rejected:0" | "rejected:1" => Ok(CheckEnd::Rejected {
                challenge: boxed(fields)?,
                blocked_now: tag == "rejected:1",
            }),
            other => Err(StoreError::Unavailable(format!(
                "unexpected check reply {other}"
            ))),
        }
    }

    #[tracing::instrument(level = "debug", name = "redis.resend", skip_all)]
    async fn resend(
        &self,
        id: &ChallengeId,
        tenant: &str,
        policy: &Policy,
        now_ms: i64,
    ) -> Result<Resent, StoreError> {
        let (tag, list): Reply = self
            .scripts
            .resend
            .key(self.challenge_key(id))
            .arg(tenant)
            .arg(now_ms)
            .arg(policy.max_sends)
            .arg(policy.code_ttl_ms)
            .arg(policy.resend_interval_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match tag.as_str() {
            "notfound" => Ok(Resent::NotFound),
            "closed" => Ok(Resent::Closed(boxed(list)?)),
            "exhausted" => Ok(Resent::Limited { retry_at_ms: None }),
            "early" => Ok(Resent::Limited {
                retry_at_ms: list.first().and_then(|s| s.parse().ok()),
            }),
            "ok" => Ok(Resent::Ok(boxed(list)?)),
            other => Err(StoreError::Unavailable(format!(
                "unexpected resend reply {other}"
            ))),
        }
    }

    #[tracing::instrument(level = "debug", name = "redis.cancel", skip_all)]
    async fn cancel(
        &self,
        id: &ChallengeId,
        tenant: &str,
        now_ms: i64,
    ) -> Result<Canceled, StoreError> {
        let (tag, fields): Reply = self
            .scripts
            .cancel
            .key(self.challenge_key(id))
            .arg(tenant)
            .arg(now_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match tag.as_str() {
            "notfound" => Ok(Canceled::NotFound),
            "closed" => Ok(Canceled::Closed(boxed(fields)?)),
            "ok" => Ok(Canceled::Ok(boxed(fields)?)),
            other => Err(StoreError::Unavailable(format!(
                "unexpected cancel reply {other}"
            ))),
        }
    }

    #[tracing::instrument(level = "debug", name = "redis.mark_failed", skip_all)]
    async fn mark_failed(&self, id: &ChallengeId) -> Result<(), StoreError> {
        let _: i64 = self
            .scripts
            .mark_failed
            .key(self.challenge_key(id))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "redis.unblock", skip_all)]
    async fn unblock(&self, number_key: &str) -> Result<bool, StoreError> {
        let (blocked, _): (i64, i64) = redis::pipe()
            .atomic()
            .del(self.number_key(number_key, "blocked"))
            .del(self.number_key(number_key, "fails"))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(blocked > 0)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = redis::cmd("PING")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "unexpected PING reply {pong}"
            )))
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
