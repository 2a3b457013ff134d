//! Residency-tagged artifact stores.
//!
//! Callers send opaque [`ArtifactId`]s. An ID names its region; the region maps to one [`ObjectStore`] (a local
//! folder or an S3 bucket). [`ArtifactStores::fetch`] is the only way a service reads bytes, and it enforces
//! the three residency checks, the size limit of the artifact's kind and content sniffing, and hashes what it
//! returns.

mod id;
mod local;
mod memory;
mod s3;
mod sniff;

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

pub use id::{ArtifactId, Residency};
pub use local::LocalStore;
pub use memory::MemoryStore;
pub use s3::{S3Settings, S3Store};
pub use sniff::MediaType;

use crate::{
    digest::sha256_hex,
    error::{ApiError, ErrorCode},
};

/// What a backend returns: the bytes and the residency tag stored with them.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// The object's bytes (at most the limit the caller passed).
    pub bytes: Bytes,
    /// The residency tag stored with the object (`x-amz-meta-residency`, or the sidecar's), if any.
    pub residency_tag: Option<String>,
}

/// Backend failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No object under that key.
    #[error("object not found")]
    NotFound,
    /// The object is larger than the limit.
    #[error("object of {size} bytes exceeds the limit")]
    TooLarge {
        /// The object's size, where known.
        size: u64,
    },
    /// The backend did not answer or answered with an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// One region's object store.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Reads an object, refusing (without reading it all) one larger than `max_bytes`.
    async fn get(&self, key: &str, max_bytes: u64) -> Result<StoredObject, StoreError>;
    /// Writes an object with its residency tag and content type.
    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        residency: &Residency,
        content_type: &str,
    ) -> Result<(), StoreError>;
    /// Checks that the backend answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// A short description for logs (never credentials).
    fn describe(&self) -> String;
}

/// The kinds of artifact a service asks for, each with its own size limit and accepted media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A photo or scan: JPEG, PNG, WebP or TIFF.
    Image,
    /// A small JSON document (e.g. `{"phone_number": …}`).
    Json,
}

/// Size limits per artifact kind.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct ArtifactLimits {
    /// Largest image artifact in bytes.
    pub image_max_bytes: u64,
    /// Largest JSON artifact in bytes.
    pub json_max_bytes: u64,
}

impl Default for ArtifactLimits {
    fn default() -> Self {
        Self {
            image_max_bytes: 15 * 1024 * 1024,
            json_max_bytes: 16 * 1024,
        }
    }
}

impl ArtifactLimits {
    fn max_bytes(&self, kind: ArtifactKind) -> u64 {
        match kind {
            ArtifactKind::Image => self.image_max_bytes,
            ArtifactKind::Json => self.json_max_bytes,
        }
    }
}

/// An artifact as a service may use it: checked, sniffed and hashed.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The ID the caller sent.
    pub id: ArtifactId,
    /// The region it came from (checked against the object's own tag).
    pub residency: Residency,
    /// The bytes.
    pub bytes: Bytes,
    /// Lowercase hex sha256 of `bytes`.
    pub sha256: String,
    /// Sniffed media type.
    pub media: MediaType,
}

impl Artifact {
    /// The chain-of-custody entry for the verdict.
    pub fn custody(&self) -> ArtifactRef {
        ArtifactRef {
            id: self.id.clone(),
            sha256: self.sha256.clone(),
            residency: self.residency.clone(),
        }
    }
}

/// Why a fetch was refused. Each maps to one stable error code.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The caller's token does not allow the region.
    #[error("the token does not allow region '{0}'")]
    RegionNotAllowed(Residency),
    /// This deployment has no store for the region.
    #[error("region '{0}' is not served by this deployment")]
    RegionNotServed(Residency),
    /// The object's own residency tag disagrees with its region.
    #[error("the artifact's residency tag does not match its region")]
    TagMismatch,
    /// No such artifact.
    #[error("no artifact with this ID")]
    NotFound,
    /// Over the kind's size limit.
    #[error("the artifact exceeds the {limit}-byte limit of its kind")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The content is not of an accepted type for this kind.
    #[error("the artifact's content is not a supported {0}")]
    Unsupported(&'static str),
    /// The backend failed.
    #[error("the artifact store for region '{0}' is unavailable")]
    Unavailable(Residency),
}

impl From<FetchError> for ApiError {
    fn from(e: FetchError) -> Self {
        let code = match &e {
            FetchError::RegionNotAllowed(_)
            | FetchError::RegionNotServed(_)
            | FetchError::TagMismatch => ErrorCode::ResidencyViolation,
            FetchError::NotFound => ErrorCode::ArtifactNotFound,
            FetchError::TooLarge { .. } => ErrorCode::ArtifactTooLarge,
            FetchError::Unsupported(_) => ErrorCode::UnsupportedMedia,
            FetchError::Unavailable(_) => ErrorCode::StoreUnavailable,
        };
        let err = ApiError::new(code, e.to_string());
        if code == ErrorCode::StoreUnavailable {
            err.retry_after(2)
        } else {
            err
        }
    }
}

