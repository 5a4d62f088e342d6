//! Who is calling: Basic credentials (account or app password) or a bearer access token.
//! Every service of the server authenticates through here.

use std::net::IpAddr;

use axum::http::HeaderMap;
use base64::Engine;
use ruche_store::User;

use crate::state::AppState;

/// Why a request could not be authenticated.
#[derive(Debug, PartialEq)]
pub enum AuthFailure {
    /// No credentials, or wrong ones.
    Unauthorized,
    /// Too many failures for this account or address; try later.
    Throttled,
    /// The store failed; the detail is logged.
    Internal,
}

/// The cookie of a browser session.
pub const SESSION_COOKIE: &str = "ruche_session";

/// The secret of the session cookie a request carries, if any.
pub fn session_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}

/// Establishes the user behind a request: its `Authorization` header, or else the session
/// cookie of the web app (whose writes the CSRF guard of the router has checked).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: IpAddr,
) -> Result<User, AuthFailure> {
    let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
        return match session_secret(headers) {
            Some(secret) => session_user(state, secret),
            None => Err(AuthFailure::Unauthorized),
        };
    };
    let header = header.to_str().map_err(|_| AuthFailure::Unauthorized)?;
    if let Some(token) = strip_scheme(header, "Bearer") {
        return bearer(state, token);
    }
    let encoded = strip_scheme(header, "Basic").ok_or(AuthFailure::Unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| AuthFailure::Unauthorized)?;
    let text = String::from_utf8(decoded).map_err(|_| AuthFailure::Unauthorized)?;
    let (name, password) = text.split_once(':').ok_or(AuthFailure::Unauthorized)?;
    check_password(state, name, password, peer, true).await
}

fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn bearer(state: &AppState, token: &str) -> Result<User, AuthFailure> {
    let claims = state
        .verifier
        .verify(token)
        .map_err(|_| AuthFailure::Unauthorized)?;
    let revoked = state
        .store
        .is_access_token_revoked(&claims.jti)
        .map_err(internal)?;
    if revoked {
        return Err(AuthFailure::Unauthorized);
    }
    let id: i64 = claims.sub.parse().map_err(|_| AuthFailure::Unauthorized)?;
    state
        .store
        .user(ruche_store::UserId(id))
        .map_err(internal)?
        .ok_or(AuthFailure::Unauthorized)
}

fn session_user(state: &AppState, secret: &str) -> Result<User, AuthFailure> {
    let digest = ruche_auth::secret_digest(secret);
    let (id, _) = state
        .store
        .session(&digest)
        .map_err(internal)?
        .ok_or(AuthFailure::Unauthorized)?;
    state
        .store
        .user(id)
        .map_err(internal)?
        .ok_or(AuthFailure::Unauthorized)
}

fn internal(error: ruche_store::StoreError) -> AuthFailure {
    tracing::error!(%error, "store failure during authentication");
    AuthFailure::Internal
}

/// Checks a name and password, rate-limited per account and per address. With
/// `allow_app_passwords`, the password may also be one of the account's app passwords.
pub async fn check_password(
    state: &AppState,
    name: &str,
    password: &str,
    peer: IpAddr,
    allow_app_passwords: bool,
) -> Result<User, AuthFailure> {
    let keys = [format!("user:{name}"), format!("addr:{peer}")];
    if !keys.iter().all(|k| state.limiter.allow(k)) {
        return Err(AuthFailure::Throttled);
    }
    let user = state.store.user_by_name(name).map_err(internal)?;
    let verified = match &user {
        Some(user) => verify_for(state, user, password, allow_app_passwords).await?,
        None => {
            // Same cost as a real verification, so that timing does not reveal accounts.
            spend_hash_time(password).await;
            false
        }
    };
    match user.filter(|_| verified) {
        Some(user) => {
            keys.iter().for_each(|k| state.limiter.record_success(k));
            Ok(user)
        }
        None => {
            keys.iter().for_each(|k| state.limiter.record_failure(k));
            tracing::debug!(user = name, %peer, "failed login");
            Err(AuthFailure::Unauthorized)
        }
    }
}

async fn verify_for(
    state: &AppState,
    user: &User,
    password: &str,
    allow_app_passwords: bool,
) -> Result<bool, AuthFailure> {
    // The epoch in the keys makes remembered verifications die with a credential change,
    // even one made by another process; the kind keeps app passwords out of the login API.
    let key = |kind: &str| format!("{}\0{}\0{kind}", user.name, user.credential_epoch);
    if state.credentials.get(&key("account"), password) == Some(user.id.0) {
        return Ok(true);
    }
    if allow_app_passwords {
        if state.credentials.get(&key("app"), password) == Some(user.id.0) {
            return Ok(true);
        }
        let digest = ruche_auth::secret_digest(password);
        if state
            .store
            .app_password_matches(user.id, &digest)
            .map_err(internal)?
        {
            state.credentials.insert(&key("app"), password, user.id.0);
            return Ok(true);
        }
    }
    let (hash, given) = (user.password_hash.clone(), password.to_owned());
    let ok = tokio::task::spawn_blocking(move || ruche_auth::verify_password(&given, &hash))
        .await
        .unwrap_or(false);
    if ok {
        state
            .credentials
            .insert(&key("account"), password, user.id.0);
    }
    Ok(ok)
}

async fn spend_hash_time(password: &str) {
    let given = password.to_owned();
    let _ = tokio::task::spawn_blocking(move || {
        ruche_auth::verify_password(&given, ruche_auth::dummy_hash())
    })
    .await;
}
