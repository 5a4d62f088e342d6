//! What sync clients ask beside the tree itself: the SHA-1 of contents, and the changes
//! below a folder since a point of the global change counter.
//!
//! A node's `change_seq` moves when it or anything below it changes, which finds what
//! changed or appeared. Two logs find the rest: departures (a node deleted, or moved or
//! renamed away, from a folder) and arrivals (a node moved in, which keeps its ETag and so
//! its `change_seq`).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::model::{Node, NodeId, SpaceId};
use crate::tree::{node_by_id, node_from_row, subtree, NODE_COLUMNS};
use crate::{Result, Store, StoreError};

pub(crate) fn record_departure(
    tx: &Transaction<'_>,
    space: SpaceId,
    parent: NodeId,
    name: &str,
    change: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO departures (change_seq, space_id, parent_id, name) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![change, space.0, parent.0, name])?;
    Ok(())
}

pub(crate) fn record_arrival(
    tx: &Transaction<'_>,
    space: SpaceId,
    node: NodeId,
    change: i64,
) -> Result<()> {
    tx.prepare_cached("INSERT INTO arrivals (change_seq, space_id, node_id) VALUES (?1, ?2, ?3)")?
        .execute(params![change, space.0, node.0])?;
    Ok(())
}

/// The members of a folder that changed since a token, and the places left empty.
#[derive(Debug, Default)]
pub struct Changes {
    /// Members that are new or changed, with their path below the folder.
    pub changed: Vec<(Node, Vec<String>)>,
    /// Paths below the folder where a member was and no longer is.
    pub gone: Vec<Vec<String>>,
    /// The change counter these changes run up to: the next token.
    pub token: i64,
}

impl Store {
    /// The SHA-1 (lowercase hex) of a file's content, when it is known.
    pub fn sha1_of(&self, node: &Node) -> Result<Option<String>> {
        let Some(hash) = &node.content else {
            return Ok(None);
        };
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached("SELECT sha1 FROM blobs WHERE hash = ?1")?;
        let sha1: Option<Option<String>> =
            stmt.query_row([hash.as_str()], |r| r.get(0)).optional()?;
        Ok(sha1.flatten())
    }

