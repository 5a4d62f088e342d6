//! Browser sessions of the web app: an HttpOnly, SameSite=Strict cookie, and a CSRF token
//! the page sends back in `X-CSRF-Token` with every write. [`guard`] enforces it for every
//! route, in front of the handlers.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::api::ApiError;
use crate::authn::{self, session_secret, SESSION_COOKIE};
use crate::state::SharedState;

/// How long a browser session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const CSRF_HEADER: &str = "x-csrf-token";

pub fn routes() -> Router<SharedState> {
    Router::new().route("/api/session", post(open).get(current).delete(close))
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

fn cookie(state: &SharedState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.scheme == "https" {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Logs in with an account password (app passwords are for clients, not browsers).
async fn open(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<Credentials>,
) -> Result<Response, ApiError> {
    let user =
        authn::check_password(&state, &body.username, &body.password, peer.ip(), false).await?;
    let secret = ruche_auth::new_secret();
    let csrf = ruche_auth::new_secret();
    let expires_at = ruche_store::Timestamp::now().after(SESSION_TTL).as_secs();
    state.store.add_session(
        &ruche_auth::secret_digest(&secret),
        user.id,
        &csrf,
        expires_at,
    )?;
    let body = json!({ "user": user.name, "csrf_token": csrf });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&state, &secret, SESSION_TTL.as_secs()),
    );
    Ok(response)
}

/// Who the session is, and its CSRF token, for a page that was reloaded.
async fn current(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let secret = session_secret(&headers).ok_or(ApiError::Unauthorized)?;
    let (id, csrf) = state
        .store
        .session(&ruche_auth::secret_digest(secret))?
        .ok_or(ApiError::Unauthorized)?;
    let user = state.store.user(id)?.ok_or(ApiError::Unauthorized)?;
    Ok(Json(json!({ "user": user.name, "csrf_token": csrf })))
}

async fn close(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(secret) = session_secret(&headers) {
        state
            .store
            .remove_session(&ruche_auth::secret_digest(secret))?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, "", 0));
    Ok(response)
}

/// Whether the request's `Origin`, when it has one, is this server.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    origin_host.is_some() && origin_host == host
}

/// Refuses, before any handler, what another site could make a logged-in browser send:
/// a request that relies on the session cookie from a foreign origin (WebSocket upgrades
/// included), and a cookie-authenticated write without the session's CSRF token.
pub async fn guard(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let by_cookie =
        headers.get(header::AUTHORIZATION).is_none() && session_secret(headers).is_some();
    let path = req.uri().path();
    let logging_in = req.method() == Method::POST && path == "/api/session";
    // The login flow of the desktop clients authenticates by the form it posts, not by a
    // cookie the browser may also hold.
    let login_flow = path.starts_with("/login/") || path.starts_with("/index.php/login/");
    if (by_cookie || logging_in) && !login_flow && !same_origin(headers) {
        return forbidden("cross-origin request refused");
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if by_cookie && !safe && !logging_in && !login_flow {
        let secret = session_secret(headers).unwrap_or_default();
        let expected = state
            .store
            .session(&ruche_auth::secret_digest(secret))
            .ok()
            .flatten()
            .map(|(_, csrf)| csrf);
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        // An unknown session falls through: authentication answers 401.
        if expected.is_some() && sent != expected.as_deref() {
            return forbidden("a write from the web app needs its X-CSRF-Token");
        }
    }
    next.run(req).await
}

fn forbidden(reason: &str) -> Response {
    (StatusCode::FORBIDDEN, Json(json!({ "error": reason }))).into_response()
}
