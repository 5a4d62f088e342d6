use std::path::PathBuf;

/// Everything that can go wrong in the store, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A name that the drive does not accept.
    #[error("{name:?}: invalid name: {reason}")]
    InvalidName {
        /// The name as received.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Nothing exists at this path.
    #[error("{path}: not found")]
    NotFound {
        /// The path that was looked up.
        path: String,
    },
    /// The parent folder of a path does not exist or is a file.
    #[error("{path}: parent folder missing")]
    ParentMissing {
        /// The path whose parent is missing.
        path: String,
    },
    /// Something already exists at this path.
    #[error("{path}: already exists")]
    AlreadyExists {
        /// The occupied path.
        path: String,
    },
    /// The operation needs a file but found a folder, or the reverse.
    #[error("{path}: wrong kind of node for this operation")]
    WrongKind {
        /// The path of the node.
        path: String,
    },
    /// A folder cannot be moved or copied into itself.
    #[error("{path}: cannot move or copy a folder into itself")]
    IntoItself {
        /// The source path.
        path: String,
    },
    /// The write would take the space past its quota.
    #[error("space {space}: quota exceeded ({needed} bytes needed, {available} available)")]
    QuotaExceeded {
        /// The space being written.
        space: i64,
        /// Bytes the write adds.
        needed: u64,
        /// Bytes still free in the space.
        available: u64,
    },
    /// The disk is full.
    #[error("{path}: no space left on device")]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// An account with this name exists already.
    #[error("user {name}: already exists")]
    UserExists {
        /// The user name.
        name: String,
    },
    /// No account has this name.
    #[error("user {name}: not found")]
    UserNotFound {
        /// The user name.
        name: String,
    },
    /// The content received does not match the checksum the client announced.
    #[error("checksum mismatch: the client announced {expected}, the content has {actual}")]
    ChecksumMismatch {
        /// The checksum the client sent, as `TYPE:hex`.
        expected: String,
        /// The checksum of what arrived, of the same type.
        actual: String,
    },
    /// A chunked upload's chunks do not add up to the announced length.
    #[error("upload incomplete: {expected} bytes announced, {received} received")]
    IncompleteUpload {
        /// The length the client announced.
        expected: u64,
        /// The bytes its chunks hold.
        received: u64,
    },
    /// A sync token that this store never issued.
    #[error("invalid sync token")]
    InvalidToken,
    /// The database stayed locked by other work for too long.
    #[error("{what}: the database stayed busy")]
    Busy {
        /// What was attempted.
        what: &'static str,
    },
    /// Stored data contradicts itself (a node refers to content that is missing, ...).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The metadata database failed.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// A blob file or a temporary file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        let path = path.into();
        if source.raw_os_error() == Some(28) {
            return StoreError::DiskFull { path };
        }
        StoreError::Io { path, source }
    }

    pub(crate) fn not_found(path: &[String]) -> StoreError {
        StoreError::NotFound {
            path: crate::name::display_path(path),
        }
    }
}

/// The store's result type.
pub type Result<T> = std::result::Result<T, StoreError>;
