//! Staging of large uploads: a thread per upload hashes the bytes and writes them to a
//! temporary file while the request keeps receiving, and the written part is flushed to
//! disk in the background so that the final fsync has little left to do.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use sha1::Sha1;
use sha2::digest::Output;
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// Chunks waiting for the staging thread; a full queue makes the request wait.
const QUEUE: usize = 4;

/// The staging thread of one large upload. Chunk buffers go back and forth between the
/// request and the thread, so a long upload allocates nothing after its first chunks.
pub(crate) struct Spill {
    chunks: Option<SyncSender<Vec<u8>>>,
    // Behind a mutex only because an upload must be `Sync`; one thread uses it.
    spent: Mutex<Receiver<Vec<u8>>>,
    worker: Option<JoinHandle<Result<(Hashers, TempFile)>>>,
}

impl Spill {
    pub(crate) fn start(staging: &Path) -> Result<Spill> {
        let mut file = TempFile::create(staging)?;
        let (chunks, queue) = sync_channel::<Vec<u8>>(QUEUE);
        let (give_back, spent) = sync_channel::<Vec<u8>>(QUEUE + 2);
        let worker = std::thread::Builder::new()
            .name("ruche-upload".into())
            .spawn(move || {
                let mut hasher = Hashers::default();
                for mut chunk in queue {
                    hasher.update(&chunk);
                    file.write(&chunk)?;
                    chunk.clear();
                    let _ = give_back.try_send(chunk);
                }
                Ok((hasher, file))
            })
            .map_err(|e| StoreError::io(staging, e))?;
        Ok(Spill {
            chunks: Some(chunks),
            spent: Mutex::new(spent),
            worker: Some(worker),
        })
    }

    /// Queues a copy of `data`. When the thread has stopped on an error, that error is
    /// returned.
    pub(crate) fn send(&mut self, data: &[u8]) -> Result<()> {
        let mut chunk = self.spent.get_mut().try_recv().unwrap_or_default();
        chunk.extend_from_slice(data);
        let delivered = self.chunks.as_ref().is_some_and(|c| c.send(chunk).is_ok());
        if delivered {
            return Ok(());
        }
        self.finish_worker().map(|_| ())
    }

    /// Waits for every queued byte to be hashed and written.
    pub(crate) fn finish(mut self) -> Result<(Digests, TempFile)> {
        let (hasher, file) = self.finish_worker()?;
        Ok((hasher.finalize(), file))
    }

    fn finish_worker(&mut self) -> Result<(Hashers, TempFile)> {
        self.chunks = None;
        let worker = self
            .worker
            .take()
            .ok_or_else(|| StoreError::Corrupt("upload already finished".into()))?;
        worker
            .join()
            .unwrap_or_else(|_| Err(StoreError::Corrupt("upload thread panicked".into())))
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        // Closing the queue ends the thread; its temporary file is removed as it drops.
        self.chunks = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The digests computed over every content: SHA-256 names it in the blob store, SHA-1 is
/// what the Nextcloud clients and rclone compare.
#[derive(Default)]
pub(crate) struct Hashers {
    sha256: Sha256,
    sha1: Sha1,
}

/// The finished digests of a content.
pub(crate) struct Digests {
    pub(crate) sha256: Output<Sha256>,
    pub(crate) sha1: Output<Sha1>,
}

impl Hashers {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.sha1.update(data);
    }

    pub(crate) fn finalize(self) -> Digests {
        Digests {
            sha256: self.sha256.finalize(),
            sha1: self.sha1.finalize(),
        }
    }
}

/// Bytes written to a temporary file between two background flushes.
const FLUSH_EVERY: u64 = 32 * 1024 * 1024;
/// Writes reach the file in blocks of this size.
const WRITE_BUFFER: usize = 512 * 1024;

/// A temporary file removed on drop unless it was persisted.
///
/// While a large upload streams in, a background thread flushes what was written so far to
/// the disk, so that the final fsync (which the client waits for) has little left to do.
pub(crate) struct TempFile {
    file: Option<BufWriter<File>>,
    path: PathBuf,
    keep: bool,
    written: u64,
    flushed_at: u64,
    flusher: Option<JoinHandle<std::io::Result<()>>>,
}

impl TempFile {
    pub(crate) fn create(dir: &Path) -> Result<TempFile> {
        let name = format!("upload-{:016x}", rand::random::<u64>());
        let path = dir.join(name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(TempFile {
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            path,
            keep: false,
            written: 0,
            flushed_at: 0,
            flusher: None,
        })
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        let Some(file) = &mut self.file else {
            return Err(StoreError::Corrupt("write after sync".into()));
        };
        file.write_all(data)
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.written += data.len() as u64;
        if self.written - self.flushed_at >= FLUSH_EVERY {
            self.flush_in_background()?;
        }
        Ok(())
    }

    /// Starts writing back what is in the page cache, unless a flush is still running.
    fn flush_in_background(&mut self) -> Result<()> {
        if self.flusher.as_ref().is_some_and(|f| !f.is_finished()) {
            return Ok(());
        }
        self.join_flusher()?;
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        file.flush().map_err(|e| StoreError::io(&self.path, e))?;
        let handle = file
            .get_ref()
            .try_clone()
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.flushed_at = self.written;
        self.flusher = Some(std::thread::spawn(move || handle.sync_data()));
        Ok(())
    }

    fn join_flusher(&mut self) -> Result<()> {
        let Some(flusher) = self.flusher.take() else {
            return Ok(());
        };
        let outcome = flusher
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("flusher thread panicked")));
        outcome.map_err(|e| StoreError::io(&self.path, e))
    }

    pub(crate) fn sync(mut self) -> Result<TempFile> {
        self.join_flusher()?;
        if let Some(file) = self.file.take() {
            let file = file
                .into_inner()
                .map_err(|e| StoreError::io(&self.path, e.into_error()))?;
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
        let _ = self.join_flusher();
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}
