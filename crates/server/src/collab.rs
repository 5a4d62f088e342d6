//! `GET /collab/{file_id}`: the WebSocket endpoint of co-editing. The upgrade is
//! authorised here (an access token in the `token` query parameter, since browsers cannot
//! set headers on a WebSocket, or the usual `Authorization` header); `access=read` opens the
//! document read-only. Then the socket's messages are pumped to and from the document's
//! connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use ruche_collab::{Access, Connection, Outgoing, Refusal};
use ruche_store::NodeId;

use crate::authn::{self, AuthFailure};
use crate::state::SharedState;

/// A ping this often keeps proxies from closing an idle socket and finds dead peers.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Close codes: y-websocket clients reconnect after 4000 and stop for good after a code
/// between 4400 and 4499.
const CLOSE_RECONNECT: u16 = 4000;
const CLOSE_FOR_GOOD: u16 = 4400;
/// Read and write buffer of a co-editing socket, in bytes.
const SOCKET_BUFFER: usize = 4096;

pub fn routes() -> Router<SharedState> {
    Router::new().route("/collab/{file_id}", get(socket))
}

async fn socket(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(file_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    mut headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(token) = query.get("token") {
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(value) => headers.insert(header::AUTHORIZATION, value),
            Err(_) => return refuse(StatusCode::UNAUTHORIZED, "malformed token"),
        };
    }
    let user = match authn::authenticate(&state, &headers, peer.ip()).await {
        Ok(user) => user,
        Err(AuthFailure::Throttled) => return refuse(StatusCode::TOO_MANY_REQUESTS, "try later"),
        Err(AuthFailure::Internal) => {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
        Err(AuthFailure::Unauthorized) => {
            return refuse(StatusCode::UNAUTHORIZED, "an access token is required")
        }
    };
    let Ok(upgrade) = upgrade else {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket only",
        );
    };
    // Another user's file and a missing one are alike: not found.
    let node = file_id
        .parse()
        .ok()
        .and_then(|id| state.store.node(NodeId(id)).ok().flatten())
        .filter(|node| node.space == user.space && node.parent.is_some());
    let Some(node) = node else {
        return refuse(StatusCode::NOT_FOUND, "no such file");
    };
    // The owner may write; anyone may ask for less (a preview opens read-only).
    let access = match query.get("access").map(String::as_str) {
        Some("read") => Access::ReadOnly,
        _ => Access::ReadWrite,
    };
    let connection = match state.collab.join(&node, user.id, access).await {
        Ok(connection) => connection,
        Err(refusal) => return refusal_response(&refusal),
    };
    let rate = state.collab.config().max_messages_per_second;
    // Small buffers: an open document's connections idle most of the time, and their
    // memory is what bounds how many documents a server keeps open.
    upgrade
        .max_message_size(state.collab.config().max_message_bytes)
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .on_upgrade(move |socket| pump(socket, connection, rate))
}

fn refusal_response(refusal: &Refusal) -> Response {
    let status = match refusal {
        Refusal::NotFound => StatusCode::NOT_FOUND,
        Refusal::NotText(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Unreadable | Refusal::Unavailable | Refusal::Retry => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    refuse(status, &refusal.to_string())
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    (status, format!("{reason}\n")).into_response()
}

/// Moves messages between the socket and the document until either side ends.
async fn pump(socket: WebSocket, mut connection: Connection, rate: u32) {
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut throttle = Throttle::new(rate);
    loop {
        let ready_at = throttle.ready_at();
        tokio::select! {
            // A client over its rate is not read until it may send again: TCP slows it.
            () = tokio::time::sleep_until(ready_at), if ready_at > Instant::now() => {}
            outgoing = connection.outgoing.recv() => match outgoing {
                Some(Outgoing::Message(bytes)) => {
                    // Whatever else is queued goes out in the same write.
                    let mut sent = sink.feed(Message::Binary(bytes)).await;
                    while sent.is_ok() {
                        match connection.outgoing.try_recv() {
                            Ok(Outgoing::Message(more)) => {
                                sent = sink.feed(Message::Binary(more)).await;
                            }
                            Ok(Outgoing::Close { reason, permanent }) => {
                                let _ = sink.send(close(&reason, permanent)).await;
                                return;
                            }
                            Err(_) => break,
                        }
                    }
                    if sent.is_err() || sink.flush().await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close { reason, permanent }) => {
                    let _ = sink.send(close(&reason, permanent)).await;
                    break;
                }
                None => {
                    let _ = sink.send(close("too far behind; reconnect to resync", false)).await;
                    break;
                }
            },
            incoming = stream.next(), if ready_at <= Instant::now() => match incoming {
                Some(Ok(Message::Binary(data))) => {
                    throttle.take();
                    if !connection.receive(data.to_vec()).await {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// A token bucket of one second's worth of messages.
struct Throttle {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    fn new(rate: u32) -> Throttle {
        let rate = f64::from(rate.max(1));
        Throttle {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
    }

    /// When the next message may be read.
    fn ready_at(&mut self) -> Instant {
        self.refill();
        if self.tokens >= 1.0 {
            return Instant::now();
        }
        Instant::now() + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
    }

    fn take(&mut self) {
        self.tokens -= 1.0;
    }
}

fn close(reason: &str, permanent: bool) -> Message {
    // A close reason is at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code: if permanent {
            CLOSE_FOR_GOOD
        } else {
            CLOSE_RECONNECT
        },
        reason: reason[..end].to_owned().into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_past_its_rate_waits() {
        let mut throttle = Throttle::new(10);
        for _ in 0..10 {
            assert!(throttle.ready_at() <= Instant::now());
            throttle.take();
        }
        let wait = throttle.ready_at() - Instant::now();
        assert!(wait > Duration::from_millis(50) && wait <= Duration::from_millis(100));
    }
}
