//! Node metadata as dav-server sees it.

use std::time::SystemTime;

use dav_server::fs::{DavDirEntry, DavMetaData, FsFuture, FsResult};
use futures_util::FutureExt;
use ruche_store::Node;

/// A node's metadata, answered from the index without opening any content.
#[derive(Debug, Clone)]
pub(crate) struct NodeMeta(pub(crate) Node);

impl DavMetaData for NodeMeta {
    fn len(&self) -> u64 {
        self.0.size
    }

    fn modified(&self) -> FsResult<SystemTime> {
        Ok(self.0.modified.into())
    }

    fn is_dir(&self) -> bool {
        self.0.is_dir
    }

    fn etag(&self) -> Option<String> {
        Some(self.0.etag())
    }

    fn created(&self) -> FsResult<SystemTime> {
        Ok(self.0.created.into())
    }
}

/// One entry of a folder listing.
pub(crate) struct Entry(pub(crate) Node);

impl DavDirEntry for Entry {
    fn name(&self) -> Vec<u8> {
        self.0.name.clone().into_bytes()
    }

    fn metadata(&self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta: Box<dyn DavMetaData> = Box::new(NodeMeta(self.0.clone()));
        async move { Ok(meta) }.boxed()
    }

    fn is_dir(&self) -> FsFuture<'_, bool> {
        let is_dir = self.0.is_dir;
        async move { Ok(is_dir) }.boxed()
    }
}
