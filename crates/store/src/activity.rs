//! The activity log: what happened to which item of a space, when, and by whom. Entries are
//! written in the transaction of the change they describe, so the log never tells of a
//! change that did not happen, nor misses one that did.

use rusqlite::{params, Transaction};

use crate::model::{NodeId, SpaceId, Timestamp, UserId};
use crate::{Result, Store};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A file or folder was created.
    Created,
    /// A file received a new content from a client.
    Changed,
    /// A live document was saved back to its file.
    CoEdited,
    /// An item moved to another folder.
    Moved,
    /// An item was renamed in its folder.
    Renamed,
    /// An item was copied (the entry is the copy's).
    Copied,
    /// An item went to the trash.
    Deleted,
    /// An item came back from the trash.
    Restored,
    /// An earlier version became a file's content again.
    VersionRestored,
    /// An item left the trash for good.
    Purged,
}

impl Action {
    /// The name stored and shown in feeds and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Changed => "changed",
            Action::CoEdited => "co-edited",
            Action::Moved => "moved",
            Action::Renamed => "renamed",
            Action::Copied => "copied",
            Action::Deleted => "deleted",
            Action::Restored => "restored",
            Action::VersionRestored => "version-restored",
            Action::Purged => "purged",
        }
    }
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEntry {
    /// Its place in the log, increasing.
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// The space.
    pub space: SpaceId,
    /// The item, when it still had an id to give.
    pub node: Option<NodeId>,
    /// Who, when known.
    pub actor: Option<UserId>,
    /// What (see [`Action::as_str`]).
    pub action: String,
    /// Where the item was.
    pub path: String,
    /// The former path of a move or a rename.
    pub detail: Option<String>,
}

/// Appends one entry.
pub(crate) fn record(
    tx: &Transaction<'_>,
    space: SpaceId,
    node: NodeId,
    actor: Option<UserId>,
    action: Action,
    path: &[String],
    detail: Option<&[String]>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO activity (at_ns, space_id, node_id, actor_id, action, path, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        Timestamp::now().0,
        space.0,
        node.0,
        actor.map(|a| a.0),
        action.as_str(),
        path.join("/"),
        detail.map(|d| d.join("/")),
    ])?;
    Ok(())
}

fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ActivityEntry> {
    Ok(ActivityEntry {
        id: row.get(0)?,
        at: Timestamp(row.get(1)?),
        space: SpaceId(row.get(2)?),
        node: row.get::<_, Option<i64>>(3)?.map(NodeId),
        actor: row.get::<_, Option<i64>>(4)?.map(UserId),
        action: row.get(5)?,
        path: row.get(6)?,
        detail: row.get(7)?,
    })
}

const COLUMNS: &str = "id, at_ns, space_id, node_id, actor_id, action, path, detail";

impl Store {
    /// The latest entries of a space, newest first, older than `before` when given.
    pub fn space_activity(
        &self,
        space: SpaceId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ActivityEntry>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM activity WHERE space_id = ?1 AND id < ?2
             ORDER BY id DESC LIMIT ?3"
        );
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                space.0,
                before.unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            entry_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The latest entries about one item, newest first.
    pub fn node_activity(&self, node: NodeId, limit: usize) -> Result<Vec<ActivityEntry>> {
        let sql =
            format!("SELECT {COLUMNS} FROM activity WHERE node_id = ?1 ORDER BY id DESC LIMIT ?2");
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![node.0, i64::try_from(limit).unwrap_or(i64::MAX)],
            entry_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Forgets the entries older than `cutoff`; returns how many.
    pub fn prune_activity(&self, cutoff: Timestamp) -> Result<usize> {
        self.write(|tx| Ok(tx.execute("DELETE FROM activity WHERE at_ns < ?1", [cutoff.0])?))
    }

    /// Every entry after `after`, oldest first, handed to `each` (for exports).
    pub fn export_activity(
        &self,
        after: i64,
        mut each: impl FnMut(ActivityEntry) -> std::io::Result<()>,
    ) -> Result<u64> {
        let sql = format!("SELECT {COLUMNS} FROM activity WHERE id > ?1 ORDER BY id");
        let conn = self.db.reader();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([after], entry_from_row)?;
        let mut count = 0;
        for row in rows {
            each(row?).map_err(|e| crate::StoreError::io(self.data_dir(), e))?;
            count += 1;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{put, store_with_user};

    #[test]
    fn feeds_page_back_and_old_entries_are_pruned() {
        let (_dir, store, user) = store_with_user(None);
        for name in ["a", "b", "c"] {
            put(&store, &user, &[name], b"x").unwrap();
        }
        let newest = store.space_activity(user.space, None, 2).unwrap();
        let paths: Vec<&str> = newest.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["c", "b"]);
        let older = store
            .space_activity(user.space, Some(newest[1].id), 10)
            .unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].path, "a");
        assert_eq!(store.prune_activity(Timestamp(0)).unwrap(), 0);
        let later = Timestamp(Timestamp::now().0 + 1);
        assert_eq!(store.prune_activity(later).unwrap(), 3);
        assert!(store
            .space_activity(user.space, None, 10)
            .unwrap()
            .is_empty());
    }
}
