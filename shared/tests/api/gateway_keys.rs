//! The production auth path: a gateway's own keys (EdDSA, ES256, RS256) from a JWKS file or URL, never the dev
//! issuer. Key rotation by the issuer, the throttled single-flight refetch on unknown key ids, re-reading a
//! JWKS file on reload (SIGHUP), RFC 7515 `crit`, and lifetimes whose arithmetic would overflow.

use std::{
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use idv_shared::auth::AuthSettings;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, assert_problem, spawn_app_with};

const ISSUER: &str = "https://gateway.example";

enum Signer {
    Ed(ed25519_dalek::SigningKey),
    Es(p256::ecdsa::SigningKey),
    Rs(Box<rsa::RsaPrivateKey>),
}

/// One gateway signing key and its public JWK.
struct GatewayKey {
    kid: String,
    signer: Signer,
}

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).unwrap();
    s
}

/// RSA key generation takes a while unoptimised; one key serves every test of the binary.
fn rsa_key() -> rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap())
        .clone()
}

impl GatewayKey {
    fn ed(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            signer: Signer::Ed(ed25519_dalek::SigningKey::from_bytes(&seed())),
        }
    }
    fn es(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            signer: Signer::Es(p256::ecdsa::SigningKey::from_slice(&seed()).unwrap()),
        }
    }
    fn rs(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            signer: Signer::Rs(Box::new(rsa_key())),
        }
    }

    fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Ed(_) => "EdDSA",
            Signer::Es(_) => "ES256",
            Signer::Rs(_) => "RS256",
        }
    }

    fn jwk(&self) -> Value {
        let mut jwk = match &self.signer {
            Signer::Ed(k) => json!({
                "kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.verifying_key().as_bytes()),
            }),
            Signer::Es(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC", "crv": "P-256",
                    "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap()),
                })
            }
            Signer::Rs(k) => {
                use rsa::traits::PublicKeyParts;
                json!({
                    "kty": "RSA", "n": B64.encode(k.n().to_bytes_be()), "e": B64.encode(k.e().to_bytes_be()),
                })
            }
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg());
        jwk["use"] = json!("sig");
        jwk
    }

    /// A compact JWS over `claims` with `extra` merged into the header (to build odd headers).
    fn sign_with(&self, extra: Value, claims: &Value) -> String {
        let mut header = json!({ "alg": self.alg(), "typ": "JWT", "kid": self.kid });
        for (k, v) in extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = match &self.signer {
            Signer::Ed(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(input.as_bytes()).to_bytes().to_vec()
            }
            Signer::Es(k) => {
                use p256::ecdsa::signature::Signer as _;
                let s: p256::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            Signer::Rs(k) => {
                use rsa::signature::{SignatureEncoding, Signer as _};
                let key = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone());
                key.sign(input.as_bytes()).to_vec()
            }
        };
        format!("{input}.{}", B64.encode(sig))
    }

    fn token(&self) -> String {
        self.sign_with(json!({}), &claims(json!({})))
    }
}

