//! A full disk during an upload: the client gets 507 and the previous content stays.

use std::path::{Path, PathBuf};
use std::process::Command;

use ruche_e2e::{require_root, TestServer};

/// A small tmpfs mounted on the data folder, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs on {}", dir.display());
        SmallDisk(dir.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn an_upload_that_fills_the_disk_answers_507_and_keeps_the_old_file() {
    require_root("it mounts a small tmpfs as the data folder");
    let mut disk = None;
    let mut server = TestServer::start_with(|dir| disk = Some(SmallDisk::mount(dir, "24m")));

    let old = vec![7u8; 4 << 20];
    server.put("doc.bin", old.clone());
    let too_big = vec![8u8; 40 << 20];
    let response = server.dav("PUT", "doc.bin").body(too_big).send().unwrap();
    assert_eq!(response.status().as_u16(), 507);
    assert_eq!(
        server.get_bytes("doc.bin"),
        Some(old),
        "the previous content is intact"
    );

    let leftovers = std::fs::read_dir(server.data_dir().join("tmp"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0, "the failed upload left nothing behind");
    server.put("after.txt", b"space is back".to_vec());

    server.crash();
    let report = server.cli(&["fsck"], None);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stdout)
    );
    drop(disk);
}
