//! Per-tenant, per-route rate limits: the [`RateLimiter`] port, its in-memory backend (a token bucket per key,
//! with a bounded number of keys, the embedded default) and a Redis backend ([`redis`]: one GCRA per key in one
//! Lua script) so that every replica enforces one limit.

pub mod redis;

use std::{collections::HashMap, sync::Mutex, time::Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{
    error::{ApiError, ErrorCode},
    secret::Secret,
};

/// Limits for one route and tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Sustained requests per second.
    pub requests_per_second: f64,
    /// Bucket size: how many requests may arrive at once after a quiet period.
    pub burst: f64,
    /// Most tenant-route keys tracked in memory; beyond it, new keys are refused until idle ones are dropped.
    /// (In Redis every key expires once its bucket is full again.)
    pub max_keys: usize,
    /// `redis://…`: keep the buckets in Redis, shared by every replica, instead of in this process.
    pub redis_url: Option<Secret>,
    /// Prefix of the limiter's Redis keys.
    pub redis_prefix: String,
    /// Longest a limit check waits for Redis, in milliseconds.
    pub redis_timeout_ms: u64,
    /// What a request gets when Redis cannot be asked: `closed` (refused with 503 `store_unavailable`) or
    /// `open` (let through, with a log line and a counter). Default: `closed` for phone-proof, whose requests
    /// send SMS and guard codes against guessing; `open` for document-ocr and face-match, whose bounded worker
    /// queues shed load on their own.
    pub when_unavailable: Option<FailMode>,
}

/// What a shared limiter does when its store cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Refuse the request (503 `store_unavailable`).
    Closed,
    /// Let it through, logged and counted.
    Open,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            requests_per_second: 200.0,
            burst: 400.0,
            max_keys: 100_000,
            redis_url: None,
            redis_prefix: "idv:rl".into(),
            redis_timeout_ms: 250,
            when_unavailable: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The rate-limit port: one request of `tenant` on `route` (a route template, never a raw path).
#[async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug + 'static {
    /// Takes one request's allowance, or answers `rate_limited` with `Retry-After`.
    async fn check(&self, tenant: &str, route: &str) -> Result<(), ApiError>;
}

/// Token buckets keyed by tenant and route template, in this process's memory.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    settings: RateLimitSettings,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, tenant: &str, route: &str) -> Result<(), ApiError> {
        self.take(tenant, route)
    }
}

impl MemoryRateLimiter {
    /// A limiter with these settings.
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            settings,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `(tenant, route)`, or answers `rate_limited` with the seconds until one is free.
    pub fn take(&self, tenant: &str, route: &str) -> Result<(), ApiError> {
        let RateLimitSettings {
            requests_per_second: rate,
            burst,
            max_keys,
            ..
        } = self.settings;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.to_owned(), route.to_owned());
        if !buckets.contains_key(&key) && buckets.len() >= max_keys {
            // Full buckets belong to idle keys: forgetting them changes nothing.
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
            if buckets.len() >= max_keys {
                return Err(ApiError::new(
                    ErrorCode::RateLimited,
                    "too many distinct callers; retry shortly",
                )
                .retry_after(1));
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * rate).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64;
            Err(ApiError::new(
                ErrorCode::RateLimited,
                "rate limit for this tenant and route exceeded",
            )
            .retry_after(wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_tenant_and_route() {
        let limiter = MemoryRateLimiter::new(RateLimitSettings {
            requests_per_second: 0.5,
            burst: 2.0,
            max_keys: 10,
            ..RateLimitSettings::default()
        });
        assert!(limiter.take("a", "/x").is_ok());
        assert!(limiter.take("a", "/x").is_ok());
        let err = limiter.take("a", "/x").unwrap_err();
        assert_eq!(err.code, ErrorCode::RateLimited);
        assert_eq!(err.retry_after, Some(2));
        assert!(
            limiter.take("b", "/x").is_ok(),
            "another tenant is not limited"
        );
        assert!(
            limiter.take("a", "/y").is_ok(),
            "another route is not limited"
        );
    }

    #[test]
    fn key_count_is_bounded() {
        let limiter = MemoryRateLimiter::new(RateLimitSettings {
            requests_per_second: 0.001,
            burst: 1.0,
            max_keys: 3,
            ..RateLimitSettings::default()
        });
        for t in ["a", "b", "c"] {
            limiter.take(t, "/x").unwrap();
        }
        assert_eq!(
            limiter.take("d", "/x").unwrap_err().code,
            ErrorCode::RateLimited
        );
    }
}
