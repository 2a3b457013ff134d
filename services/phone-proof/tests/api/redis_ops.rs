//! Redis as operators run it: two service processes sharing one Redis, and a Redis that dies mid-flow.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use idv_shared::{
    config::Secret,
    testkit::{self, KillOnDrop, ServiceProcess, free_port},
};
use phone_proof::SERVICE;
use serde_json::Value;

use crate::helpers::{Backend, mint, outbox_messages, redis_url, settings_for, spawn_in, wrong};

async fn wait_until(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the real `phone-proof` binary on a free port, sharing `data_dir` and a Redis prefix.
async fn spawn_process(data_dir: &Path, prefix: &str) -> (ServiceProcess, String) {
    let redis = redis_url();
    let process = ServiceProcess::start(
        env!("CARGO_BIN_EXE_phone-proof"),
        data_dir,
        &[("PHONE_REDIS_URL", &redis), ("PHONE_REDIS_PREFIX", prefix)],
    )
    .await;
    let base = process.base.clone();
    (process, base)
}

#[tokio::test]
async fn two_processes_sharing_redis_behave_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("idvtest:{}", ulid::Ulid::new());
    let (_a, a) = spawn_process(dir.path(), &prefix).await;
    let (_b, b) = spawn_process(dir.path(), &prefix).await;
    let dev = idv_shared::auth::dev::DevIssuer::load_or_create(
        dir.path(),
        idv_shared::clock::SystemClock::shared(),
    )
    .unwrap();
    let token = mint(&dev, "acme", crate::helpers::ALL_SCOPES);
    let client = reqwest::Client::new();

    // The artifact goes into the shared data dir's eu store, as `idvctl artifact put` would.
    let stores = testkit::folder_stores(SERVICE, dir.path()).await;
    let art = stores
        .put_new(
            &"eu".parse().unwrap(),
            br#"{"phone_number": "+4915112345678"}"#.to_vec().into(),
        )
        .await
        .unwrap();

    let res = client
        .post(format!("{a}/v1/phone/challenges"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "phone_artifact_id": art.to_string(), "channel": "sms" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["challenge_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let outbox = dir.path().join("outbox").join("phone-proof.jsonl");
    let code = outbox_messages(&outbox, &id)[0]["code"]
        .as_str()
        .unwrap()
        .to_owned();

    let verify = |base: &str, code: &str| {
        client
            .post(format!("{base}/v1/phone/challenges/{id}/verify"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "code": code }))
            .send()
    };
    let v: Value = verify(&b, &wrong(&code))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["result"]["attempts_remaining"], 4,
        "a check on B counts for A too"
    );
    let v: Value = verify(&a, &code).await.unwrap().json().await.unwrap();
    assert_eq!(v["verdict"], "pass");
    let v: Value = verify(&b, &code).await.unwrap().json().await.unwrap();
    assert_eq!(
        v["reasons"][0]["code"], "already_verified",
        "B sees A's approval"
    );
    let status: Value = client
        .get(format!("{b}/v1/phone/challenges/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "approved");
}

fn start_redis(port: u16, dir: &Path) -> KillOnDrop {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (Debian package redis-server) must be installed");
    KillOnDrop(child)
}

#[tokio::test]
async fn redis_down_mid_flow_is_a_503_and_the_state_survives() {
    let redis_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut redis = start_redis(port, redis_dir.path());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut settings = settings_for(Backend::Redis);
    settings.redis_url = Some(Secret::new(format!("redis://127.0.0.1:{port}")));
    settings.redis_timeout_ms = 300;
    let config = testkit::test_config(SERVICE, dir.path());
    let app = spawn_in(dir, config, settings).await;
    let token = app.token();
    wait_until("redis", async || {
        app.get(&token, "chl_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P")
            .await
            .status()
            == 404
    })
    .await;

    let id = app.challenge(&token, "+4915112345678").await;
    let code = app.code(&id);
    let v = app.verdict(&token, &id, &wrong(&code)).await;
    assert_eq!(v["result"]["attempts_remaining"], 4);

    // Redis dies (SIGKILL: nothing flushed on the way out beyond what was already synced).
    let _ = redis.0.kill();
    let _ = redis.0.wait();
    let ledger = app.ledger_lines();
    for res in [
        app.verify(&token, &id, &code).await,
        app.get(&token, &id).await,
        app.create(&token, &app.put_phone("+4915112345678").await)
            .await,
    ] {
        assert_eq!(res.status(), 503);
        assert!(res.headers().contains_key("retry-after"));
        assert_eq!(
            res.json::<Value>().await.unwrap()["code"],
            "store_unavailable"
        );
    }
    assert_eq!(app.ledger_lines(), ledger, "no verdict without the store");
    wait_until("readyz to report the store", async || {
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 503
    })
    .await;

    let _redis = start_redis(port, redis_dir.path());
    wait_until("the store to come back", async || {
        app.get(&token, &id).await.status() == 200
    })
    .await;
    let view: Value = app.get(&token, &id).await.json().await.unwrap();
    assert_eq!(view["status"], "pending");
    assert_eq!(
        view["attempts_remaining"], 4,
        "the counted check survived; the refused one was not counted"
    );
    assert_eq!(app.verdict(&token, &id, &code).await["verdict"], "pass");
}
