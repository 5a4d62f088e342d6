//! The SQLite connections: one writer, a few readers, all in WAL mode.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use rusqlite::{Connection, OpenFlags};

use crate::Result;

/// Versioned migrations, applied in order at open. A migration is never edited once released:
/// a change to the schema is a new file.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/0001_init.sql")),
    (
        2,
        include_str!("../../../migrations/0002_checksums_and_sync.sql"),
    ),
    (3, include_str!("../../../migrations/0003_documents.sql")),
    (4, include_str!("../../../migrations/0004_trash.sql")),
    (
        5,
        include_str!("../../../migrations/0005_garbage_collection.sql"),
    ),
    (6, include_str!("../../../migrations/0006_search.sql")),
    (7, include_str!("../../../migrations/0007_activity.sql")),
    (8, include_str!("../../../migrations/0008_sessions.sql")),
];

const READERS: usize = 4;

/// One connection that writes, and a small pool that reads concurrently with it.
pub(crate) struct Db {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl Db {
    pub(crate) fn open(path: &Path) -> Result<Db> {
        let mut writer = open_connection(path)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open_connection(path).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Db {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The writing connection. Hold it only for the length of one transaction.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock()
    }

    /// A reading connection, preferring one that is free.
    pub(crate) fn reader(&self) -> MutexGuard<'_, Connection> {
        for reader in &self.readers {
            if let Some(guard) = reader.try_lock() {
                return guard;
            }
        }
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[index].lock()
    }
}

fn open_connection(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL lets readers run beside the writer. Commits do not fsync by themselves
    // (synchronous=NORMAL): the store waits for the log to be fsynced before it reports a
    // write as done, which lets one fsync cover many concurrent commits (see durability.rs).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)",
    )?;
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |row| row.get(0),
        )?;
        if !applied {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES (?1)",
                [version],
            )?;
            tracing::info!(version, "applied schema migration");
        }
        tx.commit()?;
    }
    Ok(())
}
