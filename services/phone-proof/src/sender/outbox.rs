//! The embedded default sender: appends each message as one JSON line to a local file (mode 0600), standing in
//! for a phone. `tail -f var/outbox/phone-proof.jsonl` shows the codes while developing.

use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;

use super::{DeliveryError, Message, Sender};

/// Writes messages to a file.
pub struct OutboxSender {
    path: PathBuf,
    file: Arc<Mutex<std::fs::File>>,
}

impl OutboxSender {
    /// Opens (creating) the outbox for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(Self {
            path: path.to_owned(),
            file: Arc::new(Mutex::new(file)),
        })
    }
}

#[async_trait]
impl Sender for OutboxSender {
    async fn send(&self, m: &Message) -> Result<(), DeliveryError> {
        let mut line = serde_json::to_vec(&m.payload()).map_err(|e| DeliveryError {
            attempts: 1,
            last: e.to_string(),
        })?;
        line.push(b'\n');
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            // One write per line so concurrent appends never interleave.
            f.write_all(&line)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|last| DeliveryError { attempts: 1, last })
    }

    fn describe(&self) -> String {
        format!("outbox ({})", self.path.display())
    }
}
