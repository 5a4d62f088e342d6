//! The y-websocket protocol of one document, without IO: messages in, effects out.
//!
//! A [`Room`] holds the document and the awareness states of its clients. Each binary
//! message a connection sends goes through [`Room::receive`], which answers with the
//! effects to carry out: a reply to the sender, an update to store, a message for every
//! other connection. Storing before broadcasting is the caller's job.

use std::collections::{HashMap, HashSet};

use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, ReadTxn, StateVector, Transact, Update};

/// Identifies one connection to a room.
pub type ConnId = u64;

/// What a connection may do to the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Receive updates only: the document's changes from this client are dropped.
    ReadOnly,
}

/// Something the caller must do after a message was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send these bytes back to the connection the message came from.
    Reply(Vec<u8>),
    /// A document update (Yjs v1) that changed the document: store it, then send it to
    /// every other connection (see [`update_message`]).
    Update(Vec<u8>),
    /// Send these bytes to every other connection.
    Broadcast(Vec<u8>),
}

/// Why a message was refused; the connection is closed with this reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// The bytes are not a y-websocket message.
    #[error("malformed message")]
    Malformed,
    /// The update does not apply to the document.
    #[error("update refused: {0}")]
    BadUpdate(String),
}

/// One document and the awareness of its clients.
pub struct Room {
    awareness: Awareness,
    /// The awareness client ids each connection announced, removed when it leaves.
    clients: HashMap<ConnId, HashSet<ClientID>>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("connections", &self.clients.len())
            .finish_non_exhaustive()
    }
}

/// The message that carries a document update to clients.
pub fn update_message(update: Vec<u8>) -> Vec<u8> {
    encode(&Message::Sync(SyncMessage::Update(update)))
}

/// Merges updates into one, for clients that receive several at once.
pub fn merge_updates(updates: &[Vec<u8>]) -> Option<Vec<u8>> {
    yrs::merge_updates_v1(updates).ok()
}

/// Encodes one message as the bytes of a WebSocket frame.
pub fn encode(message: &Message) -> Vec<u8> {
    message.encode_v1()
}

impl Room {
    /// A room for `doc`.
    pub fn new(doc: Doc) -> Room {
        Room {
            awareness: Awareness::new(doc),
            clients: HashMap::new(),
        }
    }

    /// The document.
    pub fn doc(&self) -> &Doc {
        self.awareness.doc()
    }

    /// What a new connection receives first: the server's state vector (so that the client
    /// sends what the server lacks) and the awareness states of the others.
    pub fn welcome(&mut self, conn: ConnId) -> Vec<Vec<u8>> {
        self.clients.entry(conn).or_default();
        let sv = self.doc().transact().state_vector();
        let mut out = vec![encode(&Message::Sync(SyncMessage::SyncStep1(sv)))];
        if let Ok(update) = self.awareness.update() {
            if !update.clients.is_empty() {
                out.push(encode(&Message::Awareness(update)));
            }
        }
        out
    }

    /// Handles one binary message from `conn`.
    pub fn receive(
        &mut self,
        conn: ConnId,
        access: Access,
        data: &[u8],
    ) -> Result<Vec<Effect>, ProtocolError> {
        // y-websocket clients send one message per frame.
        let message = Message::decode_v1(data).map_err(|_| ProtocolError::Malformed)?;
        let mut effects = Vec::new();
        self.handle(conn, access, message, &mut effects)?;
        Ok(effects)
    }

