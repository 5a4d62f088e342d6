//! The server processes the benchmark starts: a guard that stops a server and everything
//! it forked when dropped (also on error or panic), and what the kernel reports about
//! their memory in `/proc`.

use std::collections::HashMap;
use std::fs;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;
use rustix::process::{kill_process, Pid, Signal};

/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How often the memory sampler reads `VmRSS`.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// How many samples reuse one listing of the process tree (servers fork rarely).
const SAMPLES_PER_TREE_SCAN: u32 = 20;

/// A started server process, stopped with its descendants when dropped.
pub struct ServerProcess {
    label: String,
    child: Child,
}

impl ServerProcess {
    /// Spawns `command`; `label` names it in messages.
    pub fn spawn(label: &str, command: &mut Command) -> anyhow::Result<ServerProcess> {
        let child = command
            .spawn()
            .with_context(|| format!("{label}: cannot start {:?}", command.get_program()))?;
        Ok(ServerProcess {
            label: label.to_owned(),
            child,
        })
    }

    /// The process id of the started process (nginx's or Apache's master).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has already exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => anyhow::bail!("{}: exited early with {status}", self.label),
            Err(err) => Err(err).with_context(|| format!("{}: cannot poll", self.label)),
        }
    }

    /// The started process's stdout, if it was piped.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    fn stop(&mut self) {
        let descendants: Vec<(u32, String)> = process_tree(self.pid())
            .into_iter()
            .skip(1)
            .map(|pid| (pid, command_name(pid).unwrap_or_default()))
            .collect();
        if let Ok(None) = self.child.try_wait() {
            signal(self.pid(), Signal::TERM);
        }

        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            eprintln!("{}: still running after SIGTERM, killing it", self.label);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }

        // Workers that outlive their master would keep the port and the data folder:
        // kill each one we saw, by id, if it is still the same program.
        for (pid, name) in descendants {
            if command_name(pid).as_deref() == Some(name.as_str()) {
                signal(pid, Signal::KILL);
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, signal: Signal) {
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw);
    if let Some(pid) = pid {
        // The process may have exited in between; nothing to do then.
        let _ = kill_process(pid, signal);
    }
}

/// `root` and all its descendants, `root` first.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, parent) in all_parents() {
        children.entry(parent).or_default().push(pid);
    }
    let mut tree = vec![root];
    let mut next = 0;
    while next < tree.len() {
        if let Some(kids) = children.get(&tree[next]) {
            tree.extend(kids);
        }
        next += 1;
    }
    tree
}

/// Every (pid, parent pid) pair listed in `/proc`.
fn all_parents() -> Vec<(u32, u32)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

fn command_name(pid: u32) -> Option<String> {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end().to_owned())
}

/// A `Vm*` field of `/proc/PID/status`, in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, field)
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|line| line.split(':').next() == Some(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The resident memory of `root` and its descendants, summed, in KiB.
pub fn tree_rss_kib(root: u32) -> u64 {
    sum_rss(&process_tree(root))
}

fn sum_rss(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&pid| status_kib(pid, "VmRSS"))
        .sum()
}

/// Samples the resident memory of a process tree in the background, to find its peak.
pub struct MemorySampler {
    root: u32,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl MemorySampler {
    /// Starts sampling `root` and its descendants, and resets the kernel's high-water
    /// mark of each (`clear_refs` 5; it needs root and is skipped silently otherwise).
    pub fn start(root: u32) -> MemorySampler {
        for pid in process_tree(root) {
            let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || sample_until(root, &flag));
        MemorySampler { root, stop, thread }
    }

    /// Stops sampling and returns the peak in KiB: the largest sampled sum over the
    /// tree, or the largest single process's `VmHWM` if that is larger (it catches
    /// peaks shorter than the sampling period).
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let sampled = self.thread.join().unwrap_or(0);
        let high_water = process_tree(self.root)
            .into_iter()
            .filter_map(|pid| status_kib(pid, "VmHWM"))
            .max()
            .unwrap_or(0);
        sampled.max(high_water)
    }
}

fn sample_until(root: u32, stop: &AtomicBool) -> u64 {
    let mut peak = 0;
    let mut tree = Vec::new();
    let mut samples = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if samples % SAMPLES_PER_TREE_SCAN == 0 {
            tree = process_tree(root);
        }
        peak = peak.max(sum_rss(&tree));
        samples = samples.wrapping_add(1);
        thread::sleep(SAMPLE_EVERY);
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tnginx\nVmHWM:\t   10240 kB\nVmRSS:\t    8192 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(10240));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(8192));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn own_process_is_the_root_of_its_tree() {
        let me = std::process::id();
        assert_eq!(process_tree(me).first(), Some(&me));
        assert!(tree_rss_kib(me) > 0);
    }
}
