//! The tree of nodes: lookups, folders, uploads, moves, copies and deletions.
//!
//! Every change runs in one write transaction that resolves its paths again, so that two
//! concurrent requests cannot act on a tree that changed between their lookups.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use crate::activity::{record, Action};
use crate::blob::{ContentHash, Staged, StagedContent, Upload};
use crate::model::{Node, NodeId, SpaceId, Timestamp, UserId};
use crate::name::{display_path, normalize_path};
use crate::{Result, Store, StoreError};

pub(crate) const NODE_COLUMNS: &str =
    "id, space_id, parent_id, name, is_dir, size, content_hash, mtime_ns, created_ns, change_seq";

pub(crate) fn node_from_row(row: &Row<'_>) -> rusqlite::Result<Node> {
    let size: i64 = row.get(5)?;
    let hash: Option<String> = row.get(6)?;
    Ok(Node {
        id: NodeId(row.get(0)?),
        space: SpaceId(row.get(1)?),
        parent: row.get::<_, Option<i64>>(2)?.map(NodeId),
        name: row.get(3)?,
        is_dir: row.get(4)?,
        size: u64::try_from(size).unwrap_or(0),
        content: hash.and_then(|h| ContentHash::from_hex(h).ok()),
        modified: Timestamp(row.get(7)?),
        created: Timestamp(row.get(8)?),
        change: row.get(9)?,
    })
}

pub(crate) fn node_by_id(conn: &Connection, id: NodeId) -> Result<Option<Node>> {
    let sql = format!("SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    Ok(stmt.query_row([id.0], node_from_row).optional()?)
}

fn child(conn: &Connection, parent: NodeId, name: &str) -> Result<Option<Node>> {
    let sql = format!("SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id = ?1 AND name = ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    Ok(stmt
        .query_row(params![parent.0, name], node_from_row)
        .optional()?)
}

pub(crate) fn space_root(conn: &Connection, space: SpaceId) -> Result<NodeId> {
    let mut stmt = conn.prepare_cached("SELECT root_id FROM spaces WHERE id = ?1")?;
    let root: Option<Option<i64>> = stmt.query_row([space.0], |r| r.get(0)).optional()?;
    root.flatten()
        .map(NodeId)
        .ok_or_else(|| StoreError::Corrupt(format!("space {space} has no root")))
}

/// Walks from the space's root down `path` (already normalised).
fn resolve(conn: &Connection, space: SpaceId, path: &[String]) -> Result<Node> {
    let root = space_root(conn, space)?;
    let mut node = node_by_id(conn, root)?
        .ok_or_else(|| StoreError::Corrupt(format!("root of space {space} missing")))?;
    for (depth, name) in path.iter().enumerate() {
        if !node.is_dir {
            return Err(StoreError::not_found(&path[..=depth]));
        }
        node = child(conn, node.id, name)?.ok_or_else(|| StoreError::not_found(path))?;
    }
    Ok(node)
}

/// Resolves the folder that is to hold `path`'s last segment.
fn resolve_parent(conn: &Connection, space: SpaceId, path: &[String]) -> Result<(Node, String)> {
    let Some((name, parent_path)) = path.split_last() else {
        return Err(StoreError::WrongKind { path: "/".into() });
    };
    let parent = match resolve(conn, space, parent_path) {
        Ok(parent) if parent.is_dir => parent,
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            return Err(StoreError::ParentMissing {
                path: display_path(path),
            })
        }
        Err(other) => return Err(other),
    };
    Ok((parent, name.clone()))
}

/// The names from the top of `id`'s tree (its space's root, or a trashed item) down to it.
pub(crate) fn path_in(conn: &Connection, id: NodeId) -> Result<Vec<String>> {
    let missing = || StoreError::NotFound {
        path: format!("node {id}"),
    };
    let mut node = node_by_id(conn, id)?.ok_or_else(missing)?;
    let mut names = Vec::new();
    while let Some(parent) = node.parent {
        if names.len() > 10_000 {
            return Err(StoreError::Corrupt(format!("node {id} is in a cycle")));
        }
        names.push(std::mem::take(&mut node.name));
        node = node_by_id(conn, parent)?.ok_or_else(missing)?;
    }
    names.reverse();
    Ok(names)
}

