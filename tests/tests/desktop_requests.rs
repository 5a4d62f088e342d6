//! The requests Windows Explorer (the WebDAV Mini-Redirector) and macOS Finder send,
//! replayed, since neither can run here; and the HTTP details desktop sync clients
//! rely on (ETags, conditional requests, ranges, file ids, modification times).

use std::io::Cursor;
use std::time::{Duration, Instant};

use rand::RngCore;
use reqwest::blocking::{Body, Response};
use ruche_e2e::{describe, http_date, TestServer, DAV_NS, MS_NS, OC_NS};

/// The time Windows reports for a saved file in the PROPPATCH below.
const WINDOWS_SAVE_TIME: &str = "Thu, 01 Jan 2026 10:00:00 GMT";

const WINDOWS_LOCK_BODY: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>WORKGROUP\alice</D:href></D:owner></D:lockinfo>"#;

fn windows_proppatch_body() -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8" ?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32CreationTime>{t}</Z:Win32CreationTime><Z:Win32LastAccessTime>{t}</Z:Win32LastAccessTime><Z:Win32LastModifiedTime>{t}</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>"#,
        t = WINDOWS_SAVE_TIME
    )
}

/// Takes an exclusive write lock the way Windows does and returns its token
/// (without the angle brackets of the `Lock-Token` header).
fn lock(server: &TestServer, path: &str, timeout: &str) -> String {
    let response = server
        .dav("LOCK", path)
        .header("Timeout", timeout)
        .header("Depth", "0")
        .header("Content-Type", "text/xml; charset=\"utf-8\"")
        .body(WINDOWS_LOCK_BODY)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    assert!(
        status == 200 || status == 201,
        "LOCK {path}: {}",
        describe(response)
    );

    let header = header(&response, "Lock-Token").expect("LOCK answers a Lock-Token header");
    let token = header.strip_prefix('<').and_then(|t| t.strip_suffix('>'));
    let token = token
        .unwrap_or_else(|| panic!("Lock-Token is not <token>: {header:?}"))
        .to_owned();
    let body = response.text().unwrap();
    assert!(
        body.contains(&token),
        "the LOCK body does not show the token {token}:\n{body}"
    );
    token
}

