//! One benchmark run: start the servers, measure the machine's limits, then run each
//! workload `repeat` times with the servers interleaved (A B C A B C ...), so that
//! noise from other work on a shared machine falls on every server alike.

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use crate::client::Target;
use crate::limits::Limit;
use crate::machine;
use crate::mix;
use crate::peers::{self, Peer, RunningServer};
use crate::process::{tree_rss_kib, MemorySampler};
use crate::report::{Better, LimitResult, Metric, MetricResult, Report, Series};
use crate::workloads::{self as w, Sizes};

/// What to run.
pub struct Plan {
    /// The servers asked for.
    pub peers: Vec<Peer>,
    /// Repetitions of each workload.
    pub repeat: usize,
    /// Tiny sizes.
    pub smoke: bool,
    /// The ruche binary under test.
    pub ruche: PathBuf,
    /// Where temporary folders go.
    pub temp: PathBuf,
}

/// Pause between the idle memory samples.
const IDLE_SAMPLE_GAP: Duration = Duration::from_millis(100);
const KIB_PER_MIB: f64 = 1024.0;

/// Runs everything and returns the report with the servers, still running, so that the
/// results can be written before the (slow) removal of their data; see [`stop_all`].
pub fn run(plan: &Plan) -> anyhow::Result<(Report, Vec<RunningServer>)> {
    let sizes = if plan.smoke {
        Sizes::smoke()
    } else {
        Sizes::full()
    };
    let machine = machine::describe(&plan.temp);
    let (servers, skipped) = start_servers(plan);
    for line in &skipped {
        eprintln!("skipping {line}");
    }
    anyhow::ensure!(!servers.is_empty(), "no server could be started");

    let mut bench = Bench {
        servers: &servers,
        sizes: &sizes,
        repeat: plan.repeat,
        metrics: Vec::new(),
    };
    let idle = idle_memory(&servers, plan.repeat);
    let limits = measure_limits(plan, &sizes);
    bench.all_workloads(idle);

    let report = Report {
        machine,
        repeat: plan.repeat,
        smoke: plan.smoke,
        sizes: sizes.clone(),
        servers: servers.iter().map(|server| server.peer).collect(),
        skipped,
        limits,
        metrics: bench.metrics,
    };
    Ok((report, servers))
}

/// Stops every server and removes its folders, all at once: removing tens of thousands
/// of small files waits on the disk, one server after another would take minutes.
pub fn stop_all(servers: Vec<RunningServer>) {
    eprintln!("stopping the servers and removing their folders");
    thread::scope(|scope| {
        for server in servers {
            scope.spawn(move || drop(server));
        }
    });
}

/// Starts every server that can run; the others come back as lines of advice.
fn start_servers(plan: &Plan) -> (Vec<RunningServer>, Vec<String>) {
    let mut servers = Vec::new();
    let mut skipped = Vec::new();
    for &peer in &plan.peers {
        let launcher = match peers::locate(peer, &plan.ruche) {
            Ok(launcher) => launcher,
            Err(missing) => {
                skipped.push(missing.advice());
                continue;
            }
        };
        match launcher.start(&plan.temp) {
            Ok(server) => {
                eprintln!("{} listening at {}", peer.name(), server.target.root);
                servers.push(server);
            }
            Err(error) => skipped.push(format!("{}: did not start: {error:#}", peer.name())),
        }
    }
    (servers, skipped)
}

fn idle_memory(servers: &[RunningServer], repeat: usize) -> Vec<Series> {
    let mut series = vec![Series::default(); servers.len()];
    for _ in 0..repeat {
        thread::sleep(IDLE_SAMPLE_GAP);
        for (server, series) in servers.iter().zip(&mut series) {
            series
                .samples
                .push(tree_rss_kib(server.pid()) as f64 / KIB_PER_MIB);
        }
    }
    series
}

