//! Checking a stopped data folder, and repairing what can be repaired without guessing.
//!
//! The checks: every file's content exists with the right size and SHA-256; every node is
//! reachable from its space's root or from a trashed item (no orphan, no cycle) and in the
//! same space as its parent; every space's usage equals the sum of its files; no upload was left half-done in
//! `tmp/`; no blob file is unknown to the database.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags};
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// One problem found, in words an administrator understands.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What is wrong.
    pub problem: String,
    /// Whether `--repair` fixed it.
    pub repaired: bool,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct FsckReport {
    /// Problems, in the order found.
    pub findings: Vec<Finding>,
    /// Nodes checked.
    pub nodes: u64,
    /// Distinct contents checked.
    pub contents: u64,
}

impl FsckReport {
    /// Whether nothing is wrong (or everything found was repaired).
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.repaired)
    }

    fn found(&mut self, problem: String, repaired: bool) {
        self.findings.push(Finding { problem, repaired });
    }
}

/// Progress callback: contents hashed so far, out of how many.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

struct NodeRow {
    space: i64,
    parent: Option<i64>,
    name: String,
    is_dir: bool,
    size: i64,
    hash: Option<String>,
}

/// Checks the data folder `dir`, which no server may be using; with `repair`, fixes usage
/// totals, removes leftover uploads and unknown blob files, and moves unreachable nodes to
/// a `lost+found` folder of their space.
pub fn fsck(dir: &Path, repair: bool, progress: Progress<'_>) -> Result<FsckReport> {
    let db_path = dir.join("ruche.db");
    if !db_path.is_file() {
        return Err(StoreError::NotFound {
            path: db_path.display().to_string(),
        });
    }
    let conn = Connection::open_with_flags(&db_path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let mut report = FsckReport::default();
    let nodes = load_nodes(&conn)?;
    report.nodes = nodes.len() as u64;

    check_contents(&conn, dir, &nodes, &mut report, progress)?;
    check_tree(&conn, &nodes, repair, &mut report)?;
    check_usage(&conn, repair, &mut report)?;
    check_leftovers(&conn, dir, repair, &mut report)?;
    Ok(report)
}

fn load_nodes(conn: &Connection) -> Result<HashMap<i64, NodeRow>> {
    let mut stmt = conn
        .prepare("SELECT id, space_id, parent_id, name, is_dir, size, content_hash FROM nodes")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            NodeRow {
                space: r.get(1)?,
                parent: r.get(2)?,
                name: r.get(3)?,
                is_dir: r.get(4)?,
                size: r.get(5)?,
                hash: r.get(6)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<HashMap<_, _>>>()?)
}

fn blob_path(dir: &Path, hash: &str) -> PathBuf {
    let prefix = |range: std::ops::Range<usize>| hash.get(range).unwrap_or("00").to_owned();
    dir.join("blobs")
        .join(prefix(0..2))
        .join(prefix(2..4))
        .join(hash)
}

/// The size and SHA-256 of a stored content, or why it cannot be read.
fn measure(
    conn: &Connection,
    dir: &Path,
    hash: &str,
) -> std::result::Result<(u64, String), String> {
    let row: Option<(i64, Option<Vec<u8>>)> = conn
        .query_row(
            "SELECT size, data FROM blobs WHERE hash = ?1",
            [hash],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| e.to_string())
        .ok();
    let Some((recorded, data)) = row else {
        return Err("is not recorded in the database".into());
    };
    let (len, digest) = match data {
        Some(bytes) => (bytes.len() as u64, hex::encode(Sha256::digest(&bytes))),
        None => hash_file(&blob_path(dir, hash))?,
    };
    if len != recorded.unsigned_abs() {
        return Err(format!(
            "has {len} bytes where the database records {recorded}"
        ));
    }
    Ok((len, digest))
}

fn hash_file(path: &Path) -> std::result::Result<(u64, String), String> {
    let mut file = fs::File::open(path).map_err(|e| format!("cannot be opened ({e})"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot be read ({e})"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hex::encode(hasher.finalize())))
}

fn check_contents(
    conn: &Connection,
    dir: &Path,
    nodes: &HashMap<i64, NodeRow>,
    report: &mut FsckReport,
    progress: Progress<'_>,
) -> Result<()> {
    let mut referenced: HashMap<String, Vec<String>> = HashMap::new();
    for (id, node) in nodes {
        match (&node.hash, node.is_dir) {
            (Some(hash), false) => referenced
                .entry(hash.clone())
                .or_default()
                .push(format!("file {id} ({:?})", node.name)),
            (None, false) => {
                report.found(format!("file {id} ({:?}) has no content", node.name), false)
            }
            (Some(_), true) => report.found(
                format!("folder {id} ({:?}) has a content", node.name),
                false,
            ),
            (None, true) => {}
        }
    }
    let mut stmt = conn.prepare("SELECT node_id, content_hash FROM versions")?;
    let versions = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    for version in versions {
        let (node, hash) = version?;
        referenced
            .entry(hash)
            .or_default()
            .push(format!("a version of file {node}"));
    }

    let total = referenced.len() as u64;
    let mut sizes: HashMap<String, u64> = HashMap::new();
    for (done, (hash, users)) in referenced.iter().enumerate() {
        progress(done as u64, total);
        match measure(conn, dir, hash) {
            Ok((_, digest)) if digest != *hash => report.found(
                format!(
                    "content {hash} of {} is corrupt: its SHA-256 is {digest}",
                    users[0]
                ),
                false,
            ),
            Ok((len, _)) => {
                sizes.insert(hash.clone(), len);
            }
            Err(why) => report.found(format!("content {hash} of {} {why}", users[0]), false),
        }
    }
    progress(total, total);
    report.contents = total;
    for (id, node) in nodes {
        let recorded = node.hash.as_ref().and_then(|h| sizes.get(h));
        if let Some(len) = recorded.filter(|len| **len != node.size.unsigned_abs()) {
            report.found(
                format!(
                    "file {id} ({:?}) says {} bytes but its content has {len}",
                    node.name, node.size
                ),
                false,
            );
        }
    }
    Ok(())
}

fn check_tree(
    conn: &Connection,
    nodes: &HashMap<i64, NodeRow>,
    repair: bool,
    report: &mut FsckReport,
) -> Result<()> {
    let mut stmt = conn.prepare("SELECT id, root_id FROM spaces")?;
    let roots = stmt
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    for (id, node) in nodes {
        if let Some(parent) = node.parent {
            children.entry(parent).or_default().push(*id);
            let parent_space = nodes.get(&parent).map(|p| p.space);
            if parent_space.is_some_and(|s| s != node.space) {
                report.found(
                    format!(
                        "node {id} ({:?}) is in another space than its folder",
                        node.name
                    ),
                    false,
                );
            }
        }
    }
    let mut reachable = HashSet::new();
    // What the trash holds hangs from no folder, but from its deletion record.
    let trashed: Vec<i64> = conn
        .prepare("SELECT id FROM nodes WHERE trashed_ns IS NOT NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for top in trashed {
        let mut stack = vec![top];
        while let Some(id) = stack.pop() {
            if reachable.insert(id) {
                stack.extend(children.get(&id).into_iter().flatten());
            }
        }
    }
    for (space, root) in &roots {
        let Some(root) = root.filter(|r| nodes.contains_key(r)) else {
            report.found(format!("space {space} has no root folder"), false);
            continue;
        };
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            if reachable.insert(id) {
                stack.extend(children.get(&id).into_iter().flatten());
            }
        }
    }
    let mut lost: Vec<i64> = nodes
        .keys()
        .filter(|id| !reachable.contains(id))
        .copied()
        .collect();
    lost.sort_unstable();
    // Only the topmost unreachable nodes are reported and moved; what is below follows.
    let is_top = |id: &i64| match nodes[id].parent {
        None => true,
        Some(parent) => !nodes.contains_key(&parent) || is_cycle_entry(nodes, *id),
    };
    for id in lost.iter().filter(|id| is_top(id)) {
        let repaired = repair && adopt(conn, nodes, &roots, *id).is_ok();
        let outcome = if repaired {
            "; moved to lost+found"
        } else {
            ""
        };
        report.found(
            format!(
                "node {id} ({:?}) and what is below it cannot be reached from its space's root{outcome}",
                nodes[id].name
            ),
            repaired,
        );
    }
    Ok(())
}

/// Whether walking up from `id` comes back to `id` (it sits on a cycle).
fn is_cycle_entry(nodes: &HashMap<i64, NodeRow>, id: i64) -> bool {
    let mut current = nodes.get(&id).and_then(|n| n.parent);
    for _ in 0..nodes.len() {
        match current {
            Some(p) if p == id => return true,
            Some(p) => current = nodes.get(&p).and_then(|n| n.parent),
            None => return false,
        }
    }
    false
}

/// Moves an unreachable node under `lost+found` at the root of its space.
fn adopt(
    conn: &Connection,
    nodes: &HashMap<i64, NodeRow>,
    roots: &[(i64, Option<i64>)],
    id: i64,
) -> Result<()> {
    let node = &nodes[&id];
    let root = roots
        .iter()
        .find(|(space, _)| *space == node.space)
        .and_then(|(_, root)| *root)
        .ok_or_else(|| StoreError::Corrupt(format!("space {} has no root", node.space)))?;
    let now = crate::Timestamp::now().0;
    conn.execute(
        "INSERT INTO nodes (space_id, parent_id, name, is_dir, mtime_ns, created_ns, change_seq)
         SELECT ?1, ?2, 'lost+found', 1, ?3, ?3, 0
         WHERE NOT EXISTS (SELECT 1 FROM nodes WHERE parent_id = ?2 AND name = 'lost+found')",
        params![node.space, root, now],
    )?;
    let folder: i64 = conn.query_row(
        "SELECT id FROM nodes WHERE parent_id = ?1 AND name = 'lost+found'",
        [root],
        |r| r.get(0),
    )?;
    let name = format!("{id}-{}", node.name);
    conn.execute(
        "UPDATE nodes SET parent_id = ?2, name = ?3 WHERE id = ?1",
        params![id, folder, name],
    )?;
    Ok(())
}

fn check_usage(conn: &Connection, repair: bool, report: &mut FsckReport) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT spaces.id, spaces.used_bytes,
                (SELECT COALESCE(SUM(size), 0) FROM nodes
                 WHERE nodes.space_id = spaces.id AND nodes.is_dir = 0)
         FROM spaces",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (space, recorded, actual) in rows.into_iter().filter(|(_, a, b)| a != b) {
        if repair {
            conn.execute(
                "UPDATE spaces SET used_bytes = ?2 WHERE id = ?1",
                params![space, actual],
            )?;
        }
        report.found(
            format!("space {space} counts {recorded} bytes used but its files hold {actual}"),
            repair,
        );
    }
    Ok(())
}

