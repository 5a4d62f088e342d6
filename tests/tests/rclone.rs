//! rclone (webdav backend, vendor `other`) copies a tree of a thousand files up and
//! down, checks it byte for byte, and keeps it in sync after local changes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use ruche_e2e::{require_tool, run_tool, IsolatedHome, TestServer};
use tempfile::TempDir;
use unicode_normalization::UnicodeNormalization;

const FILE_COUNT: usize = 1_000;
const BIG_FILE_SIZES: [usize; 3] = [2 << 20, 3 << 20, (4 << 20) + 12_345];
const SMALL_FILE_MAX: usize = 64 * 1024;
const RCLONE_TIMEOUT: Duration = Duration::from_secs(300);
const REMOTE: &str = "ruche:tree";

/// Folders of the tree, with spaces, accents in both Unicode forms, `#`, `%` and `&`.
const FOLDERS: [&str; 9] = [
    "",
    "docs",
    "docs/reports 2025",
    "photos/\u{e9}t\u{e9} nfc",
    "photos/e\u{301}te\u{301} nfd",
    "music/100% pure",
    "misc/#tags",
    "deep/a/b/c/d/e",
    "Caf\u{e9} & co",
];

/// File name patterns; `{}` becomes a number that keeps every name unique, even
/// once accents are normalised.
const NAMES: [&str; 7] = [
    "file {}.txt",
    "note with spaces {}.md",
    "caf\u{e9} nfc {}.txt",
    "re\u{301}sume\u{301} nfd {}.odt",
    "hash #{}.bin",
    "percent {}%.dat",
    "{}",
];

/// Relative path (with `/`) to content.
type Tree = BTreeMap<String, Vec<u8>>;

/// rclone with its own HOME, an empty config file, and the remote `ruche` defined
/// through environment variables only.
struct Rclone {
    program: PathBuf,
    home: IsolatedHome,
    remote_env: Vec<(&'static str, String)>,
}

impl Rclone {
    fn configured_for(server: &TestServer) -> Rclone {
        Rclone::with_vendor(server, "other", server.dav_url())
    }

    /// rclone as it talks to a Nextcloud server: modification times through `X-OC-Mtime`,
    /// SHA-1 hashes through `oc:checksums`.
    fn configured_for_nextcloud(server: &TestServer) -> Rclone {
        let url = format!(
            "{}/remote.php/dav/files/{}/",
            server.url().trim_end_matches('/'),
            server.user()
        );
        Rclone::with_vendor(server, "nextcloud", url)
    }

    fn with_vendor(server: &TestServer, vendor: &str, url: String) -> Rclone {
        let home = IsolatedHome::new();
        fs::write(home.path().join("rclone.conf"), "").unwrap();
        let mut rclone = Rclone {
            program: require_tool("rclone"),
            home,
            remote_env: Vec::new(),
        };

        let obscured = rclone.run_ok(&["obscure", server.password()]);
        rclone.remote_env = vec![
            ("RCLONE_CONFIG_RUCHE_TYPE", "webdav".to_owned()),
            ("RCLONE_CONFIG_RUCHE_URL", url),
            ("RCLONE_CONFIG_RUCHE_VENDOR", vendor.to_owned()),
            ("TZ", "UTC".to_owned()),
            ("RCLONE_CONFIG_RUCHE_USER", server.user().to_owned()),
            ("RCLONE_CONFIG_RUCHE_PASS", obscured.trim().to_owned()),
        ];
        rclone
    }

    /// Runs rclone and returns stdout and stderr together, failing on a non-zero exit.
    fn run_ok(&self, args: &[&str]) -> String {
        let config = self.home.path().join("rclone.conf");
        let mut command: Command = self.home.command(&self.program);
        command.args(args).arg("--config").arg(config).args([
            "--retries",
            "1",
            "--low-level-retries",
            "1",
            "--transfers",
            "4",
            "--checkers",
            "4",
        ]);
        command.envs(self.remote_env.iter().map(|(name, value)| (name, value)));

        let output = run_tool(&mut command, None, RCLONE_TIMEOUT);
        let transcript = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "rclone {} failed with {}:\n{}",
            args.join(" "),
            output.status,
            shortened(&transcript)
        );
        transcript
    }

