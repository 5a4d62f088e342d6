//! Garbage collection of contents: removing what no file, trashed file or version refers
//! to any more.
//!
//! A content found unreferenced is marked with the time; it is removed once it has stayed
//! unreferenced for a grace period, so that a backup copying the contents of an earlier
//! snapshot still finds them. A content that becomes wanted again (an upload of the same
//! bytes, a restore) loses its mark. Commits of new content hold the collector's lock
//! shared from the moment their content is in the blob store, and the collector holds it
//! exclusively, so an upload that found its content already stored never commits a
//! reference to a content being removed.

use std::time::Duration;

use rusqlite::params;

use crate::blob::ContentHash;
use crate::model::Timestamp;
use crate::{Result, Store};

/// What a collection removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// Contents removed.
    pub contents: u64,
    /// Their bytes.
    pub bytes: u64,
}

const UNREFERENCED: &str = "NOT EXISTS (SELECT 1 FROM nodes WHERE nodes.content_hash = blobs.hash)
     AND NOT EXISTS (SELECT 1 FROM versions WHERE versions.content_hash = blobs.hash)";

impl Store {
    /// Marks the contents nothing refers to, and removes those marked longer than `grace`
    /// ago.
    pub fn collect_garbage(&self, grace: Duration) -> Result<Collected> {
        let _exclusive = self.collector.write();
        let now = Timestamp::now();
        let cutoff = now.0 - i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX);
        let removed: Vec<(String, i64, bool)> = self.write(|tx| {
            tx.execute(
                &format!(
                    "UPDATE blobs SET orphaned_ns = NULL
                     WHERE orphaned_ns IS NOT NULL AND NOT ({UNREFERENCED})"
                ),
                [],
            )?;
            tx.execute(
                &format!(
                    "UPDATE blobs SET orphaned_ns = ?1
                     WHERE orphaned_ns IS NULL AND {UNREFERENCED}"
                ),
                [now.0],
            )?;
            let mut stmt = tx.prepare(
                "DELETE FROM blobs WHERE orphaned_ns IS NOT NULL AND orphaned_ns <= ?1
                 RETURNING hash, size, data IS NULL",
            )?;
            let rows =
                stmt.query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let mut collected = Collected::default();
        for (hash, size, in_file) in removed {
            if in_file {
                if let Ok(hash) = ContentHash::from_hex(hash) {
                    // A file left behind by a failure here is what `fsck --repair` removes.
                    if let Err(error) = self.blobs.remove(&hash) {
                        tracing::warn!(%error, "removing an unreferenced content failed");
                        continue;
                    }
                }
            }
            collected.contents += 1;
            collected.bytes += u64::try_from(size).unwrap_or(0);
        }
        Ok(collected)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;

    use super::*;
    use crate::testing::{put, store_with_user};

    fn blob_files(dir: &std::path::Path) -> usize {
        walk(&dir.join("blobs"))
    }

    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }

    #[test]
    fn only_what_nothing_refers_to_goes_and_only_after_the_grace() {
        let (dir, store, user) = store_with_user(None);
        let big = vec![7u8; 100_000];
        let other = vec![8u8; 100_000];
        put(&store, &user, &["a"], &big).unwrap();
        put(&store, &user, &["b"], &big).unwrap();
        put(&store, &user, &["c"], &other).unwrap();
        put(&store, &user, &["c"], b"small").unwrap();
        assert_eq!(blob_files(dir.path()), 2);

        // `other` is a version of c: kept. `big` is shared by a and b: kept after a goes.
        store.remove(user.space, &["a"], None).unwrap();
        store.empty_trash(user.space, None).unwrap();
        assert_eq!(store.collect_garbage(Duration::ZERO).unwrap().contents, 0);

        store.remove(user.space, &["b"], None).unwrap();
        store.empty_trash(user.space, None).unwrap();
        let later = Duration::from_secs(3600);
        assert_eq!(
            store.collect_garbage(later).unwrap().contents,
            0,
            "marked only"
        );
        let collected = store.collect_garbage(Duration::ZERO).unwrap();
        assert_eq!(collected.contents, 1);
        assert_eq!(collected.bytes, 100_000);
        assert_eq!(blob_files(dir.path()), 1);
        assert!(crate::fsck(dir.path(), false, &mut |_, _| {})
            .unwrap()
            .is_clean());
    }

    #[test]
    fn a_content_uploaded_again_while_marked_is_kept() {
        let (_dir, store, user) = store_with_user(None);
        let big = vec![3u8; 100_000];
        put(&store, &user, &["a"], &big).unwrap();
        store.remove(user.space, &["a"], None).unwrap();
        store.empty_trash(user.space, None).unwrap();
        store.collect_garbage(Duration::from_secs(3600)).unwrap();
        let again = put(&store, &user, &["b"], &big).unwrap();
        assert_eq!(store.collect_garbage(Duration::ZERO).unwrap().contents, 0);
        let mut read = Vec::new();
        store
            .open_content(&again)
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(read, big);
    }

    #[test]
    fn uploads_racing_the_collector_never_lose_their_content() {
        let (dir, store, user) = store_with_user(None);
        let store = Arc::new(store);
        let content = vec![5u8; 80_000];
        std::thread::scope(|scope| {
            let collector = {
                let store = store.clone();
                scope.spawn(move || {
                    for _ in 0..200 {
                        store.collect_garbage(Duration::ZERO).unwrap();
                    }
                })
            };
            for round in 0..100 {
                // The same bytes, again and again, each time after nothing refers to them.
                put(&store, &user, &["f"], &content).unwrap();
                store.remove(user.space, &["f"], None).unwrap();
                store.empty_trash(user.space, None).unwrap();
                let kept = put(&store, &user, &[format!("g{round}").as_str()], &content).unwrap();
                let mut read = Vec::new();
                store
                    .open_content(&kept)
                    .unwrap()
                    .read_to_end(&mut read)
                    .unwrap();
                assert_eq!(read, content, "round {round}");
                store
                    .remove(user.space, &[format!("g{round}").as_str()], None)
                    .unwrap();
                store.empty_trash(user.space, None).unwrap();
            }
            collector.join().unwrap();
        });
        put(&store, &user, &["last"], &content).unwrap();
        store.collect_garbage(Duration::ZERO).unwrap();
        assert!(crate::fsck(dir.path(), false, &mut |_, _| {})
            .unwrap()
            .is_clean());
    }
}
