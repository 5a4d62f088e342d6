//! The web app's session: an HttpOnly, SameSite=Strict cookie; writes made with it need
//! the session's CSRF token; what another site makes a logged-in browser send is refused.

use reqwest::blocking::{RequestBuilder, Response};
use ruche_e2e::TestServer;
use serde_json::Value;

struct Session {
    cookie: String,
    csrf: String,
}

fn open(server: &TestServer) -> (Session, String) {
    let body = serde_json::json!({ "username": server.user(), "password": server.password() });
    let response = server
        .client()
        .post(format!("{}/api/session", server.url()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    let answer: Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let csrf = answer["csrf_token"]
        .as_str()
        .expect("a CSRF token")
        .to_owned();
    (Session { cookie, csrf }, set_cookie)
}

fn with_cookie(server: &TestServer, session: &Session, method: &str, path: &str) -> RequestBuilder {
    server
        .client()
        .request(method.parse().unwrap(), format!("{}{path}", server.url()))
        .header("cookie", &session.cookie)
}

fn status(response: Response) -> u16 {
    response.status().as_u16()
}

#[test]
fn cookie_writes_need_the_csrf_token_and_a_logout_ends_the_session() {
    let server = TestServer::start();
    let (session, set_cookie) = open(&server);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let current: Value = serde_json::from_str(
        &with_cookie(&server, &session, "GET", "/api/session")
            .send()
            .unwrap()
            .text()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(current["csrf_token"], session.csrf.as_str());

    // Reading needs only the cookie.
    assert_eq!(
        status(
            with_cookie(&server, &session, "GET", "/api/trash")
                .send()
                .unwrap()
        ),
        200
    );
    // Writing without the token, or with another, is refused before anything happens.
    server.put("note.txt", "garder");
    let put = |token: Option<&str>| {
        let mut request = with_cookie(&server, &session, "PUT", "/dav/note.txt").body("écrasé");
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        status(request.send().unwrap())
    };
    assert_eq!(put(None), 403);
    assert_eq!(put(Some("not-the-token")), 403);
    assert_eq!(
        server.get_bytes("note.txt").as_deref(),
        Some(&b"garder"[..])
    );
    assert_eq!(put(Some(&session.csrf)), 204);

    // The same write, sent from another site's page, is refused even with the token.
    let foreign = with_cookie(&server, &session, "DELETE", "/api/trash")
        .header("x-csrf-token", &session.csrf)
        .header("origin", "https://ailleurs.example")
        .send()
        .unwrap();
    assert_eq!(status(foreign), 403);

    let logout = with_cookie(&server, &session, "DELETE", "/api/session")
        .header("x-csrf-token", &session.csrf)
        .send()
        .unwrap();
    assert_eq!(status(logout), 204);
    assert_eq!(
        status(
            with_cookie(&server, &session, "GET", "/api/trash")
                .send()
                .unwrap()
        ),
        401
    );
}

#[test]
fn other_sites_can_neither_log_in_nor_open_a_live_document_with_the_cookie() {
    let server = TestServer::start();
    let body = serde_json::json!({ "username": server.user(), "password": server.password() });
    let forged_login = server
        .client()
        .post(format!("{}/api/session", server.url()))
        .header("content-type", "application/json")
        .header("origin", "https://ailleurs.example")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(status(forged_login), 403);

    let (session, _) = open(&server);
    server.put("doc.md", "texte");
    let id = server.file_id("doc.md");
    let upgrade = |origin: &str| {
        with_cookie(&server, &session, "GET", &format!("/collab/{id}"))
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("origin", origin)
            .send()
            .unwrap()
    };
    assert_eq!(status(upgrade("https://ailleurs.example")), 403);
    let own = server.url().to_owned();
    assert_eq!(status(upgrade(&own)), 101);
}
