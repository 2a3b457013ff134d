//! The challenge state machine end to end, against each store backend.

use std::sync::Arc;

use idv_shared::audit::{Jwks, jws};
use serde_json::Value;

use crate::{
    both_backends,
    helpers::{Backend, spawn_app_with, wrong},
};

const NUMBER: &str = "+4915112345678";

both_backends!(
    whole_flow_passes_with_a_verifiable_proof_token,
    wrong_code_then_right_code,
    sixth_check_is_refused,
    verified_code_cannot_be_replayed,
    expiry_follows_the_clock,
    resend_keeps_the_code_and_caps_the_expiry,
    cancel_closes_the_challenge,
    create_is_idempotent,
    concurrent_right_codes_pass_exactly_once,
    other_tenants_see_nothing,
);

async fn whole_flow_passes_with_a_verifiable_proof_token(backend: Backend) {
    let app = spawn_app_with(backend, |_, _| {}).await;
    let token = app.token();
    let art = app.put_phone("+49 151 1234 5678").await;
    let res = app.create(&token, &art).await;
    assert_eq!(res.status(), 201);
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/v1/phone/challenges/chl_")
    );
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["status"], "pending");
    assert_eq!(view["channel"], "sms");
    assert_eq!(view["attempts_remaining"], 5);
    assert!(view["expires_at"].is_string() && view["resend_available_at"].is_string());
    let id = view["challenge_id"].as_str().unwrap();

    let messages = app.messages(id);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["to"], NUMBER, "normalized to E.164");
    let code = app.code(id);
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));

    let before = app.ledger_lines();
    let v = app.verdict(&token, id, &code).await;
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["service"], "phone-proof");
    assert!(v["reasons"].as_array().unwrap().is_empty());
    assert!(v["confidence"].as_f64().unwrap() > 0.9999);
    assert_eq!(v["result"]["status"], "approved");
    assert_eq!(v["artifacts"][0]["id"], art.to_string());
    assert!(v["audit_token"].is_string());
    assert_eq!(
        app.ledger_lines(),
        before + 1,
        "the verdict has its ledger entry"
    );

    // The proof token verifies against the service's JWKS and carries no number.
    let jwks: Jwks = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let proof = v["result"]["proof_token"].as_str().unwrap();
    let claims: Value = jws::verify(proof, &jwks).unwrap();
    assert_eq!(claims["typ"], "phone_proof");
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["chl"], id);
    assert!(claims["jti"].as_str().unwrap().starts_with("prf_"));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(lifetime > 0 && lifetime <= 600);
    assert_eq!(claims["sub"].as_str().unwrap().len(), 64);
    assert!(!proof.contains("4915112345678") && !claims.to_string().contains("4915112345678"));

    assert_eq!(app.status(&token, id).await, "approved");
}

async fn wrong_code_then_right_code(backend: Backend) {
    let app = spawn_app_with(backend, |_, _| {}).await;
    let token = app.token();
    let id = app.challenge(&token, NUMBER).await;
    let code = app.code(&id);
    let v = app.verdict(&token, &id, &wrong(&code)).await;
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["reasons"][0]["code"], "code_mismatch");
    assert_eq!(v["result"]["attempts_remaining"], 4);
    assert!(v["result"].get("proof_token").is_none());
    let v = app.verdict(&token, &id, &code).await;
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["result"]["attempts_remaining"], 3);
}

async fn sixth_check_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, |_, _| {}).await;
    let token = app.token();
    let id = app.challenge(&token, NUMBER).await;
    let code = app.code(&id);
    for left in (0..5).rev() {
        let v = app.verdict(&token, &id, &wrong(&code)).await;
        assert_eq!(v["reasons"][0]["code"], "code_mismatch");
        assert_eq!(v["result"]["attempts_remaining"], left);
    }
    assert_eq!(app.status(&token, &id).await, "max_attempts_reached");
    let lines = app.ledger_lines();
    let v = app.verdict(&token, &id, &code).await;
    assert_eq!(
        v["verdict"], "fail",
        "even the right code is refused after five checks"
    );
    assert_eq!(v["reasons"][0]["code"], "max_attempts_reached");
    assert_eq!(app.ledger_lines(), lines + 1, "refusals are recorded too");
}

