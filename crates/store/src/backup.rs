//! Consistent copies of a data folder, taken while the server runs, and their restoration.
//!
//! The database is copied with SQLite's online backup in one step, which reads one
//! consistent snapshot. Contents are immutable and named by their hash, so every blob file
//! the snapshot refers to exists and can be copied after it.

use std::fs;
use std::path::Path;
use std::time::Duration;

use rusqlite::backup::StepResult;
use rusqlite::{Connection, OpenFlags};

use crate::fsck::Progress;
use crate::{Result, Store, StoreError};

/// What a backup or a restore copied.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CopyReport {
    /// Content files copied.
    pub blob_files: u64,
    /// Bytes of content files copied.
    pub blob_bytes: u64,
}

impl Store {
    /// Writes a consistent copy of the store into the empty or new folder `dest`.
    pub fn backup(&self, dest: &Path, progress: Progress<'_>) -> Result<CopyReport> {
        refuse_existing(dest)?;
        fs::create_dir_all(dest).map_err(|e| StoreError::io(dest, e))?;
        let copy_path = dest.join("ruche.db");
        {
            let source = self.db.reader();
            let mut copy = Connection::open(&copy_path)?;
            let backup = rusqlite::backup::Backup::new(&source, &mut copy)?;
            // One step of every page (-1): the copy is a single snapshot. A step that finds
            // the database busy is retried a few times.
            let mut attempts = 0;
            loop {
                match backup.step(-1)? {
                    StepResult::Done => break,
                    _ if attempts < 50 => {
                        attempts += 1;
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    _ => return Err(StoreError::Busy { what: "backup" }),
                }
            }
        }
        copy_blobs(&copy_path, &self.data_dir, dest, progress)
    }
}

/// Brings a backup made by [`Store::backup`] back into the new or empty folder `dest`.
pub fn restore(backup: &Path, dest: &Path, progress: Progress<'_>) -> Result<CopyReport> {
    let source_db = backup.join("ruche.db");
    if !source_db.is_file() {
        return Err(StoreError::NotFound {
            path: source_db.display().to_string(),
        });
    }
    refuse_existing(dest)?;
    fs::create_dir_all(dest).map_err(|e| StoreError::io(dest, e))?;
    let dest_db = dest.join("ruche.db");
    fs::copy(&source_db, &dest_db).map_err(|e| StoreError::io(&dest_db, e))?;
    sync(&dest_db)?;
    copy_blobs(&dest_db, backup, dest, progress)
}

fn refuse_existing(dest: &Path) -> Result<()> {
    if dest.join("ruche.db").exists() {
        return Err(StoreError::AlreadyExists {
            path: dest.display().to_string(),
        });
    }
    Ok(())
}

/// Copies from `from` to `to` every blob file that the database at `db` refers to.
fn copy_blobs(db: &Path, from: &Path, to: &Path, progress: Progress<'_>) -> Result<CopyReport> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare("SELECT hash FROM blobs WHERE data IS NULL")?;
    let hashes = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let total = hashes.len() as u64;
    let mut report = CopyReport::default();
    for (done, hash) in hashes.iter().enumerate() {
        progress(done as u64, total);
        let relative = blob_relative(hash);
        let (source, target) = (from.join(&relative), to.join(&relative));
        if let Some(folder) = target.parent() {
            fs::create_dir_all(folder).map_err(|e| StoreError::io(folder, e))?;
        }
        report.blob_bytes += fs::copy(&source, &target).map_err(|e| StoreError::io(&source, e))?;
        sync(&target)?;
        report.blob_files += 1;
    }
    progress(total, total);
    Ok(report)
}

fn blob_relative(hash: &str) -> std::path::PathBuf {
    let part = |range: std::ops::Range<usize>| hash.get(range).unwrap_or("00").to_owned();
    Path::new("blobs")
        .join(part(0..2))
        .join(part(2..4))
        .join(hash)
}

fn sync(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommitOptions, StoreConfig};

    #[test]
    fn a_backup_restores_into_a_store_that_passes_fsck() {
        let live = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            data_dir: live.path().to_owned(),
            default_quota: None,
        })
        .unwrap();
        let user = store.create_user("alice", "hash", false).unwrap();
        for (name, len) in [("small", 10), ("large", crate::INLINE_MAX * 3)] {
            let mut upload = store.begin_upload(user.space).unwrap();
            upload.write(&vec![7u8; len]).unwrap();
            store
                .commit_upload(user.space, &[name], upload, CommitOptions::default())
                .unwrap();
        }

        let copies = tempfile::tempdir().unwrap();
        let backup_dir = copies.path().join("backup");
        let taken = store.backup(&backup_dir, &mut |_, _| {}).unwrap();
        assert_eq!(taken.blob_files, 1);
        let restored_dir = copies.path().join("restored");
        restore(&backup_dir, &restored_dir, &mut |_, _| {}).unwrap();
        assert!(
            restore(&backup_dir, &restored_dir, &mut |_, _| {}).is_err(),
            "no overwrite"
        );

        let report = crate::fsck(&restored_dir, false, &mut |_, _| {}).unwrap();
        assert!(report.is_clean(), "{:?}", report.findings);
        let restored = Store::open(StoreConfig {
            data_dir: restored_dir,
            default_quota: None,
        })
        .unwrap();
        let user = restored.user_by_name("alice").unwrap().unwrap();
        let large = restored.lookup(user.space, &["large"]).unwrap();
        assert_eq!(large.size, (crate::INLINE_MAX * 3) as u64);
    }
}
