//! Writers upload and overwrite files while the server is killed with SIGKILL at a
//! random moment; after each restart every acknowledged upload must be there, whole,
//! and nothing may hold content that was never sent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, RngCore};
use reqwest::blocking::Client;
use ruche_e2e::{encode_path, TestServer};
use sha2::{Digest, Sha256};

const ROUNDS: usize = 5;
const WRITERS: usize = 4;
/// Each writer owns this many paths and overwrites them, so the order of the
/// uploads to one path is known.
const PATHS_PER_WRITER: usize = 10;
const SMALL_SIZES: std::ops::RangeInclusive<usize> = 700..=1_400;
const LARGE_SIZES: std::ops::RangeInclusive<usize> = (2 << 20)..=(4 << 20);
/// When, after the writers start, the server is killed.
const KILL_AFTER_MS: std::ops::Range<u64> = 300..3_000;

/// What the test knows about one path: every content sent to it, in order, and
/// which of them the server may still hold.
#[derive(Debug, Default)]
struct PathHistory {
    /// SHA-256 of each content sent, in sending order.
    sent: Vec<String>,
    /// Contents before this index are older than one the server acknowledged (or
    /// than one it was seen holding): they must never come back.
    floor: usize,
    /// Whether an acknowledged upload means the file must exist.
    must_exist: bool,
}

impl PathHistory {
    /// Checks what the server holds now and moves the floor to it.
    fn check(&mut self, path: &str, held: Option<&str>) -> Result<(), String> {
        let Some(held) = held else {
            if self.must_exist {
                return Err(format!(
                    "{path}: acknowledged upload lost, the file is gone"
                ));
            }
            self.floor = self.sent.len();
            return Ok(());
        };
        match self.sent.iter().rposition(|sent| sent == held) {
            Some(index) if index >= self.floor => {
                self.floor = index;
                self.must_exist = true;
                Ok(())
            }
            Some(index) => Err(format!(
                "{path}: rolled back to upload #{index}, older than acknowledged #{}",
                self.floor
            )),
            None => Err(format!(
                "{path}: holds content that was never sent (sha256 {held})"
            )),
        }
    }
}

type Histories = Arc<Mutex<BTreeMap<String, PathHistory>>>;

/// How a writer's round ended.
struct WriterReport {
    acknowledged: usize,
    /// When the first failed request failed; it must be after the kill.
    failed_at: Option<Instant>,
    failure: Option<String>,
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn random_content(rng: &mut impl RngCore) -> Vec<u8> {
    let size = if rng.random_bool(0.25) {
        rng.random_range(LARGE_SIZES)
    } else {
        rng.random_range(SMALL_SIZES)
    };
    let mut content = vec![0; size];
    rng.fill_bytes(&mut content);
    content
}

/// Uploads random contents to the writer's own paths until a request fails (the
/// server died) or `stop` is set.
fn write_until_killed(
    writer: usize,
    server: (String, String, String),
    histories: Histories,
    stop: Arc<AtomicBool>,
) -> WriterReport {
    let (dav_url, user, password) = server;
    let client = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut rng = rand::rng();
    let mut report = WriterReport {
        acknowledged: 0,
        failed_at: None,
        failure: None,
    };

    while !stop.load(Ordering::SeqCst) {
        let path = format!(
            "writer-{writer}/file-{}.bin",
            rng.random_range(0..PATHS_PER_WRITER)
        );
        let content = random_content(&mut rng);
        let index = {
            let mut histories = histories.lock().unwrap();
            let history = histories.entry(path.clone()).or_default();
            history.sent.push(sha256(&content));
            history.sent.len() - 1
        };

        let url = format!("{dav_url}{}", encode_path(&path));
        match client
            .put(url)
            .basic_auth(&user, Some(&password))
            .body(content)
            .send()
        {
            Ok(response) if response.status().is_success() => {
                let mut histories = histories.lock().unwrap();
                let history = histories.get_mut(&path).unwrap();
                history.floor = index;
                history.must_exist = true;
                report.acknowledged += 1;
            }
            Ok(response) => {
                report.failure = Some(format!("PUT {path} answered {}", response.status()));
                report.failed_at = Some(Instant::now());
                break;
            }
            Err(err) => {
                report.failure = Some(format!("PUT {path}: {err}"));
                report.failed_at = Some(Instant::now());
                break;
            }
        }
    }
    report
}

/// Runs the writers, kills the server at a random moment, and returns when every
/// writer has stopped; fails if a writer failed before the kill.
fn write_and_kill(server: &mut TestServer, histories: &Histories, round: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let target = (
                server.dav_url(),
                server.user().to_owned(),
                server.password().to_owned(),
            );
            let (histories, stop) = (histories.clone(), stop.clone());
            thread::spawn(move || write_until_killed(writer, target, histories, stop))
        })
        .collect();

    // Not a wait for the server: this is the random moment of the crash.
    thread::sleep(Duration::from_millis(
        rand::rng().random_range(KILL_AFTER_MS),
    ));
    let killed_at = Instant::now();
    server.crash();
    stop.store(true, Ordering::SeqCst);

    let mut acknowledged = 0;
    for writer in writers {
        let report = writer.join().expect("a writer thread panicked");
        acknowledged += report.acknowledged;
        if let (Some(failed_at), Some(failure)) = (report.failed_at, report.failure) {
            assert!(
                failed_at >= killed_at,
                "round {round}: before the kill, {failure}"
            );
        }
    }
    println!("round {round}: {acknowledged} uploads acknowledged before SIGKILL");
}

