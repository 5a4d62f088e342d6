//! A large folder is listed from the index alone: its PROPFIND never opens a content.

use ruche_e2e::{TestServer, DAV_NS, OC_NS};

const ENTRIES: usize = 10_000;
const WRITERS: usize = 8;

#[test]
fn propfind_of_ten_thousand_entries_needs_no_blob_file() {
    let server = TestServer::start();
    server.mkcol("big");
    // A few contents large enough to live in blob files, the rest small.
    let big = vec![b'x'; 200 * 1024];
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (server, big) = (&server, &big);
            scope.spawn(move || {
                for i in (writer..ENTRIES).step_by(WRITERS) {
                    let body = if i % 1000 == 0 {
                        big.clone()
                    } else {
                        format!("{i}").into_bytes()
                    };
                    server.put(&format!("big/file-{i:05}.txt"), body);
                }
            });
        }
    });

    // Take the blob folder away: a listing that needed a content would now fail.
    let blobs = server.data_dir().join("blobs");
    let hidden = server.data_dir().join("blobs-hidden");
    std::fs::rename(&blobs, &hidden).expect("blob folder moved aside");
    let started = std::time::Instant::now();
    let listing = server.propfind(
        "big/",
        "1",
        &[
            (DAV_NS, "getcontentlength"),
            (DAV_NS, "getetag"),
            (OC_NS, "fileid"),
        ],
    );
    let elapsed = started.elapsed();
    std::fs::rename(&hidden, &blobs).expect("blob folder put back");

    assert_eq!(listing.len(), ENTRIES + 1, "the folder and every entry");
    let first_big = listing
        .iter()
        .find(|r| r.href.ends_with("file-01000.txt"))
        .expect("a large file is listed");
    assert_eq!(
        first_big.prop(DAV_NS, "getcontentlength").as_deref(),
        Some("204800")
    );
    assert!(listing.iter().all(|r| r.prop(OC_NS, "fileid").is_some()));
    println!("PROPFIND Depth 1 of {ENTRIES} entries: {elapsed:?}");

    assert_eq!(server.get_bytes("big/file-01000.txt"), Some(big));
}
