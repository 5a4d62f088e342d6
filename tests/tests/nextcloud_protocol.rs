//! What the Nextcloud clients and rclone rely on beyond plain WebDAV, request by request:
//! SHA-1 checksums (`oc:checksums`, `OC-Checksum`), chunked uploads under
//! `/remote.php/dav/uploads/<user>/`, and the RFC 6578 `sync-collection` REPORT.

use reqwest::blocking::RequestBuilder;
use reqwest::Method;
use ruche_e2e::{describe, multistatus, TestServer, DAV_NS, OC_NS};
use sha1::{Digest, Sha1};

fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

/// A request to `/remote.php/dav/<path>` as the test user.
fn nc(server: &TestServer, method: &str, path: &str) -> RequestBuilder {
    let url = format!(
        "{}/remote.php/dav/{path}",
        server.url().trim_end_matches('/')
    );
    server
        .client()
        .request(Method::from_bytes(method.as_bytes()).unwrap(), url)
        .basic_auth(server.user(), Some(server.password()))
}

fn files_url(server: &TestServer, path: &str) -> String {
    format!(
        "{}/remote.php/dav/files/{}/{path}",
        server.url().trim_end_matches('/'),
        server.user()
    )
}

#[test]
fn checksums_are_listed_and_verified() {
    let server = TestServer::start();
    let small = b"quelques mots".to_vec();
    let large: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    server.put("small.txt", small.clone());
    server.put("large.bin", large.clone());

    let listing = server.propfind("", "1", &[(OC_NS, "checksums"), (DAV_NS, "getetag")]);
    for (name, content) in [("small.txt", &small), ("large.bin", &large)] {
        let entry = listing
            .iter()
            .find(|r| r.href.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not listed"));
        assert_eq!(
            entry.prop(OC_NS, "checksums").as_deref().map(str::trim),
            Some(format!("SHA1:{}", sha1_hex(content)).as_str())
        );
    }

    // A content that does not match the checksum sent with it is refused, and the
    // previous content stays.
    let refused = server
        .dav("PUT", "small.txt")
        .header("OC-Checksum", format!("SHA1:{}", sha1_hex(b"other words")))
        .body(b"changed words".to_vec())
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400, "{}", describe(refused));
    assert_eq!(server.get_bytes("small.txt").unwrap(), small);

    let accepted = server
        .dav("PUT", "small.txt")
        .header("OC-Checksum", format!("SHA1:{}", sha1_hex(b"other words")))
        .body(b"other words".to_vec())
        .send()
        .unwrap();
    assert!(accepted.status().is_success(), "{}", describe(accepted));
    // Checksum kinds the drive does not compute are not held against the upload.
    let adler = server
        .dav("PUT", "small.txt")
        .header("OC-Checksum", "ADLER32:0a1b2c3d")
        .body(b"third words".to_vec())
        .send()
        .unwrap();
    assert!(adler.status().is_success(), "{}", describe(adler));
}

#[test]
fn chunks_assemble_into_a_file_once_complete() {
    let server = TestServer::start();
    server.mkcol("Docs");
    let user = server.user().to_owned();
    let upload = format!("uploads/{user}/web-file-upload-4a1f");
    let mkcol = nc(&server, "MKCOL", &upload)
        .header("Destination", files_url(&server, "Docs/rapport.pdf"))
        .send()
        .unwrap();
    assert_eq!(mkcol.status().as_u16(), 201, "{}", describe(mkcol));

    let parts: [&[u8]; 3] = [b"first part, ", b"second part, ", b"last part"];
    let whole: Vec<u8> = parts.concat();
    // Sent out of order: the number, not the arrival, decides the place.
    for number in [3usize, 1, 2] {
        let put = nc(&server, "PUT", &format!("{upload}/{number:05}"))
            .header("OC-Total-Length", whole.len().to_string())
            .header("Destination", files_url(&server, "Docs/rapport.pdf"))
            .body(parts[number - 1].to_vec())
            .send()
            .unwrap();
        assert_eq!(put.status().as_u16(), 201, "{}", describe(put));
    }
    let listed = nc(&server, "PROPFIND", &upload)
        .header("Depth", "1")
        .send()
        .unwrap();
    assert_eq!(listed.status().as_u16(), 207);
    assert_eq!(multistatus(&listed.text().unwrap()).len(), 4);

    // Another user cannot reach these chunks.
    server.cli_ok(
        &["user", "add", "bob", "--password-stdin"],
        Some("bob-password\n"),
    );
    let foreign = server
        .client()
        .request(
            Method::from_bytes(b"PROPFIND").unwrap(),
            format!(
                "{}/remote.php/dav/{upload}",
                server.url().trim_end_matches('/')
            ),
        )
        .basic_auth("bob", Some("bob-password"))
        .header("Depth", "1")
        .send()
        .unwrap();
    assert_eq!(foreign.status().as_u16(), 404);

    // A wrong total length or checksum assembles nothing and keeps the chunks.
    let short = nc(&server, "MOVE", &format!("{upload}/.file"))
        .header("Destination", files_url(&server, "Docs/rapport.pdf"))
        .header("OC-Total-Length", "5")
        .send()
        .unwrap();
    assert_eq!(short.status().as_u16(), 400, "{}", describe(short));
    let wrong_sum = nc(&server, "MOVE", &format!("{upload}/.file"))
        .header("Destination", files_url(&server, "Docs/rapport.pdf"))
        .header(
            "OC-Checksum",
            format!("SHA1:{}", sha1_hex(b"something else")),
        )
        .send()
        .unwrap();
    assert_eq!(wrong_sum.status().as_u16(), 400, "{}", describe(wrong_sum));
    assert_eq!(server.get_bytes("Docs/rapport.pdf"), None);

    let assembled = nc(&server, "MOVE", &format!("{upload}/.file"))
        .header("Destination", files_url(&server, "Docs/rapport.pdf"))
        .header("OC-Total-Length", whole.len().to_string())
        .header("OC-Checksum", format!("SHA1:{}", sha1_hex(&whole)))
        .header("X-OC-Mtime", "1700000000")
        .send()
        .unwrap();
    assert_eq!(assembled.status().as_u16(), 201, "{}", describe(assembled));
    let file_id = assembled.headers().get("oc-fileid").cloned();
    assert!(file_id.is_some() && assembled.headers().get("oc-etag").is_some());
    assert_eq!(
        assembled.headers().get("x-oc-mtime").map(|v| v.as_bytes()),
        Some(&b"accepted"[..])
    );
    assert_eq!(server.get_bytes("Docs/rapport.pdf").unwrap(), whole);
    let gone = nc(&server, "PROPFIND", &upload)
        .header("Depth", "1")
        .send()
        .unwrap();
    assert_eq!(gone.status().as_u16(), 404, "the chunks were not removed");

    // An abandoned upload is removed on DELETE.
    let other = format!("uploads/{user}/abandoned");
    nc(&server, "MKCOL", &other).send().unwrap();
    nc(&server, "PUT", &format!("{other}/1"))
        .body(b"x".to_vec())
        .send()
        .unwrap();
    let deleted = nc(&server, "DELETE", &other).send().unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let after = nc(&server, "PROPFIND", &other).send().unwrap();
    assert_eq!(after.status().as_u16(), 404);
}

