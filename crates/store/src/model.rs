//! The values the store hands out.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::blob::ContentHash;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A node's stable id: it survives renames and moves, and is what clients see as
    /// `oc:fileid`.
    NodeId
);
id_type!(
    /// A space: a tree of nodes with its own quota (a user's personal space, a group's).
    SpaceId
);
id_type!(
    /// A user account.
    UserId
);

/// A point in time, in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// Whole seconds since the epoch.
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Builds a timestamp from whole seconds since the epoch.
    pub fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    /// This time, `duration` later.
    pub fn after(self, duration: Duration) -> Timestamp {
        let nanos = i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(nanos))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Timestamp {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(i64::try_from(after.as_nanos()).unwrap_or(i64::MAX)),
            Err(before) => Timestamp(-i64::try_from(before.duration().as_nanos()).unwrap_or(0)),
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(time: Timestamp) -> SystemTime {
        let magnitude = Duration::from_nanos(time.0.unsigned_abs());
        if time.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

/// A file or folder of a space.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Stable id.
    pub id: NodeId,
    /// The space the node belongs to.
    pub space: SpaceId,
    /// The folder holding it; `None` for a space's root.
    pub parent: Option<NodeId>,
    /// Its name in NFC; empty for a space's root.
    pub name: String,
    /// Folder or file.
    pub is_dir: bool,
    /// Size in bytes of a file's content; 0 for folders.
    pub size: u64,
    /// A file's content; `None` for folders.
    pub content: Option<ContentHash>,
    /// Modification time, settable by clients.
    pub modified: Timestamp,
    /// Creation time.
    pub created: Timestamp,
    /// Value of the global change counter when the node, or anything below it, last changed.
    pub change: i64,
}

impl Node {
    /// The strong entity tag: changes with a file's content and with anything below a folder.
    pub fn etag(&self) -> String {
        format!("{:x}-{:x}", self.id.0, self.change)
    }
}

/// A space's identity and usage.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    /// Its id.
    pub id: SpaceId,
    /// Display name.
    pub name: String,
    /// Root folder.
    pub root: NodeId,
    /// Limit in bytes; `None` for no limit.
    pub quota: Option<u64>,
    /// Bytes used by the current content of its files.
    pub used: u64,
}

impl Space {
    /// Bytes still free, or `None` when the space has no limit.
    pub fn available(&self) -> Option<u64> {
        self.quota.map(|quota| quota.saturating_sub(self.used))
    }
}

/// A property set by a client on a node, kept as the XML it sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadProp {
    /// XML namespace URI; empty for none.
    pub namespace: String,
    /// Local name.
    pub name: String,
    /// The whole element as XML.
    pub xml: Vec<u8>,
}

/// A WebDAV lock, persisted so that it survives a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct LockRecord {
    /// The opaque lock token.
    pub token: String,
    /// The space whose tree is locked.
    pub space: SpaceId,
    /// The locked path within the space, `/`-separated.
    pub path: String,
    /// Who took it.
    pub principal: Option<String>,
    /// The `owner` XML the client sent.
    pub owner_xml: Option<Vec<u8>>,
    /// Requested timeout in seconds; `None` for infinite.
    pub timeout_secs: Option<u64>,
    /// When it ends; `None` for never.
    pub expires: Option<Timestamp>,
    /// Shared or exclusive.
    pub shared: bool,
    /// Whether it covers the whole subtree.
    pub deep: bool,
}

/// A user account.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Login name.
    pub name: String,
    /// argon2id hash in PHC format.
    pub password_hash: String,
    /// Administrator or not.
    pub is_admin: bool,
    /// Changes whenever one of the user's credentials changes.
    pub credential_epoch: i64,
    /// The user's personal space.
    pub space: SpaceId,
}

/// An app password's public side (its secret is only kept as a digest).
#[derive(Debug, Clone, PartialEq)]
pub struct AppPassword {
    /// Its id.
    pub id: i64,
    /// The device or client it was made for.
    pub label: String,
    /// When it was created, in seconds since the epoch.
    pub created_at: i64,
}
