//! Versions: the earlier contents of a file, kept when it is overwritten, listed, read and
//! restored, and thinned out with age.

use std::time::Duration;

use rusqlite::{params, OptionalExtension};

use crate::blob::{BlobRead, ContentHash};
use crate::model::{Node, NodeId, SpaceId, Timestamp, UserId};
use crate::tree::{
    add_usage, check_quota, next_change, node_by_id, replace_content, touch_upwards,
};
use crate::{Result, Store, StoreError};

/// One earlier content of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// Identifies the version among all others.
    pub id: i64,
    /// The file it belongs to.
    pub node: NodeId,
    /// The content.
    pub content: ContentHash,
    /// Its size in bytes.
    pub size: u64,
    /// The modification time the file had with this content.
    pub modified: Timestamp,
    /// When a newer content replaced it.
    pub replaced: Timestamp,
    /// Who wrote the content that replaced it, when known.
    pub replaced_by: Option<UserId>,
}

/// How long versions are kept: every one for a while, then one a day, then one a week,
/// then none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Every version younger than this is kept.
    pub all: Duration,
    /// Then the newest of each day, up to this age.
    pub daily: Duration,
    /// Then the newest of each week, up to this age; older versions are removed.
    pub weekly: Duration,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl Default for Retention {
    /// Everything for a day, one a day for a month, one a week for six months.
    fn default() -> Retention {
        Retention {
            all: DAY,
            daily: DAY * 30,
            weekly: DAY * 182,
        }
    }
}

impl Retention {
    /// The bucket a version of this age falls in, or `None` when it is to be removed.
    /// Versions sharing a bucket are thinned to the newest.
    fn bucket(&self, id: i64, age: Duration) -> Option<(u8, i64)> {
        let days = i64::try_from(age.as_secs() / DAY.as_secs()).unwrap_or(i64::MAX);
        if age < self.all {
            Some((0, id))
        } else if age < self.daily {
            Some((1, days))
        } else if age < self.weekly {
            Some((2, days / 7))
        } else {
            None
        }
    }
}

fn version_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Version> {
    let hash: String = row.get(2)?;
    let size: i64 = row.get(3)?;
    Ok(Version {
        id: row.get(0)?,
        node: NodeId(row.get(1)?),
        content: ContentHash::from_hex(hash).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
        })?,
        size: u64::try_from(size).unwrap_or(0),
        modified: Timestamp(row.get(4)?),
        replaced: Timestamp(row.get(5)?),
        replaced_by: row.get::<_, Option<i64>>(6)?.map(UserId),
    })
}

fn version_in(conn: &rusqlite::Connection, node: NodeId, id: i64) -> Result<Version> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM versions WHERE id = ?1 AND node_id = ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_row(params![id, node.0], version_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            path: format!("version {id} of node {node}"),
        })
}

const VERSION_COLUMNS: &str = "id, node_id, content_hash, size, mtime_ns, replaced_ns, author_id";

