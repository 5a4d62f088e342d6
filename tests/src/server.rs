//! A `ruche serve` child process on a free port, with a temporary data folder and one
//! user, `alice`.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use tempfile::TempDir;

use crate::multistatus::{multistatus, PropResponse};

/// How long the server may take to print its listening line and to become healthy.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a graceful stop may take after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// The prefix of the one line `ruche serve` prints on stdout.
const LISTENING_PREFIX: &str = "listening on ";
/// How many lines of the server log to show when a test fails.
const LOG_TAIL_LINES: usize = 40;

/// The path of the `ruche` binary: `RUCHE_BIN`, or `ruche` next to the `deps` folder
/// that holds the running test executable (`<target>/debug/deps/<test>-<hash>`).
pub fn ruche_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("RUCHE_BIN") {
        return PathBuf::from(path);
    }
    let test_exe = std::env::current_exe().expect("the test executable has a path");
    let deps = test_exe
        .parent()
        .expect("the test executable is in a folder");
    deps.parent()
        .expect("the deps folder has a parent")
        .join("ruche")
}

/// A running `ruche serve` with its own data folder, killed when dropped.
pub struct TestServer {
    data: TempDir,
    log_path: PathBuf,
    /// Holds the server log outside the data folder; removed on drop.
    _log_dir: TempDir,
    child: Option<Child>,
    url: String,
    user: String,
    password: String,
    client: Client,
    /// Flags added to `serve`.
    serve_args: Vec<String>,
}

impl TestServer {
    /// Creates a data folder with user `alice`, starts the server and waits until
    /// `/healthz` answers 200.
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// Like [`TestServer::start`], calling `prepare` on the empty data folder first (to
    /// mount a small file system on it, say).
    pub fn start_with(prepare: impl FnOnce(&Path)) -> TestServer {
        TestServer::start_configured(prepare, &[])
    }

    /// Like [`TestServer::start`], with extra flags for `ruche serve`.
    pub fn start_with_args(args: &[&str]) -> TestServer {
        TestServer::start_configured(|_| {}, args)
    }

    fn start_configured(prepare: impl FnOnce(&Path), args: &[&str]) -> TestServer {
        let mut server = TestServer::unstarted("alice");
        server.serve_args = args.iter().map(|a| a.to_string()).collect();
        prepare(server.data_dir());
        server.password = Alphanumeric.sample_string(&mut rand::rng(), 24);

        let password_line = format!("{}\n", server.password);
        server.cli_ok(
            &["user", "add", "alice", "--password-stdin"],
            Some(&password_line),
        );
        server.spawn();
        server
    }

    /// Starts on an empty data folder, as a first installation does: the server
    /// creates `admin` and writes its password to `initial-admin-password`, and the
    /// harness then acts as `admin`.
    pub fn start_fresh() -> TestServer {
        let mut server = TestServer::unstarted("admin");
        server.spawn();

        let file = server.initial_admin_password_file();
        let password = fs::read_to_string(&file).unwrap_or_else(|err| {
            panic!(
                "a first start wrote no {}: {err}\n{}",
                file.display(),
                server.log_tail()
            )
        });
        server.password = password.trim().to_owned();
        server
    }

    fn unstarted(user: &str) -> TestServer {
        let bin = ruche_bin();
        assert!(
            bin.is_file(),
            "the ruche binary is missing at {}: build it with `cargo build -p ruche-server \
             --bin ruche` (or point RUCHE_BIN at it)",
            bin.display()
        );

        let log_dir = tempfile::Builder::new()
            .prefix("ruche-log-")
            .tempdir()
            .unwrap();
        TestServer {
            data: tempfile::Builder::new()
                .prefix("ruche-data-")
                .tempdir()
                .unwrap(),
            log_path: log_dir.path().join("server.log"),
            _log_dir: log_dir,
            child: None,
            url: String::new(),
            user: user.to_owned(),
            password: String::new(),
            client: new_client(),
            serve_args: Vec::new(),
        }
    }

