//! Search through the REST API: names without regard to case or accents, the words of text
//! files, an index that follows WebDAV writes, and nothing of anyone else's.

use ruche_e2e::{access_token, login, TestServer};
use serde_json::Value;

fn search(server: &TestServer, token: &str, q: &str) -> Vec<(String, String)> {
    let response = server
        .client()
        .get(format!("{}/api/search", server.url()))
        .query(&[("q", q)])
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let found: Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    found
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap_or_default().to_owned(),
                r["matched"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn names_and_words_are_found_as_files_change() {
    let server = TestServer::start();
    let token = access_token(&server);
    server.mkcol("Dossiers");
    server.put("Dossiers/État civil.md", "Liste des pièces à fournir");
    server.put("compte-rendu.txt", "La réunion a validé le budget");

    assert_eq!(
        search(&server, &token, "etat"),
        [("Dossiers/État civil.md".to_owned(), "name".to_owned())]
    );
    assert_eq!(
        search(&server, &token, "REUNION budget"),
        [("compte-rendu.txt".to_owned(), "text".to_owned())]
    );

    // A WebDAV rename and a new content are searched at once.
    let destination = format!("{}archives.txt", server.dav_url());
    let moved = server
        .dav("MOVE", "compte-rendu.txt")
        .header("Destination", destination)
        .send()
        .unwrap();
    assert!(moved.status().is_success());
    assert_eq!(
        search(&server, &token, "budget"),
        [("archives.txt".to_owned(), "text".to_owned())]
    );
    server.put("archives.txt", "Plus rien ici");
    assert!(search(&server, &token, "budget").is_empty());
    assert!(server
        .dav("DELETE", "Dossiers")
        .send()
        .unwrap()
        .status()
        .is_success());
    assert!(
        search(&server, &token, "pièces").is_empty(),
        "trashed items are not found"
    );

    server.add_user("bob", "bob-password");
    let bob = &login(&server, "bob", "bob-password");
    assert!(search(&server, bob, "archives").is_empty());
    assert!(search(&server, bob, "rien").is_empty());
}
