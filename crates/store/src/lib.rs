//! The ruche store: the tree of files and folders, their contents, and the accounts that
//! own them.
//!
//! Metadata lives in SQLite (WAL mode, every commit durable); contents live in a
//! content-addressed blob store. A content is durable before the transaction that points to
//! it commits, so a crash leaves either the old file or the new one, never a mix.
//!
//! This is the only crate that touches SQLite or blob files. It knows nothing of HTTP,
//! WebDAV or tokens, and it never sees a password or a secret, only their hashes.

#![warn(missing_docs)]

mod accounts;
mod activity;
mod backup;
mod blob;
mod chunks;
mod db;
mod documents;
mod durability;
mod error;
mod events;
mod fsck;
mod gc;
mod locks;
mod model;
mod name;
mod props;
mod search;
mod staging;
mod sync;
#[cfg(test)]
mod testing;
mod trash;
mod tree;
mod versions;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior};

pub use accounts::RefreshOutcome;
pub use activity::{Action, ActivityEntry};
pub use backup::{restore, CopyReport};
pub use blob::{BlobRead, BlobStore, Checksum, ContentHash, LocalBlobs, Upload, INLINE_MAX};
pub use chunks::ChunkWriter;
pub use documents::StoredDocument;
pub use error::{Result, StoreError};
pub use events::{Event, Origin};
pub use fsck::{fsck, Finding, FsckReport, Progress};
pub use gc::Collected;
pub use model::{
    AppPassword, DeadProp, LockRecord, Node, NodeId, Space, SpaceId, Timestamp, User, UserId,
};
pub use name::{normalize as normalize_name, normalize_path, MAX_NAME_BYTES};
pub use props::PropChange;
pub use search::{Found, Match};
pub use sync::Changes;
pub use trash::TrashItem;
pub use tree::CommitOptions;
pub use versions::{Retention, Version};

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The data folder: `ruche.db`, `blobs/`, `tmp/`.
    pub data_dir: PathBuf,
    /// Quota given to new personal spaces; `None` for no limit.
    pub default_quota: Option<u64>,
}

/// The drive's storage. Cheap to share behind an `Arc`; every method is blocking and
/// belongs on a blocking thread in async code.
pub struct Store {
    db: db::Db,
    blobs: Box<dyn BlobStore>,
    /// The local blob folder, when blobs are kept in one.
    local_blobs: Option<LocalBlobs>,
    default_quota: Option<u64>,
    data_dir: PathBuf,
    durability: durability::Durability,
    writes: AtomicU64,
    write_nanos: AtomicU64,
    listeners: events::Listeners,
    /// Held shared by commits of new content, exclusively by the garbage collector.
    collector: parking_lot::RwLock<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `config.data_dir`, creating it and applying migrations as needed.
    pub fn open(config: StoreConfig) -> Result<Store> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let db_path = dir.join("ruche.db");
        let db = db::Db::open(&db_path)?;
        let blobs = LocalBlobs::open(dir)?;
        let store = Store {
            db,
            local_blobs: Some(blobs.clone()),
            blobs: Box::new(blobs),
            default_quota: config.default_quota,
            data_dir: config.data_dir,
            durability: durability::Durability::new(&db_path),
            writes: AtomicU64::new(0),
            write_nanos: AtomicU64::new(0),
            listeners: events::Listeners::default(),
            collector: parking_lot::RwLock::new(()),
        };
        // Nodes made before names were indexed get their entries once.
        store.write(search::fill_missing_names)?;
        Ok(store)
    }

    /// Removes the staged contents of uploads that a process which died never committed.
    /// For the server to call as it starts, never while another process serves the same
    /// data folder.
    pub fn remove_stale_uploads(&self) -> Result<usize> {
        match &self.local_blobs {
            Some(blobs) => blobs.remove_stale_uploads(),
            None => Ok(0),
        }
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Opens a file's content for reading.
    pub fn open_content(&self, node: &Node) -> Result<Box<dyn BlobRead>> {
        let Some(hash) = &node.content else {
            return Err(StoreError::WrongKind {
                path: node.name.clone(),
            });
        };
        self.open_stored(&self.db.reader(), hash)
    }

    /// Opens a stored content, inline or in the blob store, as `conn` sees the database
    /// (a transaction sees the content it has just recorded).
    pub(crate) fn open_stored(
        &self,
        conn: &rusqlite::Connection,
        hash: &ContentHash,
    ) -> Result<Box<dyn BlobRead>> {
        let inline: Option<Option<Vec<u8>>> = {
            let mut stmt = conn.prepare_cached("SELECT data FROM blobs WHERE hash = ?1")?;
            stmt.query_row([hash.as_str()], |r| r.get(0)).optional()?
        };
        match inline {
            Some(Some(bytes)) => Ok(Box::new(Cursor::new(bytes))),
            Some(None) => self.blobs.open(hash),
            None => Err(StoreError::Corrupt(format!("content {hash} missing"))),
        }
    }

    /// The current value of the global change counter.
    pub fn change_counter(&self) -> Result<i64> {
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached("SELECT value FROM counters WHERE name = 'change'")?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    /// Runs `f` in one immediate write transaction, committed if it returns `Ok`, and
    /// returns once the commit is durable.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let (value, seq) = {
            let mut conn = self.db.writer();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            (value, self.durability.committed())
        };
        self.durability.wait(seq)?;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.write_nanos.fetch_add(nanos, Ordering::Relaxed);
        Ok(value)
    }

    /// How many write transactions committed, and the time they took in all (waiting for
    /// the writer included).
    pub fn write_latency(&self) -> (u64, Duration) {
        let count = self.writes.load(Ordering::Relaxed);
        (
            count,
            Duration::from_nanos(self.write_nanos.load(Ordering::Relaxed)),
        )
    }
}
