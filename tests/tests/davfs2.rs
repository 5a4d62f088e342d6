//! davfs2 mounts the drive as a file system. On this machine's kernel listing a
//! mounted directory fails with EINVAL, so the tests only open files by name.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rand::RngCore;
use ruche_e2e::{require_root, require_tool, run_tool, TestServer};
use tempfile::TempDir;

/// Unmounting waits until every cached change is uploaded.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(120);

/// A davfs2 mount of the user's WebDAV root, with its own configuration, secrets
/// file and cache, all in a temporary folder.
struct DavfsMount {
    folder: TempDir,
    mounted: bool,
}

impl DavfsMount {
    fn mount(server: &TestServer) -> DavfsMount {
        require_root("mounting a davfs file system needs root (run `sudo cargo test`)");
        require_tool("mount.davfs");
        let folder = tempfile::Builder::new()
            .prefix("ruche-davfs-")
            .tempdir()
            .unwrap();
        // mount.davfs drops to the `davfs2` user, which must reach its cache folder.
        fs::set_permissions(folder.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let mut mount = DavfsMount {
            folder,
            mounted: false,
        };
        fs::create_dir(mount.mountpoint()).unwrap();
        mount.write_configuration(server);

        let conf = format!("conf={}", mount.path("davfs2.conf").display());
        let mut command = Command::new("mount");
        command
            .args(["-t", "davfs", "-o", &conf, &server.dav_url()])
            .arg(mount.mountpoint());
        run_ok(&mut command);
        mount.mounted = true;
        mount
    }

    fn write_configuration(&self, server: &TestServer) {
        let cache = self.path("cache");
        fs::create_dir(&cache).unwrap();
        run_ok(Command::new("chown").arg("root:davfs2").arg(&cache));
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o775)).unwrap();

        let secrets = self.path("secrets");
        let line = format!(
            "{} {} {}\n",
            server.dav_url(),
            server.user(),
            server.password()
        );
        fs::write(&secrets, line).unwrap();
        fs::set_permissions(&secrets, fs::Permissions::from_mode(0o600)).unwrap();

        let conf = format!(
            "secrets {}\ncache_dir {}\nuse_locks 1\nask_auth 0\n",
            secrets.display(),
            cache.display()
        );
        fs::write(self.path("davfs2.conf"), conf).unwrap();
    }

    fn mountpoint(&self) -> PathBuf {
        self.path("mnt")
    }

    /// A path inside the mounted file system.
    fn file(&self, relative: &str) -> PathBuf {
        self.mountpoint().join(relative)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }

    /// Unmounts, which returns once davfs2 has uploaded every change.
    fn unmount(&mut self) {
        run_ok(Command::new("umount").arg(self.mountpoint()));
        self.mounted = false;
    }
}

impl Drop for DavfsMount {
    fn drop(&mut self) {
        if self.mounted {
            // A failed test must not leave a mount behind; a lazy unmount cannot hang.
            Command::new("umount")
                .arg("-l")
                .arg(self.mountpoint())
                .status()
                .ok();
        }
    }
}

fn run_ok(command: &mut Command) {
    let output = run_tool(command, None, MOUNT_TIMEOUT);
    assert!(
        output.status.success(),
        "{command:?} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn random_bytes(size: usize) -> Vec<u8> {
    let mut bytes = vec![0; size];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn write(path: &Path, content: &[u8]) {
    fs::write(path, content).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
}

#[test]
fn files_written_through_the_mount_arrive_byte_for_byte() {
    let server = TestServer::start();
    server.put(
        "existing.txt",
        "old content that is longer than the new one\n",
    );
    let mut mount = DavfsMount::mount(&server);
    let big = random_bytes(3 * 1024 * 1024 + 17);

    write(&mount.file("hello.txt"), b"hello from davfs2\n");
    write(&mount.file("big.bin"), &big);
    write(&mount.file("existing.txt"), b"new content\n");
    fs::create_dir(mount.file("folder")).unwrap();
    write(
        &mount.file("folder/inner \u{e9}t\u{e9}.txt"),
        b"inside a new folder\n",
    );
    mount.unmount();

    assert_eq!(
        server.get_bytes("hello.txt").as_deref(),
        Some(&b"hello from davfs2\n"[..])
    );
    assert_eq!(server.get_bytes("big.bin"), Some(big));
    assert_eq!(
        server.get_bytes("existing.txt").as_deref(),
        Some(&b"new content\n"[..])
    );
    let inner = server.get_bytes("folder/inner \u{e9}t\u{e9}.txt");
    assert_eq!(inner.as_deref(), Some(&b"inside a new folder\n"[..]));
}

#[test]
fn files_on_the_server_read_back_through_the_mount() {
    let server = TestServer::start();
    let content = random_bytes(200_000);
    server.mkcol("docs");
    server.put("docs/report.bin", content.clone());
    let mut mount = DavfsMount::mount(&server);

    let read = fs::read(mount.file("docs/report.bin")).unwrap();
    mount.unmount();

    assert!(
        read == content,
        "read {} bytes, expected {} bytes",
        read.len(),
        content.len()
    );
}

#[test]
fn a_rename_through_the_mount_moves_the_file_on_the_server() {
    let server = TestServer::start();
    server.put("draft.txt", "to be renamed\n");
    let mut mount = DavfsMount::mount(&server);

    fs::rename(mount.file("draft.txt"), mount.file("final.txt")).unwrap();
    mount.unmount();

    assert_eq!(server.get_bytes("draft.txt"), None);
    assert_eq!(
        server.get_bytes("final.txt").as_deref(),
        Some(&b"to be renamed\n"[..])
    );
}
