//! The embedded default: one folder per region, the residency tag in a JSON sidecar beside each object.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::{ObjectStore, Residency, StoreError, StoredObject};

/// A region's store in a local folder.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Sidecar {
    residency: String,
    content_type: String,
}

impl LocalStore {
    /// A store rooted at `root` (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    fn paths(&self, key: &str) -> Result<(PathBuf, PathBuf), StoreError> {
        // Keys come from parsed ArtifactIds, but the store does not rely on that: no separators, no dots.
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(StoreError::NotFound);
        }
        Ok((
            self.root.join(key),
            self.root.join(format!("{key}.meta.json")),
        ))
    }
}

fn unavailable(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", ulid::Ulid::new()));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn get(&self, key: &str, max_bytes: u64) -> Result<StoredObject, StoreError> {
        let (data, meta) = self.paths(key)?;
        let file = match tokio::fs::File::open(&data).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NotFound),
            Err(e) => return Err(unavailable(e)),
        };
        let size = file.metadata().await.map_err(unavailable)?.len();
        if size > max_bytes {
            return Err(StoreError::TooLarge { size });
        }
        // Read through a limit too: the file may grow between the stat and the read.
        let mut buf = Vec::with_capacity(size as usize);
        file.take(max_bytes + 1)
            .read_to_end(&mut buf)
            .await
            .map_err(unavailable)?;
        if buf.len() as u64 > max_bytes {
            return Err(StoreError::TooLarge {
                size: buf.len() as u64,
            });
        }
        let residency_tag = match tokio::fs::read(&meta).await {
            Ok(raw) => serde_json::from_slice::<Sidecar>(&raw)
                .ok()
                .map(|s| s.residency),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(unavailable(e)),
        };
        Ok(StoredObject {
            bytes: Bytes::from(buf),
            residency_tag,
        })
    }

    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        residency: &Residency,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let (data, meta) = self.paths(key)?;
        let sidecar = Sidecar {
            residency: residency.as_str().to_owned(),
            content_type: content_type.to_owned(),
        };
        let sidecar =
            serde_json::to_vec(&sidecar).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // Sidecar first: an object without its tag is refused on read, never served untagged.
        write_atomically(&meta, &sidecar)
            .await
            .map_err(unavailable)?;
        write_atomically(&data, &bytes).await.map_err(unavailable)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        tokio::fs::metadata(&self.root)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    fn describe(&self) -> String {
        format!("local folder {}", self.root.display())
    }
}
