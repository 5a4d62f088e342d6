//! The trash: what WebDAV deletes waits there, listed and restored through Nextcloud's
//! trashbin endpoint and the REST API, purged on demand or after its time.

use reqwest::blocking::RequestBuilder;
use ruche_e2e::{access_token, multistatus, TestServer};
use serde_json::Value;

const NC_NS: &str = "http://nextcloud.org/ns";

/// A request to the test user's trashbin, `/remote.php/dav/trashbin/<user>/<path>`.
fn trashbin(server: &TestServer, method: &str, path: &str) -> RequestBuilder {
    server.remote(method, &format!("trashbin/{}/{path}", server.user()))
}

/// The trash as the Nextcloud clients list it: (href, file name, original location).
fn listed(server: &TestServer) -> Vec<(String, String, String)> {
    let response = trashbin(server, "PROPFIND", "trash")
        .header("Depth", "1")
        .send()
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 207);
    multistatus(&response.text().expect("a body"))
        .into_iter()
        .skip(1)
        .map(|r| {
            let prop = |name| r.prop(NC_NS, name).unwrap_or_default();
            (
                r.href.clone(),
                prop("trashbin-filename"),
                prop("trashbin-original-location"),
            )
        })
        .collect()
}

fn api(server: &TestServer, token: &str, method: &str, path: &str) -> RequestBuilder {
    server
        .client()
        .request(
            method.parse().expect("a method"),
            format!("{}/api/{path}", server.url()),
        )
        .bearer_auth(token)
}

#[test]
fn a_deleted_file_is_restored_through_the_trashbin_as_the_same_file() {
    let server = TestServer::start();
    server.mkcol("Rapports");
    server.put("Rapports/bilan 2026.odt", "bilan");
    let id = server.file_id("Rapports/bilan 2026.odt");
    assert_eq!(
        server
            .dav("DELETE", "Rapports/bilan 2026.odt")
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(server.get_bytes("Rapports/bilan 2026.odt"), None);

    let items = listed(&server);
    assert_eq!(items.len(), 1, "{items:?}");
    let (href, name, location) = &items[0];
    assert_eq!(name, "bilan 2026.odt");
    assert_eq!(location, "Rapports/bilan 2026.odt");

    let destination = format!(
        "{}/remote.php/dav/trashbin/{}/restore/bilan 2026.odt",
        server.url(),
        server.user()
    );
    let restored = server
        .client()
        .request("MOVE".parse().unwrap(), format!("{}{href}", server.url()))
        .basic_auth(server.user(), Some(server.password()))
        .header("Destination", destination.replace(' ', "%20"))
        .send()
        .unwrap();
    assert_eq!(restored.status().as_u16(), 201);
    assert_eq!(
        server.get_bytes("Rapports/bilan 2026.odt").as_deref(),
        Some(&b"bilan"[..])
    );
    assert_eq!(
        server.file_id("Rapports/bilan 2026.odt"),
        id,
        "the same file id"
    );
    assert!(listed(&server).is_empty());
}

#[test]
fn items_are_purged_one_by_one_or_all_at_once() {
    let server = TestServer::start();
    server.mkcol("a");
    server.put("a/un.txt", "1");
    server.put("deux.txt", "2");
    server.put("trois.txt", "3");
    for path in ["a", "deux.txt", "trois.txt"] {
        assert!(server
            .dav("DELETE", path)
            .send()
            .unwrap()
            .status()
            .is_success());
    }
    let items = listed(&server);
    assert_eq!(items.len(), 3);
    let folder = items.iter().find(|i| i.1 == "a").expect("the folder");
    let purged = server
        .client()
        .delete(format!("{}{}", server.url(), folder.0))
        .basic_auth(server.user(), Some(server.password()))
        .send()
        .unwrap();
    assert_eq!(purged.status().as_u16(), 204);
    assert_eq!(listed(&server).len(), 2);
    let emptied = trashbin(&server, "DELETE", "trash").send().unwrap();
    assert_eq!(emptied.status().as_u16(), 204);
    assert!(listed(&server).is_empty());
}

#[test]
fn the_rest_api_lists_and_restores_without_overwriting() {
    let server = TestServer::start();
    let token = access_token(&server);
    server.put("note.md", "ancienne");
    assert!(server
        .dav("DELETE", "note.md")
        .send()
        .unwrap()
        .status()
        .is_success());
    server.put("note.md", "nouvelle");

    let list: Value = serde_json::from_str(
        &api(&server, &token, "GET", "trash")
            .send()
            .unwrap()
            .text()
            .unwrap(),
    )
    .unwrap();
    let items = list.as_array().expect("a list");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["original_path"], "note.md");
    let id = items[0]["id"].as_i64().expect("an id");

    let restored = api(&server, &token, "POST", &format!("trash/{id}/restore"))
        .send()
        .unwrap();
    assert_eq!(restored.status().as_u16(), 200);
    let answer: Value = serde_json::from_str(&restored.text().unwrap()).unwrap();
    assert_eq!(answer["path"], "note (2).md");
    assert_eq!(
        server.get_bytes("note.md").as_deref(),
        Some(&b"nouvelle"[..])
    );
    assert_eq!(
        server.get_bytes("note (2).md").as_deref(),
        Some(&b"ancienne"[..])
    );

    let again = api(&server, &token, "POST", &format!("trash/{id}/restore"))
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 404, "nothing left to restore");
}

#[test]
fn another_users_trash_is_out_of_reach() {
    let server = TestServer::start();
    server.put("secret.txt", "secret");
    assert!(server
        .dav("DELETE", "secret.txt")
        .send()
        .unwrap()
        .status()
        .is_success());
    let (href, _, _) = listed(&server).remove(0);
    server.add_user("bob", "bob-password");
    let as_bob = |method: &str, url: String| {
        server
            .client()
            .request(method.parse().unwrap(), url)
            .basic_auth("bob", Some("bob-password"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // Alice's trashbin URL, and Bob's own URL naming Alice's item.
    assert_eq!(as_bob("PROPFIND", format!("{}{href}", server.url())), 404);
    let bobs = href.replacen(
        &format!("/trashbin/{}/", server.user()),
        "/trashbin/bob/",
        1,
    );
    assert_eq!(as_bob("PROPFIND", format!("{}{bobs}", server.url())), 404);
    assert_eq!(as_bob("DELETE", format!("{}{bobs}", server.url())), 404);
    assert_eq!(listed(&server).len(), 1);
}

#[test]
fn the_trash_empties_itself_after_its_time() {
    let mut server = TestServer::start_with_args(&["--trash-days", "0"]);
    server.put("vieux.txt", "vieux");
    assert!(server
        .dav("DELETE", "vieux.txt")
        .send()
        .unwrap()
        .status()
        .is_success());
    assert_eq!(
        listed(&server).len(),
        1,
        "in the trash until the next purge"
    );
    // The purge runs as the server starts, then every hour.
    server.restart();
    assert!(listed(&server).is_empty());
}
