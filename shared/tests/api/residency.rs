//! The residency rules and limits, on the folder backend and on real SeaweedFS.

use bytes::Bytes;
use idv_shared::{store::ArtifactId, verdict::Verdict};

use crate::helpers::{Backend, Options, ProbeResult, TestApp, assert_problem, spawn_app_with};

async fn residency_rules_hold(backend: Backend) {
    let app = spawn_app_with(Options {
        backend,
        ..Default::default()
    })
    .await;
    let bytes = TestApp::jpeg(2048);
    let id = app.put("eu", bytes.clone()).await;

    // Allowed: works, and the custody record names the bytes used.
    let res = app.probe(&app.token(&["eu"]), &id.to_string()).await;
    assert_eq!(res.status(), 200);
    let verdict: Verdict<ProbeResult> = res.json().await.unwrap();
    assert_eq!(verdict.result.bytes, 2048);
    assert_eq!(verdict.artifacts[0].id, id);
    assert_eq!(verdict.artifacts[0].residency.as_str(), "eu");
    assert_eq!(
        verdict.artifacts[0].sha256,
        idv_shared::verdict::sha256_hex(&bytes)
    );

    // A token without the region.
    let res = app.probe(&app.token(&["us"]), &id.to_string()).await;
    assert_problem(res, 403, "residency_violation").await;

    // An object whose own tag disagrees with the region it sits in.
    let liar = ArtifactId::generate("eu".parse().unwrap());
    app.kernel
        .stores()
        .put_raw(
            &"eu".parse().unwrap(),
            &liar.object_key(),
            Bytes::from(TestApp::jpeg(64)),
            &"us".parse().unwrap(),
        )
        .await
        .unwrap();
    let res = app
        .probe(&app.token(&["eu", "us"]), &liar.to_string())
        .await;
    assert_problem(res, 403, "residency_violation").await;

    // A region this deployment does not serve.
    let elsewhere = ArtifactId::generate("ap".parse().unwrap());
    let res = app.probe(&app.token(&["ap"]), &elsewhere.to_string()).await;
    assert_problem(res, 403, "residency_violation").await;

    // Unknown ID, and a string that is no ID at all.
    let unknown = ArtifactId::generate("eu".parse().unwrap());
    let res = app.probe(&app.token(&["eu"]), &unknown.to_string()).await;
    assert_problem(res, 404, "artifact_not_found").await;
    let res = app.probe(&app.token(&["eu"]), "../../etc/passwd").await;
    assert_problem(res, 400, "invalid_request").await;

    // Over the kind's limit (1 MiB in the test config).
    let big = app.put("eu", TestApp::jpeg(1024 * 1024 + 1)).await;
    let res = app.probe(&app.token(&["eu"]), &big.to_string()).await;
    assert_problem(res, 413, "artifact_too_large").await;

    // Content is sniffed: a text file is not an image whatever it is called.
    let text = app.put("eu", b"just some text".to_vec()).await;
    let res = app.probe(&app.token(&["eu"]), &text.to_string()).await;
    assert_problem(res, 415, "unsupported_media").await;
}

#[tokio::test]
async fn residency_rules_hold_on_the_folder_backend() {
    residency_rules_hold(Backend::Folder).await;
}

#[tokio::test]
async fn residency_rules_hold_on_seaweedfs() {
    residency_rules_hold(Backend::S3).await;
}

#[tokio::test]
async fn a_store_that_is_down_answers_store_unavailable_and_readyz_says_so() {
    let app = spawn_app_with(Options {
        backend: Backend::S3,
        dead_store: true,
        ..Default::default()
    })
    .await;
    let id = ArtifactId::generate("eu".parse().unwrap());
    let res = app.probe(&app.token(&["eu"]), &id.to_string()).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503, "store_unavailable").await;
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    let body = assert_problem(res, 503, "store_unavailable").await;
    assert!(body["detail"].as_str().unwrap().contains("eu"));
}

#[tokio::test]
async fn readyz_is_ready_when_every_store_answers() {
    for backend in [Backend::Folder, Backend::S3] {
        let app = spawn_app_with(Options {
            backend,
            ..Default::default()
        })
        .await;
        let res = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{backend:?}");
    }
}
