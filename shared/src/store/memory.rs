//! A region's store in process memory, with its residency tags, for tests and throw-away demos: nothing
//! survives the process. Bounded: a put that would take it past its byte budget is refused as unavailable.

use std::{collections::HashMap, sync::Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectStore, Residency, StoreError, StoredObject};

/// The default budget of a memory store (all objects together).
pub const DEFAULT_BUDGET: u64 = 256 * 1024 * 1024;

/// Objects in memory, each with the residency tag it was written with.
#[derive(Debug)]
pub struct MemoryStore {
    objects: Mutex<HashMap<String, (Bytes, String)>>,
    budget: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_budget(DEFAULT_BUDGET)
    }
}

impl MemoryStore {
    /// An empty store holding at most `budget` bytes of objects.
    pub fn with_budget(budget: u64) -> Self {
        Self {
            objects: Mutex::new(HashMap::new()),
            budget,
        }
    }

    /// Writes an object under a residency tag of any text, as a misconfigured bucket might hold (tests of
    /// the residency check use it).
    pub fn put_tagged(&self, key: &str, bytes: Bytes, tag: &str) -> Result<(), StoreError> {
        let mut objects = self
            .objects
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        let held: u64 = objects
            .iter()
            .filter(|(k, _)| k.as_str() != key)
            .map(|(_, (b, _))| b.len() as u64)
            .sum();
        if held.saturating_add(bytes.len() as u64) > self.budget {
            return Err(StoreError::Unavailable(format!(
                "memory store full ({} bytes)",
                self.budget
            )));
        }
        objects.insert(key.to_owned(), (bytes, tag.to_owned()));
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn get(&self, key: &str, max_bytes: u64) -> Result<StoredObject, StoreError> {
        let objects = self
            .objects
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        let (bytes, tag) = objects.get(key).ok_or(StoreError::NotFound)?;
        let size = bytes.len() as u64;
        if size > max_bytes {
            return Err(StoreError::TooLarge { size });
        }
        Ok(StoredObject {
            bytes: bytes.clone(),
            residency_tag: Some(tag.clone()),
        })
    }

    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        residency: &Residency,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        self.put_tagged(key, bytes, residency.as_str())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn describe(&self) -> String {
        format!("process memory (at most {} bytes)", self.budget)
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::Arc};

    use super::*;
    use crate::store::{ArtifactId, ArtifactKind, ArtifactLimits, ArtifactStores, FetchError};

    #[tokio::test]
    async fn artifact_stores_over_memory_check_residency_without_a_folder_or_s3() {
        let (eu, us): (Residency, Residency) = (
            "eu".parse().unwrap_or_else(|_| unreachable!()),
            "us".parse().unwrap_or_else(|_| unreachable!()),
        );
        let eu_store = Arc::new(MemoryStore::default());
        let mut regions: BTreeMap<Residency, Arc<dyn ObjectStore>> = BTreeMap::new();
        regions.insert(eu.clone(), eu_store.clone());
        regions.insert(us.clone(), Arc::new(MemoryStore::default()));
        let stores = ArtifactStores::new(regions, ArtifactLimits::default());
        let png = Bytes::from_static(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        let id = stores
            .put_new(&eu, png)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let got = stores
            .fetch(&id, std::slice::from_ref(&eu), ArtifactKind::Image)
            .await;
        assert!(got.is_ok(), "{got:?}");
        // A token for another region does not reach it.
        let refused = stores
            .fetch(&id, std::slice::from_ref(&us), ArtifactKind::Image)
            .await;
        assert!(matches!(refused, Err(FetchError::RegionNotAllowed(_))));
        // An object whose stored tag disagrees with its region is refused.
        let stray = ArtifactId::generate(eu.clone());
        eu_store
            .put_tagged(
                &stray.object_key(),
                Bytes::from_static(b"\x89PNG\r\n\x1a\n"),
                "us",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let mismatch = stores.fetch(&stray, &[eu], ArtifactKind::Image).await;
        assert!(
            matches!(mismatch, Err(FetchError::TagMismatch)),
            "{mismatch:?}"
        );
    }

    fn eu() -> Residency {
        "eu".parse()
            .unwrap_or_else(|_| unreachable!("a valid residency"))
    }

    #[tokio::test]
    async fn objects_come_back_with_their_tag_and_within_the_limit() {
        let store = MemoryStore::with_budget(10);
        store
            .put("a", Bytes::from_static(b"hello"), &eu(), "image/jpeg")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let got = store.get("a", 5).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&got.bytes[..], b"hello");
        assert_eq!(got.residency_tag.as_deref(), Some("eu"));
        assert!(matches!(
            store.get("a", 4).await,
            Err(StoreError::TooLarge { size: 5 })
        ));
        assert!(matches!(store.get("b", 5).await, Err(StoreError::NotFound)));
        // The budget counts every object; replacing one counts only the new bytes.
        let more = store
            .put("b", Bytes::from_static(b"world!"), &eu(), "image/jpeg")
            .await;
        assert!(matches!(more, Err(StoreError::Unavailable(_))));
        let replaced = store
            .put("a", Bytes::from_static(b"0123456789"), &eu(), "image/jpeg")
            .await;
        assert!(replaced.is_ok());
    }
}
