//! The activity feeds in the REST API: a space's, and a file's.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use ruche_store::{ActivityEntry, NodeId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::ApiError;
use crate::authn;
use crate::state::SharedState;

const MAX_ENTRIES: usize = 500;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/activity", get(space_feed))
        .route("/api/files/{file}/activity", get(file_feed))
}

#[derive(Deserialize)]
struct Page {
    before: Option<i64>,
    limit: Option<usize>,
}

/// One entry as the API shows it; also one line of the administrator's export.
pub fn entry_json(entry: &ActivityEntry) -> Value {
    json!({
        "id": entry.id,
        "at": entry.at.as_secs(),
        "space": entry.space.0,
        "file": entry.node.map(|n| n.0),
        "actor": entry.actor.map(|a| a.0),
        "action": entry.action,
        "path": entry.path,
        "from": entry.detail,
    })
}

async fn space_feed(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let limit = page.limit.unwrap_or(100).clamp(1, MAX_ENTRIES);
    let entries = state.store.space_activity(user.space, page.before, limit)?;
    Ok(Json(entries.iter().map(entry_json).collect()))
}

async fn file_feed(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(file): Path<i64>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    match state.store.node(NodeId(file))? {
        Some(node) if node.space == user.space => {}
        _ => return Err(ApiError::NotFound),
    }
    let limit = page.limit.unwrap_or(100).clamp(1, MAX_ENTRIES);
    let entries = state.store.node_activity(NodeId(file), limit)?;
    Ok(Json(entries.iter().map(entry_json).collect()))
}
