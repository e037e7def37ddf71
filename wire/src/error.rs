//! The crate's one error type.

/// Everything that can go wrong while parsing, decoding, encoding or verifying
/// Confab protocol data. Every decoder in this crate returns one of these for
/// malformed input; none of them panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A textual id did not parse.
    #[error("invalid {kind} {input:?}: {reason}")]
    InvalidId {
        /// Which kind of id ("node id", "user id", …).
        kind: &'static str,
        /// The offending text, cut to at most 80 characters.
        input: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// 32 bytes that are not a usable ed25519 public key.
    #[error("invalid public key: {reason}")]
    InvalidKey {
        /// Why the key was refused.
        reason: &'static str,
    },
    /// A frame declared a length above the maximum; nothing was allocated.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The declared length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A frame declared a length of zero (it must at least hold its type byte).
    #[error("empty frame")]
    EmptyFrame,
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    TruncatedFrame {
        /// Bytes received of the unfinished frame.
        buffered: usize,
    },
    /// A frame carried a message type this version does not know. The frame
    /// boundary is intact, so a connection may skip it and go on.
    #[error("unknown {protocol} message type 0x{tag:02x}")]
    UnknownMessageType {
        /// "federation" or "client".
        protocol: &'static str,
        /// The type byte.
        tag: u8,
    },
    /// A client request whose envelope decoded (so its id is known) but whose
    /// body did not: the node can answer that request with an error.
    #[error("request {id}: {detail}")]
    BadRequestBody {
        /// The request id from the envelope.
        id: u64,
        /// What failed.
        detail: String,
    },
    /// The bytes did not decode as the expected structure.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// Bytes were left over after a complete value.
    #[error("{extra} trailing bytes after {what}")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// The signed header bytes are not the canonical encoding of the header
    /// they decode to, so they could not have come from an honest encoder.
    #[error("event header is not canonically encoded")]
    NonCanonical,
    /// A value broke a protocol limit or rule.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field or structure at fault.
        what: &'static str,
        /// The rule it broke.
        reason: String,
    },
    /// The signature does not verify under the origin's key.
    #[error("bad signature")]
    BadSignature,
    /// The content does not hash to the header's `content_hash`.
    #[error("content does not match the signed content hash")]
    ContentMismatch,
    /// The signing key does not belong to the node that the event names.
    #[error("signing key is not the author's node key")]
    WrongSigner,
    /// Encoding failed (only possible for values that break the limits).
    #[error("cannot encode {what}: {detail}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
