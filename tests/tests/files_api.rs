//! The drive through the REST API the web app uses: folders, uploads and downloads
//! (streamed), moves, copies and deletions, with the errors a user can act on.

use reqwest::blocking::RequestBuilder;
use ruche_e2e::{access_token, TestServer};
use serde_json::Value;

fn api(server: &TestServer, token: &str, method: &str, path: &str) -> RequestBuilder {
    server
        .client()
        .request(
            method.parse().unwrap(),
            format!("{}/api/files{path}", server.url()),
        )
        .bearer_auth(token)
}

fn json(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_str(&response.text().unwrap()).unwrap_or(Value::Null),
    )
}

fn names(listing: &Value) -> Vec<String> {
    listing["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_user_manages_the_drive_through_the_api() {
    let server = TestServer::start();
    let token = access_token(&server);
    let (status, folder) = json(
        api(&server, &token, "POST", "/folder")
            .header("content-type", "application/json")
            .body(r#"{"path": "Réunions"}"#)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201);
    assert_eq!(folder["is_dir"], true);

    // A 3 MiB upload, streamed in, read back byte for byte, and seen over WebDAV.
    let content: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let (status, file) = json(
        api(&server, &token, "PUT", "/content")
            .query(&[("path", "Réunions/ordre du jour.bin")])
            .body(content.clone())
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201);
    assert_eq!(file["size"], content.len());
    let download = api(&server, &token, "GET", "/content")
        .query(&[("path", "Réunions/ordre du jour.bin")])
        .send()
        .unwrap();
    assert_eq!(download.status().as_u16(), 200);
    let disposition = download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert_eq!(download.bytes().unwrap().as_ref(), content.as_slice());
    assert_eq!(
        server
            .get_bytes("Réunions/ordre du jour.bin")
            .map(|b| b.len()),
        Some(content.len())
    );

    // Overwrite: 200, and the earlier content is a version.
    let (status, _) = json(
        api(&server, &token, "PUT", "/content")
            .query(&[("path", "Réunions/ordre du jour.bin")])
            .body("court")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);

    let moved = |from: &str, to: &str, what: &str| {
        json(
            api(&server, &token, "POST", what)
                .header("content-type", "application/json")
                .body(serde_json::json!({ "from": from, "to": to }).to_string())
                .send()
                .unwrap(),
        )
    };
    assert_eq!(
        moved("Réunions/ordre du jour.bin", "Réunions/odj.bin", "/move").0,
        200
    );
    assert_eq!(moved("Réunions/odj.bin", "copie.bin", "/copy").0, 201);
    assert_eq!(
        moved("copie.bin", "Réunions/odj.bin", "/move").0,
        409,
        "no overwrite"
    );
    assert_eq!(moved("Réunions", "Réunions/dedans", "/move").0, 409);
    assert_eq!(moved("absent.bin", "ailleurs.bin", "/move").0, 404);

    let (status, root) = json(api(&server, &token, "GET", "/list").send().unwrap());
    assert_eq!(status, 200);
    assert_eq!(names(&root), ["Réunions", "copie.bin"]);
    let (_, inside) = json(
        api(&server, &token, "GET", "/list")
            .query(&[("path", "Réunions")])
            .send()
            .unwrap(),
    );
    assert_eq!(names(&inside), ["odj.bin"]);

    let deleted = api(&server, &token, "DELETE", "")
        .query(&[("path", "copie.bin")])
        .send()
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert_eq!(server.get_bytes("copie.bin"), None);
    let (_, trash) = json(
        server
            .client()
            .get(format!("{}/api/trash", server.url()))
            .bearer_auth(&token)
            .send()
            .unwrap(),
    );
    assert_eq!(
        trash.as_array().unwrap().len(),
        1,
        "deletions go to the trash"
    );

    let bad = api(&server, &token, "POST", "/folder")
        .header("content-type", "application/json")
        .body(r#"{"path": "a/.."}"#)
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

#[test]
fn a_write_past_the_quota_is_refused_and_changes_nothing() {
    let server = TestServer::start();
    server.cli_ok(&["user", "quota", server.user(), "--bytes", "1000"], None);
    let token = access_token(&server);
    server.put("petit.txt", "avant");
    let refused = api(&server, &token, "PUT", "/content")
        .query(&[("path", "petit.txt")])
        .body(vec![b'x'; 5000])
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 507);
    assert_eq!(
        server.get_bytes("petit.txt").as_deref(),
        Some(&b"avant"[..])
    );
}
