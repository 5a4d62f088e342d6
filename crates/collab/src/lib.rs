//! Live co-editing of the drive's text files, over the y-websocket protocol that the stock
//! `yjs` and `y-websocket` clients speak.
//!
//! [`CollabService::join`] opens (or finds) the document of a file and returns a
//! [`Connection`]: the server pumps a WebSocket's binary messages into it and its
//! [`Outgoing`] messages back out. One task per open document owns the Yjs document;
//! connections reach it through bounded queues. The protocol itself ([`protocol`]) does no
//! IO at all.
//!
//! This crate never authenticates anyone (the server says who connects and with what
//! access), never speaks HTTP, and never imports the WebDAV crate: a WebDAV write reaches
//! an open document through the store's change events.

#![warn(missing_docs)]

mod document;
pub mod protocol;
pub mod text;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use ruche_store::{Event, Node, NodeId, Origin, Store, UserId};
use tokio::sync::{mpsc, oneshot};

use crate::document::{Control, Incoming};
pub use crate::protocol::{Access, ConnId};

/// Limits and timings of the service.
#[derive(Debug, Clone)]
pub struct CollabConfig {
    /// Largest file, in bytes, that opens as a document; also the largest document.
    pub max_text_bytes: usize,
    /// Largest WebSocket message accepted from a client.
    pub max_message_bytes: usize,
    /// Messages a client may send per second; the transport slows faster senders.
    pub max_messages_per_second: u32,
    /// Messages queued for a client before it counts as too far behind.
    pub outbox: usize,
    /// Edits are saved to the file after this long without edits...
    pub save_after_quiet: Duration,
    /// ...and at the latest this long after the first unsaved edit.
    pub save_at_most: Duration,
    /// A document without clients unloads after this long.
    pub unload_after: Duration,
    /// Stored updates that trigger a compaction into one snapshot...
    pub compact_after_updates: usize,
    /// ...or stored bytes that do.
    pub compact_after_bytes: usize,
}

impl Default for CollabConfig {
    fn default() -> CollabConfig {
        CollabConfig {
            max_text_bytes: 4 * 1024 * 1024,
            max_message_bytes: 1024 * 1024,
            max_messages_per_second: 1000,
            outbox: 512,
            save_after_quiet: Duration::from_secs(2),
            save_at_most: Duration::from_secs(10),
            unload_after: Duration::from_secs(60),
            compact_after_updates: 500,
            compact_after_bytes: 1024 * 1024,
        }
    }
}

/// Why a file cannot be opened for co-editing; the server turns it into a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such file.
    #[error("no such file")]
    NotFound,
    /// The file is not text that can be edited.
    #[error("{0}")]
    NotText(String),
    /// The file is larger than the limit.
    #[error("the file is too large to edit live")]
    TooLarge,
    /// The stored document cannot be read; it is refused rather than served empty.
    #[error("the stored document cannot be read")]
    Unreadable,
    /// The store failed; see the log.
    #[error("the document is unavailable")]
    Unavailable,
    /// The document was unloading; try again.
    #[error("the document was closing")]
    Retry,
}

/// A message for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A binary WebSocket message, shared by every client it goes to.
    Message(bytes::Bytes),
    /// Close the connection with this reason. A permanent close tells the client not to
    /// reconnect (the file is gone, the client broke a rule); otherwise it reconnects and
    /// resyncs.
    Close {
        /// Why, in words for the user.
        reason: String,
        /// Whether reconnecting would meet the same end.
        permanent: bool,
    },
}

impl Outgoing {
    pub(crate) fn close(reason: &str, permanent: bool) -> Outgoing {
        Outgoing::Close {
            reason: reason.to_owned(),
            permanent,
        }
    }
}

struct Handle {
    control: mpsc::UnboundedSender<Control>,
    incoming: mpsc::Sender<Incoming>,
    generation: u64,
}

struct Inner {
    store: Arc<Store>,
    config: CollabConfig,
    documents: Mutex<HashMap<NodeId, Handle>>,
    next_id: AtomicU64,
}

/// The co-editing service. Cheap to clone.
#[derive(Clone)]
pub struct CollabService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CollabService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollabService")
            .field("open", &self.inner.documents.lock().len())
            .finish()
    }
}

/// One client's connection to a document. Dropping it leaves the document.
#[derive(Debug)]
pub struct Connection {
    id: ConnId,
    control: mpsc::UnboundedSender<Control>,
    incoming: mpsc::Sender<Incoming>,
    /// What to send to the client, in order; closed when the document drops the client.
    pub outgoing: mpsc::Receiver<Outgoing>,
}

