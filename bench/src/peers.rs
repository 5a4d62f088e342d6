//! The servers under test: ruche and its peers, each started on 127.0.0.1 with a fresh
//! data folder and its own configuration, logs and pid files in a temporary folder.
//! Nothing is installed here: a missing peer is reported with the command that
//! installs it, and the run goes on without it.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tempfile::TempDir;

use crate::client::{self, Dav, Target};
use crate::configs::{self, Layout};
use crate::process::ServerProcess;

/// How long a server may take to answer after it was started.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Where Debian's nginx keeps its dynamic modules.
const NGINX_DAV_EXT: &str = "/usr/lib/nginx/modules/ngx_http_dav_ext_module.so";
/// Where Debian's Apache keeps its modules.
pub const APACHE_MODULES: &str = "/usr/lib/apache2/modules";

/// A WebDAV server the benchmark knows how to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Ruche,
    Nginx,
    Apache,
    Dufs,
    Rclone,
}

impl Peer {
    /// Every server, ruche first.
    pub const ALL: [Peer; 5] = [
        Peer::Ruche,
        Peer::Nginx,
        Peer::Apache,
        Peer::Dufs,
        Peer::Rclone,
    ];

    /// The name used on the command line and in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Ruche => "ruche",
            Peer::Nginx => "nginx",
            Peer::Apache => "apache",
            Peer::Dufs => "dufs",
            Peer::Rclone => "rclone",
        }
    }

    /// The server named `name`, if the benchmark knows it.
    pub fn parse(name: &str) -> Option<Peer> {
        Peer::ALL
            .into_iter()
            .find(|peer| peer.name() == name.trim())
    }

    /// The command that installs this server.
    fn install_command(self) -> &'static str {
        match self {
            Peer::Ruche => "cargo build --release -p ruche-server",
            Peer::Nginx => "apt-get install nginx-light libnginx-mod-http-dav-ext",
            Peer::Apache => "apt-get install apache2",
            Peer::Dufs => "cargo install dufs --locked",
            Peer::Rclone => "apt-get install rclone",
        }
    }

    /// Which processes the memory figures cover.
    pub fn memory_scope(self) -> &'static str {
        match self {
            Peer::Nginx => "master and worker processes, summed",
            Peer::Apache => "parent and child processes, summed",
            _ => "the one server process",
        }
    }

    /// What an acknowledged write means on disk for this server.
    pub fn durability(self) -> &'static str {
        match self {
            Peer::Ruche => {
                "fsyncs every acknowledged write (group commit: concurrent small writes \
                 share one fsync)"
            }
            Peer::Apache => "mod_dav_fs writes to a temporary file and renames it, without fsync",
            _ => "does not fsync",
        }
    }
}

/// A server that cannot run here, and how to get it.
#[derive(Debug)]
pub struct Missing {
    /// The server.
    pub peer: Peer,
    /// What was looked for and not found.
    pub what: String,
}

impl Missing {
    /// One line for the user: what is missing and the exact command that fixes it.
    pub fn advice(&self) -> String {
        let peer = self.peer;
        format!(
            "{}: {} not found; install it with `{}`",
            peer.name(),
            self.what,
            peer.install_command()
        )
    }
}

/// A located server program, ready to start.
pub struct Launcher {
    peer: Peer,
    program: PathBuf,
}

/// Finds the program of `peer`; `ruche` is the binary under test.
pub fn locate(peer: Peer, ruche: &Path) -> Result<Launcher, Missing> {
    let missing = |what: &str| Missing {
        peer,
        what: what.to_owned(),
    };
    let program = match peer {
        Peer::Ruche => Some(ruche.to_path_buf()).filter(|path| path.is_file()),
        Peer::Nginx => find_program("nginx"),
        Peer::Apache => find_program("apache2"),
        Peer::Dufs => find_program("dufs"),
        Peer::Rclone => find_program("rclone"),
    }
    .ok_or_else(|| missing(&format!("the `{}` program", peer.name())))?;

    if peer == Peer::Nginx && !nginx_has_dav_ext(&program) {
        return Err(missing("the nginx dav-ext module"));
    }
    let apache_modules = [
        "mod_mpm_event.so",
        "mod_dav.so",
        "mod_dav_fs.so",
        "mod_dav_lock.so",
    ];
    if peer == Peer::Apache {
        if let Some(module) = apache_modules
            .iter()
            .find(|module| !Path::new(APACHE_MODULES).join(module).is_file())
        {
            return Err(missing(&format!("{APACHE_MODULES}/{module}")));
        }
    }
    Ok(Launcher { peer, program })
}

/// Looks for `name` on the PATH, in the sbin folders and in cargo's bin folder.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut folders: Vec<PathBuf> = std::env::split_paths(&path).collect();
    folders.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    if let Some(home) = std::env::var_os("HOME") {
        folders.push(PathBuf::from(home).join(".cargo/bin"));
    }
    folders
        .into_iter()
        .map(|folder| folder.join(name))
        .find(|candidate| candidate.is_file())
}

fn nginx_has_dav_ext(program: &Path) -> bool {
    if Path::new(NGINX_DAV_EXT).is_file() {
        return true;
    }
    // A build may have the module compiled in; `nginx -V` lists it then.
    let output = Command::new(program).arg("-V").output();
    output.is_ok_and(|out| String::from_utf8_lossy(&out.stderr).contains("dav-ext"))
}

/// A server running on loopback, stopped (with its workers) and its folders removed
/// when dropped.
pub struct RunningServer {
    /// Which server this is.
    pub peer: Peer,
    /// Where its WebDAV tree is.
    pub target: Target,
    // Declared before the folders so that the server stops before they are removed.
    process: ServerProcess,
    _folders: TempDir,
}

