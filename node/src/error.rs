//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can stop a node from starting or serving.
///
/// Expected outcomes of normal operation (a peer that is not pinned, a
/// malformed frame from the network) are not errors of this type: they are
/// handled where they happen and at most logged. This type is for failures
/// an operator has to see, so every variant names the file, key or component
/// involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key file or the TLS configuration (see `confab_wire::endpoint`).
    #[error(transparent)]
    Endpoint(#[from] confab_wire::endpoint::EndpointError),
    /// A part of the node could not start.
    #[error("cannot {what}: {source}")]
    Startup {
        /// What was being started.
        what: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file or directory could not be read, written or created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration has an unknown key, a value of the wrong type or a
    /// value that does not validate.
    #[error("{}: {reason}", file.display())]
    Config {
        /// The configuration file (or `<defaults>` for the embedded defaults).
        file: PathBuf,
        /// The dotted key, e.g. `federation.peers[0].node`; empty when the
        /// file does not parse at all.
        key: String,
        /// What is wrong; names the key and, where known, the line and column.
        reason: String,
    },
    /// The database failed.
    #[error("store: {what}: {source}")]
    Store {
        /// The operation.
        what: &'static str,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// Stored bytes did not decode: the database is damaged.
    #[error("store is damaged: {what}: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// The store was written by a newer version.
    #[error(
        "store schema {found} is newer than this version supports ({supported}); upgrade confab-node"
    )]
    Schema {
        /// Found in the store.
        found: u32,
        /// Supported here.
        supported: u32,
    },
    /// A backup could not be restored.
    #[error("restore: {detail}")]
    Backup {
        /// What went wrong.
        detail: String,
    },
    /// Reading or writing the event log failed.
    #[error("event log: {what}: {detail}")]
    Log {
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        detail: String,
    },
    /// A flush to disk failed; nothing after it is acknowledged.
    #[error("flushing the store failed: {reason}")]
    Flush {
        /// The I/O error.
        reason: String,
    },
    /// The engine refused an event where it must not.
    #[error("refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// A referenced item does not exist.
    #[error("no such {what}")]
    NotFound {
        /// What was looked for.
        what: &'static str,
    },
    /// The node is still recovering its own history in a room from its
    /// peers; posting now could reuse an origin sequence (equivocation).
    #[error(
        "this node is still recovering its own history in room {room} from its peers; \
         try again once a peer has been reached"
    )]
    CatchingUp {
        /// The room.
        room: confab_wire::RoomId,
    },
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
