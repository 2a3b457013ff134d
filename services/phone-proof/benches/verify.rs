//! Verify throughput and latency of phone-proof over HTTP on loopback, Redis store, ledger on the local disk,
//! at rising concurrency. The client is this process (reqwest), far cheaper than k6, so the figures show the
//! service rather than the load generator. Each challenge gets four wrong codes, then the right one.
//!
//! `cargo bench -p phone-proof --bench verify` (needs Redis on 127.0.0.1:6379 or `IDV_TEST_REDIS_URL`). With
//! `IDV_BENCH_LEDGER_URL=postgres://…` the ledger is kept in PostgreSQL (migrated first) instead of the disk,
//! and shared rate limits go through the same Redis, as replicas run; `IDV_BENCH_LIMITS=memory|redis` chooses
//! the limiter on its own (see `testkit::bench_ledger_from_env`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{collections::HashMap, sync::Arc, time::Instant};

use idv_shared::{
    auth::dev::{DevIssuer, MintRequest},
    config::Secret,
    testkit,
};
use phone_proof::{App, SERVICE, config::Settings};
use serde_json::{Value, json};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut config = testkit::test_config(SERVICE, dir.path());
    // Folder stores, as the benchmarks recorded in docs/benchmarks.md were measured.
    testkit::use_folder_stores(&mut config);
    config.log.filter = "error".into();
    config.rate_limit.requests_per_second = 1e9;
    config.rate_limit.burst = 1e9;
    let backends = testkit::bench_ledger_from_env(&mut config, SERVICE).await;
    eprintln!("{backends}");
    let settings = Settings {
        redis_url: Some(Secret::new(
            std::env::var("IDV_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        )),
        redis_prefix: format!("idvbench:{}", ulid::Ulid::new()),
        ..Settings::default()
    };
    let app = App::build(config, settings).await.unwrap();
    let kernel = app.state.kernel.clone();
    let (router, _) = app.router();
    let addr = testkit::serve_ephemeral(router).await.unwrap();
    let dev =
        DevIssuer::load_or_create(dir.path(), idv_shared::clock::SystemClock::shared()).unwrap();
    let token = dev
        .mint(&MintRequest {
            audience: SERVICE.as_str().into(),
            scopes: vec!["phone:challenge".into(), "phone:verify".into()],
            tenant: "bench".into(),
            regions: vec!["eu".into()],
            ttl_secs: 900,
        })
        .unwrap();
    let client = reqwest::Client::new();
    let outbox = dir.path().join("outbox").join("phone-proof.jsonl");

    println!("| concurrency | verifies | verifies/s | p50 ms | p95 ms | p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut serial = 0u32;
    for concurrency in [16usize, 64, 128] {
        // Set-up, not measured: one challenge per 5 verifies, each for its own number.
        let challenges = 2000usize;
        let mut ids = Vec::with_capacity(challenges);
        for _ in 0..challenges {
            serial += 1;
            let body = json!({ "phone_number": format!("+49152{:08}", 10_000_000 + serial) });
            let art = kernel
                .stores()
                .put_new(
                    &"eu".parse().unwrap(),
                    serde_json::to_vec(&body).unwrap().into(),
                )
                .await
                .unwrap();
            let res: Value = client
                .post(format!("http://{addr}/v1/phone/challenges"))
                .bearer_auth(&token)
                .json(&json!({ "phone_artifact_id": art.to_string(), "channel": "sms" }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ids.push(res["challenge_id"].as_str().unwrap().to_owned());
        }
        let codes: HashMap<String, String> = std::fs::read_to_string(&outbox)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|m| {
                (
                    m["challenge_id"].as_str().unwrap().to_owned(),
                    m["code"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let work: Arc<Vec<(String, String)>> = Arc::new(
            ids.into_iter()
                .map(|id| {
                    let c = codes[&id].clone();
                    (id, c)
                })
                .collect(),
        );
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));

        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (client, token, work, next) =
                    (client.clone(), token.clone(), work.clone(), next.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((id, code)) = work.get(i) else { break };
                        for attempt in 0..5 {
                            let submitted = if attempt < 4 {
                                "000000".to_owned()
                            } else {
                                code.clone()
                            };
                            let t = Instant::now();
                            let res = client
                                .post(format!("http://{addr}/v1/phone/challenges/{id}/verify"))
                                .bearer_auth(&token)
                                .json(&json!({ "code": submitted }))
                                .send()
                                .await
                                .unwrap();
                            assert_eq!(res.status(), 200);
                            let _ = res.bytes().await.unwrap();
                            lat.push(t.elapsed().as_secs_f64() * 1e3);
                        }
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "| {concurrency} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
            all.len(),
            all.len() as f64 / secs,
            percentile(&all, 0.50),
            percentile(&all, 0.95),
            percentile(&all, 0.99)
        );
    }
    kernel.auditor().shutdown();
}
