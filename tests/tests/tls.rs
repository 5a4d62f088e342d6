//! HTTPS without a reverse proxy: the server serves TLS with the certificate it is given.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use ruche_e2e::{require_tool, ruche_bin, run_tool};

#[test]
fn the_drive_answers_over_https_with_the_given_certificate() {
    require_tool("openssl");
    require_tool("curl");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = run_tool(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        None,
        Duration::from_secs(30),
    );
    assert!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );

    let data = dir.path().join("data");
    let add = run_tool(
        Command::new(ruche_bin())
            .args(["user", "add", "tess", "--password-stdin", "--data"])
            .arg(&data),
        Some(b"tls-password\n"),
        Duration::from_secs(30),
    );
    assert!(add.status.success());
    let mut server = Command::new(ruche_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_default()
        .to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{line}");

    let fetch = |path: &str, method: &str| {
        run_tool(
            Command::new("curl")
                .args(["-s", "-X", method, "-H", "Depth: 0", "--cacert"])
                .arg(&cert)
                .args([
                    "-u",
                    "tess:tls-password",
                    "-w",
                    "%{http_code}",
                    "-o",
                    "/dev/null",
                ])
                .arg(format!("{url}{path}")),
            None,
            Duration::from_secs(30),
        )
    };
    let healthy = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        String::from_utf8_lossy(&fetch("/healthz", "GET").stdout) == "200"
    });
    let listing = fetch("/dav/", "PROPFIND");
    let _ = server.kill();
    let _ = server.wait();
    assert!(healthy, "the server never answered over HTTPS");
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout),
        "207",
        "PROPFIND /dav/ over HTTPS"
    );
}
