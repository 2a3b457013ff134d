//! The auth table: every way a gateway token can be wrong gets its 401/403.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use idv_shared::audit::KeyRing;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app};

fn sign_raw(dev: &idv_shared::auth::dev::DevIssuer, claims: &Value) -> String {
    dev.sign_raw(claims).unwrap()
}

fn now() -> i64 {
    idv_shared::clock::Clock::now_secs(&idv_shared::clock::SystemClock)
}

fn claims(overrides: Value) -> Value {
    let mut c = json!({
        "iss": "idv-dev-issuer", "aud": "face-match", "sub": "gw", "iat": now(), "exp": now() + 300,
        "scope": "face:verify", "tenant": "acme", "residency": ["eu"],
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

async fn call(app: &TestApp, id: &str, authorization: Option<String>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/v1/probe"))
        .json(&json!({ "artifact_id": id }));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_code() {
    let app = spawn_app().await;
    let id = app.put("eu", TestApp::jpeg(100)).await.to_string();
    let bearer = |t: String| Some(format!("Bearer {t}"));

    // The baseline passes, so the refusals below are about the one thing each changes.
    let res = call(&app, &id, bearer(sign_raw(&app.dev, &claims(json!({}))))).await;
    assert_eq!(res.status(), 200);

    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = KeyRing::load_or_create(
        &stranger_dir.path().join("k.json"),
        &idv_shared::clock::SystemClock,
    )
    .unwrap();
    let unsigned = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(claims(json!({})).to_string())
    );
    let hs256_with_public_key = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(app.dev.kid().to_owned());
        let key = jsonwebtoken::EncodingKey::from_secret(app.dev.public_key_b64().as_bytes());
        jsonwebtoken::encode(&header, &claims(json!({})), &key).unwrap()
    };

    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("missing header", None, 401, "unauthorized"),
        (
            "malformed header",
            Some("Bearer".into()),
            401,
            "unauthorized",
        ),
        (
            "wrong scheme",
            Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l".into()),
            401,
            "unauthorized",
        ),
        (
            "garbage token",
            bearer("not.a.jwt".into()),
            401,
            "unauthorized",
        ),
        (
            "expired",
            bearer(sign_raw(
                &app.dev,
                &claims(json!({"iat": now() - 600, "exp": now() - 120})),
            )),
            401,
            "unauthorized",
        ),
        (
            "not yet valid",
            bearer(sign_raw(
                &app.dev,
                &claims(json!({"nbf": now() + 300, "exp": now() + 600})),
            )),
            401,
            "unauthorized",
        ),
        (
            "issued in the future",
            bearer(sign_raw(
                &app.dev,
                &claims(json!({"iat": now() + 300, "exp": now() + 600})),
            )),
            401,
            "unauthorized",
        ),
        (
            "wrong aud",
            bearer(sign_raw(&app.dev, &claims(json!({"aud": "document-ocr"})))),
            401,
            "unauthorized",
        ),
        (
            "wrong iss",
            bearer(sign_raw(&app.dev, &claims(json!({"iss": "someone-else"})))),
            401,
            "unauthorized",
        ),
        (
            "no exp",
            bearer(sign_raw(&app.dev, &claims(json!({"exp": null})))),
            401,
            "unauthorized",
        ),
        (
            "no tenant",
            bearer(sign_raw(&app.dev, &claims(json!({"tenant": null})))),
            401,
            "unauthorized",
        ),
        (
            "lifetime over the maximum",
            bearer(sign_raw(&app.dev, &claims(json!({"exp": now() + 3600})))),
            401,
            "unauthorized",
        ),
        (
            "exp - iat overflows",
            bearer(sign_raw(
                &app.dev,
                &claims(json!({"iat": i64::MIN + 1, "exp": now() + 300})),
            )),
            401,
            "unauthorized",
        ),
        ("alg none", bearer(unsigned), 401, "unauthorized"),
        (
            "HS256 signed with the public key",
            bearer(hs256_with_public_key),
            401,
            "unauthorized",
        ),
        (
            "unknown kid",
            bearer(stranger.sign(&claims(json!({}))).unwrap()),
            401,
            "unauthorized",
        ),
        (
            "missing scope",
            bearer(sign_raw(&app.dev, &claims(json!({"scope": "ocr:verify"})))),
            403,
            "forbidden",
        ),
    ];
    for (name, header, status, code) in cases {
        let res = call(&app, &id, header).await;
        let body = assert_problem(res, status, code).await;
        println!("{name}: {status} {code} — {}", body["detail"]);
    }
}

#[tokio::test]
async fn a_signature_over_other_claims_is_refused() {
    let app = spawn_app().await;
    let id = app.put("eu", TestApp::jpeg(100)).await.to_string();
    let token = sign_raw(&app.dev, &claims(json!({})));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = B64.encode(claims(json!({"tenant": "someone-else"})).to_string());
    let res = call(&app, &id, Some(format!("Bearer {}", parts.join(".")))).await;
    assert_problem(res, 401, "unauthorized").await;
}

/// `Authorized` needs only an `AuthContext`: no stores, ledger or key files. And the authenticator judges
/// `exp` by the clock it was given, so moving a manual clock expires a token that real time has not.
#[tokio::test]
async fn authorized_works_over_an_auth_context_alone_on_its_clock() {
    use std::{sync::Arc, time::Duration};

    use axum::routing::get;
    use idv_shared::{
        auth::{AuthContext, AuthSettings, Authenticator, Authorized, FaceVerify, dev::DevIssuer},
        clock::{ManualClock, SharedClock},
        limits::{MemoryRateLimiter, RateLimitSettings},
    };

    async fn whoami(caller: Authorized<FaceVerify>) -> String {
        caller.tenant.clone()
    }

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::default());
    let shared: SharedClock = clock.clone();
    let dev = DevIssuer::load_or_create(dir.path(), shared.clone()).unwrap();
    let auth = AuthContext {
        authenticator: Arc::new(Authenticator::new(
            "face-match",
            "idv-dev-issuer".into(),
            dev.jwks_source(),
            &AuthSettings::default(),
            shared,
        )),
        limiter: Arc::new(MemoryRateLimiter::new(RateLimitSettings {
            requests_per_second: 0.001,
            burst: 2.0,
            max_keys: 8,
            ..RateLimitSettings::default()
        })),
    };
    let router = axum::Router::new()
        .route("/whoami", get(whoami))
        .with_state(auth)
        .layer(axum::middleware::from_fn(
            idv_shared::http::problem_middleware,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let call = |token: Option<String>| {
        let mut req = client.get(format!("http://{addr}/whoami"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let token = |scopes: &[&str]| {
        dev.mint(&idv_shared::auth::dev::MintRequest {
            audience: "face-match".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            tenant: "acme".into(),
            regions: vec!["eu".into()],
            ttl_secs: 120,
        })
        .unwrap()
    };

    assert_eq!(call(None).await.unwrap().status(), 401);
    assert_eq!(
        call(Some(token(&["ocr:verify"]))).await.unwrap().status(),
        403
    );
    let ok = call(Some(token(&["face:verify"]))).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "acme");

    // 120 s of life plus 30 s of leeway: at +149 s the token holds, at +151 s it is expired.
    let held = token(&["face:verify"]);
    clock.advance(Duration::from_secs(149));
    assert_eq!(call(Some(held.clone())).await.unwrap().status(), 200);
    clock.advance(Duration::from_secs(2));
    let expired = call(Some(held)).await.unwrap();
    assert_eq!(expired.status(), 401);
    let body: Value = expired.json().await.unwrap();
    assert_eq!(body["detail"], "token expired", "{body}");

    // The burst of two was spent above (403 is refused before the limiter): the next is limited.
    let limited = call(Some(token(&["face:verify"]))).await.unwrap();
    assert_eq!(limited.status(), 429);
}
