//! What the Nextcloud and ownCloud clients ask of a server before and beside WebDAV:
//! `status.php`, the capabilities, and the current user. The WebDAV paths those clients
//! use (`/remote.php/dav/files/<user>/`, `/remote.php/webdav/`) are mounts of the same
//! drive, resolved by [`dav_mount`].

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::api::ApiError;
use crate::authn;
use crate::state::SharedState;

/// The Nextcloud version the clients are told, high enough for the features they check.
const VERSION: [u32; 4] = [29, 0, 0, 0];

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/status.php", get(status))
        .route("/ocs/v1.php/cloud/capabilities", get(capabilities_v1))
        .route("/ocs/v2.php/cloud/capabilities", get(capabilities_v2))
        .route("/ocs/v1.php/cloud/user", get(user_v1))
        .route("/ocs/v2.php/cloud/user", get(user_v2))
}

/// A WebDAV mount: the URL prefix that dav-server strips, and the user the URL names, if
/// it names one (which must then be the caller).
#[derive(Debug, PartialEq)]
pub struct DavMount {
    pub prefix: String,
    pub user_in_url: Option<String>,
}

/// Finds the WebDAV mount a request path falls under, if any.
pub fn dav_mount(path: &str) -> Option<DavMount> {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    for prefix in ["/dav", "/remote.php/webdav"] {
        if under(prefix) {
            return Some(DavMount {
                prefix: prefix.to_owned(),
                user_in_url: None,
            });
        }
    }
    let rest = path.strip_prefix("/remote.php/dav/files/")?;
    let raw_user = rest.split('/').next().filter(|u| !u.is_empty())?;
    let user = percent_encoding::percent_decode_str(raw_user)
        .decode_utf8()
        .ok()?;
    Some(DavMount {
        prefix: format!("/remote.php/dav/files/{raw_user}"),
        user_in_url: Some(user.into_owned()),
    })
}

/// The trashbin of a user (`/remote.php/dav/trashbin/<user>`), if the path falls under one.
pub fn trashbin_mount(path: &str) -> Option<DavMount> {
    user_mount(path, "/remote.php/dav/trashbin/")
}

/// The file versions of a user (`/remote.php/dav/versions/<user>`), if the path falls
/// under them.
pub fn versions_mount(path: &str) -> Option<DavMount> {
    user_mount(path, "/remote.php/dav/versions/")
}

/// A collection of `<base><user>`, with the user decoded from the URL.
fn user_mount(path: &str, base: &str) -> Option<DavMount> {
    let rest = path.strip_prefix(base)?;
    let raw_user = rest.split('/').next().filter(|u| !u.is_empty())?;
    let user = percent_encoding::percent_decode_str(raw_user)
        .decode_utf8()
        .ok()?;
    Some(DavMount {
        prefix: format!("{base}{raw_user}"),
        user_in_url: Some(user.into_owned()),
    })
}

/// The chunked-upload collection of a user (`/remote.php/dav/uploads/<user>`): the URL
/// prefix, the user it names, and the prefix of that user's files.
#[derive(Debug, PartialEq)]
pub struct UploadsMount {
    pub prefix: String,
    pub user_in_url: String,
    pub files_prefix: String,
}

/// Finds the chunked-upload collection a request path falls under, if any.
pub fn uploads_mount(path: &str) -> Option<UploadsMount> {
    let rest = path.strip_prefix("/remote.php/dav/uploads/")?;
    let raw_user = rest.split('/').next().filter(|u| !u.is_empty())?;
    let user = percent_encoding::percent_decode_str(raw_user)
        .decode_utf8()
        .ok()?;
    Some(UploadsMount {
        prefix: format!("/remote.php/dav/uploads/{raw_user}"),
        user_in_url: user.into_owned(),
        files_prefix: format!("/remote.php/dav/files/{raw_user}"),
    })
}

async fn status() -> Json<Value> {
    let [major, minor, micro, _] = VERSION;
    Json(json!({
        "installed": true,
        "maintenance": false,
        "needsDbUpgrade": false,
        "version": VERSION.iter().map(u32::to_string).collect::<Vec<_>>().join("."),
        "versionstring": format!("{major}.{minor}.{micro}"),
        "edition": "",
        "productname": "ruche",
        "extendedSupport": false,
    }))
}

/// The OCS envelope; v1 says success with 100, v2 with 200.
fn ocs(version: u8, data: Value) -> Json<Value> {
    let code = if version == 1 { 100 } else { 200 };
    Json(json!({
        "ocs": {
            "meta": { "status": "ok", "statuscode": code, "message": "OK" },
            "data": data,
        }
    }))
}

fn capabilities_data() -> Value {
    let [major, minor, micro, _] = VERSION;
    json!({
        "version": {
            "major": major, "minor": minor, "micro": micro,
            "string": format!("{major}.{minor}.{micro}"),
            "edition": "", "extendedSupport": false,
        },
        "capabilities": {
            "core": { "pollinterval": 60, "webdav-root": "remote.php/webdav" },
            "dav": { "chunking": "1.0" },
            "checksums": { "supportedTypes": ["SHA1"], "preferredUploadType": "SHA1" },
            "files": { "bigfilechunking": true, "undelete": false, "versioning": false },
        },
    })
}

async fn capabilities_v1() -> Json<Value> {
    ocs(1, capabilities_data())
}

async fn capabilities_v2() -> Json<Value> {
    ocs(2, capabilities_data())
}

async fn user(
    state: &SharedState,
    headers: &HeaderMap,
    peer: SocketAddr,
    version: u8,
) -> Result<Json<Value>, ApiError> {
    let user = authn::authenticate(state, headers, peer.ip()).await?;
    let space = state.store.space(user.space)?;
    let quota = match space.quota {
        Some(total) => json!({ "free": total.saturating_sub(space.used), "used": space.used,
                               "total": total, "relative": 0.0, "quota": total }),
        None => json!({ "free": -3, "used": space.used, "total": -3, "relative": 0.0,
                        "quota": -3 }),
    };
    Ok(ocs(
        version,
        json!({ "id": user.name, "display-name": user.name, "email": null, "quota": quota }),
    ))
}

async fn user_v1(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    user(&state, &headers, peer, 1).await.into_response()
}

async fn user_v2(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match user(&state, &headers, peer, 2).await {
        Ok(answer) => answer.into_response(),
        Err(ApiError::Unauthorized) => StatusCode::UNAUTHORIZED.into_response(),
        Err(other) => other.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_path_finds_its_mount() {
        assert_eq!(dav_mount("/dav/a").map(|m| m.prefix), Some("/dav".into()));
        assert_eq!(dav_mount("/dav").map(|m| m.prefix), Some("/dav".into()));
        assert_eq!(dav_mount("/davx"), None);
        let files = dav_mount("/remote.php/dav/files/marie%40gouv.fr/Documents/a.odt");
        assert_eq!(
            files,
            Some(DavMount {
                prefix: "/remote.php/dav/files/marie%40gouv.fr".into(),
                user_in_url: Some("marie@gouv.fr".into()),
            })
        );
        assert_eq!(
            dav_mount("/remote.php/webdav/").map(|m| m.prefix),
            Some("/remote.php/webdav".into())
        );
        assert_eq!(dav_mount("/remote.php/dav/files/"), None);
    }
}
