//! The file workloads W1 to W5, each one timed run against one server. Setup that is
//! not measured (folders, the 10,000 entries listed by W5) is done before the clock
//! starts. Every loop is bounded in count and in time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{small_body, Dav, Target};

/// How long one request of a large transfer may take.
pub const LARGE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one small request may take.
pub const SMALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a many-file workload may take in all before it is called failed.
const MANY_FILES_DEADLINE: Duration = Duration::from_secs(300);
/// Folder of the large file.
const BIG_FOLDER: &str = "w1/";
/// Folder of the W5 listing.
const LISTING_FOLDER: &str = "w5/";
/// Size of each entry of the W5 listing.
const LISTING_ENTRY_BYTES: usize = 64;

/// The sizes of one run: the sizes, or tiny ones for a smoke run.
#[derive(Clone, Debug, Serialize)]
pub struct Sizes {
    /// W1/W2: size of the large file.
    pub big_bytes: u64,
    /// W3/W4: how many small files.
    pub small_files: usize,
    /// W3/W4: size of each small file.
    pub small_bytes: usize,
    /// W3/W4/W5 setup: concurrent connections.
    pub connections: usize,
    /// W5: entries of the listed folder.
    pub listing_entries: usize,
    /// W6: concurrent clients.
    pub mix_clients: usize,
    /// W6: length of one run, in seconds.
    pub mix_seconds: f64,
    /// W6: files each client's folder holds besides its own transient file.
    pub mix_seed_files: usize,
    /// Limits: bytes hashed, sent over loopback and copied in memory.
    pub limit_bytes: u64,
}

impl Sizes {
    /// The full run.
    pub fn full() -> Sizes {
        Sizes {
            big_bytes: 1 << 30,
            small_files: 5_000,
            small_bytes: 4096,
            connections: 8,
            listing_entries: 10_000,
            mix_clients: 16,
            mix_seconds: 8.0,
            mix_seed_files: 20,
            limit_bytes: 2 << 30,
        }
    }

    /// A run that only proves every workload and output works.
    pub fn smoke() -> Sizes {
        Sizes {
            big_bytes: 8 << 20,
            small_files: 200,
            small_bytes: 4096,
            connections: 8,
            listing_entries: 300,
            mix_clients: 16,
            mix_seconds: 1.0,
            mix_seed_files: 3,
            limit_bytes: 64 << 20,
        }
    }
}

/// W1: PUTs the large file (a new name each repetition, so nothing is overwritten)
/// and returns MB/s. The previous repetition's file is deleted afterwards, untimed.
pub fn put_big(target: &Target, sizes: &Sizes, rep: usize) -> anyhow::Result<f64> {
    let dav = Dav::new(target, LARGE_TIMEOUT)?;
    dav.mkcol(BIG_FOLDER)?;

    let started = Instant::now();
    dav.put_generated(&big_path(rep), sizes.big_bytes, rep as u64)?;
    let rate = megabytes_per_s(sizes.big_bytes, started.elapsed());

    if rep > 0 {
        dav.delete(&big_path(rep - 1))?;
    }
    Ok(rate)
}

/// W2: GETs the large file W1 left (its last repetition) into a sink; returns MB/s.
pub fn get_big(target: &Target, sizes: &Sizes, last_rep: usize) -> anyhow::Result<f64> {
    let dav = Dav::new(target, LARGE_TIMEOUT)?;
    let started = Instant::now();
    dav.get_counted(&big_path(last_rep), sizes.big_bytes)?;
    Ok(megabytes_per_s(sizes.big_bytes, started.elapsed()))
}

fn big_path(rep: usize) -> String {
    format!("{BIG_FOLDER}big-{rep}.bin")
}

/// W3: PUTs the small files into a new folder with several connections; files/s.
pub fn put_small(target: &Target, sizes: &Sizes, rep: usize) -> anyhow::Result<f64> {
    let folder = small_folder(rep);
    let clients = connect(target, sizes.connections)?;
    clients[0].mkcol(&folder)?;

    let started = Instant::now();
    parallel(&clients, sizes.small_files, |dav, index| {
        let body = small_body(sizes.small_bytes, index as u64);
        dav.put_bytes(&format!("{folder}f{index:05}.bin"), body)
    })?;
    Ok(sizes.small_files as f64 / started.elapsed().as_secs_f64())
}

/// W4: GETs the small files of W3's folder `rep` with several connections; files/s.
pub fn get_small(target: &Target, sizes: &Sizes, rep: usize) -> anyhow::Result<f64> {
    let folder = small_folder(rep);
    let clients = connect(target, sizes.connections)?;
    let len = sizes.small_bytes as u64;

    let started = Instant::now();
    parallel(&clients, sizes.small_files, |dav, index| {
        dav.get_counted(&format!("{folder}f{index:05}.bin"), len)
    })?;
    Ok(sizes.small_files as f64 / started.elapsed().as_secs_f64())
}

fn small_folder(rep: usize) -> String {
    format!("w3-{rep}/")
}

/// W5 setup: fills the listed folder with concurrent PUTs.
pub fn fill_listing(target: &Target, sizes: &Sizes) -> anyhow::Result<()> {
    let clients = connect(target, sizes.connections)?;
    clients[0].mkcol(LISTING_FOLDER)?;
    parallel(&clients, sizes.listing_entries, |dav, index| {
        let body = small_body(LISTING_ENTRY_BYTES, index as u64);
        dav.put_bytes(&format!("{LISTING_FOLDER}e{index:05}.txt"), body)
    })
}

/// W5: one PROPFIND Depth 1 on the filled folder; returns milliseconds.
pub fn propfind_listing(target: &Target, sizes: &Sizes) -> anyhow::Result<f64> {
    let dav = Dav::new(target, LARGE_TIMEOUT)?;
    let started = Instant::now();
    let responses = dav.propfind(LISTING_FOLDER)?;
    let elapsed = started.elapsed();

    let expected = sizes.listing_entries + 1;
    anyhow::ensure!(
        responses == expected,
        "PROPFIND {}: {responses} responses, expected {expected}",
        dav.url(LISTING_FOLDER)
    );
    Ok(elapsed.as_secs_f64() * 1000.0)
}

/// One client (one connection) per element.
pub fn connect(target: &Target, count: usize) -> anyhow::Result<Vec<Dav>> {
    (0..count.max(1))
        .map(|_| Dav::new(target, SMALL_TIMEOUT))
        .collect()
}

/// Runs `job(client, index)` for every index below `count`, spread over the clients,
/// one thread each. Stops at the first error, which it returns, or at the deadline.
pub fn parallel<F>(clients: &[Dav], count: usize, job: F) -> anyhow::Result<()>
where
    F: Fn(&Dav, usize) -> anyhow::Result<()> + Sync,
{
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + MANY_FILES_DEADLINE;
    let worker = |dav: &Dav| -> anyhow::Result<()> {
        while !stop.load(Ordering::Relaxed) {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= count {
                break;
            }
            let outcome = if Instant::now() > deadline {
                Err(anyhow::anyhow!("not done within {MANY_FILES_DEADLINE:?}"))
            } else {
                job(dav, index)
            };
            if outcome.is_err() {
                stop.store(true, Ordering::Relaxed);
                return outcome;
            }
        }
        Ok(())
    };
    thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .map(|dav| scope.spawn(|| worker(dav)))
            .collect();
        handles.into_iter().try_for_each(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
        })
    })
}

/// Decimal megabytes per second, as `dd` reports them.
pub fn megabytes_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
}
