//! Where the gateway's public keys come from: a file read at start-up, or a URL refreshed in the background
//! and re-fetched (at most every few seconds) when a token names a key we have not seen.

use std::{
    path::Path,
    sync::RwLock,
    time::{Duration, Instant},
};

use jsonwebtoken::jwk::{Jwk, JwkSet};

/// How long a fetched key set is used before it is fetched again.
const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// Least time between fetches triggered by unknown key ids, so forged `kid`s cannot hammer the issuer.
const MIN_REFETCH: Duration = Duration::from_secs(10);

/// Why a key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The file could not be read or parsed.
    #[error("JWKS file {0}: {1}")]
    File(String, String),
    /// The URL could not be fetched or parsed.
    #[error("JWKS URL {0}: {1}")]
    Url(String, String),
}

/// A gateway key set.
pub enum JwksSource {
    /// Keys loaded once.
    Static(JwkSet),
    /// Keys fetched from a URL and cached.
    Remote {
        /// The URL.
        url: String,
        /// HTTP client with timeouts.
        client: reqwest::Client,
        /// The last fetch.
        cache: RwLock<Option<(JwkSet, Instant)>>,
        /// The last attempt, successful or not.
        last_attempt: RwLock<Option<Instant>>,
    },
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static(set) => write!(f, "JwksSource::Static({} keys)", set.keys.len()),
            Self::Remote { url, .. } => write!(f, "JwksSource::Remote({url})"),
        }
    }
}

impl JwksSource {
    /// Reads a key set from a JSON file.
    pub fn from_file(path: &Path) -> Result<Self, JwksError> {
        let err =
            |e: &dyn std::fmt::Display| JwksError::File(path.display().to_string(), e.to_string());
        let raw = std::fs::read(path).map_err(|e| err(&e))?;
        let set: JwkSet = serde_json::from_slice(&raw).map_err(|e| err(&e))?;
        Ok(Self::Static(set))
    }

    /// A key set behind a URL, fetched now (so a wrong URL fails start-up) and refreshed as it ages.
    pub async fn from_url(url: &str) -> Result<Self, JwksError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| JwksError::Url(url.to_owned(), e.to_string()))?;
        let set = fetch(&client, url).await?;
        Ok(Self::Remote {
            url: url.to_owned(),
            client,
            cache: RwLock::new(Some((set, Instant::now()))),
            last_attempt: RwLock::new(Some(Instant::now())),
        })
    }

    /// File path or `http(s)://` URL.
    pub async fn from_location(location: &str) -> Result<Self, JwksError> {
        if location.starts_with("http://") || location.starts_with("https://") {
            Self::from_url(location).await
        } else {
            Self::from_file(Path::new(location))
        }
    }

    /// The key with this id, fetching a fresh set first when the cached one is stale or lacks it.
    pub async fn find(&self, kid: &str) -> Option<Jwk> {
        match self {
            Self::Static(set) => set.find(kid).cloned(),
            Self::Remote {
                url,
                client,
                cache,
                last_attempt,
            } => {
                let (hit, stale) = {
                    let cached = cache.read().ok()?;
                    match cached.as_ref() {
                        Some((set, at)) => (set.find(kid).cloned(), at.elapsed() > REFRESH_EVERY),
                        None => (None, true),
                    }
                };
                if hit.is_some() && !stale {
                    return hit;
                }
                let may_fetch = last_attempt
                    .read()
                    .ok()?
                    .is_none_or(|t| t.elapsed() > MIN_REFETCH);
                if !may_fetch {
                    return hit;
                }
                if let Ok(mut t) = last_attempt.write() {
                    *t = Some(Instant::now());
                }
                match fetch(client, url).await {
                    Ok(set) => {
                        let found = set.find(kid).cloned();
                        if let Ok(mut c) = cache.write() {
                            *c = Some((set, Instant::now()));
                        }
                        found
                    }
                    Err(e) => {
                        // Keep serving with the keys we have: an issuer outage must not lock everyone out.
                        tracing::warn!(error = %e, "JWKS refresh failed");
                        hit
                    }
                }
            }
        }
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<JwkSet, JwksError> {
    let err = |e: &dyn std::fmt::Display| JwksError::Url(url.to_owned(), e.to_string());
    let res = client.get(url).send().await.map_err(|e| err(&e))?;
    let res = res.error_for_status().map_err(|e| err(&e))?;
    let body = res.bytes().await.map_err(|e| err(&e))?;
    if body.len() > 1024 * 1024 {
        return Err(err(&"key set larger than 1 MiB"));
    }
    serde_json::from_slice(&body).map_err(|e| err(&e))
}
