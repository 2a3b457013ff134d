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
    clock::SharedClock,
    error::{ApiError, ErrorCode},
    limits::RateLimiter,
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
    nbf: Option<i64>,
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
    clock: SharedClock,
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, detail)
}

impl Authenticator {
    /// An authenticator for `audience` trusting `issuer`'s keys; `exp`, `nbf` and `iat` are judged by `clock`.
    pub fn new(
        audience: &str,
        issuer: String,
        jwks: JwksSource,
        settings: &AuthSettings,
        clock: SharedClock,
    ) -> Self {
        Self {
            audience: audience.to_owned(),
            issuer,
            jwks,
            max_lifetime_secs: settings.max_lifetime_secs,
            leeway_secs: settings.leeway_secs,
            clock,
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
        // Time is judged below, on the suite's clock, in checked arithmetic: jsonwebtoken would read the
        // system time itself.
        validation.validate_exp = false;
        validation.validate_nbf = false;
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
        check_times(
            TokenTimes {
                iat: claims.iat,
                exp: claims.exp,
                nbf: claims.nbf,
            },
            self.clock.now_secs(),
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

/// A token's time claims.
#[derive(Debug, Clone, Copy)]
struct TokenTimes {
    iat: i64,
    exp: i64,
    nbf: Option<i64>,
}

/// The time rules (RFC 7519 §4.1.4–4.1.6 with leeway, and the lifetime cap), in checked arithmetic: claims
/// are attacker-chosen integers, so `exp - iat` and `now ± leeway` must not wrap (in a release build a
/// wrapped difference would pass the cap).
fn check_times(
    t: TokenTimes,
    now: i64,
    leeway_secs: u64,
    max_lifetime_secs: i64,
) -> Result<(), ApiError> {
    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    let (earliest, latest) = (now.saturating_sub(leeway), now.saturating_add(leeway));
    if t.exp < earliest {
        return Err(unauthorized("token expired"));
    }
    if t.nbf.is_some_and(|nbf| nbf > latest) {
        return Err(unauthorized("token not yet valid"));
    }
    if t.iat > latest {
        return Err(unauthorized("token not yet valid (issued in the future)"));
    }
    match t.exp.checked_sub(t.iat) {
        Some(lifetime) if (0..=max_lifetime_secs).contains(&lifetime) => Ok(()),
        Some(lifetime) if lifetime > max_lifetime_secs => {
            Err(unauthorized("token lifetime exceeds the maximum"))
        }
        _ => Err(unauthorized("token exp and iat do not form a lifetime")),
    }
}

/// What [`Authorized`] needs, and all it can reach: the token checks and the rate limiter. A service's state
/// provides it through `FromRef`.
#[derive(Debug, Clone)]
pub struct AuthContext {
    /// Gateway token checks.
    pub authenticator: Arc<Authenticator>,
    /// Per-tenant, per-route limits.
    pub limiter: Arc<dyn RateLimiter>,
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
    AuthContext: FromRef<St>,
    S: Scope,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        let auth = AuthContext::from_ref(state);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let caller = auth.authenticator.authenticate(header).await?;
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
        auth.limiter.check(&caller.tenant, route).await?;
        Ok(Self {
            caller,
            _scope: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(r: Result<(), ApiError>) -> String {
        r.err().map(|e| e.detail).unwrap_or_default()
    }

    #[test]
    fn times_are_judged_on_the_given_now_with_leeway_and_without_wrapping() {
        let now = 1_800_000_000;
        let ok = TokenTimes {
            iat: now - 60,
            exp: now + 240,
            nbf: Some(now - 60),
        };
        assert!(check_times(ok, now, 30, 900).is_ok());
        // Expired 20 s ago is inside a 30 s leeway; 40 s ago is not.
        let late = |by| TokenTimes {
            iat: now - 300 - by,
            exp: now - by,
            nbf: None,
        };
        assert!(check_times(late(20), now, 30, 900).is_ok());
        assert_eq!(detail(check_times(late(40), now, 30, 900)), "token expired");
        let early = TokenTimes {
            nbf: Some(now + 31),
            ..ok
        };
        assert_eq!(
            detail(check_times(early, now, 30, 900)),
            "token not yet valid"
        );
        let long = TokenTimes {
            exp: now + 900,
            ..ok
        };
        assert_eq!(
            detail(check_times(long, now, 30, 900)),
            "token lifetime exceeds the maximum"
        );
        let wrapping = TokenTimes {
            iat: i64::MIN,
            exp: i64::MAX,
            nbf: Some(i64::MIN),
        };
        assert!(check_times(wrapping, now, u64::MAX, 900).is_err());
        assert!(check_times(ok, i64::MAX, u64::MAX, 900).is_ok());
    }
}
