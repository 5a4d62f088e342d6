//! The RFC 6578 `sync-collection` REPORT: the changes below a folder since a sync token,
//! in time proportional to their number.
//!
//! A token is the drive's global change counter as a URI. An empty token asks for every
//! member, as a first sync does; a token the drive never issued is refused with the
//! `DAV:valid-sync-token` precondition, after which a client starts over.

use std::collections::HashMap;
use std::fmt::Write;
use std::io::Cursor;

use http::{HeaderValue, Response, StatusCode};
use ruche_store::{SpaceId, Store, StoreError};

use crate::href::href;
use crate::propfind::{self, Context, Entry, Request};
use crate::Body;
use crate::{plain, precondition_refusal};

const DAV_NS: &str = "DAV:";
const TOKEN_PREFIX: &str = "urn:ruche:sync:";

/// The URI form of a point of the change counter.
pub fn token_uri(change: i64) -> String {
    format!("{TOKEN_PREFIX}{change}")
}

/// The point of the change counter a token names, if it is one of ours.
pub fn parse_token(uri: &str) -> Option<i64> {
    uri.trim()
        .strip_prefix(TOKEN_PREFIX)?
        .parse()
        .ok()
        .filter(|n| *n >= 0)
}

/// Whether a REPORT body asks for a `DAV:sync-collection`.
pub(crate) fn is_sync_collection(body: &[u8]) -> bool {
    xmltree::Element::parse(Cursor::new(body)).is_ok_and(|root| {
        root.name == "sync-collection" && root.namespace.as_deref() == Some(DAV_NS)
    })
}

struct SyncRequest {
    since: Option<i64>,
    deep: bool,
    props: Request,
}

enum BadRequest {
    Malformed(&'static str),
    UnknownToken,
}

fn parse(body: &[u8]) -> Result<SyncRequest, BadRequest> {
    let root = xmltree::Element::parse(Cursor::new(body))
        .map_err(|_| BadRequest::Malformed("malformed XML body"))?;
    let child = |name: &str| {
        root.children
            .iter()
            .filter_map(|n| n.as_element())
            .find(|e| e.name == name && e.namespace.as_deref() == Some(DAV_NS))
    };
    let text = |name: &str| {
        child(name)
            .and_then(|e| e.get_text())
            .map(|t| t.trim().to_owned())
            .unwrap_or_default()
    };
    let token = text("sync-token");
    let since = if token.is_empty() {
        None
    } else {
        Some(parse_token(&token).ok_or(BadRequest::UnknownToken)?)
    };
    let deep = match text("sync-level").as_str() {
        "1" => false,
        "infinite" | "infinity" => true,
        _ => {
            return Err(BadRequest::Malformed(
                "DAV:sync-level must be 1 or infinite",
            ))
        }
    };
    let props = match child("prop") {
        Some(prop) => Request::Props(propfind::prop_names(prop)),
        None => Request::Props(Vec::new()),
    };
    Ok(SyncRequest { since, deep, props })
}

/// Answers a `sync-collection` REPORT on the folder at `target` of `space`.
pub(crate) fn report(
    store: &Store,
    prefix: &str,
    space: SpaceId,
    target: &[String],
    body: &[u8],
) -> Response<Body> {
    let request = match parse(body) {
        Ok(request) => request,
        Err(BadRequest::Malformed(reason)) => return plain(StatusCode::BAD_REQUEST, reason),
        Err(BadRequest::UnknownToken) => return invalid_token(),
    };
    let answer = (|| {
        let target = ruche_store::normalize_path(target)?;
        let folder = store.lookup(space, &target)?;
        if !folder.is_dir {
            return Ok(None);
        }
        let changes = store.changes_since(&folder, request.since, request.deep)?;
        let mut dead = HashMap::new();
        let mut checksums = HashMap::new();
        for (node, _) in &changes.changed {
            dead.insert(node.id, store.dead_props(node.id)?);
            if request.props.wants_checksums() {
                if let Some(sha1) = store.sha1_of(node)? {
                    checksums.insert(node.id, sha1);
                }
            }
        }
        let ctx = Context {
            store,
            prefix,
            space: store.space(space)?,
            locks: store.locks(space)?,
            dead,
            checksums,
        };
        let entries: Vec<Entry> = changes
            .changed
            .into_iter()
            .map(|(node, below)| {
                let mut segments = target.clone();
                segments.extend(below);
                Entry { node, segments }
            })
            .collect();
        let mut extra = String::new();
        for below in changes.gone {
            let mut segments = target.clone();
            segments.extend(below);
            let _ = write!(
                extra,
                "<D:response><D:href>{}</D:href>\
                 <D:status>HTTP/1.1 404 Not Found</D:status></D:response>",
                propfind::escape(&href(prefix, &segments, false))
            );
        }
        let _ = write!(
            extra,
            "<D:sync-token>{}</D:sync-token>",
            propfind::escape(&token_uri(changes.token))
        );
        Ok::<_, StoreError>(Some(propfind::render_with(
            &ctx,
            &request.props,
            &entries,
            &extra,
        )))
    })();
    match answer {
        Ok(Some(xml)) => {
            let mut response = Response::new(Body::from(xml));
            *response.status_mut() = StatusCode::MULTI_STATUS;
            response.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/xml; charset=utf-8"),
            );
            response
        }
        Ok(None) => plain(
            StatusCode::FORBIDDEN,
            "sync-collection is answered on folders only",
        ),
        Err(StoreError::InvalidToken) => invalid_token(),
        Err(StoreError::NotFound { .. } | StoreError::InvalidName { .. }) => {
            plain(StatusCode::NOT_FOUND, "not found")
        }
        Err(error) => {
            tracing::error!(%error, "sync-collection REPORT failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

fn invalid_token() -> Response<Body> {
    precondition_refusal("valid-sync-token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(parse_token(&token_uri(42)), Some(42));
        assert_eq!(parse_token("http://example.com/sync/42"), None);
        assert_eq!(parse_token("urn:ruche:sync:-1"), None);
    }

    #[test]
    fn a_sync_collection_body_is_read() {
        let body = concat!(
            r#"<d:sync-collection xmlns:d="DAV:">"#,
            r#"<d:sync-token>urn:ruche:sync:7</d:sync-token>"#,
            r#"<d:sync-level>infinite</d:sync-level>"#,
            r#"<d:prop><d:getetag/></d:prop></d:sync-collection>"#,
        )
        .as_bytes();
        assert!(is_sync_collection(body));
        let Ok(request) = parse(body) else {
            panic!("not parsed")
        };
        assert_eq!(request.since, Some(7));
        assert!(request.deep);
        assert!(!is_sync_collection(
            b"<d:expand-property xmlns:d=\"DAV:\"/>"
        ));
        assert!(matches!(
            parse(
                concat!(
                    r#"<d:sync-collection xmlns:d="DAV:"><d:sync-token>x</d:sync-token>"#,
                    r#"<d:sync-level>1</d:sync-level></d:sync-collection>"#
                )
                .as_bytes()
            ),
            Err(BadRequest::UnknownToken)
        ));
    }
}
