//! Storage of live documents for the co-editing service: a snapshot and the updates that
//! followed it, per file. The store keeps bytes only; what they mean is the co-editing
//! service's business.

use rusqlite::{params, OptionalExtension};

use crate::model::NodeId;
use crate::{Result, Store};

/// A stored document: its snapshot, if any, and the updates after it, oldest first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// The latest snapshot.
    pub snapshot: Option<Vec<u8>>,
    /// Updates received after the snapshot, with their sequence numbers.
    pub updates: Vec<(i64, Vec<u8>)>,
}

impl StoredDocument {
    /// Whether nothing was ever stored for the document.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.updates.is_empty()
    }

    /// Bytes stored in all.
    pub fn stored_bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, Vec::len)
            + self.updates.iter().map(|(_, u)| u.len()).sum::<usize>()
    }
}

impl Store {
    /// Loads the stored state of the document of `node`.
    pub fn load_document(&self, node: NodeId) -> Result<StoredDocument> {
        let conn = self.db.reader();
        let snapshot: Option<Vec<u8>> = conn
            .prepare_cached("SELECT state FROM document_snapshots WHERE node_id = ?1")?
            .query_row([node.0], |r| r.get(0))
            .optional()?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, data FROM document_updates WHERE node_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([node.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(StoredDocument {
            snapshot,
            updates: rows.collect::<rusqlite::Result<_>>()?,
        })
    }

    /// Appends updates to the document of `node`, durably, in one commit; returns the
    /// sequence number of the last.
    pub fn append_document_updates(&self, node: NodeId, updates: &[Vec<u8>]) -> Result<i64> {
        self.write(|tx| {
            let mut stmt =
                tx.prepare_cached("INSERT INTO document_updates (node_id, data) VALUES (?1, ?2)")?;
            for update in updates {
                stmt.execute(params![node.0, update])?;
            }
            Ok(tx.last_insert_rowid())
        })
    }

    /// Replaces the updates up to `covers_seq` with `snapshot`, in one transaction.
    pub fn compact_document(&self, node: NodeId, snapshot: &[u8], covers_seq: i64) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO document_snapshots (node_id, state, covers_seq) VALUES (?1, ?2, ?3)
                 ON CONFLICT (node_id) DO UPDATE SET state = excluded.state,
                                                     covers_seq = excluded.covers_seq",
            )?
            .execute(params![node.0, snapshot, covers_seq])?;
            tx.prepare_cached("DELETE FROM document_updates WHERE node_id = ?1 AND seq <= ?2")?
                .execute(params![node.0, covers_seq])?;
            Ok(())
        })
    }

    /// The content hash of the file when its document last matched it.
    pub fn document_synced_hash(&self, node: NodeId) -> Result<Option<String>> {
        let conn = self.db.reader();
        let mut stmt =
            conn.prepare_cached("SELECT synced_hash FROM document_files WHERE node_id = ?1")?;
        Ok(stmt.query_row([node.0], |r| r.get(0)).optional()?)
    }

    /// Records that the document of `node` matches the file content `hash`.
    pub fn set_document_synced_hash(&self, node: NodeId, hash: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO document_files (node_id, synced_hash) VALUES (?1, ?2)
                 ON CONFLICT (node_id) DO UPDATE SET synced_hash = excluded.synced_hash",
            )?
            .execute(params![node.0, hash])?;
            Ok(())
        })
    }

    /// Forgets the document of `node` (its file was deleted).
    pub fn delete_document(&self, node: NodeId) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM document_snapshots WHERE node_id = ?1")?
                .execute([node.0])?;
            tx.prepare_cached("DELETE FROM document_updates WHERE node_id = ?1")?
                .execute([node.0])?;
            tx.prepare_cached("DELETE FROM document_files WHERE node_id = ?1")?
                .execute([node.0])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    #[test]
    fn updates_append_and_compact_into_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            data_dir: dir.path().to_owned(),
            default_quota: None,
        })
        .unwrap();
        let node = NodeId(42);
        assert!(store.load_document(node).unwrap().is_empty());
        store
            .append_document_updates(node, &[b"a".to_vec(), b"b".to_vec()])
            .unwrap();
        let last = store
            .append_document_updates(node, &[b"c".to_vec()])
            .unwrap();
        store.compact_document(node, b"ab", last - 1).unwrap();
        let stored = store.load_document(node).unwrap();
        assert_eq!(stored.snapshot.as_deref(), Some(&b"ab"[..]));
        assert_eq!(stored.updates, vec![(last, b"c".to_vec())]);
        store.delete_document(node).unwrap();
        assert!(store.load_document(node).unwrap().is_empty());
    }
}
