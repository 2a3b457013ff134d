//! The artifact stores a configuration names, one per residency region.

use std::{collections::BTreeMap, sync::Arc};

use super::KernelError;
use crate::{
    config::{CommonConfig, RegionStore},
    store::{ArtifactStores, LocalStore, MemoryStore, ObjectStore, Residency, S3Store},
};

/// Opens the artifact stores of every configured region (tools use this without a whole kernel).
pub async fn build_stores(config: &CommonConfig) -> Result<ArtifactStores, KernelError> {
    let mut regions: BTreeMap<Residency, Arc<dyn ObjectStore>> = BTreeMap::new();
    for (name, store) in config.effective_regions() {
        let region: Residency = name
            .parse()
            .map_err(|e| KernelError::Config(format!("region '{name}': {e}")))?;
        let store: Arc<dyn ObjectStore> = match store {
            RegionStore::Local { path } => {
                let path =
                    path.unwrap_or_else(|| config.data_dir.join("artifacts").join(region.as_str()));
                Arc::new(LocalStore::open(path)?)
            }
            RegionStore::S3(settings) => Arc::new(S3Store::connect(&settings).await),
            RegionStore::Memory => Arc::new(MemoryStore::default()),
        };
        regions.insert(region, store);
    }
    Ok(ArtifactStores::new(regions, config.artifacts))
}
