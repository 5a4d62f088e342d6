//! A mix of PUT, MOVE, COPY, DELETE, LOCK and co-editing while the server is killed with
//! SIGKILL, fifty times: after every kill the data folder passes `ruche fsck`, and after
//! every restart each path holds what an acknowledged operation left there, or what an
//! operation in flight at the kill would have left, and the live document holds every edit
//! that reached another editor (the server stores an edit before it passes it on).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, RngCore};
use ruche_e2e::{access_token, CoEditor, TestServer};
use sha2::{Digest, Sha256};

const ROUNDS: usize = 50;
const WORKERS: usize = 3;
const NAMES: usize = 6;

/// What a path may hold: the SHA-256 of a content, or nothing.
type State = Option<String>;

/// For each path, every state it may be in: one after an acknowledged operation, more
/// while an operation that touched it is unanswered.
#[derive(Default)]
struct Model {
    paths: BTreeMap<String, BTreeSet<State>>,
    /// What was sent that touched each path, and how it was answered, for failure reports.
    history: BTreeMap<String, Vec<String>>,
}

impl Model {
    fn possible(&self, path: &str) -> BTreeSet<State> {
        self.paths
            .get(path)
            .cloned()
            .unwrap_or_else(|| BTreeSet::from([None]))
    }

    /// The only state a path can be in, when it is certain.
    fn certain(&self, path: &str) -> Option<State> {
        let states = self.possible(path);
        (states.len() == 1).then(|| states.into_iter().next().unwrap_or(None))
    }

    /// Adds a state that an operation about to be sent may leave at `path`.
    fn expect(&mut self, path: &str, state: State) {
        let mut states = self.possible(path);
        states.insert(state);
        self.paths.insert(path.to_owned(), states);
    }

    fn settle(&mut self, path: &str, state: State) {
        self.paths.insert(path.to_owned(), BTreeSet::from([state]));
    }

