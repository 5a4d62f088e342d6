//! Uploads in chunks, as the Nextcloud clients send large files: a folder per upload under
//! `uploads/<space>/<id>/`, one file per chunk, and an assembly that streams the chunks in
//! order into an ordinary upload, committed like any other.
//!
//! Each chunk is fsynced before it is acknowledged. Nothing of an upload is visible in the
//! tree until its assembly commits; an upload left alone long enough is expired and its
//! chunks removed.

use std::fs::{self, File};
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::model::{Node, SpaceId};
use crate::staging::TempFile;
use crate::{Checksum, CommitOptions, Result, Store, StoreError};

/// Longest accepted upload id, in bytes.
const MAX_ID: usize = 128;

/// A chunk being received; nothing is kept unless [`ChunkWriter::finish`] is reached.
pub struct ChunkWriter {
    file: TempFile,
    target: PathBuf,
    limit: Option<u64>,
    written: u64,
    space: SpaceId,
}

impl std::fmt::Debug for ChunkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkWriter")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl ChunkWriter {
    /// Appends bytes to the chunk.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.written += data.len() as u64;
        if let Some(limit) = self.limit.filter(|l| self.written > *l) {
            return Err(StoreError::QuotaExceeded {
                space: self.space.0,
                needed: self.written,
                available: limit,
            });
        }
        self.file.write(data)
    }

    /// Makes the chunk durable under its number, replacing an earlier try of it.
    pub fn finish(self) -> Result<u64> {
        let file = self.file.sync()?;
        fs::rename(file.path(), &self.target).map_err(|e| StoreError::io(&self.target, e))?;
        file.persisted();
        if let Some(dir) = self.target.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| StoreError::io(dir, e))?;
        }
        Ok(self.written)
    }
}

fn check_id(id: &str) -> Result<()> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            name: id.to_owned(),
            reason: "an upload id is made of letters, digits, '-', '_' and '.'",
        })
    }
}

/// A chunk's number: its position in v2 uploads, its byte offset in older ones; either
/// way the chunks assemble in numeric order.
fn chunk_number(name: &str) -> Result<u64> {
    let number = (!name.is_empty() && name.len() <= 20 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse::<u64>().ok())
        .flatten();
    number.ok_or_else(|| StoreError::InvalidName {
        name: name.to_owned(),
        reason: "a chunk is named by its number",
    })
}

impl Store {
    fn upload_dir(&self, space: SpaceId, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        Ok(self
            .data_dir
            .join("uploads")
            .join(space.0.to_string())
            .join(id))
    }

