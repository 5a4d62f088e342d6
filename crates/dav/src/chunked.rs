//! Chunked uploads as the Nextcloud clients send them (`/remote.php/dav/uploads/<user>/`):
//! `MKCOL <id>` starts an upload, `PUT <id>/<n>` sends chunk `n`, `MOVE <id>/.file` with a
//! `Destination` in the user's files assembles the chunks into that file, `DELETE <id>`
//! abandons it, and `PROPFIND <id>` lists the chunks received (a client resuming an upload
//! sends only the missing ones).

use std::fmt::Write;
use std::sync::Arc;

use bytes::Buf;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;
use ruche_store::{Checksum, CommitOptions, SpaceId, Store, StoreError};

use crate::fs::blocking;
use crate::href::href;
use crate::locks::covers;
use crate::props::oc_id;
use crate::{plain, requested_mtime_header, Body, Principal};

/// The chunked-upload endpoint of one user.
#[derive(Debug, Clone)]
pub struct ChunkedUploads {
    store: Arc<Store>,
}

/// Where a request falls under a user's uploads.
enum Target {
    Root,
    Upload(String),
    Chunk(String, String),
}

impl ChunkedUploads {
    /// The endpoint over `store`.
    pub fn new(store: Arc<Store>) -> ChunkedUploads {
        ChunkedUploads { store }
    }

    /// Answers one request under `prefix` (`/remote.php/dav/uploads/<user>`); assembled
    /// files go to the paths named under `files_prefix` (`/remote.php/dav/files/<user>`).
    pub async fn handle<B>(
        &self,
        req: Request<B>,
        who: &Principal,
        prefix: &str,
        files_prefix: &str,
    ) -> Response<Body>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Buf + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let Some(target) = target(req.uri().path(), prefix) else {
            return plain(StatusCode::NOT_FOUND, "not found");
        };
        let space = who.space;
        let store = &self.store;
        let outcome = match (req.method().as_str(), target) {
            ("MKCOL", Target::Upload(id)) => {
                if let Some(refusal) = self.refuse_too_large(req.headers(), space) {
                    return refusal;
                }
                blocking(|| store.begin_chunked(space, &id)).map(|()| created())
            }
            ("PUT", Target::Chunk(id, chunk)) => {
                if let Some(refusal) = self.refuse_too_large(req.headers(), space) {
                    return refusal;
                }
                self.receive_chunk(req, space, &id, &chunk).await
            }
            ("MOVE", Target::Chunk(id, file)) if file == ".file" => {
                self.assemble(&req, who, &id, files_prefix)
            }
            ("DELETE", Target::Upload(id)) => {
                blocking(|| store.abort_chunked(space, &id)).map(|()| no_content())
            }
            ("PROPFIND", Target::Upload(id)) => self.list(space, &id, prefix),
            ("PROPFIND", Target::Root) => Ok(multistatus(format!(
                "<D:response><D:href>{prefix}/</D:href>{}</D:response>",
                collection_props()
            ))),
            (method, _) if method == Method::OPTIONS => Ok(no_content()),
            _ => Ok(plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "not a chunked-upload request",
            )),
        };
        outcome.unwrap_or_else(error_response)
    }

    /// Refuses an upload whose announced length (`OC-Total-Length`) exceeds what the space
    /// has left, before any byte of it is stored.
    fn refuse_too_large(&self, headers: &HeaderMap, space: SpaceId) -> Option<Response<Body>> {
        let total: u64 = headers
            .get("oc-total-length")?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let available = self.store.space(space).ok()?.available()?;
        (total > available).then(|| {
            plain(
                StatusCode::INSUFFICIENT_STORAGE,
                "the file would pass the space's quota",
            )
        })
    }

    async fn receive_chunk<B>(
        &self,
        req: Request<B>,
        space: SpaceId,
        id: &str,
        chunk: &str,
    ) -> Result<Response<Body>, StoreError>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Buf + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let mut writer = self.store.write_chunk(space, id, chunk)?;
        let mut body = std::pin::pin!(req.into_body());
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                // The client went away: the partial chunk is dropped with the writer.
                return Ok(plain(StatusCode::BAD_REQUEST, "request body interrupted"));
            };
            if let Ok(mut data) = frame.into_data() {
                while data.has_remaining() {
                    let part = data.chunk();
                    let len = part.len();
                    blocking(|| writer.write(part))?;
                    data.advance(len);
                }
            }
        }
        blocking(|| writer.finish())?;
        Ok(created())
    }

    fn assemble<B>(
        &self,
        req: &Request<B>,
        who: &Principal,
        id: &str,
        files_prefix: &str,
    ) -> Result<Response<Body>, StoreError> {
        let headers = req.headers();
        let Some(path) = destination(headers, files_prefix) else {
            return Ok(plain(
                StatusCode::BAD_REQUEST,
                "Destination must name a file of the same user",
            ));
        };
        if path.is_empty() {
            return Ok(plain(StatusCode::FORBIDDEN, "cannot overwrite the root"));
        }
        let key = ruche_store::normalize_path(&path)?.join("/");
        let presented = headers
            .get("if")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let locked = self
            .store
            .locks(who.space)?
            .iter()
            .any(|lock| covers(lock, &key) && !presented.contains(&lock.token));
        if locked {
            return Ok(plain(StatusCode::LOCKED, "the destination is locked"));
        }
        let total = headers
            .get("oc-total-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let checksum = headers
            .get("oc-checksum")
            .and_then(|v| v.to_str().ok())
            .and_then(Checksum::parse);
        let modified = requested_mtime_header(headers);
        let existed = self.store.lookup(who.space, &path).is_ok();
        let options = CommitOptions {
            modified,
            author: Some(who.user),
            ..CommitOptions::default()
        };
        let node = blocking(|| {
            self.store
                .finish_chunked(who.space, id, &path, total, checksum, options)
        })?;
        let status = if existed {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::CREATED
        };
        let mut response = Response::new(Body::from(String::new()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        let etag = format!("\"{}\"", node.etag());
        if let Ok(value) = HeaderValue::from_str(&etag) {
            headers.insert("oc-etag", value.clone());
            headers.insert("etag", value);
        }
        if let Ok(value) = HeaderValue::from_str(&oc_id(&node)) {
            headers.insert("oc-fileid", value);
        }
        if modified.is_some() {
            headers.insert("x-oc-mtime", HeaderValue::from_static("accepted"));
        }
        Ok(response)
    }

    fn list(&self, space: SpaceId, id: &str, prefix: &str) -> Result<Response<Body>, StoreError> {
        let chunks = self.store.chunks(space, id)?;
        let mut xml = format!(
            "<D:response><D:href>{}</D:href>{}</D:response>",
            href(prefix, &[id], true),
            collection_props()
        );
        for (name, size) in chunks {
            let _ = write!(
                xml,
                "<D:response><D:href>{}</D:href><D:propstat><D:prop>\
                 <D:getcontentlength>{size}</D:getcontentlength><D:resourcetype/>\
                 </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>",
                href(prefix, &[id, name.as_str()], false)
            );
        }
        Ok(multistatus(xml))
    }
}

fn target(path: &str, prefix: &str) -> Option<Target> {
    let rest = path.strip_prefix(prefix)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let decoded: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .ok()
        })
        .collect::<Option<_>>()?;
    match decoded.as_slice() {
        [] => Some(Target::Root),
        [id] => Some(Target::Upload(id.clone())),
        [id, chunk] => Some(Target::Chunk(id.clone(), chunk.clone())),
        _ => None,
    }
}

