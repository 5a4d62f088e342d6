//! A file's versions over WebDAV, as Nextcloud serves them at
//! `/remote.php/dav/versions/<user>/versions/<file id>/`: PROPFIND lists them, GET reads
//! one, and a MOVE to `/remote.php/dav/versions/<user>/restore/` makes it the file's content
//! again.

use std::fmt::Write;
use std::io::Read;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use ruche_store::{NodeId, Store, StoreError, Version};

use crate::fs::blocking;
use crate::listing::{
    collection_listing, depth_one, destination_below, failure, multistatus, open_multistatus,
};
use crate::propfind::escape;
use crate::{plain, Body, Principal};

#[derive(Debug, PartialEq)]
enum Target {
    /// The versions of one file.
    File(NodeId),
    /// One version of a file.
    Version(NodeId, i64),
    /// Where versions are moved to be restored.
    Restore,
}

fn parse_target(rest: &str) -> Option<Target> {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["versions", file] => file.parse().ok().map(|id| Target::File(NodeId(id))),
        ["versions", file, version] => Some(Target::Version(
            NodeId(file.parse().ok()?),
            version.parse().ok()?,
        )),
        ["restore", ..] => Some(Target::Restore),
        _ => None,
    }
}

/// Answers one request under `prefix` (`/remote.php/dav/versions/<user>`).
pub async fn handle<B>(
    store: &Arc<Store>,
    req: Request<B>,
    who: &Principal,
    prefix: &str,
) -> Response<Body> {
    let Some(target) = req.uri().path().strip_prefix(prefix).and_then(parse_target) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    // Only the caller's own files, in the tree (not in the trash), have versions here.
    let file = match target {
        Target::File(file) | Target::Version(file, _) => Some(file),
        Target::Restore => None,
    };
    if let Some(file) = file {
        match blocking(|| store.node(file)) {
            Ok(Some(node)) if node.space == who.space && !node.is_dir => {}
            Ok(_) => return plain(StatusCode::NOT_FOUND, "not found"),
            Err(error) => return failure(&error),
        }
    }
    let depth_one = depth_one(&req);
    match (req.method().as_str(), target) {
        ("PROPFIND", Target::File(file)) => match blocking(|| store.versions(file)) {
            Ok(versions) => collection_listing(
                &format!("{prefix}/versions/{file}/"),
                depth_one.then_some(&versions[..]),
                |out, version| describe(out, prefix, version),
            ),
            Err(error) => failure(&error),
        },
        ("PROPFIND", Target::Version(file, id)) => match blocking(|| store.version(file, id)) {
            Ok(version) => {
                let mut out = open_multistatus();
                describe(&mut out, prefix, &version);
                multistatus(out)
            }
            Err(error) => failure(&error),
        },
        ("GET", Target::Version(file, id)) => match blocking(|| read_version(store, file, id)) {
            Ok(bytes) => {
                let mut response = Response::new(Body::from(bytes::Bytes::from(bytes)));
                let headers = response.headers_mut();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/octet-stream"),
                );
                headers.insert(
                    "content-disposition",
                    http::HeaderValue::from_static("attachment"),
                );
                headers.insert(
                    "x-content-type-options",
                    http::HeaderValue::from_static("nosniff"),
                );
                response
            }
            Err(error) => failure(&error),
        },
        ("MOVE", Target::Version(file, id)) => {
            let to_restore = destination_below(&req, prefix).and_then(|rest| parse_target(&rest))
                == Some(Target::Restore);
            if !to_restore {
                return plain(
                    StatusCode::FORBIDDEN,
                    "a version can only be moved to restore/",
                );
            }
            match blocking(|| store.restore_version(who.space, file, id, Some(who.user))) {
                Ok(_) => plain(StatusCode::CREATED, "restored"),
                Err(error) => failure(&error),
            }
        }
        ("PROPFIND", Target::Restore) => {
            collection_listing::<()>(&format!("{prefix}/restore/"), None, |_, _| {})
        }
        _ => plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "versions are listed, read and restored only",
        ),
    }
}

/// A version's content. Versions are read whole: they are documents people look back at,
/// and the drive's large files are read through the file itself.
fn read_version(store: &Store, file: NodeId, id: i64) -> Result<Vec<u8>, StoreError> {
    let version = store.version(file, id)?;
    let mut bytes = Vec::new();
    store
        .open_version(&version)?
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::Corrupt(format!("version {id}: {e}")))?;
    Ok(bytes)
}

fn describe(out: &mut String, prefix: &str, version: &Version) {
    let url = format!("{prefix}/versions/{}/{}", version.node, version.id);
    let _ = write!(
        out,
        "<D:response><D:href>{}</D:href><D:propstat><D:prop>\
         <D:resourcetype/><D:getcontentlength>{}</D:getcontentlength>\
         <D:getlastmodified>{}</D:getlastmodified>\
         <D:getetag>\"{}\"</D:getetag>\
         <D:getcontenttype>application/octet-stream</D:getcontenttype>\
         </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>",
        escape(&url),
        version.size,
        httpdate::fmt_http_date(version.modified.into()),
        version.content.as_str(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_file_a_version_and_the_restore_place() {
        assert_eq!(parse_target("/versions/12"), Some(Target::File(NodeId(12))));
        assert_eq!(
            parse_target("/versions/12/7"),
            Some(Target::Version(NodeId(12), 7))
        );
        assert_eq!(parse_target("/restore/target"), Some(Target::Restore));
        assert_eq!(parse_target("/versions/douze"), None);
        assert_eq!(parse_target("/ailleurs"), None);
    }
}
