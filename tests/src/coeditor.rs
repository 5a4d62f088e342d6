//! A co-editing client written on `yrs`, speaking the y-websocket protocol as the stock
//! JavaScript client does: for the tests that need a hundred editors at once, or one
//! editor in the middle of a crash, where starting Node.js for each would be too slow.
//! The stock clients themselves are driven by `tests/collab/`.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message as Frame, WebSocket};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, Text, TextRef, Transact, Update};

use crate::TestServer;

/// The name of the shared text, the one the CodeMirror binding uses.
const TEXT: &str = "codemirror";

/// Why a co-editing session ended.
#[derive(Debug)]
pub enum CoEditError {
    /// The connection failed or was closed.
    Connection(String),
    /// The server sent something that is not a y-websocket message.
    Protocol(String),
}

impl std::fmt::Display for CoEditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoEditError::Connection(why) => write!(f, "connection: {why}"),
            CoEditError::Protocol(why) => write!(f, "protocol: {why}"),
        }
    }
}

impl From<tungstenite::Error> for CoEditError {
    fn from(error: tungstenite::Error) -> Self {
        CoEditError::Connection(error.to_string())
    }
}

/// One editor of one document, with its own copy of the text.
pub struct CoEditor {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    doc: Doc,
    text: TextRef,
}

impl CoEditor {
    /// Connects to the document of file `file_id` and returns once the server's state has
    /// arrived (sync step 2), as the stock client's `synced` event does.
    pub fn connect(server: &TestServer, file_id: &str, token: &str) -> Result<Self, CoEditError> {
        let base = server.url().trim_end_matches('/').replacen("http", "ws", 1);
        let url = format!("{base}/collab/{file_id}?token={token}");
        let (socket, _) = tungstenite::connect(url.as_str())?;
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream
                .set_read_timeout(Some(Duration::from_millis(5)))
                .map_err(|e| CoEditError::Connection(e.to_string()))?;
            let _ = stream.set_nodelay(true);
        }
        let doc = Doc::new();
        let text = doc.get_or_insert_text(TEXT);
        let mut editor = CoEditor { socket, doc, text };
        let step1 = SyncMessage::SyncStep1(editor.doc.transact().state_vector());
        editor.send(&Message::Sync(step1))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !editor.receive_one(deadline)? {}
        Ok(editor)
    }

    /// Types `words` at the end of the text and sends the change.
    pub fn append(&mut self, words: &str) -> Result<(), CoEditError> {
        let update = {
            let mut txn = self.doc.transact_mut();
            let end = self.text.len(&txn);
            self.text.insert(&mut txn, end, words);
            txn.encode_update_v1()
        };
        self.send(&Message::Sync(SyncMessage::Update(update)))
    }

    /// Reads and applies what the server sends, for `duration`.
    pub fn listen(&mut self, duration: Duration) -> Result<(), CoEditError> {
        let deadline = Instant::now() + duration;
        while Instant::now() < deadline {
            if let Some(frame) = self.read()? {
                self.handle(&frame)?;
            }
        }
        Ok(())
    }

    /// The text as this editor sees it.
    pub fn text(&self) -> String {
        self.text.get_string(&self.doc.transact())
    }

    /// Closes the connection as browsers do: the close frame, then waiting for the
    /// server's. (Dropping a socket with unread data resets the connection, and the server
    /// may then lose the last messages it had not read yet.)
    pub fn close(mut self) {
        let _ = self.socket.close(None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.socket.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    }

    fn send(&mut self, message: &Message) -> Result<(), CoEditError> {
        self.socket
            .send(Frame::Binary(message.encode_v1().into()))
            .map_err(CoEditError::from)
    }

    /// One frame, or `None` when nothing came within the read timeout.
    fn read(&mut self) -> Result<Option<Vec<u8>>, CoEditError> {
        match self.socket.read() {
            Ok(Frame::Binary(bytes)) => Ok(Some(bytes.to_vec())),
            Ok(Frame::Close(frame)) => Err(CoEditError::Connection(format!("closed: {frame:?}"))),
            Ok(_) => Ok(None),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Handles frames until one arrives or `deadline` passes; true if it was sync step 2.
    fn receive_one(&mut self, deadline: Instant) -> Result<bool, CoEditError> {
        loop {
            if Instant::now() > deadline {
                return Err(CoEditError::Connection("no sync step 2 in time".into()));
            }
            if let Some(frame) = self.read()? {
                return self.handle(&frame);
            }
        }
    }

    /// Applies one message; true if it was the server's sync step 2.
    fn handle(&mut self, frame: &[u8]) -> Result<bool, CoEditError> {
        let message =
            Message::decode_v1(frame).map_err(|e| CoEditError::Protocol(e.to_string()))?;
        match message {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let update = self.doc.transact().encode_state_as_update_v1(&sv);
                self.send(&Message::Sync(SyncMessage::SyncStep2(update)))?;
                Ok(false)
            }
            Message::Sync(SyncMessage::SyncStep2(update)) => {
                self.apply(&update)?;
                Ok(true)
            }
            Message::Sync(SyncMessage::Update(update)) => {
                self.apply(&update)?;
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    fn apply(&mut self, update: &[u8]) -> Result<(), CoEditError> {
        let update = Update::decode_v1(update).map_err(|e| CoEditError::Protocol(e.to_string()))?;
        self.doc
            .transact_mut()
            .apply_update(update)
            .map_err(|e| CoEditError::Protocol(e.to_string()))
    }
}

/// An access token for the test user, as the web app gets one.
pub fn access_token(server: &TestServer) -> String {
    login(server, server.user(), server.password())
}

/// An access token for `user`, from `POST /api/auth/login`.
pub fn login(server: &TestServer, user: &str, password: &str) -> String {
    let body = serde_json::json!({ "username": user, "password": password });
    let response = server
        .client()
        .post(format!("{}/api/auth/login", server.url()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("the server answers the login");
    assert!(
        response.status().is_success(),
        "login: {}",
        response.status()
    );
    let answer: serde_json::Value =
        serde_json::from_str(&response.text().expect("a body")).expect("a JSON answer");
    answer["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}