async fn verified_code_cannot_be_replayed(backend: Backend) {
    let app = spawn_app_with(backend, |_, _| {}).await;
    let token = app.token();
    let id = app.challenge(&token, NUMBER).await;
    let code = app.code(&id);
    assert_eq!(app.verdict(&token, &id, &code).await["verdict"], "pass");
    let v = app.verdict(&token, &id, &code).await;
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["reasons"][0]["code"], "already_verified");
    assert!(v["result"].get("proof_token").is_none());
}

async fn expiry_follows_the_clock(backend: Backend) {
    let app = spawn_app_with(backend, |_, _| {}).await;
    let token = app.token();
    let id = app.challenge(&token, NUMBER).await;
    let code = app.code(&id);
    app.advance(299);
    assert_eq!(app.status(&token, &id).await, "pending");
    app.advance(1);
    assert_eq!(app.status(&token, &id).await, "expired");
    let v = app.verdict(&token, &id, &code).await;
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["reasons"][0]["code"], "challenge_expired");
    let res = app.resend(&token, &id).await;
    assert_eq!(res.status(), 410);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "challenge_expired");
}

async fn resend_keeps_the_code_and_caps_the_expiry(backend: Backend) {
    let app = spawn_app_with(backend, |_, _| {}).await;
    let token = app.token();
    let art = app.put_phone(NUMBER).await;
    let view: Value = app.create(&token, &art).await.json().await.unwrap();
    let id = view["challenge_id"].as_str().unwrap();
    let created =
        chrono::DateTime::parse_from_rfc3339(view["created_at"].as_str().unwrap()).unwrap();
    let code = app.code(id);

    let res = app.resend(&token, id).await;
    assert_eq!(res.status(), 429, "too early");
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "resend_limited");

    app.advance(290);
    let res = app.resend(&token, id).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 590, "now + 5 min");
    assert_eq!(v["sends_remaining"], 3);
    assert_eq!(app.messages(id).len(), 2);
    assert_eq!(app.code(id), code, "a resend sends the same code");

    app.advance(40);
    let v: Value = app.resend(&token, id).await.json().await.unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        (expires - created).num_seconds(),
        600,
        "never past the 10-minute cap"
    );
    // The service's clock also judges tokens: past the first one's five minutes, a gateway mints another.
    for _ in 0..2 {
        app.advance(31);
        assert_eq!(app.resend(&app.token(), id).await.status(), 200);
    }
    app.advance(31);
    let res = app.resend(&app.token(), id).await;
    assert_eq!(res.status(), 429, "five sends per challenge");
    assert!(!res.headers().contains_key("retry-after"));
    assert_eq!(app.messages(id).len(), 5);
    assert_eq!(
        app.verdict(&app.token(), id, &code).await["verdict"],
        "pass"
    );
}

async fn cancel_closes_the_challenge(backend: Backend) {
    let app = spawn_app_with(backend, |_, _| {}).await;
    let token = app.token();
    let id = app.challenge(&token, NUMBER).await;
    let code = app.code(&id);
    let res = app.cancel(&token, &id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "canceled");
    let v = app.verdict(&token, &id, &code).await;
    assert_eq!(v["reasons"][0]["code"], "challenge_canceled");
    let res = app.cancel(&token, &id).await;
    assert_eq!(res.status(), 409);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "challenge_not_pending"
    );
}

async fn create_is_idempotent(backend: Backend) {
    let app = spawn_app_with(backend, |_, _| {}).await;
    let token = app.token();
    let art = app.put_phone(NUMBER).await;
    let first = app.create_with(&token, &art, Some("key-1")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = app.create_with(&token, &art, Some("key-1")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["challenge_id"], again["challenge_id"]);
    assert_eq!(
        app.messages(first["challenge_id"].as_str().unwrap()).len(),
        1,
        "no second send"
    );

    let other = app.put_phone("+4915112345679").await;
    let res = app.create_with(&token, &other, Some("key-1")).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "idempotency_conflict"
    );
    // Keys are per tenant: another tenant's same key is a new challenge.
    let res = app
        .create_with(
            &app.token_for("globex", &["phone:challenge"]),
            &art,
            Some("key-1"),
        )
        .await;
    assert_eq!(res.status(), 201);
}

