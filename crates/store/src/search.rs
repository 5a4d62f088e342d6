//! Search within a space: by name (a substring, whatever the case and the accents: "etat"
//! finds "État") and by the words of text files (SQLite FTS5).
//!
//! The index is written in the same transactions as the tree: a name with its node, the
//! words of a text file with its content, so a result is never older than the tree.

use std::io::Read;

use rusqlite::{params, Connection, Transaction};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::blob::ContentHash;
use crate::model::{Node, NodeId, SpaceId};
use crate::tree::{node_by_id, node_from_row, NODE_COLUMNS};
use crate::{Result, Store};

/// Text files larger than this are found by name only.
const MAX_INDEXED_BYTES: u64 = 1024 * 1024;

/// Names whose content is indexed: the text formats people write in.
const TEXT_EXTENSIONS: &[&str] = &[
    "txt", "md", "markdown", "csv", "tsv", "json", "xml", "html", "htm", "yaml", "yml", "toml",
    "ini", "log", "rst", "adoc", "tex", "org",
];

/// How a result matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Its name holds the query.
    Name,
    /// Its text holds the query's words.
    Text,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The file or folder.
    pub node: Node,
    /// Its path in the space.
    pub path: Vec<String>,
    /// How it matched.
    pub matched: Match,
}

/// Lower case, without accents or other combining marks.
pub(crate) fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_text_name(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| TEXT_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// Records the name of a node created or renamed.
pub(crate) fn index_name(tx: &Transaction<'_>, node: NodeId, name: &str) -> Result<()> {
    tx.prepare_cached("INSERT OR REPLACE INTO search_names (node_id, folded) VALUES (?1, ?2)")?
        .execute(params![node.0, fold(name)])?;
    Ok(())
}

/// Forgets the words of a node (deleted, or no longer text).
pub(crate) fn forget_text(tx: &Transaction<'_>, node: NodeId) -> Result<()> {
    tx.prepare_cached("DELETE FROM search_text WHERE rowid = ?1")?
        .execute([node.0])?;
    Ok(())
}

/// Indexes the words of `node`'s content, `inline` when the caller has it at hand.
pub(crate) fn index_text(
    store: &Store,
    tx: &Transaction<'_>,
    node: &Node,
    inline: Option<&[u8]>,
) -> Result<()> {
    forget_text(tx, node.id)?;
    if !is_text_name(&node.name) || node.size > MAX_INDEXED_BYTES {
        return Ok(());
    }
    let bytes = match (inline, &node.content) {
        (Some(bytes), _) => bytes.to_vec(),
        (None, Some(hash)) => read_stored(store, tx, hash)?,
        (None, None) => return Ok(()),
    };
    if let Ok(text) = std::str::from_utf8(&bytes) {
        tx.prepare_cached("INSERT INTO search_text (rowid, body) VALUES (?1, ?2)")?
            .execute(params![node.id.0, text])?;
    }
    Ok(())
}

fn read_stored(store: &Store, conn: &Connection, hash: &ContentHash) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    store
        .open_stored(conn, hash)?
        .read_to_end(&mut bytes)
        .map_err(|e| crate::StoreError::io(store.data_dir(), e))?;
    Ok(bytes)
}

/// Copies the index rows of a copied node.
pub(crate) fn copy_index(tx: &Transaction<'_>, from: NodeId, to: NodeId) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO search_text (rowid, body) SELECT ?2, body FROM search_text WHERE rowid = ?1",
    )?
    .execute(params![from.0, to.0])?;
    Ok(())
}

