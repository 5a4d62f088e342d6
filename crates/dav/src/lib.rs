//! WebDAV access to the drive: dav-server's protocol handling over the ruche store.
//!
//! dav-server parses requests and writes answers; this crate gives it a file system and a
//! lock system backed by the store, and handles in front of it what desktop clients need
//! and the library leaves out (`X-OC-Mtime`, `OC-FileId`, `MS-Author-Via`, finite PROPFIND
//! depth).
//!
//! This crate never touches SQLite or blob files itself (only through the store), never
//! authenticates anyone (the server hands it a [`Principal`]), and never imports the
//! co-editing service.

#![warn(missing_docs)]

mod chunked;
mod file;
mod fs;
mod href;
mod listing;
mod locks;
mod meta;
mod propfind;
mod props;
mod sync;
pub mod trashbin;
pub mod versions;
mod xmlguard;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Buf;
use bytes::Bytes;
use dav_server::davpath::DavPath;
use dav_server::DavHandler;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use ruche_store::StoreError;
use ruche_store::{Checksum, SpaceId, Store, Timestamp, UserId};

pub use chunked::ChunkedUploads;
pub use dav_server::body::Body;
pub use fs::DriveFs;
pub use locks::StoreLocks;
pub use props::OC_NS;
pub use sync::{parse_token, token_uri};

/// Who a request acts for, as established by the server's authentication.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user: UserId,
    /// The user's login name, recorded as the principal of locks.
    pub name: String,
    /// The space served at the prefix.
    pub space: SpaceId,
}

/// Serves one space per user under a URL prefix such as `/dav`.
#[derive(Debug, Clone)]
pub struct DavService {
    store: Arc<Store>,
    prefix: String,
}

const READ_BUFFER: usize = 256 * 1024;
/// PROPFIND and PROPPATCH bodies name properties; nothing legitimate comes near this size.
const MAX_XML_BODY: usize = 1024 * 1024;
/// How much of an oversized body is read and thrown away before the refusal is sent.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

impl DavService {
    /// A service for `store`, answering under `prefix` (without a trailing slash).
    pub fn new(store: Arc<Store>, prefix: &str) -> DavService {
        DavService {
            store,
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    /// Answers one WebDAV request on behalf of `who`.
    pub async fn handle<B>(&self, req: Request<B>, who: &Principal) -> Response<Body>
    where
        B: http_body::Body + Send + 'static,
        B::Data: bytes::Buf + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        if let Some(refusal) = self.refuse_bad_target(&req) {
            return refusal;
        }
        if req.method() == Method::PUT || req.method() == Method::GET {
            return self.delegate(req, who).await;
        }
        // Every other body is small XML at most: read it whole and check it first.
        let (parts, body) = req.into_parts();
        let Some(body) = read_small_body(body).await else {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        };
        if !xmlguard::depth_within(&body, xmlguard::MAX_DEPTH) {
            return plain(StatusCode::BAD_REQUEST, "XML body nested too deeply");
        }
        match parts.method.as_str() {
            "PROPFIND" => self.propfind(&parts, &body, who),
            "REPORT" if sync::is_sync_collection(&body) => {
                let Some(Ok(target)) = self.dav_path(&parts.uri).map(|p| fs::segments(&p)) else {
                    return plain(StatusCode::NOT_FOUND, "not found");
                };
                fs::blocking(|| sync::report(&self.store, &self.prefix, who.space, &target, &body))
            }
            "PROPPATCH" => {
                let body = props::redirect_settable(&body).map_or(body, Bytes::from);
                self.delegate(Request::from_parts(parts, Full::new(body)), who)
                    .await
            }
            _ => {
                self.delegate(Request::from_parts(parts, Full::new(body)), who)
                    .await
            }
        }
    }

    /// Hands a request to dav-server, with the headers desktop clients expect added.
    async fn delegate<B>(&self, req: Request<B>, who: &Principal) -> Response<Body>
    where
        B: http_body::Body + Send + 'static,
        B::Data: bytes::Buf + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let method = req.method().clone();
        let mtime = requested_mtime(&req);
        let checksum = announced_checksum(&req);
        let checksum_failed = Arc::new(AtomicBool::new(false));
        let destination = self.destination_segments(&req);
        let target = self.dav_path(req.uri()).and_then(|p| fs::segments(&p).ok());

        let deletes_whole = method == Method::DELETE || method.as_str() == "MOVE";
        let handler = self.handler(who, mtime, checksum, checksum_failed.clone(), deletes_whole);
        let mut response = handler.handle(req).await;
        if checksum_failed.load(Ordering::Relaxed) {
            return plain(
                StatusCode::BAD_REQUEST,
                "the content does not match its OC-Checksum; nothing was changed",
            );
        }

        let status = response.status();
        if status.is_success() {
            let written = if method == Method::PUT {
                target
            } else {
                destination
            };
            if let Some(path) = written.filter(|_| writes_node(&method)) {
                self.add_node_headers(response.headers_mut(), who.space, &path);
            }
            if method == Method::PUT && mtime.is_some() {
                response
                    .headers_mut()
                    .insert("x-oc-mtime", HeaderValue::from_static("accepted"));
            }
        }
        if method == Method::OPTIONS {
            response
                .headers_mut()
                .insert("ms-author-via", HeaderValue::from_static("DAV"));
        }
        if status.is_client_error() {
            response
                .headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-store"));
        }
        if method == Method::GET || method == Method::HEAD {
            never_render(response.headers_mut());
        }
        response
    }

