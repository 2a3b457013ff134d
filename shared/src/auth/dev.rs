//! The embedded default's dev issuer: an Ed25519 key created on first run that mints short-lived gateway
//! tokens for local use. A service that trusts it says so loudly at start-up.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::JwksSource;
use crate::{
    audit::{KeyRing, jws::JwsError},
    clock::SharedClock,
};

/// The `iss` of dev tokens.
pub const DEV_ISSUER: &str = "idv-dev-issuer";

/// Longest lifetime a dev token may be minted with (the services' default maximum).
pub const MAX_DEV_TTL_SECS: i64 = 15 * 60;

/// The dev issuer's key ring, and the clock its tokens are dated by.
#[derive(Debug)]
pub struct DevIssuer {
    ring: KeyRing,
    clock: SharedClock,
}

/// What a dev token grants.
#[derive(Debug, Clone)]
pub struct MintRequest {
    /// `aud`: the service name.
    pub audience: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Tenant.
    pub tenant: String,
    /// Allowed regions.
    pub regions: Vec<String>,
    /// Lifetime in seconds (at most [`MAX_DEV_TTL_SECS`]).
    pub ttl_secs: i64,
}

#[derive(Serialize)]
struct DevClaims<'a> {
    iss: &'static str,
    sub: &'static str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    scope: String,
    tenant: &'a str,
    residency: &'a [String],
}

impl DevIssuer {
    /// The key file inside a data directory.
    pub fn key_path(data_dir: &Path) -> PathBuf {
        data_dir.join("dev-issuer").join("keys.json")
    }

    /// Loads the dev key, creating it on first run; tokens are dated by `clock` (a test's manual clock
    /// mints tokens its services accept).
    pub fn load_or_create(data_dir: &Path, clock: SharedClock) -> Result<Self, JwsError> {
        Ok(Self {
            ring: KeyRing::load_or_create(&Self::key_path(data_dir), &*clock)?,
            clock,
        })
    }

    /// The dev key's public JWKS, as the authenticator consumes it.
    pub fn jwks_source(&self) -> JwksSource {
        let json = serde_json::to_value(self.ring.jwks()).unwrap_or_default();
        JwksSource::Static(
            serde_json::from_value(json).unwrap_or(jsonwebtoken::jwk::JwkSet { keys: vec![] }),
        )
    }

    /// Mints a gateway token.
    pub fn mint(&self, req: &MintRequest) -> Result<String, JwsError> {
        let now = self.clock.now_secs();
        let claims = DevClaims {
            iss: DEV_ISSUER,
            sub: "dev",
            aud: &req.audience,
            iat: now,
            nbf: now,
            exp: now.saturating_add(req.ttl_secs.clamp(1, MAX_DEV_TTL_SECS)),
            jti: ulid::Ulid::new().to_string(),
            scope: req.scopes.join(" "),
            tenant: &req.tenant,
            residency: &req.regions,
        };
        self.ring.sign(&claims)
    }

    /// Signs arbitrary claims with the dev key (tests build odd tokens with it).
    pub fn sign_raw<C: Serialize>(&self, claims: &C) -> Result<String, JwsError> {
        self.ring.sign(claims)
    }

    /// The dev key's id.
    pub fn kid(&self) -> &str {
        self.ring.active().0
    }

    /// The dev key's public key bytes (tests use it to forge HS256 tokens "signed" with the public key).
    pub fn public_key_b64(&self) -> String {
        self.ring
            .jwks()
            .keys
            .first()
            .map(|k| k.x.clone())
            .unwrap_or_default()
    }
}
