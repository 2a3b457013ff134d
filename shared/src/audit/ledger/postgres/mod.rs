//! The ledger in PostgreSQL, for replicas that share one ledger (a pod that is rescheduled keeps it).
//!
//! One row per entry in `audit_ledger` (created by [`migrate`], append-only by trigger and by grant). All
//! replicas of a service append to one chain: each commit takes the chain's transaction-scoped advisory lock,
//! reads the chain's tip, hashes its batch after that tip, inserts it and commits, so appends from any number of
//! writers form one chain without gaps or forks, and an entry is acknowledged only once its transaction has
//! committed. Group commit keeps the lock's cost per batch, not per verdict. (One chain per replica would need no
//! lock, but a replica that goes away would leave a chain nobody closes with a checkpoint; measured in
//! `docs/benchmarks.md`, the shared chain costs little at the suite's rates.)
//!
//! The writer owns one connection, which is all a single writer can use; it reconnects after any error, and
//! every step has a deadline, so a database that is down answers `store_unavailable` in time instead of hanging
//! a verdict. The URL's `sslmode` and `sslrootcert` choose TLS, which always verifies the server (see [`tls`]).

mod tls;

use std::time::Duration;

use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls, Socket, Statement, tls::MakeTlsConnect, types::ToSql};

use tls::Transport;

use super::{ChainHead, Entry, LedgerError, Sink, SinkError, Tip, format_line};
use crate::{
    audit::{
        checkpoint,
        verify::{Anchors, Verification, Verifier},
    },
    secret::Secret,
};

/// The schema: the table, its append-only triggers and the writer role.
pub const MIGRATION: &str = include_str!("../../../../migrations/postgres/0001_audit_ledger.sql");

/// Where a PostgreSQL ledger lives and which chain a service appends to.
#[derive(Debug, Clone)]
pub struct PostgresLedger {
    /// `postgres://user:password@host:port/db` (a secret: it may hold a password).
    pub url: Secret,
    /// The chain's name (the service's name by default: all its replicas append to one chain).
    pub chain: String,
    /// Deadline of each step (connect, lock, read, insert, commit).
    pub timeout: Duration,
}

impl PostgresLedger {
    /// The connection settings and transport. Read again at each connect, so a CA bundle replaced on disk
    /// (a rotated Kubernetes Secret) is trusted from the next connection on.
    fn config(&self) -> Result<tls::Target, LedgerError> {
        let mut target = tls::target(self.url.expose()).map_err(LedgerError::Config)?;
        target
            .config
            .connect_timeout(self.timeout)
            .keepalives(true)
            .application_name("idv-audit-ledger");
        Ok(target)
    }

    /// Connects once, with the deadline.
    pub async fn connect(&self) -> Result<Client, LedgerError> {
        let tls::Target { config, transport } = self.config()?;
        let connecting = async {
            match transport {
                Transport::Plain => open(&config, NoTls).await,
                Transport::Tls(tls) => open(&config, tls).await,
            }
        };
        tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| LedgerError::Unavailable("connect timed out".into()))?
            .map_err(|e| LedgerError::Unavailable(connect_error(&e)))
    }

    /// A sink appending to this chain. Connects on first use, so a service starts while its database is down
    /// (and answers `store_unavailable` until it is back).
    pub fn sink(&self) -> Result<PostgresSink, LedgerError> {
        self.config()?;
        Ok(PostgresSink {
            settings: self.clone(),
            conn: None,
            lock_key: lock_key(&self.chain),
            last: None,
        })
    }
}

/// Connects over `tls` and runs the connection on its own task until it closes.
async fn open<T>(config: &tokio_postgres::Config, tls: T) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "ledger database connection closed");
        }
    });
    Ok(client)
}