    fn copy(&self, from: &str, to: &str) {
        self.run_ok(&["copy", from, to]);
    }

    fn sync(&self, from: &str, to: &str) {
        self.run_ok(&["sync", from, to]);
    }

    /// `rclone check --download` compares the content byte for byte (the server
    /// offers no hash rclone knows with vendor `other`).
    fn assert_no_differences(&self, local: &Path) {
        let transcript = self.run_ok(&["check", "--download", &local.to_string_lossy(), REMOTE]);
        assert!(
            transcript.contains("0 differences found"),
            "rclone check found differences:\n{transcript}"
        );
    }
}

/// The errors of a long rclone transcript: how many, the first few, and the end.
fn shortened(transcript: &str) -> String {
    const SHOWN: usize = 20;
    let errors: Vec<&str> = transcript
        .lines()
        .filter(|line| line.contains("ERROR"))
        .collect();
    let lines: Vec<&str> = transcript.lines().collect();
    let end = &lines[lines.len().saturating_sub(SHOWN)..];
    format!(
        "{} ERROR lines, the first {SHOWN}:\n{}\n--- end of the output ---\n{}",
        errors.len(),
        errors[..errors.len().min(SHOWN)].join("\n"),
        end.join("\n")
    )
}

/// Writes a tree of [`FILE_COUNT`] files below `root` and returns it.
fn write_tree(root: &Path, rng: &mut StdRng) -> Tree {
    let mut tree = Tree::new();
    for index in 0..FILE_COUNT - BIG_FILE_SIZES.len() {
        let folder = FOLDERS[index % FOLDERS.len()];
        let name = NAMES[index % NAMES.len()].replace("{}", &index.to_string());
        let size = rng.random_range(0..=SMALL_FILE_MAX);
        write_file(
            root,
            &mut tree,
            &join(folder, &name),
            random_bytes(rng, size),
        );
    }
    for (index, size) in BIG_FILE_SIZES.into_iter().enumerate() {
        write_file(
            root,
            &mut tree,
            &format!("big/large file {index}.bin"),
            random_bytes(rng, size),
        );
    }
    tree
}

/// Changes the local tree the way a user would between two syncs: edits (always
/// changing the size, since with vendor `other` rclone compares sizes only), deletions
/// and new files, some in a new folder.
fn change_tree(root: &Path, tree: &mut Tree, rng: &mut StdRng) {
    let paths: Vec<String> = tree.keys().cloned().collect();
    for path in paths.iter().step_by(29) {
        let new_size = tree[path].len() + rng.random_range(1..=4096);
        let mut content = tree[path].clone();
        content.resize(new_size, 0);
        rng.fill_bytes(&mut content[..new_size.min(512)]);
        write_file(root, tree, path, content);
    }
    for path in paths.iter().skip(7).step_by(37) {
        fs::remove_file(local_path(root, path)).unwrap();
        tree.remove(path);
    }
    for index in 0..40 {
        let folder = if index % 2 == 0 {
            "added later"
        } else {
            FOLDERS[index % FOLDERS.len()]
        };
        let name = format!("new {index} \u{e9}.txt");
        let size = rng.random_range(0..=SMALL_FILE_MAX);
        write_file(root, tree, &join(folder, &name), random_bytes(rng, size));
    }
}

fn write_file(root: &Path, tree: &mut Tree, path: &str, content: Vec<u8>) {
    let file = local_path(root, path);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, &content).unwrap();
    tree.insert(path.to_owned(), content);
}

fn local_path(root: &Path, path: &str) -> PathBuf {
    root.join(path)
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

fn random_bytes(rng: &mut StdRng, size: usize) -> Vec<u8> {
    let mut bytes = vec![0; size];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// Reads every file below `root`, keyed by its relative path.
fn read_tree(root: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .nfc()
                .collect();
            let previous = tree.insert(relative, fs::read(&path).unwrap());
            assert!(
                previous.is_none(),
                "two files share a name once normalised: {path:?}"
            );
        }
    }
    tree
}

