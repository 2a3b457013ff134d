//! Inference workers: dedicated threads, each owning a session pair of the current model generation, fed by a
//! bounded queue. A full queue refuses at once (the caller answers `503 overloaded`) instead of growing memory.
//! A reload builds and warms a whole new generation before swapping it in; jobs already running finish on the
//! generation they started with.

use std::{
    panic::AssertUnwindSafe,
    path::PathBuf,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use crossbeam_channel::{Receiver, Sender};

use crate::models::{ModelError, ModelSet, RuntimeOptions, Sessions};

/// A unit of work; it is handed the slot (worker index) whose sessions it may use.
type Job = Box<dyn FnOnce(usize) + Send>;

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
    tx: Sender<Job>,
    models: Arc<RwLock<Arc<ModelSet>>>,
    options: RuntimeOptions,
    manifest: PathBuf,
    capacity: usize,
    queued: Arc<AtomicUsize>,
    reloading: Mutex<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.options.slots)
            .field("capacity", &self.capacity)
            .field("manifest", &self.manifest)
            .finish()
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
        // The channel itself is unbounded: admission (`admit`) bounds it, atomically per pair.
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        for slot in 0..options.slots.max(1) {
            let (rx, queued) = (rx.clone(), queued.clone());
            std::thread::Builder::new()
                .name(format!("face-infer-{slot}"))
                .spawn(move || worker(slot, &rx, &queued))
                .map_err(|e| ModelError::Session {
                    model: "worker".into(),
                    cause: e.to_string(),
                })?;
        }
        Ok(Arc::new(Self {
            tx,
            models,
            options,
            manifest,
            capacity: capacity.max(1),
            queued,
            reloading: Mutex::new(()),
        }))
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
        self.admit(2)?;
        let ra = self.submit(set.clone(), a);
        let rb = self.submit(set, b);
        let (ra, rb) = (ra?, rb?);
        // If one half fails, dropping the other's receiver makes its worker skip it.
        let (a, b) = tokio::join!(ra, rb);
        Ok((
            a.map_err(|_| EngineError::WorkerFailed)?,
            b.map_err(|_| EngineError::WorkerFailed)?,
        ))
    }

    /// Reserves queue room for `jobs` jobs at once, or refuses.
    fn admit(&self, jobs: usize) -> Result<(), EngineError> {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + jobs <= self.capacity).then_some(q + jobs)
            })
            .map(|_| ())
            .map_err(|_| EngineError::Overloaded {
                workers: self.options.slots,
                capacity: self.capacity,
            })
    }

    /// Queues an admitted job.
    fn submit<T, F>(
        &self,
        set: Arc<ModelSet>,
        f: F,
    ) -> Result<tokio::sync::oneshot::Receiver<T>, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&ModelSet, &mut Sessions) -> T + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |slot| {
            // The caller gave up (timeout, disconnect, its other half refused): skip the work.
            if done.is_closed() {
                return;
            }
            let Some(mut sessions) = set.sessions(slot) else {
                tracing::error!(slot, "inference sessions unavailable");
                return;
            };
            let _ = done.send(f(&set, &mut sessions));
        });
        self.tx.send(job).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            EngineError::WorkerFailed
        })?;
        Ok(result)
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

fn worker(slot: usize, rx: &Receiver<Job>, queued: &AtomicUsize) {
    while let Ok(job) = rx.recv() {
        queued.fetch_sub(1, Ordering::AcqRel);
        // A panic inside one job must not take the worker (and its share of capacity) with it; the caller
        // sees its reply channel dropped and answers 500.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(slot))).is_err() {
            tracing::error!(slot, "inference job panicked");
        }
    }
}
