//! cadaver, the interactive command-line WebDAV client, driven one command at a time
//! through its stdin, with the server's state checked over HTTP between commands.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use ruche_e2e::{require_tool, IsolatedHome, TestServer};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// One cadaver process connected to the user's WebDAV root, logged in through the
/// `.netrc` of its own HOME.
struct Cadaver {
    child: Child,
    stdin: ChildStdin,
    output: Receiver<Vec<u8>>,
    transcript: String,
    home: IsolatedHome,
}

impl Cadaver {
    fn connect(server: &TestServer) -> Cadaver {
        let cadaver = require_tool("cadaver");
        let home = IsolatedHome::new();
        let netrc = home.path().join(".netrc");
        let credentials = format!(
            "machine 127.0.0.1 login {} password {}\n",
            server.user(),
            server.password()
        );
        fs::write(&netrc, credentials).unwrap();
        fs::set_permissions(&netrc, fs::Permissions::from_mode(0o600)).unwrap();

        // cadaver prints some errors on stderr: merge both streams in order.
        let mut child = home
            .command("sh")
            .args(["-c", "exec \"$0\" \"$@\" 2>&1"])
            .arg(cadaver)
            .arg(server.dav_url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start cadaver");
        let stdin = child.stdin.take().unwrap();
        let output = forward_chunks(child.stdout.take().unwrap());

        let mut session = Cadaver {
            child,
            stdin,
            output,
            transcript: String::new(),
            home,
        };
        session.read_until_prompt();
        session
    }

    /// Sends one command and returns what cadaver answered, up to the next prompt.
    fn run(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.read_until_prompt()
    }

    /// Sends a command that must report success.
    fn run_ok(&mut self, command: &str) -> String {
        let answer = self.run(command);
        assert!(
            answer.contains("succeeded") && !answer.contains("failed"),
            "cadaver `{command}` did not succeed:\n{answer}\n--- transcript ---\n{}",
            self.transcript
        );
        answer
    }

    fn read_until_prompt(&mut self) -> String {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        let mut answer = String::new();
        while !ends_with_prompt(&answer) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => answer.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!(
                    "cadaver gave no prompt within {ANSWER_TIMEOUT:?}; so far:\n{}{answer}",
                    self.transcript
                ),
            }
        }
        self.transcript.push_str(&answer);
        answer
    }
}

impl Drop for Cadaver {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// cadaver's prompt is `dav:/path/> `, printed without a newline.
fn ends_with_prompt(output: &str) -> bool {
    let last_line = output.rsplit('\n').next().unwrap_or_default();
    last_line.starts_with("dav:") && last_line.ends_with("> ")
}

fn forward_chunks(mut stdout: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut buffer = [0; 8192];
        while let Ok(read) = stdout.read(&mut buffer) {
            if read == 0 || sender.send(buffer[..read].to_vec()).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Content that is not text, so that any transformation on the way shows.
fn sample_content() -> Vec<u8> {
    (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn uploads_lists_and_downloads_a_file() {
    let server = TestServer::start();
    let mut cadaver = Cadaver::connect(&server);
    let content = sample_content();
    fs::write(cadaver.home.path().join("report.bin"), &content).unwrap();

    cadaver.run_ok("mkcol docs");
    cadaver.run("cd docs");
    cadaver.run_ok("put report.bin");
    let listing = cadaver.run_ok("ls");
    cadaver.run_ok("get report.bin back.bin");

    let listed = listing.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.first() == Some(&"report.bin") && fields.get(1) == Some(&"100000")
    });
    assert!(
        listed,
        "`ls` does not show report.bin with its size:\n{listing}"
    );
    assert_eq!(
        fs::read(cadaver.home.path().join("back.bin")).unwrap(),
        content
    );
    assert_eq!(server.get_bytes("docs/report.bin"), Some(content));
}

#[test]
fn moves_copies_and_deletes_files() {
    let server = TestServer::start();
    server.mkcol("docs");
    server.put("docs/draft.txt", "first draft\n");
    let mut cadaver = Cadaver::connect(&server);
    cadaver.run("cd docs");

    cadaver.run_ok("move draft.txt final.txt");
    assert_eq!(server.get_bytes("docs/draft.txt"), None);
    assert_eq!(
        server.get_bytes("docs/final.txt").as_deref(),
        Some(&b"first draft\n"[..])
    );

    cadaver.run_ok("copy final.txt backup.txt");
    assert_eq!(
        server.get_bytes("docs/final.txt").as_deref(),
        Some(&b"first draft\n"[..])
    );
    assert_eq!(
        server.get_bytes("docs/backup.txt").as_deref(),
        Some(&b"first draft\n"[..])
    );

    cadaver.run_ok("delete final.txt");
    assert_eq!(server.get_bytes("docs/final.txt"), None);
    let listing = cadaver.run_ok("ls");
    assert!(listing.contains("backup.txt"), "{listing}");
    assert!(!listing.contains("final.txt"), "{listing}");
}

#[test]
fn a_lock_taken_by_cadaver_refuses_other_writers_until_unlocked() {
    let server = TestServer::start();
    server.put("shared.txt", "v1");
    let mut cadaver = Cadaver::connect(&server);

    cadaver.run_ok("lock shared.txt");
    let while_locked = server.dav("PUT", "shared.txt").body("v2").send().unwrap();
    let discovered = cadaver.run("discover shared.txt");
    cadaver.run_ok("unlock shared.txt");
    let after_unlock = server.dav("PUT", "shared.txt").body("v3").send().unwrap();

    assert_eq!(
        while_locked.status().as_u16(),
        423,
        "PUT without the lock token"
    );
    // Older cadavers print `path: <token>`, newer ones `Lock token <token>:`.
    let lock_listed = discovered
        .lines()
        .any(|l| l.contains(": <") || l.starts_with("Lock token <"));
    assert!(lock_listed, "`discover` shows no lock:\n{discovered}");
    assert!(
        after_unlock.status().is_success(),
        "PUT after unlock: {}",
        after_unlock.status()
    );
    assert_eq!(server.get_bytes("shared.txt").as_deref(), Some(&b"v3"[..]));
}
