//! The append-only, hash-chained audit ledger.
//!
//! One JSON line per entry: `{"seq":N,"prev":"<hex>","record":{…},"hash":"<hex>"}` where
//! `hash = sha256("<seq>\n<prev>\n<record as written>")` and `prev` is the previous entry's hash (64 zeros for
//! the first). Appends go through one writer thread that batches whatever is queued into a single write and a
//! single `fsync` (group commit), and answers each caller only after that `fsync`: a verdict is never sent
//! before its entry is durable, and concurrent verdicts share the cost of the sync.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::Mutex,
    thread::JoinHandle,
};

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

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

fn format_line(seq: u64, prev: &str, record_json: &str, hash: &str) -> String {
    format!("{{\"seq\":{seq},\"prev\":\"{prev}\",\"record\":{record_json},\"hash\":\"{hash}\"}}\n")
}

#[derive(Deserialize)]
struct Line<'a> {
    seq: u64,
    prev: String,
    #[serde(borrow)]
    record: &'a RawValue,
    hash: String,
}

/// Where the chain stands: the last entry's number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Number of the last entry (0 when empty).
    pub seq: u64,
    /// Hash of the last entry ([`GENESIS`] when empty).
    pub hash: String,
}

/// The outcome of verifying a ledger file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every entry checks out.
    Intact {
        /// Number of entries.
        entries: u64,
        /// The head.
        head: ChainHead,
    },
    /// The first entry that does not.
    Broken {
        /// 1-based line number.
        line: u64,
        /// The entry's `seq` if it could be read.
        seq: Option<u64>,
        /// What is wrong.
        reason: String,
    },
}

/// Verifies a ledger file from the start and names the first broken entry.
pub fn verify_file(path: &Path) -> Result<Verification, std::io::Error> {
    let reader = BufReader::new(File::open(path)?);
    let mut head = ChainHead {
        seq: 0,
        hash: GENESIS.to_owned(),
    };
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let raw = line?;
        let broken = |seq, reason: &str| Verification::Broken {
            line: line_no,
            seq,
            reason: reason.to_owned(),
        };
        let Ok(text) = std::str::from_utf8(&raw) else {
            return Ok(broken(None, "not UTF-8"));
        };
        let Ok(entry) = serde_json::from_str::<Line<'_>>(text) else {
            return Ok(broken(None, "not a ledger entry"));
        };
        if entry.seq != head.seq + 1 {
            return Ok(broken(
                Some(entry.seq),
                &format!("expected seq {}", head.seq + 1),
            ));
        }
        if entry.prev != head.hash {
            return Ok(broken(
                Some(entry.seq),
                "prev does not match the previous entry's hash",
            ));
        }
        let expected = entry_hash(entry.seq, &entry.prev, entry.record.get());
        if entry.hash != expected {
            return Ok(broken(
                Some(entry.seq),
                "hash does not match the entry's content",
            ));
        }
        // The line must be exactly what the writer would write: no edits hidden in whitespace.
        if format_line(entry.seq, &entry.prev, entry.record.get(), &entry.hash)
            .trim_end_matches('\n')
            != text
        {
            return Ok(broken(Some(entry.seq), "line is not in canonical form"));
        }
        head = ChainHead {
            seq: entry.seq,
            hash: entry.hash,
        };
    }
    Ok(Verification::Intact {
        entries: head.seq,
        head,
    })
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
    /// Opens (or creates) the ledger at `path` and starts its writer.
    ///
    /// A trailing partial line (a crash in the middle of a write that was never acknowledged) is cut off;
    /// every acknowledged entry ends in a newline and survives. The chain itself is not re-verified here:
    /// that is `idvctl ledger verify`'s job and would make start-up linear in the ledger's size.
    pub fn open(path: &Path, queue_capacity: usize) -> Result<Self, LedgerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let head = recover_head(&mut file, path)?;
        let (tx, rx) = mpsc::channel(queue_capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("audit-ledger".into())
            .spawn(move || writer_loop(file, head, rx))?;
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

    /// Stops taking appends, lets the writer commit everything queued, and waits for it.
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

/// Finds the last complete entry and cuts off a trailing partial line.
fn recover_head(file: &mut File, path: &Path) -> Result<ChainHead, LedgerError> {
    let mut head = ChainHead {
        seq: 0,
        hash: GENESIS.to_owned(),
    };
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
    Ok(head)
}

fn writer_loop(mut file: File, mut head: ChainHead, mut rx: mpsc::Receiver<Append>) {
    let mut batch = Vec::with_capacity(64);
    let mut out = String::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        out.clear();
        let start = head.clone();
        let mut seqs = Vec::with_capacity(batch.len());
        for append in &batch {
            let seq = head.seq + 1;
            let hash = entry_hash(seq, &head.hash, &append.record);
            out.push_str(&format_line(seq, &head.hash, &append.record, &hash));
            head = ChainHead { seq, hash };
            seqs.push(seq);
        }
        let started = std::time::Instant::now();
        let written = file.metadata().and_then(|m| {
            let before = m.len();
            let res = file
                .write_all(out.as_bytes())
                .and_then(|()| file.sync_data());
            if res.is_err() {
                // Undo a partial write so the file stays a valid chain and later appends link to it.
                let _ = file.set_len(before);
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
                head = start;
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
