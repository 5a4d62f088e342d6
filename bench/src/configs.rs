//! The folders of each server, and private configuration files for the peers that need
//! one (nginx and Apache), written into the server's own temporary folder so that
//! nothing under `/etc` is read or changed. Both serve the data folder on 127.0.0.1
//! without authentication.

use std::fs::{self, File};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::peers::APACHE_MODULES;

/// How many lines of a server's log an error message quotes.
const LOG_TAIL_LINES: usize = 15;
/// The account Debian's Apache drops to; its workers must be able to write the data.
const APACHE_USER: &str = "www-data";

/// The folders of one server: `data` is served, `run` holds everything else.
pub struct Layout {
    /// The folder the server serves.
    pub data: PathBuf,
    /// Configuration, logs, pid and lock files.
    pub run: PathBuf,
    /// The server's stderr.
    pub log: PathBuf,
}

impl Layout {
    /// Creates `data` and `run` inside `root`.
    pub fn create(root: &Path) -> anyhow::Result<Layout> {
        let layout = Layout {
            data: root.join("data"),
            run: root.join("run"),
            log: root.join("run/server.log"),
        };
        for folder in [&layout.data, &layout.run] {
            fs::create_dir(folder).with_context(|| format!("creating {}", folder.display()))?;
        }
        Ok(layout)
    }

    /// Creates the server's stderr log.
    pub fn log_file(&self) -> anyhow::Result<File> {
        File::create(&self.log).with_context(|| format!("creating {}", self.log.display()))
    }

    /// The end of the server's own logs, to explain a failed start.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        for name in ["server.log", "error.log"] {
            let log = fs::read_to_string(self.run.join(name)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            if !tail.is_empty() {
                text.push_str(&format!("\n--- end of {name} ---\n{}", tail.join("\n")));
            }
        }
        format!("the server did not start{text}")
    }
}

/// Writes `nginx.conf` in `run` and returns its path.
pub fn nginx(run: &Path, data: &Path, port: u16, dav_ext: &str) -> anyhow::Result<PathBuf> {
    let run_dir = run.display();
    let data_dir = data.display();
    let load_module = if Path::new(dav_ext).is_file() {
        format!("load_module {dav_ext};")
    } else {
        String::new()
    };
    // As root, workers stay root so that they can write the root-owned data folder.
    let user = if is_root() { "user root;" } else { "" };
    let text = format!(
        r#"{load_module}
{user}
daemon off;
master_process on;
worker_processes auto;
pid {run_dir}/nginx.pid;
error_log {run_dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path {run_dir}/client_body;
    proxy_temp_path {run_dir}/proxy;
    fastcgi_temp_path {run_dir}/fastcgi;
    uwsgi_temp_path {run_dir}/uwsgi;
    scgi_temp_path {run_dir}/scgi;
    dav_ext_lock_zone zone=bench:10m;
    server {{
        listen 127.0.0.1:{port};
        root {data_dir};
        location / {{
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_ext_methods PROPFIND OPTIONS LOCK UNLOCK;
            dav_ext_lock zone=bench;
            create_full_put_path on;
            client_max_body_size 0;
            dav_access user:rw group:rw all:r;
        }}
    }}
}}
"#
    );
    write_config(&run.join("nginx.conf"), &text)
}

/// Writes `apache2.conf` in `run` (mpm_event, dav, dav_fs, dav_lock) and returns its
/// path. As root, the data and lock folders are handed to `www-data`, the user the
/// workers run as.
pub fn apache(run: &Path, data: &Path, port: u16) -> anyhow::Result<PathBuf> {
    let locks = run.join("locks");
    fs::create_dir(&locks).with_context(|| format!("creating {}", locks.display()))?;
    let account = if is_root() {
        Some(hand_over(run, data, &locks)?)
    } else {
        None
    };
    let user = account.map_or(String::new(), |_| {
        format!("User {APACHE_USER}\nGroup {APACHE_USER}")
    });

    let run_dir = run.display();
    let data_dir = data.display();
    let modules = ["mpm_event", "authz_core", "dav", "dav_fs", "dav_lock"]
        .map(|name| format!("LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so"))
        .join("\n");
    // Timeouts and worker counts are Debian's defaults (apache2.conf, mpm_event.conf).
    let text = format!(
        r#"ServerRoot {run_dir}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {run_dir}/apache.pid
ErrorLog {run_dir}/error.log
LogLevel warn
DefaultRuntimeDir {run_dir}
Mutex file:{run_dir} default
{modules}
{user}
Timeout 300
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
LimitRequestBody 0
DavLockDB {run_dir}/locks/DavLock
DocumentRoot {data_dir}
<Directory {data_dir}>
    Dav On
    AllowOverride None
    Require all granted
</Directory>
"#
    );
    write_config(&run.join("apache2.conf"), &text)
}

fn write_config(path: &Path, text: &str) -> anyhow::Result<PathBuf> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_path_buf())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Lets Apache's workers reach the server's folder and write its data and locks.
fn hand_over(run: &Path, data: &Path, locks: &Path) -> anyhow::Result<(u32, u32)> {
    let (uid, gid) = account_ids(APACHE_USER)
        .with_context(|| format!("no `{APACHE_USER}` account in /etc/passwd"))?;
    if let Some(root) = run.parent() {
        fs::set_permissions(root, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("opening {} to {APACHE_USER}", root.display()))?;
    }
    for folder in [data, locks] {
        chown(folder, Some(uid), Some(gid))
            .with_context(|| format!("giving {} to {APACHE_USER}", folder.display()))?;
    }
    Ok((uid, gid))
}

/// The user and group ids of `name`, from `/etc/passwd`.
fn account_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() != Some(&name) || fields.len() < 4 {
            return None;
        }
        Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
    })
}
