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
