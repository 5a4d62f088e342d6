//! Multistatus answers of the collections ruche describes itself (the trash, versions),
//! and how their store errors are told.

use std::fmt::Write;

use http::{Request, Response, StatusCode};
use ruche_store::StoreError;

use crate::propfind::{escape, NC_NS};
use crate::{plain, Body, OC_NS};

pub(crate) fn failure(error: &StoreError) -> Response<Body> {
    match error {
        StoreError::NotFound { .. } => plain(StatusCode::NOT_FOUND, "not found"),
        StoreError::QuotaExceeded { .. } => {
            plain(StatusCode::INSUFFICIENT_STORAGE, "the space is full")
        }
        other => {
            tracing::error!(error = %other, "request failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

pub(crate) fn open_multistatus() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <D:multistatus xmlns:D=\"DAV:\" xmlns:oc=\"{OC_NS}\" xmlns:nc=\"{NC_NS}\">"
    )
}

pub(crate) fn multistatus(mut out: String) -> Response<Body> {
    out.push_str("</D:multistatus>\n");
    let mut response = Response::new(Body::from(out));
    *response.status_mut() = StatusCode::MULTI_STATUS;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    response
}

pub(crate) fn collection(out: &mut String, href: &str) {
    let _ = write!(
        out,
        "<D:response><D:href>{}</D:href><D:propstat><D:prop>\
         <D:resourcetype><D:collection/></D:resourcetype>\
         </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>",
        escape(href)
    );
}

/// What follows `prefix` in the path of the request's `Destination`, if it is below it.
pub(crate) fn destination_below<B>(req: &Request<B>, prefix: &str) -> Option<String> {
    let value = req.headers().get("destination")?.to_str().ok()?;
    let uri = value.parse::<http::Uri>().ok()?;
    uri.path().strip_prefix(prefix).map(str::to_owned)
}

/// Whether a PROPFIND asks for a collection's members too (`Depth: 1`).
pub(crate) fn depth_one<B>(req: &Request<B>) -> bool {
    req.headers()
        .get("depth")
        .is_some_and(|d| d.as_bytes() == b"1")
}

/// The answer describing the collection at `href` and, when given, its members, each
/// written by `describe`.
pub(crate) fn collection_listing<T>(
    href: &str,
    members: Option<&[T]>,
    mut describe: impl FnMut(&mut String, &T),
) -> Response<Body> {
    let mut out = open_multistatus();
    collection(&mut out, href);
    for member in members.into_iter().flatten() {
        describe(&mut out, member);
    }
    multistatus(out)
}
