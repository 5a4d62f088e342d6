//! One task per open document. It owns the [`Room`], loads the document before it answers
//! anyone, stores updates before they spread, saves the text back to the file, merges
//! writes that arrive over WebDAV, and unloads the document once nobody is left.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ruche_store::{CommitOptions, Node, NodeId, Origin, SpaceId, Store, StoreError, UserId};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, Text, Transact, Update};

use crate::protocol::{merge_updates, update_message, Access, ConnId, Effect, Room};
use crate::text::{fork_update, seed_update, text_of};
use crate::{CollabConfig, Outgoing, Refusal};

/// What the connections and the service tell a document.
pub(crate) enum Control {
    Join {
        conn: ConnId,
        access: Access,
        user: UserId,
        outbox: mpsc::Sender<Outgoing>,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    Leave(ConnId),
    /// The file was written by someone else than this service.
    FileChanged,
    FileRemoved,
    Shutdown(oneshot::Sender<()>),
}

/// A message a connection received from its client.
pub(crate) struct Incoming {
    pub(crate) conn: ConnId,
    pub(crate) data: Vec<u8>,
}

struct Peer {
    access: Access,
    user: UserId,
    outbox: mpsc::Sender<Outgoing>,
}

/// The file as the document last matched it: what a WebDAV writer forked from.
struct Base {
    state: Vec<u8>,
    text: String,
}

pub(crate) struct Document {
    node: NodeId,
    space: SpaceId,
    store: Arc<Store>,
    config: CollabConfig,
    room: Room,
    peers: HashMap<ConnId, Peer>,
    base: Base,
    /// What the file holds, as far as this document knows.
    file_text: String,
    unsaved_since: Option<Instant>,
    last_edit: Instant,
    last_editor: Option<UserId>,
    last_seq: i64,
    pending_updates: usize,
    pending_bytes: usize,
    empty_since: Option<Instant>,
    /// Batches whose updates are being stored, oldest first: what they send waits until
    /// they (and every batch before them) are durable.
    in_flight: VecDeque<Batch>,
}

/// What one batch of client messages sends once its updates are stored.
struct Batch {
    stored: Option<JoinHandle<Result<i64, StoreError>>>,
    updates: usize,
    bytes: usize,
    spread: Option<Spread>,
    sends: Vec<(ConnId, bool, Vec<u8>)>,
}

/// Batches stored at once; past this, the task waits for the oldest before reading more.
const MAX_IN_FLIGHT: usize = 8;
/// Client messages handled as one batch, at most.
const BATCH: usize = 256;

/// Runs a document until it unloads. `unregister` is called once it stops taking joins.
pub(crate) async fn run(
    node: NodeId,
    store: Arc<Store>,
    config: CollabConfig,
    mut control: mpsc::UnboundedReceiver<Control>,
    mut incoming: mpsc::Receiver<Incoming>,
    unregister: impl FnOnce() + Send,
) {
    let loaded = {
        let (store, config) = (store.clone(), config.clone());
        tokio::task::spawn_blocking(move || Document::load(node, store, config)).await
    };
    let mut doc = match loaded {
        Ok(Ok(doc)) => doc,
        Ok(Err(refusal)) => {
            tracing::warn!(%node, reason = %refusal, "document not opened");
            unregister();
            refuse_all(&mut control, refusal);
            return;
        }
        Err(_) => {
            unregister();
            refuse_all(&mut control, Refusal::Unavailable);
            return;
        }
    };
    loop {
        let deadline = doc.next_deadline();
        tokio::select! {
            biased;
            command = control.recv() => match command {
                Some(Control::Shutdown(done)) => {
                    catch_up(&mut doc, &mut incoming).await;
                    doc.drain().await;
                    doc.close_all("the server is restarting", false).await;
                    let _ = done.send(());
                    break;
                }
                Some(command) => {
                    // A connection's last messages were queued before it left: they are
                    // handled first, or its last edits would be dropped with it.
                    let leaving = matches!(command, Control::Leave(_));
                    if leaving && !catch_up(&mut doc, &mut incoming).await {
                        break;
                    }
                    if !doc.control(command).await {
                        break;
                    }
                }
                None => break,
            },
            stored = doc.oldest_stored(), if !doc.in_flight.is_empty() => {
                if !doc.deliver_oldest(stored).await {
                    break;
                }
            }
            Some(first) = incoming.recv() => {
                let batch = next_batch(Some(first), &mut incoming, BATCH);
                if !doc.messages(batch).await {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                if doc.tick().await {
                    break;
                }
            }
        }
    }
    unregister();
    doc.drain().await;
    doc.save().await;
    doc.compact().await;
    refuse_all(&mut control, Refusal::Retry);
}

/// `first` and what else is queued, up to `limit` messages.
fn next_batch(
    first: Option<Incoming>,
    incoming: &mut mpsc::Receiver<Incoming>,
    limit: usize,
) -> Vec<Incoming> {
    let mut batch: Vec<Incoming> = first.into_iter().collect();
    while batch.len() < limit {
        match incoming.try_recv() {
            Ok(more) => batch.push(more),
            Err(_) => break,
        }
    }
    batch
}

/// Handles the messages queued now (not those that arrive meanwhile, so that a busy
/// document cannot keep this from returning). Returns false when the document must stop.
async fn catch_up(doc: &mut Document, incoming: &mut mpsc::Receiver<Incoming>) -> bool {
    let mut left = incoming.len();
    while left > 0 {
        let batch = next_batch(None, incoming, left.min(BATCH));
        if batch.is_empty() {
            break;
        }
        left -= batch.len();
        if !doc.messages(batch).await {
            return false;
        }
    }
    true
}

/// Answers the joins still queued once the document stopped.
fn refuse_all(control: &mut mpsc::UnboundedReceiver<Control>, refusal: Refusal) {
    control.close();
    while let Ok(command) = control.try_recv() {
        match command {
            Control::Join { reply, .. } => {
                let _ = reply.send(Err(refusal.clone()));
            }
            Control::Shutdown(done) => {
                let _ = done.send(());
            }
            _ => {}
        }
    }
}

/// A store failure while opening a document: logged here, told to the client in general
/// terms.
fn unavailable(error: StoreError) -> Refusal {
    tracing::error!(%error, "opening a document failed");
    Refusal::Unavailable
}

/// Reads a file's content as text, within the size limit.
fn file_text(store: &Store, node: &Node, limit: usize) -> Result<String, Refusal> {
    if node.is_dir {
        return Err(Refusal::NotText("a folder is not a document".into()));
    }
    if node.size > limit as u64 {
        return Err(Refusal::TooLarge);
    }
    let mut bytes = Vec::with_capacity(node.size as usize);
    store
        .open_content(node)
        .and_then(|mut content| {
            content
                .read_to_end(&mut bytes)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .map_err(unavailable)?;
    String::from_utf8(bytes).map_err(|_| Refusal::NotText("the file is not UTF-8 text".into()))
}

impl Document {
    fn load(node: NodeId, store: Arc<Store>, config: CollabConfig) -> Result<Document, Refusal> {
        let file = store
            .node(node)
            .map_err(unavailable)?
            .ok_or(Refusal::NotFound)?;
        let content = file_text(&store, &file, config.max_text_bytes)?;
        let stored = store.load_document(node).map_err(unavailable)?;
        let mut room = Room::new(Doc::new());
        let hash = file.content.as_ref().map(|h| h.as_str().to_owned());
        let mut last_seq = 0;
        let mut external = false;
        if stored.is_empty() {
            // First opening: the server seeds the text once; clients never do.
            let seed = seed_update(&content);
            room.apply(seed.clone()).map_err(|_| Refusal::Unreadable)?;
            last_seq = store
                .append_document_updates(node, &[seed])
                .map_err(unavailable)?;
            if let Some(hash) = &hash {
                store
                    .set_document_synced_hash(node, hash)
                    .map_err(unavailable)?;
            }
        } else {
            // Snapshots are v2 updates, received updates v1, as clients send them.
            let snapshot = stored.snapshot.iter().map(|s| Update::decode_v2(s));
            let updates = stored.updates.iter().map(|(_, u)| Update::decode_v1(u));
            for update in snapshot.chain(updates) {
                let update = update.map_err(|_| Refusal::Unreadable)?;
                room.doc()
                    .transact_mut()
                    .apply_update(update)
                    .map_err(|_| Refusal::Unreadable)?;
            }
            last_seq = stored.updates.last().map_or(last_seq, |(seq, _)| *seq);
            let synced = store.document_synced_hash(node).map_err(unavailable)?;
            external = synced != hash;
        }
        let base = Base {
            state: room.snapshot(),
            text: text_of(room.doc()),
        };
        let mut doc = Document {
            node,
            space: file.space,
            store,
            config,
            room,
            peers: HashMap::new(),
            base,
            file_text: content.clone(),
            unsaved_since: None,
            last_edit: Instant::now(),
            last_editor: None,
            last_seq,
            pending_updates: stored.updates.len(),
            pending_bytes: stored.stored_bytes(),
            empty_since: Some(Instant::now()),
            in_flight: VecDeque::new(),
        };
        if external {
            // Written over WebDAV while the document was closed: the file's text wins
            // over the document's last saved text, merged as a peer's edit.
            doc.merge_text_blocking(&content, hash.as_deref())
                .map_err(|_| Refusal::Unreadable)?;
        } else if doc.base.text != doc.file_text {
            // Edits stored but not yet saved (the server stopped before saving).
            doc.unsaved_since = Some(Instant::now());
        }
        Ok(doc)
    }

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let save = self.unsaved_since.map(|since| {
            (self.last_edit + self.config.save_after_quiet).min(since + self.config.save_at_most)
        });
        let unload = self
            .empty_since
            .map(|since| since + self.config.unload_after);
        [save, unload].into_iter().flatten().min().unwrap_or(far)
    }

    /// Returns whether the document should unload.
    async fn tick(&mut self) -> bool {
        let now = Instant::now();
        if self.unsaved_since.is_some() && now >= self.next_save() {
            self.save().await;
        }
        self.empty_since
            .is_some_and(|since| now >= since + self.config.unload_after)
    }

    fn next_save(&self) -> Instant {
        let since = self.unsaved_since.unwrap_or(self.last_edit);
        (self.last_edit + self.config.save_after_quiet).min(since + self.config.save_at_most)
    }

    /// Handles a control command; returns false when the document must stop.
    async fn control(&mut self, command: Control) -> bool {
        match command {
            Control::Join {
                conn,
                access,
                user,
                outbox,
                reply,
            } => {
                for message in self.room.welcome(conn) {
                    let _ = outbox.try_send(Outgoing::Message(message.into()));
                }
                self.peers.insert(
                    conn,
                    Peer {
                        access,
                        user,
                        outbox,
                    },
                );
                self.empty_since = None;
                let _ = reply.send(Ok(()));
                true
            }
            Control::Leave(conn) => {
                self.drop_peer(conn);
                true
            }
            Control::FileChanged => {
                self.drain().await;
                self.file_changed().await;
                true
            }
            Control::FileRemoved => {
                self.close_all("the file was deleted", true).await;
                let (store, node) = (self.store.clone(), self.node);
                let _ = tokio::task::spawn_blocking(move || store.delete_document(node)).await;
                self.unsaved_since = None;
                self.pending_updates = 0;
                false
            }
            Control::Shutdown(_) => false,
        }
    }

    fn drop_peer(&mut self, conn: ConnId) {
        if self.peers.remove(&conn).is_none() {
            return;
        }
        if let Some(gone) = self.room.leave(conn) {
            self.broadcast(conn, &gone);
        }
        if self.peers.is_empty() {
            self.empty_since = Some(Instant::now());
        }
    }

    async fn close_all(&mut self, reason: &str, permanent: bool) {
        for (_, peer) in self.peers.drain() {
            let _ = peer.outbox.try_send(Outgoing::close(reason, permanent));
        }
    }

    /// Handles a batch of client messages: updates are stored in one commit before any
    /// of them spreads. Returns false when the document must stop.
    async fn messages(&mut self, batch: Vec<Incoming>) -> bool {
        let mut persist = Vec::new();
        let mut senders = Vec::new();
        let mut sends: Vec<(ConnId, bool, Vec<u8>)> = Vec::new();
        for Incoming { conn, data } in batch {
            let Some(peer) = self.peers.get(&conn) else {
                continue;
            };
            let (access, user) = (peer.access, peer.user);
            let too_large =
                self.base.text.len().max(self.pending_text_len()) > self.config.max_text_bytes;
            if too_large && access == Access::ReadWrite && is_update(&data) {
                self.kick(conn, "the document reached its size limit", true);
                continue;
            }
            match self.room.receive(conn, access, &data) {
                Ok(effects) => {
                    for effect in effects {
                        match effect {
                            Effect::Reply(bytes) => sends.push((conn, false, bytes)),
                            Effect::Broadcast(bytes) => sends.push((conn, true, bytes)),
                            Effect::Update(update) => {
                                self.last_editor = Some(user);
                                persist.push(update);
                                senders.push(conn);
                            }
                        }
                    }
                }
                Err(error) => self.kick(conn, &error.to_string(), true),
            }
        }
        if persist.is_empty() && self.in_flight.is_empty() {
            self.send_all(None, sends);
            return true;
        }
        let mut batch = Batch {
            stored: None,
            updates: persist.len(),
            bytes: persist.iter().map(Vec::len).sum(),
            spread: None,
            sends,
        };
        if !persist.is_empty() {
            batch.spread = Some(spread(&persist, &senders));
            let (store, node) = (self.store.clone(), self.node);
            batch.stored = Some(tokio::task::spawn_blocking(move || {
                store.append_document_updates(node, &persist)
            }));
        }
        self.in_flight.push_back(batch);
        while self.in_flight.len() > MAX_IN_FLIGHT {
            let stored = self.oldest_stored().await;
            if !self.deliver_oldest(stored).await {
                return false;
            }
        }
        true
    }

    /// Waits for the oldest batch's updates to be stored.
    async fn oldest_stored(&mut self) -> Option<i64> {
        let batch = self.in_flight.front_mut()?;
        match batch.stored.as_mut() {
            None => Some(self.last_seq),
            Some(handle) => match handle.await {
                Ok(Ok(seq)) => Some(seq),
                Ok(Err(error)) => {
                    tracing::error!(node = %self.node, %error, "storing document updates failed");
                    None
                }
                Err(_) => None,
            },
        }
    }

    /// Sends what the oldest batch holds, now that it is stored; false when storing failed
    /// and the document must stop.
    async fn deliver_oldest(&mut self, stored: Option<i64>) -> bool {
        let Some(batch) = self.in_flight.pop_front() else {
            return true;
        };
        let Some(seq) = stored else {
            self.close_all("the server could not store the document", false)
                .await;
            return false;
        };
        if batch.updates > 0 {
            self.last_seq = self.last_seq.max(seq);
            self.note_stored(batch.updates, batch.bytes);
        }
        self.send_all(batch.spread, batch.sends);
        if self.in_flight.is_empty() && self.needs_compaction() {
            self.compact().await;
        }
        true
    }

    /// Waits until every batch is stored and sent.
    async fn drain(&mut self) {
        while !self.in_flight.is_empty() {
            let stored = self.oldest_stored().await;
            if !self.deliver_oldest(stored).await {
                return;
            }
        }
    }

    fn send_all(&mut self, spread: Option<Spread>, sends: Vec<(ConnId, bool, Vec<u8>)>) {
        match spread {
            Some(Spread::One(from, bytes)) => self.broadcast(from, &bytes),
            Some(Spread::Merged(bytes)) => self.broadcast(ConnId::MAX, &bytes),
            Some(Spread::Each(messages)) => {
                for (from, bytes) in messages {
                    self.broadcast(from, &bytes);
                }
            }
            None => {}
        }
        for (conn, to_others, bytes) in sends {
            if to_others {
                self.broadcast(conn, &bytes);
            } else if let Some(peer) = self.peers.get(&conn) {
                let sent = peer.outbox.try_send(Outgoing::Message(bytes.into()));
                if matches!(sent, Err(TrySendError::Full(_))) {
                    self.drop_peer(conn);
                }
            }
        }
    }

    fn note_stored(&mut self, updates: usize, bytes: usize) {
        self.pending_updates += updates;
        self.pending_bytes += bytes;
        self.last_edit = Instant::now();
        self.unsaved_since.get_or_insert(self.last_edit);
    }

    fn needs_compaction(&self) -> bool {
        self.pending_updates >= self.config.compact_after_updates
            || self.pending_bytes >= self.config.compact_after_bytes
    }

    fn pending_text_len(&self) -> usize {
        let text = self.room.doc().get_or_insert_text(crate::text::TEXT_NAME);
        text.len(&self.room.doc().transact()) as usize
    }

    fn kick(&mut self, conn: ConnId, reason: &str, permanent: bool) {
        tracing::info!(node = %self.node, conn, reason, "closing a connection");
        if let Some(peer) = self.peers.get(&conn) {
            let _ = peer.outbox.try_send(Outgoing::close(reason, permanent));
        }
        self.drop_peer(conn);
    }

    /// Sends to every connection but `from`; a connection too far behind is dropped (its
    /// client resyncs when it reconnects). A connection that is closing stays until its
    /// departure is handled, after the messages it sent before it closed.
    fn broadcast(&mut self, from: ConnId, bytes: &[u8]) {
        let shared = Bytes::copy_from_slice(bytes);
        let behind: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(conn, _)| **conn != from)
            .filter(|(_, peer)| {
                matches!(
                    peer.outbox.try_send(Outgoing::Message(shared.clone())),
                    Err(TrySendError::Full(_))
                )
            })
            .map(|(conn, _)| *conn)
            .collect();
        for conn in behind {
            tracing::info!(node = %self.node, conn, "a connection fell too far behind: dropped");
            self.drop_peer(conn);
        }
    }

    async fn persist(&mut self, updates: Vec<Vec<u8>>) -> bool {
        let bytes: usize = updates.iter().map(Vec::len).sum();
        let count = updates.len();
        let (store, node) = (self.store.clone(), self.node);
        let stored =
            tokio::task::spawn_blocking(move || store.append_document_updates(node, &updates))
                .await;
        let Ok(Ok(seq)) = stored else {
            tracing::error!(node = %self.node, "storing document updates failed");
            return false;
        };
        self.last_seq = self.last_seq.max(seq);
        self.note_stored(count, bytes);
        if self.in_flight.is_empty() && self.needs_compaction() {
            self.compact().await;
        }
        true
    }

    /// Re-encodes the document into one snapshot replacing the updates stored so far.
    async fn compact(&mut self) {
        if self.pending_updates == 0 {
            return;
        }
        let Some(snapshot) = self.room.snapshot_v2() else {
            // The stored updates stay, and load as they are; try again after as many more.
            tracing::warn!(node = %self.node, "the document cannot be compacted now");
            self.pending_updates = 0;
            self.pending_bytes = 0;
            return;
        };
        let (store, node, seq) = (self.store.clone(), self.node, self.last_seq);
        let done =
            tokio::task::spawn_blocking(move || store.compact_document(node, &snapshot, seq)).await;
        if matches!(done, Ok(Ok(()))) {
            self.pending_updates = 0;
            self.pending_bytes = 0;
        } else {
            tracing::warn!(node = %self.node, "compacting the document failed");
        }
    }

    /// Writes the text back to the file as a new version, when it changed.
    async fn save(&mut self) {
        if self.unsaved_since.is_none() {
            return;
        }
        let text = text_of(self.room.doc());
        if text == self.file_text {
            self.unsaved_since = None;
            return;
        }
        let (store, node, author) = (self.store.clone(), self.node, self.last_editor);
        let (space, bytes) = (self.space, text.clone().into_bytes());
        let written = tokio::task::spawn_blocking(move || -> Result<Node, StoreError> {
            let mut upload = store.begin_upload(space)?;
            upload.write(&bytes)?;
            let node = store.commit_upload_to(
                node,
                upload,
                CommitOptions {
                    modified: None,
                    author,
                    origin: Origin::CoEditing,
                },
            )?;
            if let Some(hash) = &node.content {
                store.set_document_synced_hash(node.id, hash.as_str())?;
            }
            Ok(node)
        })
        .await;
        match written {
            Ok(Ok(_)) => {
                self.base = Base {
                    state: self.room.snapshot(),
                    text: text.clone(),
                };
                self.file_text = text;
                self.unsaved_since = None;
            }
            Ok(Err(error)) => {
                tracing::warn!(node = %self.node, %error, "saving the document to its file failed");
                // Try again after the next quiet period.
                self.last_edit = Instant::now();
            }
            Err(_) => self.last_edit = Instant::now(),
        }
    }

    /// A write over WebDAV: merge the file's new text as a peer's edit.
    async fn file_changed(&mut self) {
        let (store, node, limit) = (self.store.clone(), self.node, self.config.max_text_bytes);
        let read = tokio::task::spawn_blocking(move || {
            let file = store.node(node).ok().flatten().ok_or(Refusal::NotFound)?;
            let synced = store.document_synced_hash(node).ok().flatten();
            let hash = file.content.as_ref().map(|h| h.as_str().to_owned());
            if hash.is_some() && hash == synced {
                return Ok::<_, Refusal>(None);
            }
            Ok(Some((file_text(&store, &file, limit)?, hash)))
        })
        .await;
        match read {
            Ok(Ok(None)) => {}
            Ok(Ok(Some((text, hash)))) => {
                let merged = self.merge_text(&text, hash.as_deref()).await;
                if !merged {
                    self.close_all("the file changed in a way that cannot be merged", true)
                        .await;
                }
            }
            Ok(Err(refusal)) => {
                let reason = format!("the file can no longer be edited: {refusal}");
                self.close_all(&reason, true).await;
            }
            Err(_) => {}
        }
    }

    async fn merge_text(&mut self, text: &str, hash: Option<&str>) -> bool {
        let Ok(update) = fork_update(&self.base.state, &self.base.text, text) else {
            return false;
        };
        let Ok(effects) = self.room.apply(update.clone()) else {
            return false;
        };
        for effect in effects {
            if let Effect::Update(update) = effect {
                if !self.persist(vec![update.clone()]).await {
                    return false;
                }
                self.broadcast(ConnId::MAX, &update_message(update));
            }
        }
        self.rebase(&update, text);
        if let Some(hash) = hash {
            let (store, node, hash) = (self.store.clone(), self.node, hash.to_owned());
            let _ =
                tokio::task::spawn_blocking(move || store.set_document_synced_hash(node, &hash))
                    .await;
        }
        true
    }

    /// The blocking form of [`Document::merge_text`], while loading.
    fn merge_text_blocking(&mut self, text: &str, hash: Option<&str>) -> Result<(), String> {
        let update = fork_update(&self.base.state, &self.base.text, text)?;
        self.room.apply(update.clone()).map_err(|e| e.to_string())?;
        self.last_seq = self
            .store
            .append_document_updates(self.node, std::slice::from_ref(&update))
            .map_err(|e| e.to_string())?;
        self.pending_updates += 1;
        self.rebase(&update, text);
        if let Some(hash) = hash {
            self.store
                .set_document_synced_hash(self.node, hash)
                .map_err(|e| e.to_string())?;
        }
        self.unsaved_since = Some(Instant::now());
        Ok(())
    }

    /// The file now holds `text`, which is the base plus `update`.
    fn rebase(&mut self, update: &[u8], text: &str) {
        let fork = Doc::new();
        for bytes in [&self.base.state[..], update] {
            if let Ok(decoded) = Update::decode_v1(bytes) {
                let _ = fork.transact_mut().apply_update(decoded);
            }
        }
        self.base = Base {
            state: fork.transact().encode_diff_v1(&yrs::StateVector::default()),
            text: text.to_owned(),
        };
        self.file_text = text.to_owned();
        // The live document may hold more than the file now: save it soon.
        self.unsaved_since.get_or_insert(Instant::now());
    }
}

/// How the updates of one batch reach the other clients.
enum Spread {
    /// One update, sent to all but its author.
    One(ConnId, Vec<u8>),
    /// Several, merged into one message for everyone: a client applying its own update
    /// again changes nothing, and one message instead of many keeps watchers up to speed.
    Merged(Vec<u8>),
    /// Several that would not merge, each to all but its author.
    Each(Vec<(ConnId, Vec<u8>)>),
}

fn spread(updates: &[Vec<u8>], senders: &[ConnId]) -> Spread {
    if let ([update], [from]) = (updates, senders) {
        return Spread::One(*from, update_message(update.clone()));
    }
    match merge_updates(updates) {
        Some(merged) => Spread::Merged(update_message(merged)),
        None => Spread::Each(
            senders
                .iter()
                .zip(updates)
                .map(|(from, update)| (*from, update_message(update.clone())))
                .collect(),
        ),
    }
}

/// Whether a message carries a document change (sync step 2 or update).
fn is_update(data: &[u8]) -> bool {
    matches!(data, [0, 1 | 2, ..])
}
