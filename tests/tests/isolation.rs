//! No user reaches another user's files, whatever path, header or credential they try.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;
use ruche_e2e::TestServer;

const SECRET: &[u8] = b"alice's secret";

/// Sends one raw HTTP/1.1 request, exactly as written, and returns the status and body.
fn raw(server: &TestServer, method: &str, target: &str, auth: &str, extra: &str) -> (u16, String) {
    let address = server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nAuthorization: {auth}\r\n{extra}\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn server_with_bob() -> (TestServer, String) {
    let server = TestServer::start();
    server.mkcol("private");
    server.put("private/secret.txt", SECRET.to_vec());
    server.put("secret.txt", SECRET.to_vec());
    server.cli_ok(
        &["user", "add", "bob", "--password-stdin"],
        Some("bob-password\n"),
    );
    (server, basic("bob", "bob-password"))
}

#[test]
fn another_user_sees_only_their_own_space() {
    let (server, bob) = server_with_bob();
    let (status, _) = raw(&server, "GET", "/dav/secret.txt", &bob, "");
    assert_eq!(status, 404);
    let (status, listing) = raw(&server, "PROPFIND", "/dav/", &bob, "Depth: 1\r\n");
    assert_eq!(status, 207);
    assert!(
        !listing.contains("secret") && !listing.contains("private"),
        "{listing}"
    );

    // Bob's file of the same name is his own; Alice's stays as it was.
    let (status, _) = raw(&server, "MKCOL", "/dav/private/", &bob, "");
    assert_eq!(status, 201);
    let (status, _) = raw(
        &server,
        "LOCK",
        "/dav/secret.txt",
        &bob,
        "Timeout: Second-600\r\n",
    );
    assert!(status < 500, "LOCK answered {status}");
    server.put("secret.txt", SECRET.to_vec());
    assert_eq!(
        server.get_bytes("private/secret.txt").as_deref(),
        Some(SECRET)
    );
}

#[test]
fn path_tricks_never_leave_the_space() {
    let (server, bob) = server_with_bob();
    let targets = [
        "/dav/../dav/secret.txt",
        "/dav/%2e%2e/secret.txt",
        "/dav/%2E%2E%2Fsecret.txt",
        "/dav/..%2fprivate%2fsecret.txt",
        "/dav/private%2fsecret.txt",
        "/dav/..\\private\\secret.txt",
        "/dav/%00secret.txt",
        "/dav/secret.txt%00",
        "/dav/%c0%ae%c0%ae/secret.txt",
        "/dav//private/secret.txt",
        "/dav/./private/secret.txt",
        "/remote.php/../dav/private/secret.txt",
    ];
    for target in targets {
        for method in ["GET", "PROPFIND", "DELETE"] {
            let (status, answer) = raw(&server, method, target, &bob, "Depth: 0\r\n");
            assert!(status < 500, "{method} {target} answered {status}");
            assert!(
                !answer.contains("alice's secret"),
                "{method} {target} leaked: {answer}"
            );
            assert!(
                status != 200 && status != 204 && status != 207,
                "{method} {target}: {status}"
            );
        }
    }
    assert_eq!(
        server.get_bytes("private/secret.txt").as_deref(),
        Some(SECRET)
    );
    assert_eq!(server.get_bytes("secret.txt").as_deref(), Some(SECRET));
}

#[test]
fn moves_and_copies_cannot_reach_outside_the_space() {
    let (server, bob) = server_with_bob();
    let (status, _) = raw(&server, "PUT", "/dav/mine.txt", &bob, "");
    assert_eq!(status, 201);
    let host = server.url().trim_end_matches('/').to_owned();
    let destinations = [
        format!("{host}/dav/../private/secret.txt"),
        format!("{host}/dav/%2e%2e/secret.txt"),
        format!("{host}/elsewhere/secret.txt"),
        "http://other.example/dav/secret.txt".to_owned(),
        "/dav/../../secret.txt".to_owned(),
    ];
    for destination in &destinations {
        for method in ["MOVE", "COPY"] {
            let header = format!("Destination: {destination}\r\nOverwrite: T\r\n");
            let (status, _) = raw(&server, method, "/dav/mine.txt", &bob, &header);
            // 502 is what RFC 4918 prescribes for a destination on another server.
            let other_server = destination.contains("other.example");
            let expected = if other_server {
                status == 502
            } else {
                status < 500
            };
            assert!(expected, "{method} to {destination} answered {status}");
        }
    }
    assert_eq!(server.get_bytes("secret.txt").as_deref(), Some(SECRET));
    assert_eq!(
        server.get_bytes("private/secret.txt").as_deref(),
        Some(SECRET)
    );
}

#[test]
fn a_token_of_one_user_opens_only_that_users_space() {
    let (server, _) = server_with_bob();
    let login = server
        .client()
        .post(format!(
            "{}/api/auth/login",
            server.url().trim_end_matches('/')
        ))
        .header("Content-Type", "application/json")
        .body(r#"{"username": "bob", "password": "bob-password"}"#)
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let token: serde_json::Value = serde_json::from_str(&login.text().unwrap()).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let (status, _) = raw(&server, "GET", "/dav/private/secret.txt", &bearer, "");
    assert_eq!(status, 404);
    let (status, _) = raw(
        &server,
        "GET",
        "/dav/private/secret.txt",
        "Bearer not-a-token",
        "",
    );
    assert_eq!(status, 401);
}
