//! Slow and idle clients cannot hold the server: stalled connections are closed, and the
//! number of connections served at once is bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ruche_e2e::TestServer;

fn connect(server: &TestServer) -> TcpStream {
    let address = server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; returns how long that took.
fn time_until_closed(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    started.elapsed()
}

#[test]
fn a_client_that_stops_midway_is_disconnected() {
    let server = TestServer::start_with_args(&["--idle-timeout", "2"]);

    let mut stalled_body = connect(&server);
    let head = format!(
        "PUT /dav/slow.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\n\
         Content-Length: 1000000\r\n\r\npartial",
        basic(&server)
    );
    stalled_body.write_all(head.as_bytes()).unwrap();
    let mut idle = connect(&server);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();

    assert!(time_until_closed(stalled_body) < Duration::from_secs(10));
    assert!(time_until_closed(idle) < Duration::from_secs(10));
    assert_eq!(
        server.get_bytes("slow.bin"),
        None,
        "the cut upload left nothing"
    );
}

#[test]
fn connections_beyond_the_limit_wait_their_turn() {
    let server = TestServer::start_with_args(&["--max-connections", "2", "--idle-timeout", "3"]);
    // Two silent connections take both places (the harness's own idle connection, if
    // any, only makes the queue longer).
    let held: Vec<TcpStream> = (0..2).map(|_| connect(&server)).collect();

    let started = Instant::now();
    let mut late = connect(&server);
    late.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    late.read_to_string(&mut answer).unwrap();
    let waited = started.elapsed();
    drop(held);

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        waited >= Duration::from_secs(2),
        "served at once despite the limit: {waited:?}"
    );
}

fn basic(server: &TestServer) -> String {
    use base64::Engine;
    let credentials = format!("{}:{}", server.user(), server.password());
    base64::engine::general_purpose::STANDARD.encode(credentials)
}
