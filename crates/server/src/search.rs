//! Search in the REST API: `GET /api/search?q=...` over the caller's space.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::ApiError;
use crate::authn;
use crate::state::SharedState;

const MAX_RESULTS: usize = 200;

pub fn routes() -> Router<SharedState> {
    Router::new().route("/api/search", get(search))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

async fn search(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    if query.q.trim().is_empty() || query.q.len() > 200 {
        return Err(ApiError::BadRequest("q must have 1 to 200 characters"));
    }
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_RESULTS);
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || store.search(user.space, &query.q, limit))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    let results: Vec<Value> = found
        .into_iter()
        .map(|f| {
            json!({
                "id": f.node.id.0,
                "name": f.node.name,
                "path": f.path.join("/"),
                "is_dir": f.node.is_dir,
                "size": f.node.size,
                "modified_at": f.node.modified.as_secs(),
                "matched": match f.matched {
                    ruche_store::Match::Name => "name",
                    ruche_store::Match::Text => "text",
                },
            })
        })
        .collect();
    Ok(Json(Value::Array(results)))
}
