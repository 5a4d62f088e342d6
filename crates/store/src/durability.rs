//! Group commit: many write transactions made durable by one fsync.
//!
//! Connections run with `synchronous=NORMAL`, so a commit only appends to the write-ahead
//! log. Before a write is acknowledged, its caller waits here until the log has been fsynced
//! past its commit. Callers that commit while an fsync is running are all covered by the
//! next one, so under load one fsync makes a whole batch of uploads durable.

use std::fs::File;
use std::path::PathBuf;

use parking_lot::{Condvar, Mutex};

use crate::{Result, StoreError};

#[derive(Default)]
struct State {
    /// Commits numbered in the order the writer made them.
    committed: u64,
    /// Every commit up to this number is on disk.
    synced: u64,
    /// Whether some caller is running an fsync now.
    syncing: bool,
}

/// Identifies one incarnation of the log file: SQLite deletes and recreates it.
#[derive(Clone, Copy, PartialEq)]
struct FileIdentity(u64, u64);

pub(crate) struct Durability {
    wal: PathBuf,
    /// The log file whose folder entry is known to be durable.
    known_log: Mutex<Option<FileIdentity>>,
    state: Mutex<State>,
    synced: Condvar,
}

impl Durability {
    pub(crate) fn new(db_path: &std::path::Path) -> Durability {
        let mut wal = db_path.as_os_str().to_owned();
        wal.push("-wal");
        Durability {
            wal: PathBuf::from(wal),
            known_log: Mutex::new(None),
            state: Mutex::new(State::default()),
            synced: Condvar::new(),
        }
    }

    /// Numbers a commit. Call it while still holding the writer, so numbers follow commits.
    pub(crate) fn committed(&self) -> u64 {
        let mut state = self.state.lock();
        state.committed += 1;
        state.committed
    }

    /// Returns once commit `seq` is on disk, running the fsync if nobody else is.
    pub(crate) fn wait(&self, seq: u64) -> Result<()> {
        let mut state = self.state.lock();
        loop {
            if state.synced >= seq {
                return Ok(());
            }
            if state.syncing {
                self.synced.wait(&mut state);
                continue;
            }
            state.syncing = true;
            let target = state.committed;
            drop(state);
            let outcome = self.sync_log();
            state = self.state.lock();
            state.syncing = false;
            if outcome.is_ok() {
                state.synced = state.synced.max(target);
            }
            self.synced.notify_all();
            outcome?;
        }
    }

    fn sync_log(&self) -> Result<()> {
        match File::open(&self.wal) {
            Ok(file) => {
                file.sync_data().map_err(|e| StoreError::io(&self.wal, e))?;
                self.sync_folder_once(&file)
            }
            // No log means every commit has been checkpointed into the database file, which
            // SQLite syncs itself when it checkpoints.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&self.wal, e)),
        }
    }
}

impl Durability {
    /// A new log file is only durable once the folder that lists it is synced too.
    fn sync_folder_once(&self, file: &File) -> Result<()> {
        let identity = identity(file).map_err(|e| StoreError::io(&self.wal, e))?;
        let mut known = self.known_log.lock();
        if *known == Some(identity) {
            return Ok(());
        }
        let folder = self.wal.parent().unwrap_or(std::path::Path::new("."));
        File::open(folder)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(folder, e))?;
        *known = Some(identity);
        Ok(())
    }
}

#[cfg(unix)]
fn identity(file: &File) -> std::io::Result<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    Ok(FileIdentity(meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(file: &File) -> std::io::Result<FileIdentity> {
    let meta = file.metadata()?;
    let created = meta
        .created()?
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(FileIdentity(
        created.as_secs(),
        u64::from(created.subsec_nanos()),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn every_waiter_returns_once_its_commit_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(dir.path().join("x.db-wal"), b"log").unwrap();
        let durability = Arc::new(Durability::new(&db));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let durability = durability.clone();
                std::thread::spawn(move || {
                    let seq = durability.committed();
                    durability.wait(seq).unwrap();
                    seq
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        seqs.sort();
        assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
        assert_eq!(durability.state.lock().synced, 8);
    }
}
