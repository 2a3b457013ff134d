//! Helpers for the services' integration tests (feature `testkit`): a throwaway configuration (memory
//! stores, everything else under a temporary folder), the [`TestApp`] every service's `spawn_app()` builds
//! on, serving on an ephemeral port, the common-endpoint checks and the OpenAPI drift check. Test support: it
//! panics on failure by design.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

mod otlp;

pub use otlp::{OtlpCollector, ReceivedSpan};

use std::{net::SocketAddr, path::Path, sync::Arc};

use crate::{
    Kernel,
    auth::dev::{DevIssuer, MintRequest},
    config::{CommonConfig, RegionStore, Secret},
    store::{ArtifactId, S3Settings},
    verdict::ServiceName,
};

/// Points regions `eu` and `us` at the test SeaweedFS that `scripts/test.sh` starts and exports
/// (`IDV_TEST_S3_*`), under a fresh key prefix so tests never see each other's objects.
pub fn use_test_s3(config: &mut CommonConfig, prefix: &str) {
    let endpoint = std::env::var("IDV_TEST_S3_ENDPOINT").expect(
        "IDV_TEST_S3_ENDPOINT is not set: run the suite through scripts/test.sh, which starts SeaweedFS",
    );
    let key = std::env::var("IDV_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "idvtestkey".into());
    let secret = std::env::var("IDV_TEST_S3_SECRET_KEY").unwrap_or_else(|_| "idvtestsecret".into());
    for region in ["eu", "us"] {
        config.regions.insert(
            region.into(),
            RegionStore::S3(S3Settings {
                bucket: format!("idv-{region}"),
                endpoint: Some(endpoint.clone()),
                aws_region: "us-east-1".into(),
                path_style: true,
                prefix: format!("{prefix}-{}/", ulid::Ulid::new()),
                access_key_id: Some(key.clone()),
                secret_access_key: Some(Secret::new(secret.clone())),
            }),
        );
    }
}

/// A configuration for tests: `eu` and `us` in process memory (with residency tags, as the real stores keep
/// them), keys and the ledger under `data_dir`, readable logs. Tests of the real stores call
/// [`use_test_s3`] or [`use_folder_stores`].
pub fn test_config(service: ServiceName, data_dir: &Path) -> CommonConfig {
    let mut config = CommonConfig::for_service(service);
    config.data_dir = data_dir.to_owned();
    config.log.format = "pretty".into();
    config.log.filter = "warn".into();
    for region in ["eu", "us"] {
        config.regions.insert(region.into(), RegionStore::Memory);
    }
    let _ = crate::telemetry::init(&config.log, service);
    config
}

/// For benchmarks run as replicas run, each shared backend chosen on its own so its cost can be told apart:
/// with `IDV_BENCH_LEDGER_URL=postgres://…` the ledger goes to PostgreSQL (a fresh chain, the table migrated
/// first); with `IDV_BENCH_LIMITS=redis` rate limits go through Redis (`IDV_TEST_REDIS_URL`, default
/// `redis://127.0.0.1:6379`, a fresh prefix), `memory` keeps them in the process. `IDV_BENCH_LIMITS` unset
/// follows the ledger: Redis with PostgreSQL, as replicas run. Returns a label of what it chose (`file, memory`
/// when neither variable is set: the configuration as it was).
pub async fn bench_ledger_from_env(config: &mut CommonConfig, service: ServiceName) -> String {
    let ledger = std::env::var("IDV_BENCH_LEDGER_URL").ok();
    let redis_limits = match std::env::var("IDV_BENCH_LIMITS").as_deref() {
        Ok("redis") => true,
        Ok("memory") => false,
        Ok(other) => panic!("IDV_BENCH_LIMITS must be redis or memory, not {other}"),
        Err(_) => ledger.is_some(),
    };
    if let Some(url) = &ledger {
        config.audit.ledger_url = Some(Secret::new(url.as_str()));
        config.audit.ledger_chain = Some(format!("bench-{}", ulid::Ulid::new()));
        if let crate::audit::LedgerTarget::Postgres(pg) = config.ledger_target(service) {
            crate::audit::ledger::postgres::migrate(&pg)
                .await
                .expect("migrate the PostgreSQL ledger");
        }
    }
    if redis_limits {
        config.rate_limit.redis_url = Some(Secret::new(
            std::env::var("IDV_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        ));
        config.rate_limit.redis_prefix = format!("idvbench:rl:{}", ulid::Ulid::new());
    }
    let ledger = if ledger.is_some() {
        "PostgreSQL"
    } else {
        "a file"
    };
    let limits = if redis_limits { "Redis" } else { "memory" };
    format!("ledger in {ledger}, rate limits in {limits}")
}

/// Points `eu` and `us` at folders under the data dir (`<data_dir>/artifacts/<region>`), for tests where
/// another process (a second replica, `idvctl`) must see the same artifacts.
pub fn use_folder_stores(config: &mut CommonConfig) {
    for region in ["eu", "us"] {
        config
            .regions
            .insert(region.into(), RegionStore::Local { path: None });
    }
}

/// A service running on `127.0.0.1:0` for a test: its kernel, a client, a dev issuer on the kernel's clock
/// (so tokens are current however a test moves time), and the folder its keys and ledger live in. Each
/// service's test helpers wrap it with their own calls.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A plain client.
    pub client: reqwest::Client,
    /// The running service's kernel.
    pub kernel: Arc<Kernel>,
    /// Mints gateway tokens the service trusts.
    pub dev: DevIssuer,
    /// Keys, ledger and any folder store; removed when the last holder is dropped.
    pub dir: Arc<tempfile::TempDir>,
}

impl TestApp {
    /// Serves `router` (built over `kernel`, configured with `dir` as its data dir) on an ephemeral port.
    pub async fn serve(
        kernel: Arc<Kernel>,
        router: axum::Router,
        dir: Arc<tempfile::TempDir>,
    ) -> Self {
        let addr = serve_ephemeral(router)
            .await
            .expect("bind an ephemeral port");
        let dev =
            DevIssuer::load_or_create(dir.path(), kernel.clock().clone()).expect("dev issuer");
        Self {
            addr,
            client: reqwest::Client::new(),
            kernel,
            dev,
            dir,
        }
    }

    /// The URL of `path` on the service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A five-minute token for this service, tenant and regions.
    pub fn mint(&self, tenant: &str, scopes: &[&str], regions: &[&str]) -> String {
        self.dev
            .mint(&MintRequest {
                audience: self.kernel.service().as_str().into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                tenant: tenant.into(),
                regions: regions.iter().map(|r| (*r).to_owned()).collect(),
                ttl_secs: 300,
            })
            .expect("mint a dev token")
    }

    /// Stores `bytes` as a new artifact in `region`.
    pub async fn put(&self, region: &str, bytes: Vec<u8>) -> ArtifactId {
        self.kernel
            .stores()
            .put_new(&region.parse().expect("a region"), bytes.into())
            .await
            .expect("store the artifact")
    }

    /// Verdict entries in the ledger (signed checkpoints are entries too, but carry no verdict).
    pub fn ledger_entries(&self) -> usize {
        self.kernel
            .auditor()
            .ledger_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.contains("\"record\":{\"checkpoint\":"))
            .count()
    }
}

/// A free TCP port on 127.0.0.1 (for a process that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A service binary started as operators start it (configured by its environment only), stopped on drop.
pub struct ServiceProcess {
    /// The process.
    pub process: KillOnDrop,
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub base: String,
}

impl ServiceProcess {
    /// Starts `bin` on a free port with `IDV_DATA_DIR=data_dir`, warnings-only logs and `env` on top, and waits
    /// (up to a minute) until it answers `/readyz` with 200.
    pub async fn start(bin: &str, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = std::process::Command::new(bin)
            .env("IDV_DATA_DIR", data_dir)
            .env("IDV_BIND", format!("127.0.0.1:{port}"))
            .env("IDV_LOG__FILTER", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let mut process = KillOnDrop(child);
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let ready = client.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return Self { process, base };
            }
            if let Ok(Some(status)) = process.0.try_wait() {
                panic!("{bin} exited before it was ready: {status}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{bin} was not ready within a minute"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// The artifact stores of a process started on `data_dir` with the embedded default regions (its folders), to
/// put artifacts in as `idvctl artifact put` would.
pub async fn folder_stores(service: ServiceName, data_dir: &Path) -> crate::store::ArtifactStores {
    let mut config = test_config(service, data_dir);
    use_folder_stores(&mut config);
    crate::kernel::build_stores(&config).await.unwrap()
}

/// Serves a router on `127.0.0.1:0` in the background and returns its address.
pub async fn serve_ephemeral(router: axum::Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

/// Compares the committed `openapi/<service>.json` with the document built from code. With
/// `UPDATE_OPENAPI=1` it rewrites the file instead. Returns a message describing any drift.
pub fn openapi_drift(api: &utoipa::openapi::OpenApi, file: &Path) -> Result<(), String> {
    let generated = api.to_pretty_json().map_err(|e| e.to_string())? + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(file, &generated).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let committed = std::fs::read_to_string(file).unwrap_or_default();
    if committed == generated {
        Ok(())
    } else {
        Err(format!(
            "{} differs from the code's OpenAPI document; regenerate it with `UPDATE_OPENAPI=1 cargo test openapi` \
             and commit the result",
            file.display()
        ))
    }
}

/// Checks what every service serves: health naming the service, readiness, the JWKS, the OpenAPI document
/// equal to `expected`, Swagger UI without a CDN, metrics, and problem+json for unknown routes.
pub async fn assert_common_endpoints(
    addr: SocketAddr,
    service: ServiceName,
    expected: &utoipa::openapi::OpenApi,
) {
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let req = client.get(format!("http://{addr}{path}")).send();
        async move { req.await.expect("request failed") }
    };
    let health: serde_json::Value = get("/healthz").await.json().await.expect("health JSON");
    assert_eq!(health["service"], service.as_str());
    assert_eq!(get("/readyz").await.status(), 200);
    let jwks: serde_json::Value = get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("JWKS JSON");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    let spec: serde_json::Value = get("/openapi.json")
        .await
        .json()
        .await
        .expect("OpenAPI JSON");
    assert_eq!(
        spec,
        serde_json::to_value(expected).expect("OpenAPI"),
        "served spec is the generated one"
    );
    let docs = get("/docs/").await;
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text().await.expect("docs").contains("swagger"),
        "Swagger UI is served locally"
    );
    assert_eq!(get("/metrics").await.status(), 200);
    let missing = get("/v1/nope").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        crate::error::PROBLEM_JSON
    );
}
