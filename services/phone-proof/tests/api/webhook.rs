//! The webhook sender against a local HTTP receiver standing in for the SMS gateway: Standard Webhooks
//! signatures (checked here independently), CloudEvents fields, retries, and a delivery that finally fails.

use idv_shared::clock::Clock as _;
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac};
use idv_shared::config::Secret;
use phone_proof::config::SenderKind;
use serde_json::Value;
use sha2::Sha256;

use crate::helpers::{Backend, spawn_app_with};

const KEY_OLD: &[u8] = b"old-signing-key-0123456789abcdef";
const KEY_NEW: &[u8] = b"new-signing-key-0123456789abcdef";

#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    /// Answers this status to the first `fail_first` requests.
    fail_first: Arc<AtomicUsize>,
    fail_status: u16,
}

async fn receive(State(g): State<Gateway>, headers: HeaderMap, body: Bytes) -> StatusCode {
    g.received.lock().unwrap().push((headers, body));
    let left = g.fail_first.load(Ordering::SeqCst);
    if left > 0 {
        g.fail_first.store(left - 1, Ordering::SeqCst);
        return StatusCode::from_u16(g.fail_status).unwrap();
    }
    StatusCode::NO_CONTENT
}

async fn gateway(fail_first: usize, fail_status: u16) -> (Gateway, String) {
    let g = Gateway {
        fail_first: Arc::new(AtomicUsize::new(fail_first)),
        fail_status,
        ..Gateway::default()
    };
    let router = Router::new()
        .route("/sms", post(receive))
        .with_state(g.clone());
    let addr = idv_shared::testkit::serve_ephemeral(router).await.unwrap();
    (g, format!("http://{addr}/sms"))
}

fn whsec(key: &[u8]) -> String {
    format!("whsec_{}", B64.encode(key))
}

/// The Standard Webhooks check, written from the spec rather than calling the service's code.
fn signature_valid(headers: &HeaderMap, body: &[u8], key: &[u8]) -> bool {
    let id = headers["webhook-id"].to_str().unwrap();
    let ts = headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}

async fn app_with_gateway(url: String) -> crate::helpers::TestApp {
    spawn_app_with(Backend::Memory, move |_, s| {
        s.sender.kind = SenderKind::Webhook;
        s.sender.webhook_url = Some(url);
        s.sender.webhook_secrets = Some(Secret::new(format!(
            "{},{}",
            whsec(KEY_NEW),
            whsec(KEY_OLD)
        )));
        s.sender.webhook_backoff_ms = 10;
        s.sender.webhook_attempts = 3;
    })
    .await
}

#[tokio::test]
async fn signed_cloudevent_is_retried_until_the_gateway_takes_it() {
    let (g, url) = gateway(2, 503).await;
    let app = app_with_gateway(url).await;
    let token = app.token();
    let id = app.challenge(&token, "+4915112345678").await;

    let received = g.received.lock().unwrap().clone();
    assert_eq!(received.len(), 3, "two 503s, then accepted");
    let first_id = received[0].0["webhook-id"].clone();
    for (headers, body) in &received {
        assert_eq!(
            headers["webhook-id"], first_id,
            "retries keep the message id"
        );
        assert_eq!(headers["idempotency-key"], first_id);
        assert_eq!(headers["content-type"], "application/cloudevents+json");
        assert!(
            signature_valid(headers, body, KEY_NEW),
            "signed with the new key"
        );
        assert!(
            signature_valid(headers, body, KEY_OLD),
            "and the old one, for rotation"
        );
        assert!(!signature_valid(
            headers,
            body,
            b"some-other-key-0123456789abcdef"
        ));
        let ts: i64 = headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // Dated by the service's one clock (a manual one here, which nothing moved).
        assert_eq!(ts, app.clock.now_secs());
    }
    let event: Value = serde_json::from_slice(&received[2].1).unwrap();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], first_id.to_str().unwrap());
    assert_eq!(event["type"], "com.idv.phone.otp.delivery_requested");
    assert_eq!(event["source"], "urn:idv:phone-proof");
    assert_eq!(event["subject"], id);
    assert_eq!(event["datacontenttype"], "application/json");
    assert!(event["time"].is_string());
    assert_eq!(event["data"]["to"], "+4915112345678");
    assert_eq!(event["data"]["channel"], "sms");
    let code = event["data"]["code"].as_str().unwrap();
    assert!(!app.outbox.exists(), "the webhook sender writes no outbox");
    assert_eq!(app.verdict(&token, &id, code).await["verdict"], "pass");
}

#[tokio::test]
async fn a_delivery_that_finally_fails_fails_the_challenge() {
    let (g, url) = gateway(usize::MAX, 500).await;
    let app = app_with_gateway(url).await;
    let token = app.token();
    let art = app.put_phone("+4915112345678").await;
    let res = app.create(&token, &art).await;
    assert_eq!(res.status(), 502);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "delivery_failed"
    );
    let received = g.received.lock().unwrap().clone();
    assert_eq!(received.len(), 3, "bounded retries");
    let event: Value = serde_json::from_slice(&received[0].1).unwrap();
    let id = event["subject"].as_str().unwrap();
    let code = event["data"]["code"].as_str().unwrap();
    assert_eq!(app.status(&token, id).await, "failed");
    let v = app.verdict(&token, id, code).await;
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["reasons"][0]["code"], "challenge_failed");
}

#[tokio::test]
async fn a_gateway_refusal_is_not_retried() {
    let (g, url) = gateway(usize::MAX, 400).await;
    let app = app_with_gateway(url).await;
    let art = app.put_phone("+4915112345678").await;
    assert_eq!(app.create(&app.token(), &art).await.status(), 502);
    assert_eq!(g.received.lock().unwrap().len(), 1);
}
