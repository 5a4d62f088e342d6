//! The physical limits of this machine, measured in the same run as the servers: a
//! drive's PUT can go no faster than durable disk writes and SHA-256, and its GET no
//! faster than loopback TCP. Each is measured on one core, as one request is served.

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::client::Pattern;
use crate::workloads::megabytes_per_s;

/// Size of each write, send or hash call.
const CHUNK: usize = 1 << 20;
/// Size of the buffer copied in memory (larger than any cache).
const COPY_BUFFER: usize = 64 << 20;

/// A limit of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Writing a file and fsyncing it, like `dd conv=fsync`.
    DiskFsync,
    /// SHA-256 with the `sha2` crate.
    Sha256,
    /// One TCP connection on 127.0.0.1.
    Loopback,
    /// Copying memory on one core.
    MemoryCopy,
}

impl Limit {
    /// Every limit, in the order they are reported.
    pub const ALL: [Limit; 4] = [
        Limit::DiskFsync,
        Limit::Sha256,
        Limit::Loopback,
        Limit::MemoryCopy,
    ];

    /// A short key for JSON.
    pub fn id(self) -> &'static str {
        match self {
            Limit::DiskFsync => "disk_write_fsync",
            Limit::Sha256 => "sha256",
            Limit::Loopback => "loopback_tcp",
            Limit::MemoryCopy => "memory_copy",
        }
    }

    /// What was measured, for the table.
    pub fn describe(self, bytes: &str, disk_bytes: &str) -> String {
        match self {
            Limit::DiskFsync => format!("disk write {disk_bytes} + fsync (temp folder)"),
            Limit::Sha256 => format!("SHA-256 of {bytes} (sha2 crate, one core)"),
            Limit::Loopback => format!("loopback TCP, {bytes} over one connection"),
            Limit::MemoryCopy => format!("memory copy of {bytes}, one core"),
        }
    }

    /// Measures the limit once, in MB/s. `disk_bytes` go to a file in `dir`; the other
    /// limits move `bytes`.
    pub fn measure(self, dir: &Path, disk_bytes: u64, bytes: u64) -> anyhow::Result<f64> {
        match self {
            Limit::DiskFsync => disk_write(dir, disk_bytes),
            Limit::Sha256 => Ok(sha256(bytes)),
            Limit::Loopback => loopback(bytes),
            Limit::MemoryCopy => Ok(memory_copy(bytes)),
        }
    }
}

/// Writes `bytes` of generated content to a new file in `dir` and fsyncs it; the
/// time includes the fsync, as with `dd conv=fsync`.
fn disk_write(dir: &Path, bytes: u64) -> anyhow::Result<f64> {
    let path = dir.join("ruche-bench-disk-limit.bin");
    let mut file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let chunk = generated(CHUNK);

    let started = Instant::now();
    let mut written = 0;
    while written < bytes {
        let len = chunk.len().min((bytes - written) as usize);
        file.write_all(&chunk[..len])
            .with_context(|| format!("writing {}", path.display()))?;
        written += len as u64;
    }
    file.sync_all()
        .with_context(|| format!("fsync of {}", path.display()))?;
    let rate = megabytes_per_s(bytes, started.elapsed());

    drop(file);
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(rate)
}

fn sha256(bytes: u64) -> f64 {
    let buffer = generated(COPY_BUFFER);
    let started = Instant::now();
    let mut hasher = Sha256::new();
    let mut hashed = 0;
    while hashed < bytes {
        let len = buffer.len().min((bytes - hashed) as usize);
        hasher.update(&buffer[..len]);
        hashed += len as u64;
    }
    black_box(hasher.finalize());
    megabytes_per_s(bytes, started.elapsed())
}

/// Sends `bytes` from one thread to another over a TCP connection on 127.0.0.1.
fn loopback(bytes: u64) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").context("loopback: binding")?;
    let address = listener.local_addr()?;
    let receiver = thread::spawn(move || -> anyhow::Result<u64> {
        let (mut stream, _) = listener.accept().context("loopback: accepting")?;
        let mut buffer = vec![0; CHUNK];
        let mut received = 0;
        loop {
            let len = stream.read(&mut buffer).context("loopback: receiving")?;
            if len == 0 {
                return Ok(received);
            }
            received += len as u64;
        }
    });

    let chunk = generated(CHUNK);
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).context("loopback: connecting")?;
    let mut sent = 0;
    while sent < bytes {
        let len = chunk.len().min((bytes - sent) as usize);
        stream
            .write_all(&chunk[..len])
            .context("loopback: sending")?;
        sent += len as u64;
    }
    drop(stream);
    let received = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("loopback: the receiver panicked"))??;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        received == bytes,
        "loopback: {received} of {bytes} bytes arrived"
    );
    Ok(megabytes_per_s(bytes, elapsed))
}

fn memory_copy(bytes: u64) -> f64 {
    let source = generated(COPY_BUFFER);
    // Filled with ones rather than zeros so that its pages are touched before timing.
    let mut target = vec![1u8; COPY_BUFFER];
    let started = Instant::now();
    let mut copied = 0;
    while copied < bytes {
        let len = source.len().min((bytes - copied) as usize);
        target[..len].copy_from_slice(black_box(&source[..len]));
        black_box(&mut target);
        copied += len as u64;
    }
    megabytes_per_s(bytes, started.elapsed())
}

fn generated(len: usize) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(len);
    // Reading from a generator into a Vec cannot fail.
    let _ = Pattern::new(len as u64, 0x11).read_to_end(&mut buffer);
    buffer
}
