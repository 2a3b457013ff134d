//! Rate limits in Redis, shared by every replica: one GCRA per tenant and route, decided by one Lua script
//! (atomic on the server, on Redis's clock), so N replicas enforce one limit, not N.

use std::time::Duration;

use ::redis::{Script, aio::ConnectionManager};
use async_trait::async_trait;

use super::{FailMode, RateLimitSettings, RateLimiter};
use crate::error::{ApiError, ErrorCode};

/// Buckets in Redis.
pub struct RedisRateLimiter {
    conn: ConnectionManager,
    script: Script,
    prefix: String,
    /// Microseconds between requests at the sustained rate.
    interval_us: f64,
    burst: f64,
    timeout: Duration,
    when_unavailable: FailMode,
    host: String,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("host", &self.host)
            .field("when_unavailable", &self.when_unavailable)
            .finish()
    }
}

impl RedisRateLimiter {
    /// Connects lazily (a service starts while Redis is down and applies `when_unavailable` until it is back).
    pub fn connect(
        url: &str,
        settings: &RateLimitSettings,
        when_unavailable: FailMode,
    ) -> Result<Self, ::redis::RedisError> {
        let client = ::redis::Client::open(url)?;
        let host = client.get_connection_info().addr().to_string();
        let timeout = Duration::from_millis(settings.redis_timeout_ms.max(1));
        let config = ::redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            script: Script::new(include_str!("gcra.lua")),
            prefix: settings.redis_prefix.clone(),
            interval_us: 1e6 / settings.requests_per_second,
            burst: settings.burst,
            timeout,
            when_unavailable,
            host,
        })
    }

    fn key(&self, tenant: &str, route: &str) -> String {
        // Hashed, so any tenant or route string makes a short, well-formed key.
        let mut joined = Vec::with_capacity(tenant.len() + route.len() + 1);
        joined.extend_from_slice(tenant.as_bytes());
        joined.push(0);
        joined.extend_from_slice(route.as_bytes());
        let digest = crate::digest::sha256_hex(&joined);
        format!("{}:{}", self.prefix, &digest[..32])
    }

    async fn ask(&self, key: String) -> Result<(i64, i64), String> {
        let mut conn = self.conn.clone();
        let mut invocation = self.script.prepare_invoke();
        invocation.key(key).arg(self.interval_us).arg(self.burst);
        match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("Redis did not answer in time".into()),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, tenant: &str, route: &str) -> Result<(), ApiError> {
        match self.ask(self.key(tenant, route)).await {
            Ok((1, _)) => Ok(()),
            Ok((_, wait_us)) => {
                let wait = u64::try_from(wait_us)
                    .unwrap_or(0)
                    .div_ceil(1_000_000)
                    .max(1);
                Err(ApiError::new(
                    ErrorCode::RateLimited,
                    "rate limit for this tenant and route exceeded",
                )
                .retry_after(wait))
            }
            Err(e) => {
                ::metrics::counter!("rate_limiter_unavailable_total", "route" => route.to_owned())
                    .increment(1);
                match self.when_unavailable {
                    FailMode::Open => {
                        tracing::warn!(error = %e, route, "rate limiter unavailable; request let through (fail open)");
                        Ok(())
                    }
                    FailMode::Closed => {
                        tracing::warn!(error = %e, route, "rate limiter unavailable; request refused (fail closed)");
                        Err(ApiError::new(
                            ErrorCode::StoreUnavailable,
                            "the rate limiter is unavailable; retry shortly",
                        )
                        .retry_after(1))
                    }
                }
            }
        }
    }
}
