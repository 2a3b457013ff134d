//! The ledger in a JSON-lines file: one line per entry, each commit one `write` and one `fsync`. The embedded
//! default: one process, one file, no server.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use super::{ChainHead, Entry, LedgerError, Line, Sink, SinkError, Tip, format_line};
use crate::audit::checkpoint;

/// A ledger file, opened by the one process that writes it.
pub struct FileSink {
    file: File,
    path: PathBuf,
    tip: Tip,
}

impl FileSink {
    /// Opens (or creates) the file, finds its tip and cuts off a trailing partial line.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let tip = recover_tip(&mut file, path)?;
        Ok(Self {
            file,
            path: path.to_owned(),
            tip,
        })
    }
}

#[async_trait::async_trait]
impl Sink for FileSink {
    async fn tip(&mut self) -> Result<Tip, SinkError> {
        Ok(self.tip.clone())
    }

    async fn write(&mut self, entries: &[Entry], after: &Tip) -> Result<(), SinkError> {
        let mut out = String::new();
        for e in entries {
            out.push_str(&format_line(e.seq, &e.prev, &e.record, &e.hash));
        }
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
        match written {
            Ok(()) => {
                self.tip = after.clone();
                Ok(())
            }
            Err(e) => Err(SinkError::Failed(e.to_string())),
        }
    }

    async fn abort(&mut self) {}

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// Finds the last complete entry, counts the entries after the last checkpoint, and cuts off a trailing
/// partial line.
fn recover_tip(file: &mut File, path: &Path) -> Result<Tip, LedgerError> {
    let mut head = ChainHead::genesis();
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
    Ok(Tip { head, uncovered })
}

#[cfg(test)]
mod tests {
    use std::{fs::OpenOptions, io::Write};

    use crate::audit::ledger::{Ledger, Verification, verify_file};

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
