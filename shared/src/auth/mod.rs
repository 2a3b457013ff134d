//! Gateway authentication: bearer JWTs with pinned algorithms, checked against a JWKS.
//!
//! A request passes when its token is signed with EdDSA, ES256 or RS256 by a key of the configured JWKS (the
//! key's type must match the header's algorithm, so an `HS256` token "signed" with a public key is refused),
//! names our issuer and this service as audience, is current, lives no longer than the maximum, and carries
//! a tenant, scopes and the residency regions the caller may use.

pub mod dev;
pub mod jwks;

use std::{marker::PhantomData, sync::Arc};

use axum::{
    extract::{FromRef, FromRequestParts, MatchedPath},
    http::{header::AUTHORIZATION, request::Parts},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;

pub use jwks::{JwksError, JwksSource};

use crate::{
    error::{ApiError, ErrorCode},
    kernel::Kernel,
    store::Residency,
};

/// Algorithms a gateway token may use. Never `none`, never HMAC.
pub const ALLOWED_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// Token checks that are not in the JWKS.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct AuthSettings {
    /// Required `iss`. Defaults to the dev issuer when no JWKS is configured.
    pub issuer: Option<String>,
    /// JWKS file path or `http(s)://` URL. When absent, the embedded dev issuer is trusted (and logged loudly).
    pub jwks: Option<String>,
    /// Longest allowed `exp - iat`, in seconds.
    pub max_lifetime_secs: i64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Least time between JWKS fetches triggered by tokens naming an unknown key, in seconds.
    pub jwks_min_refetch_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: None,
            jwks: None,
            max_lifetime_secs: 15 * 60,
            leeway_secs: 30,
            jwks_min_refetch_secs: 10,
        }
    }
}

/// Who is calling, as established by their token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant the gateway acts for.
    pub tenant: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Regions whose artifacts the caller may use.
    pub regions: Vec<Residency>,
}

impl Caller {
    /// Whether a scope was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A route's required scope, as a type so the extractor checks it before the handler runs.
pub trait Scope: Send + Sync + 'static {
    /// The scope string.
    const NAME: &'static str;
}

macro_rules! scopes {
    ($($(#[$doc:meta])* $t:ident => $name:literal),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $t;
        impl Scope for $t { const NAME: &'static str = $name; }
    )*};
}
scopes! {
    /// `ocr:verify`.
    OcrVerify => "ocr:verify",
    /// `face:verify`.
    FaceVerify => "face:verify",
    /// `phone:challenge`.
    PhoneChallenge => "phone:challenge",
    /// `phone:verify`.
    PhoneVerify => "phone:verify",
    /// `phone:admin`: operator actions such as unblocking a number.
    PhoneAdmin => "phone:admin",
    /// `face:admin`: operator actions such as reloading the models.
    FaceAdmin => "face:admin",
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => s.split_whitespace().map(str::to_owned).collect(),
            Self::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
struct GatewayClaims {
    exp: i64,
    iat: i64,
    scope: OneOrMany,
    tenant: String,
    residency: OneOrMany,
}

/// Checks gateway tokens for one service (the audience).
#[derive(Debug)]
pub struct Authenticator {
    audience: String,
    issuer: String,
    jwks: JwksSource,
    max_lifetime_secs: i64,
    leeway_secs: u64,
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, detail)
}

impl Authenticator {
    /// An authenticator for `audience` trusting `issuer`'s keys.
    pub fn new(audience: &str, issuer: String, jwks: JwksSource, settings: &AuthSettings) -> Self {
        Self {
            audience: audience.to_owned(),
            issuer,
            jwks,
            max_lifetime_secs: settings.max_lifetime_secs,
            leeway_secs: settings.leeway_secs,
        }
    }

    /// The trusted issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Re-reads a file-backed gateway key set (SIGHUP); returns how many keys are in use.
    pub fn reload_keys(&self) -> Result<usize, jwks::JwksError> {
        self.jwks.reload()
    }

    /// Authenticates an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let value = authorization.ok_or_else(|| unauthorized("missing bearer token"))?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or_else(|| unauthorized("malformed Authorization header"))?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(unauthorized(
                "malformed Authorization header; expected 'Bearer <token>'",
            ));
        }
        let token = token.trim();
        refuse_critical_extensions(token)?;
        // An unknown `alg` (including `none`) does not even parse as a header.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthorized("malformed token or algorithm not allowed"))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(unauthorized("token algorithm not allowed"));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| unauthorized("token has no key id"))?;
        let jwk = self
            .jwks
            .find(kid)
            .await
            .ok_or_else(|| unauthorized("token signed by an unknown key"))?;
        if jwk
            .common
            .key_algorithm
            .is_some_and(|a| a.to_string() != format!("{:?}", header.alg))
        {
            return Err(unauthorized("token algorithm does not match its key"));
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|_| unauthorized("token signed by an unusable key"))?;

        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway_secs;
        let data = jsonwebtoken::decode::<GatewayClaims>(token, &key, &validation).map_err(|e| {
            unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::ImmatureSignature => "token not yet valid",
                ErrorKind::InvalidIssuer => "token issuer not trusted",
                ErrorKind::InvalidAudience => "token audience is not this service",
                ErrorKind::InvalidSignature => "token signature invalid",
                ErrorKind::InvalidAlgorithm => "token algorithm does not match its key",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim (exp, iat, iss, aud)",
                ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => {
                    "token claims malformed or missing (exp, iat, tenant, scope and residency are required)"
                }
                _ => "token invalid",
            })
        })?;
        let claims = data.claims;
        check_lifetime(
            claims.iat,
            claims.exp,
            chrono::Utc::now().timestamp(),
            self.leeway_secs,
            self.max_lifetime_secs,
        )?;
        if claims.tenant.is_empty() || claims.tenant.len() > 128 {
            return Err(unauthorized("token tenant missing or too long"));
        }
        let regions = claims
            .residency
            .into_vec()
            .iter()
            .map(|r| r.parse())
            .collect::<Result<Vec<Residency>, _>>()
            .map_err(|_| unauthorized("token residency claim holds an invalid region"))?;
        Ok(Caller {
            tenant: claims.tenant,
            scopes: claims.scope.into_vec(),
            regions,
        })
    }
}

