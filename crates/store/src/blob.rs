//! Content-addressed blobs: every content is stored once, under its SHA-256.
//!
//! An upload is first staged: small contents stay in memory and are committed inside the
//! database transaction that points to them; larger ones stream into a temporary file that
//! is fsynced and renamed under its hash before the metadata commit.

use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// Contents up to this size live inside the database.
pub const INLINE_MAX: usize = 64 * 1024;

/// The SHA-256 of a content, in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentHash(String);

impl ContentHash {
    /// Wraps a hex digest read from the database, checking its shape.
    pub fn from_hex(hex: String) -> Result<ContentHash> {
        let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(StoreError::Corrupt(format!(
                "malformed content hash {hex:?}"
            )));
        }
        Ok(ContentHash(hex))
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A readable, seekable blob.
pub trait BlobRead: Read + Seek + Send + Sync {}
impl<T: Read + Seek + Send + Sync> BlobRead for T {}

/// Where large contents are kept. The local folder is the default; an object store can
/// take its place for deployments that outgrow one machine.
pub trait BlobStore: Send + Sync {
    /// Makes a staged, already fsynced file durable under `hash`. When this returns, the
    /// content survives a crash. Content already present is not written again.
    fn persist(&self, staged: &Path, hash: &ContentHash) -> Result<()>;
    /// Opens a stored content for reading.
    fn open(&self, hash: &ContentHash) -> Result<Box<dyn BlobRead>>;
    /// Whether a content is present.
    fn contains(&self, hash: &ContentHash) -> bool;
    /// The folder where uploads are staged before they are persisted.
    fn staging_dir(&self) -> &Path;
}

/// Blobs in a local folder: `blobs/ab/cd/abcd…`, staged under `tmp/`.
#[derive(Debug)]
pub struct LocalBlobs {
    root: PathBuf,
    staging: PathBuf,
}

impl LocalBlobs {
    /// Opens (creating) the blob folder under `data_dir`, and removes uploads staged by a
    /// process that died before committing them.
    pub fn open(data_dir: &Path) -> Result<LocalBlobs> {
        let root = data_dir.join("blobs");
        let staging = data_dir.join("tmp");
        for dir in [&root, &staging] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let stale = fs::read_dir(&staging).map_err(|e| StoreError::io(&staging, e))?;
        for entry in stale.flatten() {
            let path = entry.path();
            if let Err(error) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot remove stale upload");
            }
        }
        Ok(LocalBlobs { root, staging })
    }

    fn path_of(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.as_str();
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }
}

impl BlobStore for LocalBlobs {
    fn persist(&self, staged: &Path, hash: &ContentHash) -> Result<()> {
        let target = self.path_of(hash);
        if target.exists() {
            fs::remove_file(staged).map_err(|e| StoreError::io(staged, e))?;
            return Ok(());
        }
        let dir = target.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        fs::rename(staged, &target).map_err(|e| StoreError::io(&target, e))?;
        // The rename is durable only once the folder holding the new entry is synced.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(dir, e))
    }

    fn open(&self, hash: &ContentHash) -> Result<Box<dyn BlobRead>> {
        let path = self.path_of(hash);
        let file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
        Ok(Box::new(file))
    }

    fn contains(&self, hash: &ContentHash) -> bool {
        self.path_of(hash).is_file()
    }

    fn staging_dir(&self) -> &Path {
        &self.staging
    }
}

/// An upload in progress: content is hashed as it arrives. Dropping it before commit
/// discards it and leaves no file behind.
pub struct Upload {
    hasher: Sha256,
    len: u64,
    buffer: Vec<u8>,
    spill: Option<TempFile>,
    staging: PathBuf,
    limit: Option<u64>,
    space: i64,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Upload {
    pub(crate) fn new(staging: PathBuf, space: i64, limit: Option<u64>) -> Upload {
        Upload {
            hasher: Sha256::new(),
            len: 0,
            buffer: Vec::new(),
            spill: None,
            staging,
            limit,
            space,
        }
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends bytes. Fails early once the upload alone would exceed the space's quota.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let len = self.len + data.len() as u64;
        if let Some(limit) = self.limit.filter(|limit| len > *limit) {
            return Err(StoreError::QuotaExceeded {
                space: self.space,
                needed: len,
                available: limit,
            });
        }
        self.hasher.update(data);
        self.len = len;
        if let Some(spill) = &mut self.spill {
            return spill.write(data);
        }
        if self.buffer.len() + data.len() <= INLINE_MAX {
            self.buffer.extend_from_slice(data);
            return Ok(());
        }
        let mut spill = TempFile::create(&self.staging)?;
        spill.write(&std::mem::take(&mut self.buffer))?;
        spill.write(data)?;
        self.spill = Some(spill);
        Ok(())
    }

    /// Ends the upload: the content is hashed and, when large, fsynced in its temporary file.
    pub(crate) fn finish(self) -> Result<Staged> {
        let hash = ContentHash(hex::encode(self.hasher.finalize()));
        let content = match self.spill {
            Some(spill) => StagedContent::File(spill.sync()?),
            None => StagedContent::Inline(self.buffer),
        };
        Ok(Staged {
            hash,
            len: self.len,
            content,
        })
    }
}

/// A finished upload, ready to be committed.
pub(crate) struct Staged {
    pub(crate) hash: ContentHash,
    pub(crate) len: u64,
    pub(crate) content: StagedContent,
}

pub(crate) enum StagedContent {
    Inline(Vec<u8>),
    File(TempFile),
}

/// A temporary file removed on drop unless it was persisted.
pub(crate) struct TempFile {
    file: Option<File>,
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    fn create(dir: &Path) -> Result<TempFile> {
        let name = format!("upload-{:016x}", rand::random::<u64>());
        let path = dir.join(name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(TempFile {
            file: Some(file),
            path,
            keep: false,
        })
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        let Some(file) = &mut self.file else {
            return Err(StoreError::Corrupt("write after sync".into()));
        };
        file.write_all(data)
            .map_err(|e| StoreError::io(&self.path, e))
    }

    fn sync(mut self) -> Result<TempFile> {
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(|e| StoreError::io(&self.path, e))?;
        }
        Ok(self)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file now belongs to the blob store: do not remove it on drop.
    pub(crate) fn persisted(mut self) {
        self.keep = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}
