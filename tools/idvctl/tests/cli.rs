//! The operator commands, run as the real binary against a throwaway data dir.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Command};

use idv_shared::{
    audit::Auditor,
    verdict::{Outcome, ServiceName, VerdictDraft},
};

fn idvctl(data_dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_idvctl"))
        .args(args)
        .env_clear()
        .env("IDV_DATA_DIR", data_dir)
        .env("IDV_LOG__FILTER", "error")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn mint_and_put() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, token) = idvctl(
        dir.path(),
        &[
            "token",
            "mint",
            "--service",
            "phone-proof",
            "--region",
            "eu",
        ],
    );
    assert!(ok, "{token}");
    assert_eq!(token.trim().split('.').count(), 3);
    let claims: serde_json::Value = {
        use base64::Engine;
        let payload = token.trim().split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["aud"], "phone-proof");
    assert_eq!(claims["scope"], "phone:challenge phone:verify");
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 900);
    let (ok, out) = idvctl(dir.path(), &["token", "mint", "--service", "nope"]);
    assert!(!ok && out.contains("unknown service"), "{out}");

    let file = dir.path().join("phone.json");
    std::fs::write(&file, br#"{"phone_number": "+4915112345678"}"#).unwrap();
    let (ok, id) = idvctl(
        dir.path(),
        &["artifact", "put", "--region", "eu", file.to_str().unwrap()],
    );
    assert!(ok, "{id}");
    let id = id.trim();
    assert!(id.starts_with("art_eu_"), "{id}");
    assert!(dir.path().join("artifacts/eu").join(id).exists());
    assert!(
        !dir.path().join("ledger").exists(),
        "putting an artifact opens no ledger"
    );
}

#[tokio::test]
async fn verify_tokens_rotate_keys_and_verify_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("audit/keys.json");
    let ledger = dir.path().join("ledger/face-match.jsonl");
    let auditor = Auditor::open(
        ServiceName::FaceMatch,
        &keys,
        &idv_shared::audit::LedgerTarget::File(ledger.clone()),
        64,
        idv_shared::config::AuditSettings::default().checkpoints(),
        idv_shared::clock::SystemClock::shared(),
    )
    .unwrap();
    let draft = || VerdictDraft {
        service: ServiceName::FaceMatch,
        verdict: Outcome::Fail,
        confidence: 0.9,
        reasons: vec![],
        result: serde_json::json!({"similarity": 0.1}),
        artifacts: vec![],
        model: None,
        format: None,
    };
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(auditor.issue("acme", draft()).await.unwrap().audit_token);
    }
    auditor.shutdown();

    let (ok, out) = idvctl(dir.path(), &["audit", "rotate-key"]);
    assert!(ok, "{out}");
    let jwks = dir.path().join("jwks.json");
    let ring = idv_shared::audit::KeyRing::load(&keys).unwrap();
    std::fs::write(&jwks, serde_json::to_vec(&ring.jwks()).unwrap()).unwrap();
    let (ok, out) = idvctl(
        dir.path(),
        &[
            "audit",
            "verify-token",
            &tokens[0],
            "--jwks",
            jwks.to_str().unwrap(),
        ],
    );
    assert!(
        ok && out.starts_with("VALID") && out.contains("\"verdict\": \"fail\""),
        "{out}"
    );
    let forged = tokens[0].replacen('.', ".e", 1);
    let (ok, out) = idvctl(
        dir.path(),
        &[
            "audit",
            "verify-token",
            &forged,
            "--jwks",
            jwks.to_str().unwrap(),
        ],
    );
    assert!(!ok && out.contains("INVALID"), "{out}");

    // Three verdicts and the checkpoint signed at shutdown.
    let (ok, out) = idvctl(dir.path(), &["ledger", "verify", ledger.to_str().unwrap()]);
    assert!(ok && out.starts_with("OK: 4 entries"), "{out}");
    let jwks_arg = jwks.to_str().unwrap();
    let verify_signed = || {
        idvctl(
            dir.path(),
            &[
                "ledger",
                "verify",
                ledger.to_str().unwrap(),
                "--jwks",
                jwks_arg,
            ],
        )
    };
    let (ok, out) = verify_signed();
    assert!(
        ok && out.contains("1 signed checkpoints verified; 0 entries"),
        "{out}"
    );

    // A rewritten history with every hash recomputed: whole as a chain, refused by its checkpoint.
    let text = std::fs::read_to_string(&ledger).unwrap();
    let mut head = idv_shared::audit::ledger::GENESIS.to_owned();
    let mut rewritten = String::new();
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let record = serde_json::to_string(&v["record"]).unwrap();
        let record = if i == 1 {
            record.replacen("\"fail\"", "\"pass\"", 1)
        } else {
            record
        };
        let seq = i as u64 + 1;
        let hash = idv_shared::audit::ledger::entry_hash(seq, &head, &record);
        rewritten.push_str(&format!(
            "{{\"seq\":{seq},\"prev\":\"{head}\",\"record\":{record},\"hash\":\"{hash}\"}}\n"
        ));
        head = hash;
    }
    std::fs::write(&ledger, rewritten).unwrap();
    let (ok, out) = idvctl(dir.path(), &["ledger", "verify", ledger.to_str().unwrap()]);
    assert!(ok, "the chain alone cannot tell: {out}");
    let (ok, out) = verify_signed();
    assert!(!ok && out.starts_with("BROKEN at line 1 (seq 1)"), "{out}");
    std::fs::write(&ledger, &text).unwrap();

    let text = std::fs::read_to_string(&ledger).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[1] = lines[1].replacen("\"fail\"", "\"pass\"", 1);
    std::fs::write(&ledger, lines.join("\n") + "\n").unwrap();
    let (ok, out) = idvctl(dir.path(), &["ledger", "verify", ledger.to_str().unwrap()]);
    assert!(!ok && out.starts_with("BROKEN at line 2 (seq 2)"), "{out}");
}

