//! Hostile request bodies and headers get a clear refusal and leave the server serving.

use ruche_e2e::TestServer;

fn still_serving(server: &TestServer) {
    let listing = server.propfind("", "0", &[]);
    assert_eq!(listing.len(), 1, "the server still answers");
}

fn send(server: &TestServer, method: &str, body: Vec<u8>) -> u16 {
    server
        .dav(method, "target.txt")
        .header("Depth", "0")
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[test]
fn deeply_nested_xml_is_refused_without_parsing() {
    let server = TestServer::start();
    server.put("target.txt", b"x".to_vec());
    let nested = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    for (method, root) in [
        ("PROPFIND", "propfind"),
        ("PROPPATCH", "propertyupdate"),
        ("LOCK", "lockinfo"),
    ] {
        let body = format!("<?xml version=\"1.0\"?><D:{root} xmlns:D=\"DAV:\">{nested}</D:{root}>");
        assert_eq!(send(&server, method, body.into_bytes()), 400, "{method}");
        still_serving(&server);
    }
}

#[test]
fn entity_expansion_is_not_performed() {
    let server = TestServer::start();
    server.put("target.txt", b"x".to_vec());
    let mut doctype = String::from("<!DOCTYPE D:propfind [<!ENTITY a0 \"lollollollollol\">");
    for level in 1..10 {
        let refs = format!("&a{};", level - 1).repeat(10);
        doctype.push_str(&format!("<!ENTITY a{level} \"{refs}\">"));
    }
    doctype.push(']');
    doctype.push('>');
    for method in ["PROPFIND", "PROPPATCH", "LOCK"] {
        let body = format!(
            "<?xml version=\"1.0\"?>{doctype}<D:propfind xmlns:D=\"DAV:\"><D:prop><x>&a9;</x></D:prop></D:propfind>"
        );
        let status = send(&server, method, body.into_bytes());
        assert!((400..500).contains(&status), "{method} answered {status}");
        still_serving(&server);
    }
}

#[test]
fn oversized_bodies_and_headers_are_refused() {
    let server = TestServer::start();
    let huge = vec![b' '; 3 * 1024 * 1024];
    assert_eq!(send(&server, "PROPFIND", huge.clone()), 413);
    assert_eq!(send(&server, "PROPPATCH", huge), 413);
    let response = server
        .dav("PROPFIND", "")
        .header("Depth", "0")
        .header("X-Padding", "p".repeat(512 * 1024))
        .send();
    let status = response.map(|r| r.status().as_u16()).unwrap_or(431);
    assert!(
        status == 431 || status == 400,
        "oversized header answered {status}"
    );
    still_serving(&server);
}

#[test]
fn user_content_is_never_rendered_as_a_page_of_the_app() {
    let server = TestServer::start();
    server.put(
        "page.html",
        b"<script>alert(document.cookie)</script>".to_vec(),
    );
    server.put(
        "image.svg",
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>1</script></svg>".to_vec(),
    );
    server.put("notes.txt", b"plain".to_vec());
    for (path, attachment) in [
        ("page.html", true),
        ("image.svg", true),
        ("notes.txt", false),
    ] {
        let response = server.dav("GET", path).send().unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert!(
            header("content-security-policy").contains("sandbox"),
            "{path}"
        );
        assert_eq!(
            header("content-disposition") == "attachment",
            attachment,
            "{path}"
        );
    }
}

/// Found by fuzzing: a MOVE or COPY onto the top of the drive, or of the top itself, once
/// broke the request inside the WebDAV engine.
#[test]
fn the_top_of_the_drive_is_never_moved_copied_or_replaced() {
    let server = TestServer::start();
    server.put("a.txt", "a");
    for (method, from, to) in [
        ("MOVE", "a.txt", ""),
        ("COPY", "a.txt", ""),
        ("MOVE", "?.txt", ""),
        ("MOVE", "", "b"),
        ("COPY", "", "b"),
    ] {
        let response = server
            .dav(method, from)
            .header("Destination", format!("{}{to}", server.dav_url()))
            .send()
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            403,
            "{method} {from:?} -> {to:?}"
        );
    }
    // A destination that only starts with the same letters as the drive's prefix.
    let beside = format!("{}x/b.txt", server.dav_url().trim_end_matches('/'));
    let response = server
        .dav("MOVE", "a.txt")
        .header("Destination", beside)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(server.get_bytes("a.txt").as_deref(), Some(&b"a"[..]));
    still_serving(&server);
}