/// The same tree keyed by names in NFC, so that a server that normalises names
/// still compares equal; fails if two names differ only in their normalisation.
fn normalized(tree: &Tree) -> Tree {
    let mut normalized = Tree::new();
    for (path, content) in tree {
        let previous = normalized.insert(path.nfc().collect(), content.clone());
        assert!(
            previous.is_none(),
            "two files share a name once normalised: {path:?}"
        );
    }
    normalized
}

/// Compares two trees, names in NFC, and fails with a short list of differences.
fn assert_same_tree(expected: &Tree, actual: &Tree, what: &str) {
    let (expected, actual) = (&normalized(expected), &normalized(actual));
    let missing: Vec<&String> = expected
        .keys()
        .filter(|p| !actual.contains_key(*p))
        .collect();
    let extra: Vec<&String> = actual
        .keys()
        .filter(|p| !expected.contains_key(*p))
        .collect();
    let different: Vec<&String> = expected
        .iter()
        .filter(|(path, content)| actual.get(*path).is_some_and(|other| other != *content))
        .map(|(path, _)| path)
        .collect();

    assert!(
        missing.is_empty() && extra.is_empty() && different.is_empty(),
        "{what}: {} missing, {} unexpected, {} with other content\nmissing: {:?}\n\
         unexpected: {:?}\ndifferent: {:?}",
        missing.len(),
        extra.len(),
        different.len(),
        &missing[..missing.len().min(10)],
        &extra[..extra.len().min(10)],
        &different[..different.len().min(10)],
    );
}

fn download(rclone: &Rclone) -> (TempDir, Tree) {
    let folder = tempfile::Builder::new()
        .prefix("rclone-down-")
        .tempdir()
        .unwrap();
    rclone.copy(REMOTE, &folder.path().to_string_lossy());
    let tree = read_tree(folder.path());
    (folder, tree)
}

fn seeded_rng() -> StdRng {
    let seed: u64 = rand::random();
    println!("random seed: {seed}");
    StdRng::seed_from_u64(seed)
}

#[test]
fn a_thousand_files_copy_up_and_down_byte_for_byte() {
    let server = TestServer::start();
    let rclone = Rclone::configured_for(&server);
    let mut rng = seeded_rng();
    let local = tempfile::Builder::new()
        .prefix("rclone-up-")
        .tempdir()
        .unwrap();
    let tree = write_tree(local.path(), &mut rng);

    rclone.copy(&local.path().to_string_lossy(), REMOTE);

    rclone.assert_no_differences(local.path());
    let (_folder, downloaded) = download(&rclone);
    assert_same_tree(&tree, &downloaded, "after rclone copy up and down");
}

#[test]
fn sync_carries_edits_deletions_and_additions() {
    let server = TestServer::start();
    let rclone = Rclone::configured_for(&server);
    let mut rng = seeded_rng();
    let local = tempfile::Builder::new()
        .prefix("rclone-up-")
        .tempdir()
        .unwrap();
    let mut tree = write_tree(local.path(), &mut rng);
    let before = tree.clone();
    rclone.copy(&local.path().to_string_lossy(), REMOTE);

    change_tree(local.path(), &mut tree, &mut rng);
    rclone.sync(&local.path().to_string_lossy(), REMOTE);

    rclone.assert_no_differences(local.path());
    let (_folder, downloaded) = download(&rclone);
    assert_same_tree(&tree, &downloaded, "after rclone sync");
    for deleted in before.keys().filter(|path| !tree.contains_key(*path)) {
        let remote_path = format!("tree/{deleted}");
        assert_eq!(
            server.get_bytes(&remote_path),
            None,
            "{deleted} was deleted locally"
        );
    }
}

