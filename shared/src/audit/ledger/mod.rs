//! The append-only, hash-chained audit ledger.
//!
//! Each entry is `{"seq":N,"prev":"<hex>","record":{…},"hash":"<hex>"}` where
//! `hash = sha256("<seq>\n<prev>\n<record as written>")` and `prev` is the previous entry's hash (64 zeros for
//! the first). Appends go through one writer thread that batches whatever is queued into one commit (group
//! commit), and answers each caller only after that commit is durable: a verdict is never sent before its entry
//! is, and concurrent verdicts share the cost of the sync. With [`Checkpoints`] the writer also signs the chain
//! head at intervals (see [`super::checkpoint`]); verification is in [`super::verify`].
//!
//! Where the entries go is a [`Sink`]: a JSON-lines file with `fsync` ([`file`], the embedded default) or a
//! PostgreSQL table with a committed transaction ([`postgres`], for replicas sharing one ledger). The chain, the
//! checkpoints and the batching are the same for both; a sink only stores a batch after the tip it reported.

pub mod file;
pub mod postgres;

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{self, CHECKPOINT_TYP, CheckpointClaims, Checkpoints};
pub use super::verify::{Verification, verify_file};
pub use postgres::PostgresLedger;

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Most entries one group commit writes.
const MAX_BATCH: usize = 4096;

/// How long the writer waits before it tries a sink again after a failed commit (a database that is down is
/// not hammered by the checkpoint timer).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why an append or a verification failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// File I/O failed.
    #[error("ledger I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The writer has stopped (shutdown or a crash of its thread).
    #[error("the ledger writer is not running")]
    Closed,
    /// The record could not be serialized.
    #[error("record not serializable: {0}")]
    Encode(#[from] serde_json::Error),
    /// The ledger's database cannot be reached or did not commit in time; nothing was acknowledged.
    #[error("ledger store unavailable: {0}")]
    Unavailable(String),
    /// The ledger's configuration is not usable.
    #[error("ledger configuration: {0}")]
    Config(String),
}

/// Computes an entry's hash.
pub fn entry_hash(seq: u64, prev: &str, record_json: &str) -> String {
    let mut h = Sha256::new();
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(record_json.as_bytes());
    hex::encode(h.finalize())
}

pub(crate) fn format_line(seq: u64, prev: &str, record_json: &str, hash: &str) -> String {
    format!("{{\"seq\":{seq},\"prev\":\"{prev}\",\"record\":{record_json},\"hash\":\"{hash}\"}}\n")
}

#[derive(Deserialize)]
pub(crate) struct Line<'a> {
    pub(crate) seq: u64,
    pub(crate) prev: String,
    #[serde(borrow)]
    pub(crate) record: &'a RawValue,
    pub(crate) hash: String,
}

/// Where the chain stands: the last entry's number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Number of the last entry (0 when empty).
    pub seq: u64,
    /// Hash of the last entry ([`GENESIS`] when empty).
    pub hash: String,
}

impl ChainHead {
    /// The head of an empty chain.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// The chain's tip as a sink stores it: its head and how many entries follow the last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    /// The last entry.
    pub head: ChainHead,
    /// Entries after the last checkpoint.
    pub uncovered: u64,
}

/// One entry as a sink stores it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its number.
    pub seq: u64,
    /// The previous entry's hash.
    pub prev: String,
    /// The record, exactly as hashed.
    pub record: String,
    /// Its hash.
    pub hash: String,
    /// Whether the record is a signed checkpoint.
    pub checkpoint: bool,
}

/// Why a sink could not commit. Cloned to every caller of the batch.
#[derive(Debug, Clone)]
pub enum SinkError {
    /// The store cannot be reached or did not answer in time.
    Unavailable(String),
    /// The store answered with an error.
    Failed(String),
}

impl From<SinkError> for LedgerError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Unavailable(m) => Self::Unavailable(m),
            SinkError::Failed(m) => Self::Io(std::io::Error::other(m)),
        }
    }
}

/// Where a ledger's entries are stored. One writer drives a sink: `tip`, then `write` or `abort`.
#[async_trait::async_trait]
pub trait Sink: Send {
    /// Starts a commit and reports the chain's tip as stored now (a shared store also locks the chain here, so
    /// the entries hashed after this tip are the next ones).
    async fn tip(&mut self) -> Result<Tip, SinkError>;
    /// Stores `entries`, which follow the last reported tip, durably, ending the commit; `after` is the tip
    /// they make.
    async fn write(&mut self, entries: &[Entry], after: &Tip) -> Result<(), SinkError>;
    /// Ends a commit that stores nothing.
    async fn abort(&mut self);
    /// The ledger's file, for a file sink.
    fn path(&self) -> Option<&Path> {
        None
    }
}

