//! Traces of a phone proof as an operator gets them: the real binary on Redis, its codes sent to a local SMS
//! gateway, `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP receiver. The spans carry the steps (artifact
//! fetch, Redis, webhook delivery, ledger) and never the number, the code, the token or the signing secret.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use idv_shared::{
    auth::dev::DevIssuer,
    clock::SystemClock,
    testkit::{self, OtlpCollector, ServiceProcess},
};
use phone_proof::SERVICE;
use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, mint, redis_url, wrong};

const NUMBER: &str = "+4915112345678";

#[tokio::test]
async fn a_phone_proof_is_traced_step_by_step_without_the_number_or_the_code() {
    let collector = OtlpCollector::start().await;
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let gateway = Router::new()
        .route(
            "/sms",
            post(
                async |State(r): State<Arc<Mutex<Vec<Bytes>>>>, body: Bytes| {
                    r.lock().unwrap().push(body);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(received.clone());
    let gateway = testkit::serve_ephemeral(gateway).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("whsec_{}", B64.encode(b"trace-test-signing-key-0123456789"));
    let (redis, prefix) = (redis_url(), format!("idvtest:{}", ulid::Ulid::new()));
    let sms = format!("http://{gateway}/sms");
    let service = ServiceProcess::start(
        env!("CARGO_BIN_EXE_phone-proof"),
        dir.path(),
        &[
            ("PHONE_REDIS_URL", &redis),
            ("PHONE_REDIS_PREFIX", &prefix),
            ("PHONE_SENDER__KIND", "webhook"),
            ("PHONE_SENDER__WEBHOOK_URL", &sms),
            ("PHONE_SENDER__WEBHOOK_SECRETS", &secret),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let stores = testkit::folder_stores(SERVICE, dir.path()).await;
    let art = stores
        .put_new(
            &"eu".parse().unwrap(),
            serde_json::to_vec(&json!({ "phone_number": NUMBER }))
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    let dev = DevIssuer::load_or_create(dir.path(), SystemClock::shared()).unwrap();
    let token = mint(&dev, "acme", ALL_SCOPES);
    let client = reqwest::Client::new();
    let call = |path: &str, body: Value, trace: &str| {
        client
            .post(format!("{}{path}", service.base))
            .bearer_auth(&token)
            .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
            .json(&body)
            .send()
    };

    let created = call(
        "/v1/phone/challenges",
        json!({ "phone_artifact_id": art.to_string(), "channel": "sms" }),
        &"a".repeat(32),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["challenge_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let event: Value = serde_json::from_slice(&received.lock().unwrap()[0]).unwrap();
    let code = event["data"]["code"].as_str().unwrap().to_owned();
    let verify = format!("/v1/phone/challenges/{id}/verify");
    let v: Value = call(&verify, json!({ "code": wrong(&code) }), &"b".repeat(32))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["verdict"], "fail");
    let v: Value = call(&verify, json!({ "code": code }), &"c".repeat(32))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["verdict"], "pass", "{v}");

    let wait = Duration::from_secs(20);
    let create = collector
        .wait_for_trace(
            &"a".repeat(32),
            &[
                "POST /v1/phone/challenges",
                "artifact.fetch",
                "redis.create",
                "webhook.deliver",
            ],
            wait,
        )
        .await;
    let failed = collector
        .wait_for_trace(
            &"b".repeat(32),
            &[
                "POST /v1/phone/challenges/{id}/verify",
                "redis.begin_check",
                "redis.finish_check",
                "ledger.commit",
            ],
            wait,
        )
        .await;
    let passed = collector
        .wait_for_trace(&"c".repeat(32), &["ledger.commit"], wait)
        .await;
    let server = |spans: &[testkit::ReceivedSpan]| {
        spans
            .iter()
            .find(|s| s.kind == 2)
            .cloned()
            .unwrap_or_else(|| panic!("no server span in {spans:?}"))
    };
    assert_eq!(server(&failed).attribute("idv.verdict"), Some("fail"));
    assert_eq!(server(&passed).attribute("idv.verdict"), Some("pass"));
    assert_eq!(
        server(&create).attribute("http.response.status_code"),
        Some("201")
    );

    // Not the number in any spelling, not the code, not the token or the webhook secret. Digits count only as a
    // whole number, so that a timing such as `busy_ns=41234567` cannot pass for the code by chance.
    let digits = NUMBER.trim_start_matches('+');
    let signature = token.rsplit('.').next().unwrap();
    for span in collector.spans() {
        let text = span.all_text();
        for number in [digits, &digits[2..], &code] {
            assert!(!has_number(&text, number), "{number} in {span:?}");
        }
        for secret in [signature, &secret] {
            assert!(!text.contains(secret), "a secret in {span:?}");
        }
    }
}

/// Whether `number` occurs in `text` not as part of a longer run of digits.
fn has_number(text: &str, number: &str) -> bool {
    text.match_indices(number).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + number.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test]
async fn spans_not_yet_exported_leave_at_shutdown() {
    let collector = OtlpCollector::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Batches every ten minutes: only the shutdown's flush can deliver within the test.
    let mut service = ServiceProcess::start(
        env!("CARGO_BIN_EXE_phone-proof"),
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    )
    .await;
    let trace = "d".repeat(32);
    let res = reqwest::Client::new()
        .get(format!("{}/healthz", service.base))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pid = service.process.0.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let exited = tokio::task::spawn_blocking(move || {
        let status = service.process.0.wait();
        (service, status)
    })
    .await
    .unwrap();
    assert!(exited.1.unwrap().success(), "a clean exit on SIGTERM");
    let spans = collector
        .wait_for_trace(&trace, &["GET /healthz"], Duration::from_secs(5))
        .await;
    assert_eq!(spans[0].kind, 2);
}
