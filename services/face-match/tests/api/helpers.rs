use std::net::SocketAddr;

use face_match::{App, SERVICE, config::Settings};
use idv_shared::testkit;

pub struct TestApp {
    pub addr: SocketAddr,
    pub _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let config = testkit::test_config(SERVICE, dir.path());
    let app = App::build(config, Settings::default()).await.unwrap();
    let (router, _) = app.router();
    let addr = testkit::serve_ephemeral(router).await.unwrap();
    TestApp { addr, _dir: dir }
}
