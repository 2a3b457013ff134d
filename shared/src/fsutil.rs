//! Private files (keys, secrets) written so that a crash never leaves half a file and concurrent first starts
//! agree on one.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

/// How a private file is put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Only if none exists: services starting together must end up with one key, not one each.
    Exclusive,
    /// Over the existing file (rotation).
    Replace,
}

/// Writes `body` to `path` with mode 0600: into a temporary file first (synced), then linked (exclusive) or
/// renamed (replace) into place. With [`Create::Exclusive`], an existing file wins and is left as it is.
pub fn write_private(path: &Path, body: &[u8], how: Create) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", ulid::Ulid::new()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(body).and_then(|()| f.sync_all())?;
    let placed = match how {
        // link(2) fails when the target exists, unlike rename(2): the first writer wins.
        Create::Exclusive => match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        },
        Create::Replace => std::fs::rename(&tmp, path),
    };
    let _ = std::fs::remove_file(&tmp);
    placed
}
