//! The ownCloud desktop sync engine (`owncloudcmd`) against the same Nextcloud-compatible
//! surface: both ways, a large file in chunks, and a quiet second run.

use std::fs;
use std::time::Duration;

use ruche_e2e::{require_tool, run_tool, IsolatedHome, TestServer};

fn sync(home: &IsolatedHome, folder: &std::path::Path, server: &TestServer) -> String {
    // The client refuses to run without an exclude list; the packaged one comes with the
    // graphical client only.
    let excludes = home.path().join("sync-exclude.lst");
    fs::write(&excludes, "").unwrap();
    let output = run_tool(
        home.command("owncloudcmd")
            .args(["--non-interactive", "--exclude"])
            .arg(&excludes)
            .args(["-u", server.user(), "-p", server.password()])
            .arg(folder)
            .arg(server.url()),
        None,
        Duration::from_secs(120),
    );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "owncloudcmd failed:\n{log}");
    log
}

#[test]
fn the_owncloud_client_syncs_both_ways() {
    require_tool("owncloudcmd");
    let server = TestServer::start();
    let home = IsolatedHome::new();
    let folder = tempfile::tempdir().unwrap();
    server.mkcol("Partagé");
    server.put("Partagé/compte-rendu.md", "# Réunion".as_bytes().to_vec());
    fs::write(folder.path().join("note.txt"), "from the workstation").unwrap();
    let big: Vec<u8> = (0..25_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(folder.path().join("big.bin"), &big).unwrap();

    sync(&home, folder.path(), &server);
    assert_eq!(
        fs::read(folder.path().join("Partagé/compte-rendu.md")).unwrap(),
        b"# R\xc3\xa9union"
    );
    assert_eq!(
        server.get_bytes("note.txt").as_deref(),
        Some(&b"from the workstation"[..])
    );
    assert!(
        server.get_bytes("big.bin").unwrap() == big,
        "big.bin differs"
    );
    assert!(
        server.log().contains("/remote.php/dav/uploads/"),
        "the large file was not sent in chunks"
    );

    server.put("note.txt", b"edited on the server".to_vec());
    sync(&home, folder.path(), &server);
    assert_eq!(
        fs::read(folder.path().join("note.txt")).unwrap(),
        b"edited on the server"
    );
    let requests_before = server.log().lines().count();
    sync(&home, folder.path(), &server);
    let log = server.log();
    let run: Vec<&str> = log.lines().skip(requests_before).collect();
    assert!(
        run.iter().any(|l| l.contains("method=PROPFIND")),
        "the quiet run is not in the access log: {run:?}"
    );
    let transfers: Vec<&&str> = run
        .iter()
        .filter(|l| l.contains("method=PUT") || l.contains("method=GET path=/remote.php/dav/files"))
        .collect();
    assert!(
        transfers.is_empty(),
        "a quiet run transferred files: {transfers:?}"
    );
}
