//! `ruche-bench`: measures ruche beside other WebDAV servers (nginx, Apache, dufs,
//! rclone) and beside the limits of the machine, in one run, with one client.
//!
//! `cargo run --release -p ruche-bench -- webdav [--smoke]` starts every server on
//! 127.0.0.1 with a fresh temporary data folder, runs the workloads W1 to W7 with the
//! servers interleaved, prints Markdown tables and writes `results.json`,
//! `results.md` and `results.svg`. It installs nothing: a missing peer is named with
//! the command that installs it, and the run goes on without it.

mod chart;
mod client;
mod collab;
mod configs;
mod limits;
mod machine;
mod mix;
mod peers;
mod process;
mod report;
mod run;
mod stats;
mod sync;
mod table;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::peers::Peer;

#[derive(Parser)]
#[command(name = "ruche-bench", about = "Benchmarks of ruche beside its peers")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// WebDAV file workloads against ruche and the peer servers, and the machine limits.
    Webdav(WebdavArgs),
    /// Sync clients (rclone, nextcloudcmd) on a tree of 10,000 files: first and quiet runs.
    Sync(SyncArgs),
    /// Co-editing: editing traces replayed through ruche and Hocuspocus.
    Collab(CollabArgs),
}

#[derive(Args)]
struct CollabArgs {
    /// Short traces, few clients, one repetition (CI).
    #[arg(long)]
    smoke: bool,
    /// Folder for collab.md.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Repetitions [default: 3, or 1 with --smoke].
    #[arg(long)]
    repeat: Option<usize>,
    /// Folder of the editing traces [default: ../shared/data/editing-traces beside the
    /// repository].
    #[arg(long)]
    traces: Option<PathBuf>,
}

#[derive(Args)]
struct SyncArgs {
    /// A tree of 20 folders of 10 files and one quiet repetition (CI).
    #[arg(long)]
    smoke: bool,
    /// Folder for sync.md.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Servers rclone syncs with, comma-separated (nextcloudcmd runs against ruche only).
    #[arg(long, value_delimiter = ',', default_value = "ruche,dufs,rclone")]
    peers: Vec<String>,
}

#[derive(Args)]
struct WebdavArgs {
    /// Tiny sizes and one repetition: proves every workload and output works (CI).
    #[arg(long)]
    smoke: bool,
    /// Folder for results.json, results.md and results.svg.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Repetitions of each workload [default: 5, or 1 with --smoke].
    #[arg(long)]
    repeat: Option<usize>,
    /// Servers to measure, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ruche,nginx,apache,dufs,rclone"
    )]
    peers: Vec<String>,
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Bench::Webdav(args) => webdav(args),
        Bench::Sync(args) => sync_bench(args),
        Bench::Collab(args) => collab_bench(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ruche-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn webdav(args: WebdavArgs) -> anyhow::Result<()> {
    let peers = args
        .peers
        .iter()
        .map(|name| Peer::parse(name).with_context(|| format!("unknown server {name:?}")))
        .collect::<anyhow::Result<Vec<Peer>>>()?;
    let plan = run::Plan {
        peers,
        repeat: args.repeat.unwrap_or(if args.smoke { 1 } else { 5 }).max(1),
        smoke: args.smoke,
        ruche: machine::ruche_binary(),
        temp: std::env::temp_dir(),
    };

    let (report, servers) = run::run(&plan)?;
    let markdown = report.markdown();
    println!("{markdown}");

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let json = serde_json::to_string_pretty(&report.json())?;
    write(&args.out.join("results.json"), &json)?;
    write(&args.out.join("results.md"), &markdown)?;
    let svg = args.out.join("results.svg");
    chart::draw(&report, &svg).with_context(|| format!("drawing {}", svg.display()))?;
    eprintln!("results written to {}", args.out.display());
    run::stop_all(servers);
    Ok(())
}

fn sync_bench(args: SyncArgs) -> anyhow::Result<()> {
    let peers = args
        .peers
        .iter()
        .map(|name| Peer::parse(name).with_context(|| format!("unknown server {name:?}")))
        .collect::<anyhow::Result<Vec<Peer>>>()?;
    let plan = sync::SyncPlan {
        peers,
        folders: if args.smoke { 20 } else { 500 },
        files_per_folder: if args.smoke { 10 } else { 20 },
        repeat: if args.smoke { 1 } else { 5 },
        ruche: machine::ruche_binary(),
        temp: std::env::temp_dir(),
    };
    let markdown = sync::run(&plan)?;
    println!("{markdown}");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write(&args.out.join("sync.md"), &markdown)
}

fn collab_bench(args: CollabArgs) -> anyhow::Result<()> {
    let plan = collab::CollabPlan {
        smoke: args.smoke,
        repeat: args.repeat.unwrap_or(if args.smoke { 1 } else { 3 }).max(1),
        ruche: machine::ruche_binary(),
        temp: std::env::temp_dir(),
        traces: args.traces.unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/editing-traces")
        }),
    };
    anyhow::ensure!(
        plan.traces.join("seph-blog1.json.gz").is_file(),
        "the editing traces are not in {}; give their folder with --traces",
        plan.traces.display()
    );
    let markdown = collab::run(&plan)?;
    println!("{markdown}");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write(&args.out.join("collab.md"), &markdown)
}

fn write(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
