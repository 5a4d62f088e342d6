//! A file's versions in the REST API: list, download and restore.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ruche_store::NodeId;
use serde_json::{json, Value};

use crate::api::ApiError;
use crate::authn;
use crate::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/files/{file}/versions", get(list))
        .route("/api/files/{file}/versions/{version}", get(download))
        .route(
            "/api/files/{file}/versions/{version}/restore",
            post(restore),
        )
}

/// The caller's file `file`, refused as not found when it is anyone else's.
async fn own_file(
    state: &SharedState,
    peer: SocketAddr,
    headers: &HeaderMap,
    file: i64,
) -> Result<(ruche_store::User, NodeId), ApiError> {
    let user = authn::authenticate(state, headers, peer.ip()).await?;
    match state.store.node(NodeId(file))? {
        Some(node) if node.space == user.space && !node.is_dir => Ok((user, node.id)),
        _ => Err(ApiError::NotFound),
    }
}

async fn list(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(file): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let (_, file) = own_file(&state, peer, &headers, file).await?;
    let versions: Vec<Value> = state
        .store
        .versions(file)?
        .into_iter()
        .map(|v| {
            json!({
                "id": v.id,
                "size": v.size,
                "modified_at": v.modified.as_secs(),
                "replaced_at": v.replaced.as_secs(),
                "replaced_by": v.replaced_by.map(|u| u.0),
            })
        })
        .collect();
    Ok(Json(Value::Array(versions)))
}

async fn download(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((file, version)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    let (_, file) = own_file(&state, peer, &headers, file).await?;
    let version = state.store.version(file, version)?;
    let content = state.store.open_version(&version)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_DISPOSITION, "attachment"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        crate::files::streamed(content),
    )
        .into_response())
}

async fn restore(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((file, version)): Path<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    let (user, file) = own_file(&state, peer, &headers, file).await?;
    let node = state
        .store
        .restore_version(user.space, file, version, Some(user.id))?;
    Ok(Json(json!({ "id": node.id.0, "size": node.size })))
}
