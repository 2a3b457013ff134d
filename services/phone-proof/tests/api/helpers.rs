use std::{path::PathBuf, sync::Arc, time::Duration};

use idv_shared::clock::ManualClock;
use idv_shared::{
    auth::dev::{DevIssuer, MintRequest},
    config::{CommonConfig, Secret},
    store::ArtifactId,
    testkit,
};
use phone_proof::{App, Overrides, SERVICE, config::Settings};
use serde_json::{Value, json};

/// Which challenge store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
}

/// The Redis the tests use: the machine's (or `IDV_TEST_REDIS_URL`), with a fresh key prefix per app.
pub fn redis_url() -> String {
    std::env::var("IDV_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The service on an ephemeral port, over the testkit's [`testkit::TestApp`], with the manual clock it runs
/// on and its outbox.
pub struct TestApp {
    base: testkit::TestApp,
    pub clock: Arc<ManualClock>,
    pub outbox: PathBuf,
}

impl std::ops::Deref for TestApp {
    type Target = testkit::TestApp;
    fn deref(&self) -> &testkit::TestApp {
        &self.base
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Backend::Memory, |_, _| {}).await
}

pub fn settings_for(backend: Backend) -> Settings {
    let mut settings = Settings {
        redis_url: None,
        ..Settings::default()
    };
    if backend == Backend::Redis {
        settings.redis_url = Some(Secret::new(redis_url()));
        settings.redis_prefix = format!("idvtest:{}", ulid::Ulid::new());
    }
    settings
}

pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut CommonConfig, &mut Settings),
) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = testkit::test_config(SERVICE, dir.path());
    let mut settings = settings_for(backend);
    configure(&mut config, &mut settings);
    spawn_in(dir, config, settings).await
}

pub async fn spawn_in(
    dir: Arc<tempfile::TempDir>,
    config: CommonConfig,
    settings: Settings,
) -> TestApp {
    let clock = Arc::new(ManualClock::default());
    let outbox = dir.path().join("outbox").join("phone-proof.jsonl");
    let app = App::build_with(
        config,
        settings,
        Overrides {
            clock: Some(clock.clone()),
        },
    )
    .await
    .unwrap();
    let (router, _) = app.router();
    TestApp {
        base: testkit::TestApp::serve(app.state.kernel.clone(), router, dir).await,
        clock,
        outbox,
    }
}

pub const ALL_SCOPES: &[&str] = &["phone:challenge", "phone:verify"];

impl TestApp {
    pub fn token_for(&self, tenant: &str, scopes: &[&str]) -> String {
        self.mint(tenant, scopes, &["eu"])
    }

    /// Tenant `acme`, both phone scopes, region `eu`.
    pub fn token(&self) -> String {
        self.token_for("acme", ALL_SCOPES)
    }

    pub async fn put_phone(&self, number: &str) -> ArtifactId {
        self.put_json(json!({ "phone_number": number })).await
    }

    pub async fn put_json(&self, v: Value) -> ArtifactId {
        self.put("eu", serde_json::to_vec(&v).unwrap()).await
    }

    pub async fn create(&self, token: &str, artifact: &ArtifactId) -> reqwest::Response {
        self.create_with(token, artifact, None).await
    }

    pub async fn create_with(
        &self,
        token: &str,
        artifact: &ArtifactId,
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/v1/phone/challenges"))
            .bearer_auth(token)
            .json(&json!({ "phone_artifact_id": artifact.to_string(), "channel": "sms" }));
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        req.send().await.unwrap()
    }

    /// Creates a challenge for a fresh artifact of `number` and returns its id.
    pub async fn challenge(&self, token: &str, number: &str) -> String {
        let art = self.put_phone(number).await;
        let res = self.create(token, &art).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let body: Value = res.json().await.unwrap();
        body["challenge_id"].as_str().unwrap().to_owned()
    }

    pub async fn verify(&self, token: &str, id: &str, code: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/phone/challenges/{id}/verify")))
            .bearer_auth(token)
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap()
    }

    /// Verifies and expects a verdict (200); returns it.
    pub async fn verdict(&self, token: &str, id: &str, code: &str) -> Value {
        let res = self.verify(token, id, code).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        res.json().await.unwrap()
    }

    pub async fn get(&self, token: &str, id: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/phone/challenges/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn status(&self, token: &str, id: &str) -> String {
        let res = self.get(token, id).await;
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        v["status"].as_str().unwrap().to_owned()
    }

    pub async fn resend(&self, token: &str, id: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/phone/challenges/{id}/resend")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn cancel(&self, token: &str, id: &str) -> reqwest::Response {
        self.client
            .delete(self.url(&format!("/v1/phone/challenges/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Every message the outbox holds for a challenge, oldest first.
    pub fn messages(&self, id: &str) -> Vec<Value> {
        outbox_messages(&self.outbox, id)
    }

    /// The code last sent for a challenge, read from the outbox as the README shows.
    pub fn code(&self, id: &str) -> String {
        let m = self.messages(id);
        m.last().expect("a message in the outbox")["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    /// Verdict entries in the ledger (signed checkpoints are entries too, but carry no verdict).
    pub fn ledger_lines(&self) -> usize {
        self.ledger_entries()
    }
}

pub fn mint(dev: &DevIssuer, tenant: &str, scopes: &[&str]) -> String {
    dev.mint(&MintRequest {
        audience: SERVICE.as_str().into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        tenant: tenant.into(),
        regions: vec!["eu".into()],
        ttl_secs: 300,
    })
    .unwrap()
}

pub fn outbox_messages(outbox: &std::path::Path, id: &str) -> Vec<Value> {
    std::fs::read_to_string(outbox)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["challenge_id"] == id)
        .collect()
}

/// A code that is certainly not `code` (same length).
pub fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect()
}

/// Runs each named scenario (an `async fn(Backend)`) once per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name($crate::helpers::Backend::Memory).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $name() { super::$name($crate::helpers::Backend::Redis).await })*
        }
    };
}
