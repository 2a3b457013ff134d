//! Per-number, per-tenant and failure limits, and refusals of bad input.

use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{Backend, spawn_app, spawn_app_with, wrong},
};

const NUMBER: &str = "+4915112345678";

both_backends!(
    per_number_limit_is_per_tenant_and_slides,
    hundred_consecutive_failures_block_the_number,
    a_success_resets_the_failure_count,
);

async fn per_number_limit_is_per_tenant_and_slides(backend: Backend) {
    let app = spawn_app_with(backend, |_, _| {}).await;
    let token = app.token();
    for _ in 0..5 {
        app.challenge(&token, NUMBER).await;
        app.advance(10);
    }
    let art = app.put_phone(NUMBER).await;
    let res = app.create(&token, &art).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((550..=600).contains(&retry), "retry-after {retry}");
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "phone_rate_limited"
    );
    // Another tenant's users are not locked out by this tenant's traffic.
    app.challenge(&app.token_for("globex", &["phone:challenge"]), NUMBER)
        .await;
    // Nor is another number.
    app.challenge(&token, "+4915112345679").await;
    // The window slides: once the oldest start is ten minutes old, one more is allowed (with a new token:
    // the first one's five minutes are over on the service's clock too).
    app.advance(555);
    let token = app.token();
    app.challenge(&token, NUMBER).await;
    assert_eq!(app.create(&token, &art).await.status(), 429);
}

