//! The drive in the REST API, for the web app: list a folder, create folders, upload and
//! download contents (streamed both ways), move, copy and delete. Paths are `/`-separated,
//! relative to the caller's space, in the `path` query parameter or the JSON body.

use std::io::Read;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use ruche_store::{CommitOptions, Node};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::ApiError;
use crate::authn;
use crate::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/files", axum::routing::delete(remove))
        .route("/api/files/list", get(list))
        .route("/api/files/folder", post(create_folder))
        .route("/api/files/move", post(move_item))
        .route("/api/files/copy", post(copy_item))
        .route("/api/files/content", get(download).put(upload))
}

#[derive(Deserialize)]
struct At {
    #[serde(default)]
    path: String,
}

#[derive(Deserialize)]
struct FromTo {
    from: String,
    to: String,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// One file or folder as the API shows it.
fn item(node: &Node) -> Value {
    json!({
        "id": node.id.0,
        "name": node.name,
        "is_dir": node.is_dir,
        "size": node.size,
        "modified_at": node.modified.as_secs(),
        "etag": node.etag(),
    })
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ruche_store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::from)
}

async fn list(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(at): Query<At>,
) -> Result<Json<Value>, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let store = state.store.clone();
    let (folder, children) = blocking(move || {
        let folder = store.lookup(user.space, &segments(&at.path))?;
        let children = if folder.is_dir {
            store.children(folder.id)?
        } else {
            Vec::new()
        };
        Ok((folder, children))
    })
    .await?;
    if !folder.is_dir {
        return Err(ApiError::Conflict(
            "a file where a folder is needed, or the reverse",
        ));
    }
    Ok(Json(json!({
        "folder": item(&folder),
        "children": children.iter().map(item).collect::<Vec<_>>(),
    })))
}

async fn create_folder(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(at): Json<At>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let store = state.store.clone();
    let folder =
        blocking(move || store.create_folder(user.space, &segments(&at.path), Some(user.id)))
            .await?;
    Ok((StatusCode::CREATED, Json(item(&folder))))
}

async fn move_item(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<FromTo>,
) -> Result<Json<Value>, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let store = state.store.clone();
    let moved = blocking(move || {
        let (from, to) = (segments(&body.from), segments(&body.to));
        store.move_node(user.space, &from, &to, false, Some(user.id))
    })
    .await?;
    Ok(Json(item(&moved)))
}

async fn copy_item(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<FromTo>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let store = state.store.clone();
    let copy = blocking(move || {
        let (from, to) = (segments(&body.from), segments(&body.to));
        store.copy_node(user.space, &from, &to, false, Some(user.id))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(item(&copy))))
}

/// Moves an item to the trash.
async fn remove(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(at): Query<At>,
) -> Result<StatusCode, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    if segments(&at.path).is_empty() {
        return Err(ApiError::BadRequest(
            "the top of the drive cannot be deleted",
        ));
    }
    let store = state.store.clone();
    blocking(move || store.remove(user.space, &segments(&at.path), Some(user.id))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Writes the request body to the file at `path`, created or overwritten (the previous
/// content becomes a version). Nothing changes unless the whole body arrived.
async fn upload(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(at): Query<At>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let existed = state.store.lookup(user.space, &segments(&at.path)).is_ok();
    let mut upload = state.store.begin_upload(user.space)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::BadRequest("the upload was cut short"))?;
        upload = tokio::task::spawn_blocking(move || upload.write(&chunk).map(|()| upload))
            .await
            .map_err(|e| ApiError::Internal(e.into()))??;
    }
    let store = state.store.clone();
    let node = blocking(move || {
        let options = CommitOptions {
            author: Some(user.id),
            ..CommitOptions::default()
        };
        store.commit_upload(user.space, &segments(&at.path), upload, options)
    })
    .await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(item(&node))))
}

/// The content of the file at `path`, streamed, as an attachment that is never rendered
/// on the app's origin.
async fn download(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(at): Query<At>,
) -> Result<Response, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let store = state.store.clone();
    let (node, content) = blocking(move || {
        let node = store.lookup(user.space, &segments(&at.path))?;
        let content = store.open_content(&node)?;
        Ok((node, content))
    })
    .await?;
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(&node.name, percent_encoding::NON_ALPHANUMERIC)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, node.size.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
        ],
        streamed(content),
    )
        .into_response())
}

/// A response body read from `content` by a blocking thread, a chunk at a time, so that
/// a large file never sits in memory.
pub fn streamed(mut content: Box<dyn ruche_store::BlobRead>) -> Body {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || loop {
        let mut buffer = vec![0; 256 * 1024];
        match content.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                buffer.truncate(n);
                if sender.blocking_send(Ok(Bytes::from(buffer))).is_err() {
                    break;
                }
            }
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
                break;
            }
        }
    });
    Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        receiver.poll_recv(cx)
    }))
}
