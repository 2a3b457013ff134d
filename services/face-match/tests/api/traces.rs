//! Traces as an operator gets them: the real binary, `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP
//! receiver, one request carrying a caller's `traceparent`.

use std::time::Duration;

use idv_shared::{
    auth::dev::{DevIssuer, MintRequest},
    clock::SystemClock,
    testkit::{self, OtlpCollector, ReceivedSpan, ServiceProcess},
};
use serde_json::{Value, json};

use crate::helpers::{photo, settings};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Whether `span` descends from the span `ancestor` within `spans`.
fn descends(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &str) -> bool {
    let mut parent = span.parent_span_id.clone();
    for _ in 0..spans.len() {
        if parent == ancestor {
            return true;
        }
        match spans.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

#[tokio::test]
async fn a_match_is_one_server_span_under_the_callers_trace_with_its_stages_and_no_secrets() {
    let collector = OtlpCollector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = settings();
    let (manifest, ort) = (
        s.manifest.display().to_string(),
        s.ort_dylib.unwrap().display().to_string(),
    );
    let service = ServiceProcess::start(
        env!("CARGO_BIN_EXE_face-match"),
        dir.path(),
        &[
            ("FACE_MANIFEST", &manifest),
            ("FACE_ORT_DYLIB", &ort),
            ("FACE_WORKERS", "2"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let stores = testkit::folder_stores(face_match::SERVICE, dir.path()).await;
    let eu = "eu".parse().unwrap();
    let reference = stores
        .put_new(&eu, photo("obama.jpg").into())
        .await
        .unwrap();
    let probe = stores
        .put_new(&eu, photo("obama2.jpg").into())
        .await
        .unwrap();
    let dev = DevIssuer::load_or_create(dir.path(), SystemClock::shared()).unwrap();
    let token = dev
        .mint(&MintRequest {
            audience: face_match::SERVICE.as_str().into(),
            scopes: vec!["face:verify".into()],
            tenant: "acme".into(),
            regions: vec!["eu".into()],
            ttl_secs: 300,
        })
        .unwrap();

    let res = reqwest::Client::new()
        .post(format!("{}/v1/faces/match", service.base))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({
            "reference_artifact_id": reference.to_string(),
            "probe_artifact_id": probe.to_string(),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answered = res.headers()["traceparent"].to_str().unwrap().to_owned();
    let verdict: Value = res.json().await.unwrap();
    assert_eq!(verdict["verdict"], "pass", "{verdict}");
    let parts: Vec<&str> = answered.split('-').collect();
    assert_eq!(parts[1], TRACE, "the answer continues the caller's trace");
    assert_ne!(parts[2], CALLER_SPAN, "and names the server's own span");

    let stages = [
        "artifact.fetch",
        "analyse",
        "decode",
        "detect",
        "align",
        "embed",
        "ledger.commit",
    ];
    let mut wanted = vec!["POST /v1/faces/match"];
    wanted.extend(stages);
    let spans = collector
        .wait_for_trace(TRACE, &wanted, Duration::from_secs(20))
        .await;

    let server = spans
        .iter()
        .find(|s| s.name == "POST /v1/faces/match")
        .unwrap();
    assert_eq!(server.service, "face-match");
    assert_eq!(server.kind, 2, "a server span");
    assert_eq!(server.parent_span_id, CALLER_SPAN);
    assert_eq!(server.span_id, parts[2]);
    assert_eq!(server.attribute("http.route"), Some("/v1/faces/match"));
    assert_eq!(server.attribute("http.request.method"), Some("POST"));
    assert_eq!(server.attribute("http.response.status_code"), Some("200"));
    assert_eq!(server.attribute("idv.verdict"), Some("pass"));
    let model = verdict["model"]["name"].as_str().unwrap();
    assert!(
        server.attribute("idv.model").unwrap().starts_with(model),
        "{server:?}"
    );
    for stage in stages {
        for span in spans.iter().filter(|s| s.name == stage) {
            assert!(
                descends(&spans, span, &server.span_id),
                "{stage} is not under the server span: {span:?}"
            );
        }
    }
    let fetches: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "artifact.fetch")
        .collect();
    assert_eq!(fetches.len(), 2, "one fetch per artifact");
    assert!(fetches.iter().all(|s| s.attribute("region") == Some("eu")));
    assert_eq!(
        spans.iter().filter(|s| s.name == "analyse").count(),
        2,
        "one analysis per image"
    );

    // Nothing secret or personal in any span: not the token (nor its signature), not the artifact ids' bytes.
    let signature = token.rsplit('.').next().unwrap();
    for span in &spans {
        let text = span.all_text();
        assert!(
            !text.contains(&token) && !text.contains(signature),
            "{span:?}"
        );
        assert!(!text.to_lowercase().contains("bearer"), "{span:?}");
        assert!(
            span.attributes.iter().all(|(_, v)| v.len() < 200),
            "no long values (image bytes, tokens): {span:?}"
        );
    }
}