    fn record(&mut self, path: &str, line: String) {
        let lines = self.history.entry(path.to_owned()).or_default();
        lines.push(line);
        if lines.len() > 12 {
            lines.remove(0);
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

enum Op {
    Put(String, Vec<u8>),
    Move(String, String),
    Copy(String, String),
    Delete(String),
    Lock(String),
}

/// Picks an operation whose outcome the model can predict (its paths are certain).
fn pick(
    rng: &mut impl RngCore,
    model: &Model,
    worker: usize,
) -> Option<(Op, Vec<(String, State)>)> {
    let path = |i: usize| format!("w{worker}/f{i}");
    let a = path(rng.random_range(0..NAMES));
    let b = path(rng.random_range(0..NAMES));
    // Both paths must be certain, or the outcome could not be predicted.
    let state_a = model.certain(&a)?;
    model.certain(&b)?;
    let op = match (rng.random_range(0..10), &state_a) {
        (0..=4, _) | (_, None) => {
            let size = if rng.random_bool(0.2) {
                rng.random_range(70_000..300_000)
            } else {
                rng.random_range(1..4_000)
            };
            let mut body = vec![0u8; size];
            rng.fill_bytes(&mut body);
            let hash = sha256(&body);
            return Some((Op::Put(a.clone(), body), vec![(a, Some(hash))]));
        }
        (5..=6, Some(_)) if a != b => Op::Move(a.clone(), b.clone()),
        (7, Some(_)) if a != b => Op::Copy(a.clone(), b.clone()),
        (8, Some(_)) => Op::Delete(a.clone()),
        _ => Op::Lock(a.clone()),
    };
    let effects = match &op {
        Op::Move(..) => vec![(a, None), (b, state_a)],
        Op::Copy(..) => vec![(b, state_a)],
        Op::Delete(_) => vec![(a, None)],
        _ => Vec::new(),
    };
    Some((op, effects))
}

impl Op {
    fn describe(&self) -> String {
        match self {
            Op::Put(path, body) => format!("PUT {path} {}", &sha256(body)[..8]),
            Op::Move(from, to) => format!("MOVE {from} -> {to}"),
            Op::Copy(from, to) => format!("COPY {from} -> {to}"),
            Op::Delete(path) => format!("DELETE {path}"),
            Op::Lock(path) => format!("LOCK {path}"),
        }
    }

    fn paths(&self) -> Vec<&str> {
        match self {
            Op::Put(path, _) | Op::Delete(path) | Op::Lock(path) => vec![path],
            Op::Move(from, to) | Op::Copy(from, to) => vec![from, to],
        }
    }
}

/// Sends `op` and returns its status, or `None` when no answer came.
fn send(server: &TestServer, op: &Op) -> Option<u16> {
    let destination = |to: &str| format!("{}{to}", server.dav_url());
    let request = match op {
        Op::Put(path, body) => server.dav("PUT", path).body(body.clone()),
        Op::Move(from, to) => server.dav("MOVE", from).header("Destination", destination(to)),
        Op::Copy(from, to) => server.dav("COPY", from).header("Destination", destination(to)),
        Op::Delete(path) => server.dav("DELETE", path),
        Op::Lock(path) => server
            .dav("LOCK", path)
            .header("Timeout", "Second-1")
            .body(r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#),
    };
    request
        .timeout(Duration::from_secs(20))
        .send()
        .ok()
        .map(|r| r.status().as_u16())
}

/// Counts acknowledged operations, to show that the kills interrupted real work.
static ACKNOWLEDGED: AtomicUsize = AtomicUsize::new(0);

fn work_until(
    server: &TestServer,
    model: &Mutex<Model>,
    worker: usize,
    round: usize,
    deadline: Instant,
) {
    let mut rng = rand::rng();
    while Instant::now() < deadline {
        let picked = pick(&mut rng, &model.lock().unwrap(), worker);
        let Some((op, effects)) = picked else {
            continue;
        };
        for (path, state) in &effects {
            model.lock().unwrap().expect(path, state.clone());
        }
        let status = send(server, &op);
        let mut model = model.lock().unwrap();
        let line = format!("round {round}: {} -> {status:?}", op.describe());
        for path in op.paths() {
            model.record(path, line.clone());
        }
        // 207 reports a failure inside: only a plain success is an acknowledgement.
        if !status.is_some_and(|s| (200..=204).contains(&s)) {
            return;
        }
        ACKNOWLEDGED.fetch_add(1, Ordering::Relaxed);
        for (path, state) in effects {
            model.settle(&path, state);
        }
    }
}

/// The document edited live during the kills.
const DOCUMENT: &str = "notes.md";

/// Where the co-editors connect.
struct LiveDocument {
    file_id: String,
    token: String,
    /// Every edit another editor received: stored, so never lost.
    acknowledged: Mutex<BTreeSet<String>>,
}

/// The edits a text holds, each written as `[round.n]`.
fn edits_in(text: &str) -> impl Iterator<Item = &str> {
    text.split('[')
        .skip(1)
        .filter_map(|rest| rest.split_once(']').map(|(edit, _)| edit))
}

/// One editor types while another watches, until the kill cuts them off.
fn coedit_until(server: &TestServer, live: &LiveDocument, round: usize, deadline: Instant) {
    let connect = || CoEditor::connect(server, &live.file_id, &live.token);
    let (Ok(mut writer), Ok(mut watcher)) = (connect(), connect()) else {
        return;
    };
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        if writer.append(&format!("[{round}.{n}]")).is_err()
            || watcher.listen(Duration::from_millis(2)).is_err()
        {
            break;
        }
    }
    let text = watcher.text();
    let mut acknowledged = live.acknowledged.lock().unwrap();
    acknowledged.extend(edits_in(&text).map(str::to_owned));
}

fn verify_document(server: &TestServer, live: &LiveDocument, round: usize) {
    let reader = CoEditor::connect(server, &live.file_id, &live.token)
        .unwrap_or_else(|e| panic!("round {round}: the document does not open: {e}"));
    let text = reader.text();
    let held: BTreeSet<&str> = edits_in(&text).collect();
    let acknowledged = live.acknowledged.lock().unwrap();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|edit| !held.contains(edit.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "round {round}: edits another editor had received are lost: {lost:?}"
    );
    reader.close();
}

fn fsck_is_clean(server: &TestServer) {
    let output = server.cli(&["fsck"], None);
    assert!(
        output.status.success(),
        "fsck after a kill:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn verify(server: &TestServer, model: &Mutex<Model>, round: usize) {
    let mut model = model.lock().unwrap();
    let paths: Vec<String> = model.paths.keys().cloned().collect();
    for path in paths {
        let held = server.get_bytes(&path).map(|b| sha256(&b));
        let possible = model.possible(&path);
        assert!(
            possible.contains(&held),
            "round {round}: {path} holds {held:?}, expected one of {possible:?}; it saw:\n{}",
            model
                .history
                .get(&path)
                .map(|h| h.join("\n"))
                .unwrap_or_default()
        );
        model.settle(&path, held);
    }
}

#[test]
fn mixed_operations_survive_fifty_kills() {
    let mut server = TestServer::start();
    for worker in 0..WORKERS {
        server.mkcol(&format!("w{worker}"));
    }
    server.put(DOCUMENT, "Notes\n");
    let live = LiveDocument {
        file_id: server.file_id(DOCUMENT),
        token: access_token(&server),
        acknowledged: Mutex::new(BTreeSet::new()),
    };
    let model = Arc::new(Mutex::new(Model::default()));
    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        let run_for = Duration::from_millis(rng.random_range(150..900));
        let deadline = Instant::now() + run_for + Duration::from_secs(5);
        thread::scope(|scope| {
            for worker in 0..WORKERS {
                let (server, model) = (&server, &model);
                scope.spawn(move || work_until(server, model, worker, round, deadline));
            }
            let (server, live) = (&server, &live);
            scope.spawn(move || coedit_until(server, live, round, deadline));
            thread::sleep(run_for);
            let pid = server.pid().expect("the server runs").to_string();
            let killed = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status();
            assert!(killed.is_ok_and(|s| s.success()), "SIGKILL the server");
        });
        server.crash();
        fsck_is_clean(&server);
        server.start_again();
        verify(&server, &model, round);
        verify_document(&server, &live, round);
    }
    let acknowledged = ACKNOWLEDGED.load(Ordering::Relaxed);
    let edits = live.acknowledged.lock().unwrap().len();
    println!(
        "{ROUNDS} kills survived, {acknowledged} operations acknowledged, {edits} live edits kept"
    );
    assert!(edits > ROUNDS, "too few live edits between kills: {edits}");
    assert!(
        acknowledged > ROUNDS * 10,
        "too little work between kills: {acknowledged}"
    );
}
