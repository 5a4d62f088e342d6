//! The co-editing benchmark: real editing traces replayed by the stock Yjs clients through
//! ruche and through Hocuspocus (with its SQLite extension), servers interleaved, in one run.
//!
//! The clients are played by `bench/collab/replay.mjs` in Node.js; this module starts the
//! servers, prepares the documents, runs each workload, and measures what only the outside
//! can see: server CPU time, resident memory, and what the servers stored.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::client;
use crate::process::{tree_rss_kib, ServerProcess};
use crate::stats;

/// What to run.
pub struct CollabPlan {
    pub smoke: bool,
    pub repeat: usize,
    pub ruche: PathBuf,
    pub temp: PathBuf,
    pub traces: PathBuf,
}

struct Sizes {
    fanout_txns: usize,
    watchers: usize,
    concurrent_txns: usize,
    documents: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Ruche,
    Hocuspocus,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ruche => "ruche",
            Kind::Hocuspocus => "hocuspocus",
        }
    }
}

/// A running co-editing server and what clients need to reach it.
struct Server {
    kind: Kind,
    process: Option<ServerProcess>,
    data: PathBuf,
    /// `ws://…/collab` for ruche, `ws://…` for Hocuspocus.
    ws_url: String,
    http_url: String,
    token: String,
    program: PathBuf,
    node_dir: PathBuf,
}

const PASSWORD: &str = "bench-collab-password";

impl Server {
    fn start(
        kind: Kind,
        plan: &CollabPlan,
        node_dir: &Path,
        base: &Path,
    ) -> anyhow::Result<Server> {
        let data = base.join(kind.name());
        std::fs::create_dir_all(&data)?;
        let mut server = Server {
            kind,
            process: None,
            data,
            ws_url: String::new(),
            http_url: String::new(),
            token: String::new(),
            program: plan.ruche.clone(),
            node_dir: node_dir.to_owned(),
        };
        if kind == Kind::Ruche {
            let mut add = Command::new(&plan.ruche);
            add.args(["user", "add", "bench", "--password-stdin", "--data"])
                .arg(&server.data)
                .stdin(Stdio::piped())
                .stdout(Stdio::null());
            let mut child = add.spawn().context("ruche user add")?;
            if let Some(mut stdin) = child.stdin.take() {
                writeln!(stdin, "{PASSWORD}")?;
            }
            anyhow::ensure!(child.wait()?.success(), "ruche user add failed");
        }
        server.launch()?;
        Ok(server)
    }

    /// Starts (or starts again) the server on its data folder.
    fn launch(&mut self) -> anyhow::Result<()> {
        let mut command = match self.kind {
            Kind::Ruche => {
                let mut c = Command::new(&self.program);
                c.arg("serve")
                    .arg("--data")
                    .arg(&self.data)
                    .args(["--listen", "127.0.0.1:0"])
                    .env("RUCHE_LOG", "warn")
                    // The replay types far faster than people; lift the per-client rate.
                    .env("RUCHE_COLLAB_RATE", "1000000");
                c
            }
            Kind::Hocuspocus => {
                let mut c = Command::new("node");
                c.arg(self.node_dir.join("hocuspocus.mjs"))
                    .arg(self.data.join("hocuspocus.sqlite"));
                c
            }
        };
        command.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut process = ServerProcess::spawn(self.kind.name(), &mut command)?;
        let stdout = process.take_stdout().context("stdout not piped")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("{} printed {line:?}, not its address", self.kind.name()))?;
        match self.kind {
            Kind::Ruche => {
                self.http_url = address.trim_end_matches('/').to_owned();
                self.ws_url = format!("{}/collab", self.http_url.replacen("http", "ws", 1));
                self.token = login(&self.http_url)?;
            }
            Kind::Hocuspocus => {
                self.ws_url = format!("ws://127.0.0.1:{address}");
            }
        }
        self.process = Some(process);
        Ok(())
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        drop(self.process.take());
        self.launch()
    }

    fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, ServerProcess::pid)
    }

    /// A new document: an empty file for ruche (named by its id), a name for Hocuspocus.
    fn document(&self, name: &str) -> anyhow::Result<String> {
        match self.kind {
            Kind::Hocuspocus => Ok(name.to_owned()),
            Kind::Ruche => create_file(&self.http_url, name),
        }
    }
}

/// Sends one request to ruche and returns the body of its answer.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> anyhow::Result<String> {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.to_owned())?;
    let mut response = client::agent(Duration::from_secs(60))
        .run(request)
        .with_context(|| format!("{method} {url}: no answer"))?;
    let status = response.status();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    anyhow::ensure!(status.is_success(), "{method} {url}: {status} {text}");
    Ok(text)
}

fn login(base: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "username": "bench", "password": PASSWORD }).to_string();
    let url = format!("{base}/api/auth/login");
    let answer: Value = serde_json::from_str(&http(
        "POST",
        &url,
        &[("content-type", "application/json")],
        &body,
    )?)?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access token")
}

fn basic() -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("bench:{PASSWORD}"));
    format!("Basic {encoded}")
}