/// RFC 7515 §4.1.11: a header that lists critical extensions the recipient does not understand must be refused.
/// This service understands none, so any `crit` (and any malformed header) is refused before anything else.
fn refuse_critical_extensions(token: &str) -> Result<(), ApiError> {
    use base64::Engine;
    let header = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|raw| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&raw).ok()
        })
        .ok_or_else(|| unauthorized("malformed token header"))?;
    if header.contains_key("crit") {
        return Err(unauthorized(
            "token header lists critical extensions (crit) this service does not understand",
        ));
    }
    Ok(())
}

/// The lifetime rules, in checked arithmetic: claims are attacker-chosen integers, so `exp - iat` and
/// `now + leeway` must not wrap (in a release build a wrapped difference would pass the cap).
fn check_lifetime(
    iat: i64,
    exp: i64,
    now: i64,
    leeway_secs: u64,
    max_lifetime_secs: i64,
) -> Result<(), ApiError> {
    let latest_iat = i64::try_from(leeway_secs)
        .ok()
        .and_then(|l| now.checked_add(l))
        .unwrap_or(i64::MAX);
    if iat > latest_iat {
        return Err(unauthorized("token not yet valid (issued in the future)"));
    }
    match exp.checked_sub(iat) {
        Some(lifetime) if (0..=max_lifetime_secs).contains(&lifetime) => Ok(()),
        Some(lifetime) if lifetime > max_lifetime_secs => {
            Err(unauthorized("token lifetime exceeds the maximum"))
        }
        _ => Err(unauthorized("token exp and iat do not form a lifetime")),
    }
}

/// Extracts an authenticated caller holding scope `S`, and applies the per-tenant, per-route rate limit.
#[derive(Debug, Clone)]
pub struct Authorized<S: Scope> {
    /// The caller.
    pub caller: Caller,
    _scope: PhantomData<S>,
}

impl<S: Scope> std::ops::Deref for Authorized<S> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<St, S> FromRequestParts<St> for Authorized<S>
where
    St: Send + Sync,
    Arc<Kernel>: FromRef<St>,
    S: Scope,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        let kernel = Arc::<Kernel>::from_ref(state);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let caller = kernel.auth.authenticate(header).await?;
        if !caller.has_scope(S::NAME) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("the token lacks scope '{}'", S::NAME),
            ));
        }
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|p| p.as_str())
            .unwrap_or("unmatched");
        kernel.limiter.check(&caller.tenant, route)?;
        Ok(Self {
            caller,
            _scope: PhantomData,
        })
    }
}