    fn propfind(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        who: &Principal,
    ) -> Response<Body> {
        if !has_finite_depth(&parts.headers) {
            return finite_depth_refusal();
        }
        let with_children = parts
            .headers
            .get("depth")
            .is_some_and(|d| d.as_bytes() == b"1");
        let Some(Ok(target)) = self.dav_path(&parts.uri).map(|p| fs::segments(&p)) else {
            return plain(StatusCode::NOT_FOUND, "not found");
        };
        let request = match propfind::parse(body) {
            Ok(request) => request,
            Err(reason) => return plain(StatusCode::BAD_REQUEST, reason),
        };
        if with_children {
            // A large folder takes milliseconds to describe: not on the executor's thread.
            fs::blocking(|| self.propfind_answer(who.space, &target, true, &request))
        } else {
            self.propfind_answer(who.space, &target, false, &request)
        }
    }

    fn propfind_answer(
        &self,
        space: SpaceId,
        target: &[String],
        with_children: bool,
        request: &propfind::Request,
    ) -> Response<Body> {
        let answer = (|| {
            let target = ruche_store::normalize_path(target)?;
            let node = self.store.lookup(space, &target)?;
            let with_children = with_children && node.is_dir;
            let children = if with_children {
                self.store.children(node.id)?
            } else {
                Vec::new()
            };
            let ctx = propfind::Context {
                store: &self.store,
                prefix: &self.prefix,
                space: self.store.space(space)?,
                locks: self.store.locks(space)?,
                dead: propfind::load_dead_props(&self.store, &node, with_children)?,
                checksums: propfind::load_checksums(&self.store, request, &node, with_children)?,
            };
            let mut entries = Vec::with_capacity(children.len() + 1);
            for child in children {
                let mut segments = target.clone();
                segments.push(child.name.clone());
                entries.push(propfind::Entry {
                    node: child,
                    segments,
                });
            }
            entries.insert(
                0,
                propfind::Entry {
                    node,
                    segments: target,
                },
            );
            Ok::<_, StoreError>(propfind::render(&ctx, request, &entries))
        })();
        match answer {
            Ok(xml) => {
                let mut response = Response::new(Body::from(xml));
                *response.status_mut() = StatusCode::MULTI_STATUS;
                response.headers_mut().insert(
                    "content-type",
                    HeaderValue::from_static("application/xml; charset=utf-8"),
                );
                response
            }
            Err(StoreError::NotFound { .. } | StoreError::InvalidName { .. }) => {
                plain(StatusCode::NOT_FOUND, "not found")
            }
            Err(error) => {
                tracing::error!(%error, "PROPFIND failed");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }

    fn handler(
        &self,
        who: &Principal,
        mtime: Option<Timestamp>,
        checksum: Option<Checksum>,
        checksum_failed: Arc<AtomicBool>,
        deletes_whole: bool,
    ) -> DavHandler {
        let fs = DriveFs {
            store: self.store.clone(),
            space: who.space,
            user: who.user,
            put_modified: mtime,
            put_checksum: checksum,
            checksum_failed,
            folders_look_empty: deletes_whole,
        };
        let locks = StoreLocks {
            store: self.store.clone(),
            space: who.space,
            prefix: self.prefix.clone(),
        };
        DavHandler::builder()
            .filesystem(Box::new(fs))
            .locksystem(Box::new(locks))
            .strip_prefix(self.prefix.clone())
            .principal(who.name.clone())
            .read_buf_size(READ_BUFFER)
            .autoindex(false)
            .build_handler()
    }

    /// The request's path under our prefix, or `None` when it is malformed or escapes it.
    fn dav_path(&self, uri: &http::Uri) -> Option<DavPath> {
        let mut path = DavPath::new(uri.path()).ok()?;
        path.set_prefix(&self.prefix).ok()?;
        Some(path)
    }

    /// Refuses a request whose path or `Destination` cannot be served, before dav-server
    /// (which would answer 502 for both) sees it.
    fn refuse_bad_target<B>(&self, req: &Request<B>) -> Option<Response<Body>> {
        if self.dav_path(req.uri()).is_none() {
            return Some(plain(StatusCode::BAD_REQUEST, "invalid path"));
        }
        let value = req.headers().get("destination")?;
        let Some(uri) = value
            .to_str()
            .ok()
            .and_then(|v| v.parse::<http::Uri>().ok())
        else {
            return Some(plain(StatusCode::BAD_REQUEST, "invalid Destination header"));
        };
        let host = req.headers().get("host").and_then(|h| h.to_str().ok());
        if uri.authority().is_some_and(|a| Some(a.as_str()) != host) {
            return Some(plain(
                StatusCode::BAD_GATEWAY,
                "Destination is on another server",
            ));
        }
        // Under the prefix means at a segment boundary: `/davx` is not under `/dav`.
        let path = uri.path();
        let under = path == self.prefix
            || path
                .strip_prefix(self.prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        let destination = DavPath::new(path)
            .ok()
            .filter(|_| under)
            .and_then(|mut p| p.set_prefix(&self.prefix).is_ok().then_some(p));
        let Some(destination) = destination else {
            return Some(plain(
                StatusCode::FORBIDDEN,
                "Destination is outside the drive",
            ));
        };
        // The root is neither moved, copied, nor replaced (and dav-server cannot take the
        // parent of the root it serves).
        let is_root = |path: &DavPath| fs::segments(path).is_ok_and(|s| s.is_empty());
        let source_is_root = self.dav_path(req.uri()).is_some_and(|p| is_root(&p));
        if is_root(&destination) || source_is_root {
            return Some(plain(
                StatusCode::FORBIDDEN,
                "the top of the drive cannot be moved, copied or replaced",
            ));
        }
        None
    }

    /// The decoded segments of a MOVE or COPY destination, when it is under our prefix.
    fn destination_segments<B>(&self, req: &Request<B>) -> Option<Vec<String>> {
        let value = req.headers().get("destination")?.to_str().ok()?;
        let uri: http::Uri = value.parse().ok()?;
        let mut path = DavPath::new(uri.path()).ok()?;
        path.set_prefix(&self.prefix).ok()?;
        fs::segments(&path).ok()
    }

    fn add_node_headers(&self, headers: &mut HeaderMap, space: SpaceId, path: &[String]) {
        let Ok(node) = self.store.lookup(space, path) else {
            return;
        };
        let etag = format!("\"{}\"", node.etag());
        if let Ok(value) = HeaderValue::from_str(&etag) {
            headers.insert("oc-etag", value.clone());
            headers.insert("etag", value);
        }
        if let Ok(value) = HeaderValue::from_str(&props::oc_id(&node)) {
            headers.insert("oc-fileid", value);
        }
    }
}

/// Reads a body of at most [`MAX_XML_BODY`] bytes. A larger one is read on and discarded
/// up to [`DRAIN_LIMIT`], so that its sender, still writing, gets the refusal instead of a
/// reset connection; `None` then.
async fn read_small_body<B>(body: B) -> Option<Bytes>
where
    B: http_body::Body,
    B::Data: bytes::Buf,
{
    let mut body = std::pin::pin!(body);
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return None;
        };
        if let Ok(mut data) = frame.into_data() {
            seen += data.remaining();
            if seen <= MAX_XML_BODY {
                while data.has_remaining() {
                    let chunk = data.chunk();
                    kept.extend_from_slice(chunk);
                    let len = chunk.len();
                    data.advance(len);
                }
            } else if seen > DRAIN_LIMIT {
                return None;
            }
        }
    }
    (seen <= MAX_XML_BODY).then(|| kept.freeze())
}

/// User content is served on the app's origin: a browser must never run it as a page.
/// It may not sniff types, runs sandboxed without any resource, and downloads what a browser
/// would otherwise render as a document.
fn never_render(headers: &mut HeaderMap) {
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let renders_as_document = ["html", "xml", "svg", "javascript", "xsl"]
        .iter()
        .any(|kind| content_type.contains(kind));
    if renders_as_document {
        headers.insert(
            "content-disposition",
            HeaderValue::from_static("attachment"),
        );
    }
}

pub(crate) fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!("{text}\n")));
    *response.status_mut() = status;
    response
}