async fn hundred_consecutive_failures_block_the_number(backend: Backend) {
    // The per-number window is tested above; here it would only slow the hundred failures down.
    let app = spawn_app_with(backend, |_, s| s.number_max_challenges = 100).await;
    let token = app.token();
    let globex = app.token_for("globex", crate::helpers::ALL_SCOPES);
    let other_tenant_challenge = app.challenge(&globex, NUMBER).await;
    let spare = app.challenge(&token, NUMBER).await;
    for _ in 0..20 {
        let id = app.challenge(&token, NUMBER).await;
        let code = app.code(&id);
        for _ in 0..5 {
            app.verdict(&token, &id, &wrong(&code)).await;
        }
    }
    let art = app.put_phone(NUMBER).await;
    let res = app.create(&token, &art).await;
    assert_eq!(res.status(), 423);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "phone_blocked");
    let res = app.verify(&token, &spare, &app.code(&spare)).await;
    assert_eq!(
        res.status(),
        423,
        "checks are refused too, even with the right code"
    );
    assert_eq!(
        app.get(&token, &spare).await.json::<Value>().await.unwrap()["attempts_remaining"],
        5,
        "nothing counted"
    );

    // The other tenant's challenge for the same number is unaffected.
    let v = app
        .verdict(
            &globex,
            &other_tenant_challenge,
            &app.code(&other_tenant_challenge),
        )
        .await;
    assert_eq!(v["verdict"], "pass");

    // An operator lifts the block.
    let admin = app.token_for("acme", &["phone:admin"]);
    let res = app
        .client
        .post(app.url("/v1/phone/admin/unblock"))
        .bearer_auth(&admin)
        .json(&json!({ "phone_artifact_id": art.to_string() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["unblocked"], true);
    let res = app
        .client
        .post(app.url("/v1/phone/admin/unblock"))
        .bearer_auth(&token)
        .json(&json!({ "phone_artifact_id": art.to_string() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "unblocking needs phone:admin");
    let id = app.challenge(&token, NUMBER).await;
    assert_eq!(
        app.verdict(&token, &id, &app.code(&id)).await["verdict"],
        "pass"
    );
}

async fn a_success_resets_the_failure_count(backend: Backend) {
    let app = spawn_app_with(backend, |_, s| s.block_after_failures = 3).await;
    let token = app.token();
    let id = app.challenge(&token, NUMBER).await;
    let code = app.code(&id);
    app.verdict(&token, &id, &wrong(&code)).await;
    app.verdict(&token, &id, &wrong(&code)).await;
    assert_eq!(app.verdict(&token, &id, &code).await["verdict"], "pass");
    let id = app.challenge(&token, NUMBER).await;
    let code = app.code(&id);
    app.verdict(&token, &id, &wrong(&code)).await;
    app.verdict(&token, &id, &wrong(&code)).await;
    assert_eq!(
        app.verdict(&token, &id, &code).await["verdict"],
        "pass",
        "not blocked: the count restarted"
    );
    let id = app.challenge(&token, NUMBER).await;
    for _ in 0..3 {
        app.verdict(&token, &id, "000000").await;
    }
    let art = app.put_phone(NUMBER).await;
    assert_eq!(app.create(&token, &art).await.status(), 423);
}

#[tokio::test]
async fn tenant_rate_limit_isolates_tenants() {
    let app = spawn_app_with(Backend::Memory, |c, _| {
        c.rate_limit.requests_per_second = 0.01;
        c.rate_limit.burst = 3.0;
    })
    .await;
    let token = app.token();
    let id = app.challenge(&token, NUMBER).await;
    // Buckets are per tenant and route: three reads fit the burst, the fourth does not.
    for _ in 0..3 {
        assert_eq!(app.get(&token, &id).await.status(), 200);
    }
    let res = app.get(&token, &id).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "rate_limited");
    let globex = app.token_for("globex", &["phone:challenge"]);
    app.challenge(&globex, NUMBER).await;
}

#[tokio::test]
async fn bad_numbers_and_requests_get_their_codes() {
    let app = spawn_app().await;
    let token = app.token();
    let cases = [
        (
            json!({"phone_number": "+49 12"}),
            400,
            "invalid_phone_number",
        ),
        (
            json!({"phone_number": "not a number"}),
            400,
            "invalid_phone_number",
        ),
        (
            json!({"phone_number": "015112345678"}),
            400,
            "invalid_phone_number",
        ),
        (
            json!({"phone_number": "+44 56 1234 5678"}),
            422,
            "voip_number_refused",
        ),
        (
            json!({"phone_number": "+1 900 555 0123"}),
            422,
            "premium_number_refused",
        ),
        (json!({"phone": "+4915112345678"}), 400, "invalid_request"),
        (
            json!({"phone_number": 4915112345678u64}),
            400,
            "invalid_request",
        ),
    ];
    for (artifact, status, code) in cases {
        let art = app.put_json(artifact.clone()).await;
        let res = app.create(&token, &art).await;
        assert_eq!(res.status(), status, "{artifact}");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], code, "{artifact}");
        let raw = artifact["phone_number"]
            .as_str()
            .unwrap_or("~")
            .replace(' ', "");
        assert!(
            !p.to_string().replace(' ', "").contains(&raw),
            "no number in the problem: {p}"
        );
    }
    let url = app.url("/v1/phone/challenges");
    let post = |body: &'static str, token: &str| {
        app.client
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in [
        "{",
        r#"{"phone_artifact_id": 1, "channel": "sms"}"#,
        r#"{"phone_artifact_id": "art_eu_nope", "channel": "sms"}"#,
        r#"{"phone_artifact_id": "art_eu_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P", "channel": "pigeon"}"#,
    ] {
        let res = post(body, &token).await.unwrap();
        assert_eq!(res.status(), 400, "{body}");
    }
    let res = post(
        r#"{"phone_artifact_id": "art_eu_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P", "channel": "sms"}"#,
        &token,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "artifact_not_found"
    );
    let res = post(
        r#"{"phone_artifact_id": "art_us_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P", "channel": "sms"}"#,
        &token,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "residency_violation"
    );
    let verify_only = app.token_for("acme", &["phone:verify"]);
    let res = post(
        r#"{"phone_artifact_id": "art_eu_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P", "channel": "sms"}"#,
        &verify_only,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "forbidden");

    let id = app.challenge(&token, NUMBER).await;
    for code in ["12345", "abcdef", "1234567890", ""] {
        let res = app.verify(&token, &id, code).await;
        assert_eq!(res.status(), 400, "{code:?}");
    }
    assert_eq!(
        app.get(&token, &id).await.json::<Value>().await.unwrap()["attempts_remaining"],
        5,
        "malformed codes are not counted"
    );
    for bad in [
        "chl_nope",
        "01JD3Z8Q8Y5Q0W6F9T3K2M1N4P",
        "chl_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P",
    ] {
        let res = app.verify(&token, bad, "123456").await;
        assert_eq!(res.status(), 404);
        assert_eq!(
            res.json::<Value>().await.unwrap()["code"],
            "challenge_not_found"
        );
    }
    let res = app
        .create_with(
            &token,
            &app.put_phone(NUMBER).await,
            Some("bad key with spaces"),
        )
        .await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn a_full_memory_store_sheds_load_instead_of_growing() {
    let app = spawn_app_with(Backend::Memory, |_, s| s.memory_max_challenges = 2).await;
    let token = app.token();
    app.challenge(&token, NUMBER).await;
    app.challenge(&token, "+4915112345679").await;
    let res = app
        .create(&token, &app.put_phone("+4915112345670").await)
        .await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "overloaded");
    // Once retention has passed, the sweep makes room again.
    app.advance(600 + 3600);
    app.challenge(&app.token(), "+4915112345670").await;
}
