//! The trash: deleted files and folders wait here, with their versions, until they are
//! restored or purged.
//!
//! Deleting detaches the top of the subtree from the tree (its parent becomes null) and
//! records when, from which folder and at which path; what was below stays below it, so a
//! restore is one update. Trashed content still counts in the space's usage until it is
//! purged: it is still stored.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::activity::{record, Action};
use crate::model::{Node, NodeId, SpaceId, Timestamp, UserId};
use crate::name::display_path;
use crate::tree::{node_by_id, node_from_row, NODE_COLUMNS};
use crate::{Result, Store, StoreError};

/// One deleted item, as the trash lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrashItem {
    /// The item itself (file or folder), with the name it had.
    pub node: Node,
    /// When it was deleted.
    pub deleted: Timestamp,
    /// The path it had in its space, `/`-separated without a leading slash.
    pub original_path: String,
}

/// Moves `node` (and what is below it) out of the tree into its space's trash.
pub(crate) fn trash_subtree(
    tx: &Transaction<'_>,
    node: &Node,
    original_path: &[String],
) -> Result<()> {
    let parent = node
        .parent
        .ok_or(StoreError::WrongKind { path: "/".into() })?;
    tx.prepare_cached(
        "UPDATE nodes SET parent_id = NULL, trashed_ns = ?2, trash_parent_id = ?3,
                          trash_path = ?4
         WHERE id = ?1",
    )?
    .execute(params![
        node.id.0,
        Timestamp::now().0,
        parent.0,
        original_path.join("/")
    ])?;
    Ok(())
}

/// Whether `node` is in a trash: the top of its subtree was deleted.
pub(crate) fn is_trashed(conn: &Connection, node: NodeId) -> Result<bool> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE up(id, parent_id, trashed_ns) AS (
             SELECT id, parent_id, trashed_ns FROM nodes WHERE id = ?1
             UNION ALL
             SELECT nodes.id, nodes.parent_id, nodes.trashed_ns
             FROM nodes JOIN up ON nodes.id = up.parent_id)
         SELECT EXISTS (SELECT 1 FROM up WHERE trashed_ns IS NOT NULL)",
    )?;
    Ok(stmt.query_row([node.0], |r| r.get(0))?)
}

fn item_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TrashItem> {
    Ok(TrashItem {
        node: node_from_row(row)?,
        deleted: Timestamp(row.get(10)?),
        original_path: row.get(11)?,
    })
}

fn trash_item(conn: &Connection, space: SpaceId, id: NodeId) -> Result<TrashItem> {
    let sql = format!(
        "SELECT {NODE_COLUMNS}, trashed_ns, trash_path FROM nodes
         WHERE id = ?1 AND space_id = ?2 AND trashed_ns IS NOT NULL"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_row(params![id.0, space.0], item_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            path: format!("trash item {id}"),
        })
}

/// A name for `name` that no child of `parent` has: `name`, then `name (2)`, `name (3)`...
/// with the number before the extension of a file.
fn free_name(conn: &Connection, parent: NodeId, name: &str, is_dir: bool) -> Result<String> {
    let mut taken = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM nodes WHERE parent_id = ?1 AND name = ?2)")?;
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 && !is_dir => name.split_at(dot),
        _ => (name, ""),
    };
    let mut candidate = name.to_owned();
    let mut n = 1;
    while taken.query_row(params![parent.0, candidate], |r| r.get::<_, bool>(0))? {
        n += 1;
        candidate = format!("{stem} ({n}){extension}");
    }
    Ok(candidate)
}

/// Deletes a trashed item for good, and says so in the activity log.
pub(crate) fn purge_item(tx: &Transaction<'_>, node: &Node, actor: Option<UserId>) -> Result<()> {
    let path: Option<String> = tx
        .prepare_cached("SELECT trash_path FROM nodes WHERE id = ?1")?
        .query_row([node.id.0], |r| r.get(0))?;
    let path: Vec<String> = path
        .unwrap_or_default()
        .split('/')
        .map(str::to_owned)
        .collect();
    record(tx, node.space, node.id, actor, Action::Purged, &path, None)?;
    crate::tree::delete_subtree(tx, node)
}

