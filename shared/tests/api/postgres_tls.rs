//! The ledger over TLS, as managed databases require it: a PostgreSQL of the test's own with `ssl = on` and a
//! certificate from a CA made for the test (openssl), then the ledger's URL with libpq's `sslmode` and
//! `sslrootcert`. Verified TLS appends and verifies; a server the CA did not sign, a name the certificate does
//! not carry, or a server without TLS is an unavailable database, never a fall-back to the clear.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use idv_shared::{
    audit::{
        Ledger, Verification,
        ledger::{LedgerError, PostgresLedger, postgres},
    },
    config::Secret,
};

/// A PostgreSQL cluster in a temporary directory, serving TLS with a certificate for `localhost`; stopped when
/// dropped.
struct TlsPostgres {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// PostgreSQL refuses to run as root: as root (CI), its tools run as the `postgres` user.
fn as_server_user(program: &Path) -> Command {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn server_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries are not in /usr/lib/postgresql: run scripts/test.sh, which installs them")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .collect();
    dirs.sort();
    dirs.last().unwrap().join(name)
}

/// A CA and, signed by it, a certificate for `names` (subjectAltName entries); files `<stem>.pem`/`.key`.
fn make_ca(dir: &Path, stem: &str) {
    run(Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args([
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=idv test {stem}"),
        ])
        .args([
            "-keyout",
            &format!("{stem}.key"),
            "-out",
            &format!("{stem}.pem"),
        ]));
}

fn make_server_cert(dir: &Path, ca: &str, names: &str) {
    run(Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-subj", "/CN=idv test database"])
        .args(["-keyout", "server.key", "-out", "server.csr"]));
    std::fs::write(dir.join("san.ext"), format!("subjectAltName={names}\n")).unwrap();
    run(Command::new("openssl")
        .current_dir(dir)
        .args(["x509", "-req", "-in", "server.csr", "-days", "2"])
        .args(["-CA", &format!("{ca}.pem"), "-CAkey", &format!("{ca}.key")])
        .args([
            "-CAcreateserial",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]));
}

impl TlsPostgres {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        make_ca(path, "ca");
        make_ca(path, "other-ca");
        make_server_cert(path, "ca", "DNS:localhost");
        let data = path.join("data");
        std::fs::create_dir(&data).unwrap();
        let owner = as_server_user(Path::new("id")).arg("-un").output().unwrap();
        let owner = String::from_utf8_lossy(&owner.stdout).trim().to_owned();
        // The server reads its key only when only its user can (0600), from a directory it may enter.
        run(Command::new("chmod").arg("0755").arg(path));
        run(Command::new("chmod")
            .arg("0600")
            .arg(path.join("server.key")));
        run(Command::new("chown")
            .arg(&owner)
            .arg(&data)
            .arg(path.join("server.key"))
            .arg(path.join("server.pem")));
        run(as_server_user(&server_bin("initdb"))
            .args(["--no-sync", "-A", "trust", "-U", "postgres", "-D"])
            .arg(&data));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = as_server_user(&server_bin("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "ssl=on"])
            .args(["-p", &port.to_string()])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", data.display()))
            .arg("-c")
            .arg(format!(
                "ssl_cert_file={}",
                path.join("server.pem").display()
            ))
            .arg("-c")
            .arg(format!(
                "ssl_key_file={}",
                path.join("server.key").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self { child, port, dir };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The ledger's URL: `host` is the name TLS verifies; the connection goes to 127.0.0.1 either way.
    fn ledger(&self, host: &str, query: &str) -> PostgresLedger {
        PostgresLedger {
            url: Secret::new(format!(
                "postgres://postgres@{host}:{}/postgres?hostaddr=127.0.0.1&{query}",
                self.port
            )),
            chain: format!("tls-{}", ulid::Ulid::new()),
            timeout: Duration::from_secs(5),
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// Whether the server sees this connection encrypted.
async fn encrypted(db: &PostgresLedger) -> Result<bool, LedgerError> {
    let client = db.connect().await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_appends_over_verified_tls_and_never_falls_back_to_the_clear() {
    let server = tokio::task::spawn_blocking(TlsPostgres::start)
        .await
        .unwrap();
    let ca = server.file("ca.pem");

    // Verified TLS: the chain of trust and the name both hold. The writer appends, and the chain verifies.
    let db = server.ledger(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    // The connection timed out while the cluster was still starting: wait until it answers.
    let started = Instant::now();
    let tls = loop {
        match encrypted(&db).await {
            Ok(tls) => break tls,
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                eprintln!("waiting for PostgreSQL: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(tls, "the server sees the ledger's connection encrypted");
    postgres::migrate(&db).await.unwrap();
    let ledger = Ledger::start(Box::new(db.sink().unwrap()), 8, None).unwrap();
    for i in 0..5 {
        ledger.append(&serde_json::json!({ "i": i })).await.unwrap();
    }
    ledger.shutdown();
    let verified = postgres::verify_chain(&db, &db.chain, None).await.unwrap();
    assert!(
        matches!(verified, Verification::Intact { entries: 5, .. }),
        "{verified:?}"
    );
    // `require` verifies as much as `verify-full`, as does a URL-escaped path.
    let escaped = ca.replace('/', "%2F");
    let require = server.ledger(
        "localhost",
        &format!("sslmode=require&sslrootcert={escaped}"),
    );
    assert_eq!(encrypted(&require).await.ok(), Some(true));

    // The same server in the clear when the URL does not ask for TLS (the embedded default is unchanged).
    assert_eq!(
        encrypted(&server.ledger("localhost", "")).await.ok(),
        Some(false)
    );

    // Refused, each as an unavailable database (503 store_unavailable) and not in the clear: a CA that did not
    // sign the server's certificate, a name the certificate does not carry, and the system's CAs (which know
    // nothing of the test's).
    let other = server.file("other-ca.pem");
    for (what, db) in [
        (
            "another CA",
            server.ledger(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={other}"),
            ),
        ),
        (
            "another name",
            server.ledger(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
        ),
        (
            "the system's CAs",
            server.ledger("localhost", "sslmode=verify-full"),
        ),
    ] {
        let err = encrypted(&db).await.expect_err(what);
        assert!(
            matches!(err, LedgerError::Unavailable(_)),
            "{what}: {err:?}"
        );
        let ledger = Ledger::start(Box::new(db.sink().unwrap()), 8, None).unwrap();
        let appended = ledger.append(&serde_json::json!({ "refused": what })).await;
        assert!(
            matches!(appended, Err(LedgerError::Unavailable(_))),
            "{what}: {appended:?}"
        );
        ledger.shutdown();
    }
    let refused = server.ledger(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    );
    let err = refused
        .connect()
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("certificate"), "the cause is named: {err}");

    // A server without TLS, asked for it: refused, not used in the clear. The suite's own test database serves
    // no TLS (scripts/test.sh starts it so) or one with a certificate the test's CA did not sign: either way the
    // ledger must not connect.
    let plain = std::env::var("IDV_TEST_POSTGRES_URL").expect("run through scripts/test.sh");
    let asked = PostgresLedger {
        url: Secret::new(format!(
            "{plain}{}sslmode=require&sslrootcert={ca}",
            if plain.contains('?') { '&' } else { '?' }
        )),
        chain: "no-tls".into(),
        timeout: Duration::from_secs(5),
    };
    assert!(matches!(
        asked.connect().await,
        Err(LedgerError::Unavailable(_))
    ));
}

#[test]
fn a_ca_file_that_cannot_be_used_stops_the_service_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    for roots in [junk.display().to_string(), "/nonexistent/ca.pem".into()] {
        let db = PostgresLedger {
            url: Secret::new(format!(
                "postgres://postgres:hunter2@db/x?sslmode=verify-full&sslrootcert={roots}"
            )),
            chain: "x".into(),
            timeout: Duration::from_secs(1),
        };
        let err = db.sink().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("sslrootcert"), "{roots}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
