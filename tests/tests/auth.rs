//! Who may open the drive: account passwords, app passwords from the command line,
//! bearer tokens from the login API, and the admin a first start creates.

use std::os::unix::fs::PermissionsExt;

use reqwest::blocking::Response;
use reqwest::Method;
use ruche_e2e::{describe, TestServer};
use serde_json::{json, Value};

/// Sends a JSON body to an API route and returns the answer.
fn post_json(server: &TestServer, route: &str, body: &Value) -> Response {
    server
        .client()
        .post(format!("{}{route}", server.url()))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap()
}

/// Reads a token answer (`access_token`, `expires_in`, `refresh_token`).
fn tokens(response: Response) -> (String, String) {
    assert_eq!(
        response.status().as_u16(),
        200,
        "token answer: {}",
        describe(response)
    );
    let body: Value = serde_json::from_str(&response.text().unwrap()).expect("a JSON body");
    let access = body["access_token"].as_str().expect("an access_token");
    let refresh = body["refresh_token"].as_str().expect("a refresh_token");
    assert!(
        body["expires_in"].as_u64().is_some_and(|s| s > 0),
        "expires_in: {body}"
    );
    (access.to_owned(), refresh.to_owned())
}

fn login(server: &TestServer) -> (String, String) {
    let credentials = json!({ "username": server.user(), "password": server.password() });
    tokens(post_json(server, "/api/auth/login", &credentials))
}

/// The status of a Depth 0 PROPFIND of the WebDAV root with the given credentials.
fn propfind_status(server: &TestServer, credentials: Credentials) -> u16 {
    let request = server
        .client()
        .request(Method::from_bytes(b"PROPFIND").unwrap(), server.dav_url())
        .header("Depth", "0");
    let request = match credentials {
        Credentials::Basic(user, password) => request.basic_auth(user, Some(password)),
        Credentials::Bearer(token) => request.bearer_auth(token),
        Credentials::None => request,
    };
    request.send().unwrap().status().as_u16()
}

enum Credentials<'a> {
    Basic(&'a str, &'a str),
    Bearer(&'a str),
    None,
}

#[test]
fn webdav_without_credentials_asks_for_basic_auth() {
    let server = TestServer::start();

    let response = server.client().get(server.dav_url()).send().unwrap();

    assert_eq!(response.status().as_u16(), 401);
    let challenge = response
        .headers()
        .get("WWW-Authenticate")
        .map(|v| v.to_str().unwrap());
    assert!(
        challenge.is_some_and(|c| c.starts_with("Basic")),
        "challenge: {challenge:?}"
    );
}

#[test]
fn a_wrong_password_is_refused() {
    let server = TestServer::start();

    let status = propfind_status(
        &server,
        Credentials::Basic(server.user(), "not-the-password"),
    );
    let login = post_json(
        &server,
        "/api/auth/login",
        &json!({ "username": server.user(), "password": "not-the-password" }),
    );

    assert_eq!(status, 401, "WebDAV with a wrong password");
    assert_eq!(login.status().as_u16(), 401, "login with a wrong password");
}

#[test]
fn an_app_password_from_the_command_line_opens_webdav() {
    let server = TestServer::start();

    let output = server.cli_ok(
        &["user", "app-password", "alice", "--label", "laptop"],
        None,
    );
    let app_password = output.trim();

    assert_eq!(
        output.lines().count(),
        1,
        "app-password prints one line: {output:?}"
    );
    assert_ne!(app_password, server.password());
    assert_eq!(
        propfind_status(&server, Credentials::Basic("alice", app_password)),
        207
    );
}

#[test]
fn a_changed_password_replaces_the_old_one() {
    let server = TestServer::start();

    server.cli_ok(
        &["user", "passwd", "alice", "--password-stdin"],
        Some("a new secret 123\n"),
    );

    let old = propfind_status(&server, Credentials::Basic("alice", server.password()));
    assert_eq!(old, 401, "the old password still works");
    let new = propfind_status(&server, Credentials::Basic("alice", "a new secret 123"));
    assert_eq!(new, 207, "the new password does not work");
}

#[test]
fn user_list_shows_the_accounts() {
    let server = TestServer::start();
    server.cli_ok(
        &["user", "add", "bob", "--admin", "--password-stdin"],
        Some("bob secret\n"),
    );

    let listing = server.cli_ok(&["user", "list"], None);

    assert!(listing.lines().any(|l| l.contains("alice")), "{listing}");
    assert!(listing.lines().any(|l| l.contains("bob")), "{listing}");
    assert!(
        !listing.contains("bob secret"),
        "user list shows a password:\n{listing}"
    );
}

#[test]
fn a_login_token_opens_webdav_as_a_bearer() {
    let server = TestServer::start();

    let (access, _) = login(&server);

    assert_eq!(propfind_status(&server, Credentials::Bearer(&access)), 207);
    assert_eq!(
        propfind_status(&server, Credentials::Bearer("not.a.token")),
        401
    );
    assert_eq!(propfind_status(&server, Credentials::None), 401);
}

#[test]
fn refresh_gives_a_working_access_token() {
    let server = TestServer::start();
    let (_, refresh_token) = login(&server);

    let answer = post_json(
        &server,
        "/api/auth/refresh",
        &json!({ "refresh_token": refresh_token }),
    );
    let (access, _) = tokens(answer);

    assert_eq!(propfind_status(&server, Credentials::Bearer(&access)), 207);
}

#[test]
fn logout_revokes_the_refresh_token() {
    let server = TestServer::start();
    let (_, refresh_token) = login(&server);
    let body = json!({ "refresh_token": refresh_token });

    let logout = post_json(&server, "/api/auth/logout", &body);
    let refresh = post_json(&server, "/api/auth/refresh", &body);

    assert_eq!(
        logout.status().as_u16(),
        204,
        "logout: {}",
        describe(logout)
    );
    assert_eq!(
        refresh.status().as_u16(),
        401,
        "refresh after logout: {}",
        describe(refresh)
    );
}

#[test]
fn the_first_start_creates_an_admin_with_a_private_password_file() {
    let server = TestServer::start_fresh();

    let mode = std::fs::metadata(server.initial_admin_password_file())
        .unwrap()
        .permissions()
        .mode();

    assert_eq!(server.user(), "admin");
    assert_eq!(
        mode & 0o077,
        0,
        "initial-admin-password is readable by others: {mode:o}"
    );
    assert_eq!(
        propfind_status(&server, Credentials::Basic("admin", server.password())),
        207
    );
}