/// Checks every path ever written, then that the server holds no other file.
fn verify(server: &TestServer, histories: &Histories, round: usize) {
    let mut problems = Vec::new();
    let mut histories = histories.lock().unwrap();
    for (path, history) in histories.iter_mut() {
        let held = server.get_bytes(path).map(|content| sha256(&content));
        if let Err(problem) = history.check(path, held.as_deref()) {
            problems.push(problem);
        }
    }

    for writer in 0..WRITERS {
        let folder = format!("writer-{writer}/");
        for entry in server
            .propfind(&folder, "1", &[])
            .iter()
            .filter(|e| !e.is_collection())
        {
            let (_, relative) = entry
                .href
                .split_once("/dav/")
                .expect("hrefs are below /dav/");
            if !histories.contains_key(relative) {
                problems.push(format!("{relative}: a file that no writer created"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "after the crash of round {round}:\n{}",
        problems.join("\n")
    );
}

#[test]
fn acknowledged_uploads_survive_sigkill_whole() {
    let mut server = TestServer::start();
    for writer in 0..WRITERS {
        server.mkcol(&format!("writer-{writer}"));
    }
    let histories: Histories = Arc::default();

    for round in 1..=ROUNDS {
        write_and_kill(&mut server, &histories, round);
        server.start_again();
        verify(&server, &histories, round);
    }

    let written = histories
        .lock()
        .unwrap()
        .values()
        .filter(|h| h.must_exist)
        .count();
    assert!(
        written > WRITERS,
        "too few uploads succeeded to test anything: {written}"
    );
}

#[cfg(test)]
mod history {
    use super::PathHistory;

    fn history(sent: &[&str], floor: usize, must_exist: bool) -> PathHistory {
        PathHistory {
            sent: sent.iter().map(|s| s.to_string()).collect(),
            floor,
            must_exist,
        }
    }

    #[test]
    fn accepts_the_acknowledged_content_or_a_later_one() {
        assert!(history(&["a", "b", "c"], 1, true)
            .check("p", Some("b"))
            .is_ok());
        assert!(history(&["a", "b", "c"], 1, true)
            .check("p", Some("c"))
            .is_ok());
        assert!(history(&["a"], 0, false).check("p", None).is_ok());
    }

    #[test]
    fn rejects_lost_rolled_back_or_foreign_content() {
        assert!(history(&["a", "b"], 1, true).check("p", None).is_err());
        assert!(history(&["a", "b"], 1, true).check("p", Some("a")).is_err());
        assert!(history(&["a", "b"], 0, false)
            .check("p", Some("torn"))
            .is_err());
    }
}
