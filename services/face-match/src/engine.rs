//! Inference on the suite's worker pool (`idv_shared::workers`): one thread per session slot of the current
//! model generation, behind a bounded queue. A full queue refuses at once (the caller answers `503
//! overloaded`) instead of growing memory. A reload builds and warms a whole new generation before swapping it
//! in; jobs already running finish on the generation they started with.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
};

use idv_shared::workers::{PoolError, WorkerPool};

use crate::models::{ModelError, ModelSet, RuntimeOptions, Sessions};

/// Why a job did not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Every worker is busy and the queue is full.
    #[error(
        "all {workers} inference workers are busy and {capacity} images are waiting; retry shortly"
    )]
    Overloaded {
        /// Worker threads.
        workers: usize,
        /// Queue capacity.
        capacity: usize,
    },
    /// The job panicked or its worker is gone.
    #[error("the inference worker failed")]
    WorkerFailed,
}

/// The worker pool and the current model generation.
pub struct Engine {
    /// Each worker's state is its slot: its sessions live in the generation a job runs on.
    pool: Arc<WorkerPool<usize>>,
    models: Arc<RwLock<Arc<ModelSet>>>,
    options: RuntimeOptions,
    manifest: PathBuf,
    reloading: Mutex<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pool", &self.pool)
            .field("manifest", &self.manifest)
            .finish()
    }
}

impl From<PoolError> for EngineError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Overloaded { workers, capacity } => Self::Overloaded { workers, capacity },
            PoolError::WorkerFailed => Self::WorkerFailed,
        }
    }
}

impl Engine {
    /// Loads the first model generation and starts `options.slots` workers; at most `capacity` images wait.
    pub fn start(
        manifest: PathBuf,
        options: RuntimeOptions,
        capacity: usize,
    ) -> Result<Arc<Self>, ModelError> {
        let set = ModelSet::load(&manifest, &options, 1)?;
        let models = Arc::new(RwLock::new(Arc::new(set)));
        let pool = WorkerPool::start("face-infer", options.slots, capacity, |slot| {
            Ok::<_, std::convert::Infallible>(slot)
        })
        .map_err(|e| ModelError::Session {
            model: "worker".into(),
            cause: e.to_string(),
        })?;
        Ok(Arc::new(Self {
            pool,
            models,
            options,
            manifest,
            reloading: Mutex::new(()),
        }))
    }

    /// Whether every inference worker is running (for `/readyz`).
    pub fn healthy(&self) -> bool {
        self.pool.healthy()
    }

    /// Runs `a` and `b` on two workers at once with the sessions of the given generation, so a pair takes
    /// about one image's time when workers are free, and both images are seen by the same models even across
    /// a reload. Both are admitted or neither.
    pub async fn run_pair_on<A, B, FA, FB>(
        &self,
        set: Arc<ModelSet>,
        a: FA,
        b: FB,
    ) -> Result<(A, B), EngineError>
    where
        A: Send + 'static,
        B: Send + 'static,
        FA: FnOnce(&ModelSet, &mut Sessions) -> A + Send + 'static,
        FB: FnOnce(&ModelSet, &mut Sessions) -> B + Send + 'static,
    {
        let (sa, sb) = (set.clone(), set);
        let (a, b) = self
            .pool
            .run_pair(
                move |slot, _| on_sessions(&sa, *slot, a),
                move |slot, _| on_sessions(&sb, *slot, b),
            )
            .await?;
        Ok((
            a.ok_or(EngineError::WorkerFailed)?,
            b.ok_or(EngineError::WorkerFailed)?,
        ))
    }

    /// The generation new jobs run on.
    pub fn current(&self) -> Arc<ModelSet> {
        match self.models.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the manifest and loads, checks and warms a new generation, then swaps it in. On any error the
    /// current generation stays. Blocking: call it off the async runtime.
    pub fn reload(&self) -> Result<Arc<ModelSet>, ModelError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let next = self.current().generation + 1;
        let set = Arc::new(ModelSet::load(&self.manifest, &self.options, next)?);
        match self.models.write() {
            Ok(mut m) => *m = set.clone(),
            Err(poisoned) => *poisoned.into_inner() = set.clone(),
        }
        tracing::info!(generation = next, embedder = %set.manifest.embedder.common.name, "models reloaded");
        Ok(set)
    }
}

/// Runs `f` with the sessions of `slot` in `set`; `None` when the generation has none for it.
fn on_sessions<T>(
    set: &ModelSet,
    slot: usize,
    f: impl FnOnce(&ModelSet, &mut Sessions) -> T,
) -> Option<T> {
    let Some(mut sessions) = set.sessions(slot) else {
        tracing::error!(slot, "inference sessions unavailable");
        return None;
    };
    Some(f(set, &mut sessions))
}