fn writes_node(method: &Method) -> bool {
    matches!(method.as_str(), "PUT" | "MOVE" | "COPY")
}

/// Depth 0 and 1 are answered; infinity (the default when the header is missing) would walk
/// a whole drive in one answer, which RFC 4918 lets a server refuse.
fn has_finite_depth(headers: &HeaderMap) -> bool {
    matches!(
        headers
            .get("depth")
            .and_then(|v| v.to_str().ok())
            .map(str::trim),
        Some("0") | Some("1")
    )
}

fn finite_depth_refusal() -> Response<Body> {
    precondition_refusal("propfind-finite-depth")
}

/// 403 with the WebDAV precondition a request broke, as `<D:error><D:{name}/></D:error>`.
pub(crate) fn precondition_refusal(name: &str) -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <D:error xmlns:D=\"DAV:\"><D:{name}/></D:error>\n"
    );
    let mut response = Response::new(Body::from(xml));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    response
}

/// The modification time a client sets with `X-OC-Mtime` on PUT.
fn requested_mtime<B>(req: &Request<B>) -> Option<Timestamp> {
    if req.method() != Method::PUT {
        return None;
    }
    requested_mtime_header(req.headers())
}

/// The modification time in an `X-OC-Mtime` header (seconds since the epoch).
pub(crate) fn requested_mtime_header(headers: &HeaderMap) -> Option<Timestamp> {
    let raw = headers.get("x-oc-mtime")?.to_str().ok()?.trim();
    let secs: f64 = raw.parse().ok()?;
    let valid = secs.is_finite() && (0.0..=4.0e11).contains(&secs);
    valid.then_some(Timestamp((secs * 1e9) as i64))
}

/// The checksum a client sends with `OC-Checksum` on PUT, when it is of a kind the store
/// computes (SHA-1, SHA-256); others cannot be checked and are let through.
fn announced_checksum<B>(req: &Request<B>) -> Option<Checksum> {
    if req.method() != Method::PUT {
        return None;
    }
    Checksum::parse(req.headers().get("oc-checksum")?.to_str().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_zero_and_one_are_finite() {
        let mut headers = HeaderMap::new();
        assert!(!has_finite_depth(&headers));
        headers.insert("depth", HeaderValue::from_static("1"));
        assert!(has_finite_depth(&headers));
        headers.insert("depth", HeaderValue::from_static("infinity"));
        assert!(!has_finite_depth(&headers));
    }

    #[test]
    fn oc_mtime_accepts_seconds_and_refuses_nonsense() {
        let put = |v: &str| {
            Request::put("/dav/a")
                .header("x-oc-mtime", v)
                .body(())
                .expect("request builds")
        };
        assert_eq!(
            requested_mtime(&put("1700000000")),
            Some(Timestamp::from_secs(1_700_000_000))
        );
        assert_eq!(requested_mtime(&put("-5")), None);
        assert_eq!(requested_mtime(&put("soon")), None);
    }
}
