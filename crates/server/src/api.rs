//! The REST API under `/api/`: sessions and app passwords.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::authn::{self, AuthFailure};
use crate::state::{SharedState, ACCESS_TTL, REFRESH_TTL};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/public-key", axum::routing::get(public_key))
        .route(
            "/api/auth/app-passwords",
            post(create_app_password).get(list_app_passwords),
        )
        .route("/api/auth/app-passwords/{id}", delete(revoke_app_password))
}

/// The one place where API failures become HTTP answers. Client errors say what to fix;
/// server errors say nothing beyond the request id, and the detail goes to the log.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(&'static str),
    Unauthorized,
    Throttled,
    NotFound,
    Conflict(&'static str),
    InsufficientStorage,
    Internal(anyhow::Error),
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> ApiError {
        match failure {
            AuthFailure::Unauthorized => ApiError::Unauthorized,
            AuthFailure::Throttled => ApiError::Throttled,
            AuthFailure::Internal => ApiError::Internal(anyhow::anyhow!("authentication failed")),
        }
    }
}

impl From<ruche_store::StoreError> for ApiError {
    /// What the caller may not see or cannot have is simply not found; a full space is
    /// said so; anything else is the server's failure.
    fn from(error: ruche_store::StoreError) -> ApiError {
        use ruche_store::StoreError as E;
        match error {
            E::NotFound { .. } => ApiError::NotFound,
            E::QuotaExceeded { .. } | E::DiskFull { .. } => ApiError::InsufficientStorage,
            E::InvalidName { .. } => ApiError::BadRequest("invalid name"),
            E::ParentMissing { .. } => ApiError::Conflict("the parent folder does not exist"),
            E::AlreadyExists { .. } => ApiError::Conflict("something already has that name"),
            E::WrongKind { .. } => {
                ApiError::Conflict("a file where a folder is needed, or the reverse")
            }
            E::IntoItself { .. } => ApiError::Conflict("a folder cannot go into itself"),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<ruche_auth::AuthError> for ApiError {
    fn from(error: ruche_auth::AuthError) -> ApiError {
        ApiError::Internal(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "invalid credentials"),
            ApiError::Throttled => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed attempts, try later",
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not found"),
            ApiError::Conflict(message) => (StatusCode::CONFLICT, message),
            ApiError::InsufficientStorage => (
                StatusCode::INSUFFICIENT_STORAGE,
                "the space is full: empty the trash or delete files",
            ),
            ApiError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                )
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct TokenPair {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
}

fn issue_pair(
    state: &SharedState,
    user: ruche_store::UserId,
    family: &str,
) -> Result<TokenPair, ApiError> {
    let (access_token, _) = state.keys.issue(&user.0.to_string(), ACCESS_TTL)?;
    let refresh_token = ruche_auth::new_secret();
    let expires_at = ruche_store::Timestamp::now().after(REFRESH_TTL).as_secs();
    state.store.add_refresh_token(
        &ruche_auth::secret_digest(&refresh_token),
        user,
        family,
        expires_at,
    )?;
    Ok(TokenPair {
        access_token,
        token_type: "Bearer",
        expires_in: ACCESS_TTL.as_secs(),
        refresh_token,
    })
}

async fn login(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let user =
        authn::check_password(&state, &body.username, &body.password, peer.ip(), false).await?;
    let family = ruche_auth::new_secret();
    Ok(Json(issue_pair(&state, user.id, &family)?))
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh(
    State(state): State<SharedState>,
    Json(body): Json<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let digest = ruche_auth::secret_digest(&body.refresh_token);
    match state.store.use_refresh_token(&digest)? {
        ruche_store::RefreshOutcome::Valid { user, family } => {
            Ok(Json(issue_pair(&state, user, &family)?))
        }
        ruche_store::RefreshOutcome::Replayed => {
            tracing::warn!("a spent refresh token was presented again; its session is revoked");
            Err(ApiError::Unauthorized)
        }
        ruche_store::RefreshOutcome::Invalid => Err(ApiError::Unauthorized),
    }
}

#[derive(Deserialize)]
struct LogoutRequest {
    refresh_token: Option<String>,
}

async fn logout(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Json(body): Json<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    if let Some(token) = &body.refresh_token {
        state
            .store
            .revoke_refresh_family_of(&ruche_auth::secret_digest(token))?;
    }
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(claims) = bearer.and_then(|t| state.verifier.verify(t).ok()) {
        let exp = i64::try_from(claims.exp).unwrap_or(i64::MAX);
        state.store.revoke_access_token(&claims.jti, exp)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn public_key(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
        state.keys.public_pem().to_owned(),
    )
}

#[derive(Deserialize)]
struct NewAppPassword {
    label: String,
}

async fn create_app_password(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<NewAppPassword>,
) -> Result<impl IntoResponse, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let label = body.label.trim();
    if label.is_empty() || label.len() > 100 {
        return Err(ApiError::BadRequest("label must have 1 to 100 characters"));
    }
    let secret = ruche_auth::new_app_password();
    let id = state
        .store
        .add_app_password(user.id, label, &ruche_auth::secret_digest(&secret))?;
    let body = json!({ "id": id, "label": label, "password": secret });
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list_app_passwords(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    let list: Vec<_> = state
        .store
        .app_passwords(user.id)?
        .into_iter()
        .map(|p| json!({ "id": p.id, "label": p.label, "created_at": p.created_at }))
        .collect();
    Ok(Json(list))
}

async fn revoke_app_password(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let user = authn::authenticate(&state, &headers, peer.ip()).await?;
    if !state.store.revoke_app_password(user.id, id)? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}
