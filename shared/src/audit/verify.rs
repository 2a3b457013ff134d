//! Verifying a ledger file: the hash chain from the first entry, and with the service's public keys, every
//! signed checkpoint (see [`super::checkpoint`]).

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
};

use super::{
    checkpoint::{CHECKPOINT_TYP, CheckpointClaims, parse_record},
    jws::{self, Jwks},
    ledger::{ChainHead, Line, entry_hash, format_line},
};

/// The outcome of verifying a ledger file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every entry checks out.
    Intact {
        /// Number of entries (checkpoints included).
        entries: u64,
        /// The head.
        head: ChainHead,
        /// Signed checkpoints found (checked only when keys were given).
        checkpoints: u64,
        /// Entries after the last checkpoint: not yet covered by a signature.
        unanchored: u64,
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

/// How far a ledger is checked.
#[derive(Debug, Clone, Copy)]
pub struct Anchors<'a> {
    /// The service's audit keys (its `/.well-known/jwks.json`, rotated-out keys included).
    pub keys: &'a Jwks,
    /// Most entries allowed before the first checkpoint; later gaps use each checkpoint's own `every`.
    pub max_gap: u64,
}

/// Verifies a ledger's hash chain from the start and names the first broken entry. This alone cannot tell a
/// history rewritten with recomputed hashes: use [`verify_file_anchored`] for that.
pub fn verify_file(path: &Path) -> Result<Verification, std::io::Error> {
    verify(path, None)
}

/// Verifies the chain and every checkpoint's signature against `anchors.keys`. A rewritten history fails at the
/// first entry after the last checkpoint that still signs the chain; removed checkpoints fail the gap rule.
pub fn verify_file_anchored(
    path: &Path,
    anchors: Anchors<'_>,
) -> Result<Verification, std::io::Error> {
    verify(path, Some(anchors))
}

fn verify(path: &Path, anchors: Option<Anchors<'_>>) -> Result<Verification, std::io::Error> {
    let reader = BufReader::new(File::open(path)?);
    let mut verifier = Verifier::new(anchors);
    for line in reader.split(b'\n') {
        if let Err(broken) = verifier.push(&line?) {
            return Ok(broken);
        }
    }
    Ok(verifier.finish())
}

/// Checks a chain one entry at a time, in order, wherever its entries are kept (each given as the line the
/// file ledger holds, without its newline).
#[derive(Debug)]
pub struct Verifier<'a> {
    anchors: Option<Anchors<'a>>,
    head: ChainHead,
    line_no: u64,
    checkpoints: u64,
    /// The last entry a valid checkpoint covers (its own seq).
    anchored: u64,
    /// The gap allowed after it.
    max_gap: u64,
}

impl<'a> Verifier<'a> {
    /// Starts at the genesis, checking checkpoints against `anchors` when given.
    pub fn new(anchors: Option<Anchors<'a>>) -> Self {
        Self {
            max_gap: anchors.map_or(u64::MAX, |a| a.max_gap),
            anchors,
            head: ChainHead::genesis(),
            line_no: 0,
            checkpoints: 0,
            anchored: 0,
        }
    }

    /// The verdict on the entry being checked when something outside the line (e.g. a column beside it) is wrong.
    pub fn broken(&self, seq: Option<u64>, reason: &str) -> Verification {
        Verification::Broken {
            line: self.line_no + 1,
            seq,
            reason: reason.to_owned(),
        }
    }

