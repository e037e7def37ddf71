//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can stop a gateway from starting or serving. Every
/// variant names the file or key involved, for the operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read, written or created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The key file or the TLS configuration.
    #[error(transparent)]
    Endpoint(confab_wire::endpoint::EndpointError),
    /// A socket could not be bound.
    #[error("cannot bind {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The configuration has an unknown key, a value of the wrong type or a
    /// value that does not validate.
    #[error("{}: {reason}", file.display())]
    Config {
        /// The configuration file.
        file: PathBuf,
        /// The dotted key, e.g. `node.node_id`; empty when the file does not
        /// parse at all.
        key: String,
        /// What is wrong; names the key and, where known, the line and column.
        reason: String,
    },
}

impl From<confab_wire::endpoint::EndpointError> for Error {
    fn from(e: confab_wire::endpoint::EndpointError) -> Self {
        Error::Endpoint(e)
    }
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