    /// Where a first start writes the password of the `admin` it creates.
    pub fn initial_admin_password_file(&self) -> PathBuf {
        self.data_dir().join("initial-admin-password")
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (no trailing slash). It changes
    /// across restarts: the server binds port 0 every time.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The user's WebDAV root, with a trailing slash.
    pub fn dav_url(&self) -> String {
        format!("{}/dav/", self.url)
    }

    /// The user the harness created.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// That user's account password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server's data folder.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// A client that follows no redirects, so tests see the server's own answers.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Everything the server wrote on stderr so far, across restarts.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// An authenticated request for `path` below the WebDAV root; `path` is
    /// percent-encoded here, segment by segment. Any method name works (`PROPFIND`).
    pub fn dav(&self, method: &str, path: &str) -> RequestBuilder {
        let method = Method::from_bytes(method.as_bytes()).expect("a valid method name");
        let url = format!(
            "{}{}",
            self.dav_url(),
            encode_path(path.trim_start_matches('/'))
        );
        self.client
            .request(method, url)
            .basic_auth(&self.user, Some(&self.password))
    }

    /// PUTs `body` at `path` and asserts a 2xx answer.
    pub fn put(&self, path: &str, body: impl Into<Vec<u8>>) -> Response {
        let response = self.dav("PUT", path).body(body.into()).send().unwrap();
        assert!(
            response.status().is_success(),
            "PUT {path}: {}",
            describe(response)
        );
        response
    }

    /// The content at `path`, or `None` on 404; any other answer fails the test.
    pub fn get_bytes(&self, path: &str) -> Option<Vec<u8>> {
        let response = self.dav("GET", path).send().unwrap();
        match response.status() {
            StatusCode::OK => Some(response.bytes().unwrap().to_vec()),
            StatusCode::NOT_FOUND => None,
            _ => panic!("GET {path}: {}", describe(response)),
        }
    }

    /// Creates a collection and asserts 201.
    pub fn mkcol(&self, path: &str) {
        let response = self.dav("MKCOL", path).send().unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "MKCOL {path}: {}",
            describe(response)
        );
    }

