//! Refusing request targets that carry a fragment (`DELETE /dav/dir/#part`).
//!
//! A fragment belongs to the client and must never reach the server, so a request target
//! that contains `#` is malformed. The HTTP library cannot tell us: while parsing the
//! request line it cuts the target at `#`, and the application then sees `/dav/dir/`, a
//! different and perfectly valid resource that it would happily delete. This module looks
//! at the raw bytes instead. [`Observed`] wraps an accepted connection and, without
//! changing a byte, follows the HTTP/1.1 message framing (request heads, `Content-Length`
//! and chunked bodies) to number the requests of the connection in order. It notes in a
//! [`FragmentLog`] which of them had a `#` in their target; the service counts the requests
//! it is given in the same order, tags the marked ones with [`FragmentInTarget`], and
//! [`refusal`] answers them with `400 Bad Request` before any route runs.
//!
//! Numbering only works if this module and the HTTP library agree on every message
//! boundary, so anything this module does not understand exactly (HTTP/2, a protocol
//! upgrade, ambiguous framing, a head it cannot parse) makes it stop watching that
//! connection for good: a missed fragment is the old behaviour, a misattributed one would
//! refuse an innocent request.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{Request, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest request head followed; the HTTP library refuses much longer ones anyway.
const MAX_HEAD: usize = 64 * 1024;

/// Most header lines parsed in one head, as many as the HTTP library accepts.
const MAX_HEADERS: usize = 100;

/// Most fragment requests read ahead of the service that are remembered at once.
const MAX_PENDING: usize = 1024;

/// First line of the HTTP/2 connection preface.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// Marks a request whose target contained a fragment; see [`refusal`].
#[derive(Clone, Copy, Debug)]
pub struct FragmentInTarget;

/// The 400 response owed to a request marked with [`FragmentInTarget`], if it is marked.
pub fn refusal<B>(request: &Request<B>) -> Option<Response> {
    request.extensions().get::<FragmentInTarget>()?;
    tracing::debug!("request target with a fragment refused");
    let body = "request target must not contain a fragment\n";
    Some((StatusCode::BAD_REQUEST, body).into_response())
}

/// What one connection's byte watcher found, shared with the service serving it.
#[derive(Default)]
pub struct FragmentLog {
    ledger: Mutex<Ledger>,
}

#[derive(Default)]
struct Ledger {
    /// Ordinals of requests with a fragment that the service has not reached yet, ascending.
    pending: VecDeque<u64>,
    /// How many HTTP/1 requests the service has been given.
    served: u64,
}

impl FragmentLog {
    /// Counts one more HTTP/1 request given to the service, in connection order, and marks
    /// it with [`FragmentInTarget`] if its target had a fragment. HTTP/2 requests are left
    /// alone: their connections are not watched.
    pub fn mark<B>(&self, request: &mut Request<B>) {
        let is_http1 = matches!(request.version(), Version::HTTP_10 | Version::HTTP_11);
        if is_http1 && self.next_had_fragment() {
            request.extensions_mut().insert(FragmentInTarget);
        }
    }

    fn next_had_fragment(&self) -> bool {
        let mut ledger = self.ledger.lock();
        let ordinal = ledger.served;
        ledger.served += 1;

        while ledger
            .pending
            .front()
            .is_some_and(|&pending| pending < ordinal)
        {
            ledger.pending.pop_front();
        }
        let found = ledger.pending.front() == Some(&ordinal);
        if found {
            ledger.pending.pop_front();
        }
        found
    }

    /// Notes that request `ordinal` had a fragment; false if too many are already waiting.
    fn record(&self, ordinal: u64) -> bool {
        let mut ledger = self.ledger.lock();
        if ledger.pending.len() >= MAX_PENDING {
            return false;
        }
        ledger.pending.push_back(ordinal);
        true
    }
}