fn check_leftovers(
    conn: &Connection,
    dir: &Path,
    repair: bool,
    report: &mut FsckReport,
) -> Result<()> {
    let tmp = dir.join("tmp");
    for entry in fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let path = entry.path();
        let repaired = repair && fs::remove_file(&path).is_ok();
        report.found(
            format!("unfinished upload left in {}", path.display()),
            repaired,
        );
    }
    let mut known = conn.prepare("SELECT EXISTS (SELECT 1 FROM blobs WHERE hash = ?1)")?;
    for path in blob_files(&dir.join("blobs")) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        let recorded: bool = known.query_row([&name], |r| r.get(0))?;
        if !recorded {
            let repaired = repair && fs::remove_file(&path).is_ok();
            report.found(
                format!(
                    "content file {} is not known to the database",
                    path.display()
                ),
                repaired,
            );
        }
    }
    Ok(())
}

fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        for entry in fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommitOptions, Store, StoreConfig};

    fn populated() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            data_dir: dir.path().to_owned(),
            default_quota: None,
        })
        .unwrap();
        let user = store.create_user("alice", "hash", false).unwrap();
        store.create_folder(user.space, &["docs"], None).unwrap();
        let mut upload = store.begin_upload(user.space).unwrap();
        upload.write(&vec![1u8; crate::INLINE_MAX * 2]).unwrap();
        let node = store
            .commit_upload(
                user.space,
                &["docs", "big"],
                upload,
                CommitOptions::default(),
            )
            .unwrap();
        let hash = node.content.unwrap().as_str().to_owned();
        (dir, hash)
    }

    fn check(dir: &Path, repair: bool) -> FsckReport {
        fsck(dir, repair, &mut |_, _| {}).unwrap()
    }

    #[test]
    fn a_healthy_store_is_clean() {
        let (dir, _) = populated();
        let report = check(dir.path(), false);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!(report.contents, 1);
    }

    #[test]
    fn a_damaged_content_is_reported() {
        let (dir, hash) = populated();
        fs::write(blob_path(dir.path(), &hash), b"tampered").unwrap();
        let report = check(dir.path(), true);
        assert!(!report.is_clean());
        assert!(
            report.findings[0].problem.contains(&hash),
            "{:?}",
            report.findings
        );
    }

    #[test]
    fn leftovers_and_wrong_totals_are_repaired() {
        let (dir, _) = populated();
        fs::write(dir.path().join("tmp").join("upload-1"), b"half").unwrap();
        let conn = Connection::open(dir.path().join("ruche.db")).unwrap();
        conn.execute("UPDATE spaces SET used_bytes = 3", [])
            .unwrap();
        drop(conn);
        let report = check(dir.path(), true);
        assert_eq!(report.findings.len(), 2, "{:?}", report.findings);
        assert!(report.is_clean());
        assert!(check(dir.path(), false).findings.is_empty());
    }

    #[test]
    fn an_unreachable_folder_goes_to_lost_and_found() {
        let (dir, _) = populated();
        let conn = Connection::open(dir.path().join("ruche.db")).unwrap();
        // A cycle: the folder becomes its own parent, cut off from the root.
        conn.execute("UPDATE nodes SET parent_id = id WHERE name = 'docs'", [])
            .unwrap();
        drop(conn);
        let report = check(dir.path(), true);
        assert!(report.is_clean(), "{:?}", report.findings);
        assert!(report.findings[0].problem.contains("lost+found"));
        assert!(check(dir.path(), false).findings.is_empty());
    }
}