    /// PROPFIND with the given depth, asking for `props` (namespace, name), or for
    /// `allprop` when `props` is empty; asserts 207 and parses the answer.
    pub fn propfind(&self, path: &str, depth: &str, props: &[(&str, &str)]) -> Vec<PropResponse> {
        let response = self
            .dav("PROPFIND", path)
            .header("Depth", depth)
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(propfind_body(props))
            .send()
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            207,
            "PROPFIND {path}: {}",
            describe(response)
        );
        multistatus(&response.text().unwrap())
    }

    /// A request to `/remote.php/dav/<path>` (the Nextcloud clients' WebDAV) as the test
    /// user.
    pub fn remote(&self, method: &str, path: &str) -> RequestBuilder {
        let url = format!("{}/remote.php/dav/{path}", self.url);
        self.client
            .request(method.parse().expect("a method"), url)
            .basic_auth(&self.user, Some(&self.password))
    }

    /// Creates another account with `ruche user add`.
    pub fn add_user(&self, name: &str, password: &str) {
        self.cli_ok(
            &["user", "add", name, "--password-stdin"],
            Some(&format!("{password}\n")),
        );
    }

    /// The stable id of the node at `path` (`oc:fileid`), the one co-editing addresses.
    pub fn file_id(&self, path: &str) -> String {
        let found = self.propfind(path, "0", &[(crate::OC_NS, "fileid")]);
        found[0].prop(crate::OC_NS, "fileid").expect("an oc:fileid")
    }

    /// Runs `ruche` with `args` and `--data <this data folder>`, feeding `stdin`.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = ruche_command()
            .args(args)
            .arg("--data")
            .arg(self.data_dir())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", ruche_bin().display()));
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Like [`TestServer::cli`], asserting exit status 0; returns stdout.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.cli(args, stdin);
        assert!(
            output.status.success(),
            "`ruche {}` failed with {}:\nstdout: {}\nstderr: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        String::from_utf8(output.stdout).expect("the command line prints UTF-8")
    }

    /// Stops the server with SIGTERM, asserts it exits cleanly, and starts it again
    /// on the same data folder.
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(
            status.success(),
            "ruche exited with {status} after SIGTERM\n{}",
            self.log_tail()
        );
        self.spawn();
    }

    /// Kills the server with SIGKILL and starts it again on the same data folder.
    pub fn kill9(&mut self) {
        self.crash();
        self.start_again();
    }

    /// The peak resident memory of the running server, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.pid().expect("the server runs");
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("a VmHWM line")
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL and waits for it to be gone, without restarting.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the killed server");
        }
    }

    /// Starts the server again on the same data folder after [`TestServer::crash`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn();
    }

    /// Sends SIGTERM and waits for the exit; fails the test if it takes too long.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(
            kill.is_ok_and(|status| status.success()),
            "cannot send SIGTERM"
        );

        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                child.kill().ok();
                child.wait().ok();
                panic!(
                    "ruche did not stop within {STOP_DEADLINE:?} of SIGTERM\n{}",
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let mut child = ruche_command()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(self.data_dir())
            .args(&self.serve_args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", ruche_bin().display()));
        let lines = forward_lines(child.stdout.take().unwrap());
        self.child = Some(child);

        self.url = self.wait_for_listening_line(&lines);
        self.wait_until_healthy();
    }

    fn wait_for_listening_line(&mut self, lines: &Receiver<String>) -> String {
        let line = match lines.recv_timeout(START_DEADLINE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => self.fail_start(&format!(
                "printed no line on stdout within {START_DEADLINE:?}"
            )),
            Err(RecvTimeoutError::Disconnected) => {
                self.fail_start("closed stdout without printing its listening line")
            }
        };
        match line.strip_prefix(LISTENING_PREFIX) {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => self.fail_start(&format!("printed {line:?} instead of `listening on URL`")),
        }
    }

    fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        let health = format!("{}/healthz", self.url);
        loop {
            let answer = self
                .client
                .get(&health)
                .timeout(Duration::from_secs(2))
                .send();
            if answer.is_ok_and(|response| response.status() == StatusCode::OK) {
                return;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            if let Some(status) = exited {
                self.fail_start(&format!(
                    "exited with {status} before /healthz answered 200"
                ));
            }
            if Instant::now() > deadline {
                self.fail_start(&format!(
                    "/healthz did not answer 200 within {START_DEADLINE:?}"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn fail_start(&mut self, what: &str) -> ! {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        panic!("`ruche serve` {what}\n{}", self.log_tail());
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        format!(
            "--- last {} lines of the server log ---\n{}",
            tail.len(),
            tail.join("\n")
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        if thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

/// Status, headers and body of a response, for assertion messages.
pub fn describe(response: Response) -> String {
    let status = response.status();
    let headers = format!("{:?}", response.headers());
    let body = response.text().unwrap_or_default();
    format!("{status}\n{headers}\n{body}")
}

/// Percent-encodes each segment of a path, keeping the slashes between them.
pub fn encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="utf-8"?>"#;

fn propfind_body(props: &[(&str, &str)]) -> String {
    if props.is_empty() {
        return format!(r#"{XML_DECLARATION}<propfind xmlns="DAV:"><allprop/></propfind>"#);
    }
    let wanted: String = props
        .iter()
        .map(|(namespace, name)| format!(r#"<{name} xmlns="{namespace}"/>"#))
        .collect();
    format!(r#"{XML_DECLARATION}<propfind xmlns="DAV:"><prop>{wanted}</prop></propfind>"#)
}

/// A `ruche` command that inherits no `RUCHE_*` variable (the server reads its
/// configuration from them), so the caller's environment cannot change a test.
fn ruche_command() -> Command {
    let mut command = Command::new(ruche_bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RUCHE_") {
            command.env_remove(name);
        }
    }
    command
}

fn new_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .expect("an HTTP client")
}

/// Reads the child's stdout on a thread, forwarding each line, and keeps draining it
/// afterwards so that the server never blocks on a full pipe.
fn forward_lines(stdout: ChildStdout) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sender.send(line).ok();
        }
    });
    receiver
}
