//! Verdict issuing throughput and latency: Ed25519 signing plus the ledger's group commit (one fsync per
//! batch) on the local disk, at rising concurrency.
//!
//! `cargo bench -p idv-shared --bench audit` — prints p50/p95/p99 and verdicts/s per concurrency level, for the
//! file ledger and, when `IDV_TEST_POSTGRES_URL` is set, the PostgreSQL ledger with one writer and with two
//! writers (two replicas) on one chain.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{sync::Arc, time::Instant};

use idv_shared::{
    audit::{Auditor, LedgerTarget, PostgresLedger},
    config::Secret,
    store::ArtifactId,
    verdict::{ArtifactRef, Outcome, ServiceName, VerdictDraft},
};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn draft() -> VerdictDraft<serde_json::Value> {
    VerdictDraft {
        service: ServiceName::FaceMatch,
        verdict: Outcome::Pass,
        confidence: 0.97,
        reasons: vec![],
        result: serde_json::json!({"similarity": 0.71, "threshold": 0.42}),
        artifacts: vec![ArtifactRef {
            id: ArtifactId::generate("eu".parse().unwrap()),
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            residency: "eu".parse().unwrap(),
        }],
        model: None,
        format: None,
    }
}

fn open(dir: &std::path::Path, ledger: &LedgerTarget) -> Arc<Auditor> {
    Arc::new(
        Auditor::open(
            ServiceName::FaceMatch,
            &dir.join("keys.json"),
            ledger,
            16_384,
            idv_shared::config::AuditSettings::default().checkpoints(),
            idv_shared::clock::SystemClock::shared(),
        )
        .unwrap(),
    )
}

/// Issues verdicts from `concurrency` tasks spread over `auditors` (replicas) and prints one row.
async fn run(backend: &str, auditors: &[Arc<Auditor>], concurrency: usize) {
    let per_task = (4000 / concurrency).max(50);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let auditor = auditors[i % auditors.len()].clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    auditor.issue("bench", draft()).await.unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<f64> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    println!(
        "| {backend} | {concurrency} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
        all.len(),
        all.len() as f64 / wall,
        percentile(&all, 0.50),
        percentile(&all, 0.95),
        percentile(&all, 0.99)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Under target/ so the fsyncs hit the same disk the services use, not a tmpfs.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let file = [open(
        dir.path(),
        &LedgerTarget::File(dir.path().join("ledger.jsonl")),
    )];
    let postgres = std::env::var("IDV_TEST_POSTGRES_URL")
        .ok()
        .map(|url| PostgresLedger {
            url: Secret::new(url),
            chain: format!("bench-{}", ulid::Ulid::new()),
            timeout: std::time::Duration::from_secs(5),
        });
    if let Some(pg) = &postgres {
        idv_shared::audit::ledger::postgres::migrate(pg)
            .await
            .unwrap();
    } else {
        eprintln!("IDV_TEST_POSTGRES_URL is not set: the PostgreSQL rows are skipped");
    }
    let one = postgres
        .as_ref()
        .map(|pg| [open(dir.path(), &LedgerTarget::Postgres(pg.clone()))]);
    // Two replicas on one chain (another chain than the single writer's, so each starts empty).
    let two = postgres.as_ref().map(|pg| {
        let shared = PostgresLedger {
            chain: format!("{}-2", pg.chain),
            ..pg.clone()
        };
        [
            open(dir.path(), &LedgerTarget::Postgres(shared.clone())),
            open(dir.path(), &LedgerTarget::Postgres(shared)),
        ]
    });
    println!("| ledger | concurrency | verdicts | verdicts/s | p50 ms | p95 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for concurrency in [1usize, 16, 64, 256] {
        run("file", &file, concurrency).await;
        if let Some(one) = &one {
            run("postgres, 1 writer", one, concurrency).await;
        }
        if let Some(two) = &two {
            run("postgres, 2 writers on one chain", two, concurrency).await;
        }
    }
    for a in file
        .iter()
        .chain(one.iter().flatten())
        .chain(two.iter().flatten())
    {
        a.shutdown();
    }
}