fn measure_limits(plan: &Plan, sizes: &Sizes) -> Vec<LimitResult> {
    let (bytes, disk_bytes) = (human_bytes(sizes.limit_bytes), human_bytes(sizes.big_bytes));
    let mut results: Vec<LimitResult> = Limit::ALL
        .iter()
        .map(|&limit| LimitResult {
            limit,
            label: limit.describe(&bytes, &disk_bytes),
            series: Series::default(),
        })
        .collect();
    for rep in 0..plan.repeat {
        for result in results.iter_mut().filter(|r| r.series.failure.is_none()) {
            let measured = result
                .limit
                .measure(&plan.temp, sizes.big_bytes, sizes.limit_bytes);
            eprintln!(
                "limit {} [{}/{}]: {measured:.0?} MB/s",
                result.limit.id(),
                rep + 1,
                plan.repeat
            );
            match measured {
                Ok(rate) => result.series.samples.push(rate),
                Err(error) => result.series.failure = Some(format!("{error:#}")),
            }
        }
    }
    results
}

/// The state of the workload phase.
struct Bench<'a> {
    servers: &'a [RunningServer],
    sizes: &'a Sizes,
    repeat: usize,
    metrics: Vec<MetricResult>,
}

/// A measurement of one repetition on one server: several values for several metrics.
type Measure<'m> = dyn FnMut(usize, &Target, usize) -> anyhow::Result<Vec<f64>> + 'm;