impl RunningServer {
    /// The id of the server's main process (nginx's or Apache's master).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

impl Launcher {
    /// Starts the server in a new temporary folder under `base` and waits until it
    /// answers on its WebDAV root.
    pub fn start(&self, base: &Path) -> anyhow::Result<RunningServer> {
        let name = self.peer.name();
        let folders = tempfile::Builder::new()
            .prefix(&format!("ruche-bench-{name}-"))
            .tempdir_in(base)
            .with_context(|| format!("{name}: cannot create a folder in {}", base.display()))?;
        let layout = Layout::create(folders.path())?;
        let port = free_port()?;

        let started = match self.peer {
            Peer::Ruche => start_ruche(&self.program, &layout),
            _ => self.start_peer(&layout, port),
        };
        let (mut process, target) = started.with_context(|| layout.log_tail())?;
        wait_until_answers(&mut process, &target).with_context(|| layout.log_tail())?;
        Ok(RunningServer {
            peer: self.peer,
            target,
            process,
            _folders: folders,
        })
    }

    fn start_peer(&self, layout: &Layout, port: u16) -> anyhow::Result<(ServerProcess, Target)> {
        let data = layout
            .data
            .to_str()
            .context("the temporary folder is not UTF-8")?;
        let mut command = Command::new(&self.program);
        match self.peer {
            Peer::Nginx => {
                let conf = configs::nginx(&layout.run, &layout.data, port, NGINX_DAV_EXT)?;
                command.arg("-p").arg(&layout.run).arg("-c").arg(conf);
                command.arg("-e").arg(layout.run.join("error.log"));
            }
            Peer::Apache => {
                let conf = configs::apache(&layout.run, &layout.data, port)?;
                command.arg("-f").arg(conf).arg("-DFOREGROUND");
            }
            Peer::Dufs => {
                command.args([
                    "-A",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    data,
                ]);
            }
            Peer::Rclone => {
                command.args([
                    "serve",
                    "webdav",
                    data,
                    "--addr",
                    &format!("127.0.0.1:{port}"),
                ]);
                command.arg("--config").arg(layout.run.join("rclone.conf"));
            }
            Peer::Ruche => anyhow::bail!("ruche is not started as a peer"),
        }
        command.stdin(Stdio::null()).stdout(Stdio::null());
        command.stderr(layout.log_file()?);
        let process = ServerProcess::spawn(self.peer.name(), &mut command)?;
        let target = Target {
            root: format!("http://127.0.0.1:{port}/"),
            credentials: None,
        };
        Ok((process, target))
    }
}

/// Creates the user `bench`, starts `ruche serve` on port 0 and reads the port from
/// its one line on stdout.
fn start_ruche(program: &Path, layout: &Layout) -> anyhow::Result<(ServerProcess, Target)> {
    let password = format!("bench-{:x}", nanos_since_epoch());
    let mut add = Command::new(program);
    add.args(["user", "add", "bench", "--password-stdin", "--data"]);
    add.arg(&layout.data).env("RUCHE_LOG", "warn");
    add.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(layout.log_file()?);
    let mut child = add.spawn().context("ruche user add: cannot start")?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}").context("ruche user add: writing the password")?;
    }
    let status = child.wait().context("ruche user add: waiting")?;
    anyhow::ensure!(status.success(), "ruche user add: {status}");

    let mut serve = Command::new(program);
    serve.arg("serve").arg("--data").arg(&layout.data);
    serve
        .args(["--listen", "127.0.0.1:0"])
        .env("RUCHE_LOG", "warn");
    serve.stdin(Stdio::null()).stdout(Stdio::piped());
    serve.stderr(File::options().append(true).open(&layout.log)?);
    let mut process = ServerProcess::spawn("ruche", &mut serve)?;
    let line = first_line(&mut process)?;
    let base = line
        .strip_prefix("listening on ")
        .with_context(|| format!("ruche printed {line:?}, not its address"))?;
    let target = Target {
        root: format!("{}/dav/", base.trim_end_matches('/')),
        credentials: Some(("bench".to_owned(), password)),
    };
    wait_healthy(&mut process, base)?;
    Ok((process, target))
}

/// The first line the process prints on stdout; the rest is drained in the background.
fn first_line(process: &mut ServerProcess) -> anyhow::Result<String> {
    let stdout = process
        .take_stdout()
        .context("ruche's stdout is not piped")?;
    let (lines, first) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    first
        .recv_timeout(START_DEADLINE)
        .context("ruche printed no address")
}

fn wait_healthy(process: &mut ServerProcess, base: &str) -> anyhow::Result<()> {
    let url = format!("{}/healthz", base.trim_end_matches('/'));
    let agent = client::agent(Duration::from_secs(2));
    poll(process, || {
        let response = agent.get(&url).call();
        response.is_ok_and(|r| r.status().is_success())
    })
    .with_context(|| format!("GET {url}: never answered 200"))
}

fn wait_until_answers(process: &mut ServerProcess, target: &Target) -> anyhow::Result<()> {
    let dav = Dav::new(target, Duration::from_secs(2))?;
    poll(process, || dav.answers())
        .with_context(|| format!("OPTIONS {}: never answered", target.root))
}

/// Polls `ready` until it holds, the process exits, or the start deadline passes.
fn poll(process: &mut ServerProcess, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_DEADLINE;
    while Instant::now() < deadline {
        process.ensure_running()?;
        if ready() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("not ready after {START_DEADLINE:?}")
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn nanos_since_epoch() -> u128 {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
    now.map(|d| d.as_nanos()).unwrap_or_default()
}
