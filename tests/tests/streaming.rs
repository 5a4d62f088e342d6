//! Large transfers stream: the server's memory does not grow with the size of a file.

use std::io::Read;

use ruche_e2e::TestServer;
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;

/// A reader of `len` pseudo-random bytes, so that nothing is held in the test's memory.
struct Pattern {
    left: u64,
    state: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for byte in &mut buf[..n] {
            self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1);
            *byte = (self.state >> 56) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn pattern_hash(len: u64) -> Vec<u8> {
    let mut hasher = Sha256::new();
    let mut reader = Pattern {
        left: len,
        state: 7,
    };
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            return hasher.finalize().to_vec();
        }
        hasher.update(&buf[..n]);
    }
}

fn put_pattern(server: &TestServer, path: &str, len: u64) {
    let body = reqwest::blocking::Body::sized(
        Pattern {
            left: len,
            state: 7,
        },
        len,
    );
    let response = server.dav("PUT", path).body(body).send().unwrap();
    assert!(
        response.status().is_success(),
        "PUT {path}: {}",
        response.status()
    );
}

fn get_hash(server: &TestServer, path: &str) -> (u64, Vec<u8>) {
    let mut response = server.dav("GET", path).send().unwrap();
    assert!(response.status().is_success());
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    let mut len = 0;
    loop {
        let n = response.read(&mut buf).unwrap();
        if n == 0 {
            return (len, hasher.finalize().to_vec());
        }
        len += n as u64;
        hasher.update(&buf[..n]);
    }
}

#[test]
fn a_gigabyte_goes_through_without_growing_the_server() {
    let server = TestServer::start();
    // Warm up every path once: buffers, threads and pools reach their working size.
    put_pattern(&server, "warm.bin", 64 * MIB);
    get_hash(&server, "warm.bin");
    let before = server.peak_rss_kib();

    let len = 1024 * MIB;
    put_pattern(&server, "big.bin", len);
    let after_put = server.peak_rss_kib();
    let (got, hash) = get_hash(&server, "big.bin");
    let after_get = server.peak_rss_kib();

    assert_eq!(got, len);
    assert_eq!(hash, pattern_hash(len), "the content came back intact");
    println!(
        "peak RSS: {before} KiB warmed up, {after_put} KiB after PUT, {after_get} KiB after GET"
    );
    assert!(
        after_put - before < 16 * 1024,
        "PUT grew the server by {} KiB",
        after_put - before
    );
    assert!(
        after_get - before < 16 * 1024,
        "GET grew the server by {} KiB",
        after_get - before
    );
}