async fn concurrent_right_codes_pass_exactly_once(backend: Backend) {
    let app = spawn_app_with(backend, |_, s| s.number_max_challenges = 100).await;
    let token = app.token();
    for _ in 0..10 {
        let id = app.challenge(&token, NUMBER).await;
        let code = app.code(&id);
        let (a, b) = tokio::join!(
            app.verdict(&token, &id, &code),
            app.verdict(&token, &id, &code)
        );
        let mut outcomes = [
            a["verdict"].as_str().unwrap(),
            b["verdict"].as_str().unwrap(),
        ];
        outcomes.sort_unstable();
        assert_eq!(outcomes, ["fail", "pass"]);
        let loser = if a["verdict"] == "fail" { &a } else { &b };
        assert_eq!(loser["reasons"][0]["code"], "already_verified");
    }
}

async fn other_tenants_see_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |_, _| {}).await;
    let token = app.token();
    let id = app.challenge(&token, NUMBER).await;
    let code = app.code(&id);
    let globex = app.token_for("globex", super::helpers::ALL_SCOPES);
    for res in [
        app.get(&globex, &id).await,
        app.verify(&globex, &id, &code).await,
        app.cancel(&globex, &id).await,
    ] {
        assert_eq!(res.status(), 404);
        assert_eq!(
            res.json::<Value>().await.unwrap()["code"],
            "challenge_not_found"
        );
    }
    assert_eq!(
        app.verdict(&token, &id, &code).await["verdict"],
        "pass",
        "nothing was counted"
    );
}

/// Many concurrent checks carrying the right code: the one counted check that compares first approves, every other
/// answer is a `fail`, and no trial ends with zero passes (a counted right code is never closed out by a check that
/// arrived over the limit while it was still being compared). Multi-threaded, so the server's steps interleave.
async fn fifty_concurrent_right_codes_pass_exactly_once(backend: Backend) {
    const TRIALS: usize = 20;
    const CONCURRENT: usize = 50;
    let app = Arc::new(
        spawn_app_with(backend, |c, s| {
            s.number_max_challenges = 100;
            c.rate_limit.requests_per_second = 10_000.0;
            c.rate_limit.burst = 10_000.0;
            c.http.max_in_flight = 1024;
        })
        .await,
    );
    let token = app.token();
    let mut passes = Vec::with_capacity(TRIALS);
    for _ in 0..TRIALS {
        let id = app.challenge(&token, NUMBER).await;
        let code = app.code(&id);
        let tasks: Vec<_> = (0..CONCURRENT)
            .map(|_| {
                let (app, token, id, code) = (app.clone(), token.clone(), id.clone(), code.clone());
                tokio::spawn(async move { app.verdict(&token, &id, &code).await })
            })
            .collect();
        let mut pass = 0;
        for t in tasks {
            let v = t.await.unwrap();
            match v["verdict"].as_str().unwrap() {
                "pass" => pass += 1,
                "fail" => {
                    let reason = v["reasons"][0]["code"].as_str().unwrap();
                    assert!(
                        ["already_verified", "max_attempts_reached"].contains(&reason),
                        "{v}"
                    );
                }
                other => panic!("unexpected verdict {other}: {v}"),
            }
        }
        passes.push(pass);
    }
    assert_eq!(passes, vec![1; TRIALS], "passes per trial");
}

mod concurrent {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory() {
        super::fifty_concurrent_right_codes_pass_exactly_once(super::Backend::Memory).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis() {
        super::fifty_concurrent_right_codes_pass_exactly_once(super::Backend::Redis).await;
    }
}