/// Advances the global change counter and returns its new value.
pub(crate) fn next_change(tx: &Transaction<'_>) -> Result<i64> {
    let mut stmt = tx.prepare_cached(
        "UPDATE counters SET value = value + 1 WHERE name = 'change' RETURNING value",
    )?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

/// Marks `node` and all its ancestors as changed at `change`, which moves their ETags.
pub(crate) fn touch_upwards(tx: &Transaction<'_>, node: NodeId, change: i64) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "WITH RECURSIVE up(id) AS (
             SELECT ?1
             UNION ALL
             SELECT nodes.parent_id FROM nodes JOIN up ON nodes.id = up.id
             WHERE nodes.parent_id IS NOT NULL)
         UPDATE nodes SET change_seq = ?2 WHERE id IN (SELECT id FROM up)",
    )?;
    stmt.execute(params![node.0, change])?;
    Ok(())
}

/// Ids of `node` and everything below it, parents before children.
pub(crate) fn subtree(conn: &Connection, node: NodeId) -> Result<Vec<NodeId>> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE down(id) AS (
             SELECT ?1
             UNION ALL
             SELECT nodes.id FROM nodes JOIN down ON nodes.parent_id = down.id)
         SELECT id FROM down",
    )?;
    let ids = stmt.query_map([node.0], |r| r.get(0).map(NodeId))?;
    Ok(ids.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn subtree_size(conn: &Connection, node: NodeId) -> Result<u64> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE down(id) AS (
             SELECT ?1
             UNION ALL
             SELECT nodes.id FROM nodes JOIN down ON nodes.parent_id = down.id)
         SELECT COALESCE(SUM(size), 0) FROM nodes WHERE id IN (SELECT id FROM down)",
    )?;
    let size: i64 = stmt.query_row([node.0], |r| r.get(0))?;
    Ok(u64::try_from(size).unwrap_or(0))
}

fn is_inside(conn: &Connection, candidate: NodeId, ancestor: NodeId) -> Result<bool> {
    let mut current = Some(candidate);
    while let Some(id) = current {
        if id == ancestor {
            return Ok(true);
        }
        current = node_by_id(conn, id)?.and_then(|n| n.parent);
    }
    Ok(false)
}

pub(crate) fn add_usage(tx: &Transaction<'_>, space: SpaceId, delta: i64) -> Result<()> {
    let mut stmt =
        tx.prepare_cached("UPDATE spaces SET used_bytes = MAX(used_bytes + ?2, 0) WHERE id = ?1")?;
    stmt.execute(params![space.0, delta])?;
    Ok(())
}

/// Fails with `QuotaExceeded` when adding `delta` bytes would pass the space's quota.
/// Trashed items count in the usage until they are purged; when the space is short, the
/// oldest are purged first to make room (in the same transaction: if the write fails, they
/// are back).
pub(crate) fn check_quota(tx: &Transaction<'_>, space: SpaceId, delta: i64) -> Result<()> {
    if delta <= 0 {
        return Ok(());
    }
    let usage = |tx: &Transaction<'_>| -> Result<(Option<i64>, i64)> {
        let mut stmt =
            tx.prepare_cached("SELECT quota_bytes, used_bytes FROM spaces WHERE id = ?1")?;
        Ok(stmt.query_row([space.0], |r| Ok((r.get(0)?, r.get(1)?)))?)
    };
    let (quota, mut used) = usage(tx)?;
    let Some(quota) = quota else { return Ok(()) };
    while delta > quota - used {
        let Some(oldest) = crate::trash::oldest_trashed(tx, space)? else {
            break;
        };
        crate::trash::purge_item(tx, &oldest, None)?;
        used = usage(tx)?.1;
    }
    let available = (quota - used).max(0);
    if delta > available {
        return Err(StoreError::QuotaExceeded {
            space: space.0,
            needed: delta.unsigned_abs(),
            available: available.unsigned_abs(),
        });
    }
    Ok(())
}

