//! Counters exposed at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    request_nanos: AtomicU64,
}

impl Metrics {
    pub fn record_request(&self, method: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .entry((method.to_owned(), status))
            .or_default() += 1;
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.request_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Renders every counter, with the store's write latency.
    pub fn render(&self, store_writes: (u64, Duration)) -> String {
        let mut out = String::new();
        let requests = self.requests.lock().clone();
        let total: u64 = requests.values().sum();
        out.push_str("# HELP ruche_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE ruche_http_requests_total counter\n");
        for ((method, status), count) in &requests {
            let _ = writeln!(
                out,
                "ruche_http_requests_total{{method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        counter(
            &mut out,
            "ruche_http_request_bytes_total",
            "Request body bytes received.",
            self.bytes_in.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "ruche_http_response_bytes_total",
            "Response body bytes sent.",
            self.bytes_out.load(Ordering::Relaxed),
        );
        summary(
            &mut out,
            "ruche_http_request_duration_seconds",
            "Time to the response head.",
            total,
            Duration::from_nanos(self.request_nanos.load(Ordering::Relaxed)),
        );
        summary(
            &mut out,
            "ruche_store_write_seconds",
            "Store write transactions, waiting included.",
            store_writes.0,
            store_writes.1,
        );
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

fn summary(out: &mut String, name: &str, help: &str, count: u64, sum: Duration) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} summary\n{name}_sum {}\n{name}_count {count}",
        sum.as_secs_f64()
    );
}