/// PUTs an empty text file and returns its `oc:fileid`.
fn create_file(base: &str, name: &str) -> anyhow::Result<String> {
    let url = format!("{base}/dav/{name}.md");
    let auth = basic();
    http("PUT", &url, &[("authorization", &auth)], "")?;
    let body = "<?xml version=\"1.0\"?><d:propfind xmlns:d=\"DAV:\" \
        xmlns:oc=\"http://owncloud.org/ns\"><d:prop><oc:fileid/></d:prop></d:propfind>";
    let xml = http(
        "PROPFIND",
        &url,
        &[("authorization", &auth), ("depth", "0")],
        body,
    )?;
    let start = xml.find("fileid>").context("no oc:fileid")? + "fileid>".len();
    let id: String = xml[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    anyhow::ensure!(!id.is_empty(), "no oc:fileid in {xml}");
    Ok(id)
}

/// CPU time (user + system) the process has used, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks * 10.0 // the kernel counts in hundredths of a second (USER_HZ)
}

/// Runs one workload of the replay program and returns its JSON.
fn replay(server: &Server, workload: &str, doc: &str, options: &[String]) -> anyhow::Result<Value> {
    let mut command = Command::new("node");
    command
        .arg(server.node_dir.join("replay.mjs"))
        .args([workload, server.kind.name(), &server.ws_url, doc])
        .arg(format!("token={}", server.token))
        .args(options)
        .stderr(Stdio::inherit());
    let output = command.output().context("starting node")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("replay {workload} against {} failed", server.kind.name());
    }
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("replay printed {stdout}"))
}

/// Opens `docs` documents with two clients each and returns the server's resident memory
/// while they are open, in KiB.
fn many(server: &Server, docs: &[String]) -> anyhow::Result<u64> {
    let mut child = Command::new("node")
        .arg(server.node_dir.join("replay.mjs"))
        .args(["many", server.kind.name(), &server.ws_url, "-"])
        .arg(format!("token={}", server.token))
        .arg(format!("docs={}", docs.join(",")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting node")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    anyhow::ensure!(line.contains("\"ready\""), "many: {line}");
    let rss = tree_rss_kib(server.pid());
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "done")?;
    }
    child.wait()?;
    Ok(rss)
}

