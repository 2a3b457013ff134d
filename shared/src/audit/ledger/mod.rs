//! The append-only, hash-chained audit ledger.
//!
//! One JSON line per entry: `{"seq":N,"prev":"<hex>","record":{…},"hash":"<hex>"}` where
//! `hash = sha256("<seq>\n<prev>\n<record as written>")` and `prev` is the previous entry's hash (64 zeros for
//! the first). Appends go through one writer thread that batches whatever is queued into a single write and a
//! single `fsync` (group commit), and answers each caller only after that `fsync`: a verdict is never sent
//! before its entry is durable, and concurrent verdicts share the cost of the sync. With [`Checkpoints`] the
//! writer also signs the chain head at intervals (see [`super::checkpoint`]); verification is in
//! [`super::verify`].

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Seek, SeekFrom, Write},
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

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Most entries one group commit writes.
const MAX_BATCH: usize = 4096;

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

struct Append {
    record: String,
    done: oneshot::Sender<Result<u64, String>>,
}

/// A running ledger: a handle to its writer thread.
pub struct Ledger {
    tx: Mutex<Option<mpsc::Sender<Append>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

impl Ledger {
    /// Opens (or creates) the ledger at `path` and starts its writer, without checkpoints.
    ///
    /// A trailing partial line (a crash in the middle of a write that was never acknowledged) is cut off;
    /// every acknowledged entry ends in a newline and survives. The chain itself is not re-verified here:
    /// that is `idvctl ledger verify`'s job and would make start-up linear in the ledger's size.
    pub fn open(path: &Path, queue_capacity: usize) -> Result<Self, LedgerError> {
        Self::start(path, queue_capacity, None)
    }

    /// Opens the ledger like [`Ledger::open`], with signed checkpoints. Entries a crash left without a
    /// checkpoint are covered by one at once.
    pub fn open_with_checkpoints(
        path: &Path,
        queue_capacity: usize,
        checkpoints: Checkpoints,
    ) -> Result<Self, LedgerError> {
        Self::start(path, queue_capacity, Some(checkpoints))
    }

    fn start(
        path: &Path,
        queue_capacity: usize,
        checkpoints: Option<Checkpoints>,
    ) -> Result<Self, LedgerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let (head, uncovered) = recover_head(&mut file, path)?;
        // The writer waits on the queue with a timeout (the time rule of checkpoints), so it runs a small
        // timer-only runtime of its own.
        let timer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let (tx, rx) = mpsc::channel(queue_capacity.max(1));
        let writer = Writer {
            file,
            head,
            checkpoints,
            uncovered,
            last_checkpoint: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("audit-ledger".into())
            .spawn(move || writer.run(rx, &timer))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            path: path.to_owned(),
        })
    }

    /// Appends a record and returns its `seq` once it is durable on disk.
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
            Ok(Err(e)) => Err(LedgerError::Io(std::io::Error::other(e))),
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

    /// The ledger's file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Finds the last complete entry, counts the entries after the last checkpoint, and cuts off a trailing
/// partial line.
fn recover_head(file: &mut File, path: &Path) -> Result<(ChainHead, u64), LedgerError> {
    let mut head = ChainHead {
        seq: 0,
        hash: GENESIS.to_owned(),
    };
    let mut uncovered = 0u64;
    let mut good_len = 0u64;
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&mut *file);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        if let Ok(line) = serde_json::from_slice::<Line<'_>>(&buf) {
            if checkpoint::parse_record(line.record.get()).is_some() {
                uncovered = 0;
            } else {
                uncovered += 1;
            }
            head = ChainHead {
                seq: line.seq,
                hash: line.hash,
            };
        }
        good_len += n as u64;
    }
    let len = file.metadata()?.len();
    if len > good_len {
        tracing::warn!(path = %path.display(), dropped_bytes = len - good_len, "cutting an unacknowledged partial ledger line");
        file.set_len(good_len)?;
        file.sync_all()?;
    }
    Ok((head, uncovered))
}