/// Removes `node` and its subtree, with their versions and properties.
pub(crate) fn delete_subtree(tx: &Transaction<'_>, node: &Node) -> Result<()> {
    let freed = subtree_size(tx, node.id)?;
    let ids = subtree(tx, node.id)?;
    let mut versions = tx.prepare_cached("DELETE FROM versions WHERE node_id = ?1")?;
    let mut props = tx.prepare_cached("DELETE FROM dead_props WHERE node_id = ?1")?;
    for id in ids.iter().rev() {
        versions.execute([id.0])?;
        props.execute([id.0])?;
        crate::search::forget_text(tx, *id)?;
    }
    let mut nodes = tx.prepare_cached("DELETE FROM nodes WHERE id = ?1")?;
    for id in ids.iter().rev() {
        nodes.execute([id.0])?;
    }
    add_usage(tx, node.space, -i64::try_from(freed).unwrap_or(i64::MAX))
}

fn insert_node(
    tx: &Transaction<'_>,
    template: &Node,
    parent: NodeId,
    name: &str,
    change: i64,
) -> Result<NodeId> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO nodes (space_id, parent_id, name, is_dir, size, content_hash, mtime_ns,
                            created_ns, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    stmt.execute(params![
        template.space.0,
        parent.0,
        name,
        template.is_dir,
        i64::try_from(template.size).unwrap_or(i64::MAX),
        template.content.as_ref().map(|h| h.as_str()),
        template.modified.0,
        template.created.0,
        change,
    ])?;
    let id = NodeId(tx.last_insert_rowid());
    crate::search::index_name(tx, id, name)?;
    Ok(id)
}

/// What a committed upload should record besides its content.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitOptions {
    /// Modification time set by the client; now when `None`.
    pub modified: Option<Timestamp>,
    /// Who wrote it.
    pub author: Option<UserId>,
    /// Where the write came from, told to listeners.
    pub origin: crate::Origin,
}

impl Store {
    /// The node at `path` in `space`.
    pub fn lookup<S: AsRef<str>>(&self, space: SpaceId, path: &[S]) -> Result<Node> {
        let path = normalize_path(path)?;
        resolve(&self.db.reader(), space, &path)
    }

    /// The node with this id, if it exists and is not in a trash.
    pub fn node(&self, id: NodeId) -> Result<Option<Node>> {
        let conn = self.db.reader();
        match node_by_id(&conn, id)? {
            Some(node) if !crate::trash::is_trashed(&conn, id)? => Ok(Some(node)),
            _ => Ok(None),
        }
    }

    /// The path of a node below its space's root (empty for the root).
    pub fn path_of(&self, id: NodeId) -> Result<Vec<String>> {
        path_in(&self.db.reader(), id)
    }