fn if_token(token: &str) -> String {
    format!("(<{token}>)")
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

fn status_of(response: Response) -> u16 {
    response.status().as_u16()
}

fn random_bytes(size: usize) -> Vec<u8> {
    let mut bytes = vec![0; size];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn etag_of(server: &TestServer, path: &str) -> String {
    let response = server.dav("HEAD", path).send().unwrap();
    assert_eq!(response.status().as_u16(), 200, "HEAD {path}");
    header(&response, "ETag").expect("HEAD answers an ETag")
}

#[test]
fn options_advertise_dav_classes_and_ms_author_via() {
    let server = TestServer::start();

    let response = server.dav("OPTIONS", "").send().unwrap();

    assert!(
        response.status().is_success(),
        "OPTIONS: {}",
        response.status()
    );
    assert_eq!(header(&response, "MS-Author-Via").as_deref(), Some("DAV"));
    let dav = header(&response, "DAV").expect("OPTIONS answers a DAV header");
    let classes: Vec<&str> = dav.split(',').map(str::trim).collect();
    assert!(
        classes.contains(&"1") && classes.contains(&"2"),
        "DAV: {dav}"
    );
}

#[test]
fn windows_saves_a_new_file_under_a_lock_and_sets_its_times() {
    let server = TestServer::start();
    let token = lock(&server, "Report.docx", "Second-3600");

    let put = server
        .dav("PUT", "Report.docx")
        .header("If", if_token(&token))
        .body("v1")
        .send();
    let put = put.unwrap();
    assert!(
        put.status().is_success(),
        "PUT with the lock token: {}",
        describe(put)
    );
    let patch = server
        .dav("PROPPATCH", "Report.docx")
        .header("If", if_token(&token))
        .header("Content-Type", "text/xml; charset=\"utf-8\"")
        .body(windows_proppatch_body())
        .send()
        .unwrap();
    assert_eq!(
        patch.status().as_u16(),
        207,
        "PROPPATCH Win32 times: {}",
        describe(patch)
    );
    let patched = ruche_e2e::multistatus(&patch.text().unwrap());
    let unlock = server
        .dav("UNLOCK", "Report.docx")
        .header("Lock-Token", format!("<{token}>"));
    let unlock = unlock.send().unwrap();

    let failed: Vec<_> = patched[0]
        .prop_statuses()
        .into_iter()
        .filter(|(_, s)| *s != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "PROPPATCH refused some Win32 properties: {failed:?}"
    );
    assert_eq!(status_of(unlock), 204, "UNLOCK");
    let wanted = [(DAV_NS, "getlastmodified"), (MS_NS, "Win32FileAttributes")];
    let found = &server.propfind("Report.docx", "0", &wanted)[0];
    assert_eq!(
        found.prop(DAV_NS, "getlastmodified").as_deref(),
        Some(WINDOWS_SAVE_TIME),
        "getlastmodified after a PROPPATCH of Win32LastModifiedTime"
    );
    assert_eq!(
        found.prop(MS_NS, "Win32FileAttributes").as_deref(),
        Some("00000020"),
        "Win32FileAttributes after a PROPPATCH"
    );
    assert_eq!(server.get_bytes("Report.docx").as_deref(), Some(&b"v1"[..]));
}

#[test]
fn writes_without_the_lock_token_are_refused_with_423() {
    let server = TestServer::start();
    server.put("locked.txt", "original");
    let token = lock(&server, "locked.txt", "Second-3600");

    let put = server
        .dav("PUT", "locked.txt")
        .body("intruder")
        .send()
        .unwrap();
    let delete = server.dav("DELETE", "locked.txt").send().unwrap();
    let unchanged = server.get_bytes("locked.txt");
    let with_token = server
        .dav("PUT", "locked.txt")
        .header("If", if_token(&token))
        .body("owner");

    assert_eq!(status_of(put), 423, "PUT without the lock token");
    assert_eq!(status_of(delete), 423, "DELETE without the lock token");
    assert_eq!(unchanged.as_deref(), Some(&b"original"[..]));
    assert!(
        with_token.send().unwrap().status().is_success(),
        "PUT with the lock token"
    );
    assert_eq!(
        server.get_bytes("locked.txt").as_deref(),
        Some(&b"owner"[..])
    );
}

#[test]
fn an_expired_lock_no_longer_blocks_writes() {
    let server = TestServer::start();
    server.put("brief.txt", "original");
    let locked_at = Instant::now();
    lock(&server, "brief.txt", "Second-2");

    let while_locked = server
        .dav("PUT", "brief.txt")
        .body("too early")
        .send()
        .unwrap();
    assert_eq!(
        status_of(while_locked),
        423,
        "PUT right after a 2-second LOCK"
    );

    let deadline = locked_at + Duration::from_secs(10);
    loop {
        let status = status_of(
            server
                .dav("PUT", "brief.txt")
                .body("after expiry")
                .send()
                .unwrap(),
        );
        if (200..300).contains(&status) {
            break;
        }
        assert_eq!(status, 423, "PUT while waiting for the lock to expire");
        assert!(
            Instant::now() < deadline,
            "a 2-second lock still blocks writes after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        locked_at.elapsed() >= Duration::from_secs(1),
        "the lock expired too early"
    );
    assert_eq!(
        server.get_bytes("brief.txt").as_deref(),
        Some(&b"after expiry"[..])
    );
}

#[test]
fn locks_survive_a_restart() {
    let mut server = TestServer::start();
    server.put("kept.txt", "original");
    let token = lock(&server, "kept.txt", "Second-3600");

    server.restart();

    let without = server
        .dav("PUT", "kept.txt")
        .body("intruder")
        .send()
        .unwrap();
    assert_eq!(
        status_of(without),
        423,
        "PUT without the token after a restart"
    );
    let with = server
        .dav("PUT", "kept.txt")
        .header("If", if_token(&token))
        .body("owner");
    assert!(
        with.send().unwrap().status().is_success(),
        "PUT with the token after a restart"
    );
    assert_eq!(server.get_bytes("kept.txt").as_deref(), Some(&b"owner"[..]));
}

#[test]
fn finder_uploads_with_chunked_transfer_encoding() {
    let server = TestServer::start();
    let content = random_bytes(1_500_000);

    let response = server
        .dav("PUT", "holiday.jpg")
        .header("X-Expected-Entity-Length", content.len().to_string())
        .body(Body::new(Cursor::new(content.clone())))
        .send()
        .unwrap();

    assert!(
        response.status().is_success(),
        "chunked PUT: {}",
        describe(response)
    );
    assert!(
        server.get_bytes("holiday.jpg") == Some(content),
        "the chunked upload changed"
    );
}

#[test]
fn finder_metadata_files_are_accepted() {
    let server = TestServer::start();
    server.mkcol("Photos");

    server.put("Photos/._holiday.jpg", &b"\x00\x05\x16\x07AppleDouble"[..]);
    server.put("Photos/.DS_Store", &b"\x00\x00\x00\x01Bud1"[..]);

    let listing = server.propfind("Photos", "1", &[(DAV_NS, "getcontentlength")]);
    let names: Vec<&str> = listing
        .iter()
        .map(|r| r.href.trim_end_matches('/'))
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("/Photos/._holiday.jpg")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("/Photos/.DS_Store")),
        "{names:?}"
    );
    assert_eq!(
        server.get_bytes("Photos/.DS_Store").as_deref(),
        Some(&b"\x00\x00\x00\x01Bud1"[..])
    );
}

#[test]
fn repeated_depth_1_listings_answer_the_same() {
    let server = TestServer::start();
    server.mkcol("Desktop");
    for index in 0..20 {
        server.put(
            &format!("Desktop/file {index}.txt"),
            format!("content {index}"),
        );
    }
    let wanted = [
        (DAV_NS, "getetag"),
        (DAV_NS, "getcontentlength"),
        (DAV_NS, "resourcetype"),
    ];
    let listing_of = |server: &TestServer| -> Vec<(String, Option<String>)> {
        let listing = server.propfind("Desktop/", "1", &wanted);
        let mut entries: Vec<_> = listing
            .into_iter()
            .map(|r| (r.href.clone(), r.prop(DAV_NS, "getetag")))
            .collect();
        entries.sort();
        entries
    };

    let first = listing_of(&server);
    let repeats: Vec<_> = (0..30).map(|_| listing_of(&server)).collect();

    assert_eq!(first.len(), 21, "the folder and its 20 files: {first:?}");
    assert!(
        repeats.iter().all(|listing| *listing == first),
        "listings differ between calls"
    );
}

#[test]
fn a_missing_file_is_404_and_not_cacheable() {
    let server = TestServer::start();

    let response = server.dav("GET", "missing.txt").send().unwrap();

    assert_eq!(response.status().as_u16(), 404);
    let cache_control = header(&response, "Cache-Control").unwrap_or_default();
    let not_cacheable = ["no-store", "no-cache", "max-age=0"]
        .iter()
        .any(|d| cache_control.contains(d));
    assert!(
        not_cacheable,
        "a 404 without Cache-Control no-store: {:?}",
        response.headers()
    );
}

#[test]
fn etags_are_strong_quoted_and_follow_the_content() {
    let server = TestServer::start();
    server.put("doc.txt", "one");

    let first = etag_of(&server, "doc.txt");
    let listing = server.propfind("doc.txt", "0", &[(DAV_NS, "getetag")]);
    let listed = listing[0].prop(DAV_NS, "getetag");
    server.put("doc.txt", "two");
    let second = etag_of(&server, "doc.txt");

    let strong_and_quoted =
        |etag: &str| etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"');
    assert!(
        strong_and_quoted(&first),
        "ETag {first:?} is not a strong, quoted ETag"
    );
    assert_eq!(
        listed.as_deref(),
        Some(first.as_str()),
        "PROPFIND getetag differs from ETag"
    );
    assert_ne!(first, second, "the ETag did not change with the content");
}

#[test]
fn x_oc_mtime_sets_the_modification_time() {
    let server = TestServer::start();
    let mtime = 1_700_000_000;

    let response = server
        .dav("PUT", "dated.txt")
        .header("X-OC-Mtime", mtime.to_string())
        .body("x");
    let response = response.send().unwrap();

    assert!(response.status().is_success(), "PUT: {}", response.status());
    assert_eq!(header(&response, "X-OC-Mtime").as_deref(), Some("accepted"));
    let listed = &server.propfind("dated.txt", "0", &[(DAV_NS, "getlastmodified")])[0];
    assert_eq!(
        listed.prop(DAV_NS, "getlastmodified"),
        Some(http_date(mtime))
    );
    let head = server.dav("HEAD", "dated.txt").send().unwrap();
    assert_eq!(header(&head, "Last-Modified"), Some(http_date(mtime)));
}

#[test]
fn the_file_id_is_kept_across_a_move_and_new_on_a_copy() {
    let server = TestServer::start();
    server.mkcol("archive");
    let put = server.put("draft.txt", "text");
    let put_id = header(&put, "OC-FileId").expect("PUT answers OC-FileId");
    let listed_id =
        |path: &str| server.propfind(path, "0", &[(OC_NS, "fileid")])[0].prop(OC_NS, "fileid");
    let id_before = listed_id("draft.txt").expect("PROPFIND exposes oc:fileid");

    let moved = server
        .dav("MOVE", "draft.txt")
        .header(
            "Destination",
            format!("{}archive/final.txt", server.dav_url()),
        )
        .send()
        .unwrap();
    let copied = server
        .dav("COPY", "archive/final.txt")
        .header("Destination", format!("{}copy.txt", server.dav_url()))
        .send()
        .unwrap();

    assert!(moved.status().is_success(), "MOVE: {}", moved.status());
    assert_eq!(
        header(&moved, "OC-FileId"),
        Some(put_id.clone()),
        "MOVE answers the same OC-FileId"
    );
    assert_eq!(listed_id("archive/final.txt"), Some(id_before.clone()));
    assert!(copied.status().is_success(), "COPY: {}", copied.status());
    let copy_id = header(&copied, "OC-FileId").expect("COPY answers OC-FileId");
    assert_ne!(copy_id, put_id, "a copy is a new file with its own id");
    assert_ne!(listed_id("copy.txt"), Some(id_before));
}

#[test]
fn range_requests_return_the_requested_bytes() {
    let server = TestServer::start();
    let content = random_bytes(10_000);
    server.put("data.bin", content.clone());

    let middle = server
        .dav("GET", "data.bin")
        .header("Range", "bytes=100-199")
        .send()
        .unwrap();
    let suffix = server
        .dav("GET", "data.bin")
        .header("Range", "bytes=-10")
        .send()
        .unwrap();

    assert_eq!(middle.status().as_u16(), 206);
    assert_eq!(
        header(&middle, "Content-Range").as_deref(),
        Some("bytes 100-199/10000")
    );
    assert!(
        middle.bytes().unwrap() == content[100..200],
        "bytes 100-199 differ"
    );
    assert_eq!(suffix.status().as_u16(), 206);
    assert_eq!(
        header(&suffix, "Content-Range").as_deref(),
        Some("bytes 9990-9999/10000")
    );
    assert!(
        suffix.bytes().unwrap() == content[9990..],
        "the last 10 bytes differ"
    );
}

#[test]
fn if_match_with_a_stale_etag_is_refused_with_412() {
    let server = TestServer::start();
    server.put("doc.txt", "current");
    let etag = etag_of(&server, "doc.txt");

    let stale = server
        .dav("PUT", "doc.txt")
        .header("If-Match", "\"not-the-etag\"")
        .body("lost");
    let stale = stale.send().unwrap();
    let current = server
        .dav("PUT", "doc.txt")
        .header("If-Match", etag)
        .body("updated");

    assert_eq!(status_of(stale), 412, "PUT with a wrong If-Match");
    assert_eq!(
        server.get_bytes("doc.txt").as_deref(),
        Some(&b"current"[..])
    );
    assert!(
        current.send().unwrap().status().is_success(),
        "PUT with the right If-Match"
    );
    assert_eq!(
        server.get_bytes("doc.txt").as_deref(),
        Some(&b"updated"[..])
    );
}

#[test]
fn if_none_match_star_refuses_to_overwrite_an_existing_file() {
    let server = TestServer::start();
    server.put("doc.txt", "first");

    let overwrite = server
        .dav("PUT", "doc.txt")
        .header("If-None-Match", "*")
        .body("second");
    let create = server
        .dav("PUT", "new.txt")
        .header("If-None-Match", "*")
        .body("new");

    assert_eq!(
        status_of(overwrite.send().unwrap()),
        412,
        "If-None-Match: * on an existing file"
    );
    assert_eq!(server.get_bytes("doc.txt").as_deref(), Some(&b"first"[..]));
    assert_eq!(
        status_of(create.send().unwrap()),
        201,
        "If-None-Match: * on a new file"
    );
}