    /// Starts a chunked upload named `id` by the client; starting it again is harmless.
    pub fn begin_chunked(&self, space: SpaceId, id: &str) -> Result<()> {
        let dir = self.upload_dir(space, id)?;
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))
    }

    /// The chunks received so far, by name, with their sizes, in assembly order.
    pub fn chunks(&self, space: SpaceId, id: &str) -> Result<Vec<(String, u64)>> {
        let dir = self.upload_dir(space, id)?;
        let entries = fs::read_dir(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound {
                path: format!("upload {id}"),
            },
            _ => StoreError::io(&dir, e),
        })?;
        let mut chunks = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(number) = chunk_number(&name) else {
                continue; // a chunk still being received
            };
            let size = entry
                .metadata()
                .map_err(|e| StoreError::io(entry.path(), e))?;
            chunks.push((number, name, size.len()));
        }
        chunks.sort();
        Ok(chunks
            .into_iter()
            .map(|(_, name, size)| (name, size))
            .collect())
    }

    /// Starts receiving chunk `name` of upload `id`. The chunks of an upload together may
    /// not pass what the space has left.
    pub fn write_chunk(&self, space: SpaceId, id: &str, name: &str) -> Result<ChunkWriter> {
        chunk_number(name)?;
        let dir = self.upload_dir(space, id)?;
        if !dir.is_dir() {
            return Err(StoreError::NotFound {
                path: format!("upload {id}"),
            });
        }
        let others: u64 = self
            .chunks(space, id)?
            .iter()
            .filter(|(n, _)| n != name)
            .map(|(_, size)| size)
            .sum();
        let limit = self
            .space(space)?
            .available()
            .map(|left| left.saturating_sub(others));
        Ok(ChunkWriter {
            file: TempFile::create(&dir)?,
            target: dir.join(name),
            limit,
            written: 0,
            space,
        })
    }

    /// Assembles upload `id` into the file at `path`, then removes its chunks. With
    /// `total`, the chunks must add up to exactly that many bytes; with `checksum`, the
    /// content must match it. Either the whole file is committed or nothing changes.
    pub fn finish_chunked<S: AsRef<str>>(
        &self,
        space: SpaceId,
        id: &str,
        path: &[S],
        total: Option<u64>,
        checksum: Option<Checksum>,
        options: CommitOptions,
    ) -> Result<Node> {
        let dir = self.upload_dir(space, id)?;
        let chunks = self.chunks(space, id)?;
        let size: u64 = chunks.iter().map(|(_, size)| size).sum();
        if let Some(total) = total.filter(|t| *t != size) {
            return Err(StoreError::IncompleteUpload {
                expected: total,
                received: size,
            });
        }
        let mut upload = self.begin_upload(space)?;
        if let Some(checksum) = checksum {
            upload.expect(checksum);
        }
        let mut buffer = vec![0u8; 1024 * 1024];
        for (name, _) in &chunks {
            let chunk_path = dir.join(name);
            let mut file = File::open(&chunk_path).map_err(|e| StoreError::io(&chunk_path, e))?;
            loop {
                let n = match file.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(StoreError::io(&chunk_path, e)),
                };
                upload.write(&buffer[..n])?;
            }
        }
        let node = self.commit_upload(space, path, upload, options)?;
        if let Err(error) = fs::remove_dir_all(&dir) {
            tracing::warn!(upload = id, %error, "assembled upload's chunks not removed");
        }
        Ok(node)
    }

    /// Abandons upload `id` and removes its chunks.
    pub fn abort_chunked(&self, space: SpaceId, id: &str) -> Result<()> {
        let dir = self.upload_dir(space, id)?;
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound {
                path: format!("upload {id}"),
            }),
            Err(e) => Err(StoreError::io(&dir, e)),
        }
    }

    /// Removes the chunked uploads that received nothing for `idle`; returns how many.
    pub fn expire_chunked(&self, idle: Duration) -> Result<usize> {
        let root = self.data_dir.join("uploads");
        let Ok(spaces) = fs::read_dir(&root) else {
            return Ok(0);
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for space in spaces.flatten() {
            let Ok(uploads) = fs::read_dir(space.path()) else {
                continue;
            };
            for upload in uploads.flatten() {
                let path = upload.path();
                let last = last_activity(&path);
                let stale = now.duration_since(last).is_ok_and(|age| age > idle);
                if stale && fs::remove_dir_all(&path).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// When an upload last received something: its folder or its newest chunk.
fn last_activity(dir: &std::path::Path) -> SystemTime {
    let own = fs::metadata(dir)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
        .fold(own, SystemTime::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    fn store() -> (tempfile::TempDir, Store, SpaceId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            data_dir: dir.path().to_owned(),
            default_quota: Some(1_000_000),
        })
        .unwrap();
        let user = store.create_user("marie", "hash", false).unwrap();
        (dir, store, user.space)
    }

    fn send(store: &Store, space: SpaceId, id: &str, name: &str, data: &[u8]) -> Result<u64> {
        let mut chunk = store.write_chunk(space, id, name)?;
        chunk.write(data)?;
        chunk.finish()
    }

    #[test]
    fn chunks_assemble_in_numeric_order() {
        let (_dir, store, space) = store();
        store.begin_chunked(space, "web-123").unwrap();
        send(&store, space, "web-123", "10", b"!").unwrap();
        send(&store, space, "web-123", "2", b"world").unwrap();
        send(&store, space, "web-123", "1", b"hello ").unwrap();
        send(&store, space, "web-123", "2", b"there").unwrap(); // a retried chunk
        let short = store.finish_chunked(
            space,
            "web-123",
            &["a.txt"],
            Some(99),
            None,
            CommitOptions::default(),
        );
        assert!(matches!(short, Err(StoreError::IncompleteUpload { .. })));
        let node = store
            .finish_chunked(
                space,
                "web-123",
                &["a.txt"],
                Some(12),
                None,
                CommitOptions::default(),
            )
            .unwrap();
        assert_eq!(node.size, 12);
        let mut text = String::new();
        store
            .open_content(&node)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello there!");
        assert!(
            store.chunks(space, "web-123").is_err(),
            "chunks left behind"
        );
    }

    #[test]
    fn bad_names_quota_and_expiry() {
        let (_dir, store, space) = store();
        assert!(store.begin_chunked(space, "../x").is_err());
        store.begin_chunked(space, "u").unwrap();
        assert!(send(&store, space, "u", "abc", b"x").is_err());
        let too_much = send(&store, space, "u", "1", &vec![0u8; 1_000_001]);
        assert!(matches!(too_much, Err(StoreError::QuotaExceeded { .. })));
        assert!(store.chunks(space, "u").unwrap().is_empty());
        send(&store, space, "u", "1", b"kept").unwrap();
        assert_eq!(store.expire_chunked(Duration::from_secs(3600)).unwrap(), 0);
        assert_eq!(store.expire_chunked(Duration::ZERO).unwrap(), 1);
        assert!(
            store.chunks(space, "u").is_err(),
            "the upload was not expired"
        );
    }
}
