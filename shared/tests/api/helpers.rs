use std::{net::SocketAddr, sync::Arc};

use axum::{extract::State, routing::post};
use idv_shared::{
    ApiError, Kernel,
    auth::{
        Authorized, FaceVerify,
        dev::{DevIssuer, MintRequest},
    },
    config::{CommonConfig, RegionStore, Secret},
    http::ApiJson,
    limits::RateLimitSettings,
    store::{ArtifactId, ArtifactKind, S3Settings},
    verdict::{Outcome, ServiceName, Verdict, VerdictDraft},
};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Folder,
    S3,
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub kernel: Arc<Kernel>,
    pub dev: DevIssuer,
    pub dir: tempfile::TempDir,
}

#[derive(Deserialize)]
struct ProbeRequest {
    artifact_id: ArtifactId,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ProbeResult {
    pub bytes: usize,
}

async fn probe(
    State(kernel): State<Arc<Kernel>>,
    caller: Authorized<FaceVerify>,
    ApiJson(req): ApiJson<ProbeRequest>,
) -> Result<ApiJson<Verdict<ProbeResult>>, ApiError> {
    let artifact = kernel
        .stores()
        .fetch(&req.artifact_id, &caller.regions, ArtifactKind::Image)
        .await?;
    let draft = VerdictDraft {
        service: ServiceName::FaceMatch,
        verdict: Outcome::Pass,
        confidence: 1.0,
        reasons: vec![],
        result: ProbeResult {
            bytes: artifact.bytes.len(),
        },
        artifacts: vec![artifact.custody()],
        model: None,
        format: None,
    };
    Ok(ApiJson(
        kernel.auditor().issue(&caller.tenant, draft).await?,
    ))
}

pub struct Options {
    pub backend: Backend,
    pub auth: idv_shared::auth::AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub data_dir: Option<std::path::PathBuf>,
    /// Points the S3 regions at a port where nothing listens.
    pub dead_store: bool,
    /// `http.shutdown_grace_secs`, when not the default.
    pub shutdown_grace_secs: Option<u64>,
    /// Keep the ledger in PostgreSQL at this URL, on this chain, with a 500 ms step deadline.
    pub ledger: Option<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Folder,
            auth: idv_shared::auth::AuthSettings::default(),
            rate_limit: RateLimitSettings::default(),
            data_dir: None,
            dead_store: false,
            shutdown_grace_secs: None,
            ledger: None,
        }
    }
}

/// Where the test SeaweedFS listens; `scripts/test.sh` starts it and exports these.
fn s3_settings(region: &str, endpoint: Option<&str>) -> S3Settings {
    let endpoint = endpoint.map(str::to_owned).unwrap_or_else(|| {
        std::env::var("IDV_TEST_S3_ENDPOINT").expect(
            "IDV_TEST_S3_ENDPOINT is not set: run the suite through scripts/test.sh, which starts SeaweedFS",
        )
    });
    S3Settings {
        bucket: format!("idv-{region}"),
        endpoint: Some(endpoint),
        aws_region: "us-east-1".into(),
        path_style: true,
        prefix: "artifacts/".into(),
        access_key_id: Some(
            std::env::var("IDV_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "idvtestkey".into()),
        ),
        secret_access_key: Some(Secret::new(
            std::env::var("IDV_TEST_S3_SECRET_KEY").unwrap_or_else(|_| "idvtestsecret".into()),
        )),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    let (app, router, listener) = build_app(opts).await;
    tokio::spawn(async move { axum::serve(listener, router).await });
    app
}

/// Builds the app without serving it, for callers that serve it themselves (the crash child).
pub async fn build_app(opts: Options) -> (TestApp, axum::Router, tokio::net::TcpListener) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CommonConfig::for_service(ServiceName::FaceMatch);
    config.data_dir = opts.data_dir.unwrap_or_else(|| dir.path().to_owned());
    config.artifacts.image_max_bytes = 1024 * 1024;
    config.rate_limit = opts.rate_limit;
    config.auth = opts.auth;
    if let Some(grace) = opts.shutdown_grace_secs {
        config.http.shutdown_grace_secs = grace;
    }
    config.log.format = "pretty".into();
    if let Some((url, chain)) = opts.ledger {
        config.audit.ledger_url = Some(Secret::new(url));
        config.audit.ledger_chain = Some(chain);
        config.audit.ledger_timeout_ms = 500;
    }
    if opts.backend == Backend::S3 {
        let dead = opts.dead_store.then_some("http://127.0.0.1:9");
        for region in ["eu", "us"] {
            config
                .regions
                .insert(region.into(), RegionStore::S3(s3_settings(region, dead)));
        }
    } else {
        config
            .regions
            .insert("eu".into(), RegionStore::Local { path: None });
        config
            .regions
            .insert("us".into(), RegionStore::Local { path: None });
    }
    let _ = idv_shared::telemetry::init(&config.log, ServiceName::FaceMatch);
    let dev = DevIssuer::load_or_create(&config.data_dir, idv_shared::clock::SystemClock::shared())
        .unwrap();
    let kernel = Arc::new(Kernel::build(ServiceName::FaceMatch, config).await.unwrap());
    let routes = OpenApiRouter::new().route("/v1/probe", post(probe));
    let doc = idv_shared::kernel::base_openapi(ServiceName::FaceMatch, "test", "kernel test app");
    let (router, _) = idv_shared::kernel::assemble(kernel.clone(), doc, routes, kernel.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (
        TestApp {
            addr,
            client: reqwest::Client::new(),
            kernel,
            dev,
            dir,
        },
        router,
        listener,
    )
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn token(&self, regions: &[&str]) -> String {
        self.token_for("acme", regions, 300)
    }

    /// A token of another tenant (its own rate-limit buckets), valid for `ttl_secs`.
    pub fn token_for(&self, tenant: &str, regions: &[&str], ttl_secs: i64) -> String {
        self.dev
            .mint(&MintRequest {
                audience: "face-match".into(),
                scopes: vec!["face:verify".into()],
                tenant: tenant.into(),
                regions: regions.iter().map(|r| (*r).to_owned()).collect(),
                ttl_secs,
            })
            .unwrap()
    }

    /// A small valid-looking JPEG (signature only: the kernel sniffs, services decode).
    pub fn jpeg(len: usize) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
        b.resize(len.max(4), 0x42);
        b
    }

    pub async fn put(&self, region: &str, bytes: Vec<u8>) -> ArtifactId {
        self.kernel
            .stores()
            .put_new(&region.parse().unwrap(), bytes.into())
            .await
            .unwrap()
    }

    pub async fn probe(&self, token: &str, artifact_id: &str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/probe"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "artifact_id": artifact_id }))
            .send()
            .await
            .unwrap()
    }
}

/// Asserts a problem+json answer with this status and code, carrying the response's request id.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let request_id = res
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["request_id"], request_id.as_str());
    assert!(body["type"].as_str().unwrap().ends_with(code));
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}
