//! Change events: what other services learn of the store's writes once they are durable.
//!
//! The co-editing service, for one, must hear of a file written over WebDAV while the file
//! is open in the browser, without the WebDAV layer knowing it exists. Listeners run on the
//! writer's thread right after the commit: they must only hand the event on (to a channel),
//! never block or call back into the store.

use parking_lot::RwLock;

use crate::model::{NodeId, SpaceId, UserId};
use crate::Store;

/// Who a write came from, so that a service can tell its own writes from the others'.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// A client of the drive (WebDAV, the REST API).
    #[default]
    Client,
    /// The co-editing service, saving a live document back to its file.
    CoEditing,
}

/// A committed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A file received a new content.
    ContentChanged {
        /// The file.
        node: NodeId,
        /// Its space.
        space: SpaceId,
        /// Where the write came from.
        origin: Origin,
        /// Who wrote it, when known.
        author: Option<UserId>,
    },
    /// Nodes left the tree (deleted, or overwritten by a move or copy).
    Removed {
        /// Every node that left, folders and files.
        nodes: Vec<NodeId>,
    },
}

type Listener = Box<dyn Fn(&Event) + Send + Sync>;

/// The registered listeners.
#[derive(Default)]
pub(crate) struct Listeners(RwLock<Vec<Listener>>);

impl Store {
    /// Calls `listener` after every committed change, on the writing thread.
    pub fn listen(&self, listener: impl Fn(&Event) + Send + Sync + 'static) {
        self.listeners.0.write().push(Box::new(listener));
    }

    pub(crate) fn emit(&self, event: Event) {
        for listener in self.listeners.0.read().iter() {
            listener(&event);
        }
    }
}