/// The item deleted longest ago in the trash of `space`.
pub(crate) fn oldest_trashed(tx: &Transaction<'_>, space: SpaceId) -> Result<Option<Node>> {
    let sql = format!(
        "SELECT {NODE_COLUMNS} FROM nodes
         WHERE space_id = ?1 AND trashed_ns IS NOT NULL
         ORDER BY trashed_ns, id LIMIT 1"
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    Ok(stmt.query_row([space.0], node_from_row).optional()?)
}

impl Store {
    /// What the trash of `space` holds, most recently deleted first.
    pub fn trash(&self, space: SpaceId) -> Result<Vec<TrashItem>> {
        let sql = format!(
            "SELECT {NODE_COLUMNS}, trashed_ns, trash_path FROM nodes
             WHERE space_id = ?1 AND trashed_ns IS NOT NULL
             ORDER BY trashed_ns DESC, id DESC"
        );
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(&sql)?;
        let items = stmt.query_map([space.0], item_from_row)?;
        Ok(items.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// One item of the trash of `space`.
    pub fn trash_item(&self, space: SpaceId, id: NodeId) -> Result<TrashItem> {
        trash_item(&self.db.reader(), space, id)
    }

    /// Puts a trashed item back in the folder it was deleted from, or at the top of the
    /// space when that folder is gone too; a name taken meanwhile gets a number. The item
    /// keeps its id, so sync clients see it come back as the same file.
    pub fn restore(&self, space: SpaceId, id: NodeId, actor: Option<UserId>) -> Result<Node> {
        self.write(|tx| {
            let item = trash_item(tx, space, id)?;
            let original: Option<i64> = tx
                .prepare_cached("SELECT trash_parent_id FROM nodes WHERE id = ?1")?
                .query_row([id.0], |r| r.get(0))?;
            let parent = match original.map(NodeId) {
                Some(parent) => match node_by_id(tx, parent)? {
                    Some(folder) if folder.is_dir && !is_trashed(tx, folder.id)? => folder.id,
                    _ => crate::tree::space_root(tx, space)?,
                },
                None => crate::tree::space_root(tx, space)?,
            };
            let name = free_name(tx, parent, &item.node.name, item.node.is_dir)?;
            let change = crate::tree::next_change(tx)?;
            tx.prepare_cached(
                "UPDATE nodes SET parent_id = ?2, name = ?3, trashed_ns = NULL,
                                  trash_parent_id = NULL, trash_path = NULL
                 WHERE id = ?1",
            )?
            .execute(params![id.0, parent.0, name])?;
            crate::search::index_name(tx, id, &name)?;
            let path = crate::tree::path_in(tx, id)?;
            let former = item
                .original_path
                .split('/')
                .map(str::to_owned)
                .collect::<Vec<_>>();
            record(tx, space, id, actor, Action::Restored, &path, Some(&former))?;
            crate::sync::record_arrival(tx, space, id, change)?;
            crate::tree::touch_upwards(tx, id, change)?;
            node_by_id(tx, id)?.ok_or_else(|| StoreError::NotFound {
                path: display_path(&[name]),
            })
        })
    }

    /// Deletes one trashed item for good, with its versions.
    pub fn purge(&self, space: SpaceId, id: NodeId, actor: Option<UserId>) -> Result<()> {
        self.write(|tx| {
            let item = trash_item(tx, space, id)?;
            purge_item(tx, &item.node, actor)
        })
    }

    /// Empties the trash of `space`; returns how many items were purged.
    pub fn empty_trash(&self, space: SpaceId, actor: Option<UserId>) -> Result<usize> {
        self.purge_where(Some(space), None, actor)
    }

    /// Purges, in every space, what was deleted before `cutoff`; returns how many items.
    pub fn purge_trash_before(&self, cutoff: Timestamp) -> Result<usize> {
        self.purge_where(None, Some(cutoff), None)
    }

    fn purge_where(
        &self,
        space: Option<SpaceId>,
        before: Option<Timestamp>,
        actor: Option<UserId>,
    ) -> Result<usize> {
        self.write(|tx| {
            let sql = format!(
                "SELECT {NODE_COLUMNS} FROM nodes
                 WHERE trashed_ns IS NOT NULL AND (?1 IS NULL OR space_id = ?1)
                   AND (?2 IS NULL OR trashed_ns < ?2)"
            );
            let items: Vec<Node> = {
                let mut stmt = tx.prepare(&sql)?;
                let rows = stmt.query_map(
                    params![space.map(|s| s.0), before.map(|t| t.0)],
                    node_from_row,
                )?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for node in &items {
                purge_item(tx, node, actor)?;
            }
            Ok(items.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{put, store_with_user};

    #[test]
    fn a_deleted_folder_comes_back_whole_with_its_ids() {
        let (_dir, store, user) = store_with_user(None);
        store
            .create_folder(user.space, &["rapports"], None)
            .unwrap();
        let file = put(&store, &user, &["rapports", "2026.md"], b"bilan").unwrap();
        let folder = store.lookup(user.space, &["rapports"]).unwrap();
        store.remove(user.space, &["rapports"], None).unwrap();

        assert!(store.lookup(user.space, &["rapports"]).is_err());
        assert_eq!(
            store.node(file.id).unwrap(),
            None,
            "a trashed file is not served"
        );
        let trash = store.trash(user.space).unwrap();
        assert_eq!(trash.len(), 1);
        assert_eq!(trash[0].original_path, "rapports");
        assert_eq!(trash[0].node.id, folder.id);

        let restored = store.restore(user.space, folder.id, None).unwrap();
        assert_eq!(restored.name, "rapports");
        let back = store.lookup(user.space, &["rapports", "2026.md"]).unwrap();
        assert_eq!(back.id, file.id);
        assert!(store.trash(user.space).unwrap().is_empty());
    }

    #[test]
    fn a_restore_never_overwrites_and_finds_a_home() {
        let (_dir, store, user) = store_with_user(None);
        store.create_folder(user.space, &["a"], None).unwrap();
        let first = put(&store, &user, &["a", "note.txt"], b"one").unwrap();
        store.remove(user.space, &["a", "note.txt"], None).unwrap();
        put(&store, &user, &["a", "note.txt"], b"two").unwrap();
        let restored = store.restore(user.space, first.id, None).unwrap();
        assert_eq!(restored.name, "note (2).txt");

        let lone = put(&store, &user, &["a", "lone.txt"], b"three").unwrap();
        store.remove(user.space, &["a", "lone.txt"], None).unwrap();
        store.remove(user.space, &["a"], None).unwrap();
        // Its folder is in the trash too: it comes back at the top of the space.
        let restored = store.restore(user.space, lone.id, None).unwrap();
        let root = store.lookup::<&str>(user.space, &[]).unwrap();
        assert_eq!(restored.parent, Some(root.id));
    }

    #[test]
    fn purging_frees_the_space_and_a_full_space_purges_the_oldest_first() {
        let (_dir, store, user) = store_with_user(Some(10));
        put(&store, &user, &["old"], b"12345").unwrap();
        put(&store, &user, &["older"], b"1234").unwrap();
        store.remove(user.space, &["older"], None).unwrap();
        store.remove(user.space, &["old"], None).unwrap();
        assert_eq!(store.space(user.space).unwrap().used, 9);
        // Five bytes need the older item gone, not the other.
        put(&store, &user, &["new"], b"abcde").unwrap();
        let left: Vec<String> = store
            .trash(user.space)
            .unwrap()
            .into_iter()
            .map(|i| i.original_path)
            .collect();
        assert_eq!(left, ["old"]);
        assert!(put(&store, &user, &["big"], b"12345678901").is_err());
        assert_eq!(
            store.trash(user.space).unwrap().len(),
            1,
            "a refused write purges nothing"
        );

        let id = store.trash(user.space).unwrap()[0].node.id;
        store.purge(user.space, id, None).unwrap();
        assert_eq!(store.space(user.space).unwrap().used, 5);
        assert!(store.restore(user.space, id, None).is_err());
    }

    #[test]
    fn old_items_are_purged_by_age() {
        let (_dir, store, user) = store_with_user(None);
        put(&store, &user, &["a"], b"a").unwrap();
        store.remove(user.space, &["a"], None).unwrap();
        assert_eq!(store.purge_trash_before(Timestamp(0)).unwrap(), 0);
        let later = Timestamp(Timestamp::now().0 + 1);
        assert_eq!(store.purge_trash_before(later).unwrap(), 1);
        assert!(store.trash(user.space).unwrap().is_empty());
    }
}