    fn handle(
        &mut self,
        conn: ConnId,
        access: Access,
        message: Message,
        effects: &mut Vec<Effect>,
    ) -> Result<(), ProtocolError> {
        match message {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let update = self.doc().transact().encode_diff_v1(&sv);
                let reply = Message::Sync(SyncMessage::SyncStep2(update));
                effects.push(Effect::Reply(encode(&reply)));
            }
            Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                if access == Access::ReadWrite {
                    effects.extend(self.apply(update)?);
                }
            }
            Message::Awareness(update) => {
                self.clients
                    .entry(conn)
                    .or_default()
                    .extend(update.clients.keys().copied());
                let relayed = encode(&Message::Awareness(update.clone()));
                self.awareness
                    .apply_update(update)
                    .map_err(|_| ProtocolError::Malformed)?;
                // Echoed to the sender too, as the stock server does: a client that hears
                // nothing for 30 seconds takes its connection for dead.
                effects.push(Effect::Reply(relayed.clone()));
                effects.push(Effect::Broadcast(relayed));
            }
            Message::AwarenessQuery => {
                if let Ok(update) = self.awareness.update() {
                    effects.push(Effect::Reply(encode(&Message::Awareness(update))));
                }
            }
            // Authentication happens on the upgrade; other tags are extensions we ignore.
            Message::Auth(_) | Message::Custom(..) => {}
        }
        Ok(())
    }

    /// Applies an update made by the server itself (seeding, a merged WebDAV write) or
    /// received from a client; returns the effects that spread it.
    pub fn apply(&mut self, update: Vec<u8>) -> Result<Vec<Effect>, ProtocolError> {
        let decoded = Update::decode_v1(&update).map_err(|_| ProtocolError::Malformed)?;
        // Deletions leave the state vector as it was; only an update with neither new items
        // nor deletions is a repeat.
        let deletes = !decoded.delete_set().is_empty();
        let before = self.doc().transact().state_vector();
        self.doc()
            .transact_mut()
            .apply_update(decoded)
            .map_err(|e| ProtocolError::BadUpdate(e.to_string()))?;
        if !deletes && self.doc().transact().state_vector() == before {
            return Ok(Vec::new());
        }
        Ok(vec![Effect::Update(update)])
    }

    /// Forgets `conn` and returns the awareness message telling the others its clients left.
    pub fn leave(&mut self, conn: ConnId) -> Option<Vec<u8>> {
        let clients = self.clients.remove(&conn)?;
        if clients.is_empty() {
            return None;
        }
        for client in &clients {
            self.awareness.remove_state(*client);
        }
        let update = self.awareness.update_with_clients(clients).ok()?;
        Some(encode(&Message::Awareness(update)))
    }

    /// The whole state as one garbage-collected update (v1 encoding).
    ///
    /// Here and in answers to sync step 1, only what the document integrated is encoded
    /// (`encode_diff`): parts of updates still waiting for what they build on are left out.
    /// Honest clients never leave any, and encoding a hostile one would fail.
    pub fn snapshot(&self) -> Vec<u8> {
        self.doc()
            .transact()
            .encode_diff_v1(&StateVector::default())
    }

    /// The whole state in the compact v2 encoding: what a stored snapshot holds. `None`
    /// when that encoding would not decode again (yrs fails on some hostile states): the
    /// document then keeps its updates rather than a snapshot it could not load.
    pub fn snapshot_v2(&self) -> Option<Vec<u8>> {
        let snapshot = self
            .doc()
            .transact()
            .encode_diff_v2(&StateVector::default());
        Update::decode_v2(&snapshot).is_ok().then_some(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::encoding::read::Cursor;
    use yrs::sync::MessageReader;
    use yrs::updates::decoder::DecoderV1;
    use yrs::{GetString, Text};

    fn text_update(doc: &Doc, at: u32, text: &str) -> Vec<u8> {
        let field = doc.get_or_insert_text("codemirror");
        let before = doc.transact().state_vector();
        field.insert(&mut doc.transact_mut(), at, text);
        doc.transact().encode_diff_v1(&before)
    }

    fn update_message(update: Vec<u8>) -> Vec<u8> {
        encode(&Message::Sync(SyncMessage::Update(update)))
    }

    fn server_text(room: &Room) -> String {
        let text = room.doc().get_or_insert_text("codemirror");
        text.get_string(&room.doc().transact())
    }

    #[test]
    fn a_client_syncs_with_step_one_and_gets_step_two() {
        let mut room = Room::new(Doc::new());
        let welcome = room.welcome(1);
        assert_eq!(welcome.len(), 1, "no awareness yet, only the state vector");
        let client = Doc::new();
        let update = text_update(&client, 0, "bonjour");
        room.receive(1, Access::ReadWrite, &update_message(update))
            .unwrap();

        let fresh = Doc::new();
        let step1 = encode(&Message::Sync(SyncMessage::SyncStep1(
            fresh.transact().state_vector(),
        )));
        let effects = room.receive(2, Access::ReadWrite, &step1).unwrap();
        let [Effect::Reply(reply)] = effects.as_slice() else {
            panic!("expected one reply, got {effects:?}");
        };
        let mut decoder = DecoderV1::new(Cursor::new(reply));
        let Some(Ok(Message::Sync(SyncMessage::SyncStep2(state)))) =
            MessageReader::new(&mut decoder).next()
        else {
            panic!("not a sync step 2");
        };
        fresh
            .transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        let text = fresh.get_or_insert_text("codemirror");
        assert_eq!(text.get_string(&fresh.transact()), "bonjour");
    }

    #[test]
    fn updates_are_stored_then_broadcast_and_read_only_ones_dropped() {
        let mut room = Room::new(Doc::new());
        let client = Doc::new();
        let update = text_update(&client, 0, "abc");
        let effects = room
            .receive(1, Access::ReadWrite, &update_message(update.clone()))
            .unwrap();
        assert!(matches!(effects.as_slice(), [Effect::Update(u)] if *u == update));

        let other = text_update(&client, 3, "def");
        let dropped = room
            .receive(2, Access::ReadOnly, &update_message(other))
            .unwrap();
        assert!(dropped.is_empty());
        assert_eq!(server_text(&room), "abc");

        // The same update twice changes nothing and spreads nothing.
        let again = room
            .receive(1, Access::ReadWrite, &update_message(update))
            .unwrap();
        assert!(again.is_empty());
    }

    #[test]
    fn garbage_is_refused_and_awareness_is_relayed_then_removed() {
        let mut room = Room::new(Doc::new());
        assert_eq!(
            room.receive(1, Access::ReadWrite, &[0, 2, 200, 1, 2]),
            Err(ProtocolError::Malformed)
        );
        let mut peer = Awareness::new(Doc::with_client_id(77));
        peer.set_local_state_raw("{\"user\":{\"name\":\"Marie\"}}");
        let hello = encode(&Message::Awareness(peer.update().unwrap()));
        let effects = room.receive(1, Access::ReadOnly, &hello).unwrap();
        assert!(matches!(
            effects.as_slice(),
            [Effect::Reply(_), Effect::Broadcast(_)]
        ));
        assert_eq!(room.welcome(2).len(), 2, "a newcomer sees Marie");
        assert!(room.leave(1).is_some());
        assert!(room.leave(1).is_none());
    }

    /// Inputs the fuzzer found: updates the document cannot integrate, which once made
    /// encoding its state panic, and one announcing billions of blocks.
    #[test]
    fn hostile_updates_never_break_the_document() {
        for input in [
            &include_bytes!("../../../fuzz/corpus/collab_message/pending-1")[..],
            &include_bytes!("../../../fuzz/corpus/collab_message/pending-2")[..],
            &include_bytes!("../../../fuzz/corpus/collab_message/huge-count")[..],
        ] {
            let mut room = Room::new(Doc::new());
            let mut rest = input;
            while let [control, length, tail @ ..] = rest {
                let length = usize::from(*length).min(tail.len());
                let (frame, after) = tail.split_at(length);
                let conn = u64::from(control % 3);
                room.welcome(conn);
                let _ = room.receive(conn, Access::ReadWrite, frame);
                rest = after;
            }
            assert!(Update::decode_v1(&room.snapshot()).is_ok());
            if let Some(snapshot) = room.snapshot_v2() {
                assert!(Update::decode_v2(&snapshot).is_ok());
            }
            let step1 = encode(&Message::Sync(SyncMessage::SyncStep1(
                StateVector::default(),
            )));
            assert!(room.receive(9, Access::ReadOnly, &step1).is_ok());
        }
    }
}
