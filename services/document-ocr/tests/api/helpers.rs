use std::{path::Path, sync::Arc};

use chrono::NaiveDate;
use document_ocr::{App, SERVICE, config::Settings};
use idv_shared::{
    clock::{ManualClock, SharedClock},
    config::CommonConfig,
    store::ArtifactId,
    testkit,
};
use serde_json::{Value, json};

/// The date the tests run "on", so expiry is deterministic.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

/// A clock standing at midnight of [`today`]: verdicts, tokens and keys are all dated by it.
pub fn clock() -> SharedClock {
    Arc::new(ManualClock::on(today()))
}

pub fn settings() -> Settings {
    let tessdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/tessdata");
    assert!(
        tessdata.join("mrz.traineddata").exists(),
        "{} is missing: run scripts/fetch-models.py (scripts/test.sh does)",
        tessdata.display()
    );
    Settings {
        tessdata,
        workers: 2,
        ..Settings::default()
    }
}

/// The service on an ephemeral port, over the testkit's [`testkit::TestApp`] (kernel, client, dev issuer).
pub struct TestApp(testkit::TestApp);

impl std::ops::Deref for TestApp {
    type Target = testkit::TestApp;
    fn deref(&self) -> &testkit::TestApp {
        &self.0
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut CommonConfig, &mut Settings)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = testkit::test_config(SERVICE, dir.path());
    let mut s = settings();
    configure(&mut config, &mut s);
    let app = App::build_with(config, s, clock()).await.unwrap();
    let (router, _) = app.router();
    TestApp(testkit::TestApp::serve(app.state.kernel.clone(), router, dir).await)
}

/// Both regions on the test SeaweedFS (started and exported by `scripts/test.sh`).
pub fn use_s3(config: &mut CommonConfig) {
    testkit::use_test_s3(config, "ocr");
}

impl TestApp {
    pub fn token(&self) -> String {
        self.mint("acme", &["ocr:verify"], &["eu"])
    }

    pub async fn put(&self, bytes: Vec<u8>) -> ArtifactId {
        self.0.put("eu", bytes).await
    }

    pub async fn ocr(&self, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url("/v1/documents/ocr"))
            .bearer_auth(self.token())
            .json(&body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    pub async fn read(&self, bytes: Vec<u8>) -> (u16, Value) {
        let id = self.put(bytes).await;
        self.ocr(json!({"artifact_id": id.to_string()})).await
    }

    pub fn ledger(&self) -> String {
        self.kernel
            .auditor()
            .ledger_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }
}

pub fn reasons(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["code"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every one of the nine compared fields of a verdict is the printed identity's.
pub fn assert_fields(v: &Value, id: &docgen::Identity) {
    let f = &v["result"]["fields"];
    let code = id.document_code.clone();
    assert_eq!(f["document_code"]["value"], code, "{v}");
    assert_eq!(f["issuing_state"]["value"], id.issuing_state);
    assert_eq!(f["surname"]["value"], id.surname);
    assert_eq!(f["given_names"]["value"], id.given_names);
    assert_eq!(f["document_number"]["value"], id.document_number);
    assert_eq!(f["nationality"]["value"], id.nationality);
    assert_eq!(f["birth_date"]["value"], id.birth_date.to_string());
    assert_eq!(f["expiry_date"]["value"], id.expiry_date.to_string());
    assert_eq!(f["sex"]["value"], id.sex.to_string().replace('<', "X"));
}
