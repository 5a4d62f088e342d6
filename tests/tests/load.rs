//! A bounded load on loopback: 200 WebDAV clients mixing listings, uploads, downloads,
//! moves and deletions for a minute, beside 100 editors typing in ten live documents. No
//! answer may be a server error, no acknowledged write or edit may be lost, and the
//! server's memory stays bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, RngCore};
use ruche_e2e::{access_token, CoEditor, TestServer};

const CLIENTS: usize = 200;
const EDITORS: usize = 100;
const DOCUMENTS: usize = 10;
/// How often each editor types: a brisk typist, in bursts of one word.
const KEYSTROKE_PAUSE: Duration = Duration::from_millis(100);
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

/// One editor: types a word every so often and keeps up with the others' edits; returns
/// the words it typed.
fn editor(server: &TestServer, file_id: &str, token: &str, id: usize, deadline: Instant) -> usize {
    let mut editor = CoEditor::connect(server, file_id, token)
        .unwrap_or_else(|e| panic!("editor {id} cannot join under load: {e}"));
    let mut typed = 0;
    while Instant::now() < deadline {
        typed += 1;
        editor
            .append(&format!("[e{id}.{typed}]"))
            .unwrap_or_else(|e| panic!("editor {id} was cut off: {e}"));
        editor
            .listen(KEYSTROKE_PAUSE)
            .unwrap_or_else(|e| panic!("editor {id} was cut off: {e}"));
    }
    editor.close();
    typed
}

/// Whether `text` holds every word each editor of the document typed.
fn missing_words(text: &str, typed: &[(usize, usize)]) -> Vec<String> {
    typed
        .iter()
        .flat_map(|&(id, count)| (1..=count).map(move |n| format!("[e{id}.{n}]")))
        .filter(|word| !text.contains(word.as_str()))
        .collect()
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
    let documents: Vec<String> = (0..DOCUMENTS)
        .map(|d| {
            let path = format!("doc{d}.md");
            server.put(&path, format!("Document {d}\n"));
            server.file_id(&path)
        })
        .collect();
    let token = access_token(&server);
    let tally = Tally::default();
    let deadline = Instant::now() + DURATION;
    let typed: Vec<(usize, usize)> = thread::scope(|scope| {
        for id in 0..CLIENTS {
            let (server, tally) = (&server, &tally);
            scope.spawn(move || client(server, tally, id, deadline));
        }
        let editors: Vec<_> = (0..EDITORS)
            .map(|id| {
                let (server, file_id, token) = (&server, &documents[id % DOCUMENTS], &token);
                scope.spawn(move || (id, editor(server, file_id, token, id, deadline)))
            })
            .collect();
        editors
            .into_iter()
            .map(|e| e.join().expect("an editor finished"))
            .collect()
    });

    // Every word typed reached the document (the last ones may still be on their way).
    for (d, file_id) in documents.iter().enumerate() {
        let mine: Vec<(usize, usize)> = typed
            .iter()
            .copied()
            .filter(|(id, _)| id % DOCUMENTS == d)
            .collect();
        let give_up = Instant::now() + Duration::from_secs(20);
        let missing = loop {
            let reader = CoEditor::connect(&server, file_id, &token).expect("the document opens");
            let missing = missing_words(&reader.text(), &mine);
            reader.close();
            if missing.is_empty() || Instant::now() > give_up {
                break missing;
            }
            thread::sleep(Duration::from_millis(500));
        };
        assert!(
            missing.is_empty(),
            "doc{d}: {} typed words lost, such as {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    let edits: usize = typed.iter().map(|(_, n)| n).sum();

    let operations = tally.operations.load(Ordering::Relaxed);
    let mut latencies = tally.latencies_us.into_inner().unwrap();
    latencies.sort_unstable();
    let peak = server.peak_rss_kib();
    println!(
        "{CLIENTS} clients, {:?}: {operations} operations, {:.0}/s, p50 {} ms, p99 {} ms; \
         {EDITORS} editors in {DOCUMENTS} documents: {edits} edits, {:.0}/s, none lost; \
         peak RSS {} MiB",
        DURATION,
        operations as f64 / DURATION.as_secs_f64(),
        percentile(&latencies, 0.5) / 1000,
        percentile(&latencies, 0.99) / 1000,
        edits as f64 / DURATION.as_secs_f64(),
        peak / 1024
    );
    assert!(
        operations > CLIENTS as u64 * 5,
        "too little work done: {operations}"
    );
    assert!(peak < MEMORY_LIMIT_KIB, "peak memory {peak} KiB under load");
}