/// An accepted connection whose inbound bytes are watched for fragments on their way to
/// the HTTP library, unchanged. Writes pass straight through.
pub struct Observed<S> {
    inner: S,
    framing: Framing,
    log: Arc<FragmentLog>,
}

impl<S> Observed<S> {
    /// Watches `inner`, noting fragment requests in `log`.
    pub fn new(inner: S, log: Arc<FragmentLog>) -> Observed<S> {
        Observed {
            inner,
            framing: Framing::default(),
            log,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Observed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.framing.feed(&buf.filled()[before..], &this.log);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Observed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Follows the HTTP/1.1 message framing of one connection's inbound bytes, however they
/// are split into reads, and numbers its requests.
#[derive(Default)]
struct Framing {
    state: State,
    /// The request head read so far, while in [`State::Head`].
    head: Vec<u8>,
    /// Ordinal of the request whose head comes next.
    next: u64,
}

/// Which part of a message the next byte belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Head,
    /// A body of known length, with this many bytes still to come.
    Length(u64),
    Chunked(Chunk),
    /// No longer watching this connection.
    Stopped,
}

impl Framing {
    /// Follows `bytes`, the next bytes read from the connection, noting fragments in `log`.
    fn feed(&mut self, mut bytes: &[u8], log: &FragmentLog) {
        while !bytes.is_empty() {
            let used = match self.state {
                State::Head => self.feed_head(bytes, log),
                State::Length(remaining) => self.feed_length(remaining, bytes.len()),
                State::Chunked(chunk) => self.feed_chunked(chunk, bytes),
                State::Stopped => return,
            };
            bytes = &bytes[used..];
        }
    }

    /// Collects head bytes up to the empty line ending the head, then parses it.
    fn feed_head(&mut self, bytes: &[u8], log: &FragmentLog) -> usize {
        let end = blank_line_end(&self.head, bytes);
        let used = end.map_or(bytes.len(), |end| end + 1);
        self.head.extend_from_slice(&bytes[..used]);

        if self.head.len() > MAX_HEAD {
            self.stop("request head too long");
        } else if end.is_some() {
            self.state = self.parse_head(log);
        }
        used
    }

    /// Reads a complete head: notes a fragment and chooses how the body is framed.
    fn parse_head(&mut self, log: &FragmentLog) -> State {
        if self.head.starts_with(HTTP2_PREFACE) {
            return self.stop("HTTP/2 connection");
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&self.head) {
            // Only empty lines so far, which precede a request harmlessly.
            Ok(httparse::Status::Partial) => return State::Head,
            Ok(httparse::Status::Complete(len)) if len == self.head.len() => {}
            _ => return self.stop("request head not understood"),
        }

        let ordinal = self.next;
        self.next += 1;
        let has_fragment = request.path.is_some_and(|path| path.contains('#'));
        if has_fragment && !log.record(ordinal) {
            return self.stop("too many fragments ahead of the service");
        }
        if switches_protocol(&request) {
            return self.stop("protocol may change");
        }

        let Some(next) = body_state(&request) else {
            return self.stop("body framing ambiguous or invalid");
        };
        self.head.clear();
        next
    }

    /// Skips body bytes of known length.
    fn feed_length(&mut self, remaining: u64, available: usize) -> usize {
        let (used, left) = skip(remaining, available);
        self.state = if left == 0 {
            State::Head
        } else {
            State::Length(left)
        };
        used
    }

    /// Follows a chunked body from `chunk` on.
    fn feed_chunked(&mut self, mut chunk: Chunk, bytes: &[u8]) -> usize {
        let mut used = 0;
        while used < bytes.len() && chunk != Chunk::End {
            if let Chunk::Data(remaining) = chunk {
                let (skipped, left) = skip(remaining, bytes.len() - used);
                used += skipped;
                chunk = if left == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left)
                };
                continue;
            }
            match chunk.after(bytes[used]) {
                Some(next) => chunk = next,
                None => {
                    self.stop("malformed chunked body");
                    return bytes.len();
                }
            }
            used += 1;
        }
        self.state = if chunk == Chunk::End {
            State::Head
        } else {
            State::Chunked(chunk)
        };
        used
    }