    /// Checks the next entry; `Err` names the first broken one.
    pub fn push(&mut self, raw: &[u8]) -> Result<(), Verification> {
        self.line_no += 1;
        let line_no = self.line_no;
        let broken = |seq, reason: &str| Verification::Broken {
            line: line_no,
            seq,
            reason: reason.to_owned(),
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err(broken(None, "not UTF-8"));
        };
        let Ok(entry) = serde_json::from_str::<Line<'_>>(text) else {
            return Err(broken(None, "not a ledger entry"));
        };
        let head = &self.head;
        if entry.seq != head.seq + 1 {
            return Err(broken(
                Some(entry.seq),
                &format!("expected seq {}", head.seq + 1),
            ));
        }
        if entry.prev != head.hash {
            return Err(broken(
                Some(entry.seq),
                "prev does not match the previous entry's hash",
            ));
        }
        let expected = entry_hash(entry.seq, &entry.prev, entry.record.get());
        if entry.hash != expected {
            return Err(broken(
                Some(entry.seq),
                "hash does not match the entry's content",
            ));
        }
        // The line must be exactly what the writer would write: no edits hidden in whitespace.
        if format_line(entry.seq, &entry.prev, entry.record.get(), &entry.hash)
            .trim_end_matches('\n')
            != text
        {
            return Err(broken(Some(entry.seq), "line is not in canonical form"));
        }
        let anchored = self.anchored;
        if let Some(a) = self.anchors {
            // Seqs are line numbers in a valid chain, so the first unanchored entry is at line `anchored + 1`.
            let rewritten = |reason: String| Verification::Broken {
                line: anchored + 1,
                seq: Some(anchored + 1),
                reason: format!(
                    "{reason}; history after seq {anchored} (the last valid checkpoint) cannot be trusted"
                ),
            };
            match parse_record(entry.record.get()) {
                Some(token) => match jws::verify::<CheckpointClaims>(token, a.keys) {
                    Ok(c)
                        if c.typ == CHECKPOINT_TYP && c.seq == head.seq && c.hash == head.hash =>
                    {
                        self.checkpoints += 1;
                        self.anchored = entry.seq;
                        self.max_gap = c.every.max(1);
                    }
                    Ok(_) => {
                        return Err(rewritten(format!(
                            "the checkpoint at seq {} signs another chain head",
                            entry.seq
                        )));
                    }
                    Err(e) => {
                        return Err(rewritten(format!(
                            "the checkpoint at seq {} does not verify ({e})",
                            entry.seq
                        )));
                    }
                },
                None if entry.seq - anchored > self.max_gap => {
                    return Err(rewritten(format!(
                        "{} entries follow seq {anchored} without a signed checkpoint (at most {} expected)",
                        entry.seq - anchored,
                        self.max_gap
                    )));
                }
                None => {}
            }
        } else if parse_record(entry.record.get()).is_some() {
            self.checkpoints += 1;
            self.anchored = entry.seq;
        }
        self.head = ChainHead {
            seq: entry.seq,
            hash: entry.hash,
        };
        Ok(())
    }

    /// The outcome once every entry passed.
    pub fn finish(self) -> Verification {
        Verification::Intact {
            entries: self.head.seq,
            unanchored: self.head.seq - self.anchored,
            head: self.head,
            checkpoints: self.checkpoints,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audit::ledger::GENESIS;
    use crate::audit::{
        KeyRing,
        checkpoint::{CheckpointPolicy, Checkpoints},
        ledger::Ledger,
    };

    fn signed_ledger(dir: &Path, every_entries: u64, every: Duration) -> (Ledger, Jwks) {
        let ring =
            KeyRing::load_or_create(&dir.join("keys.json"), &crate::clock::SystemClock).unwrap();
        let jwks = ring.jwks();
        let ledger = Ledger::open_with_checkpoints(
            &dir.join("ledger.jsonl"),
            64,
            Checkpoints {
                policy: CheckpointPolicy {
                    every_entries,
                    every,
                },
                sign: Box::new(move |c| ring.sign(c).ok()),
                clock: crate::clock::SystemClock::shared(),
            },
        )
        .unwrap();
        (ledger, jwks)
    }

    /// What an attacker with write access but no key does: edit records, then recompute every seq, prev and
    /// hash so the chain is whole again.
    fn rewrite(path: &Path, edit: impl Fn(u64, &str) -> Option<String>) {
        let text = std::fs::read_to_string(path).unwrap();
        let mut head = ChainHead {
            seq: 0,
            hash: GENESIS.to_owned(),
        };
        let mut out = String::new();
        for line in text.lines() {
            let entry: Line<'_> = serde_json::from_str(line).unwrap();
            let Some(record) = edit(entry.seq, entry.record.get()) else {
                continue;
            };
            let seq = head.seq + 1;
            let hash = entry_hash(seq, &head.hash, &record);
            out.push_str(&format_line(seq, &head.hash, &record, &hash));
            head = ChainHead { seq, hash };
        }
        std::fs::write(path, out).unwrap();
    }

    async fn append_verdicts(ledger: &Ledger, n: usize) {
        for i in 0..n {
            ledger
                .append(&serde_json::json!({"verdict": "fail", "i": i}))
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn checkpoints_anchor_the_chain_and_a_rewritten_history_fails_after_the_last_valid_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let (ledger, jwks) = signed_ledger(dir.path(), 10, Duration::from_secs(3600));
        append_verdicts(&ledger, 35).await;
        ledger.shutdown();
        let anchors = Anchors {
            keys: &jwks,
            max_gap: 10,
        };
        // Checkpoints after entries 10, 20 and 30 and one at shutdown for the last 5: 35 + 4 entries.
        assert!(matches!(
            verify_file_anchored(&path, anchors).unwrap(),
            Verification::Intact {
                entries: 39,
                checkpoints: 4,
                unanchored: 0,
                ..
            }
        ));

        // Entry 15 (after the first checkpoint, seq 11) becomes a pass; every later hash is recomputed.
        let original = std::fs::read_to_string(&path).unwrap();
        rewrite(&path, |seq, r| {
            Some(if seq == 15 {
                r.replace("\"fail\"", "\"pass\"")
            } else {
                r.to_owned()
            })
        });
        assert!(
            matches!(verify_file(&path).unwrap(), Verification::Intact { .. }),
            "the hash chain alone cannot tell"
        );
        match verify_file_anchored(&path, anchors).unwrap() {
            Verification::Broken { line, seq, reason } => {
                assert_eq!((line, seq), (12, Some(12)), "{reason}");
                assert!(reason.contains("seq 22"), "{reason}");
            }
            other => panic!("rewrite not detected: {other:?}"),
        }

        // Removing the checkpoints as well leaves runs longer than any checkpoint allows.
        std::fs::write(&path, &original).unwrap();
        rewrite(&path, |seq, r| {
            parse_record(r).is_none().then(|| {
                if seq == 15 {
                    r.replace("\"fail\"", "\"pass\"")
                } else {
                    r.to_owned()
                }
            })
        });
        match verify_file_anchored(&path, anchors).unwrap() {
            Verification::Broken { seq, reason, .. } => {
                assert_eq!(seq, Some(1), "{reason}");
                assert!(reason.contains("without a signed checkpoint"), "{reason}");
            }
            other => panic!("stripped checkpoints not detected: {other:?}"),
        }

        // A checkpoint signed by another key does not count.
        std::fs::write(&path, &original).unwrap();
        let stranger = tempfile::tempdir().unwrap();
        let other =
            KeyRing::load_or_create(&stranger.path().join("k.json"), &crate::clock::SystemClock)
                .unwrap()
                .jwks();
        assert!(matches!(
            verify_file_anchored(
                &path,
                Anchors {
                    keys: &other,
                    max_gap: 10
                }
            )
            .unwrap(),
            Verification::Broken { seq: Some(1), .. }
        ));
    }

    #[tokio::test]
    async fn waiting_entries_get_a_checkpoint_in_time_and_a_crash_tail_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        // A ledger left by a writer without checkpoints (as a crash leaves uncovered entries).
        let plain = Ledger::open(&path, 8).unwrap();
        append_verdicts(&plain, 3).await;
        plain.shutdown();
        drop(plain);
        let (ledger, jwks) = signed_ledger(dir.path(), 1000, Duration::from_millis(200));
        let anchors = Anchors {
            keys: &jwks,
            max_gap: 1000,
        };
        append_verdicts(&ledger, 2).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Still running: the 3 old entries were covered at open, the 2 new ones by the time rule.
        match verify_file_anchored(&path, anchors).unwrap() {
            Verification::Intact {
                entries,
                checkpoints,
                unanchored,
                ..
            } => assert_eq!((entries, checkpoints, unanchored), (7, 2, 0)),
            other => panic!("{other:?}"),
        }
        ledger.shutdown();
        assert!(matches!(
            verify_file_anchored(&path, anchors).unwrap(),
            Verification::Intact { entries: 7, .. }
        ));
    }
}
