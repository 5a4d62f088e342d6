//! Open files: reading a stored content, and writing an upload that commits on flush.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use dav_server::fs::{DavFile, DavMetaData, FsError, FsFuture};
use futures_util::FutureExt;
use ruche_store::{
    BlobRead, CommitOptions, Node, SpaceId, Store, StoreError, Timestamp, Upload, UserId,
};

use crate::fs::{blocking, fs_error};
use crate::meta::NodeMeta;

/// A file opened for reading.
pub(crate) struct ReadFile {
    pub(crate) node: Node,
    pub(crate) content: Box<dyn BlobRead>,
    pub(crate) buffer: BytesMut,
}

impl fmt::Debug for ReadFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadFile")
            .field("node", &self.node.id)
            .finish()
    }
}

impl DavFile for ReadFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let meta: Box<dyn DavMetaData> = Box::new(NodeMeta(self.node.clone()));
        async move { Ok(meta) }.boxed()
    }

    fn write_buf(&mut self, _buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        async { Err(FsError::Forbidden) }.boxed()
    }

    fn write_bytes(&mut self, _buf: Bytes) -> FsFuture<'_, ()> {
        async { Err(FsError::Forbidden) }.boxed()
    }

    fn read_bytes(&mut self, count: usize) -> FsFuture<'_, Bytes> {
        async move {
            blocking(|| {
                // The previous chunk has usually been sent and dropped by now, so this
                // reuses its memory instead of allocating anew for every read.
                let buf = &mut self.buffer;
                buf.clear();
                buf.resize(count, 0);
                let mut filled = 0;
                while filled < count {
                    match self.content.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(error) => {
                            tracing::error!(node = %self.node.id, %error, "reading content failed");
                            return Err(FsError::GeneralFailure);
                        }
                    }
                }
                buf.truncate(filled);
                Ok(buf.split().freeze())
            })
        }
        .boxed()
    }

    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        async move { blocking(|| self.content.seek(pos).map_err(|_| FsError::GeneralFailure)) }
            .boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        async { Ok(()) }.boxed()
    }
}

/// A file being written. Nothing is visible until `flush` commits the whole content; a
/// dropped upload (client gone, error) leaves the previous content in place.
pub(crate) struct WriteFile {
    pub(crate) store: Arc<Store>,
    pub(crate) space: SpaceId,
    pub(crate) path: Vec<String>,
    pub(crate) upload: Option<Upload>,
    pub(crate) modified: Option<Timestamp>,
    pub(crate) author: UserId,
    pub(crate) committed: Option<Node>,
    pub(crate) checksum_failed: Arc<AtomicBool>,
}

impl fmt::Debug for WriteFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteFile")
            .field("path", &self.path)
            .finish()
    }
}

impl WriteFile {
    fn append(&mut self, data: &[u8]) -> Result<(), FsError> {
        let upload = self.upload.as_mut().ok_or(FsError::GeneralFailure)?;
        blocking(|| upload.write(data)).map_err(fs_error)
    }

    fn provisional_node(&self) -> Node {
        let len = self.upload.as_ref().map_or(0, Upload::len);
        Node {
            id: ruche_store::NodeId(0),
            space: self.space,
            parent: None,
            name: self.path.last().cloned().unwrap_or_default(),
            is_dir: false,
            size: len,
            content: None,
            modified: Timestamp::now(),
            created: Timestamp::now(),
            change: 0,
        }
    }
}

impl DavFile for WriteFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let node = self
            .committed
            .clone()
            .unwrap_or_else(|| self.provisional_node());
        let meta: Box<dyn DavMetaData> = Box::new(NodeMeta(node));
        async move { Ok(meta) }.boxed()
    }

    fn write_buf(&mut self, mut buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        async move {
            while buf.has_remaining() {
                let chunk = buf.chunk().to_vec();
                self.append(&chunk)?;
                buf.advance(chunk.len());
            }
            Ok(())
        }
        .boxed()
    }

    fn write_bytes(&mut self, buf: Bytes) -> FsFuture<'_, ()> {
        async move { self.append(&buf) }.boxed()
    }

    fn read_bytes(&mut self, _count: usize) -> FsFuture<'_, Bytes> {
        async { Err(FsError::Forbidden) }.boxed()
    }

    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        // Partial writes (PUT with Content-Range) would need the old content merged in;
        // only a seek to where the upload already is can be honoured.
        let current = self.upload.as_ref().map_or(0, Upload::len);
        let fine = matches!(pos, SeekFrom::Start(p) if p == current)
            || matches!(pos, SeekFrom::Current(0));
        async move {
            if fine {
                Ok(current)
            } else {
                Err(FsError::NotImplemented)
            }
        }
        .boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        async move {
            let Some(upload) = self.upload.take() else {
                return Ok(());
            };
            let options = CommitOptions {
                modified: self.modified,
                author: Some(self.author),
                ..CommitOptions::default()
            };
            let node = blocking(|| {
                self.store
                    .commit_upload(self.space, &self.path, upload, options)
            })
            .map_err(|error| {
                if matches!(error, StoreError::ChecksumMismatch { .. }) {
                    self.checksum_failed.store(true, Ordering::Relaxed);
                }
                fs_error(error)
            })?;
            self.committed = Some(node);
            Ok(())
        }
        .boxed()
    }
}
