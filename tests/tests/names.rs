//! File names that need percent-encoding in a URL (spaces, `#`, `%`, accents, `&`)
//! work with every method, and a name is the same file in either Unicode form.

use ruche_e2e::{encode_path, TestServer, DAV_NS};

/// Names a user types every day, each needing some escaping in a URL or in XML.
const SPECIAL_NAMES: [&str; 8] = [
    "with space.txt",
    "hash#1.txt",
    "100%.txt",
    "caf\u{e9}.txt",
    "Tom & Jerry.txt",
    "plus+sign.txt",
    "quote'd (1).txt",
    "\u{65e5}\u{672c}\u{8a9e}.txt",
];

/// The file name at the end of a decoded href.
fn last_segment(href: &str) -> &str {
    href.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

#[test]
fn files_with_special_names_can_be_written_read_and_found() {
    let server = TestServer::start();
    let mut problems = Vec::new();

    for name in SPECIAL_NAMES {
        server.put(name, name.as_bytes());
        if server.get_bytes(name).as_deref() != Some(name.as_bytes()) {
            problems.push(format!(
                "GET {:?} does not return what was PUT",
                encode_path(name)
            ));
        }
        let propfind = server
            .dav("PROPFIND", name)
            .header("Depth", "0")
            .send()
            .unwrap();
        if propfind.status().as_u16() != 207 {
            let status = propfind.status();
            problems.push(format!(
                "PROPFIND {:?} answered {status}",
                encode_path(name)
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "after PUT /dav/<name> answered 2xx:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_listing_shows_special_names_exactly() {
    let server = TestServer::start();
    server.mkcol("folder");
    for name in SPECIAL_NAMES {
        server.put(&format!("folder/{name}"), "x");
    }

    let listing = server.propfind("folder/", "1", &[(DAV_NS, "resourcetype")]);

    let mut listed: Vec<&str> = listing
        .iter()
        .skip(1)
        .map(|r| last_segment(&r.href))
        .collect();
    let mut expected = SPECIAL_NAMES.to_vec();
    listed.sort_unstable();
    expected.sort_unstable();
    assert_eq!(
        listed, expected,
        "names in the Depth 1 listing, percent-decoded"
    );
}

#[test]
fn a_move_to_a_special_name_decodes_the_destination() {
    let server = TestServer::start();
    server.put("plain.txt", "content");
    let target = "Caf\u{e9} & friends #2.txt";

    let moved = server
        .dav("MOVE", "plain.txt")
        .header(
            "Destination",
            format!("{}{}", server.dav_url(), encode_path(target)),
        )
        .send()
        .unwrap();

    assert_eq!(moved.status().as_u16(), 201, "MOVE to a new name");
    assert_eq!(server.get_bytes(target).as_deref(), Some(&b"content"[..]));
    assert_eq!(server.get_bytes("plain.txt"), None);
}

#[test]
fn a_name_is_the_same_file_in_nfc_and_nfd() {
    let server = TestServer::start();
    let nfd = "re\u{301}sume\u{301}.txt";
    let nfc = "r\u{e9}sum\u{e9}.txt";

    server.put(nfd, "from a Mac");
    let read_as_nfc = server.get_bytes(nfc);
    server.put(nfc, "from Windows");
    let read_as_nfd = server.get_bytes(nfd);

    assert_eq!(
        read_as_nfc.as_deref(),
        Some(&b"from a Mac"[..]),
        "GET in NFC of a NFD upload"
    );
    assert_eq!(
        read_as_nfd.as_deref(),
        Some(&b"from Windows"[..]),
        "one file, not two"
    );
    let listing = server.propfind("", "1", &[(DAV_NS, "resourcetype")]);
    assert_eq!(listing.len(), 2, "the root and one file: {listing:?}");
}