/// Why a connection failed, with the TLS cause where there is one (tokio-postgres's own message is only
/// "error performing TLS handshake").
fn connect_error(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The advisory-lock key of a chain: the first 8 bytes of its name's sha256.
fn lock_key(chain: &str) -> i64 {
    let digest = Sha256::digest(chain.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Creates the ledger's table, triggers and role if they are missing (safe to run again, and by several
/// replicas at once: it runs under a lock of its own).
pub async fn migrate(settings: &PostgresLedger) -> Result<(), LedgerError> {
    let client = settings.connect().await?;
    let script = format!(
        "BEGIN; SELECT pg_advisory_xact_lock({}); {MIGRATION}; COMMIT;",
        lock_key("idv-ledger-migration")
    );
    tokio::time::timeout(settings.timeout * 4, client.batch_execute(&script))
        .await
        .map_err(|_| LedgerError::Unavailable("migration timed out".into()))?
        .map_err(|e| LedgerError::Unavailable(db_error(&e)))
}

/// The chains in the ledger.
pub async fn chains(settings: &PostgresLedger) -> Result<Vec<String>, LedgerError> {
    let client = settings.connect().await?;
    let rows = client
        .query(
            "SELECT DISTINCT chain FROM audit_ledger ORDER BY chain",
            &[],
        )
        .await
        .map_err(|e| LedgerError::Unavailable(db_error(&e)))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Verifies one chain exactly as a ledger file is verified (each row read as the line the file ledger would
/// hold), streaming the rows in order.
pub async fn verify_chain(
    settings: &PostgresLedger,
    chain: &str,
    anchors: Option<Anchors<'_>>,
) -> Result<Verification, LedgerError> {
    let client = settings.connect().await?;
    let unavailable = |e: tokio_postgres::Error| LedgerError::Unavailable(db_error(&e));
    let rows = client
        .query_raw(
            "SELECT seq, prev, record, hash, checkpoint FROM audit_ledger WHERE chain = $1 ORDER BY seq",
            [chain],
        )
        .await
        .map_err(unavailable)?;
    futures::pin_mut!(rows);
    let mut verifier = Verifier::new(anchors);
    while let Some(row) = rows.try_next().await.map_err(unavailable)? {
        let seq: i64 = row.get(0);
        let record: String = row.get(2);
        let flagged: bool = row.get(4);
        if flagged != checkpoint::parse_record(&record).is_some() {
            return Ok(verifier.broken(
                u64::try_from(seq).ok(),
                "the checkpoint column does not match the record",
            ));
        }
        let Ok(seq) = u64::try_from(seq) else {
            return Ok(verifier.broken(None, "negative seq"));
        };
        let prev: String = row.get(1);
        let hash: String = row.get(3);
        let line = format_line(seq, &prev, &record, &hash);
        if let Err(broken) = verifier.push(line.trim_end_matches('\n').as_bytes()) {
            return Ok(broken);
        }
    }
    Ok(verifier.finish())
}

/// The database's message for an error (never a parameter's value: tokio-postgres does not echo them).
fn db_error(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map_or_else(
        || e.to_string(),
        |db| format!("{}: {}", db.code().code(), db.message()),
    )
}

/// A connection with the writer's statements prepared on it.
struct Conn {
    client: Client,
    head: Statement,
    uncovered: Statement,
    insert: Statement,
}

/// The writer's end of a PostgreSQL ledger.
pub struct PostgresSink {
    settings: PostgresLedger,
    conn: Option<Conn>,
    lock_key: i64,
    /// The tip this writer last committed, so the entries-since-checkpoint count is only queried again when
    /// another writer moved the chain.
    last: Option<Tip>,
}

impl std::fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSink")
            .field("chain", &self.settings.chain)
            .finish()
    }
}

impl PostgresSink {
    /// Connects and prepares the writer's statements unless a live connection is there.
    async fn connect(&mut self) -> Result<(), SinkError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_some() {
            return Ok(());
        }
        let client = self.settings.connect().await.map_err(|e| match e {
            LedgerError::Unavailable(m) | LedgerError::Config(m) => SinkError::Unavailable(m),
            other => SinkError::Unavailable(other.to_string()),
        })?;
        let prepared = step(self.settings.timeout, async {
            let head = client
                .prepare("SELECT seq, hash FROM audit_ledger WHERE chain = $1 ORDER BY seq DESC LIMIT 1")
                .await?;
            let uncovered = client
                .prepare(
                    "SELECT count(*) FROM audit_ledger WHERE chain = $1 AND seq > \
                     COALESCE((SELECT max(seq) FROM audit_ledger WHERE chain = $1 AND checkpoint), 0)",
                )
                .await?;
            let insert = client
                .prepare(
                    "INSERT INTO audit_ledger (chain, seq, prev, record, hash, checkpoint) \
                     SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bool[])",
                )
                .await?;
            Ok((head, uncovered, insert))
        })
        .await?;
        let (head, uncovered, insert) = prepared;
        self.conn = Some(Conn {
            client,
            head,
            uncovered,
            insert,
        });
        Ok(())
    }

    /// Forgets the connection after a failed step: its open transaction rolls back when it closes, and the next
    /// commit reads the tip again.
    fn reset<T>(&mut self, result: Result<T, SinkError>) -> Result<T, SinkError> {
        if result.is_err() {
            self.conn = None;
            self.last = None;
        }
        result
    }

    async fn read_tip(&mut self) -> Result<Tip, SinkError> {
        self.connect().await?;
        let timeout = self.settings.timeout;
        let ms = timeout.as_millis();
        let begin = format!(
            "BEGIN; SET LOCAL lock_timeout = '{ms}ms'; SET LOCAL statement_timeout = '{ms}ms'; \
             SELECT pg_advisory_xact_lock({});",
            self.lock_key
        );
        let chain = self.settings.chain.as_str();
        let Some(conn) = &self.conn else {
            return Err(SinkError::Unavailable("no connection".into()));
        };
        // The lock is taken in a statement of its own: the head is read in a later statement, whose snapshot
        // sees every commit made before the lock was granted. Both are sent at once (pipelined on the one
        // connection: the server still runs them in order), so the batch waits one round trip, not two; if the
        // lock fails, the head query fails in the aborted transaction.
        let params: [&(dyn ToSql + Sync); 1] = [&chain];
        let row = step(timeout, async {
            let (locked, head) = tokio::join!(
                conn.client.batch_execute(&begin),
                conn.client.query_opt(&conn.head, &params)
            );
            locked.and(head)
        })
        .await;
        let row = self.reset(row)?;
        let head = match row {
            None => ChainHead::genesis(),
            Some(row) => {
                let seq: i64 = row.get(0);
                ChainHead {
                    seq: u64::try_from(seq)
                        .map_err(|_| SinkError::Failed("negative seq in the ledger".into()))?,
                    hash: row.get(1),
                }
            }
        };
        if let Some(last) = &self.last
            && last.head == head
        {
            return Ok(last.clone());
        }
        let Some(conn) = &self.conn else {
            return Err(SinkError::Unavailable("no connection".into()));
        };
        let chain = self.settings.chain.as_str();
        let row = step(timeout, conn.client.query_one(&conn.uncovered, &[&chain])).await;
        let uncovered: i64 = self.reset(row)?.get(0);
        Ok(Tip {
            head,
            uncovered: u64::try_from(uncovered).unwrap_or(0),
        })
    }
}

/// Runs one step with the deadline. Every failure means the ledger cannot take entries now (the database is
/// down or slow, a lock or statement timed out, the table or its grant is missing): `store_unavailable`.
async fn step<T>(
    timeout: Duration,
    step: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, SinkError> {
    match tokio::time::timeout(timeout, step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(SinkError::Unavailable(db_error(&e))),
        Err(_) => Err(SinkError::Unavailable(
            "the ledger database did not answer in time".into(),
        )),
    }
}

#[async_trait::async_trait]
impl Sink for PostgresSink {
    async fn tip(&mut self) -> Result<Tip, SinkError> {
        self.read_tip().await
    }

    async fn write(&mut self, entries: &[Entry], after: &Tip) -> Result<(), SinkError> {
        let mut seqs = Vec::with_capacity(entries.len());
        for e in entries {
            seqs.push(
                i64::try_from(e.seq).map_err(|_| SinkError::Failed("seq out of range".into()))?,
            );
        }
        let prevs: Vec<&str> = entries.iter().map(|e| e.prev.as_str()).collect();
        let records: Vec<&str> = entries.iter().map(|e| e.record.as_str()).collect();
        let hashes: Vec<&str> = entries.iter().map(|e| e.hash.as_str()).collect();
        let flags: Vec<bool> = entries.iter().map(|e| e.checkpoint).collect();
        let chain = self.settings.chain.as_str();
        let Some(conn) = &self.conn else {
            return Err(SinkError::Unavailable("no connection".into()));
        };
        let params: [&(dyn ToSql + Sync); 6] = [&chain, &seqs, &prevs, &records, &hashes, &flags];
        // INSERT and COMMIT pipelined: one round trip. A failed INSERT aborts the transaction, and the COMMIT
        // behind it then rolls back without an error of its own, so the INSERT's result decides as well.
        let done = step(self.settings.timeout, async {
            let (inserted, committed) = tokio::join!(
                conn.client.execute(&conn.insert, &params),
                conn.client.batch_execute("COMMIT")
            );
            inserted.and(committed)
        })
        .await;
        self.reset(done)?;
        self.last = Some(after.clone());
        Ok(())
    }

    async fn abort(&mut self) {
        let Some(conn) = &self.conn else { return };
        let done = step(self.settings.timeout, conn.client.batch_execute("ROLLBACK")).await;
        if self.reset(done).is_err() {
            tracing::warn!("ledger transaction not rolled back; the connection was dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_lock_apart() {
        assert_ne!(lock_key("document-ocr"), lock_key("face-match"));
        assert_eq!(lock_key("phone-proof"), lock_key("phone-proof"));
    }
}