    /// Stops watching the connection for good.
    fn stop(&mut self, reason: &'static str) -> State {
        tracing::trace!(
            reason,
            "no longer watching request targets on this connection"
        );
        self.state = State::Stopped;
        self.head = Vec::new();
        State::Stopped
    }
}

/// How many of `available` bytes a body with `remaining` bytes to come uses, and how many
/// it still expects after them.
fn skip(remaining: u64, available: usize) -> (usize, u64) {
    match usize::try_from(remaining) {
        Ok(remaining) if remaining <= available => (remaining, 0),
        _ => (available, remaining - available as u64),
    }
}

/// Index in `new` of the line feed ending the first empty line, `seen` being the bytes of
/// the same head that came before. Lines end with CRLF or, leniently, LF alone.
fn blank_line_end(seen: &[u8], new: &[u8]) -> Option<usize> {
    let before = |at: usize, back: usize| match at.checked_sub(back) {
        Some(index) => new.get(index).copied(),
        None => seen
            .len()
            .checked_sub(back - at)
            .and_then(|index| seen.get(index).copied()),
    };
    let ends_empty_line = |at: usize| match before(at, 1) {
        Some(b'\n') => true,
        Some(b'\r') => before(at, 2) == Some(b'\n'),
        _ => false,
    };
    (0..new.len()).find(|&at| new[at] == b'\n' && ends_empty_line(at))
}

/// How the body after `request`'s head is framed, or `None` when this module cannot be
/// sure to read it as the HTTP library does (repeated or conflicting headers, a last coding
/// other than `chunked`, a malformed length).
fn body_state(request: &httparse::Request<'_, '_>) -> Option<State> {
    let codings = header_values(request, "transfer-encoding");
    let lengths = header_values(request, "content-length");
    let is_http11 = request.version == Some(1);
    match (codings.as_slice(), lengths.as_slice()) {
        ([], []) => Some(State::Head),
        ([], [length]) => match content_length(length)? {
            0 => Some(State::Head),
            length => Some(State::Length(length)),
        },
        ([value], []) if is_http11 && ends_chunked(value) => Some(State::Chunked(Chunk::Start)),
        _ => None,
    }
}

/// The values of every header line of `request` called `name`, in order.
fn header_values<'b>(request: &httparse::Request<'_, 'b>, name: &str) -> Vec<&'b [u8]> {
    let named = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name));
    named.map(|h| h.value).collect()
}

/// Whether the connection may stop speaking HTTP/1 after this request.
fn switches_protocol(request: &httparse::Request<'_, '_>) -> bool {
    let upgrade = request
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("upgrade"));
    upgrade || request.method == Some("CONNECT")
}

/// Parses a `Content-Length` value: decimal digits only, as the HTTP library does.
fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |length, &byte| {
        let digit = char::from(byte).to_digit(10)?;
        length.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Whether the last coding of a `Transfer-Encoding` value is `chunked`.
fn ends_chunked(codings: &[u8]) -> bool {
    let last = codings
        .rsplit(|&byte| byte == b',')
        .next()
        .unwrap_or_default();
    last.trim_ascii().eq_ignore_ascii_case(b"chunked")
}

/// Where a chunked body stands. The states and the bytes they accept are those of the
/// HTTP library's decoder, so that both find the same end of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Expecting the first hex digit of a chunk size.
    Start,
    Size(u64),
    /// Spaces after the size.
    SizeSpace(u64),
    /// A chunk extension, ignored up to the end of the line.
    Extension(u64),
    SizeLf(u64),
    /// Chunk data, with this many bytes still to come.
    Data(u64),
    DataCr,
    DataLf,
    /// After the last chunk or a trailer line: an empty line ends the body.
    LineStart,
    Trailer,
    TrailerLf,
    EndLf,
    End,
}

