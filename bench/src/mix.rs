//! W6, a sync-like mix: many clients, each in its own folder, repeat the cycle a
//! desktop sync client goes through when a file changes: list the folder (PROPFIND
//! Depth 1), upload a small file under a temporary name (PUT), rename it into place
//! (MOVE), and later remove it (DELETE). Each request is timed on its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{small_body, Dav, Target};
use crate::stats;
use crate::workloads::{connect, parallel, Sizes, SMALL_TIMEOUT};

/// Bound on cycles per client and run, whatever the duration.
const MAX_CYCLES_PER_CLIENT: usize = 50_000;
/// Size of the file each cycle uploads.
const MIX_FILE_BYTES: usize = 2048;

/// What one run of the mix measured.
#[derive(Clone, Copy, Debug)]
pub struct MixOutcome {
    /// Successful requests per second, all clients together.
    pub ops_per_s: f64,
    /// Median request latency, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile request latency, in milliseconds.
    pub p99_ms: f64,
}

fn client_folder(client: usize) -> String {
    format!("w6/c{client:02}/")
}

/// Creates each client's folder with a few files in it, so listings are not empty.
pub fn prepare(target: &Target, sizes: &Sizes) -> anyhow::Result<()> {
    let clients = connect(target, sizes.connections)?;
    clients[0].mkcol("w6/")?;
    parallel(&clients, sizes.mix_clients, |dav, client| {
        dav.mkcol(&client_folder(client))
    })?;
    let seeds = sizes.mix_clients * sizes.mix_seed_files;
    parallel(&clients, seeds, |dav, index| {
        let (client, file) = (index / sizes.mix_seed_files, index % sizes.mix_seed_files);
        let path = format!("{}seed-{file:03}.txt", client_folder(client));
        dav.put_bytes(&path, small_body(MIX_FILE_BYTES, index as u64))
    })
}

/// Runs the mix for `sizes.mix_seconds`; `rep` keeps file names unique across runs.
pub fn run(target: &Target, sizes: &Sizes, rep: usize) -> anyhow::Result<MixOutcome> {
    let clients: Vec<Dav> = (0..sizes.mix_clients)
        .map(|_| Dav::new(target, SMALL_TIMEOUT))
        .collect::<anyhow::Result<_>>()?;
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(sizes.mix_seconds);

    let latencies = thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(client, dav)| {
                let stop = &stop;
                scope.spawn(move || cycles(dav, client, rep, deadline, stop))
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            let mine = handle
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a mix client panicked")))?;
            all.extend(mine);
        }
        anyhow::Ok(all)
    })?;
    let elapsed = started.elapsed().as_secs_f64();

    let mut millis: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    millis.sort_by(f64::total_cmp);
    Ok(MixOutcome {
        ops_per_s: millis.len() as f64 / elapsed,
        p50_ms: stats::percentile(&millis, 50.0).unwrap_or(f64::NAN),
        p99_ms: stats::percentile(&millis, 99.0).unwrap_or(f64::NAN),
    })
}

/// One client's loop; on an error it stops every client and returns the error.
fn cycles(
    dav: &Dav,
    client: usize,
    rep: usize,
    deadline: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(1024);
    let folder = client_folder(client);
    for cycle in 0..MAX_CYCLES_PER_CLIENT {
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            break;
        }
        let outcome = one_cycle(dav, &folder, rep, cycle, &mut latencies);
        if outcome.is_err() {
            stop.store(true, Ordering::Relaxed);
            return outcome.map(|()| latencies);
        }
    }
    Ok(latencies)
}

fn one_cycle(
    dav: &Dav,
    folder: &str,
    rep: usize,
    cycle: usize,
    latencies: &mut Vec<Duration>,
) -> anyhow::Result<()> {
    let partial = format!("{folder}upload-{rep}-{cycle}.part");
    let done = format!("{folder}file-{rep}-{cycle}.txt");
    let body = small_body(MIX_FILE_BYTES, ((rep as u64) << 32) | cycle as u64);
    let mut timed = |request: &dyn Fn() -> anyhow::Result<()>| {
        let started = Instant::now();
        request()?;
        latencies.push(started.elapsed());
        anyhow::Ok(())
    };

    timed(&|| {
        let responses = dav.propfind(folder)?;
        anyhow::ensure!(responses >= 1, "PROPFIND {}: no response", dav.url(folder));
        Ok(())
    })?;
    timed(&|| dav.put_bytes(&partial, body.clone()))?;
    timed(&|| dav.move_to(&partial, &done))?;
    timed(&|| dav.delete(&done))?;
    Ok(())
}
