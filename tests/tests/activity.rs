//! The activity log: every change made over WebDAV and the REST API appears in the space's
//! feed and the file's, with who made it, and in the administrator's export.

use ruche_e2e::{access_token, login, TestServer};
use serde_json::Value;

fn get_json(server: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let response = server
        .client()
        .get(format!("{}/api/{path}", server.url()))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_str(&response.text().unwrap()).unwrap_or(Value::Null),
    )
}

fn actions(feed: &Value) -> Vec<String> {
    feed.as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn changes_are_logged_with_their_author_and_exported() {
    let server = TestServer::start();
    let token = access_token(&server);
    server.mkcol("Projets");
    server.put("plan.md", "v1");
    server.put("plan.md", "v2");
    let id = server.file_id("plan.md");
    let moves = [
        ("plan.md", "plan 2027.md"),
        ("plan 2027.md", "Projets/plan 2027.md"),
    ];
    for (from, to) in moves {
        let destination = format!("{}{}", server.dav_url(), to.replace(' ', "%20"));
        let moved = server
            .dav("MOVE", from)
            .header("Destination", destination)
            .send()
            .unwrap();
        assert!(moved.status().is_success());
    }
    assert!(server
        .dav("DELETE", "Projets/plan 2027.md")
        .send()
        .unwrap()
        .status()
        .is_success());
    let (_, trash) = get_json(&server, &token, "trash");
    let item = trash[0]["id"].as_i64().expect("a trashed item");
    let restored = server
        .client()
        .post(format!("{}/api/trash/{item}/restore", server.url()))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(restored.status().as_u16(), 200);

    let (status, feed) = get_json(&server, &token, "activity");
    assert_eq!(status, 200);
    assert_eq!(
        actions(&feed),
        [
            "restored Projets/plan 2027.md",
            "deleted Projets/plan 2027.md",
            "moved Projets/plan 2027.md",
            "renamed plan 2027.md",
            "changed plan.md",
            "created plan.md",
            "created Projets",
        ]
    );
    let user_id = feed[0]["actor"].as_i64().expect("an author");
    assert!(feed
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"].as_i64() == Some(user_id)));
    assert_eq!(feed[2]["from"], "plan 2027.md");

    let (_, file_feed) = get_json(&server, &token, &format!("files/{id}/activity"));
    assert_eq!(
        file_feed.as_array().unwrap().len(),
        6,
        "all but the folder's creation"
    );

    let export = server.cli_ok(&["audit"], None);
    let lines: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["action"], "created");
    assert_eq!(lines[6]["action"], "restored");
    let after = lines[3]["id"].as_i64().unwrap().to_string();
    assert_eq!(
        server
            .cli_ok(&["audit", "--after", &after], None)
            .lines()
            .count(),
        3
    );

    server.add_user("bob", "bob-password");
    let bob = &login(&server, "bob", "bob-password");
    let (_, bobs) = get_json(&server, bob, "activity");
    assert!(bobs.as_array().unwrap().is_empty());
    assert_eq!(
        get_json(&server, bob, &format!("files/{id}/activity")).0,
        404
    );
}
