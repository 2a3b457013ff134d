//! Where the gateway's public keys come from: a file (re-read on SIGHUP), or a URL whose key set is cached and
//! fetched again when a request finds it older than [`REFRESH_EVERY`] or names a key it lacks. Fetches are
//! single-flight (concurrent requests wait for the one fetch in progress) and throttled, so forged `kid`s cannot
//! make the service hammer the issuer.

use std::{
    path::{Path, PathBuf},
    sync::RwLock,
    time::{Duration, Instant},
};

use jsonwebtoken::jwk::{Jwk, JwkSet};

/// How long a fetched key set is used before it is fetched again.
const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// Largest key set accepted from a URL or a file.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

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

/// A key set fetched from a URL, and when.
pub struct Cached {
    set: JwkSet,
    at: Instant,
}

/// A gateway key set.
pub enum JwksSource {
    /// Keys fixed for the process's life (the dev issuer's).
    Static(JwkSet),
    /// Keys read from a file (a mounted Secret or ConfigMap), re-read by [`JwksSource::reload`].
    File {
        /// The file.
        path: PathBuf,
        /// The keys last read.
        set: RwLock<JwkSet>,
    },
    /// Keys fetched from a URL and cached.
    Remote {
        /// The URL.
        url: String,
        /// HTTP client with timeouts.
        client: reqwest::Client,
        /// The last successful fetch.
        cache: RwLock<Cached>,
        /// The last attempt, successful or not; held while a fetch runs, so fetches are single-flight.
        last_attempt: tokio::sync::Mutex<Instant>,
        /// Least time between fetches triggered by unknown key ids.
        min_refetch: Duration,
    },
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static(set) => write!(f, "JwksSource::Static({} keys)", set.keys.len()),
            Self::File { path, .. } => write!(f, "JwksSource::File({})", path.display()),
            Self::Remote { url, .. } => write!(f, "JwksSource::Remote({url})"),
        }
    }
}

fn read_file(path: &Path) -> Result<JwkSet, JwksError> {
    let err =
        |e: &dyn std::fmt::Display| JwksError::File(path.display().to_string(), e.to_string());
    let raw = std::fs::read(path).map_err(|e| err(&e))?;
    if raw.len() > MAX_JWKS_BYTES {
        return Err(err(&"key set larger than 1 MiB"));
    }
    serde_json::from_slice(&raw).map_err(|e| err(&e))
}

impl JwksSource {
    /// Reads a key set from a JSON file; [`JwksSource::reload`] reads it again.
    pub fn from_file(path: &Path) -> Result<Self, JwksError> {
        Ok(Self::File {
            path: path.to_owned(),
            set: RwLock::new(read_file(path)?),
        })
    }

    /// A key set behind a URL, fetched now (so a wrong URL fails start-up) and again as it ages or when a
    /// token names an unknown key (at most once per `min_refetch`).
    pub async fn from_url(url: &str, min_refetch: Duration) -> Result<Self, JwksError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| JwksError::Url(url.to_owned(), e.to_string()))?;
        let set = fetch(&client, url).await?;
        Ok(Self::Remote {
            url: url.to_owned(),
            client,
            cache: RwLock::new(Cached {
                set,
                at: Instant::now(),
            }),
            last_attempt: tokio::sync::Mutex::new(Instant::now()),
            min_refetch,
        })
    }

    /// File path or `http(s)://` URL.
    pub async fn from_location(location: &str, min_refetch: Duration) -> Result<Self, JwksError> {
        if location.starts_with("http://") || location.starts_with("https://") {
            Self::from_url(location, min_refetch).await
        } else {
            Self::from_file(Path::new(location))
        }
    }

    /// Re-reads a file-backed key set (SIGHUP). On error the keys in use stay, and the error is returned.
    /// Other sources have nothing to re-read: a URL's set is fetched again as it ages.
    pub fn reload(&self) -> Result<usize, JwksError> {
        match self {
            Self::File { path, set } => {
                let fresh = read_file(path)?;
                let keys = fresh.keys.len();
                if let Ok(mut s) = set.write() {
                    *s = fresh;
                }
                Ok(keys)
            }
            Self::Static(set) => Ok(set.keys.len()),
            Self::Remote { cache, .. } => Ok(cache.read().map_or(0, |c| c.set.keys.len())),
        }
    }

    /// The key with this id, fetching a fresh set first when the cached one is stale or lacks it.
    pub async fn find(&self, kid: &str) -> Option<Jwk> {
        match self {
            Self::Static(set) => set.find(kid).cloned(),
            Self::File { set, .. } => set.read().ok()?.find(kid).cloned(),
            Self::Remote {
                url,
                client,
                cache,
                last_attempt,
                min_refetch,
            } => {
                let lookup = || {
                    cache
                        .read()
                        .ok()
                        .map(|c| (c.set.find(kid).cloned(), c.at.elapsed() > REFRESH_EVERY))
                };
                let (hit, stale) = lookup()?;
                if hit.is_some() && !stale {
                    return hit;
                }
                // One fetch at a time: whoever waited here may find that the fetch it waited for brought the key.
                let mut attempted = last_attempt.lock().await;
                let (hit, stale) = lookup()?;
                if hit.is_some() && !stale {
                    return hit;
                }
                if attempted.elapsed() < *min_refetch {
                    return hit;
                }
                *attempted = Instant::now();
                match fetch(client, url).await {
                    Ok(set) => {
                        let found = set.find(kid).cloned();
                        if let Ok(mut c) = cache.write() {
                            *c = Cached {
                                set,
                                at: Instant::now(),
                            };
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
    let mut res = client
        .get(url)
        .send()
        .await
        .map_err(|e| err(&e))?
        .error_for_status()
        .map_err(|e| err(&e))?;
    if res
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
    {
        return Err(err(&"key set larger than 1 MiB"));
    }
    // Read in chunks so that a body without (or lying about) its length cannot grow past the limit.
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| err(&e))? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(err(&"key set larger than 1 MiB"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| err(&e))
}
