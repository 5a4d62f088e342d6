//! Persisted WebDAV locks. The store keeps the records and drops expired ones; deciding
//! whether two locks conflict is the WebDAV layer's business.

use rusqlite::{params, Row, Transaction};

use crate::model::{LockRecord, SpaceId, Timestamp};
use crate::{Result, Store};

const LOCK_COLUMNS: &str =
    "token, space_id, path, principal, owner_xml, timeout_secs, expires_ns, shared, deep";

fn lock_from_row(row: &Row<'_>) -> rusqlite::Result<LockRecord> {
    Ok(LockRecord {
        token: row.get(0)?,
        space: SpaceId(row.get(1)?),
        path: row.get(2)?,
        principal: row.get(3)?,
        owner_xml: row.get(4)?,
        timeout_secs: row.get::<_, Option<i64>>(5)?.map(|s| s.unsigned_abs()),
        expires: row.get::<_, Option<i64>>(6)?.map(Timestamp),
        shared: row.get(7)?,
        deep: row.get(8)?,
    })
}

fn live_locks(tx: &Transaction<'_>, space: SpaceId) -> Result<Vec<LockRecord>> {
    tx.prepare_cached("DELETE FROM locks WHERE expires_ns IS NOT NULL AND expires_ns <= ?1")?
        .execute([Timestamp::now().0])?;
    let sql = format!("SELECT {LOCK_COLUMNS} FROM locks WHERE space_id = ?1");
    let mut stmt = tx.prepare_cached(&sql)?;
    let rows = stmt.query_map([space.0], lock_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl Store {
    /// The unexpired locks of a space.
    pub fn locks(&self, space: SpaceId) -> Result<Vec<LockRecord>> {
        let now = Timestamp::now().0;
        let sql = format!(
            "SELECT {LOCK_COLUMNS} FROM locks
             WHERE space_id = ?1 AND (expires_ns IS NULL OR expires_ns > ?2)"
        );
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![space.0, now], lock_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Adds `lock` unless `conflict` finds, among the space's live locks, one that stands in
    /// its way; that lock is returned instead. Check and insert are one transaction.
    pub fn add_lock(
        &self,
        lock: &LockRecord,
        conflict: impl Fn(&[LockRecord]) -> Option<LockRecord>,
    ) -> Result<std::result::Result<(), LockRecord>> {
        self.write(|tx| {
            let current = live_locks(tx, lock.space)?;
            if let Some(blocking) = conflict(&current) {
                return Ok(Err(blocking));
            }
            let sql = format!(
                "INSERT INTO locks ({LOCK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            );
            tx.prepare_cached(&sql)?.execute(params![
                lock.token,
                lock.space.0,
                lock.path,
                lock.principal,
                lock.owner_xml,
                lock.timeout_secs
                    .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
                lock.expires.map(|t| t.0),
                lock.shared,
                lock.deep,
            ])?;
            Ok(Ok(()))
        })
    }

    /// Gives a live lock a new timeout. Returns the updated lock, or `None` if there is no
    /// such live lock.
    pub fn refresh_lock(
        &self,
        space: SpaceId,
        token: &str,
        timeout_secs: Option<u64>,
    ) -> Result<Option<LockRecord>> {
        self.write(|tx| {
            let live = live_locks(tx, space)?;
            let Some(mut lock) = live.into_iter().find(|l| l.token == token) else {
                return Ok(None);
            };
            lock.timeout_secs = timeout_secs;
            lock.expires = timeout_secs
                .map(|secs| Timestamp::now().after(std::time::Duration::from_secs(secs)));
            tx.prepare_cached(
                "UPDATE locks SET timeout_secs = ?2, expires_ns = ?3 WHERE token = ?1",
            )?
            .execute(params![
                token,
                timeout_secs.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
                lock.expires.map(|t| t.0)
            ])?;
            Ok(Some(lock))
        })
    }

    /// Removes one lock. Returns whether it existed.
    pub fn remove_lock(&self, space: SpaceId, token: &str) -> Result<bool> {
        self.write(|tx| {
            let removed = tx
                .prepare_cached("DELETE FROM locks WHERE space_id = ?1 AND token = ?2")?
                .execute(params![space.0, token])?;
            Ok(removed > 0)
        })
    }

    /// Removes every lock on `path` and below it (the resource is gone).
    pub fn remove_locks_under(&self, space: SpaceId, path: &str) -> Result<()> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        self.write(|tx| {
            tx.prepare_cached(
                "DELETE FROM locks WHERE space_id = ?1
                 AND (path = ?2 OR path = ?3 OR substr(path, 1, length(?3)) = ?3)",
            )?
            .execute(params![space.0, path, prefix])?;
            Ok(())
        })
    }
}