struct Append {
    record: String,
    done: oneshot::Sender<Result<u64, SinkError>>,
}

/// A running ledger: a handle to its writer thread.
pub struct Ledger {
    tx: Mutex<Option<mpsc::Sender<Append>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    path: Option<PathBuf>,
    backend: String,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Ledger {
    /// Opens (or creates) the ledger file at `path` and starts its writer, without checkpoints.
    ///
    /// A trailing partial line (a crash in the middle of a write that was never acknowledged) is cut off;
    /// every acknowledged entry ends in a newline and survives. The chain itself is not re-verified here:
    /// that is `idvctl ledger verify`'s job and would make start-up linear in the ledger's size.
    pub fn open(path: &Path, queue_capacity: usize) -> Result<Self, LedgerError> {
        Self::start(Box::new(file::FileSink::open(path)?), queue_capacity, None)
    }

    /// Opens the ledger file like [`Ledger::open`], with signed checkpoints. Entries a crash left without a
    /// checkpoint are covered by one at once.
    pub fn open_with_checkpoints(
        path: &Path,
        queue_capacity: usize,
        checkpoints: Checkpoints,
    ) -> Result<Self, LedgerError> {
        Self::start(
            Box::new(file::FileSink::open(path)?),
            queue_capacity,
            Some(checkpoints),
        )
    }

    /// Starts a writer over any sink.
    pub fn start(
        sink: Box<dyn Sink>,
        queue_capacity: usize,
        checkpoints: Option<Checkpoints>,
    ) -> Result<Self, LedgerError> {
        let path = sink.path().map(Path::to_owned);
        let backend = path.as_ref().map_or_else(
            || "postgres".to_owned(),
            |p| format!("file:{}", p.display()),
        );
        // The writer waits on the queue with a timeout (the time rule of checkpoints) and a database sink
        // does network I/O, so it runs a small runtime of its own on its own thread.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tx, rx) = mpsc::channel(queue_capacity.max(1));
        let writer = Writer {
            sink,
            checkpoints,
            owed: None,
            last_checkpoint: Instant::now(),
            retry_at: None,
            failing: false,
        };
        let thread = std::thread::Builder::new()
            .name("audit-ledger".into())
            .spawn(move || runtime.block_on(writer.run(rx)))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            path,
            backend,
        })
    }

    /// Appends a record and returns its `seq` once it is durable.
    pub async fn append<T: serde::Serialize>(&self, record: &T) -> Result<u64, LedgerError> {
        let record = serde_json::to_string(record)?;
        let tx = self
            .tx
            .lock()
            .map_err(|_| LedgerError::Closed)?
            .clone()
            .ok_or(LedgerError::Closed)?;
        let (done, rx) = oneshot::channel();
        tx.send(Append { record, done })
            .await
            .map_err(|_| LedgerError::Closed)?;
        match rx.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(LedgerError::Closed),
        }
    }

    /// Stops taking appends, lets the writer commit everything queued (and its last checkpoint), and waits.
    pub fn shutdown(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("audit ledger writer panicked");
        }
    }

    /// The ledger's file, when it is kept in one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Where the entries go (`file:<path>` or `postgres`), for logs.
    pub fn backend(&self) -> &str {
        &self.backend
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The writer thread's state. The chain's head lives in the sink (a shared store may have moved on).
struct Writer {
    sink: Box<dyn Sink>,
    checkpoints: Option<Checkpoints>,
    /// Entries after the last checkpoint as of the last commit; `None` until the sink has been read.
    owed: Option<u64>,
    last_checkpoint: Instant,
    /// After a failed commit, no commit for the time rule alone before this.
    retry_at: Option<Instant>,
    /// Whether the last commit failed (a store that stays down is logged once while only checkpoints wait).
    failing: bool,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Append>) {
        let mut batch = Vec::with_capacity(64);
        self.commit(&mut batch, true).await;
        loop {
            let next = match self.until_checkpoint_due() {
                Some(wait) => tokio::time::timeout(wait, rx.recv()).await.ok(),
                None => Some(rx.recv().await),
            };
            match next {
                Some(Some(first)) => batch.push(first),
                // Shut down: cover what is left with a last checkpoint.
                Some(None) => {
                    self.commit(&mut batch, true).await;
                    return;
                }
                // Timed out: the time rule is due.
                None => {}
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch, false).await;
        }
    }

    /// How long until uncovered entries are owed a checkpoint; `None` when nothing is owed.
    fn until_checkpoint_due(&self) -> Option<Duration> {
        let c = self.checkpoints.as_ref()?;
        if self.owed == Some(0) {
            return None;
        }
        let due = c
            .policy
            .every
            .saturating_sub(self.last_checkpoint.elapsed());
        let retry = self.retry_at.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        });
        Some(due.max(retry))
    }

    /// A checkpoint entry over `head`, advancing it; `None` if signing failed.
    fn checkpoint_entry(&self, head: &mut ChainHead) -> Option<Entry> {
        let c = self.checkpoints.as_ref()?;
        let claims = CheckpointClaims {
            typ: CHECKPOINT_TYP.into(),
            seq: head.seq,
            hash: head.hash.clone(),
            at: c.clock.now_secs(),
            every: c.policy.every_entries.max(1),
        };
        let Some(token) = (c.sign)(&claims) else {
            tracing::error!(
                "could not sign a ledger checkpoint; trying again with the next entries"
            );
            return None;
        };
        Some(next_entry(head, checkpoint::record(&token), true))
    }

    /// Stores the batch (with the checkpoints it is owed) in one commit, then answers each caller. `close`
    /// also covers whatever remains uncovered (opening after a crash, shutting down).
    async fn commit(&mut self, batch: &mut Vec<Append>, close: bool) {
        let time_due = self.until_checkpoint_due().is_some_and(|d| d.is_zero());
        let may_owe = self.checkpoints.is_some() && self.owed != Some(0) && (close || time_due);
        if batch.is_empty() && !may_owe {
            return;
        }
        let started = Instant::now();
        let tip = match self.sink.tip().await {
            Ok(tip) => tip,
            Err(e) => return self.failed(batch, e),
        };
        let every_entries = self
            .checkpoints
            .as_ref()
            .map_or(u64::MAX, |c| c.policy.every_entries.max(1));
        let mut head = tip.head;
        let mut uncovered = tip.uncovered;
        let mut entries = Vec::with_capacity(batch.len() + 1);
        let mut checkpointed = false;
        for append in batch.iter() {
            entries.push(next_entry(&mut head, append.record.clone(), false));
            uncovered += 1;
            if uncovered >= every_entries
                && let Some(e) = self.checkpoint_entry(&mut head)
            {
                entries.push(e);
                uncovered = 0;
                checkpointed = true;
            }
        }
        if self.checkpoints.is_some()
            && uncovered > 0
            && (close || time_due)
            && let Some(e) = self.checkpoint_entry(&mut head)
        {
            entries.push(e);
            uncovered = 0;
            checkpointed = true;
        }
        if entries.is_empty() {
            self.sink.abort().await;
            self.owed = Some(uncovered);
            return;
        }
        let after = Tip { head, uncovered };
        let written = self.sink.write(&entries, &after).await;
        crate::metrics::record_stage("ledger", "commit", started.elapsed());
        match written {
            Ok(()) => {
                let seqs = entries.iter().filter(|e| !e.checkpoint).map(|e| e.seq);
                for (append, seq) in batch.drain(..).zip(seqs) {
                    let _ = append.done.send(Ok(seq));
                }
                self.owed = Some(uncovered);
                self.retry_at = None;
                if std::mem::take(&mut self.failing) {
                    tracing::info!("audit ledger commits again");
                }
                if checkpointed {
                    self.last_checkpoint = Instant::now();
                }
            }
            Err(e) => self.failed(batch, e),
        }
    }

    /// Answers every caller of a batch that was not stored.
    fn failed(&mut self, batch: &mut Vec<Append>, e: SinkError) {
        // Verdicts waiting are always worth an error; a checkpoint-only retry against a store that stays down
        // (every second) is logged once.
        if !batch.is_empty() || !self.failing {
            tracing::error!(error = ?e, entries = batch.len(), "audit ledger commit failed");
        }
        self.failing = true;
        self.owed = None;
        self.retry_at = Some(Instant::now() + RETRY_AFTER);
        for append in batch.drain(..) {
            let _ = append.done.send(Err(e.clone()));
        }
    }
}

/// The entry after `head` holding `record`, advancing `head` to it.
fn next_entry(head: &mut ChainHead, record: String, checkpoint: bool) -> Entry {
    let seq = head.seq + 1;
    let hash = entry_hash(seq, &head.hash, &record);
    let entry = Entry {
        seq,
        prev: std::mem::replace(&mut head.hash, hash.clone()),
        record,
        hash,
        checkpoint,
    };
    head.seq = seq;
    entry
}
