//! One bounded pool of dedicated worker threads, for the services' blocking, CPU-bound work (ONNX inference,
//! Tesseract).
//!
//! Each thread owns a state built for it (its engines, or just its slot number) and runs one job at a time.
//! Admission is bounded: when `capacity` jobs are waiting the pool refuses at once ([`PoolError::Overloaded`],
//! answered `503 overloaded`) instead of growing memory. A job is handed a check that turns true once its caller
//! stopped waiting, and is not started at all when the caller left before a worker took it. A job that panics
//! does not take its worker with it: the worker rebuilds its state and goes on; a worker that cannot build (or
//! rebuild) its state exits, and the pool reports itself unhealthy from then on, so `/readyz` says so instead
//! of a service that looks ready and answers `500`.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use crossbeam_channel::{Receiver, Sender};

/// A unit of work, given the worker's state and whether its caller is gone.
type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// Why a job did not run.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every worker is busy and the queue is full.
    #[error("all {workers} workers are busy and {capacity} jobs are waiting; retry shortly")]
    Overloaded {
        /// Worker threads.
        workers: usize,
        /// Queue capacity.
        capacity: usize,
    },
    /// The job panicked or no worker is left to run it.
    #[error("the worker failed")]
    WorkerFailed,
}

/// The pool. Cloning the `Arc` shares it; dropping the last one lets the workers finish and exit.
pub struct WorkerPool<S: 'static> {
    name: &'static str,
    tx: Sender<Job<S>>,
    queued: Arc<AtomicUsize>,
    alive: Arc<AtomicUsize>,
    capacity: usize,
    workers: usize,
}

impl<S: 'static> std::fmt::Debug for WorkerPool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("name", &self.name)
            .field("workers", &self.workers)
            .field("alive", &self.alive())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<S: 'static> WorkerPool<S> {
    /// Starts `workers` threads named `{name}-{slot}`, each with the state `build(slot)` makes for it (built on
    /// the thread itself), and waits until every one has built it or failed to. At most `capacity` jobs wait.
    /// Fails only when a thread cannot be spawned; a worker whose state fails to build is logged and counted
    /// out ([`WorkerPool::healthy`]).
    pub fn start<E, B>(
        name: &'static str,
        workers: usize,
        capacity: usize,
        build: B,
    ) -> std::io::Result<Arc<Self>>
    where
        E: std::fmt::Display,
        B: Fn(usize) -> Result<S, E> + Send + Sync + 'static,
    {
        let workers = workers.max(1);
        // The channel itself is unbounded: admission (`admit`) bounds it, atomically for several jobs at once.
        let (tx, rx) = crossbeam_channel::unbounded::<Job<S>>();
        let (queued, alive) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let build = Arc::new(build);
        let (started_tx, started_rx) = crossbeam_channel::bounded::<()>(workers);
        for slot in 0..workers {
            let (rx, queued, alive, build, started) = (
                rx.clone(),
                queued.clone(),
                alive.clone(),
                build.clone(),
                started_tx.clone(),
            );
            std::thread::Builder::new()
                .name(format!("{name}-{slot}"))
                .spawn(move || {
                    let built = build(slot);
                    if built.is_ok() {
                        alive.fetch_add(1, Ordering::AcqRel);
                        gauge(name, &alive);
                    }
                    // Counted (or not) before `start` returns, so a new pool's health is already true.
                    let _ = started.send(());
                    drop(started);
                    let state = match built {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::error!(pool = name, slot, error = %e, "worker could not build its state");
                            return;
                        }
                    };
                    work(name, slot, state, &rx, &queued, &*build);
                    alive.fetch_sub(1, Ordering::AcqRel);
                    gauge(name, &alive);
                })?;
        }
        drop(started_tx);
        for _ in 0..workers {
            if started_rx.recv().is_err() {
                break;
            }
        }
        Ok(Arc::new(Self {
            name,
            tx,
            queued,
            alive,
            capacity: capacity.max(1),
            workers,
        }))
    }

    /// Workers running now (started with their state and not gone since).
    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::Acquire)
    }

    /// Whether every worker is running: a pool short of a worker answers slower than it was sized for, and
    /// one with none answers nothing, so either is reported not ready.
    pub fn healthy(&self) -> bool {
        self.alive() == self.workers
    }

    /// Runs `f` on a free worker's state, or refuses at once when the queue is full. `f` is also given a check
    /// that turns true once the caller stopped waiting (a client gone, a request timed out), so long work can
    /// stop early.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&mut S, &dyn Fn() -> bool) -> T + Send + 'static,
    {
        self.admit(1)?;
        let result = self.submit(f)?;
        result.await.map_err(|_| PoolError::WorkerFailed)
    }

    /// Runs `a` and `b` on two workers at once, both admitted or neither, so a pair takes about one job's
    /// time when workers are free. If one fails, the other is skipped when it has not started.
    pub async fn run_pair<A, B, FA, FB>(&self, a: FA, b: FB) -> Result<(A, B), PoolError>
    where
        A: Send + 'static,
        B: Send + 'static,
        FA: FnOnce(&mut S, &dyn Fn() -> bool) -> A + Send + 'static,
        FB: FnOnce(&mut S, &dyn Fn() -> bool) -> B + Send + 'static,
    {
        self.admit(2)?;
        let ra = self.submit(a);
        let rb = self.submit(b);
        let (ra, rb) = (ra?, rb?);
        let (a, b) = tokio::join!(ra, rb);
        Ok((
            a.map_err(|_| PoolError::WorkerFailed)?,
            b.map_err(|_| PoolError::WorkerFailed)?,
        ))
    }

    /// Reserves queue room for `jobs` jobs at once, or refuses.
    fn admit(&self, jobs: usize) -> Result<(), PoolError> {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + jobs <= self.capacity).then_some(q + jobs)
            })
            .map(|_| ())
            .map_err(|_| PoolError::Overloaded {
                workers: self.workers,
                capacity: self.capacity,
            })
    }

    /// Queues one admitted job.
    fn submit<T, F>(&self, f: F) -> Result<tokio::sync::oneshot::Receiver<T>, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&mut S, &dyn Fn() -> bool) -> T + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        // The job's spans (decode, detect, OCR…) belong to the request that queued it, not to the worker.
        let span = tracing::Span::current();
        let job: Job<S> = Box::new(move |state| {
            // The caller gave up (timeout, disconnect, its other half refused): skip the work.
            if !done.is_closed() {
                let out = span.in_scope(|| f(state, &|| done.is_closed()));
                let _ = done.send(out);
            }
        });
        self.tx.send(job).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            PoolError::WorkerFailed
        })?;
        Ok(result)
    }
}