impl Chunk {
    /// The state after `byte`, or `None` if the byte breaks the chunked syntax.
    fn after(self, byte: u8) -> Option<Chunk> {
        use Chunk::*;
        let next = match (self, byte) {
            (Start, _) => Size(hex_digit(byte)?),
            (Size(size) | SizeSpace(size), b' ' | b'\t') => SizeSpace(size),
            (Size(size) | SizeSpace(size), b';') => Extension(size),
            (Size(size) | SizeSpace(size) | Extension(size), b'\r') => SizeLf(size),
            (Size(size), _) => Size(size.checked_mul(16)?.checked_add(hex_digit(byte)?)?),
            (Extension(_), b'\n') => return None,
            (Extension(size), _) => Extension(size),
            (SizeLf(0), b'\n') => LineStart,
            (SizeLf(size), b'\n') => Data(size),
            (Data(1), _) => DataCr,
            (Data(size), _) => Data(size.checked_sub(1)?),
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Start,
            (LineStart, b'\r') => EndLf,
            (Trailer, b'\r') => TrailerLf,
            (LineStart | Trailer, b'\n') => return None,
            (LineStart | Trailer, _) => Trailer,
            (TrailerLf, b'\n') => LineStart,
            (EndLf, b'\n') => End,
            _ => return None,
        };
        Some(next)
    }
}