impl Bench<'_> {
    fn all_workloads(&mut self, idle: Vec<Series>) {
        let s = self.sizes.clone();
        let (big, small) = (human_bytes(s.big_bytes), human_bytes(s.small_bytes as u64));
        let last = self.repeat - 1;
        let mut peaks = vec![Series::default(); self.servers.len()];

        let pids: Vec<u32> = self.servers.iter().map(RunningServer::pid).collect();
        let titled = |id, title: String, unit, better| Metric {
            id,
            title,
            unit,
            better,
        };
        self.workload(
            &[titled(
                "w1_put",
                format!("W1 PUT one {big} file"),
                "MB/s",
                Better::Higher,
            )],
            &mut |i, target, rep| {
                let sampler = MemorySampler::start(pids[i]);
                let rate = w::put_big(target, &s, rep);
                record_peak(&mut peaks[i], rep, sampler.finish());
                Ok(vec![rate?])
            },
        );
        self.workload(
            &[titled(
                "w2_get",
                format!("W2 GET that {big} file"),
                "MB/s",
                Better::Higher,
            )],
            &mut |i, target, rep| {
                let sampler = MemorySampler::start(pids[i]);
                let rate = w::get_big(target, &s, last);
                record_peak(&mut peaks[i], rep, sampler.finish());
                Ok(vec![rate?])
            },
        );
        let files = format!("{} × {small}, {} connections", s.small_files, s.connections);
        self.workload(
            &[titled(
                "w3_put_small",
                format!("W3 PUT {files}"),
                "files/s",
                Better::Higher,
            )],
            &mut |_, target, rep| Ok(vec![w::put_small(target, &s, rep)?]),
        );
        self.workload(
            &[titled(
                "w4_get_small",
                format!("W4 GET {files}"),
                "files/s",
                Better::Higher,
            )],
            &mut |_, target, rep| Ok(vec![w::get_small(target, &s, rep.min(last))?]),
        );

        let listing = format!("W5 PROPFIND Depth 1, {} entries", s.listing_entries);
        let ready = self.setup("W5 setup", &|target| w::fill_listing(target, &s));
        self.workload(
            &[titled("w5_propfind", listing, "ms", Better::Lower)],
            &mut |i, target, _| {
                ready[i].clone().map_err(anyhow::Error::msg)?;
                Ok(vec![w::propfind_listing(target, &s)?])
            },
        );

        let mix_title = format!(
            "W6 sync mix, {} clients × {} s",
            s.mix_clients, s.mix_seconds
        );
        let ready = self.setup("W6 setup", &|target| mix::prepare(target, &s));
        self.workload(
            &[
                titled("w6_ops", mix_title, "ops/s", Better::Higher),
                titled("w6_p50", "W6 latency p50".to_owned(), "ms", Better::Lower),
                titled("w6_p99", "W6 latency p99".to_owned(), "ms", Better::Lower),
            ],
            &mut |i, target, rep| {
                ready[i].clone().map_err(anyhow::Error::msg)?;
                let outcome = mix::run(target, &s, rep)?;
                Ok(vec![outcome.ops_per_s, outcome.p50_ms, outcome.p99_ms])
            },
        );

        let idle_title = "W7 memory idle (RSS after start)".to_owned();
        let peak_title = "W7 peak memory during W1 and W2".to_owned();
        let memory = [
            (titled("w7_idle", idle_title, "MiB", Better::Lower), idle),
            (titled("w7_peak", peak_title, "MiB", Better::Lower), peaks),
        ];
        for (metric, series) in memory {
            self.metrics.push(MetricResult { metric, series });
        }
    }

    /// Runs untimed setup on every server; `Err` holds the message for servers where
    /// it failed, which then fail the workload that needed it.
    fn setup(
        &self,
        label: &str,
        prepare: &dyn Fn(&Target) -> anyhow::Result<()>,
    ) -> Vec<Result<(), String>> {
        self.servers
            .iter()
            .map(|server| {
                eprintln!("{label}: {}", server.peer.name());
                prepare(&server.target).map_err(|error| format!("{label}: {error:#}"))
            })
            .collect()
    }

    /// Runs one workload `repeat` times on every server, interleaved, and records one
    /// metric per value `measure` returns. A server that fails is not asked again.
    fn workload(&mut self, metrics: &[Metric], measure: &mut Measure<'_>) {
        let mut series = vec![vec![Series::default(); self.servers.len()]; metrics.len()];
        for rep in 0..self.repeat {
            for (i, server) in self.servers.iter().enumerate() {
                if series[0][i].failure.is_some() {
                    continue;
                }
                let outcome = measure(i, &server.target, rep);
                let progress = format!(
                    "{} [{}/{}] {}",
                    metrics[0].id,
                    rep + 1,
                    self.repeat,
                    server.peer.name()
                );
                match outcome {
                    Ok(values) => {
                        eprintln!("{progress}: {values:.2?}");
                        for (metric, value) in series.iter_mut().zip(values) {
                            metric[i].samples.push(value);
                        }
                    }
                    Err(error) => {
                        eprintln!("{progress}: failed: {error:#}");
                        for metric in &mut series {
                            metric[i].failure = Some(format!("{error:#}"));
                        }
                    }
                }
            }
        }
        for (metric, series) in metrics.iter().zip(series) {
            let metric = metric.clone();
            self.metrics.push(MetricResult { metric, series });
        }
    }
}

/// Keeps the larger of W1's and W2's peaks for a repetition, in MiB.
fn record_peak(series: &mut Series, rep: usize, peak_kib: u64) {
    let peak = peak_kib as f64 / KIB_PER_MIB;
    match series.samples.get_mut(rep) {
        Some(sample) => *sample = sample.max(peak),
        None => series.samples.push(peak),
    }
}

/// `1 GiB`, `8 MiB`, `4 KiB`: sizes as binary multiples.
pub fn human_bytes(bytes: u64) -> String {
    let units = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in units {
        if bytes >= size && bytes % size == 0 {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_binary_multiples() {
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(8 << 20), "8 MiB");
        assert_eq!(human_bytes(4096), "4 KiB");
        assert_eq!(human_bytes(1000), "1000 B");
    }

    #[test]
    fn the_peak_of_a_repetition_is_the_larger_of_two() {
        let mut series = Series::default();
        record_peak(&mut series, 0, 2048);
        record_peak(&mut series, 0, 1024);
        record_peak(&mut series, 1, 4096);
        assert_eq!(series.samples, vec![2.0, 4.0]);
    }
}