/// Names the index lacks (nodes made before it existed), filled in at open.
pub(crate) fn fill_missing_names(tx: &Transaction<'_>) -> Result<usize> {
    let missing: Vec<(i64, String)> = {
        let mut stmt = tx.prepare(
            "SELECT id, name FROM nodes
             WHERE NOT EXISTS (SELECT 1 FROM search_names WHERE node_id = nodes.id)",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, name) in &missing {
        index_name(tx, NodeId(*id), name)?;
    }
    Ok(missing.len())
}

/// The words of `query` as an FTS5 query: each one quoted, all required.
fn text_query(query: &str) -> Option<String> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

impl Store {
    /// Files and folders of `space` whose name holds `query`, then text files whose words
    /// hold all of its words; at most `limit` of each. Trashed items are never found.
    pub fn search(&self, space: SpaceId, query: &str, limit: usize) -> Result<Vec<Found>> {
        let folded = fold(query.trim());
        if folded.is_empty() {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.db.reader();
        let mut found = Vec::new();
        let pattern = format!(
            "%{}%",
            folded
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let sql = format!(
            "SELECT {NODE_COLUMNS} FROM nodes JOIN search_names ON search_names.node_id = nodes.id
             WHERE nodes.space_id = ?1 AND nodes.parent_id IS NOT NULL
               AND search_names.folded LIKE ?2 ESCAPE '\\'
             ORDER BY nodes.name LIMIT ?3"
        );
        let by_name: Vec<Node> = {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![space.0, pattern, limit], node_from_row)?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for node in by_name {
            found.push((node, Match::Name));
        }
        if let Some(words) = text_query(query) {
            let ids: Vec<i64> = {
                let mut stmt = conn.prepare_cached(
                    "SELECT rowid FROM search_text WHERE search_text MATCH ?1
                     ORDER BY rank LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![words, limit], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for id in ids {
                if found.iter().any(|(n, _)| n.id.0 == id) {
                    continue;
                }
                if let Some(node) = node_by_id(&conn, NodeId(id))?.filter(|n| n.space == space) {
                    found.push((node, Match::Text));
                }
            }
        }
        drop(conn);
        let mut results = Vec::new();
        for (node, matched) in found {
            // Inside a trashed folder, a node still has a parent but no path from the root.
            if crate::trash::is_trashed(&self.db.reader(), node.id)? {
                continue;
            }
            let path = self.path_of(node.id)?;
            results.push(Found {
                node,
                path,
                matched,
            });
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::put;
    use crate::StoreConfig;

    fn names(found: &[Found]) -> Vec<(String, Match)> {
        found
            .iter()
            .map(|f| (f.path.join("/"), f.matched))
            .collect()
    }

    #[test]
    fn names_match_without_case_or_accents_and_text_by_its_words() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            data_dir: dir.path().to_owned(),
            default_quota: None,
        })
        .unwrap();
        let alice = store.create_user("alice", "hash", false).unwrap();
        let bob = store.create_user("bob", "hash", false).unwrap();
        store
            .create_folder(alice.space, &["Rapports"], None)
            .unwrap();
        put(
            &store,
            &alice,
            &["Rapports", "État des lieux.md"],
            b"Inventaire du mobilier",
        )
        .unwrap();
        put(
            &store,
            &alice,
            &["notes.txt"],
            "Réunion sur l'état du bâtiment".as_bytes(),
        )
        .unwrap();
        put(&store, &alice, &["photo.jpg"], "état".as_bytes()).unwrap();
        put(&store, &bob, &["etat-bob.md"], b"etat").unwrap();

        let found = store.search(alice.space, "etat", 50).unwrap();
        assert_eq!(
            names(&found),
            [
                ("Rapports/État des lieux.md".to_owned(), Match::Name),
                ("notes.txt".to_owned(), Match::Text),
            ]
        );
        let found = store.search(alice.space, "BATIMENT reunion", 50).unwrap();
        assert_eq!(names(&found), [("notes.txt".to_owned(), Match::Text)]);

        // Renamed, copied, overwritten, deleted: the index follows.
        store
            .move_node(
                alice.space,
                &["notes.txt"],
                &["compte-rendu.txt"],
                false,
                None,
            )
            .unwrap();
        store
            .copy_node(
                alice.space,
                &["compte-rendu.txt"],
                &["copie.txt"],
                false,
                None,
            )
            .unwrap();
        let found = store.search(alice.space, "bâtiment", 50).unwrap();
        assert_eq!(found.len(), 2);
        put(&store, &alice, &["copie.txt"], b"autre chose").unwrap();
        store.remove(alice.space, &["Rapports"], None).unwrap();
        let found = store.search(alice.space, "mobilier lieux", 50).unwrap();
        assert!(found.is_empty(), "{:?}", names(&found));
        assert_eq!(
            names(&store.search(alice.space, "batiment", 50).unwrap()),
            [("compte-rendu.txt".to_owned(), Match::Text)]
        );
        assert!(store.search(alice.space, "%", 50).unwrap().is_empty());
    }
}