fn hex_digit(byte: u8) -> Option<u64> {
    char::from(byte).to_digit(16).map(u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A body that looks like a request with a fragment, to catch framing mistakes.
    const TRAP: &str = "\r\n\r\nDELETE /x#y HTTP/1.1\r\n\r\n";

    /// Five pipelined requests; only the fourth (ordinal 3) has a fragment.
    fn pipeline() -> Vec<u8> {
        let n = TRAP.len();
        [
            "GET /dav/a.txt HTTP/1.1\r\nHost: h\r\n\r\n".to_owned(),
            format!("PUT /dav/b.txt HTTP/1.1\r\nHost: h\r\nContent-Length: {n}\r\n\r\n{TRAP}"),
            format!(
                "PUT /dav/c.txt HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n\
                 {n:x};name=value\r\n{TRAP}\r\n{n:X} \r\n{TRAP}\r\n0\r\nX-Trap: /x#y\r\n\r\n"
            ),
            "DELETE /a/#frag HTTP/1.1\r\nHost: h\r\n\r\n".to_owned(),
            "\r\nGET /z HTTP/1.1\r\nHost: h\r\n\r\n".to_owned(),
        ]
        .concat()
        .into_bytes()
    }

    fn recorded(log: &FragmentLog) -> Vec<u64> {
        log.ledger.lock().pending.iter().copied().collect()
    }

    fn follow(reads: &[&[u8]]) -> (Framing, Vec<u64>) {
        let (mut framing, log) = (Framing::default(), FragmentLog::default());
        for read in reads {
            framing.feed(read, &log);
        }
        (framing, recorded(&log))
    }

    fn assert_pipeline_followed(framing: &Framing, recorded: &[u64]) {
        assert_eq!(recorded, [3]);
        assert_eq!(framing.state, State::Head);
        assert_eq!(framing.next, 5);
    }

    #[test]
    fn fragment_is_found_at_every_split_of_two_reads() {
        let bytes = pipeline();
        for split in 0..=bytes.len() {
            let (framing, recorded) = follow(&[&bytes[..split], &bytes[split..]]);
            assert_pipeline_followed(&framing, &recorded);
        }
    }

    #[test]
    fn fragment_is_found_with_one_byte_reads() {
        let bytes = pipeline();
        let reads: Vec<&[u8]> = bytes.chunks(1).collect();
        let (framing, recorded) = follow(&reads);
        assert_pipeline_followed(&framing, &recorded);
    }

    #[test]
    fn http2_preface_stops_observation() {
        let bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nDELETE /a/#frag HTTP/1.1\r\n\r\n";
        let (framing, recorded) = follow(&[bytes]);
        assert_eq!(framing.state, State::Stopped);
        assert!(recorded.is_empty());
    }

    #[test]
    fn garbage_stops_observation() {
        let bytes = b"\x16\x03\x01\x00\xa5\r\n\r\nDELETE /a/#frag HTTP/1.1\r\n\r\n";
        let (framing, recorded) = follow(&[bytes]);
        assert_eq!(framing.state, State::Stopped);
        assert!(recorded.is_empty());
    }

    #[test]
    fn oversized_head_stops_observation() {
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        let rest = b"\r\n\r\nDELETE /a/#frag HTTP/1.1\r\n\r\n";
        let (framing, recorded) = follow(&[long.as_bytes(), rest]);
        assert_eq!(framing.state, State::Stopped);
        assert!(recorded.is_empty());
    }

    #[test]
    fn unexpected_messages_stop_observation() {
        let heads = [
            "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "PUT / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            "PUT / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "CONNECT example.org:443 HTTP/1.1\r\n\r\n",
        ];
        for head in heads {
            let bytes = format!("{head}DELETE /a/#frag HTTP/1.1\r\n\r\n");
            let (framing, recorded) = follow(&[bytes.as_bytes()]);
            assert_eq!(framing.state, State::Stopped, "{head}");
            assert!(recorded.is_empty(), "{head}");
        }
    }

    #[test]
    fn fragment_of_an_upgrade_request_is_still_recorded() {
        let bytes = b"GET /#a HTTP/1.1\r\nUpgrade: websocket\r\n\r\nDELETE /#b HTTP/1.1\r\n\r\n";
        let (framing, recorded) = follow(&[bytes]);
        assert_eq!(framing.state, State::Stopped);
        assert_eq!(recorded, [0]);
    }

    #[test]
    fn malformed_chunk_stops_observation() {
        let bytes = b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n";
        let (framing, _) = follow(&[bytes]);
        assert_eq!(framing.state, State::Stopped);
    }

    #[test]
    fn log_marks_each_recorded_request_once_in_order() {
        let log = FragmentLog::default();
        assert!(log.record(1) && log.record(3));

        let mut marked = Vec::new();
        for version in [
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_11,
            Version::HTTP_10,
        ] {
            let mut request = Request::builder().version(version).body(()).unwrap();
            log.mark(&mut request);
            marked.push(refusal(&request).map(|response| response.status()));
        }

        let bad = Some(StatusCode::BAD_REQUEST);
        assert_eq!(marked, [None, None, bad, None]);
        assert_eq!(recorded(&log), [3]);
    }

    #[test]
    fn log_is_bounded() {
        let log = FragmentLog::default();
        assert!((0..MAX_PENDING as u64).all(|ordinal| log.record(ordinal)));
        assert!(!log.record(MAX_PENDING as u64));
    }

    #[tokio::test]
    async fn observed_stream_passes_bytes_through_unchanged() {
        let (mut client, server) = tokio::io::duplex(7);
        let log = Arc::new(FragmentLog::default());
        let mut observed = Observed::new(server, log.clone());
        let sent = pipeline();

        let send = async {
            client.write_all(&sent).await?;
            client.shutdown().await?;
            let mut reply = Vec::new();
            client.read_to_end(&mut reply).await?;
            io::Result::Ok(reply)
        };
        let receive = async {
            let mut received = Vec::new();
            observed.read_to_end(&mut received).await?;
            observed
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await?;
            observed.shutdown().await?;
            io::Result::Ok(received)
        };
        let (reply, received) = tokio::join!(send, receive);

        assert_eq!(received.unwrap(), sent);
        assert_eq!(reply.unwrap(), b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(recorded(&log), [3]);
    }
}
