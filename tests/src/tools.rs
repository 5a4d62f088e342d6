//! The external WebDAV clients the tests drive (litmus, cadaver, rclone, davfs2), run
//! with a throwaway HOME so that nothing leaks in from, or out to, the machine.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

/// Debian packages that provide each tool the tests use.
const PACKAGES: [(&str, &str); 5] = [
    ("litmus", "litmus"),
    ("cadaver", "cadaver"),
    ("rclone", "rclone"),
    ("mount.davfs", "davfs2"),
    ("umount.davfs", "davfs2"),
];

/// Folders searched besides `PATH`: `mount.davfs` lives in `/usr/sbin`, which is not
/// on an ordinary user's `PATH`.
const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The full path of `tool`; panics, naming the Debian package to install, if it is
/// missing. Tests never skip silently.
pub fn require_tool(tool: &str) -> PathBuf {
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path_dirs).collect();
    dirs.extend(SYSTEM_DIRS.iter().map(PathBuf::from));

    if let Some(found) = dirs
        .iter()
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
    {
        return found;
    }
    let package = PACKAGES
        .iter()
        .find(|(name, _)| *name == tool)
        .map_or(tool, |(_, p)| p);
    panic!(
        "`{tool}` is not installed; install it with `sudo apt-get install -y {package}` \
         (or run tests/run.sh as root, which installs every client the tests need)"
    );
}

/// Panics with `why` unless the tests run as root.
pub fn require_root(why: &str) {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let effective_uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .expect("a Uid line in /proc/self/status");
    assert_eq!(effective_uid, "0", "this test must run as root: {why}");
}

/// Runs `command` to completion, feeding `stdin`, and kills it if it outlives
/// `timeout`, so that a hung client fails the test instead of hanging it.
pub fn run_tool(command: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {description}: {err}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        thread::spawn(move || pipe.write_all(&input));
    }

    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(timeout) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .ok();
            let partial = receiver.recv().ok().and_then(Result::ok);
            let stdout = partial
                .as_ref()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            let stderr = partial
                .as_ref()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
            panic!(
                "{description} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                stdout.unwrap_or_default(),
                stderr.unwrap_or_default()
            );
        }
    }
}

/// A temporary HOME (with XDG folders inside it) for one external client.
pub struct IsolatedHome {
    dir: TempDir,
}

impl IsolatedHome {
    /// Creates an empty home folder.
    pub fn new() -> IsolatedHome {
        IsolatedHome {
            dir: tempfile::Builder::new()
                .prefix("ruche-home-")
                .tempdir()
                .unwrap(),
        }
    }

    /// The home folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A command for `program` whose HOME and XDG folders are this one, with no
    /// `RCLONE_*` variable inherited from the caller's environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("RCLONE_") {
                command.env_remove(name);
            }
        }
        let home = self.path();
        command
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("LC_ALL", "C.UTF-8")
            .current_dir(home);
        command
    }
}

impl Default for IsolatedHome {
    fn default() -> Self {
        IsolatedHome::new()
    }
}
