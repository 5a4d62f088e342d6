//! The trash in the REST API: list what was deleted, restore it, purge it.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use ruche_store::NodeId;
use serde_json::{json, Value};

use crate::api::ApiError;
use crate::authn;
use crate::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/trash", get(list).delete(empty))
        .route("/api/trash/{id}", delete(purge))
        .route("/api/trash/{id}/restore", post(restore))
}

async fn list(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let items: Vec<Value> = state
        .store
        .trash(user.space)?
        .into_iter()
        .map(|item| {
            json!({
                "id": item.node.id.0,
                "name": item.node.name,
                "is_dir": item.node.is_dir,
                "size": item.node.size,
                "original_path": item.original_path,
                "deleted_at": item.deleted.as_secs(),
            })
        })
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn restore(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let node = state.store.restore(user.space, NodeId(id), Some(user.id))?;
    let path = state.store.path_of(node.id)?;
    Ok(Json(json!({ "id": node.id.0, "path": path.join("/") })))
}

async fn purge(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    state.store.purge(user.space, NodeId(id), Some(user.id))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn empty(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    state.store.empty_trash(user.space, Some(user.id))?;
    Ok(StatusCode::NO_CONTENT)
}
