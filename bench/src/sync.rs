//! Sync timings: a tree of 10,000 files in 500 folders synced from a workstation folder by
//! real sync clients, the first time and then with nothing changed.
//!
//! rclone (`sync`, WebDAV backend) runs against ruche and against the peers it can use;
//! the Nextcloud desktop engine (`nextcloudcmd`) runs against ruche alone, the only server
//! here that speaks its protocol. Each quiet run is repeated and its median reported.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::peers::{self, find_program, Peer};
use crate::stats;

const NEXTCLOUDCMD_MISSING: &str =
    "nextcloudcmd: not found; install it with `apt-get install nextcloud-desktop-cmd`";

/// What to run.
pub struct SyncPlan {
    pub peers: Vec<Peer>,
    pub folders: usize,
    pub files_per_folder: usize,
    pub repeat: usize,
    pub ruche: PathBuf,
    pub temp: PathBuf,
}

struct Row {
    client: &'static str,
    server: &'static str,
    first: Duration,
    quiet: Vec<Duration>,
}

/// Runs the sync timings and returns them as a Markdown table.
pub fn run(plan: &SyncPlan) -> anyhow::Result<String> {
    let work = tempfile::Builder::new()
        .prefix("ruche-bench-sync-")
        .tempdir_in(&plan.temp)?;
    let tree = work.path().join("tree");
    let files = write_tree(&tree, plan.folders, plan.files_per_folder)?;
    let mut rows = Vec::new();
    let mut skipped = Vec::new();

    let rclone = find_program("rclone");
    for &peer in &plan.peers {
        let launcher = match peers::locate(peer, &plan.ruche) {
            Ok(launcher) => launcher,
            Err(missing) => {
                skipped.push(missing.advice());
                continue;
            }
        };
        if let Some(rclone) = &rclone {
            let server = launcher.start(&plan.temp)?;
            let client = RcloneClient::new(rclone, &server.target, work.path())?;
            let first = timed(|| client.sync(&tree))?;
            let quiet = (0..plan.repeat)
                .map(|_| timed(|| client.sync(&tree)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            rows.push(Row {
                client: "rclone sync",
                server: peer.name(),
                first,
                quiet,
            });
            eprintln!("rclone against {}: done", peer.name());
        }
        if peer == Peer::Ruche {
            match find_program("nextcloudcmd") {
                Some(program) => {
                    let server = launcher.start(&plan.temp)?;
                    rows.push(nextcloud_row(
                        &program,
                        &server.target,
                        &tree,
                        work.path(),
                        plan,
                    )?);
                    eprintln!("nextcloudcmd against ruche: done");
                }
                None => skipped.push(NEXTCLOUDCMD_MISSING.to_owned()),
            }
        }
    }
    if rclone.is_none() {
        skipped.push("rclone: not found; install it with `apt-get install rclone`".to_owned());
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Sync of {files} files in {} folders\n\n\
         First sync (everything uploaded) once; a sync with nothing changed {} times, median \
         with (min–max). Seconds.\n\n\
         | client | server | first sync | no-change sync |\n| --- | --- | ---: | ---: |",
        plan.folders, plan.repeat
    );
    for row in &rows {
        let secs: Vec<f64> = row.quiet.iter().map(Duration::as_secs_f64).collect();
        let Some(stats::Summary { median, min, max }) = stats::summarize(&secs) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {median:.3} ({min:.3}–{max:.3}) |",
            row.client,
            row.server,
            row.first.as_secs_f64()
        );
    }
    for line in skipped {
        let _ = writeln!(out, "\n- not run: {line}");
    }
    Ok(out)
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

/// Writes `folders` folders of `per_folder` files of 1 to 4 KiB; returns the file count.
fn write_tree(root: &Path, folders: usize, per_folder: usize) -> anyhow::Result<usize> {
    // xorshift64: every file different, none compressible, no dependency.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for folder in 0..folders {
        let dir = root.join(format!("dossier {folder:03}"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for file in 0..per_folder {
            let len = 1024 + (next() % 3072) as usize;
            let content: Vec<u8> = (0..len.div_ceil(8))
                .flat_map(|_| next().to_le_bytes())
                .take(len)
                .collect();
            fs::write(dir.join(format!("note {file:02}.txt")), content)?;
        }
    }
    Ok(folders * per_folder)
}

/// rclone with a remote defined through the environment only.
struct RcloneClient {
    program: PathBuf,
    env: Vec<(String, String)>,
    config: PathBuf,
}

impl RcloneClient {
    fn new(program: &Path, target: &crate::client::Target, work: &Path) -> anyhow::Result<Self> {
        let config = work.join("rclone.conf");
        fs::write(&config, "")?;
        let mut env = vec![
            ("RCLONE_CONFIG_BENCH_TYPE".to_owned(), "webdav".to_owned()),
            ("RCLONE_CONFIG_BENCH_URL".to_owned(), target.root.clone()),
            ("RCLONE_CONFIG_BENCH_VENDOR".to_owned(), "other".to_owned()),
        ];
        if let Some((user, password)) = &target.credentials {
            let obscured = Command::new(program)
                .args(["obscure", password])
                .output()
                .context("rclone obscure")?;
            let obscured = String::from_utf8_lossy(&obscured.stdout).trim().to_owned();
            env.push(("RCLONE_CONFIG_BENCH_USER".to_owned(), user.clone()));
            env.push(("RCLONE_CONFIG_BENCH_PASS".to_owned(), obscured));
        }
        Ok(RcloneClient {
            program: program.to_path_buf(),
            env,
            config,
        })
    }

    fn sync(&self, tree: &Path) -> anyhow::Result<()> {
        let status = Command::new(&self.program)
            .arg("sync")
            .arg(tree)
            .arg("bench:tree")
            .arg("--config")
            .arg(&self.config)
            .args(["--transfers", "8", "--checkers", "8"])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("starting rclone")?;
        anyhow::ensure!(status.success(), "rclone sync failed: {status}");
        Ok(())
    }
}

fn nextcloud_row(
    program: &Path,
    target: &crate::client::Target,
    tree: &Path,
    work: &Path,
    plan: &SyncPlan,
) -> anyhow::Result<Row> {
    let (user, password) = target
        .credentials
        .clone()
        .context("ruche runs with credentials")?;
    let base = target
        .root
        .trim_end_matches('/')
        .trim_end_matches("/dav")
        .to_owned();
    // The client writes its journal into the folder it syncs: sync a copy of the tree.
    let folder = work.join("nextcloud");
    copy_tree(tree, &folder)?;
    let home = work.join("nextcloud-home");
    fs::create_dir_all(&home)?;
    let sync = || -> anyhow::Result<()> {
        let output = Command::new(program)
            .args(["--non-interactive", "-u", &user, "-p", &password])
            .arg(&folder)
            .arg(&base)
            .env("HOME", &home)
            .stdin(Stdio::null())
            .output()
            .context("starting nextcloudcmd")?;
        anyhow::ensure!(
            output.status.success(),
            "nextcloudcmd failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        Ok(())
    };
    let first = timed(sync)?;
    // Uploads moved the ETags of their folders after the client listed them: one run
    // records the final ETags, as with any server.
    sync()?;
    let quiet = (0..plan.repeat)
        .map(|_| timed(sync))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Row {
        client: "nextcloudcmd",
        server: "ruche",
        first,
        quiet,
    })
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
