//! `ruche backup` copies a running drive consistently; `ruche restore` brings it back.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ruche_e2e::{ruche_bin, run_tool, TestServer};

fn ruche(args: &[&str]) -> String {
    let output = run_tool(
        Command::new(ruche_bin()).args(args),
        None,
        Duration::from_secs(120),
    );
    assert!(
        output.status.success(),
        "ruche {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_backup_taken_under_writes_restores_to_a_working_drive() {
    let server = TestServer::start();
    server.mkcol("docs");
    let big = vec![42u8; 3 << 20];
    server.put("docs/big.bin", big.clone());
    for i in 0..50 {
        server.put(
            &format!("docs/note-{i}.txt"),
            format!("note {i}").into_bytes(),
        );
    }

    let copies = tempfile::tempdir().unwrap();
    let (backup, restored) = (copies.path().join("backup"), copies.path().join("restored"));
    let writing = AtomicBool::new(true);
    std::thread::scope(|scope| {
        // Writes keep arriving while the backup runs.
        scope.spawn(|| {
            let mut i = 0;
            while writing.load(Ordering::Relaxed) {
                server.put(&format!("docs/late-{i}.txt"), vec![b'x'; 100_000]);
                i += 1;
            }
        });
        let data = server.data_dir().to_str().unwrap().to_owned();
        ruche(&["backup", "--data", &data, "--to", backup.to_str().unwrap()]);
        writing.store(false, Ordering::Relaxed);
    });

    ruche(&[
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--data",
        restored.to_str().unwrap(),
    ]);
    let report = ruche(&["fsck", "--data", restored.to_str().unwrap()]);
    assert!(report.contains("clean"), "{report}");

    // The restored folder serves, with the same accounts, what existed before the backup.
    let mut restored_server = Command::new(ruche_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&restored)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(restored_server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    let client = reqwest::blocking::Client::new();
    let get = |path: &str| {
        client
            .get(format!("{url}/dav/{path}"))
            .basic_auth(server.user(), Some(server.password()))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.bytes())
            .map(|b| b.to_vec())
    };
    let big_back = get("docs/big.bin");
    let note_back = get("docs/note-49.txt");
    let _ = restored_server.kill();
    let _ = restored_server.wait();
    assert_eq!(big_back.ok(), Some(big));
    assert_eq!(note_back.ok(), Some(b"note 49".to_vec()));
}
