//! The trash over WebDAV, as Nextcloud serves it at `/remote.php/dav/trashbin/<user>/`:
//! `trash/` lists the deleted items (PROPFIND), an item is purged with DELETE and restored
//! with a MOVE to `restore/`, and DELETE on `trash/` empties it.
//!
//! An item is named `<name>.d<id>`: the name it had, made unique by its node id. Clients
//! show `nc:trashbin-filename` and `nc:trashbin-original-location` rather than parse it.

use std::fmt::Write;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use ruche_store::{NodeId, Store, TrashItem};

use crate::fs::blocking;
use crate::href::href;
use crate::listing::{
    collection, collection_listing, depth_one, destination_below, failure, multistatus,
    open_multistatus,
};
use crate::propfind::escape;
use crate::{plain, Body, Principal};

/// What a trashbin URL names, below the user's prefix.
#[derive(Debug, PartialEq)]
enum Target {
    /// The user's trashbin collection, holding `trash/` and `restore/`.
    Home,
    /// The trash itself.
    Trash,
    /// One deleted item.
    Item(NodeId),
    /// The place items are moved to be restored.
    Restore,
}

fn parse_target(rest: &str) -> Option<Target> {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [] => Some(Target::Home),
        ["trash"] => Some(Target::Trash),
        ["trash", item] => item_id(item).map(Target::Item),
        ["restore", ..] => Some(Target::Restore),
        _ => None,
    }
}

fn item_id(segment: &str) -> Option<NodeId> {
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?;
    let (_, id) = decoded.rsplit_once(".d")?;
    id.parse().ok().map(NodeId)
}

fn item_segment(item: &TrashItem) -> String {
    format!("{}.d{}", item.node.name, item.node.id)
}

/// Answers one request under `prefix` (`/remote.php/dav/trashbin/<user>`).
pub async fn handle<B>(
    store: &Arc<Store>,
    req: Request<B>,
    who: &Principal,
    prefix: &str,
) -> Response<Body> {
    let path = req.uri().path();
    let Some(target) = path.strip_prefix(prefix).and_then(parse_target) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let depth_one = depth_one(&req);
    let space = who.space;
    match (req.method().as_str(), target) {
        ("PROPFIND", Target::Home) => {
            let mut out = open_multistatus();
            collection(&mut out, &format!("{prefix}/"));
            if depth_one {
                collection(&mut out, &format!("{prefix}/trash/"));
                collection(&mut out, &format!("{prefix}/restore/"));
            }
            multistatus(out)
        }
        ("PROPFIND", Target::Trash) => match blocking(|| store.trash(space)) {
            Ok(items) => collection_listing(
                &format!("{prefix}/trash/"),
                depth_one.then_some(&items[..]),
                |out, item| describe(out, prefix, item),
            ),
            Err(error) => failure(&error),
        },
        ("PROPFIND", Target::Item(id)) => match blocking(|| store.trash_item(space, id)) {
            Ok(item) => {
                let mut out = open_multistatus();
                describe(&mut out, prefix, &item);
                multistatus(out)
            }
            Err(error) => failure(&error),
        },
        ("PROPFIND", Target::Restore) => {
            collection_listing::<()>(&format!("{prefix}/restore/"), None, |_, _| {})
        }
        ("MOVE", Target::Item(id)) => {
            let to_restore = destination_below(&req, prefix).and_then(|rest| parse_target(&rest))
                == Some(Target::Restore);
            if !to_restore {
                return plain(
                    StatusCode::FORBIDDEN,
                    "a trashed item can only be moved to restore/",
                );
            }
            match blocking(|| store.restore(space, id, Some(who.user))) {
                Ok(_) => plain(StatusCode::CREATED, "restored"),
                Err(error) => failure(&error),
            }
        }
        ("DELETE", Target::Item(id)) => match blocking(|| store.purge(space, id, Some(who.user))) {
            Ok(()) => plain(StatusCode::NO_CONTENT, ""),
            Err(error) => failure(&error),
        },
        ("DELETE", Target::Trash) => match blocking(|| store.empty_trash(space, Some(who.user))) {
            Ok(_) => plain(StatusCode::NO_CONTENT, ""),
            Err(error) => failure(&error),
        },
        (method, _) if method == Method::OPTIONS => {
            let mut response = plain(StatusCode::OK, "");
            response
                .headers_mut()
                .insert("dav", http::HeaderValue::from_static("1"));
            response
        }
        _ => plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "the trash is listed, restored and purged only",
        ),
    }
}

fn describe(out: &mut String, prefix: &str, item: &TrashItem) {
    let node = &item.node;
    let url = href(
        &format!("{prefix}/trash"),
        &[item_segment(item)],
        node.is_dir,
    );
    let kind = if node.is_dir { "<D:collection/>" } else { "" };
    let length = if node.is_dir {
        String::new()
    } else {
        format!("<D:getcontentlength>{}</D:getcontentlength>", node.size)
    };
    let _ = write!(
        out,
        "<D:response><D:href>{}</D:href><D:propstat><D:prop>\
         <D:resourcetype>{kind}</D:resourcetype>{length}\
         <D:getlastmodified>{}</D:getlastmodified>\
         <oc:fileid>{}</oc:fileid><oc:size>{}</oc:size>\
         <nc:trashbin-filename>{}</nc:trashbin-filename>\
         <nc:trashbin-original-location>{}</nc:trashbin-original-location>\
         <nc:trashbin-deletion-time>{}</nc:trashbin-deletion-time>\
         </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>",
        escape(&url),
        httpdate::fmt_http_date(node.modified.into()),
        node.id,
        node.size,
        escape(&node.name),
        escape(&item.original_path),
        item.deleted.as_secs(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_trash_its_items_and_the_restore_place() {
        assert_eq!(parse_target(""), Some(Target::Home));
        assert_eq!(parse_target("/trash/"), Some(Target::Trash));
        assert_eq!(
            parse_target("/trash/rapport%20final.odt.d42"),
            Some(Target::Item(NodeId(42)))
        );
        assert_eq!(parse_target("/trash/sans-numero"), None);
        assert_eq!(parse_target("/restore/rapport.odt"), Some(Target::Restore));
        assert_eq!(parse_target("/ailleurs"), None);
    }
}
