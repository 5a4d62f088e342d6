//! Versions: every overwrite keeps the earlier content, which Nextcloud's versions endpoint
//! and the REST API list, read and restore.

use reqwest::blocking::RequestBuilder;
use ruche_e2e::{access_token, login, multistatus, TestServer};
use serde_json::Value;

/// A request to the test user's versions, `/remote.php/dav/versions/<user>/<path>`.
fn versions(server: &TestServer, method: &str, path: &str) -> RequestBuilder {
    server.remote(method, &format!("versions/{}/{path}", server.user()))
}

fn text(response: reqwest::blocking::Response) -> String {
    response.text().expect("a body")
}

#[test]
fn nextcloud_clients_list_read_and_restore_versions() {
    let server = TestServer::start();
    for content in ["premier jet", "deuxième jet", "version finale"] {
        server.put("discours.md", content);
    }
    let id = server.file_id("discours.md");
    let listing = versions(&server, "PROPFIND", &format!("versions/{id}"))
        .header("Depth", "1")
        .send()
        .unwrap();
    assert_eq!(listing.status().as_u16(), 207);
    let hrefs: Vec<String> = multistatus(&text(listing))
        .into_iter()
        .skip(1)
        .map(|r| r.href)
        .collect();
    assert_eq!(hrefs.len(), 2, "{hrefs:?}");

    // Newest first: the second draft, then the first.
    let first = &hrefs[1];
    let read = server
        .client()
        .get(format!("{}{first}", server.url()))
        .basic_auth(server.user(), Some(server.password()))
        .send()
        .unwrap();
    assert_eq!(text(read), "premier jet");

    let restore = format!(
        "{}/remote.php/dav/versions/{}/restore/target",
        server.url(),
        server.user()
    );
    let moved = server
        .client()
        .request("MOVE".parse().unwrap(), format!("{}{first}", server.url()))
        .basic_auth(server.user(), Some(server.password()))
        .header("Destination", restore)
        .send()
        .unwrap();
    assert_eq!(moved.status().as_u16(), 201);
    assert_eq!(
        server.get_bytes("discours.md").as_deref(),
        Some("premier jet".as_bytes())
    );
    assert_eq!(server.file_id("discours.md"), id);
    // What the restore replaced is a version too.
    let count = multistatus(&text(
        versions(&server, "PROPFIND", &format!("versions/{id}"))
            .header("Depth", "1")
            .send()
            .unwrap(),
    ))
    .len();
    assert_eq!(count, 4, "the collection and three versions");
}

#[test]
fn the_rest_api_lists_downloads_and_restores_and_other_users_get_nothing() {
    let server = TestServer::start();
    server.put("budget.csv", "a;1\n");
    server.put("budget.csv", "a;2\n");
    let id = server.file_id("budget.csv");
    let token = access_token(&server);
    let api = |method: &str, path: &str, token: &str| {
        server
            .client()
            .request(
                method.parse().unwrap(),
                format!("{}/api/files/{id}/versions{path}", server.url()),
            )
            .bearer_auth(token)
            .send()
            .unwrap()
    };
    let list: Value = serde_json::from_str(&text(api("GET", "", &token))).unwrap();
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 1);
    let version = list[0]["id"].as_i64().expect("an id");
    assert_eq!(text(api("GET", &format!("/{version}"), &token)), "a;1\n");
    assert_eq!(
        api("POST", &format!("/{version}/restore"), &token).status(),
        200
    );
    assert_eq!(
        server.get_bytes("budget.csv").as_deref(),
        Some(&b"a;1\n"[..])
    );

    server.add_user("bob", "bob-password");
    let bob = &login(&server, "bob", "bob-password");
    assert_eq!(api("GET", "", bob).status(), 404);
    assert_eq!(api("GET", &format!("/{version}"), bob).status(), 404);
    assert_eq!(
        api("POST", &format!("/{version}/restore"), bob).status(),
        404
    );
    let nextcloud = server
        .client()
        .request(
            "PROPFIND".parse().unwrap(),
            format!("{}/remote.php/dav/versions/bob/versions/{id}", server.url()),
        )
        .basic_auth("bob", Some("bob-password"))
        .send()
        .unwrap();
    assert_eq!(nextcloud.status(), 404);
}
