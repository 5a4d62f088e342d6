//! Dead properties: what clients set with PROPPATCH, kept as the XML they sent.

use rusqlite::{params, OptionalExtension};

use crate::model::{DeadProp, NodeId};
use crate::{Result, Store};

/// One change of a PROPPATCH: set a property, or remove one.
#[derive(Debug, Clone)]
pub enum PropChange {
    /// Set (or replace) a property.
    Set(DeadProp),
    /// Remove the property with this namespace and name.
    Remove {
        /// Namespace URI; empty for none.
        namespace: String,
        /// Local name.
        name: String,
    },
}

impl Store {
    /// Every dead property of a node.
    pub fn dead_props(&self, node: NodeId) -> Result<Vec<DeadProp>> {
        let conn = self.db.reader();
        let mut stmt =
            conn.prepare_cached("SELECT namespace, name, xml FROM dead_props WHERE node_id = ?1")?;
        let rows = stmt.query_map([node.0], |r| {
            Ok(DeadProp {
                namespace: r.get(0)?,
                name: r.get(1)?,
                xml: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The dead properties of every child of `folder`, in one query, for listings.
    pub fn dead_props_of_children(&self, folder: NodeId) -> Result<Vec<(NodeId, DeadProp)>> {
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT dead_props.node_id, namespace, dead_props.name, xml
             FROM dead_props JOIN nodes ON nodes.id = dead_props.node_id
             WHERE nodes.parent_id = ?1",
        )?;
        let rows = stmt.query_map([folder.0], |r| {
            let prop = DeadProp {
                namespace: r.get(1)?,
                name: r.get(2)?,
                xml: r.get(3)?,
            };
            Ok((NodeId(r.get(0)?), prop))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// One dead property of a node.
    pub fn dead_prop(&self, node: NodeId, namespace: &str, name: &str) -> Result<Option<Vec<u8>>> {
        let conn = self.db.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT xml FROM dead_props WHERE node_id = ?1 AND namespace = ?2 AND name = ?3",
        )?;
        Ok(stmt
            .query_row(params![node.0, namespace, name], |r| r.get(0))
            .optional()?)
    }

    /// Whether a node has any dead property.
    pub fn has_dead_props(&self, node: NodeId) -> Result<bool> {
        let conn = self.db.reader();
        let mut stmt =
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM dead_props WHERE node_id = ?1)")?;
        Ok(stmt.query_row([node.0], |r| r.get(0))?)
    }

    /// Applies all changes of one PROPPATCH atomically.
    pub fn patch_dead_props(&self, node: NodeId, changes: &[PropChange]) -> Result<()> {
        self.write(|tx| {
            let mut set = tx.prepare_cached(
                "INSERT INTO dead_props (node_id, namespace, name, xml) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node_id, namespace, name) DO UPDATE SET xml = excluded.xml",
            )?;
            let mut remove = tx.prepare_cached(
                "DELETE FROM dead_props WHERE node_id = ?1 AND namespace = ?2 AND name = ?3",
            )?;
            for change in changes {
                match change {
                    PropChange::Set(prop) => {
                        set.execute(params![node.0, prop.namespace, prop.name, prop.xml])?
                    }
                    PropChange::Remove { namespace, name } => {
                        remove.execute(params![node.0, namespace, name])?
                    }
                };
            }
            Ok(())
        })
    }
}
