//! The ledger in a real PostgreSQL (`scripts/test.sh` starts one and exports `IDV_TEST_POSTGRES_URL`): writers
//! sharing one chain, the table's append-only rules, and a database that goes away and comes back.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use idv_shared::{
    audit::{
        KeyRing, Ledger, Verification,
        checkpoint::{CheckpointPolicy, Checkpoints},
        ledger::{LedgerError, PostgresLedger, postgres},
        verify::Anchors,
    },
    config::Secret,
};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Options, ProbeResult, assert_problem, spawn_app_with};

fn url() -> String {
    std::env::var("IDV_TEST_POSTGRES_URL").expect(
        "IDV_TEST_POSTGRES_URL is not set: run the suite through scripts/test.sh, which starts PostgreSQL",
    )
}

/// A chain of its own for each test, on the migrated table.
async fn fresh_chain(url: &str) -> PostgresLedger {
    let db = PostgresLedger {
        url: Secret::new(url),
        chain: format!("test-{}", ulid::Ulid::new()),
        timeout: Duration::from_secs(5),
    };
    postgres::migrate(&db).await.unwrap();
    db
}

fn checkpoints(ring: &Arc<KeyRing>, every_entries: u64) -> Checkpoints {
    let ring = ring.clone();
    Checkpoints {
        policy: CheckpointPolicy {
            every_entries,
            every: Duration::from_secs(3600),
        },
        sign: Box::new(move |c| ring.sign(c).ok()),
        clock: idv_shared::clock::SystemClock::shared(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_append_to_one_chain_that_verifies_with_its_checkpoints() {
    let db = fresh_chain(&url()).await;
    let dir = tempfile::tempdir().unwrap();
    let ring = Arc::new(
        KeyRing::load_or_create(
            &dir.path().join("keys.json"),
            &idv_shared::clock::SystemClock,
        )
        .unwrap(),
    );
    // Two writers as two replicas would run them, each batching its own callers.
    let writers: Vec<Arc<Ledger>> = (0..2)
        .map(|_| {
            Arc::new(
                Ledger::start(
                    Box::new(db.sink().unwrap()),
                    256,
                    Some(checkpoints(&ring, 10)),
                )
                .unwrap(),
            )
        })
        .collect();
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let ledger = writers[i % 2].clone();
            tokio::spawn(async move { ledger.append(&serde_json::json!({"i": i})).await.unwrap() })
        })
        .collect();
    let seqs: Vec<u64> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let distinct: HashSet<u64> = seqs.iter().copied().collect();
    assert_eq!(distinct.len(), 300, "every append has a seq of its own");
    for w in &writers {
        w.shutdown();
    }
    let jwks = ring.jwks();
    let anchors = Anchors {
        keys: &jwks,
        max_gap: 10,
    };
    match postgres::verify_chain(&db, &db.chain, Some(anchors))
        .await
        .unwrap()
    {
        Verification::Intact {
            entries,
            checkpoints,
            unanchored,
            ..
        } => {
            assert_eq!(
                entries,
                300 + checkpoints,
                "verdicts and checkpoints, nothing else"
            );
            assert!(
                checkpoints >= 30,
                "a checkpoint every 10 entries: {checkpoints}"
            );
            assert_eq!(unanchored, 0, "shutdown covers the tail");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        postgres::chains(&db).await.unwrap().contains(&db.chain),
        "the chain is listed"
    );
}

#[tokio::test]
async fn rows_can_be_neither_changed_nor_removed_and_the_writer_role_may_only_insert_and_read() {
    let url = url();
    let db = fresh_chain(&url).await;
    let ledger = Ledger::start(Box::new(db.sink().unwrap()), 8, None).unwrap();
    ledger.append(&serde_json::json!({"a": 1})).await.unwrap();
    ledger.shutdown();

    // Even the table's owner cannot rewrite history.
    let owner = db.connect().await.unwrap();
    for sql in [
        "UPDATE audit_ledger SET record = '{}' WHERE chain = $1",
        "DELETE FROM audit_ledger WHERE chain = $1",
    ] {
        let err = owner.execute(sql, &[&db.chain]).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"),
            "{sql}: {err:?}"
        );
    }
    let err = owner
        .batch_execute("TRUNCATE audit_ledger")
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("append-only"), "{err:?}");

    // A login role granted idv_ledger_writer, as the services' role is.
    owner
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'idv_test_service') THEN \
             CREATE ROLE idv_test_service LOGIN; END IF; END $$; GRANT idv_ledger_writer TO idv_test_service;",
        )
        .await
        .unwrap();
    let service = PostgresLedger {
        url: Secret::new(format!(
            "postgres://idv_test_service@{}",
            url.split_once('@').unwrap().1
        )),
        chain: db.chain.clone(),
        timeout: Duration::from_secs(5),
    };
    let ledger = Ledger::start(Box::new(service.sink().unwrap()), 8, None).unwrap();
    assert_eq!(
        ledger.append(&serde_json::json!({"a": 2})).await.unwrap(),
        2,
        "the service's role appends"
    );
    ledger.shutdown();
    let client = service.connect().await.unwrap();
    let err = client
        .execute(
            "UPDATE audit_ledger SET record = '{}' WHERE chain = $1",
            &[&db.chain],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("42501"),
        "permission denied: {err:?}"
    );
    assert!(matches!(
        postgres::verify_chain(&db, &db.chain, None).await.unwrap(),
        Verification::Intact { entries: 2, .. }
    ));
}

