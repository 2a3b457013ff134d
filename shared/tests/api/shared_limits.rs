//! Rate limits shared through a real Redis: two replicas enforce one limit, and a Redis that is down gets the
//! documented behaviour (closed: 503 `store_unavailable`; open: let through), quickly.

use std::time::{Duration, Instant};

use idv_shared::{
    config::Secret,
    limits::{FailMode, RateLimitSettings},
};

use crate::helpers::{Options, TestApp, assert_problem, spawn_app_with};

fn redis_url() -> String {
    std::env::var("IDV_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn shared(url: &str, prefix: &str, when_unavailable: Option<FailMode>) -> RateLimitSettings {
    RateLimitSettings {
        requests_per_second: 0.01,
        burst: 5.0,
        redis_url: Some(Secret::new(url)),
        redis_prefix: prefix.to_owned(),
        when_unavailable,
        ..RateLimitSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_enforce_one_burst_limit() {
    let prefix = format!("idv:test:rl:{}", ulid::Ulid::new());
    let replicas = [
        spawn_app_with(Options {
            rate_limit: shared(&redis_url(), &prefix, None),
            ..Default::default()
        })
        .await,
        spawn_app_with(Options {
            rate_limit: shared(&redis_url(), &prefix, None),
            ..Default::default()
        })
        .await,
    ];
    // One tenant's token (the dev issuer differs per app, so each replica gets its own token).
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for app in &replicas {
        ids.push(app.put("eu", TestApp::jpeg(300)).await.to_string());
        tokens.push(app.token(&["eu"]));
    }
    // 20 concurrent requests split across both replicas: the burst is 5 in total, not 5 per replica.
    let calls = (0..20).map(|i| {
        let (app, token, id) = (&replicas[i % 2], &tokens[i % 2], &ids[i % 2]);
        async move { app.probe(token, id).await }
    });
    let answers = futures::future::join_all(calls).await;
    let mut accepted = 0;
    for res in answers {
        match res.status().as_u16() {
            200 => accepted += 1,
            429 => {
                assert!(res.headers().contains_key("retry-after"));
                assert_problem(res, 429, "rate_limited").await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(accepted, 5, "the tenant's burst across both replicas");
    // Another tenant has a bucket of its own.
    let other = replicas[0].token_for("globex", &["eu"], 300);
    assert_eq!(replicas[0].probe(&other, &ids[0]).await.status(), 200);
}

#[tokio::test]
async fn a_redis_that_is_down_fails_closed_or_open_as_configured_and_quickly() {
    let dead = "redis://127.0.0.1:9";
    let closed = spawn_app_with(Options {
        rate_limit: shared(dead, "idv:test:rl:dead", Some(FailMode::Closed)),
        ..Default::default()
    })
    .await;
    let id = closed.put("eu", TestApp::jpeg(300)).await.to_string();
    let started = Instant::now();
    let res = closed.probe(&closed.token(&["eu"]), &id).await;
    assert_problem(res, 503, "store_unavailable").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let open = spawn_app_with(Options {
        rate_limit: shared(dead, "idv:test:rl:dead", Some(FailMode::Open)),
        ..Default::default()
    })
    .await;
    let id = open.put("eu", TestApp::jpeg(300)).await.to_string();
    let started = Instant::now();
    assert_eq!(open.probe(&open.token(&["eu"]), &id).await.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_shared_bucket_refills_at_the_sustained_rate() {
    use idv_shared::limits::{RateLimiter, redis::RedisRateLimiter};
    let settings = RateLimitSettings {
        requests_per_second: 10.0,
        burst: 2.0,
        redis_prefix: format!("idv:test:rl:{}", ulid::Ulid::new()),
        ..RateLimitSettings::default()
    };
    let limiter = RedisRateLimiter::connect(&redis_url(), &settings, FailMode::Closed).unwrap();
    limiter.check("acme", "/x").await.unwrap();
    limiter.check("acme", "/x").await.unwrap();
    let refused = limiter.check("acme", "/x").await.unwrap_err();
    assert_eq!(refused.code, idv_shared::error::ErrorCode::RateLimited);
    assert_eq!(refused.retry_after, Some(1));
    assert!(limiter.check("acme", "/y").await.is_ok(), "another route");
    // One request's worth comes back after 1/10 s.
    tokio::time::sleep(Duration::from_millis(150)).await;
    limiter.check("acme", "/x").await.unwrap();
    assert!(limiter.check("acme", "/x").await.is_err());
}
