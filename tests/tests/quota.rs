//! Quotas: a write that would pass a space's quota answers 507 and changes nothing.

use ruche_e2e::{TestServer, DAV_NS};

const KIB: usize = 1024;

fn put_status(server: &TestServer, path: &str, body: Vec<u8>) -> u16 {
    server
        .dav("PUT", path)
        .body(body)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_write_past_the_quota_is_refused_and_changes_nothing() {
    let server = TestServer::start();
    server.cli_ok(
        &[
            "user",
            "quota",
            "alice",
            "--bytes",
            &(1024 * KIB).to_string(),
        ],
        None,
    );

    assert_eq!(put_status(&server, "a.bin", vec![1; 600 * KIB]), 201);
    assert_eq!(put_status(&server, "b.bin", vec![2; 600 * KIB]), 507);
    assert_eq!(
        server.get_bytes("b.bin"),
        None,
        "the refused file does not exist"
    );

    // Replacing a file counts only the difference.
    assert_eq!(put_status(&server, "a.bin", vec![3; 900 * KIB]), 204);
    assert_eq!(put_status(&server, "a.bin", vec![4; 2048 * KIB]), 507);
    assert_eq!(
        server.get_bytes("a.bin"),
        Some(vec![3; 900 * KIB]),
        "old content intact"
    );

    let root = server.propfind(
        "",
        "0",
        &[
            (DAV_NS, "quota-used-bytes"),
            (DAV_NS, "quota-available-bytes"),
        ],
    );
    assert_eq!(
        root[0].prop(DAV_NS, "quota-used-bytes"),
        Some((900 * KIB).to_string())
    );
    assert_eq!(
        root[0].prop(DAV_NS, "quota-available-bytes"),
        Some((124 * KIB).to_string())
    );
}

#[test]
fn a_copy_past_the_quota_is_refused() {
    let server = TestServer::start();
    server.cli_ok(
        &[
            "user",
            "quota",
            "alice",
            "--bytes",
            &(1024 * KIB).to_string(),
        ],
        None,
    );
    assert_eq!(put_status(&server, "a.bin", vec![1; 700 * KIB]), 201);
    let destination = format!("{}copy.bin", server.dav_url());
    let response = server
        .dav("COPY", "a.bin")
        .header("Destination", destination)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 507);
    assert_eq!(server.get_bytes("copy.bin"), None);
}
