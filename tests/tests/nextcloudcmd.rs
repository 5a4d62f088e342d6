//! The Nextcloud desktop sync engine (`nextcloudcmd`) against the drive: both ways,
//! renames, deletions and conflicts, with nothing lost.

use std::fs;
use std::path::Path;
use std::time::Duration;

use ruche_e2e::{require_tool, run_tool, IsolatedHome, TestServer};

struct Workstation {
    home: IsolatedHome,
    folder: tempfile::TempDir,
}

impl Workstation {
    fn new() -> Workstation {
        Workstation {
            home: IsolatedHome::new(),
            folder: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.folder.path().join(name)
    }

    /// Runs one sync and returns its log.
    fn sync(&self, server: &TestServer) -> String {
        let output = run_tool(
            self.home
                .command("nextcloudcmd")
                .args([
                    "--non-interactive",
                    "-u",
                    server.user(),
                    "-p",
                    server.password(),
                ])
                .arg(self.folder.path())
                .arg(server.url()),
            None,
            Duration::from_secs(120),
        );
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "nextcloudcmd failed:\n{log}");
        log
    }
}

fn local_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".sync_") && !n.starts_with(".nextcloudsync"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_desktop_client_syncs_both_ways() {
    require_tool("nextcloudcmd");
    let server = TestServer::start();
    let station = Workstation::new();
    server.mkcol("Dossiers");
    server.put("Dossiers/budget.ods", b"from the server".to_vec());
    fs::write(station.path("note.txt"), "from the workstation").unwrap();

    station.sync(&server);
    assert_eq!(
        fs::read(station.path("Dossiers/budget.ods")).unwrap(),
        b"from the server"
    );
    assert_eq!(
        server.get_bytes("note.txt").as_deref(),
        Some(&b"from the workstation"[..])
    );

    // A change on each side crosses over.
    fs::write(station.path("note.txt"), "edited on the workstation").unwrap();
    server.put("Dossiers/budget.ods", b"edited on the server".to_vec());
    station.sync(&server);
    assert_eq!(
        server.get_bytes("note.txt").as_deref(),
        Some(&b"edited on the workstation"[..])
    );
    assert_eq!(
        fs::read(station.path("Dossiers/budget.ods")).unwrap(),
        b"edited on the server"
    );

    // Nothing changed: the second run transfers nothing.
    let quiet = station.sync(&server);
    assert!(
        !quiet.contains("GETFileJob") && !quiet.contains("PUT of"),
        "{quiet}"
    );
}

#[test]
fn renames_and_deletions_travel_without_downloads() {
    require_tool("nextcloudcmd");
    let server = TestServer::start();
    let station = Workstation::new();
    server.put("rapport.odt", vec![b'r'; 50_000]);
    server.put("old.txt", b"to delete on the server".to_vec());
    fs::write(station.path("local-only.txt"), "to delete locally").unwrap();
    // Files that stay as they are: the client asks for confirmation when every file changes.
    for i in 0..5 {
        server.put(&format!("keep-{i}.txt"), format!("kept {i}").into_bytes());
    }
    station.sync(&server);

    let moved = server
        .dav("MOVE", "rapport.odt")
        .header(
            "Destination",
            format!("{}rapport-final.odt", server.dav_url()),
        )
        .send()
        .unwrap();
    assert!(moved.status().is_success());
    server.dav("DELETE", "old.txt").send().unwrap();
    fs::remove_file(station.path("local-only.txt")).unwrap();

    let log = station.sync(&server);
    assert!(
        !log.contains("GETFileJob"),
        "a rename downloaded the file again:\n{log}"
    );
    assert_eq!(
        fs::read(station.path("rapport-final.odt")).unwrap(),
        vec![b'r'; 50_000]
    );
    assert!(!station.path("rapport.odt").exists());
    assert!(!station.path("old.txt").exists());
    assert_eq!(server.get_bytes("local-only.txt"), None);
}

#[test]
fn a_change_on_both_sides_keeps_both_versions() {
    require_tool("nextcloudcmd");
    let server = TestServer::start();
    let station = Workstation::new();
    server.put("shared.txt", b"original".to_vec());
    station.sync(&server);

    fs::write(station.path("shared.txt"), "workstation version").unwrap();
    server.put("shared.txt", b"server version".to_vec());
    station.sync(&server);

    let names = local_files(station.folder.path());
    let conflict = names.iter().find(|n| n.contains("conflicted copy"));
    let conflict = conflict.unwrap_or_else(|| panic!("no conflict copy among {names:?}"));
    let mut versions = vec![
        fs::read_to_string(station.path("shared.txt")).unwrap(),
        fs::read_to_string(station.path(conflict)).unwrap(),
    ];
    versions.sort();
    assert_eq!(
        versions,
        ["server version", "workstation version"],
        "nothing lost"
    );
}

#[test]
fn a_large_file_goes_up_in_chunks_and_comes_back_whole() {
    require_tool("nextcloudcmd");
    let server = TestServer::start();
    let station = Workstation::new();
    // 200 MiB that no two chunks share, so that a chunk out of place shows.
    let mut content = vec![0u8; 200 << 20];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for block in content.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        block.copy_from_slice(&state.to_le_bytes()[..block.len()]);
    }
    fs::write(station.path("archive.bin"), &content).unwrap();

    station.sync(&server);
    let log = server.log();
    let chunk_puts = log
        .lines()
        .filter(|l| l.contains("PUT") && l.contains("/remote.php/dav/uploads/"))
        .count();
    assert!(
        chunk_puts >= 2,
        "the file was not sent in chunks ({chunk_puts} chunk PUTs)"
    );
    assert!(log.contains("MOVE") && log.contains(".file"), "no assembly");
    let stored = server.get_bytes("archive.bin").expect("the file arrived");
    assert!(stored == content, "the assembled file differs");

    // Nothing left behind, and nothing sent again.
    let uploads = server.data_dir().join("uploads");
    let leftovers = fs::read_dir(&uploads)
        .map(|spaces| {
            spaces
                .flatten()
                .flat_map(|s| fs::read_dir(s.path()).into_iter().flatten().flatten())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "chunks left in {}", uploads.display());
    let quiet = station.sync(&server);
    assert!(!quiet.contains("PUT of"), "{quiet}");
}

/// The PROPFIND requests of the server's access log from line `from` on.
fn propfinds_since(server: &TestServer, from: usize) -> Vec<String> {
    server
        .log()
        .lines()
        .skip(from)
        .filter(|l| l.contains("method=PROPFIND"))
        .filter_map(|l| l.split("path=").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn a_quiet_sync_asks_for_the_root_only_and_a_change_for_its_folder() {
    require_tool("nextcloudcmd");
    let server = TestServer::start();
    let station = Workstation::new();
    for folder in 0..40 {
        let folder = format!("dossier-{folder:02}");
        fs::create_dir(station.path(&folder)).unwrap();
        for file in 0..10 {
            fs::write(
                station.path(&format!("{folder}/note-{file}.txt")),
                format!("{folder} {file}"),
            )
            .unwrap();
        }
    }
    station.sync(&server);
    // The uploads moved the ETags of the folders they went into after the client listed
    // them: one more run records the final ETags, as it does with any server.
    station.sync(&server);

    let before = server.log().lines().count();
    station.sync(&server);
    let quiet = propfinds_since(&server, before);
    assert!(
        !quiet.is_empty()
            && quiet
                .iter()
                .all(|p| p.ends_with(&format!("/files/{}/", server.user()))),
        "a sync with nothing changed asked for more than the root: {quiet:?}"
    );

    server.put("dossier-17/note-3.txt", b"changed on the server".to_vec());
    let before = server.log().lines().count();
    station.sync(&server);
    let walked = propfinds_since(&server, before);
    let folders: Vec<&String> = walked
        .iter()
        .filter(|p| !p.ends_with(&format!("/files/{}/", server.user())))
        .collect();
    assert!(
        !folders.is_empty() && folders.iter().all(|p| p.contains("dossier-17")),
        "one changed folder, but the client walked {walked:?}"
    );
    assert_eq!(
        fs::read(station.path("dossier-17/note-3.txt")).unwrap(),
        b"changed on the server"
    );
}
