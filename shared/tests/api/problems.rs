//! Every failure is problem+json with a stable code and the request id.

use idv_shared::limits::RateLimitSettings;

use crate::helpers::{Options, TestApp, assert_problem, spawn_app, spawn_app_with};

/// The service's Prometheus text.
async fn metrics(app: &TestApp) -> String {
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    res.text().await.unwrap()
}

#[tokio::test]
async fn malformed_json_wrong_types_and_wrong_content_type() {
    let app = spawn_app().await;
    let token = app.token(&["eu"]);
    let post = |body: &'static str, ct: &'static str| {
        app.client
            .post(app.url("/v1/probe"))
            .bearer_auth(&token)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_problem(
        post("{\"artifact_id\": ", "application/json")
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_problem(
        post("{\"artifact_id\": 42}", "application/json")
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_problem(
        post("{}", "application/json").await.unwrap(),
        400,
        "invalid_request",
    )
    .await;
    assert_problem(
        post("artifact_id=x", "text/plain").await.unwrap(),
        415,
        "unsupported_media",
    )
    .await;
}

#[tokio::test]
async fn oversized_body_unknown_route_and_wrong_method() {
    let app = spawn_app().await;
    let huge = format!("{{\"artifact_id\": \"{}\"}}", "A".repeat(200 * 1024));
    let res = app
        .client
        .post(app.url("/v1/probe"))
        .bearer_auth(app.token(&["eu"]))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(res, 413, "payload_too_large").await;
    let res = app
        .client
        .get(app.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
    let res = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_problem(res, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_per_tenant() {
    let app = spawn_app_with(Options {
        rate_limit: RateLimitSettings {
            requests_per_second: 0.2,
            burst: 2.0,
            max_keys: 100,
            ..RateLimitSettings::default()
        },
        ..Default::default()
    })
    .await;
    let id = app.put("eu", TestApp::jpeg(64)).await.to_string();
    let token = app.token(&["eu"]);
    for _ in 0..2 {
        assert_eq!(app.probe(&token, &id).await.status(), 200);
    }
    let res = app.probe(&token, &id).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_problem(res, 429, "rate_limited").await;
    // Another tenant is not locked out by the first one's traffic.
    let other = app.token_for("globex", &["eu"], 60);
    assert_eq!(app.probe(&other, &id).await.status(), 200);
}

#[tokio::test]
async fn request_ids_and_traceparent_are_propagated() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "gw-req-123")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "gw-req-123");
    let tp = res.headers()["traceparent"].to_str().unwrap();
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && !tp.contains("00f067aa0ba902b7"),
        "{tp}"
    );
    // A request id that could smuggle text into logs is replaced.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\tc{}")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "a b\tc{}");
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains("http_request_duration_seconds"),
        "{metrics}"
    );
}

#[tokio::test]
async fn documentation_answers_through_the_middleware_and_unknown_files_are_problems() {
    let app = spawn_app().await;
    for path in ["/openapi.json", "/docs/"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.headers().contains_key("x-request-id"), "{path}");
    }
    for path in [
        "/docs/no-such-file.js",
        "/docs/%2e%2e/%2e%2e/etc/passwd",
        "/docs/..%2f..%2fCargo.toml",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_problem(res, 404, "not_found").await;
    }
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains("/openapi.json"),
        "documentation requests are counted"
    );
}

#[tokio::test]
async fn readyz_says_not_ready_for_a_component_that_is_not() {
    let app = spawn_app().await;
    app.kernel.set_ready("models", false);
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    let body = assert_problem(res, 503, "not_ready").await;
    assert!(body["detail"].as_str().unwrap().contains("models"));
    app.kernel.set_ready("models", true);
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
