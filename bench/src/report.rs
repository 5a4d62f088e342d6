//! The results of a run and their forms for readers: Markdown tables (printed), JSON
//! (`results.json`). The chart is drawn by `chart.rs` and the cells formatted by
//! `table.rs`.

use serde::Serialize;
use serde_json::{json, Value};

use crate::limits::Limit;
use crate::peers::Peer;
use crate::stats::{ratio, summarize, Summary};
use crate::table::{cell, format_ratio, format_value, markdown_table};
use crate::workloads::Sizes;

/// The length of W6 that the workload's definition asks for, in seconds.
const ISSUE_MIX_SECONDS: f64 = 30.0;

/// Which way a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Throughput: more is better.
    Higher,
    /// Latency, time, memory: less is better.
    Lower,
}

impl Better {
    fn arrow(self) -> &'static str {
        match self {
            Better::Higher => "↑",
            Better::Lower => "↓",
        }
    }
}

/// One measured quantity of a workload.
#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    /// Short key (`w1_put`).
    pub id: &'static str,
    /// What was done, with its size (`W1 PUT 1 GiB`).
    pub title: String,
    /// Unit of the values (`MB/s`).
    pub unit: &'static str,
    /// Which way is better.
    pub better: Better,
}

/// The repetitions of one metric on one server, or why they stopped.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Series {
    /// One value per successful repetition, in run order.
    pub samples: Vec<f64>,
    /// The error that ended the series, if one did.
    pub failure: Option<String>,
}

impl Series {
    /// Median, min and max of the samples.
    pub fn summary(&self) -> Option<Summary> {
        summarize(&self.samples)
    }
}

/// A metric measured on every server, in the order of [`Report::servers`].
#[derive(Clone, Debug)]
pub struct MetricResult {
    /// What was measured.
    pub metric: Metric,
    /// One series per server.
    pub series: Vec<Series>,
}

/// A limit of the machine and its repetitions, in MB/s.
#[derive(Clone, Debug)]
pub struct LimitResult {
    /// Which limit.
    pub limit: Limit,
    /// What exactly was measured.
    pub label: String,
    /// The repetitions.
    pub series: Series,
}

/// Where and when the run happened.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// UTC date and time of the start of the run.
    pub date: String,
    /// Logical cores.
    pub cores: usize,
    /// CPU model.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Folder holding every server's data and the disk limit's file.
    pub temp_dir: String,
}

/// Everything a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// Repetitions per workload.
    pub repeat: usize,
    /// Whether this was a smoke run (tiny sizes).
    pub smoke: bool,
    /// The sizes used.
    pub sizes: Sizes,
    /// The servers measured, ruche first when it ran.
    pub servers: Vec<Peer>,
    /// Servers asked for that could not run, with the reason and the fix.
    pub skipped: Vec<String>,
    /// The machine's limits.
    pub limits: Vec<LimitResult>,
    /// The workloads' metrics.
    pub metrics: Vec<MetricResult>,
}

impl Report {
    fn ruche_index(&self) -> Option<usize> {
        self.servers.iter().position(|&peer| peer == Peer::Ruche)
    }

    /// The median of a machine limit, if it was measured.
    pub fn limit_median(&self, limit: Limit) -> Option<f64> {
        let found = self.limits.iter().find(|result| result.limit == limit)?;
        Some(found.series.summary()?.median)
    }

    fn metric_median(&self, id: &str, server: usize) -> Option<f64> {
        let found = self.metrics.iter().find(|result| result.metric.id == id)?;
        Some(found.series.get(server)?.summary()?.median)
    }

    /// The line that heads every table: cores, CPU, date and repetitions.
    pub fn heading(&self) -> String {
        let m = &self.machine;
        let kind = if self.smoke {
            "smoke run (tiny sizes)"
        } else {
            "full run"
        };
        format!(
            "{} cores ({}), Linux {}, {}; {kind}, {} repetition(s), servers interleaved",
            m.cores, m.cpu, m.kernel, m.date, self.repeat
        )
    }