fn claims(overrides: Value) -> Value {
    let now = idv_shared::clock::Clock::now_secs(&idv_shared::clock::SystemClock);
    let mut c = json!({
        "iss": ISSUER, "aud": "face-match", "sub": "gw", "iat": now, "exp": now + 300,
        "scope": "face:verify", "tenant": "acme", "residency": ["eu"],
    });
    for (k, v) in overrides.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn jwks(keys: &[&GatewayKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

async fn app_trusting(location: String, min_refetch_secs: u64) -> (TestApp, String) {
    let app = spawn_app_with(Options {
        auth: AuthSettings {
            issuer: Some(ISSUER.into()),
            jwks: Some(location),
            jwks_min_refetch_secs: min_refetch_secs,
            ..AuthSettings::default()
        },
        ..Options::default()
    })
    .await;
    let id = app.put("eu", TestApp::jpeg(100)).await.to_string();
    (app, id)
}

async fn status(app: &TestApp, id: &str, token: &str) -> u16 {
    app.probe(token, id).await.status().as_u16()
}

#[tokio::test]
async fn a_jwks_file_serves_every_algorithm_and_is_reread_on_reload() {
    let (ed, es, rs) = (
        GatewayKey::ed("gw-ed"),
        GatewayKey::es("gw-es"),
        GatewayKey::rs("gw-rs"),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway-jwks.json");
    std::fs::write(&file, jwks(&[&ed, &es]).to_string()).unwrap();
    let (app, id) = app_trusting(file.display().to_string(), 10).await;

    assert_eq!(status(&app, &id, &ed.token()).await, 200, "EdDSA");
    assert_eq!(status(&app, &id, &es.token()).await, 200, "ES256");
    assert_eq!(
        status(&app, &id, &rs.token()).await,
        401,
        "RS256 not yet trusted"
    );
    assert_eq!(
        status(&app, &id, &app.token(&["eu"])).await,
        401,
        "the dev issuer is not trusted once a JWKS is configured"
    );
    // A header claiming another algorithm than its key's is refused, whatever the signature.
    let mismatched = es.sign_with(json!({ "kid": "gw-ed" }), &claims(json!({})));
    assert_problem(app.probe(&mismatched, &id).await, 401, "unauthorized").await;

    // The issuer rotates: the mounted file changes, and a reload (what SIGHUP does) picks it up.
    std::fs::write(&file, jwks(&[&es, &rs]).to_string()).unwrap();
    assert_eq!(
        status(&app, &id, &rs.token()).await,
        401,
        "before the reload"
    );
    app.kernel.reload();
    assert_eq!(
        status(&app, &id, &rs.token()).await,
        200,
        "RS256 after the reload"
    );
    assert_eq!(status(&app, &id, &es.token()).await, 200);
    assert_eq!(status(&app, &id, &ed.token()).await, 401, "the dropped key");

    // A file broken mid-write does not lock anyone out: the keys in use stay.
    std::fs::write(&file, "{\"keys\": [").unwrap();
    app.kernel.reload();
    assert_eq!(status(&app, &id, &rs.token()).await, 200);
}

#[tokio::test]
async fn an_unknown_critical_header_or_an_overflowing_lifetime_is_refused() {
    let ed = GatewayKey::ed("gw-ed");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway-jwks.json");
    std::fs::write(&file, jwks(&[&ed]).to_string()).unwrap();
    let (app, id) = app_trusting(file.display().to_string(), 10).await;
    let now = idv_shared::clock::Clock::now_secs(&idv_shared::clock::SystemClock);
    let cases = [
        (
            "unknown crit",
            ed.sign_with(
                json!({ "crit": ["x-unknown-ext"], "x-unknown-ext": true }),
                &claims(json!({})),
            ),
        ),
        (
            "crit naming a registered header",
            ed.sign_with(json!({ "crit": ["exp"] }), &claims(json!({}))),
        ),
        (
            "unencoded payload (RFC 7797)",
            ed.sign_with(json!({ "b64": false, "crit": ["b64"] }), &claims(json!({}))),
        ),
        (
            "exp - iat overflows",
            ed.sign_with(
                json!({}),
                &claims(json!({ "iat": i64::MIN + 1, "exp": now + 300 })),
            ),
        ),
        (
            "exp before iat",
            ed.sign_with(json!({}), &claims(json!({ "iat": now, "exp": now - 10 }))),
        ),
    ];
    for (name, token) in cases {
        let body = assert_problem(app.probe(&token, &id).await, 401, "unauthorized").await;
        println!("{name}: {}", body["detail"]);
    }
    assert_eq!(
        status(&app, &id, &ed.token()).await,
        200,
        "the baseline passes"
    );
}

struct Issuer {
    keys: RwLock<Value>,
    fetches: AtomicUsize,
}

async fn serve_jwks(state: State<Arc<Issuer>>) -> Json<Value> {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    // A slow issuer, so concurrent requests really overlap a fetch in progress.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Json(state.keys.read().unwrap().clone())
}

async fn all_statuses(app: &TestApp, id: &str, tokens: Vec<String>) -> Vec<u16> {
    let calls = tokens.iter().map(|t| status(app, id, t));
    futures::future::join_all(calls).await
}

#[tokio::test]
async fn a_jwks_url_follows_the_issuers_rotation_with_one_throttled_fetch() {
    let (es, rs, ed) = (
        GatewayKey::es("gw-es-1"),
        GatewayKey::rs("gw-rs-1"),
        GatewayKey::ed("gw-ed-2"),
    );
    let issuer = Arc::new(Issuer {
        keys: RwLock::new(jwks(&[&es, &rs])),
        fetches: AtomicUsize::new(0),
    });
    let router = Router::new()
        .route("/.well-known/jwks.json", get(serve_jwks))
        .with_state(issuer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (app, id) = app_trusting(url, 1).await;
    let fetches = || issuer.fetches.load(Ordering::SeqCst);
    assert_eq!(fetches(), 1, "fetched once at start-up");

    assert_eq!(status(&app, &id, &es.token()).await, 200, "ES256");
    assert_eq!(status(&app, &id, &rs.token()).await, 200, "RS256");
    assert_eq!(fetches(), 1, "known keys come from the cache");

    // The issuer rotates: a new key appears, the old ES256 key is dropped.
    *issuer.keys.write().unwrap() = jwks(&[&rs, &ed]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let statuses = all_statuses(&app, &id, (0..20).map(|_| ed.token()).collect()).await;
    assert_eq!(statuses, vec![200; 20], "tokens of the new key");
    assert_eq!(fetches(), 2, "twenty requests naming a new key: one fetch");
    assert_eq!(
        status(&app, &id, &es.token()).await,
        401,
        "the dropped key is refused"
    );
    assert_eq!(status(&app, &id, &rs.token()).await, 200);

    // Forged key ids cannot make the service hammer the issuer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let forged: Vec<String> = (0..20)
        .map(|i| GatewayKey::ed(&format!("forged-{i}")).token())
        .collect();
    assert_eq!(all_statuses(&app, &id, forged).await, vec![401; 20]);
    assert_eq!(fetches(), 3, "twenty unknown key ids at once: one fetch");
    let more: Vec<String> = (0..5)
        .map(|i| GatewayKey::ed(&format!("forged-more-{i}")).token())
        .collect();
    assert_eq!(all_statuses(&app, &id, more).await, vec![401; 5]);
    assert_eq!(fetches(), 3, "within the refetch interval: no fetch");
}
