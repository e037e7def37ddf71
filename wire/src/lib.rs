//! `confab-wire`: the bytes Confab nodes and gateways exchange, and nothing
//! else: no sockets, no files, no clock.
//!
//! - Ids ([`NodeId`], [`UserId`], [`RoomId`], [`EventId`], [`BlobId`]) with
//!   textual forms that round-trip.
//! - The event model ([`EventHeader`], [`EventKind`], [`Content`]): the origin
//!   signs the header, content travels beside it under a hash.
//! - Signing and verification ([`NodeKey`], [`SignedEvent`],
//!   [`VerifiedEvent`]) with domain-separated tags and `verify_strict`.
//! - Framing ([`Frame`], [`FrameDecoder`]) and the messages of the federation
//!   ([`FedMessage`]), client ([`ClientMessage`]) and admin
//!   ([`admin::AdminMessage`]) protocols, and the backup file format
//!   ([`backup`]).
//!
//! Every decoder is total: malformed, truncated or oversized input gives an
//! [`Error`], never a panic, and lengths are checked before allocating.
#![warn(missing_docs, unreachable_pub)]

pub mod admin;
pub mod backup;
pub mod client;
pub mod codec;
#[cfg(feature = "endpoint")]
pub mod endpoint;
mod error;
pub mod event;
pub mod fed;
pub mod frame;
pub mod fuzzing;
mod ids;
pub mod sign;

pub use client::{ClientMessage, decode_client_frame};
pub use error::{Error, Result};
pub use event::{Content, EventHeader, EventKind, Permissions};
pub use fed::FedMessage;
pub use frame::{Frame, FrameDecoder, MAX_FRAME_LEN};
pub use ids::{BlobId, ContentHash, EventId, MAX_LOCALPART_LEN, NodeId, PublicKey, RoomId, UserId};
pub use sign::{NodeKey, SignedEvent, VerifiedEvent};
