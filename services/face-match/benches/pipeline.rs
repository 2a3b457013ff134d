//! face-match benchmark: per-stage times, bare ONNX inference per pair, request latency through the whole
//! service (HTTP, auth, store, inference workers, audit ledger) at concurrency 1 and under load, and the Python
//! onnxruntime + OpenCV pipeline doing the same steps on the same pairs, in the same run.
//!
//!   cargo bench -p face-match --bench pipeline            # needs scripts/fetch-models.py --test-photos
//!   FACE_BENCH_ROUNDS=20 FACE_BENCH_LOAD_SECS=20 cargo bench -p face-match --bench pipeline
//!
//! With `IDV_BENCH_LEDGER_URL=postgres://…` the service's ledger is kept in PostgreSQL and its rate limits in
//! Redis, as replicas run (`testkit::bench_ledger_from_env`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use face_match::{
    App, SERVICE,
    config::Settings,
    models::{ModelSet, RuntimeOptions},
    pipeline,
};
use idv_shared::{
    auth::dev::{DevIssuer, MintRequest},
    imaging::DecodeLimits,
    testkit,
};

const PAIRS: &[(&str, &str, bool)] = &[
    ("obama.jpg", "obama2.jpg", true),
    ("obama.jpg", "obama3.jpg", true),
    ("obama2.jpg", "obama3.jpg", true),
    ("obama.jpg", "biden.jpg", false),
    ("obama2.jpg", "biden.jpg", false),
    ("biden.jpg", "yaoming.jpg", false),
    ("obama3.jpg", "yaoming.jpg", false),
    ("obama.jpg", "gdp.jpg", false),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn photo_path(name: &str) -> PathBuf {
    ["face_recognition", "insightface"]
        .iter()
        .map(|d| repo().join(".cache/testdata").join(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} missing: run scripts/fetch-models.py --test-photos"))
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return f64::NAN;
    }
    xs[((p / 100.0) * (xs.len() - 1) as f64).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The manifest under test: `FACE_MANIFEST` (as the service reads it), else the repository's default.
fn manifest() -> PathBuf {
    std::env::var_os("FACE_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models/manifest.toml"))
}

fn settings() -> Settings {
    Settings {
        manifest: manifest(),
        ort_dylib: Some(repo().join(".cache/onnxruntime/libonnxruntime.so")),
        workers: 2,
        ort_threads: 1,
        ..Settings::default()
    }
}

/// Stage times and bare inference, one image at a time on one thread.
fn stages(rounds: u64) -> Vec<f64> {
    let s = settings();
    let options = RuntimeOptions {
        dylib: s.ort_dylib_path(),
        threads: 1,
        slots: 1,
    };
    let set = ModelSet::load(&s.manifest, &options, 1).unwrap();
    let mut sessions = set.sessions(0).unwrap();
    let mut names: Vec<&str> = PAIRS.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
    names.sort_unstable();
    names.dedup();
    println!("## per-stage times, one image at a time (median of {rounds} runs, ms)");
    println!(
        "| image | pixels | decode | detect | align | embed | of which ONNX Runtime | total |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut inference_by_image = std::collections::HashMap::new();
    for name in &names {
        let bytes = std::fs::read(photo_path(name)).unwrap();
        let mut cols: [Vec<f64>; 6] = Default::default();
        let mut dims = (0, 0);
        for _ in 0..rounds {
            let t = Instant::now();
            let a = pipeline::analyse(
                &bytes,
                DecodeLimits::default(),
                &set.manifest,
                &mut sessions,
            )
            .unwrap();
            let total = t.elapsed();
            dims = a.dimensions;
            for (c, d) in cols.iter_mut().zip([
                a.times.decode,
                a.times.detect,
                a.times.align,
                a.times.embed,
                a.times.inference,
                total,
            ]) {
                c.push(ms(d));
            }
        }
        let med: Vec<f64> = cols.iter_mut().map(|c| pct(c, 50.0)).collect();
        inference_by_image.insert(*name, med[4]);
        println!(
            "| {name} | {}×{} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            dims.0, dims.1, med[0], med[1], med[2], med[3], med[4], med[5]
        );
    }
    PAIRS
        .iter()
        .map(|(a, b, _)| inference_by_image[a] + inference_by_image[b])
        .collect()
}

struct Bench {
    addr: std::net::SocketAddr,
    client: reqwest::Client,
    token: String,
    ids: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

async fn serve() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let mut config = testkit::test_config(SERVICE, dir.path());
    // Folder stores, as the benchmarks recorded in docs/benchmarks.md were measured.
    testkit::use_folder_stores(&mut config);
    config.log.filter = "error".into();
    // Load generation is not what is measured here.
    config.rate_limit.requests_per_second = 1_000_000.0;
    config.rate_limit.burst = 1_000_000.0;
    let backends = testkit::bench_ledger_from_env(&mut config, SERVICE).await;
    eprintln!("{backends}");
    let app = App::build(config, settings()).await.unwrap();
    let kernel = app.state.kernel.clone();
    let (router, _) = app.router();
    let addr = testkit::serve_ephemeral(router).await.unwrap();
    let dev =
        DevIssuer::load_or_create(dir.path(), idv_shared::clock::SystemClock::shared()).unwrap();
    let token = dev
        .mint(&MintRequest {
            audience: SERVICE.as_str().into(),
            scopes: vec!["face:verify".into()],
            tenant: "bench".into(),
            regions: vec!["eu".into()],
            ttl_secs: 600,
        })
        .unwrap();
    let eu = "eu".parse().unwrap();
    let mut ids = Vec::new();
    for (a, b, _) in PAIRS {
        let put = |n: &str| {
            let bytes = std::fs::read(photo_path(n)).unwrap();
            let (kernel, eu) = (kernel.clone(), &eu);
            async move {
                kernel
                    .stores()
                    .put_new(eu, bytes.into())
                    .await
                    .unwrap()
                    .to_string()
            }
        };
        ids.push((put(a).await, put(b).await));
    }
    Bench {
        addr,
        client: reqwest::Client::new(),
        token,
        ids,
        _dir: dir,
    }
}

impl Bench {
    async fn call(&self, i: usize) -> (u16, Duration) {
        let (r, p) = &self.ids[i % self.ids.len()];
        let t = Instant::now();
        let resp = self
            .client
            .post(format!("http://{}/v1/faces/match", self.addr))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"reference_artifact_id": r, "probe_artifact_id": p}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let _ = resp.bytes().await;
        (status, t.elapsed())
    }
}

/// The Python peer (SCRFD and ArcFace with onnxruntime and OpenCV); not run when `FACE_MANIFEST` names another
/// manifest, whose detector it does not implement.
fn python(rounds: u64) -> Option<serde_json::Value> {
    if std::env::var_os("FACE_MANIFEST").is_some() {
        return None;
    }
    let py = repo().join(".cache/venv/bin/python");
    let dir = tempfile::tempdir().ok()?;
    let csv = dir.path().join("pairs.csv");
    let lines: Vec<String> = PAIRS
        .iter()
        .map(|(a, b, same)| {
            format!(
                "{},{},{}",
                photo_path(a).display(),
                photo_path(b).display(),
                if *same { "same" } else { "different" }
            )
        })
        .collect();
    std::fs::write(&csv, lines.join("\n")).ok()?;
    let out = std::process::Command::new(py)
        .arg(repo().join("tools/face-reference/face_reference.py"))
        .args(["--manifest"])
        .arg(repo().join("models/manifest.toml"))
        .args(["--threads", "1", "pipeline", "--pairs"])
        .arg(&csv)
        .args(["--repeat", &rounds.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "python pipeline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

#[tokio::main]
async fn main() {
    let rounds = env_num("FACE_BENCH_ROUNDS", 10);
    let load_secs = env_num("FACE_BENCH_LOAD_SECS", 15);
    let mut bare = stages(rounds);
    let bench = Arc::new(serve().await);
    for i in 0..PAIRS.len() {
        bench.call(i).await;
    }
    let mut lat = Vec::new();
    for _ in 0..rounds {
        for i in 0..PAIRS.len() {
            let (status, d) = bench.call(i).await;
            assert_eq!(status, 200);
            lat.push(ms(d));
        }
    }
    let bare50 = pct(&mut bare, 50.0);
    let (p50, p95, p99) = (
        pct(&mut lat, 50.0),
        pct(&mut lat, 95.0),
        pct(&mut lat, 99.0),
    );
    println!(
        "\n## one pair per request, concurrency 1 ({} requests over {} pairs)",
        lat.len(),
        PAIRS.len()
    );
    println!("| measure | p50 ms | p95 ms | p99 ms |");
    println!("|---|---|---|---|");
    println!(
        "| bare ONNX Runtime time of the pair (detector + embedder, both images, one thread) | {bare50:.1} | | |"
    );
    println!(
        "| face-match request (HTTP, auth, store, decode, pipeline on 2 workers, ledger) | {p50:.1} | {p95:.1} | {p99:.1} |"
    );
    let py = python(rounds);
    if let Some(py) = &py {
        let q = &py["latency_ms"];
        println!(
            "| Python onnxruntime + OpenCV pipeline, same steps, in-process, no HTTP | {:.1} | {:.1} | {:.1} |",
            q["p50"].as_f64().unwrap_or(f64::NAN),
            q["p95"].as_f64().unwrap_or(f64::NAN),
            q["p99"].as_f64().unwrap_or(f64::NAN)
        );
        println!(
            "\nrequest p50 / bare inference p50 = {:.2}; Python p50 / request p50 = {:.2}",
            p50 / bare50,
            q["p50"].as_f64().unwrap_or(f64::NAN) / p50
        );
    }

    println!("\n## sustained load, {load_secs} s per concurrency level");
    println!("| concurrency | pairs/s | p50 ms | p95 ms | p99 ms | 503 overloaded |");
    println!("|---|---|---|---|---|---|");
    for concurrency in [2usize, 4, 16] {
        let deadline = Instant::now() + Duration::from_secs(load_secs);
        let mut tasks = Vec::new();
        for w in 0..concurrency {
            let bench = bench.clone();
            tasks.push(tokio::spawn(async move {
                let (mut lat, mut refused, mut i) = (Vec::new(), 0u64, w);
                while Instant::now() < deadline {
                    let (status, d) = bench.call(i).await;
                    i += 1;
                    match status {
                        200 => lat.push(ms(d)),
                        503 => {
                            // Honour the spirit of Retry-After without idling a whole second.
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        s => panic!("status {s}"),
                    }
                }
                (lat, refused)
            }));
        }
        let (mut all, mut refused) = (Vec::new(), 0);
        for t in tasks {
            let (l, r) = t.await.unwrap();
            all.extend(l);
            refused += r;
        }
        let rate = all.len() as f64 / load_secs as f64;
        println!(
            "| {concurrency} | {rate:.1} | {:.1} | {:.1} | {:.1} | {refused} |",
            pct(&mut all, 50.0),
            pct(&mut all, 95.0),
            pct(&mut all, 99.0)
        );
    }
}
