//! Content-addressed blobs: every content is stored once, under its SHA-256.
//!
//! An upload is first staged: small contents stay in memory and are committed inside the
//! database transaction that points to them; larger ones stream into a temporary file that
//! is fsynced and renamed under its hash before the metadata commit.

use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use crate::staging::{Hashers, Spill, TempFile};

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
    /// Deletes a content nothing refers to any more; a missing one is no error.
    fn remove(&self, hash: &ContentHash) -> Result<()>;
}

/// Blobs in a local folder: `blobs/ab/cd/abcd…`, staged under `tmp/`.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
    staging: PathBuf,
}

impl LocalBlobs {
    /// Opens (creating) the blob folder under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<LocalBlobs> {
        let root = data_dir.join("blobs");
        let staging = data_dir.join("tmp");
        for dir in [&root, &staging] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        Ok(LocalBlobs { root, staging })
    }

    /// Removes uploads staged by a process that died before committing them. Only the
    /// server does this, as it starts: a command run beside a running server (a backup, a
    /// new user) must not take the files of uploads in flight.
    pub(crate) fn remove_stale_uploads(&self) -> Result<usize> {
        let stale = fs::read_dir(&self.staging).map_err(|e| StoreError::io(&self.staging, e))?;
        let mut removed = 0;
        for entry in stale.flatten() {
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot remove stale upload");
                }
            }
        }
        Ok(removed)
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

    fn remove(&self, hash: &ContentHash) -> Result<()> {
        let path = self.path_of(hash);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }
}

/// An upload in progress. Small contents are kept in memory; past [`INLINE_MAX`], bytes
/// go to a staging thread that hashes and writes them while more arrive. Dropping an
/// upload before commit discards it and leaves no file behind.
pub struct Upload {
    len: u64,
    buffer: Vec<u8>,
    spill: Option<Spill>,
    staging: PathBuf,
    limit: Option<u64>,
    space: i64,
    expected: Option<Checksum>,
}

/// A checksum a client announced for the content it sends (`OC-Checksum: SHA1:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// A SHA-1 digest, lowercase hex.
    Sha1(String),
    /// A SHA-256 digest, lowercase hex.
    Sha256(String),
}

impl Checksum {
    /// Reads a `TYPE:hex` checksum. Types the store does not compute (MD5, Adler-32, ...)
    /// give `None`: they cannot be verified, and are not refused.
    pub fn parse(text: &str) -> Option<Checksum> {
        let (kind, hex) = text.trim().split_once(':')?;
        let hex = hex.trim().to_ascii_lowercase();
        let valid = |len: usize| hex.len() == len && hex.bytes().all(|b| b.is_ascii_hexdigit());
        match kind.trim().to_ascii_uppercase().as_str() {
            "SHA1" if valid(40) => Some(Checksum::Sha1(hex)),
            "SHA256" if valid(64) => Some(Checksum::Sha256(hex)),
            _ => None,
        }
    }

    fn verify(&self, sha256: &str, sha1: &str) -> Result<()> {
        let (kind, expected, actual) = match self {
            Checksum::Sha1(hex) => ("SHA1", hex, sha1),
            Checksum::Sha256(hex) => ("SHA256", hex, sha256),
        };
        if expected == actual {
            return Ok(());
        }
        Err(StoreError::ChecksumMismatch {
            expected: format!("{kind}:{expected}"),
            actual: format!("{kind}:{actual}"),
        })
    }
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
            len: 0,
            buffer: Vec::new(),
            spill: None,
            staging,
            limit,
            space,
            expected: None,
        }
    }

    /// Makes the commit fail, changing nothing, unless the content matches `checksum`.
    pub fn expect(&mut self, checksum: Checksum) {
        self.expected = Some(checksum);
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
        self.len = len;
        if let Some(spill) = &mut self.spill {
            return spill.send(data);
        }
        if self.buffer.len() + data.len() <= INLINE_MAX {
            self.buffer.extend_from_slice(data);
            return Ok(());
        }
        let mut spill = Spill::start(&self.staging)?;
        spill.send(&std::mem::take(&mut self.buffer))?;
        spill.send(data)?;
        self.spill = Some(spill);
        Ok(())
    }

    /// Ends the upload: the content is hashed and, when large, fsynced in its temporary file.
    pub(crate) fn finish(self) -> Result<Staged> {
        let (digests, content) = match self.spill {
            Some(spill) => {
                let (digests, file) = spill.finish()?;
                (digests, StagedContent::File(file))
            }
            None => {
                let mut hashers = Hashers::default();
                hashers.update(&self.buffer);
                (hashers.finalize(), StagedContent::Inline(self.buffer))
            }
        };
        let hash = ContentHash(hex::encode(digests.sha256));
        let sha1 = hex::encode(digests.sha1);
        if let Some(expected) = &self.expected {
            expected.verify(hash.as_str(), &sha1)?;
        }
        let content = match content {
            StagedContent::File(file) => StagedContent::File(file.sync()?),
            inline => inline,
        };
        Ok(Staged {
            hash,
            sha1,
            len: self.len,
            content,
        })
    }
}

/// A finished upload, ready to be committed.
pub(crate) struct Staged {
    pub(crate) hash: ContentHash,
    pub(crate) sha1: String,
    pub(crate) len: u64,
    pub(crate) content: StagedContent,
}

pub(crate) enum StagedContent {
    Inline(Vec<u8>),
    File(TempFile),
}