    /// The children of a folder, sorted by name, read from the index alone.
    pub fn children(&self, folder: NodeId) -> Result<Vec<Node>> {
        let sql = format!("SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id = ?1 ORDER BY name");
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(&sql)?;
        let nodes = stmt.query_map([folder.0], node_from_row)?;
        Ok(nodes.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Bytes of content in `node` and everything below it.
    pub fn tree_size(&self, node: NodeId) -> Result<u64> {
        subtree_size(&self.db.reader(), node)
    }

    /// Creates a folder at `path`; its parent must exist.
    pub fn create_folder<S: AsRef<str>>(
        &self,
        space: SpaceId,
        path: &[S],
        actor: Option<UserId>,
    ) -> Result<Node> {
        let path = normalize_path(path)?;
        self.write(|tx| {
            let (parent, name) = resolve_parent(tx, space, &path)?;
            if child(tx, parent.id, &name)?.is_some() {
                return Err(StoreError::AlreadyExists {
                    path: display_path(&path),
                });
            }
            let change = next_change(tx)?;
            let now = Timestamp::now();
            let template = Node {
                id: NodeId(0),
                space,
                parent: Some(parent.id),
                name: name.clone(),
                is_dir: true,
                size: 0,
                content: None,
                modified: now,
                created: now,
                change,
            };
            let id = insert_node(tx, &template, parent.id, &name, change)?;
            touch_upwards(tx, parent.id, change)?;
            record(tx, space, id, actor, Action::Created, &path, None)?;
            Ok(Node { id, ..template })
        })
    }

    /// Starts an upload into `space`; write its bytes, then [`Store::commit_upload`].
    pub fn begin_upload(&self, space: SpaceId) -> Result<Upload> {
        let limit = self.space(space)?.quota;
        Ok(Upload::new(
            self.blobs.staging_dir().to_owned(),
            space.0,
            limit,
        ))
    }

    /// Makes an upload the content of the file at `path`, creating the file or keeping its
    /// previous content as a version. Either the whole new content is committed or nothing is.
    pub fn commit_upload<S: AsRef<str>>(
        &self,
        space: SpaceId,
        path: &[S],
        upload: Upload,
        options: CommitOptions,
    ) -> Result<Node> {
        let path = normalize_path(path)?;
        // From the moment the content is in the blob store until the commit refers to it,
        // the garbage collector must not run.
        let _collector_waits = self.collector.read();
        let (staged, inline) = self.make_durable(upload)?;
        self.write(|tx| {
            let (parent, name) = resolve_parent(tx, space, &path)?;
            let existing = child(tx, parent.id, &name)?;
            if existing.as_ref().is_some_and(|n| n.is_dir) {
                return Err(StoreError::WrongKind {
                    path: display_path(&path),
                });
            }
            let old_size = existing.as_ref().map_or(0, |n| n.size);
            let created = existing.is_none();
            let delta = staged.len as i64 - old_size as i64;
            check_quota(tx, space, delta)?;
            record_blob(
                tx,
                &staged.hash,
                &staged.sha1,
                staged.len,
                inline.as_deref(),
            )?;

            let change = next_change(tx)?;
            let modified = options.modified.unwrap_or_else(Timestamp::now);
            let node = match existing {
                Some(old) => replace_content(
                    tx,
                    old,
                    &staged.hash,
                    staged.len,
                    modified,
                    change,
                    options.author,
                )?,
                None => {
                    let template = Node {
                        id: NodeId(0),
                        space,
                        parent: Some(parent.id),
                        name: name.clone(),
                        is_dir: false,
                        size: staged.len,
                        content: Some(staged.hash.clone()),
                        modified,
                        created: Timestamp::now(),
                        change,
                    };
                    let id = insert_node(tx, &template, parent.id, &name, change)?;
                    Node { id, ..template }
                }
            };
            add_usage(tx, space, delta)?;
            touch_upwards(tx, parent.id, change)?;
            crate::search::index_text(self, tx, &node, inline.as_deref())?;
            let action = match (created, options.origin) {
                (true, _) => Action::Created,
                (false, crate::Origin::CoEditing) => Action::CoEdited,
                (false, crate::Origin::Client) => Action::Changed,
            };
            record(tx, space, node.id, options.author, action, &path, None)?;
            Ok(node)
        })
        .inspect(|node| {
            self.emit(crate::Event::ContentChanged {
                node: node.id,
                space,
                origin: options.origin,
                author: options.author,
            });
        })
    }

    /// Finishes an upload and makes a large content durable in the blob store; a small one
    /// is returned to go into the database with the commit that points to it.
    fn make_durable(&self, upload: Upload) -> Result<(Staged, Option<Vec<u8>>)> {
        let mut staged = upload.finish()?;
        let content = std::mem::replace(&mut staged.content, StagedContent::Inline(Vec::new()));
        let inline = match content {
            StagedContent::Inline(bytes) => Some(bytes),
            StagedContent::File(file) => {
                self.blobs.persist(file.path(), &staged.hash)?;
                file.persisted();
                None
            }
        };
        Ok((staged, inline))
    }

    /// Makes an upload the new content of the file `node`, wherever it now is, keeping its
    /// previous content as a version.
    pub fn commit_upload_to(
        &self,
        node: NodeId,
        upload: Upload,
        options: CommitOptions,
    ) -> Result<Node> {
        let _collector_waits = self.collector.read();
        let (staged, inline) = self.make_durable(upload)?;
        let node = self.write(|tx| {
            let old = node_by_id(tx, node)?
                .filter(|n| n.parent.is_some())
                .ok_or_else(|| StoreError::NotFound {
                    path: format!("file {node}"),
                })?;
            if old.is_dir {
                return Err(StoreError::WrongKind {
                    path: old.name.clone(),
                });
            }
            let (space, parent) = (old.space, old.parent);
            let delta = staged.len as i64 - old.size as i64;
            check_quota(tx, space, delta)?;
            record_blob(
                tx,
                &staged.hash,
                &staged.sha1,
                staged.len,
                inline.as_deref(),
            )?;
            let change = next_change(tx)?;
            let modified = options.modified.unwrap_or_else(Timestamp::now);
            let updated = replace_content(
                tx,
                old,
                &staged.hash,
                staged.len,
                modified,
                change,
                options.author,
            )?;
            add_usage(tx, space, delta)?;
            if let Some(parent) = parent {
                touch_upwards(tx, parent, change)?;
            }
            crate::search::index_text(self, tx, &updated, inline.as_deref())?;
            let action = match options.origin {
                crate::Origin::CoEditing => Action::CoEdited,
                crate::Origin::Client => Action::Changed,
            };
            let path = path_in(tx, updated.id)?;
            record(tx, space, updated.id, options.author, action, &path, None)?;
            Ok(updated)
        })?;
        self.emit(crate::Event::ContentChanged {
            node: node.id,
            space: node.space,
            origin: options.origin,
            author: options.author,
        });
        Ok(node)
    }

    /// Deletes the node at `path` and everything below it: they go to the space's trash,
    /// from which they can be restored until purged.
    pub fn remove<S: AsRef<str>>(
        &self,
        space: SpaceId,
        path: &[S],
        actor: Option<UserId>,
    ) -> Result<()> {
        let path = normalize_path(path)?;
        self.write(|tx| {
            let node = resolve(tx, space, &path)?;
            let Some(parent) = node.parent else {
                return Err(StoreError::WrongKind { path: "/".into() });
            };
            let removed = subtree(tx, node.id)?;
            crate::trash::trash_subtree(tx, &node, &path)?;
            record(tx, space, node.id, actor, Action::Deleted, &path, None)?;
            let change = next_change(tx)?;
            crate::sync::record_departure(tx, space, parent, &node.name, change)?;
            touch_upwards(tx, parent, change)?;
            Ok(removed)
        })
        .map(|nodes| self.emit(crate::Event::Removed { nodes }))
    }

    /// Moves or renames `from` to `to`. The node keeps its id. With `overwrite`, whatever
    /// is at `to` is deleted first; without, an occupied `to` is an error.
    pub fn move_node<S: AsRef<str>>(
        &self,
        space: SpaceId,
        from: &[S],
        to: &[S],
        overwrite: bool,
        actor: Option<UserId>,
    ) -> Result<Node> {
        let (from, to) = (normalize_path(from)?, normalize_path(to)?);
        let (moved, removed) = self.write(|tx| {
            let Placement {
                node,
                parent,
                name,
                removed,
            } = place(tx, space, &from, &to, overwrite)?;
            let old_parent = node
                .parent
                .ok_or(StoreError::WrongKind { path: "/".into() })?;
            // The node keeps its ETag: sync clients recognise a move by an unchanged id and
            // ETag at a new place. Only the folders on both sides change.
            let change = next_change(tx)?;
            tx.prepare_cached("UPDATE nodes SET parent_id = ?2, name = ?3 WHERE id = ?1")?
                .execute(params![node.id.0, parent.id.0, name])?;
            crate::search::index_name(tx, node.id, &name)?;
            let action = if node.parent == Some(parent.id) {
                Action::Renamed
            } else {
                Action::Moved
            };
            record(tx, space, node.id, actor, action, &to, Some(&from))?;
            crate::sync::record_departure(tx, space, old_parent, &node.name, change)?;
            crate::sync::record_arrival(tx, space, node.id, change)?;
            touch_upwards(tx, old_parent, change)?;
            touch_upwards(tx, parent.id, change)?;
            let moved = node_by_id(tx, node.id)?.ok_or_else(|| StoreError::not_found(&to))?;
            Ok((moved, removed))
        })?;
        self.emit_removed(removed);
        Ok(moved)
    }

    /// Copies `from` (and its subtree) to `to`, sharing contents and copying properties.
    pub fn copy_node<S: AsRef<str>>(
        &self,
        space: SpaceId,
        from: &[S],
        to: &[S],
        overwrite: bool,
        actor: Option<UserId>,
    ) -> Result<Node> {
        let (from, to) = (normalize_path(from)?, normalize_path(to)?);
        let (copy, removed) = self.write(|tx| {
            let Placement {
                node,
                parent,
                name,
                removed,
            } = place(tx, space, &from, &to, overwrite)?;
            let size = subtree_size(tx, node.id)?;
            check_quota(tx, space, i64::try_from(size).unwrap_or(i64::MAX))?;
            let change = next_change(tx)?;
            let copy = copy_subtree(tx, &node, parent.id, &name, change)?;
            record(tx, space, copy, actor, Action::Copied, &to, Some(&from))?;
            add_usage(tx, space, i64::try_from(size).unwrap_or(i64::MAX))?;
            touch_upwards(tx, parent.id, change)?;
            let copy = node_by_id(tx, copy)?.ok_or_else(|| StoreError::not_found(&to))?;
            Ok((copy, removed))
        })?;
        self.emit_removed(removed);
        Ok(copy)
    }

    fn emit_removed(&self, nodes: Vec<NodeId>) {
        if !nodes.is_empty() {
            self.emit(crate::Event::Removed { nodes });
        }
    }

    /// Sets a node's modification time, as clients do after writing a file.
    pub fn set_modified(&self, node: NodeId, modified: Timestamp) -> Result<()> {
        self.write(|tx| {
            let change = next_change(tx)?;
            tx.prepare_cached("UPDATE nodes SET mtime_ns = ?2, change_seq = ?3 WHERE id = ?1")?
                .execute(params![node.0, modified.0, change])?;
            touch_upwards(tx, node, change)
        })
    }
}

/// Where a move or copy goes, and what it overwrote there.
struct Placement {
    node: Node,
    parent: Node,
    name: String,
    removed: Vec<NodeId>,
}

/// Resolves the source of a move or copy and the folder and name it goes to, refusing a
/// folder into itself and clearing (or refusing) an occupied destination.
fn place(
    tx: &Transaction<'_>,
    space: SpaceId,
    from: &[String],
    to: &[String],
    overwrite: bool,
) -> Result<Placement> {
    let node = resolve(tx, space, from)?;
    let (parent, name) = resolve_parent(tx, space, to)?;
    if is_inside(tx, parent.id, node.id)? {
        return Err(StoreError::IntoItself {
            path: display_path(from),
        });
    }
    let removed = clear_destination(tx, parent.id, &name, overwrite, to)?;
    Ok(Placement {
        node,
        parent,
        name,
        removed,
    })
}

fn clear_destination(
    tx: &Transaction<'_>,
    parent: NodeId,
    name: &str,
    overwrite: bool,
    to: &[String],
) -> Result<Vec<NodeId>> {
    let Some(occupant) = child(tx, parent, name)? else {
        return Ok(Vec::new());
    };
    if !overwrite {
        return Err(StoreError::AlreadyExists {
            path: display_path(to),
        });
    }
    let removed = subtree(tx, occupant.id)?;
    crate::trash::trash_subtree(tx, &occupant, to)?;
    let change = next_change(tx)?;
    crate::sync::record_departure(tx, occupant.space, parent, name, change)?;
    Ok(removed)
}

fn record_blob(
    tx: &Transaction<'_>,
    hash: &ContentHash,
    sha1: &str,
    len: u64,
    inline: Option<&[u8]>,
) -> Result<()> {
    // A content stored before SHA-1s were kept gets its SHA-1 when it arrives again; a
    // content the garbage collector had marked is wanted again.
    let mut stmt = tx.prepare_cached(
        "INSERT INTO blobs (hash, size, data, sha1) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (hash) DO UPDATE
         SET sha1 = COALESCE(blobs.sha1, excluded.sha1), orphaned_ns = NULL",
    )?;
    stmt.execute(params![
        hash.as_str(),
        i64::try_from(len).unwrap_or(i64::MAX),
        inline,
        sha1
    ])?;
    Ok(())
}

pub(crate) fn replace_content(
    tx: &Transaction<'_>,
    old: Node,
    hash: &ContentHash,
    len: u64,
    modified: Timestamp,
    change: i64,
    author: Option<UserId>,
) -> Result<Node> {
    if let Some(previous) = &old.content {
        tx.prepare_cached(
            "INSERT INTO versions (node_id, content_hash, size, mtime_ns, replaced_ns, author_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            old.id.0,
            previous.as_str(),
            i64::try_from(old.size).unwrap_or(i64::MAX),
            old.modified.0,
            Timestamp::now().0,
            author.map(|a| a.0),
        ])?;
    }
    tx.prepare_cached(
        "UPDATE nodes SET size = ?2, content_hash = ?3, mtime_ns = ?4, change_seq = ?5
         WHERE id = ?1",
    )?
    .execute(params![
        old.id.0,
        i64::try_from(len).unwrap_or(i64::MAX),
        hash.as_str(),
        modified.0,
        change
    ])?;
    Ok(Node {
        size: len,
        content: Some(hash.clone()),
        modified,
        change,
        ..old
    })
}

fn copy_subtree(
    tx: &Transaction<'_>,
    source: &Node,
    parent: NodeId,
    name: &str,
    change: i64,
) -> Result<NodeId> {
    let copy = insert_node(tx, source, parent, name, change)?;
    crate::search::copy_index(tx, source.id, copy)?;
    tx.prepare_cached(
        "INSERT INTO dead_props (node_id, namespace, name, xml)
         SELECT ?2, namespace, name, xml FROM dead_props WHERE node_id = ?1",
    )?
    .execute(params![source.id.0, copy.0])?;
    if source.is_dir {
        let sql = format!("SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id = ?1");
        let children = {
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = stmt.query_map([source.id.0], node_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        for child in children {
            copy_subtree(tx, &child, copy, &child.name, change)?;
        }
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::testing::{put, store_with_user};

    fn read(store: &Store, node: &Node) -> Vec<u8> {
        let mut content = Vec::new();
        store
            .open_content(node)
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        content
    }

    #[test]
    fn a_file_keeps_its_id_across_renames_and_moves() {
        let (_dir, store, user) = store_with_user(None);
        store.create_folder(user.space, &["a"], None).unwrap();
        store.create_folder(user.space, &["b"], None).unwrap();
        let file = put(&store, &user, &["a", "x.txt"], b"hello").unwrap();
        let moved = store
            .move_node(user.space, &["a", "x.txt"], &["b", "y.txt"], false, None)
            .unwrap();
        assert_eq!(moved.id, file.id);
        assert_eq!(read(&store, &moved), b"hello");
        assert!(store.lookup(user.space, &["a", "x.txt"]).is_err());
    }

    #[test]
    fn a_change_deep_down_moves_every_folder_etag_above_it() {
        let (_dir, store, user) = store_with_user(None);
        store.create_folder(user.space, &["a"], None).unwrap();
        store.create_folder(user.space, &["a", "b"], None).unwrap();
        let root_before = store.lookup::<&str>(user.space, &[]).unwrap().etag();
        let a_before = store.lookup(user.space, &["a"]).unwrap().etag();
        put(&store, &user, &["a", "b", "f"], b"x").unwrap();
        assert_ne!(
            store.lookup::<&str>(user.space, &[]).unwrap().etag(),
            root_before
        );
        assert_ne!(store.lookup(user.space, &["a"]).unwrap().etag(), a_before);
    }

    #[test]
    fn an_overwrite_keeps_the_previous_content_as_a_version() {
        let (_dir, store, user) = store_with_user(None);
        put(&store, &user, &["f"], b"one").unwrap();
        let node = put(&store, &user, &["f"], b"two").unwrap();
        assert_eq!(read(&store, &node), b"two");
        let versions: i64 = store
            .db
            .reader()
            .query_row(
                "SELECT COUNT(*) FROM versions WHERE node_id = ?1",
                [node.id.0],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(versions, 1);
    }

    #[test]
    fn a_write_past_the_quota_changes_nothing() {
        let (_dir, store, user) = store_with_user(Some(100));
        put(&store, &user, &["f"], &[1; 60]).unwrap();
        let refused = put(&store, &user, &["f2"], &[2; 60]);
        assert!(matches!(refused, Err(StoreError::QuotaExceeded { .. })));
        assert!(store.lookup(user.space, &["f2"]).is_err());
        assert_eq!(store.space(user.space).unwrap().used, 60);
        // Replacing the file by a smaller one fits.
        put(&store, &user, &["f"], &[3; 90]).unwrap();
        assert_eq!(store.space(user.space).unwrap().used, 90);
    }

    #[test]
    fn large_contents_go_to_blob_files_and_identical_ones_are_stored_once() {
        let (dir, store, user) = store_with_user(None);
        let big = vec![7u8; crate::INLINE_MAX + 1];
        let first = put(&store, &user, &["a"], &big).unwrap();
        let second = put(&store, &user, &["b"], &big).unwrap();
        assert_eq!(first.content, second.content);
        assert_eq!(read(&store, &second), big);
        let blob_files = walk_files(&dir.path().join("blobs"));
        assert_eq!(blob_files, 1);
        assert_eq!(walk_files(&dir.path().join("tmp")), 0);
    }

    fn walk_files(dir: &std::path::Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk_files(&e.path())
                } else {
                    1
                }
            })
            .sum()
    }

    #[test]
    fn an_abandoned_upload_leaves_no_file_and_the_old_content() {
        let (dir, store, user) = store_with_user(None);
        put(&store, &user, &["f"], b"old").unwrap();
        let mut upload = store.begin_upload(user.space).unwrap();
        upload.write(&vec![1u8; crate::INLINE_MAX * 2]).unwrap();
        drop(upload);
        assert_eq!(walk_files(&dir.path().join("tmp")), 0);
        let node = store.lookup(user.space, &["f"]).unwrap();
        assert_eq!(read(&store, &node), b"old");
    }

    #[test]
    fn nfd_names_find_their_nfc_file() {
        let (_dir, store, user) = store_with_user(None);
        put(&store, &user, &["\u{e9}t\u{e9}.txt"], b"x").unwrap();
        assert!(store.lookup(user.space, &["e\u{301}te\u{301}.txt"]).is_ok());
    }

    #[test]
    fn a_moved_file_keeps_its_etag_and_its_folders_change_theirs() {
        let (_dir, store, user) = store_with_user(None);
        store.create_folder(user.space, &["a"], None).unwrap();
        let file = put(&store, &user, &["a", "f"], b"x").unwrap();
        let folder_before = store.lookup(user.space, &["a"]).unwrap().etag();
        let moved = store
            .move_node(user.space, &["a", "f"], &["g"], false, None)
            .unwrap();
        assert_eq!(moved.etag(), file.etag());
        assert_ne!(
            store.lookup(user.space, &["a"]).unwrap().etag(),
            folder_before
        );
    }

    #[test]
    fn a_folder_cannot_move_into_itself() {
        let (_dir, store, user) = store_with_user(None);
        store.create_folder(user.space, &["a"], None).unwrap();
        store.create_folder(user.space, &["a", "b"], None).unwrap();
        let refused = store.move_node(user.space, &["a"], &["a", "b", "c"], false, None);
        assert!(matches!(refused, Err(StoreError::IntoItself { .. })));
    }

    #[test]
    fn copies_share_content_and_count_against_the_quota() {
        let (_dir, store, user) = store_with_user(None);
        store.create_folder(user.space, &["a"], None).unwrap();
        put(&store, &user, &["a", "f"], b"12345").unwrap();
        let copy = store
            .copy_node(user.space, &["a"], &["b"], false, None)
            .unwrap();
        assert!(copy.is_dir);
        let file = store.lookup(user.space, &["b", "f"]).unwrap();
        assert_eq!(read(&store, &file), b"12345");
        assert_eq!(store.space(user.space).unwrap().used, 10);
        store.remove(user.space, &["a"], None).unwrap();
        // Still stored, in the trash, until purged.
        assert_eq!(store.space(user.space).unwrap().used, 10);
        store.empty_trash(user.space, None).unwrap();
        assert_eq!(store.space(user.space).unwrap().used, 5);
    }
}