/// Chain of custody of one input: which artifact, which bytes, which region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactRef {
    /// The opaque artifact ID the caller sent.
    pub id: ArtifactId,
    /// Lowercase hex sha256 of the bytes actually used.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub sha256: String,
    /// The region the bytes came from.
    #[schema(value_type = String, example = "eu")]
    pub residency: Residency,
}

/// Every region this deployment serves, with the limits that apply to fetches.
#[derive(Clone)]
pub struct ArtifactStores {
    regions: BTreeMap<Residency, Arc<dyn ObjectStore>>,
    limits: ArtifactLimits,
}

impl std::fmt::Debug for ArtifactStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let regions: BTreeMap<_, _> = self
            .regions
            .iter()
            .map(|(r, s)| (r.as_str(), s.describe()))
            .collect();
        f.debug_struct("ArtifactStores")
            .field("regions", &regions)
            .field("limits", &self.limits)
            .finish()
    }
}

impl ArtifactStores {
    /// Stores for the given regions.
    pub fn new(regions: BTreeMap<Residency, Arc<dyn ObjectStore>>, limits: ArtifactLimits) -> Self {
        Self { regions, limits }
    }

    /// The regions served here.
    pub fn regions(&self) -> impl Iterator<Item = &Residency> {
        self.regions.keys()
    }

    /// Fetches an artifact for a caller allowed the regions in `allowed`.
    ///
    /// Checks, in order: the caller may use the region; the region is served here; the object exists and fits
    /// the kind's limit; its own tag names the region; its content sniffs as the kind.
    pub async fn fetch(
        &self,
        id: &ArtifactId,
        allowed: &[Residency],
        kind: ArtifactKind,
    ) -> Result<Artifact, FetchError> {
        let region = id.region();
        if !allowed.contains(region) {
            return Err(FetchError::RegionNotAllowed(region.clone()));
        }
        let store = self
            .regions
            .get(region)
            .ok_or_else(|| FetchError::RegionNotServed(region.clone()))?;
        let limit = self.limits.max_bytes(kind);
        let started = Instant::now();
        let kind_name = match kind {
            ArtifactKind::Image => "image",
            ArtifactKind::Json => "json",
        };
        let object = store
            .get(&id.object_key(), limit)
            .instrument(tracing::debug_span!("artifact.fetch", region = %region, kind = kind_name))
            .await
            .map_err(|e| match e {
                StoreError::NotFound => FetchError::NotFound,
                StoreError::TooLarge { .. } => FetchError::TooLarge { limit },
                StoreError::Unavailable(cause) => {
                    tracing::warn!(region = %region, error = %cause, "artifact store unavailable");
                    crate::metrics::record_store_error(region.as_str(), "unavailable");
                    FetchError::Unavailable(region.clone())
                }
            })?;
        tracing::debug!(region = %region, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "artifact fetched");
        if object.residency_tag.as_deref() != Some(region.as_str()) {
            tracing::warn!(region = %region, "artifact residency tag mismatch");
            return Err(FetchError::TagMismatch);
        }
        let media = sniff::sniff(&object.bytes);
        let accepted = match kind {
            ArtifactKind::Image => media.is_image(),
            ArtifactKind::Json => media == MediaType::Json,
        };
        if !accepted {
            return Err(FetchError::Unsupported(match kind {
                ArtifactKind::Image => "image (JPEG, PNG, WebP, TIFF)",
                ArtifactKind::Json => "JSON document",
            }));
        }
        Ok(Artifact {
            id: id.clone(),
            residency: region.clone(),
            sha256: sha256_hex(&object.bytes),
            bytes: object.bytes,
            media,
        })
    }

    /// Stores new bytes in a region under a fresh ID, tagged with that region, and returns the ID.
    pub async fn put_new(
        &self,
        region: &Residency,
        bytes: Bytes,
    ) -> Result<ArtifactId, FetchError> {
        let store = self
            .regions
            .get(region)
            .ok_or_else(|| FetchError::RegionNotServed(region.clone()))?;
        let id = ArtifactId::generate(region.clone());
        let media = sniff::sniff(&bytes);
        store
            .put(&id.object_key(), bytes, region, media.content_type())
            .await
            .map_err(|e| {
                tracing::warn!(region = %region, error = %e, "artifact store refused a write");
                crate::metrics::record_store_error(region.as_str(), "unavailable");
                FetchError::Unavailable(region.clone())
            })?;
        Ok(id)
    }

    /// Writes bytes under a given key with a given tag, for tests and tools that need odd objects
    /// (e.g. a tag that disagrees with the region).
    pub async fn put_raw(
        &self,
        region: &Residency,
        key: &str,
        bytes: Bytes,
        tag: &Residency,
    ) -> Result<(), StoreError> {
        let store = self.regions.get(region).ok_or(StoreError::NotFound)?;
        store.put(key, bytes, tag, "application/octet-stream").await
    }

    /// Pings every region; returns the regions that did not answer.
    pub async fn unreachable(&self) -> Vec<Residency> {
        let checks = self.regions.iter().map(|(region, store)| async move {
            let ok = tokio::time::timeout(std::time::Duration::from_secs(3), store.ping()).await;
            match ok {
                Ok(Ok(())) => None,
                _ => Some(region.clone()),
            }
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}
