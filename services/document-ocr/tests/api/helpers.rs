use std::net::SocketAddr;

use document_ocr::{App, SERVICE, config::Settings};
use idv_shared::testkit;

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub app_state: document_ocr::AppState,
    pub _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let config = testkit::test_config(SERVICE, dir.path());
    let app = App::build(config, Settings::default()).await.unwrap();
    let (router, _) = app.router();
    let addr = testkit::serve_ephemeral(router).await.unwrap();
    TestApp {
        addr,
        client: reqwest::Client::new(),
        app_state: app.state,
        _dir: dir,
    }
}