/// Bytes a server stores for document `doc`.
fn stored_bytes(server: &Server, doc: &str) -> anyhow::Result<u64> {
    let (path, sql) = match server.kind {
        Kind::Ruche => (
            server.data.join("ruche.db"),
            "SELECT COALESCE((SELECT length(state) FROM document_snapshots WHERE node_id = ?1), 0)
               + COALESCE((SELECT sum(length(data)) FROM document_updates WHERE node_id = ?1), 0)",
        ),
        Kind::Hocuspocus => (
            server.data.join("hocuspocus.sqlite"),
            "SELECT COALESCE(sum(length(data)), 0) FROM documents WHERE name = ?1",
        ),
    };
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", path.display()))?;
    let bytes: i64 = conn.query_row(sql, [doc], |r| r.get(0))?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// One measured quantity for both servers, over the repetitions.
struct Row {
    label: String,
    unit: &'static str,
    values: [Vec<f64>; 2],
}

impl Row {
    fn new(label: &str, unit: &'static str) -> Row {
        Row {
            label: label.to_owned(),
            unit,
            values: [Vec::new(), Vec::new()],
        }
    }

    fn push(&mut self, kind: Kind, value: Option<f64>) {
        if let Some(value) = value.filter(|v| v.is_finite()) {
            self.values[kind as usize].push(value);
        }
    }
}

/// Runs the benchmark and returns its Markdown report.
pub fn run(plan: &CollabPlan) -> anyhow::Result<String> {
    let node_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("collab");
    anyhow::ensure!(
        node_dir.join("node_modules/@hocuspocus/server").is_dir(),
        "the Yjs clients and Hocuspocus are not installed: run `npm ci --prefix {}`",
        node_dir.display()
    );
    let sizes = if plan.smoke {
        Sizes {
            fanout_txns: 300,
            watchers: 5,
            concurrent_txns: 1000,
            documents: 10,
        }
    } else {
        Sizes {
            fanout_txns: 20_000,
            watchers: 50,
            concurrent_txns: 26_078,
            documents: 200,
        }
    };
    let work = tempfile::Builder::new()
        .prefix("ruche-bench-collab-")
        .tempdir_in(&plan.temp)?;
    let mut servers = [
        Server::start(Kind::Ruche, plan, &node_dir, work.path())?,
        Server::start(Kind::Hocuspocus, plan, &node_dir, work.path())?,
    ];
    let trace = |name: &str| format!("trace={}", plan.traces.join(name).display());
    let mut rows = vec![
        Row::new("seph-blog1, 1 typist + watchers: throughput", "updates/s ↑"),
        Row::new("seph-blog1: fan-out latency p50", "ms ↓"),
        Row::new("seph-blog1: fan-out latency p99", "ms ↓"),
        Row::new("seph-blog1: server CPU per 1,000 updates", "ms ↓"),
        Row::new("friendsforever, 2 typists: throughput", "updates/s ↑"),
        Row::new("friendsforever: latency p50", "ms ↓"),
        Row::new("friendsforever: latency p99", "ms ↓"),
        Row::new("memory per open document", "KiB ↓"),
        Row::new("automerge-paper: open a stored document", "ms ↓"),
        Row::new("automerge-paper: stored size ÷ Yjs v2 encoding", "ratio ↓"),
    ];
    let mut counter = 0;
    for round in 0..plan.repeat {
        for server in &mut servers {
            let kind = server.kind;
            counter += 1;
            let doc = server.document(&format!("blog-{round}-{counter}"))?;
            let before = cpu_ms(server.pid());
            let fanout = replay(
                server,
                "fanout",
                &doc,
                &[
                    trace("seph-blog1.json.gz"),
                    format!("limit={}", sizes.fanout_txns),
                    format!("watchers={}", sizes.watchers),
                ],
            )?;
            let cpu = cpu_ms(server.pid()) - before;
            let updates = fanout["updates"].as_f64().unwrap_or(1.0).max(1.0);
            rows[0].push(kind, fanout["updates_per_s"].as_f64());
            rows[1].push(kind, fanout["p50_ms"].as_f64());
            rows[2].push(kind, fanout["p99_ms"].as_f64());
            rows[3].push(kind, Some(cpu / updates * 1000.0));

            let doc = server.document(&format!("friends-{round}-{counter}"))?;
            let pair = replay(
                server,
                "concurrent",
                &doc,
                &[
                    trace("friendsforever.json.gz"),
                    format!("limit={}", sizes.concurrent_txns),
                ],
            )?;
            rows[4].push(kind, pair["updates_per_s"].as_f64());
            rows[5].push(kind, pair["p50_ms"].as_f64());
            rows[6].push(kind, pair["p99_ms"].as_f64());

            let docs = (0..sizes.documents)
                .map(|i| server.document(&format!("many-{round}-{i}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let idle = tree_rss_kib(server.pid());
            let open = many(server, &docs)?;
            rows[7].push(
                kind,
                Some(open.saturating_sub(idle) as f64 / docs.len() as f64),
            );

            let doc = server.document(&format!("paper-{round}"))?;
            let stored = replay(server, "store", &doc, &[trace("automerge-paper.json.gz")])?;
            server.restart()?;
            let opened = replay(server, "open", &doc, &[])?;
            anyhow::ensure!(
                opened["length"] == stored["length"],
                "{}: the stored paper came back with another length",
                kind.name()
            );
            rows[8].push(kind, opened["open_ms"].as_f64());
            let v2 = stored["v2_bytes"].as_f64().unwrap_or(1.0);
            rows[9].push(kind, Some(stored_bytes(server, &doc)? as f64 / v2));
            eprintln!(
                "round {} of {}: {} done",
                round + 1,
                plan.repeat,
                kind.name()
            );
        }
    }
    Ok(report(plan, &sizes, &rows))
}

fn report(plan: &CollabPlan, sizes: &Sizes, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Co-editing: ruche beside Hocuspocus\n\n\
         Stock clients (yjs, y-websocket for ruche, @hocuspocus/provider for Hocuspocus with \
         its SQLite extension), {} repetition(s), servers interleaved; medians with (min–max). \
         seph-blog1: {} transactions typed as fast as a window of 200 unacknowledged updates \
         allows, {} watchers; friendsforever: {} transactions, each agent on its own client; \
         {} documents open at once with two clients each. ruche runs with its per-client \
         message rate lifted (by default it slows a client past 1,000 messages a second, which \
         the replay exceeds); Hocuspocus has no such limit. ruche stores every update durably \
         before it spreads; Hocuspocus's SQLite extension stores the document after a quiet \
         period.\n",
        plan.repeat, sizes.fanout_txns, sizes.watchers, sizes.concurrent_txns, sizes.documents
    );
    let _ = writeln!(
        out,
        "| measure | unit | ruche | hocuspocus | ruche ÷ hocuspocus |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: |");
    for row in rows {
        let cell = |values: &[f64]| match stats::summarize(values) {
            Some(s) => format!("{} ({}–{})", fmt(s.median), fmt(s.min), fmt(s.max)),
            None => "–".to_owned(),
        };
        let ratio = match (
            stats::summarize(&row.values[0]),
            stats::summarize(&row.values[1]),
        ) {
            (Some(r), Some(h)) => {
                stats::ratio(r.median, h.median).map_or("–".to_owned(), |x| format!("{x:.2}"))
            }
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {ratio} |",
            row.label,
            row.unit,
            cell(&row.values[0]),
            cell(&row.values[1])
        );
    }
    let _ = writeln!(
        out,
        "\nEditing traces: the editing-traces collection by Joseph Gentle (CC BY 4.0); \
         automerge-paper was first prepared by Martin Kleppmann."
    );
    out
}

fn fmt(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}