fn sync_report(server: &TestServer, token: &str, level: &str) -> (u16, String) {
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token>
<d:sync-level>{level}</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"#
    );
    let response = server.dav("REPORT", "").body(body).send().unwrap();
    let status = response.status().as_u16();
    (status, response.text().unwrap())
}

/// The sync token and the (href, status) pairs of a sync-collection answer.
fn read_report(xml: &str) -> (String, Vec<(String, Option<u16>)>) {
    let root = xmltree::Element::parse(xml.as_bytes()).unwrap();
    let token = root
        .get_child(("sync-token", DAV_NS))
        .and_then(|t| t.get_text())
        .expect("a sync token")
        .into_owned();
    let mut entries: Vec<(String, Option<u16>)> = multistatus(xml)
        .into_iter()
        .map(|r| (r.href.rsplit("/dav/").next().unwrap().to_owned(), r.status))
        .collect();
    entries.sort();
    (token, entries)
}

#[test]
fn sync_collection_reports_changes_since_a_token() {
    let server = TestServer::start();
    server.mkcol("a");
    server.put("a/one.txt", b"1".to_vec());
    server.put("a/two.txt", b"2".to_vec());
    server.put("three.txt", b"3".to_vec());

    let (status, xml) = sync_report(&server, "", "infinite");
    assert_eq!(status, 207, "{xml}");
    let (token, first) = read_report(&xml);
    let names: Vec<&str> = first.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(names, ["a/", "a/one.txt", "a/two.txt", "three.txt"]);

    let (_, quiet) = sync_report(&server, &token, "infinite");
    let (same, nothing) = read_report(&quiet);
    assert!(nothing.is_empty(), "{quiet}");
    assert_eq!(same, token);

    server.put("a/one.txt", b"one".to_vec());
    server.dav("DELETE", "three.txt").send().unwrap();
    let moved = server
        .dav("MOVE", "a/two.txt")
        .header("Destination", format!("{}deux.txt", server.dav_url()))
        .send()
        .unwrap();
    assert!(moved.status().is_success());

    let (_, xml) = sync_report(&server, &token, "infinite");
    let (next, changes) = read_report(&xml);
    assert_ne!(next, token);
    assert_eq!(
        changes,
        [
            ("a/".to_owned(), None),
            ("a/one.txt".to_owned(), None),
            ("a/two.txt".to_owned(), Some(404)),
            ("deux.txt".to_owned(), None),
            ("three.txt".to_owned(), Some(404)),
        ]
    );
    let (_, xml) = sync_report(&server, &token, "1");
    let (_, shallow) = read_report(&xml);
    let names: Vec<&str> = shallow.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(names, ["a/", "deux.txt", "three.txt"]);

    // A token the drive never issued: the client must start over.
    let (status, xml) = sync_report(&server, "urn:ruche:sync:999999999", "1");
    assert_eq!(status, 403);
    assert!(xml.contains("valid-sync-token"), "{xml}");
    let (status, _) = sync_report(&server, "http://example.com/token", "1");
    assert_eq!(status, 403);

    // The folder's sync-token property is where a client gets its first token.
    let root = server.propfind("", "0", &[(DAV_NS, "sync-token")]);
    assert!(root[0]
        .prop(DAV_NS, "sync-token")
        .is_some_and(|t| t.starts_with("urn:ruche:sync:")));
}
