//! The Prometheus endpoint an operator scrapes.

use ruche_e2e::TestServer;

#[test]
fn metrics_are_served_in_prometheus_text_format() {
    let server = TestServer::start();
    server.put("counted.txt", "x");

    let response = server
        .client()
        .get(format!("{}/metrics", server.url()))
        .send()
        .unwrap();

    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("Content-Type")
        .map(|v| v.to_str().unwrap());
    assert!(
        content_type.is_some_and(|t| t.starts_with("text/plain")),
        "{content_type:?}"
    );
    let text = response.text().unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("# TYPE ")),
        "no # TYPE line:\n{text}"
    );
}
