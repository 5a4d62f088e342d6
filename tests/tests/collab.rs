//! Co-editing with the stock Yjs clients (`yjs`, `y-websocket` in Node.js, from
//! `tests/collab/`) against the real server: convergence, offline edits, a WebDAV write in
//! the middle of editing, a restart, a deletion, and the refusals of the upgrade.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ruche_e2e::{require_tool, run_tool, TestServer, OC_NS};
use serde_json::Value;

const AGENDA: &str = "Ordre du jour\n1. budget\n2. locaux\n";

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("collab")
}

/// Runs one scenario of `tests/collab/scenario.mjs` on the file at `path` and returns the
/// JSON it printed.
fn scenario(server: &TestServer, name: &str, path: &str, env: &[(&str, &str)]) -> Value {
    require_tool("node");
    let dir = clients_dir();
    assert!(
        dir.join("node_modules/y-websocket").is_dir(),
        "the Yjs clients are not installed: run `npm ci --prefix {}`",
        dir.display()
    );
    let mut command = Command::new("node");
    command
        .arg(dir.join("scenario.mjs"))
        .arg(name)
        .env("RUCHE_URL", server.url().trim_end_matches('/'))
        .env("RUCHE_USER", server.user())
        .env("RUCHE_PASSWORD", server.password())
        .env("FILE_ID", file_id(server, path))
        .env("FILE_PATH", path)
        .envs(env.iter().copied());
    let output = run_tool(&mut command, None, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scenario {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| panic!("scenario {name} printed {stdout}"))
}

fn file_id(server: &TestServer, path: &str) -> String {
    let found = server.propfind(path, "0", &[(OC_NS, "fileid")]);
    found[0].prop(OC_NS, "fileid").expect("an oc:fileid")
}

/// Waits until the file's content over WebDAV is `expected` (the document is saved after
/// two seconds without edits).
fn file_becomes(server: &TestServer, path: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        last = server.get_bytes(path);
        if last.as_deref() == Some(expected.as_bytes()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "{path} never became {expected:?}; last {:?}",
        last.map(|b| String::from_utf8_lossy(&b).into_owned())
    );
}

fn text(result: &Value) -> String {
    result["text"].as_str().expect("a text").to_owned()
}

#[test]
fn three_clients_converge_and_the_file_follows() {
    let server = TestServer::start();
    server.put("agenda.md", AGENDA);
    let result = scenario(&server, "converge", "agenda.md", &[]);
    let merged = text(&result);
    for client in 0..3 {
        for edit in 0..10 {
            assert!(merged.contains(&format!("[{client}:{edit}]")), "{merged}");
        }
    }
    assert!(
        merged.contains("2. locaux"),
        "the seeded text is kept: {merged}"
    );
    file_becomes(&server, "agenda.md", &merged);
}

#[test]
fn offline_edits_merge_on_reconnect() {
    let server = TestServer::start();
    server.put("note.txt", "texte");
    let merged = text(&scenario(&server, "offline", "note.txt", &[]));
    assert_eq!(merged, "hors ligne texte en ligne");
}

#[test]
fn a_webdav_write_merges_with_live_edits() {
    let server = TestServer::start();
    server.put("agenda.md", AGENDA);
    let merged = text(&scenario(&server, "webdav", "agenda.md", &[]));
    assert_eq!(
        merged,
        "Ordre du jour du 4 décembre\n1. budget\n2. locaux\najout du navigateur\n"
    );
    file_becomes(&server, "agenda.md", &merged);
}

#[test]
fn a_read_only_client_cannot_change_the_document() {
    let server = TestServer::start();
    server.put("note.txt", "texte");
    let result = scenario(&server, "readonly", "note.txt", &[]);
    assert_eq!(result["writer"], "texte écrit");
    assert_eq!(result["fresh"], "texte écrit");
    file_becomes(&server, "note.txt", "texte écrit");
}

#[test]
fn a_restart_loses_nothing_the_server_received() {
    let mut server = TestServer::start();
    server.put("journal.txt", "début\n");
    let typed = text(&scenario(
        &server,
        "type",
        "journal.txt",
        &[("TEXT", "suite\n")],
    ));
    assert_eq!(typed, "début\nsuite\n");
    // Killed before it could save the text to the file.
    server.kill9();
    let read = text(&scenario(&server, "read", "journal.txt", &[]));
    assert_eq!(read, "début\nsuite\n");
    file_becomes(&server, "journal.txt", "début\nsuite\n");
    // A clean stop compacts the document into a snapshot, which loads back the same.
    server.restart();
    let read = text(&scenario(&server, "read", "journal.txt", &[]));
    assert_eq!(read, "début\nsuite\n");
}

#[test]
fn a_deleted_file_closes_its_document_for_good() {
    let server = TestServer::start();
    server.put("brouillon.txt", "à jeter");
    let result = scenario(&server, "deleted", "brouillon.txt", &[]);
    let close = &result["closes"][0];
    assert_eq!(close["code"], 4400, "{result}");
    assert!(
        close["reason"].as_str().unwrap().contains("deleted"),
        "{result}"
    );
    assert_eq!(result["reconnected"], false);
}

/// Sends a WebSocket handshake for `/collab/{id}` and returns the status.
fn handshake(server: &TestServer, id: &str, token: Option<&str>) -> u16 {
    let mut url = format!("{}/collab/{id}", server.url().trim_end_matches('/'));
    if let Some(token) = token {
        url.push_str(&format!("?token={token}"));
    }
    let response = server
        .client()
        .get(url)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .unwrap();
    response.status().as_u16()
}

fn login(server: &TestServer, user: &str, password: &str) -> String {
    let response = server
        .client()
        .post(format!(
            "{}/api/auth/login",
            server.url().trim_end_matches('/')
        ))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({ "username": user, "password": password }).to_string())
        .send()
        .unwrap();
    assert!(response.status().is_success());
    let body: Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn refused_upgrades_say_why() {
    let server = TestServer::start();
    server.put("texte.txt", "bonjour");
    server.put("image.png", vec![0x89, b'P', b'N', b'G', 0xff, 0xfe, 0x00]);
    let text_id = file_id(&server, "texte.txt");
    let token = login(&server, server.user(), server.password());

    assert_eq!(handshake(&server, &text_id, None), 401);
    assert_eq!(handshake(&server, &text_id, Some("not-a-token")), 401);
    assert_eq!(handshake(&server, &text_id, Some(&token)), 101);
    assert_eq!(
        handshake(&server, &file_id(&server, "image.png"), Some(&token)),
        415
    );
    assert_eq!(handshake(&server, "999999", Some(&token)), 404);
    let plain = server
        .client()
        .get(format!(
            "{}/collab/{text_id}?token={token}",
            server.url().trim_end_matches('/')
        ))
        .send()
        .unwrap();
    assert_eq!(plain.status().as_u16(), 426);

    // Another user's file is not found, whatever its id.
    server.cli_ok(
        &["user", "add", "bob", "--password-stdin"],
        Some("bob-password\n"),
    );
    let bob = login(&server, "bob", "bob-password");
    assert_eq!(handshake(&server, &text_id, Some(&bob)), 404);
}

/// An editor that types and closes at once, while others keep typing, keeps every word:
/// what it sent before closing is handled before its departure.
#[test]
fn words_typed_just_before_leaving_are_kept() {
    use ruche_e2e::{access_token, CoEditor};
    use std::sync::atomic::{AtomicBool, Ordering};

    let server = TestServer::start();
    server.put("minutes.md", "Compte rendu\n");
    let id = file_id(&server, "minutes.md");
    let token = access_token(&server);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for other in 0..3 {
            let (server, id, token, done) = (&server, &id, &token, &done);
            scope.spawn(move || {
                let mut editor = CoEditor::connect(server, id, token).expect("joins");
                while !done.load(Ordering::Relaxed) {
                    editor.append(&format!("<o{other}>")).expect("types");
                    editor.listen(Duration::from_millis(1)).expect("listens");
                }
                editor.close();
            });
        }
        for visit in 0..30 {
            let mut editor = CoEditor::connect(&server, &id, &token).expect("joins");
            for word in 0..10 {
                editor.append(&format!("[v{visit}.{word}]")).expect("types");
            }
            editor.close();
        }
        done.store(true, Ordering::Relaxed);
    });
    let reader = CoEditor::connect(&server, &id, &token).expect("joins");
    let text = reader.text();
    let lost: Vec<String> = (0..30)
        .flat_map(|visit| (0..10).map(move |word| format!("[v{visit}.{word}]")))
        .filter(|word| !text.contains(word.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "words lost when their editor left: {lost:?}"
    );
}