/// The writer thread's state.
struct Writer {
    file: File,
    head: ChainHead,
    checkpoints: Option<Checkpoints>,
    /// Entries since the last checkpoint.
    uncovered: u64,
    last_checkpoint: Instant,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Append>, timer: &tokio::runtime::Runtime) {
        let mut batch = Vec::with_capacity(64);
        self.commit(&mut batch, true);
        loop {
            let wait = self.until_checkpoint_due();
            let next = timer.block_on(async {
                match wait {
                    Some(wait) => tokio::time::timeout(wait, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            });
            match next {
                Some(Some(first)) => batch.push(first),
                // Shut down: cover what is left with a last checkpoint.
                Some(None) => {
                    self.commit(&mut batch, true);
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
            self.commit(&mut batch, false);
        }
    }

    /// How long until uncovered entries are owed a checkpoint; `None` when nothing is owed.
    fn until_checkpoint_due(&self) -> Option<Duration> {
        let c = self.checkpoints.as_ref()?;
        (self.uncovered > 0).then(|| {
            c.policy
                .every
                .saturating_sub(self.last_checkpoint.elapsed())
        })
    }

    /// The line of a checkpoint over the current head, advancing the head; `None` if signing failed.
    fn checkpoint_line(&mut self) -> Option<String> {
        let c = self.checkpoints.as_ref()?;
        let claims = CheckpointClaims {
            typ: CHECKPOINT_TYP.into(),
            seq: self.head.seq,
            hash: self.head.hash.clone(),
            at: c.clock.now_secs(),
            every: c.policy.every_entries.max(1),
        };
        let Some(token) = (c.sign)(&claims) else {
            tracing::error!(
                "could not sign a ledger checkpoint; trying again with the next entries"
            );
            return None;
        };
        let record = checkpoint::record(&token);
        let seq = self.head.seq + 1;
        let hash = entry_hash(seq, &self.head.hash, &record);
        let line = format_line(seq, &self.head.hash, &record, &hash);
        self.head = ChainHead { seq, hash };
        self.uncovered = 0;
        self.last_checkpoint = Instant::now();
        Some(line)
    }

    /// Writes the batch (with the checkpoints it is owed) in one write and one `fsync`, then answers each
    /// caller. `close` also covers whatever remains uncovered (opening after a crash, shutting down).
    fn commit(&mut self, batch: &mut Vec<Append>, close: bool) {
        let every_entries = self
            .checkpoints
            .as_ref()
            .map_or(u64::MAX, |c| c.policy.every_entries.max(1));
        let start = (self.head.clone(), self.uncovered, self.last_checkpoint);
        let mut out = String::new();
        let mut seqs = Vec::with_capacity(batch.len());
        for append in batch.iter() {
            let seq = self.head.seq + 1;
            let hash = entry_hash(seq, &self.head.hash, &append.record);
            out.push_str(&format_line(seq, &self.head.hash, &append.record, &hash));
            self.head = ChainHead { seq, hash };
            self.uncovered += 1;
            seqs.push(seq);
            if self.uncovered >= every_entries
                && let Some(line) = self.checkpoint_line()
            {
                out.push_str(&line);
            }
        }
        if self
            .until_checkpoint_due()
            .is_some_and(|d| close || d.is_zero())
            && let Some(line) = self.checkpoint_line()
        {
            out.push_str(&line);
        }
        if out.is_empty() {
            return;
        }
        let started = Instant::now();
        let written = self.file.metadata().and_then(|m| {
            let before = m.len();
            let res = self
                .file
                .write_all(out.as_bytes())
                .and_then(|()| self.file.sync_data());
            if res.is_err() {
                // Undo a partial write so the file stays a valid chain and later appends link to it.
                let _ = self.file.set_len(before);
            }
            res
        });
        crate::metrics::record_stage("ledger", "fsync", started.elapsed());
        match written {
            Ok(()) => {
                for (append, seq) in batch.drain(..).zip(seqs) {
                    let _ = append.done.send(Ok(seq));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit ledger write failed");
                (self.head, self.uncovered, self.last_checkpoint) = start;
                for append in batch.drain(..) {
                    let _ = append.done.send(Err(e.to_string()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_form_one_chain_and_tampering_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let ledger = std::sync::Arc::new(Ledger::open(&path, 1024).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let ledger = ledger.clone();
                tokio::spawn(
                    async move { ledger.append(&serde_json::json!({"i": i})).await.unwrap() },
                )
            })
            .collect();
        let mut seqs: Vec<u64> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
        ledger.shutdown();
        assert!(matches!(
            verify_file(&path).unwrap(),
            Verification::Intact { entries: 200, .. }
        ));

        // Reopen and continue the chain.
        let ledger = Ledger::open(&path, 8).unwrap();
        assert_eq!(
            ledger
                .append(&serde_json::json!({"i": "after"}))
                .await
                .unwrap(),
            201
        );
        ledger.shutdown();
        assert!(matches!(
            verify_file(&path).unwrap(),
            Verification::Intact { entries: 201, .. }
        ));

        // Flip the last digit of entry 57's number (JSON stays valid, so the hash check must catch it).
        let mut bytes = std::fs::read(&path).unwrap();
        let line_start = bytes
            .split(|b| *b == b'\n')
            .take(56)
            .map(|l| l.len() + 1)
            .sum::<usize>();
        let pos = line_start
            + bytes[line_start..]
                .windows(8)
                .position(|w| w == b"},\"hash\"")
                .unwrap()
            - 1;
        assert!(bytes[pos].is_ascii_digit());
        bytes[pos] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        match verify_file(&path).unwrap() {
            Verification::Broken { line, seq, .. } => assert_eq!((line, seq), (57, Some(57))),
            other => panic!("tampering not found: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_partial_trailing_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let ledger = Ledger::open(&path, 8).unwrap();
        ledger.append(&serde_json::json!({"a": 1})).await.unwrap();
        ledger.shutdown();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":2,\"prev\":\"ab").unwrap();
        drop(f);
        let ledger = Ledger::open(&path, 8).unwrap();
        assert_eq!(
            ledger.append(&serde_json::json!({"a": 2})).await.unwrap(),
            2
        );
        ledger.shutdown();
        assert!(matches!(
            verify_file(&path).unwrap(),
            Verification::Intact { entries: 2, .. }
        ));
    }
}
