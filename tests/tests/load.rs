//! A bounded load on loopback: 200 WebDAV clients mixing listings, uploads, downloads,
//! moves and deletions for a minute. No answer may be a server error, no acknowledged write
//! may be lost, and the server's memory stays bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, RngCore};
use ruche_e2e::TestServer;

const CLIENTS: usize = 200;
const DURATION: Duration = Duration::from_secs(60);
/// Ceiling on the server's peak resident memory under this load.
const MEMORY_LIMIT_KIB: u64 = 512 * 1024;

#[derive(Default)]
struct Tally {
    operations: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

fn timed(tally: &Tally, request: reqwest::blocking::RequestBuilder) -> reqwest::blocking::Response {
    let started = Instant::now();
    let response = request
        .timeout(Duration::from_secs(60))
        .send()
        .expect("the server answers");
    let elapsed = started.elapsed().as_micros() as u64;
    tally.operations.fetch_add(1, Ordering::Relaxed);
    tally.latencies_us.lock().unwrap().push(elapsed);
    assert!(
        !response.status().is_server_error(),
        "server error {} under load",
        response.status()
    );
    response
}

/// One client: works in its own folder and checks every file it wrote reads back intact.
fn client(server: &TestServer, tally: &Tally, id: usize, deadline: Instant) {
    let mut rng = rand::rng();
    let folder = format!("c{id}");
    let mut round = 0u64;
    while Instant::now() < deadline {
        round += 1;
        let name = format!("{folder}/f{round}.bin");
        let mut body = vec![0u8; rng.random_range(100..20_000)];
        rng.fill_bytes(&mut body);
        assert!(timed(tally, server.dav("PUT", &name).body(body.clone()))
            .status()
            .is_success());
        let listing = timed(tally, server.dav("PROPFIND", &folder).header("Depth", "1"));
        assert_eq!(listing.status().as_u16(), 207);
        let moved = format!("{folder}/m{round}.bin");
        let destination = format!("{}{moved}", server.dav_url());
        let response = timed(
            tally,
            server.dav("MOVE", &name).header("Destination", destination),
        );
        assert!(
            response.status().is_success(),
            "MOVE: {}",
            response.status()
        );
        let read = timed(tally, server.dav("GET", &moved))
            .bytes()
            .expect("a body");
        assert!(
            read.as_ref() == body.as_slice(),
            "{moved}: acknowledged write lost"
        );
        if round.is_multiple_of(2) {
            assert!(timed(tally, server.dav("DELETE", &moved))
                .status()
                .is_success());
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(0)
}

#[test]
fn two_hundred_clients_for_a_minute() {
    let server = TestServer::start();
    for id in 0..CLIENTS {
        server.mkcol(&format!("c{id}"));
    }
    let tally = Tally::default();
    let deadline = Instant::now() + DURATION;
    thread::scope(|scope| {
        for id in 0..CLIENTS {
            let (server, tally) = (&server, &tally);
            scope.spawn(move || client(server, tally, id, deadline));
        }
    });

    let operations = tally.operations.load(Ordering::Relaxed);
    let mut latencies = tally.latencies_us.into_inner().unwrap();
    latencies.sort_unstable();
    let peak = server.peak_rss_kib();
    println!(
        "{CLIENTS} clients, {:?}: {operations} operations, {:.0}/s, p50 {} ms, p99 {} ms, \
         peak RSS {} MiB",
        DURATION,
        operations as f64 / DURATION.as_secs_f64(),
        percentile(&latencies, 0.5) / 1000,
        percentile(&latencies, 0.99) / 1000,
        peak / 1024
    );
    assert!(
        operations > CLIENTS as u64 * 5,
        "too little work done: {operations}"
    );
    assert!(peak < MEMORY_LIMIT_KIB, "peak memory {peak} KiB under load");
}
