//! What the store's tests share: a store in a temporary folder with one user, and uploads.

use crate::{CommitOptions, Node, Result, Store, StoreConfig, User};

/// A fresh store with the user `alice`, whose space has `quota`.
pub(crate) fn store_with_user(quota: Option<u64>) -> (tempfile::TempDir, Store, User) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(StoreConfig {
        data_dir: dir.path().to_owned(),
        default_quota: quota,
    })
    .expect("store opens");
    let user = store
        .create_user("alice", "hash", false)
        .expect("user created");
    (dir, store, user)
}

/// Uploads `content` to `path` in the user's space.
pub(crate) fn put(store: &Store, user: &User, path: &[&str], content: &[u8]) -> Result<Node> {
    let mut upload = store.begin_upload(user.space)?;
    upload.write(content)?;
    store.commit_upload(user.space, path, upload, CommitOptions::default())
}