/// A TCP forwarder to PostgreSQL that can be cut (every connection dropped, new ones refused) and restored.
struct Cuttable {
    port: u16,
    open: Arc<AtomicBool>,
}

impl Cuttable {
    async fn to(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let target = target.to_owned();
        let gate = open.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let target = target.clone();
                let gate = gate.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let cut = async {
                        while gate.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, () = cut => {} }
                });
            }
        });
        Self { port, open }
    }

    /// Opens or cuts it; returns once open connections have seen the change.
    async fn set(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_answers_503_store_unavailable_in_time_and_the_service_recovers()
{
    let url = url();
    let db = fresh_chain(&url).await;
    let (userinfo, rest) = url.split_once('@').unwrap();
    let (server, path) = rest.split_once('/').unwrap();
    let proxy = Cuttable::to(server).await;
    let via_proxy = format!("{userinfo}@127.0.0.1:{}/{path}", proxy.port);
    let app = spawn_app_with(Options {
        ledger: Some((via_proxy, db.chain.clone())),
        ..Default::default()
    })
    .await;
    let id = app
        .put("eu", crate::helpers::TestApp::jpeg(300))
        .await
        .to_string();
    let token = app.token(&["eu"]);
    let mut answered = Vec::new();

    for _ in 0..3 {
        let res = app.probe(&token, &id).await;
        assert_eq!(res.status(), 200);
        let v: idv_shared::verdict::Verdict<ProbeResult> = res.json().await.unwrap();
        answered.push(v.id);
    }

    proxy.set(false).await;
    for _ in 0..3 {
        let started = Instant::now();
        let res = app.probe(&token, &id).await;
        let took = started.elapsed();
        assert_problem(res, 503, "store_unavailable").await;
        assert!(
            took < Duration::from_secs(3),
            "answered within the ledger's deadline, not the request timeout: {took:?}"
        );
    }

    proxy.set(true).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = app.probe(&token, &id).await;
        if res.status() == 200 {
            let v: idv_shared::verdict::Verdict<ProbeResult> = res.json().await.unwrap();
            answered.push(v.id);
            break;
        }
        assert_problem(res, 503, "store_unavailable").await;
        assert!(Instant::now() < deadline, "the service did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.kernel.auditor().shutdown();

    // Every answered verdict has its row, and the chain verifies.
    let client = db.connect().await.unwrap();
    let rows = client
        .query(
            "SELECT record FROM audit_ledger WHERE chain = $1 AND NOT checkpoint",
            &[&db.chain],
        )
        .await
        .unwrap();
    let recorded: HashSet<String> = rows
        .iter()
        .map(|r| {
            let record: String = r.get(0);
            let v: serde_json::Value = serde_json::from_str(&record).unwrap();
            v["vid"].as_str().unwrap().to_owned()
        })
        .collect();
    for vid in &answered {
        assert!(recorded.contains(vid), "answered verdict {vid} has no row");
    }
    assert!(matches!(
        postgres::verify_chain(&db, &db.chain, None).await.unwrap(),
        Verification::Intact { .. }
    ));
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_a_hang() {
    let db = PostgresLedger {
        url: Secret::new("postgres://postgres@127.0.0.1:9/idv_test"),
        chain: "nowhere".into(),
        timeout: Duration::from_millis(300),
    };
    let ledger = Ledger::start(Box::new(db.sink().unwrap()), 8, None).unwrap();
    let started = Instant::now();
    let err = ledger
        .append(&serde_json::json!({"a": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    ledger.shutdown();
}

/// Two replicas (two processes) on one PostgreSQL chain under concurrent load; one is killed with SIGKILL
/// mid-load, the other stopped with SIGTERM after more answers. Every answered verdict has exactly one row, and
/// the chain with both replicas' checkpoints verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_chain_and_kill_9_of_one_loses_no_answered_verdict() {
    use crate::audit::{hammer, start_child_env};
    let db = fresh_chain(&url()).await;
    let ledger = format!("{}|{}", db.url.expose(), db.chain);
    let mut a = start_child_env(&[("IDV_CRASH_LEDGER", &ledger)]).await;
    let mut b = start_child_env(&[("IDV_CRASH_LEDGER", &ledger)]).await;
    let (workers_a, mut rx_a) = hammer(&a);
    let (workers_b, mut rx_b) = hammer(&b);
    let mut answered = Vec::new();
    // Both replicas answer before the kill.
    let (mut from_a, mut from_b) = (0, 0);
    while from_a < 150 || from_b < 150 {
        tokio::select! {
            Some(v) = rx_a.recv() => { answered.push(v); from_a += 1; }
            Some(v) = rx_b.recv() => { answered.push(v); from_b += 1; }
        }
    }
    a.process.kill().unwrap(); // SIGKILL, requests in flight
    a.process.wait().unwrap();
    for w in workers_a {
        let _ = w.await;
    }
    while let Ok(v) = rx_a.try_recv() {
        answered.push(v);
    }
    // The survivor keeps answering on the same chain.
    for _ in 0..150 {
        answered.push(rx_b.recv().await.unwrap());
    }
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &b.process.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    assert!(b.process.wait().unwrap().success(), "graceful stop");
    for w in workers_b {
        let _ = w.await;
    }
    while let Ok(v) = rx_b.try_recv() {
        answered.push(v);
    }

    let client = db.connect().await.unwrap();
    let rows = client
        .query(
            "SELECT record::jsonb ->> 'vid', count(*) FROM audit_ledger \
             WHERE chain = $1 AND NOT checkpoint GROUP BY 1",
            &[&db.chain],
        )
        .await
        .unwrap();
    let mut recorded = std::collections::HashMap::new();
    for r in &rows {
        let vid: String = r.get(0);
        let n: i64 = r.get(1);
        recorded.insert(vid, n);
    }
    let missing: Vec<&String> = answered
        .iter()
        .filter(|v| !recorded.contains_key(*v))
        .collect();
    assert!(
        missing.is_empty(),
        "{} answered verdicts have no row",
        missing.len()
    );
    assert!(recorded.values().all(|n| *n == 1), "one row per verdict");
    // Both replicas' keys sign checkpoints of the one chain.
    let mut keys = KeyRing::load(&a.dir.path().join("audit/keys.json"))
        .unwrap()
        .jwks();
    keys.keys.extend(
        KeyRing::load(&b.dir.path().join("audit/keys.json"))
            .unwrap()
            .jwks()
            .keys,
    );
    let anchors = Anchors {
        keys: &keys,
        max_gap: 1000,
    };
    match postgres::verify_chain(&db, &db.chain, Some(anchors))
        .await
        .unwrap()
    {
        Verification::Intact {
            entries,
            unanchored,
            ..
        } => {
            assert!(entries as usize >= answered.len());
            assert_eq!(
                unanchored, 0,
                "the survivor's shutdown checkpoint covers the chain"
            );
            println!(
                "two replicas, one killed: answered {}, rows {entries}",
                answered.len()
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_the_database_refuses_fails_the_append_and_commits_nothing() {
    let db = fresh_chain(&url()).await;
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // A trigger refusing this chain's rows (and no other test's): the INSERT fails inside the writer's
    // transaction, whose COMMIT is already on its way behind it.
    let name = format!("refuse_{}", db.chain.replace('-', "_").to_lowercase());
    client
        .batch_execute(&format!(
            "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.chain = '{chain}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER {name} BEFORE INSERT ON audit_ledger FOR EACH ROW EXECUTE FUNCTION {name}();",
            chain = db.chain
        ))
        .await
        .unwrap();
    let ledger = Ledger::start(Box::new(db.sink().unwrap()), 16, None).unwrap();
    let refused = ledger.append(&serde_json::json!({"i": 1})).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(rows(&client, &db.chain).await, 0, "nothing committed");

    client
        .batch_execute(&format!(
            "DROP TRIGGER {name} ON audit_ledger; DROP FUNCTION {name}();"
        ))
        .await
        .unwrap();
    ledger.append(&serde_json::json!({"i": 2})).await.unwrap();
    ledger.shutdown();
    assert_eq!(rows(&client, &db.chain).await, 1);
    assert!(matches!(
        postgres::verify_chain(&db, &db.chain, None).await.unwrap(),
        Verification::Intact { entries: 1, .. }
    ));
}

async fn rows(client: &tokio_postgres::Client, chain: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM audit_ledger WHERE chain = $1",
            &[&chain],
        )
        .await
        .unwrap()
        .get(0)
}
