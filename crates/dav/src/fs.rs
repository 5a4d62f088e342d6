//! The drive as a dav-server file system: one instance per request, bound to the space
//! the request may reach.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::SystemTime;

use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, DavProp, FsError, FsFuture, FsResult,
    FsStream, OpenOptions, ReadDirMeta,
};
use futures_util::FutureExt;
use http::StatusCode;
use ruche_store::{Checksum, Node, SpaceId, Store, StoreError, Timestamp, UserId};

use crate::file::{ReadFile, WriteFile};
use crate::meta::{Entry, NodeMeta};
use crate::props;

/// Runs store work that may wait on the disk (writes, which wait for their fsync, and
/// content reads) without stalling the executor's other tasks. Index lookups answer from
/// SQLite's page cache in microseconds and run inline: handing them to another thread would
/// cost more than they do.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Maps a store error to the file-system error dav-server turns into a status.
pub(crate) fn fs_error(error: StoreError) -> FsError {
    match error {
        StoreError::NotFound { .. } | StoreError::ParentMissing { .. } => FsError::NotFound,
        StoreError::AlreadyExists { .. } => FsError::Exists,
        StoreError::InvalidName { .. }
        | StoreError::WrongKind { .. }
        | StoreError::IntoItself { .. } => FsError::Forbidden,
        StoreError::QuotaExceeded { .. } | StoreError::DiskFull { .. } => {
            FsError::InsufficientStorage
        }
        StoreError::UserExists { .. }
        | StoreError::UserNotFound { .. }
        | StoreError::InvalidToken => FsError::Forbidden,
        StoreError::IncompleteUpload { .. } => FsError::Forbidden,
        // The request layer sees the mismatch through `DriveFs::checksum_failed` and
        // answers 400 with the reason.
        StoreError::ChecksumMismatch { .. } => FsError::GeneralFailure,
        StoreError::Corrupt(_)
        | StoreError::Database(_)
        | StoreError::Io { .. }
        | StoreError::Busy { .. } => {
            tracing::error!(%error, "store failure");
            FsError::GeneralFailure
        }
    }
}