/// The path, in the user's files, that a `Destination` header names.
fn destination(headers: &HeaderMap, files_prefix: &str) -> Option<Vec<String>> {
    let value = headers.get("destination")?.to_str().ok()?;
    let uri: http::Uri = value.parse().ok()?;
    let rest = uri.path().strip_prefix(files_prefix)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    rest.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        })
        .collect()
}

fn collection_props() -> &'static str {
    "<D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop>\
     <D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
}

fn multistatus(responses: String) -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <D:multistatus xmlns:D=\"DAV:\">{responses}</D:multistatus>\n"
    );
    let mut response = Response::new(Body::from(xml));
    *response.status_mut() = StatusCode::MULTI_STATUS;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    response
}

fn created() -> Response<Body> {
    plain(StatusCode::CREATED, "")
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::from(String::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn error_response(error: StoreError) -> Response<Body> {
    match error {
        StoreError::NotFound { .. } | StoreError::ParentMissing { .. } => {
            plain(StatusCode::NOT_FOUND, &error.to_string())
        }
        StoreError::InvalidName { .. } => plain(StatusCode::BAD_REQUEST, &error.to_string()),
        StoreError::IncompleteUpload { .. } | StoreError::ChecksumMismatch { .. } => plain(
            StatusCode::BAD_REQUEST,
            &format!("{error}; nothing was changed"),
        ),
        StoreError::WrongKind { .. } => plain(StatusCode::CONFLICT, &error.to_string()),
        StoreError::QuotaExceeded { .. } | StoreError::DiskFull { .. } => plain(
            StatusCode::INSUFFICIENT_STORAGE,
            "not enough space left; nothing was changed",
        ),
        error => {
            tracing::error!(%error, "chunked upload failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_the_prefix_are_split() {
        let prefix = "/remote.php/dav/uploads/marie";
        assert!(matches!(target(prefix, prefix), Some(Target::Root)));
        assert!(matches!(
            target("/remote.php/dav/uploads/marie/abc", prefix),
            Some(Target::Upload(id)) if id == "abc"
        ));
        assert!(matches!(
            target("/remote.php/dav/uploads/marie/abc/00002", prefix),
            Some(Target::Chunk(id, n)) if id == "abc" && n == "00002"
        ));
        assert!(target("/remote.php/dav/uploads/mariex/abc", prefix).is_none());
        assert!(target("/remote.php/dav/uploads/marie/a/b/c", prefix).is_none());
    }

    #[test]
    fn destinations_must_be_the_users_files() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "destination",
            HeaderValue::from_static(
                "http://h/remote.php/dav/files/marie/Docs/r%C3%A9sum%C3%A9.pdf",
            ),
        );
        assert_eq!(
            destination(&headers, "/remote.php/dav/files/marie"),
            Some(vec!["Docs".to_owned(), "résumé.pdf".to_owned()])
        );
        assert_eq!(destination(&headers, "/remote.php/dav/files/paul"), None);
    }
}
