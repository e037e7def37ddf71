//! What a running endpoint of the protocols needs besides the pure
//! protocol: its key file ([`keyfile`]) and QUIC/TLS pinned to node keys
//! ([`tls`]). Behind the `endpoint` feature, so the sans-IO core (and the
//! fuzz targets) build without rustls, quinn or file access; the node, the
//! gateway and the admin CLI all enable it, and so share one
//! implementation of "a peer is its key".

pub mod keyfile;
pub mod tls;

use std::path::PathBuf;

/// Why an endpoint could not load its key or build its TLS configuration.
/// Kept apart from [`crate::Error`], which is the decoders' (cloneable,
/// comparable) error; this one carries I/O errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// A file or directory could not be read, written or created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The key file exists but cannot be used (permissions, format).
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong and how to fix it (never the file's content).
        reason: String,
    },
    /// Making the TLS certificate from the key failed.
    #[error("cannot make the certificate: {reason}")]
    Certificate {
        /// What failed.
        reason: String,
    },
    /// rustls refused the TLS configuration.
    #[error("TLS configuration: {source}")]
    Tls {
        /// The rustls error.
        #[from]
        source: rustls::Error,
    },
    /// quinn refused the TLS configuration for QUIC.
    #[error("QUIC crypto configuration: {reason}")]
    QuicCrypto {
        /// What quinn reported.
        reason: String,
    },
}

/// `Result` with [`EndpointError`].
pub type Result<T, E = EndpointError> = std::result::Result<T, E>;