    /// The workload table, the limits table and the notes, in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "## WebDAV: ruche beside its peers\n\n{}\n\n",
            self.heading()
        ));
        out.push_str("Medians with (min–max). Ratio = ruche ÷ peer; ↑ higher is better, ");
        out.push_str("↓ lower is better.\n\n");
        out.push_str(&self.workload_table());
        out.push_str(&self.failures());
        out.push_str(&format!(
            "\n## Machine limits (same run)\n\n{}\n\n",
            self.heading()
        ));
        out.push_str(&self.limits_table());
        out.push_str(&format!(
            "\n## Servers against the limits\n\n{}\n\n",
            self.heading()
        ));
        out.push_str(&self.against_limits_table());
        out.push_str(&self.notes());
        out
    }

    fn workload_table(&self) -> String {
        let ruche = self.ruche_index();
        let peers: Vec<usize> = (0..self.servers.len())
            .filter(|&i| Some(i) != ruche)
            .collect();
        let mut header = vec!["workload".to_owned(), "unit".to_owned()];
        header.extend(self.servers.iter().map(|peer| peer.name().to_owned()));
        if ruche.is_some() {
            header.extend(
                peers
                    .iter()
                    .map(|&i| format!("ruche/{}", self.servers[i].name())),
            );
        }
        let mut rows = Vec::new();
        for result in &self.metrics {
            let mut row = vec![
                result.metric.title.clone(),
                format!("{} {}", result.metric.unit, result.metric.better.arrow()),
            ];
            row.extend(result.series.iter().map(cell));
            if let Some(ruche) = ruche {
                let median = |i: usize| result.series.get(i)?.summary().map(|s| s.median);
                row.extend(peers.iter().map(|&peer| {
                    let quotient = median(ruche).zip(median(peer));
                    format_ratio(quotient.and_then(|(r, p)| ratio(r, p)))
                }));
            }
            rows.push(row);
        }
        markdown_table(&header, &rows, 2)
    }

    fn failures(&self) -> String {
        let mut out = String::new();
        for result in &self.metrics {
            for (server, series) in self.servers.iter().zip(&result.series) {
                if let Some(failure) = &series.failure {
                    let title = &result.metric.title;
                    out.push_str(&format!(
                        "- {title} failed on {}: {failure}\n",
                        server.name()
                    ));
                }
            }
        }
        if out.is_empty() {
            return out;
        }
        format!("\nFailures (the first error of each):\n\n{out}")
    }

    fn limits_table(&self) -> String {
        let header = ["limit", "unit", "median", "min", "max"].map(String::from);
        let rows: Vec<Vec<String>> = self
            .limits
            .iter()
            .map(|result| {
                let mut row = vec![result.label.clone(), "MB/s".to_owned()];
                match (result.series.summary(), &result.series.failure) {
                    (Some(s), _) => row.extend([s.median, s.min, s.max].map(format_value)),
                    (None, failure) => row.extend([
                        format!("failed: {}", failure.as_deref().unwrap_or("no sample")),
                        String::new(),
                        String::new(),
                    ]),
                }
                row
            })
            .collect();
        markdown_table(&header, &rows, 2)
    }

    fn against_limits_table(&self) -> String {
        let header = [
            "server",
            "W1 PUT ÷ disk+fsync",
            "W1 PUT ÷ SHA-256",
            "W2 GET ÷ loopback",
        ]
        .map(String::from);
        let (disk, sha, loopback) = (
            self.limit_median(Limit::DiskFsync),
            self.limit_median(Limit::Sha256),
            self.limit_median(Limit::Loopback),
        );
        let rows: Vec<Vec<String>> = (0..self.servers.len())
            .map(|i| {
                let put = self.metric_median("w1_put", i);
                let get = self.metric_median("w2_get", i);
                let of = |value: Option<f64>, limit: Option<f64>| {
                    format_ratio(value.zip(limit).and_then(|(v, l)| ratio(v, l)))
                };
                vec![
                    self.servers[i].name().to_owned(),
                    of(put, disk),
                    of(put, sha),
                    of(get, loopback),
                ]
            })
            .collect();
        markdown_table(&header, &rows, 1)
    }

    fn notes(&self) -> String {
        let mut out = String::from("\nNotes:\n\n");
        for peer in &self.servers {
            out.push_str(&format!("- {}: {}.\n", peer.name(), peer.durability()));
        }
        out.push_str("- ruche is driven with Basic authentication; the peers run without ");
        out.push_str("authentication.\n");
        for peer in &self.servers {
            let scope = peer.memory_scope();
            out.push_str(&format!("- {} memory (W7): {scope}.\n", peer.name()));
        }
        if !self.smoke && self.sizes.mix_seconds < ISSUE_MIX_SECONDS {
            out.push_str(&format!(
                "- W6 lasts {} s per repetition and server, not {ISSUE_MIX_SECONDS} s, so \
                 that a full run stays near 15 minutes.\n",
                self.sizes.mix_seconds
            ));
        }
        for skipped in &self.skipped {
            out.push_str(&format!("- not run: {skipped}\n"));
        }
        out
    }

    /// The whole report as JSON, with every sample and its summary.
    pub fn json(&self) -> Value {
        let series = |series: &Series| {
            json!({
                "samples": series.samples,
                "summary": series.summary(),
                "failure": series.failure,
            })
        };
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|result| {
                let servers: serde_json::Map<String, Value> = self
                    .servers
                    .iter()
                    .zip(&result.series)
                    .map(|(peer, s)| (peer.name().to_owned(), series(s)))
                    .collect();
                json!({ "metric": result.metric, "servers": servers })
            })
            .collect();
        let limits: Vec<Value> = self
            .limits
            .iter()
            .map(|r| {
                json!({ "id": r.limit.id(), "label": r.label, "unit": "MB/s",
                             "series": series(&r.series) })
            })
            .collect();
        json!({
            "machine": self.machine,
            "repeat": self.repeat,
            "smoke": self.smoke,
            "sizes": self.sizes,
            "servers": self.servers.iter().map(|p| p.name()).collect::<Vec<_>>(),
            "durability": self.servers.iter()
                .map(|p| (p.name().to_owned(), Value::from(p.durability())))
                .collect::<serde_json::Map<_, _>>(),
            "skipped": self.skipped,
            "limits": limits,
            "metrics": metrics,
        })
    }
}
