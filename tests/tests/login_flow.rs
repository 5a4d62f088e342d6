//! Login flow v2: a sync client gets an app password through the user's browser login,
//! without ever seeing the account password.

use ruche_e2e::TestServer;
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";

#[test]
fn a_client_receives_an_app_password_once_the_user_logs_in() {
    let server = TestServer::start();
    let client = server.client();
    let started = client
        .post(format!("{}/index.php/login/v2", server.url()))
        .send()
        .unwrap();
    assert_eq!(started.status().as_u16(), 200);
    let flow: Value = serde_json::from_str(&started.text().unwrap()).unwrap();
    let (login, endpoint, token) = (
        flow["login"].as_str().unwrap().to_owned(),
        flow["poll"]["endpoint"].as_str().unwrap().to_owned(),
        flow["poll"]["token"].as_str().unwrap().to_owned(),
    );
    let poll = || {
        client
            .post(&endpoint)
            .header("Content-Type", FORM)
            .body(format!("token={token}"))
            .send()
            .unwrap()
    };
    assert_eq!(
        poll().status().as_u16(),
        404,
        "nothing before the user logs in"
    );

    // The user's browser: the page, a wrong password, then the right one.
    let page = client.get(&login).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().unwrap().contains("<form method=\"post\">"));
    let wrong = client
        .post(&login)
        .header("Content-Type", FORM)
        .body(format!("username={}&password=nope", server.user()))
        .send()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = client
        .post(&login)
        .header("Content-Type", FORM)
        .body(format!(
            "username={}&password={}",
            server.user(),
            server.password()
        ))
        .send()
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);

    let granted = poll();
    assert_eq!(granted.status().as_u16(), 200);
    let grant: Value = serde_json::from_str(&granted.text().unwrap()).unwrap();
    assert_eq!(grant["loginName"], server.user());
    assert_eq!(grant["server"], server.url());
    let app_password = grant["appPassword"].as_str().unwrap();
    assert_ne!(app_password, server.password());
    assert_eq!(
        poll().status().as_u16(),
        404,
        "the grant is handed out once"
    );

    let listing = client
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            server.dav_url(),
        )
        .basic_auth(server.user(), Some(app_password))
        .header("Depth", "0")
        .send()
        .unwrap();
    assert_eq!(
        listing.status().as_u16(),
        207,
        "the app password opens the drive"
    );
    assert_eq!(
        client.get(&login).send().unwrap().status().as_u16(),
        404,
        "the page is spent"
    );
}