/// Modification times (whole seconds, UTC) of every file rclone lists at `target`.
fn mod_times(rclone: &Rclone, target: &str) -> BTreeMap<String, String> {
    let listing = rclone.run_ok(&["lsjson", "-R", "--files-only", target]);
    let start = listing.find('[').expect("a JSON listing");
    let end = listing.rfind(']').expect("a JSON listing");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&listing[start..=end]).unwrap();
    entries
        .iter()
        .map(|e| {
            let path = e["Path"].as_str().unwrap().nfc().collect();
            let time = e["ModTime"].as_str().unwrap();
            (path, time.get(..19).unwrap_or(time).to_owned())
        })
        .collect()
}

#[test]
fn nextcloud_vendor_bisyncs_with_times_and_checksums() {
    let server = TestServer::start();
    let rclone = Rclone::configured_for_nextcloud(&server);
    let mut rng = seeded_rng();
    let local = tempfile::Builder::new()
        .prefix("rclone-bisync-")
        .tempdir()
        .unwrap();
    // The drive stores names in NFC; rclone 1.60's bisync compares names as bytes and
    // would see a local NFD name as another file, so this tree keeps to NFC names.
    let folders: Vec<&str> = FOLDERS
        .iter()
        .copied()
        .filter(|f| f.nfc().collect::<String>() == *f)
        .collect();
    let mut tree = Tree::new();
    for index in 0..60 {
        let folder = folders[index % folders.len()];
        let name = format!("fichier {index}.txt");
        let size = rng.random_range(0..=SMALL_FILE_MAX);
        write_file(
            local.path(),
            &mut tree,
            &join(folder, &name),
            random_bytes(&mut rng, size),
        );
        // Times in the past, whole seconds, different for every file.
        let when =
            std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000 + index as u64 * 86_461);
        fs::File::options()
            .write(true)
            .open(local_path(local.path(), &join(folder, &name)))
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    let local_arg = local.path().to_string_lossy().into_owned();
    let remote = "ruche:bisync";
    rclone.run_ok(&["mkdir", remote]);
    rclone.run_ok(&["bisync", &local_arg, remote, "--resync"]);

    // Times survive the trip to the second, and hashes are compared, not downloads.
    assert_eq!(mod_times(&rclone, &local_arg), mod_times(&rclone, remote));
    let check = rclone.run_ok(&["check", &local_arg, remote]);
    assert!(check.contains("0 differences found"), "{check}");
    assert!(
        !check.contains("No common hash"),
        "no hash compared:\n{check}"
    );

    // A change on each side, a deletion on the server and a new local file.
    let paths: Vec<String> = tree.keys().cloned().collect();
    let (edited_here, edited_there, deleted_there) = (&paths[3], &paths[11], &paths[17]);
    write_file(
        local.path(),
        &mut tree,
        edited_here,
        b"edited on the workstation".to_vec(),
    );
    write_file(
        local.path(),
        &mut tree,
        "nouveau/ajout.txt",
        b"added here".to_vec(),
    );
    server.put(
        &format!("bisync/{edited_there}"),
        b"edited on the server".to_vec(),
    );
    tree.insert(edited_there.clone(), b"edited on the server".to_vec());
    let deleted = server
        .dav("DELETE", &format!("bisync/{deleted_there}"))
        .send()
        .unwrap();
    assert!(deleted.status().is_success());
    tree.remove(deleted_there);

    rclone.run_ok(&["bisync", &local_arg, remote]);
    assert_same_tree(
        &tree,
        &read_tree(local.path()),
        "the workstation after bisync",
    );
    let (_folder, downloaded) = {
        let folder = tempfile::Builder::new()
            .prefix("rclone-down-")
            .tempdir()
            .unwrap();
        rclone.copy(remote, &folder.path().to_string_lossy());
        let tree = read_tree(folder.path());
        (folder, tree)
    };
    assert_same_tree(&tree, &downloaded, "the server after bisync");
    let check = rclone.run_ok(&["check", &local_arg, remote]);
    assert!(check.contains("0 differences found"), "{check}");
}