impl Store {
    /// The kept versions of a file, newest first.
    pub fn versions(&self, node: NodeId) -> Result<Vec<Version>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE node_id = ?1
             ORDER BY replaced_ns DESC, id DESC"
        );
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([node.0], version_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// One version of a file.
    pub fn version(&self, node: NodeId, id: i64) -> Result<Version> {
        version_in(&self.db.reader(), node, id)
    }

    /// Opens a version's content for reading.
    pub fn open_version(&self, version: &Version) -> Result<Box<dyn BlobRead>> {
        self.open_stored(&self.db.reader(), &version.content)
    }

    /// Makes version `id` the file's content again; the content it replaces becomes a
    /// version in turn, so a restore can itself be undone.
    pub fn restore_version(
        &self,
        space: SpaceId,
        node: NodeId,
        id: i64,
        author: Option<UserId>,
    ) -> Result<Node> {
        let restored = self.write(|tx| {
            // Read in the transaction: thinning or the collector cannot take it meanwhile.
            let version = version_in(tx, node, id)?;
            let file = node_by_id(tx, node)?
                .filter(|n| n.space == space && !n.is_dir)
                .ok_or_else(|| StoreError::NotFound {
                    path: format!("node {node}"),
                })?;
            if crate::trash::is_trashed(tx, node)? {
                return Err(StoreError::NotFound {
                    path: format!("node {node}"),
                });
            }
            let delta = i64::try_from(version.size).unwrap_or(i64::MAX)
                - i64::try_from(file.size).unwrap_or(i64::MAX);
            check_quota(tx, space, delta)?;
            let change = next_change(tx)?;
            let parent = file.parent;
            let updated = replace_content(
                tx,
                file,
                &version.content,
                version.size,
                Timestamp::now(),
                change,
                author,
            )?;
            add_usage(tx, space, delta)?;
            if let Some(parent) = parent {
                touch_upwards(tx, parent, change)?;
            }
            crate::search::index_text(self, tx, &updated, None)?;
            let path = crate::tree::path_in(tx, node)?;
            let action = crate::activity::Action::VersionRestored;
            crate::activity::record(tx, space, node, author, action, &path, None)?;
            Ok(updated)
        })?;
        self.emit(crate::Event::ContentChanged {
            node,
            space,
            origin: crate::Origin::Client,
            author,
        });
        Ok(restored)
    }

    /// Removes the versions `retention` no longer keeps, as of `now`; returns how many.
    pub fn thin_versions(&self, retention: Retention, now: Timestamp) -> Result<usize> {
        self.write(|tx| {
            let all: Vec<(i64, i64, i64)> = {
                let mut stmt = tx.prepare(
                    "SELECT id, node_id, replaced_ns FROM versions
                     ORDER BY node_id, replaced_ns DESC, id DESC",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut remove = tx.prepare_cached("DELETE FROM versions WHERE id = ?1")?;
            let mut removed = 0;
            let mut kept: Option<(i64, (u8, i64))> = None;
            for (id, node, replaced) in all {
                let age = Duration::from_nanos(u64::try_from(now.0 - replaced).unwrap_or(0));
                let bucket = retention.bucket(id, age);
                // Newest first within a file: the first of each bucket stays.
                let keep = match bucket {
                    Some(bucket) => kept != Some((node, bucket)),
                    None => false,
                };
                if let Some(bucket) = bucket {
                    kept = Some((node, bucket));
                }
                if !keep {
                    remove.execute([id])?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::testing::{self, store_with_user};
    use crate::User;

    fn put(store: &Store, user: &User, content: &[u8]) -> Node {
        testing::put(store, user, &["f.txt"], content).unwrap()
    }

    fn read(store: &Store, version: &Version) -> Vec<u8> {
        let mut out = Vec::new();
        store
            .open_version(version)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn a_restored_version_becomes_the_content_and_the_replaced_one_a_version() {
        let (_dir, store, user) = store_with_user(None);
        put(&store, &user, b"un");
        put(&store, &user, b"deux");
        let file = put(&store, &user, b"trois");
        let versions = store.versions(file.id).unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(read(&store, &versions[0]), b"deux");
        assert_eq!(read(&store, &versions[1]), b"un");

        let restored = store
            .restore_version(user.space, file.id, versions[1].id, Some(user.id))
            .unwrap();
        assert_eq!(restored.size, 2);
        assert_eq!(store.space(user.space).unwrap().used, 2);
        let versions = store.versions(file.id).unwrap();
        assert_eq!(
            read(&store, &versions[0]),
            b"trois",
            "the restore can be undone"
        );
        assert!(store
            .version(NodeId(file.id.0 + 1000), versions[0].id)
            .is_err());
    }

    #[test]
    fn thinning_keeps_all_recent_then_one_a_day_then_one_a_week() {
        let (_dir, store, user) = store_with_user(None);
        for n in 0..6 {
            put(&store, &user, format!("v{n}").as_bytes());
        }
        let file = store.lookup(user.space, &["f.txt"]).unwrap();
        assert_eq!(store.versions(file.id).unwrap().len(), 5);
        let retention = Retention::default();
        let now = Timestamp::now();
        assert_eq!(store.thin_versions(retention, now).unwrap(), 0);
        // Two days on, the five made within one second share a day: the newest stays.
        let later = Timestamp(now.0 + 2 * 86_400 * 1_000_000_000);
        assert_eq!(store.thin_versions(retention, later).unwrap(), 4);
        let left = store.versions(file.id).unwrap();
        assert_eq!(read(&store, &left[0]), b"v4");
        // A year on, nothing is left.
        let much_later = Timestamp(now.0 + 365 * 86_400 * 1_000_000_000);
        assert_eq!(store.thin_versions(retention, much_later).unwrap(), 1);
        assert!(store.versions(file.id).unwrap().is_empty());
    }
}