    /// The SHA-1 of every file directly in `folder` whose SHA-1 is known, in one query.
    pub fn sha1_of_children(&self, folder: NodeId) -> Result<HashMap<NodeId, String>> {
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT nodes.id, blobs.sha1 FROM nodes JOIN blobs ON blobs.hash = nodes.content_hash
             WHERE nodes.parent_id = ?1 AND blobs.sha1 IS NOT NULL",
        )?;
        let rows = stmt.query_map([folder.0], |r| Ok((NodeId(r.get(0)?), r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What changed below `folder` since the change counter read `since`: its direct
    /// members only, or (`deep`) everything below it. `None` for `since` lists every
    /// member, as a first sync does. A token from the future is refused.
    pub fn changes_since(&self, folder: &Node, since: Option<i64>, deep: bool) -> Result<Changes> {
        let conn = self.db.reader();
        let now: i64 = conn.query_row(
            "SELECT value FROM counters WHERE name = 'change'",
            [],
            |r| r.get(0),
        )?;
        let since = since.unwrap_or(-1);
        if since > now {
            return Err(StoreError::InvalidToken);
        }
        let mut paths = Paths::new(&conn, folder.id);
        let mut changes = Changes {
            token: now,
            ..Changes::default()
        };

        let mut candidates: Vec<Node> = {
            let sql = format!(
                "SELECT {NODE_COLUMNS} FROM nodes
                 WHERE space_id = ?1 AND change_seq > ?2 AND change_seq <= ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![folder.space.0, since, now], node_from_row)?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        // A folder moved in brings everything below it, unchanged but new to the client.
        let arrived: Vec<i64> = {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT node_id FROM arrivals
                 WHERE space_id = ?1 AND change_seq > ?2 AND change_seq <= ?3",
            )?;
            let rows = stmt.query_map(params![folder.space.0, since, now], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for id in arrived {
            let ids = if deep {
                subtree(&conn, NodeId(id))?
            } else {
                vec![NodeId(id)]
            };
            for id in ids {
                if let Some(node) = node_by_id(&conn, id)? {
                    candidates.push(node);
                }
            }
        }
        candidates.sort_by_key(|n| n.id);
        candidates.dedup_by_key(|n| n.id);
        for node in candidates {
            if node.id == folder.id || (!deep && node.parent != Some(folder.id)) {
                continue;
            }
            if let Some(path) = paths.of(node.id)? {
                changes.changed.push((node, path));
            }
        }

        let departures: Vec<(i64, String)> = {
            let mut stmt = conn.prepare_cached(
                "SELECT parent_id, name FROM departures
                 WHERE space_id = ?1 AND change_seq > ?2 AND change_seq <= ?3",
            )?;
            let rows = stmt.query_map(params![folder.space.0, since, now], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut still_there = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM nodes WHERE parent_id = ?1 AND name = ?2)",
        )?;
        for (parent, name) in departures {
            if !deep && parent != folder.id.0 {
                continue;
            }
            // A place filled again is reported as changed, not as gone.
            if still_there.query_row(params![parent, name], |r| r.get::<_, bool>(0))? {
                continue;
            }
            if let Some(mut path) = paths.of(NodeId(parent))? {
                path.push(name);
                if !changes.gone.contains(&path) {
                    changes.gone.push(path);
                }
            }
        }
        changes.changed.sort_by(|a, b| a.1.cmp(&b.1));
        changes.gone.sort();
        Ok(changes)
    }
}

/// Paths of nodes relative to one folder, remembered along the way so that siblings share
/// the walk up to it.
struct Paths<'c> {
    conn: &'c Connection,
    known: HashMap<NodeId, Option<Vec<String>>>,
}

impl<'c> Paths<'c> {
    fn new(conn: &'c Connection, folder: NodeId) -> Paths<'c> {
        let mut known = HashMap::new();
        known.insert(folder, Some(Vec::new()));
        Paths { conn, known }
    }

    /// The path of `node` below the folder, or `None` when it is not below it.
    fn of(&mut self, node: NodeId) -> Result<Option<Vec<String>>> {
        let mut chain = Vec::new();
        let mut current = node;
        let mut found = loop {
            if let Some(known) = self.known.get(&current) {
                break known.clone();
            }
            let Some(row) = node_by_id(self.conn, current)? else {
                break None;
            };
            chain.push((current, row.name));
            match row.parent {
                Some(parent) => current = parent,
                None => break None,
            }
        };
        for (id, name) in chain.into_iter().rev() {
            if let Some(path) = &mut found {
                path.push(name);
            }
            self.known.insert(id, found.clone());
        }
        Ok(self.known.get(&node).cloned().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommitOptions, SpaceId, StoreConfig};

    fn put(store: &Store, space: SpaceId, path: &[&str], data: &[u8]) {
        let mut upload = store.begin_upload(space).unwrap();
        upload.write(data).unwrap();
        store
            .commit_upload(space, path, upload, CommitOptions::default())
            .unwrap();
    }

    fn names(changes: &Changes) -> (Vec<String>, Vec<String>) {
        (
            changes.changed.iter().map(|(_, p)| p.join("/")).collect(),
            changes.gone.iter().map(|p| p.join("/")).collect(),
        )
    }

    #[test]
    fn changes_since_a_token_name_what_moved_changed_and_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            data_dir: dir.path().to_owned(),
            default_quota: None,
        })
        .unwrap();
        let user = store.create_user("marie", "hash", false).unwrap();
        let space = user.space;
        store.create_folder(space, &["a"], None).unwrap();
        store.create_folder(space, &["b"], None).unwrap();
        put(&store, space, &["a", "one.txt"], b"1");
        put(&store, space, &["a", "two.txt"], b"2");
        put(&store, space, &["b", "three.txt"], b"3");
        let root = store.lookup::<&str>(space, &[]).unwrap();

        let first = store.changes_since(&root, None, true).unwrap();
        assert_eq!(
            names(&first).0,
            ["a", "a/one.txt", "a/two.txt", "b", "b/three.txt"]
        );
        let token = first.token;
        let quiet = store.changes_since(&root, Some(token), true).unwrap();
        assert!(quiet.changed.is_empty() && quiet.gone.is_empty());

        put(&store, space, &["a", "one.txt"], b"one");
        store
            .move_node(space, &["a", "two.txt"], &["b", "deux.txt"], false, None)
            .unwrap();
        store.remove(space, &["b", "three.txt"], None).unwrap();

        let deep = store.changes_since(&root, Some(token), true).unwrap();
        assert_eq!(
            names(&deep),
            (
                vec![
                    "a".into(),
                    "a/one.txt".into(),
                    "b".into(),
                    "b/deux.txt".into()
                ],
                vec!["a/two.txt".into(), "b/three.txt".into()]
            )
        );
        let b = store.lookup(space, &["b"]).unwrap();
        let shallow = store.changes_since(&b, Some(token), false).unwrap();
        assert_eq!(
            names(&shallow),
            (vec!["deux.txt".into()], vec!["three.txt".into()])
        );
        let ahead = store.changes_since(&root, Some(deep.token + 1), true);
        assert!(matches!(ahead, Err(StoreError::InvalidToken)));
    }

    #[test]
    fn contents_carry_their_sha1() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            data_dir: dir.path().to_owned(),
            default_quota: None,
        })
        .unwrap();
        let user = store.create_user("marie", "hash", false).unwrap();
        put(&store, user.space, &["small.txt"], b"abc");
        put(&store, user.space, &["large.bin"], &vec![7u8; 200_000]);
        let small = store.lookup(user.space, &["small.txt"]).unwrap();
        assert_eq!(
            store.sha1_of(&small).unwrap().as_deref(),
            Some("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        let root = store.lookup::<&str>(user.space, &[]).unwrap();
        assert_eq!(store.sha1_of_children(root.id).unwrap().len(), 2);

        let mut wrong = store.begin_upload(user.space).unwrap();
        wrong.write(b"abd").unwrap();
        wrong.expect(
            crate::Checksum::parse("SHA1:a9993e364706816aba3e25717850c26c9cd0d89d").unwrap(),
        );
        let refused =
            store.commit_upload(user.space, &["small.txt"], wrong, CommitOptions::default());
        assert!(matches!(refused, Err(StoreError::ChecksumMismatch { .. })));
        assert_eq!(store.lookup(user.space, &["small.txt"]).unwrap().size, 3);
    }
}