/// One worker's loop: jobs until the pool is dropped, or until its state cannot be rebuilt after a panic.
fn work<S, E: std::fmt::Display>(
    name: &'static str,
    slot: usize,
    mut state: S,
    rx: &Receiver<Job<S>>,
    queued: &AtomicUsize,
    build: &dyn Fn(usize) -> Result<S, E>,
) {
    while let Ok(job) = rx.recv() {
        queued.fetch_sub(1, Ordering::AcqRel);
        // The caller sees its reply channel dropped and answers 500; the state may be half-changed, so it is
        // built again before the next job.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut state))).is_err() {
            tracing::error!(
                pool = name,
                slot,
                "job panicked; rebuilding the worker's state"
            );
            match build(slot) {
                Ok(s) => state = s,
                Err(e) => {
                    tracing::error!(pool = name, slot, error = %e, "worker could not rebuild its state; it stops");
                    return;
                }
            }
        }
    }
}

fn gauge(name: &'static str, alive: &AtomicUsize) {
    metrics::gauge!("workers_alive", "pool" => name).set(alive.load(Ordering::Acquire) as f64);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[tokio::test]
    async fn jobs_run_on_their_workers_state() {
        let pool = WorkerPool::start("t", 2, 2, |slot| Ok::<_, String>(slot * 10))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(pool.healthy());
        let (a, b) = pool
            .run_pair(|s, _| *s, |s, _| *s)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Either worker may take either job, each with its own state.
        assert!([a, b].iter().all(|s| [0, 10].contains(s)), "{a} {b}");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let pool = WorkerPool::start("t", 1, 1, Ok::<_, String>).unwrap_or_else(|e| panic!("{e}"));
        let (running, gate) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (r, g) = (running.clone(), gate.clone());
        let p = pool.clone();
        // One job holds the only worker, a second waits in the queue's one place: a third is refused.
        let busy = tokio::spawn(async move {
            p.run(move |_, _| {
                r.store(true, Ordering::Release);
                while !g.load(Ordering::Acquire) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
            .await
        });
        while !running.load(Ordering::Acquire) {
            tokio::task::yield_now().await;
        }
        let p = pool.clone();
        let waiting = tokio::spawn(async move { p.run(|s, _| *s).await });
        while pool.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run(|s, _| *s).await;
        assert!(
            matches!(refused, Err(PoolError::Overloaded { .. })),
            "{refused:?}"
        );
        gate.store(true, Ordering::Release);
        assert!(matches!(busy.await, Ok(Ok(()))));
        assert!(matches!(waiting.await, Ok(Ok(0))));
    }

    #[tokio::test]
    async fn a_panicking_job_is_survived_and_a_worker_that_cannot_rebuild_is_counted_out() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counted = builds.clone();
        // The first build of each of the two workers succeeds; every rebuild fails.
        let pool = WorkerPool::start("t", 2, 4, move |slot| {
            if counted.fetch_add(1, Ordering::AcqRel) < 2 {
                Ok(slot)
            } else {
                Err("no engines")
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pool.alive(), 2);
        let r = pool.run(|_, _| -> usize { panic!("a bad job") }).await;
        assert!(matches!(r, Err(PoolError::WorkerFailed)));
        // The worker that ran it could not rebuild and left; the other still answers.
        for _ in 0..200 {
            if pool.alive() == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(pool.alive(), 1);
        assert!(!pool.healthy());
        assert!(pool.run(|s, _| *s).await.is_ok());
    }

    #[tokio::test]
    async fn workers_whose_state_fails_to_build_leave_the_pool_unhealthy_and_jobs_fail_fast() {
        let pool = WorkerPool::<usize>::start("t", 2, 4, |_| Err("no engines"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pool.alive(), 0);
        assert!(!pool.healthy());
        let r = pool.run(|s, _| *s).await;
        assert!(matches!(r, Err(PoolError::WorkerFailed)));
    }
}