impl Connection {
    /// Hands a binary message from the client to the document; false once the document
    /// is gone.
    pub async fn receive(&self, data: Vec<u8>) -> bool {
        let message = Incoming {
            conn: self.id,
            data,
        };
        self.incoming.send(message).await.is_ok()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Leave(self.id));
    }
}

impl CollabService {
    /// A service over `store`, listening to its changes. Must be created inside a Tokio
    /// runtime.
    pub fn new(store: Arc<Store>, config: CollabConfig) -> CollabService {
        let inner = Arc::new(Inner {
            store: store.clone(),
            config,
            documents: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        store.listen(move |event| {
            if let Some(inner) = weak.upgrade() {
                inner.notify(event);
            }
        });
        CollabService { inner }
    }

    /// The service's limits.
    pub fn config(&self) -> &CollabConfig {
        &self.inner.config
    }

    /// Joins the document of `file` for `user`. The document is loaded completely before
    /// this returns; its first messages are already queued on the connection.
    pub async fn join(
        &self,
        file: &Node,
        user: UserId,
        access: Access,
    ) -> Result<Connection, Refusal> {
        if file.is_dir {
            return Err(Refusal::NotText("a folder is not a document".into()));
        }
        // A document that was unloading refuses with `Retry`: a second try starts anew.
        for _ in 0..3 {
            match self.try_join(file.id, user, access).await {
                Err(Refusal::Retry) => continue,
                outcome => return outcome,
            }
        }
        Err(Refusal::Unavailable)
    }

    async fn try_join(
        &self,
        node: NodeId,
        user: UserId,
        access: Access,
    ) -> Result<Connection, Refusal> {
        let (control, incoming) = self.document(node);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (outbox, outgoing) = mpsc::channel(self.inner.config.outbox);
        let (reply, answer) = oneshot::channel();
        let join = Control::Join {
            conn: id,
            access,
            user,
            outbox,
            reply,
        };
        if control.send(join).is_err() {
            return Err(Refusal::Retry);
        }
        answer.await.map_err(|_| Refusal::Retry)??;
        Ok(Connection {
            id,
            control,
            incoming,
            outgoing,
        })
    }

    /// The queues of the document of `node`, starting its task if it is not open.
    fn document(&self, node: NodeId) -> (mpsc::UnboundedSender<Control>, mpsc::Sender<Incoming>) {
        let mut documents = self.inner.documents.lock();
        if let Some(handle) = documents.get(&node) {
            if !handle.control.is_closed() {
                return (handle.control.clone(), handle.incoming.clone());
            }
        }
        let (control, control_rx) = mpsc::unbounded_channel();
        let (incoming, incoming_rx) = mpsc::channel(1024);
        let generation = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        documents.insert(
            node,
            Handle {
                control: control.clone(),
                incoming: incoming.clone(),
                generation,
            },
        );
        let weak = Arc::downgrade(&self.inner);
        let unregister = move || {
            if let Some(inner) = weak.upgrade() {
                let mut documents = inner.documents.lock();
                if documents
                    .get(&node)
                    .is_some_and(|h| h.generation == generation)
                {
                    documents.remove(&node);
                }
            }
        };
        tokio::spawn(document::run(
            node,
            self.inner.store.clone(),
            self.inner.config.clone(),
            control_rx,
            incoming_rx,
            unregister,
        ));
        (control, incoming)
    }

    /// Saves every open document to its file and closes its clients.
    pub async fn shutdown(&self) {
        let controls: Vec<_> = self
            .inner
            .documents
            .lock()
            .values()
            .map(|h| h.control.clone())
            .collect();
        let mut waiting = Vec::new();
        for control in controls {
            let (done, finished) = oneshot::channel();
            if control.send(Control::Shutdown(done)).is_ok() {
                waiting.push(finished);
            }
        }
        for finished in waiting {
            let _ = tokio::time::timeout(Duration::from_secs(20), finished).await;
        }
    }
}

impl Inner {
    /// Hands a store event to the documents it concerns. Runs on the store's writing
    /// thread: it only queues.
    fn notify(&self, event: &Event) {
        let documents = self.documents.lock();
        match event {
            Event::ContentChanged { node, origin, .. } if *origin != Origin::CoEditing => {
                if let Some(handle) = documents.get(node) {
                    let _ = handle.control.send(Control::FileChanged);
                }
            }
            Event::Removed { nodes } => {
                for node in nodes {
                    if let Some(handle) = documents.get(node) {
                        let _ = handle.control.send(Control::FileRemoved);
                    }
                }
            }
            Event::ContentChanged { .. } => {}
        }
    }
}
