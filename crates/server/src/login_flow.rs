//! Login flow v2, as the Nextcloud desktop and mobile clients use it: the client opens a
//! browser page of ruche, the user logs in there, and the client, polling with a secret
//! token, receives an app password made for it. The client never sees the account password.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;

use crate::api::ApiError;
use crate::authn;
use crate::state::SharedState;

/// How long a client may take to complete a login.
const FLOW_LIFETIME: Duration = Duration::from_secs(20 * 60);
/// Flows kept at most, so that anonymous callers cannot fill the memory.
const MAX_FLOWS: usize = 10_000;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/index.php/login/v2", post(start))
        .route("/login/v2", post(start))
        .route("/index.php/login/v2/poll", post(poll))
        .route("/login/v2/poll", post(poll))
        .route("/index.php/login/v2/flow/{id}", get(page).post(log_in))
        .route("/login/v2/flow/{id}", get(page).post(log_in))
}

struct Flow {
    /// Digest of the token the client polls with.
    poll_digest: String,
    started: Instant,
    grant: Option<Grant>,
}

#[derive(Clone)]
struct Grant {
    server: String,
    login_name: String,
    app_password: String,
}

/// Logins in progress, by the secret id in their page's URL.
#[derive(Default)]
pub struct LoginFlows {
    flows: Mutex<HashMap<String, Flow>>,
}

impl LoginFlows {
    fn start(&self) -> Option<(String, String)> {
        let mut flows = self.flows.lock();
        flows.retain(|_, flow| flow.started.elapsed() < FLOW_LIFETIME);
        if flows.len() >= MAX_FLOWS {
            return None;
        }
        let (id, token) = (ruche_auth::new_secret(), ruche_auth::new_secret());
        let flow = Flow {
            poll_digest: ruche_auth::secret_digest(&token),
            started: Instant::now(),
            grant: None,
        };
        flows.insert(id.clone(), flow);
        Some((id, token))
    }

    fn is_open(&self, id: &str) -> bool {
        let flows = self.flows.lock();
        flows
            .get(id)
            .is_some_and(|f| f.grant.is_none() && f.started.elapsed() < FLOW_LIFETIME)
    }

    fn grant(&self, id: &str, grant: Grant) -> bool {
        match self.flows.lock().get_mut(id) {
            Some(flow) if flow.grant.is_none() => {
                flow.grant = Some(grant);
                true
            }
            _ => false,
        }
    }

    /// The grant of the flow this poll token belongs to, once, when the user has logged in.
    fn collect(&self, token: &str) -> Option<Grant> {
        let digest = ruche_auth::secret_digest(token);
        let mut flows = self.flows.lock();
        let id = flows
            .iter()
            .find(|(_, f)| f.poll_digest == digest && f.grant.is_some())
            .map(|(id, _)| id.clone())?;
        flows.remove(&id).and_then(|f| f.grant)
    }
}

/// The address clients reach this server at, from the request.
fn base_url(state: &SharedState, headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("{}://{host}", state.scheme)
}

async fn start(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let Some((id, token)) = state.login_flows.start() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many logins in progress",
        )
            .into_response();
    };
    let base = base_url(&state, &headers);
    Json(json!({
        "poll": { "token": token, "endpoint": format!("{base}/index.php/login/v2/poll") },
        "login": format!("{base}/index.php/login/v2/flow/{id}"),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct PollForm {
    token: String,
}

async fn poll(State(state): State<SharedState>, Form(form): Form<PollForm>) -> Response {
    match state.login_flows.collect(&form.token) {
        Some(grant) => Json(json!({
            "server": grant.server,
            "loginName": grant.login_name,
            "appPassword": grant.app_password,
        }))
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn page(State(state): State<SharedState>, Path(id): Path<String>) -> Response {
    if !state.login_flows.is_open(&id) {
        return (StatusCode::NOT_FOUND, Html(expired_page())).into_response();
    }
    Html(login_page(None)).into_response()
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn log_in(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Result<Response, ApiError> {
    if !state.login_flows.is_open(&id) {
        return Ok((StatusCode::NOT_FOUND, Html(expired_page())).into_response());
    }
    let checked =
        authn::check_password(&state, &form.username, &form.password, peer.ip(), false).await;
    let user = match checked {
        Ok(user) => user,
        Err(authn::AuthFailure::Internal) => {
            return Err(ApiError::Internal(anyhow::anyhow!("login check failed")))
        }
        Err(failure) => {
            let message = match failure {
                authn::AuthFailure::Throttled => "Trop d'essais : réessayez dans quelques minutes.",
                _ => "Identifiant ou mot de passe incorrect.",
            };
            return Ok((StatusCode::UNAUTHORIZED, Html(login_page(Some(message)))).into_response());
        }
    };
    let secret = ruche_auth::new_app_password();
    state.store.add_app_password(
        user.id,
        "client Nextcloud",
        &ruche_auth::secret_digest(&secret),
    )?;
    let grant = Grant {
        server: base_url(&state, &headers),
        login_name: user.name,
        app_password: secret,
    };
    if !state.login_flows.grant(&id, grant) {
        return Ok((StatusCode::NOT_FOUND, Html(expired_page())).into_response());
    }
    Ok(Html(done_page()).into_response())
}

fn shell(body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>ruche : connexion d'une application</title></head>\
         <body><main>{body}</main></body></html>"
    )
}

fn login_page(error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| format!("<p role=\"alert\">{e}</p>"));
    shell(&format!(
        "<h1>Connecter une application à ruche</h1>\
         <p>Une application de synchronisation demande l'accès à votre espace.</p>\
         <p lang=\"en\">A sync application asks for access to your drive.</p>{error}\
         <form method=\"post\">\
         <p><label for=\"username\">Identifiant</label> \
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required></p>\
         <p><label for=\"password\">Mot de passe</label> \
         <input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required></p>\
         <p><button type=\"submit\">Autoriser l'accès</button></p></form>"
    ))
}

fn done_page() -> String {
    shell(
        "<h1>Application connectée</h1><p>Vous pouvez fermer cette fenêtre.</p>\
         <p lang=\"en\">The application is connected; you may close this window.</p>",
    )
}

fn expired_page() -> String {
    shell(
        "<h1>Lien expiré</h1><p>Recommencez la connexion depuis l'application.</p>\
         <p lang=\"en\">This link has expired; start again from the application.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_collected_once_with_the_right_token() {
        let flows = LoginFlows::default();
        let (id, token) = flows.start().unwrap();
        assert!(
            flows.collect(&token).is_none(),
            "nothing before the user logs in"
        );
        let grant = Grant {
            server: "http://h".into(),
            login_name: "marie".into(),
            app_password: "secret".into(),
        };
        assert!(flows.grant(&id, grant.clone()));
        assert!(!flows.grant(&id, grant), "a flow is granted once");
        assert!(flows.collect("wrong").is_none());
        assert_eq!(
            flows.collect(&token).map(|g| g.login_name),
            Some("marie".into())
        );
        assert!(flows.collect(&token).is_none(), "collected once");
    }
}