/// Splits a request path into its decoded segments. Paths that are not UTF-8 name nothing
/// the drive could hold.
pub(crate) fn segments(path: &DavPath) -> FsResult<Vec<String>> {
    let raw = std::str::from_utf8(path.as_bytes()).map_err(|_| FsError::NotFound)?;
    Ok(raw
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// One user's view of one space, for the length of one request.
#[derive(Clone)]
pub struct DriveFs {
    pub(crate) store: Arc<Store>,
    pub(crate) space: SpaceId,
    pub(crate) user: UserId,
    /// Modification time the client asked for with `X-OC-Mtime`, applied to the upload.
    pub(crate) put_modified: Option<Timestamp>,
    /// Checksum the client announced with `OC-Checksum`, verified before the commit.
    pub(crate) put_checksum: Option<Checksum>,
    /// Set when an upload was refused because it did not match `put_checksum`.
    pub(crate) checksum_failed: Arc<AtomicBool>,
    /// Folders are listed as empty. dav-server deletes a folder by walking it and deleting
    /// what it holds first; with this set, DELETE and MOVE (which deletes what it replaces)
    /// delete a folder in one step instead, so that it goes to the trash whole.
    pub(crate) folders_look_empty: bool,
}

impl DriveFs {
    pub(crate) fn lookup(&self, path: &DavPath) -> FsResult<Node> {
        let segments = segments(path)?;
        self.store.lookup(self.space, &segments).map_err(fs_error)
    }

    fn open_sync(&self, path: &DavPath, options: OpenOptions) -> FsResult<Box<dyn DavFile>> {
        let existing = match self.lookup(path) {
            Ok(node) => Some(node),
            Err(FsError::NotFound) => None,
            Err(other) => return Err(other),
        };
        if !options.write {
            let node = existing.ok_or(FsError::NotFound)?;
            if node.is_dir {
                return Err(FsError::Forbidden);
            }
            let content = blocking(|| self.store.open_content(&node)).map_err(fs_error)?;
            return Ok(Box::new(ReadFile {
                node,
                content,
                buffer: bytes::BytesMut::new(),
            }));
        }
        match &existing {
            Some(node) if node.is_dir => return Err(FsError::Forbidden),
            Some(_) if options.create_new => return Err(FsError::Exists),
            None if !options.create && !options.create_new => return Err(FsError::NotFound),
            _ => {}
        }
        let path = segments(path)?;
        let mut upload = self.store.begin_upload(self.space).map_err(fs_error)?;
        if let Some(checksum) = &self.put_checksum {
            upload.expect(checksum.clone());
        }
        Ok(Box::new(WriteFile {
            store: self.store.clone(),
            space: self.space,
            path,
            upload: Some(upload),
            modified: self.put_modified,
            author: self.user,
            committed: None,
            checksum_failed: self.checksum_failed.clone(),
        }))
    }
}

impl DavFileSystem for DriveFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        async move { self.open_sync(path, options) }.boxed()
    }

    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        _meta: ReadDirMeta,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        async move {
            let folder = self.lookup(path)?;
            if !folder.is_dir {
                return Err(FsError::Forbidden);
            }
            let children = if self.folders_look_empty {
                Vec::new()
            } else {
                self.store.children(folder.id).map_err(fs_error)?
            };
            let entries = children
                .into_iter()
                .map(|node| Ok(Box::new(Entry(node)) as Box<dyn DavDirEntry>));
            let stream: FsStream<Box<dyn DavDirEntry>> =
                Box::pin(futures_util::stream::iter(entries));
            Ok(stream)
        }
        .boxed()
    }

    fn metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let node = self.lookup(path)?;
            Ok(Box::new(NodeMeta(node)) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let path = segments(path)?;
            blocking(|| self.store.create_folder(self.space, &path, Some(self.user)))
                .map_err(fs_error)?;
            Ok(())
        }
        .boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.remove_file(path)
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let path = segments(path)?;
            blocking(|| self.store.remove(self.space, &path, Some(self.user))).map_err(fs_error)
        }
        .boxed()
    }

    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let (from, to) = (segments(from)?, segments(to)?);
            blocking(|| {
                self.store
                    .move_node(self.space, &from, &to, true, Some(self.user))
            })
            .map_err(fs_error)?;
            Ok(())
        }
        .boxed()
    }

    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let (from, to) = (segments(from)?, segments(to)?);
            blocking(|| {
                self.store
                    .copy_node(self.space, &from, &to, true, Some(self.user))
            })
            .map_err(fs_error)?;
            Ok(())
        }
        .boxed()
    }

    fn set_modified<'a>(&'a self, path: &'a DavPath, tm: SystemTime) -> FsFuture<'a, ()> {
        async move {
            let node = self.lookup(path)?;
            blocking(|| self.store.set_modified(node.id, tm.into())).map_err(fs_error)
        }
        .boxed()
    }

    fn have_props<'a>(
        &'a self,
        _path: &'a DavPath,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        async { true }.boxed()
    }

    fn patch_props<'a>(
        &'a self,
        path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
    ) -> FsFuture<'a, Vec<(StatusCode, DavProp)>> {
        async move {
            let node = self.lookup(path)?;
            blocking(|| props::patch(&self.store, &node, patch))
        }
        .boxed()
    }

    fn get_props<'a>(&'a self, path: &'a DavPath, do_content: bool) -> FsFuture<'a, Vec<DavProp>> {
        async move {
            let node = self.lookup(path)?;
            props::all_dead(&self.store, &node, do_content)
        }
        .boxed()
    }

    fn get_prop<'a>(&'a self, path: &'a DavPath, prop: DavProp) -> FsFuture<'a, Vec<u8>> {
        async move {
            let node = self.lookup(path)?;
            props::one(&self.store, &node, &prop)
        }
        .boxed()
    }

    fn get_quota(&self) -> FsFuture<'_, (u64, Option<u64>)> {
        async move {
            let space = self.store.space(self.space).map_err(fs_error)?;
            Ok((space.used, space.quota))
        }
        .boxed()
    }
}
