use document_ocr::{SERVICE, openapi};

use crate::helpers::spawn_app;

#[test]
fn openapi_file_matches_the_code() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../openapi")
        .join(format!("{SERVICE}.json"));
    idv_shared::testkit::openapi_drift(&openapi(), &file).unwrap();
}

#[tokio::test]
async fn common_endpoints_answer() {
    let app = spawn_app().await;
    idv_shared::testkit::assert_common_endpoints(app.addr, SERVICE, &openapi()).await;
}

#[tokio::test]
async fn readyz_answers_503_while_the_ocr_workers_have_no_engines() {
    use std::sync::Arc;

    use document_ocr::{App, ocr::engine::Engines};
    use idv_shared::{Kernel, testkit, workers::WorkerPool};

    let dir = tempfile::tempdir().unwrap();
    let config = testkit::test_config(SERVICE, dir.path());
    let kernel = Arc::new(Kernel::build(SERVICE, config).await.unwrap());
    // Workers whose engines fail to load, as when the language data vanished after start-up.
    let pool = WorkerPool::<Engines>::start("ocr", 2, 4, |_| Err("no language data")).unwrap();
    let app = App::from_parts(kernel, crate::helpers::settings(), pool);
    let (router, _) = app.router();
    let addr = testkit::serve_ephemeral(router).await.unwrap();
    let resp = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "not_ready", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("ocr"), "{body}");
    // Liveness is another question: the process answers.
    let live = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
}
