//! `idvctl sms-sink`: a stand-in for an SMS gateway, for local runs and load tests. It accepts phone-proof's
//! signed CloudEvents, refuses unsigned or forged ones, and hands the last code of a challenge to whoever asks
//! (`GET /codes/{challenge_id}`), the way a test phone would. Codes live in memory only, in a bounded map.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use anyhow::Context;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use idv_shared::webhook::{self, SigningSecret};
use serde_json::{Value, json};

/// Codes kept at most; the oldest go first.
const CAPACITY: usize = 1_000_000;

#[derive(Default)]
struct Codes {
    by_challenge: HashMap<String, String>,
    order: VecDeque<String>,
}

#[derive(Clone)]
struct Sink {
    secrets: Arc<Vec<SigningSecret>>,
    codes: Arc<Mutex<Codes>>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn receive(State(sink): State<Sink>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signed = webhook::verify(
        &sink.secrets,
        header(&headers, "webhook-id"),
        header(&headers, "webhook-timestamp"),
        header(&headers, "webhook-signature"),
        &body,
        idv_shared::clock::Clock::now_secs(&idv_shared::clock::SystemClock),
    );
    if !signed {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let (Some(id), Some(code)) = (
        event["data"]["challenge_id"].as_str(),
        event["data"]["code"].as_str(),
    ) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut codes = sink.codes.lock().unwrap_or_else(|p| p.into_inner());
    if codes
        .by_challenge
        .insert(id.to_owned(), code.to_owned())
        .is_none()
    {
        codes.order.push_back(id.to_owned());
        if codes.order.len() > CAPACITY
            && let Some(old) = codes.order.pop_front()
        {
            codes.by_challenge.remove(&old);
        }
    }
    StatusCode::NO_CONTENT
}

async fn code(State(sink): State<Sink>, Path(id): Path<String>) -> Result<Json<Value>, StatusCode> {
    let codes = sink.codes.lock().unwrap_or_else(|p| p.into_inner());
    codes
        .by_challenge
        .get(&id)
        .map(|c| Json(json!({ "challenge_id": id, "code": c })))
        .ok_or(StatusCode::NOT_FOUND)
}

/// Serves the sink until interrupted.
pub async fn run(listen: SocketAddr, secrets: &str) -> anyhow::Result<()> {
    let secrets = secrets
        .split(',')
        .map(SigningSecret::parse)
        .collect::<Option<Vec<_>>>()
        .context("secrets must be whsec_<base64> keys, comma-separated")?;
    let sink = Sink {
        secrets: Arc::new(secrets),
        codes: Arc::default(),
    };
    let app = Router::new()
        .route("/sms", post(receive))
        .route("/codes/{id}", get(code))
        .with_state(sink);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("bind {listen}"))?;
    eprintln!("sms-sink: POST http://{listen}/sms, GET http://{listen}/codes/{{challenge_id}}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