#[test]
fn seed_phones_prints_distinct_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = idvctl(
        dir.path(),
        &["artifact", "seed-phones", "--region", "eu", "--count", "3"],
    );
    assert!(ok, "{out}");
    let ids: Vec<String> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| i.starts_with("art_eu_")));
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn sms_sink_takes_only_signed_events_and_hands_out_codes() {
    use base64::Engine;
    use idv_shared::webhook::SigningSecret;

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([9u8; 32])
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_idvctl"))
        .args([
            "sms-sink",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--secrets",
            &secret,
        ])
        .env("IDV_DATA_DIR", dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/codes/x")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "sink did not start");
    let body = serde_json::to_vec(&serde_json::json!({
        "specversion": "1.0", "id": "evt_1", "type": "com.idv.phone.otp.delivery_requested",
        "data": { "challenge_id": "chl_1", "code": "123456" }
    }))
    .unwrap();
    let ts = chrono_now();
    let post = |signature: String| {
        client
            .post(format!("{base}/sms"))
            .header("webhook-id", "evt_1")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body.clone())
            .send()
    };
    let forged = SigningSecret::parse(&format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    ))
    .unwrap();
    assert_eq!(
        post(forged.sign("evt_1", ts, &body))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(format!("{base}/codes/chl_1"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let good = SigningSecret::parse(&secret).unwrap();
    assert_eq!(
        post(good.sign("evt_1", ts, &body)).await.unwrap().status(),
        204
    );
    let code: serde_json::Value = client
        .get(format!("{base}/codes/chl_1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code["code"], "123456");
    let _ = child.kill();
    let _ = child.wait();
}

fn chrono_now() -> i64 {
    idv_shared::clock::Clock::now_secs(&idv_shared::clock::SystemClock)
}

#[tokio::test]
async fn migrate_and_verify_a_postgres_ledger() {
    let url = std::env::var("IDV_TEST_POSTGRES_URL").expect(
        "IDV_TEST_POSTGRES_URL is not set: run the suite through scripts/test.sh, which starts PostgreSQL",
    );
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = idvctl(dir.path(), &["ledger", "migrate", "--postgres", &url]);
    assert!(ok && out.contains("ledger schema ready"), "{out}");
    let (ok, out) = idvctl(dir.path(), &["ledger", "migrate", "--postgres", &url]);
    assert!(ok, "migrating twice is harmless: {out}");

    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .map_or(0, |d| d.as_nanos());
    let chain = format!("cli-{}-{nanos}", std::process::id());
    let keys = dir.path().join("audit/keys.json");
    let auditor = Auditor::open(
        ServiceName::DocumentOcr,
        &keys,
        &idv_shared::audit::LedgerTarget::Postgres(idv_shared::audit::PostgresLedger {
            url: idv_shared::config::Secret::new(url.clone()),
            chain: chain.clone(),
            timeout: std::time::Duration::from_secs(5),
        }),
        64,
        idv_shared::config::AuditSettings::default().checkpoints(),
        idv_shared::clock::SystemClock::shared(),
    )
    .unwrap();
    for _ in 0..3 {
        auditor
            .issue(
                "acme",
                VerdictDraft {
                    service: ServiceName::DocumentOcr,
                    verdict: Outcome::Pass,
                    confidence: 1.0,
                    reasons: vec![],
                    result: serde_json::json!({}),
                    artifacts: vec![],
                    model: None,
                    format: None,
                },
            )
            .await
            .unwrap();
    }
    auditor.shutdown();
    let jwks = dir.path().join("jwks.json");
    let ring = idv_shared::audit::KeyRing::load(&keys).unwrap();
    std::fs::write(&jwks, serde_json::to_vec(&ring.jwks()).unwrap()).unwrap();
    let (ok, out) = idvctl(
        dir.path(),
        &[
            "ledger",
            "verify",
            "--postgres",
            &url,
            "--chain",
            &chain,
            "--jwks",
            jwks.to_str().unwrap(),
        ],
    );
    assert!(
        ok && out.contains("OK: 4 entries") && out.contains("1 signed checkpoints verified"),
        "{out}"
    );
}
