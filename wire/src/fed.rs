//! The federation protocol between nodes (QUIC, ALPN [`FED_ALPN`]).
//!
//! Flow: both sides send [`Hello`] first; a side that supports none of the
//! other's versions sends [`FedError`] with [`FedErrorCode::UnsupportedVersion`]
//! and closes. Then, per shared room: [`VersionVector`] on connect and
//! periodically, [`Want`] / [`GetEvents`] to ask for what is missing,
//! [`EventBatch`] to push or answer; [`BlobRequest`] / [`BlobChunk`] for
//! attachments; [`Ephemeral`] for typing and presence; [`Ping`]/[`Pong`].
//! Unknown message types decode to [`crate::Error::UnknownMessageType`]; a
//! receiver skips them, so new messages never break old peers.

use bincode::{Decode, Encode};

use crate::error::{Error, Result};
use crate::event::MAX_REASON_LEN;
use crate::frame::protocol_messages;
use crate::ids::{BlobId, EventId, NodeId, RoomId, UserId};
use crate::sign::SignedEvent;

/// ALPN of the federation protocol.
pub const FED_ALPN: &[u8] = b"confab-fed/1";
/// The federation protocol version this crate speaks.
pub const FED_PROTOCOL_VERSION: u16 = 1;
/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 256;
/// Most origins in one version vector.
pub const MAX_VECTOR_ORIGINS: usize = 4096;
/// Most ids in one request for events.
pub const MAX_GET_EVENTS: usize = 1024;
/// Most bytes of blob data in one chunk.
pub const MAX_BLOB_CHUNK: usize = 256 * 1024;
/// Most bytes of a node's display name.
pub const MAX_NODE_NAME_LEN: usize = 64;

/// An opaque id that follows one request or message across gateways and
/// nodes, for tracing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct TraceId(pub u128);

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The first message on a connection, both ways.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Hello {
    /// Oldest protocol version the sender speaks.
    pub version_min: u16,
    /// Newest protocol version the sender speaks.
    pub version_max: u16,
    /// The sender's node id (must equal its TLS key).
    pub node: NodeId,
    /// The sender's configured name (`acme` in `@alice:acme`).
    pub name: String,
    /// Capability bits (none defined yet; unknown bits are ignored).
    pub capabilities: u64,
}

impl Hello {
    /// The highest version both sides speak, if any.
    pub fn negotiate(&self, ours_min: u16, ours_max: u16) -> Option<u16> {
        let hi = self.version_max.min(ours_max);
        let lo = self.version_min.max(ours_min);
        (lo <= hi).then_some(hi)
    }
}

/// Events of one room, in causal order (parents before children).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct EventBatch {
    /// The room.
    pub room: RoomId,
    /// Trace id of the request that caused the first event, if any.
    pub trace: Option<TraceId>,
    /// The events.
    pub events: Vec<SignedEvent>,
}

/// The newest event a node holds of one origin in a room.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct OriginHead {
    /// The origin node.
    pub origin: NodeId,
    /// Its highest origin sequence held.
    pub seq: u64,
    /// The id of that event (shows a fork at the tip).
    pub head: EventId,
    /// The lowest sequence at which this origin's chain is forked (two
    /// events, one sequence), 0 if it is not.
    pub forked_at: u64,
    /// A hash of the ids of every event held at a forked sequence (0 if
    /// none): two nodes holding the same tip can still differ below it by
    /// fork branches, and this shows it.
    pub forks: u64,
}

/// What a node holds of a room, per origin.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct VersionVector {
    /// The room.
    pub room: RoomId,
    /// One entry per origin, ascending by origin and unique.
    pub origins: Vec<OriginHead>,
}

/// Where a request for an origin's events starts.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct OriginSince {
    /// The origin.
    pub origin: NodeId,
    /// Send its events with a higher origin sequence than this.
    pub after_seq: u64,
}

/// Asks for events of a room the sender lacks. An empty `since` list asks
/// for the whole room (a join or rebuild).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Want {
    /// The room.
    pub room: RoomId,
    /// Per origin, what the sender already has.
    pub since: Vec<OriginSince>,
    /// Most events to send in answer (the sender's flow-control budget).
    pub limit: u32,
}

/// Asks for specific events (missing ancestors).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct GetEvents {
    /// The room.
    pub room: RoomId,
    /// The events.
    pub ids: Vec<EventId>,
}

/// Asks for a blob's bytes from an offset.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BlobRequest {
    /// The blob.
    pub blob: BlobId,
    /// First byte wanted.
    pub offset: u64,
}

/// A piece of a blob.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BlobChunk {
    /// The blob.
    pub blob: BlobId,
    /// Offset of `data` in the blob.
    pub offset: u64,
    /// The blob's whole size.
    pub total: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A presence state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Presence {
    /// Active now.
    Online,
    /// Connected but idle.
    Away,
    /// Not connected.
    Offline,
}

/// A signal that is never stored and may be dropped under load.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Signal {
    /// The user started (`true`) or stopped typing in the room.
    Typing(bool),
    /// The user's presence and when they were last active (ms since epoch).
    Presence {
        /// The state.
        state: Presence,
        /// Last activity.
        last_active: u64,
    },
    /// The user has read the room up to this event.
    ReadUpTo(EventId),
    /// The user's node holds the room up to this event: sent for direct
    /// rooms, so the sender can show "delivered".
    Delivered(EventId),
}

/// An ephemeral signal about a user of the sending node.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Ephemeral {
    /// The room it concerns (`None` for presence, which is per user).
    pub room: Option<RoomId>,
    /// The user (must be of the sending node).
    pub user: UserId,
    /// The signal.
    pub signal: Signal,
}

/// Why a peer refused something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum FedErrorCode {
    /// No common protocol version; the connection closes.
    UnsupportedVersion,
    /// A message did not decode.
    Malformed,
    /// A message type the receiver does not know (it goes on).
    UnknownMessage,
    /// The requester has no member in the room.
    NotInRoom,
    /// Too many requests or bad events; slow down.
    RateLimited,
    /// The node is shutting down.
    ShuttingDown,
    /// Something failed on the answering node.
    Internal,
    /// The requested blob is not held.
    NotFound,
}

/// An error report; `UnsupportedVersion` and `ShuttingDown` close the connection.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct FedError {
    /// What went wrong.
    pub code: FedErrorCode,
    /// For people and logs.
    pub message: String,
}

protocol_messages! {
    /// A frame of the federation protocol.
    FedMessage, "federation" {
        /// Opens a connection.
        Hello(Hello) = 0x01,
        /// Pushes or answers with events.
        Events(EventBatch) = 0x02,
        /// What the sender holds of a room.
        VersionVector(VersionVector) = 0x03,
        /// Asks for events after given origin sequences.
        Want(Want) = 0x04,
        /// Asks for events by id.
        GetEvents(GetEvents) = 0x05,
        /// Asks for a blob.
        BlobRequest(BlobRequest) = 0x06,
        /// A piece of a blob.
        BlobChunk(BlobChunk) = 0x07,
        /// Typing, presence, read positions.
        Ephemeral(Ephemeral) = 0x08,
        /// An error report.
        Error(FedError) = 0x09,
        /// Liveness probe with a nonce.
        Ping(u64) = 0x0a,
        /// Answer to a ping.
        Pong(u64) = 0x0b,
    }
}

fn at_most(what: &'static str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::invalid(
            what,
            format!("{len} entries, at most {max}"),
        ));
    }
    Ok(())
}

impl FedMessage {
    /// Checks counts and lengths (decode already bounded allocation).
    pub fn validate(&self) -> Result<()> {
        match self {
            FedMessage::Hello(h) => {
                if h.name.is_empty() || h.name.len() > MAX_NODE_NAME_LEN {
                    return Err(Error::invalid("node name", "must be 1 to 64 bytes"));
                }
                if h.version_min > h.version_max {
                    return Err(Error::invalid("hello", "version_min above version_max"));
                }
                Ok(())
            }
            FedMessage::Events(b) => at_most("event batch", b.events.len(), MAX_BATCH_EVENTS),
            FedMessage::VersionVector(v) => {
                at_most("version vector", v.origins.len(), MAX_VECTOR_ORIGINS)?;
                if !v.origins.windows(2).all(|w| w[0].origin < w[1].origin) {
                    return Err(Error::invalid(
                        "version vector",
                        "origins must be ascending and unique",
                    ));
                }
                Ok(())
            }
            FedMessage::Want(w) => at_most("want", w.since.len(), MAX_VECTOR_ORIGINS),
            FedMessage::GetEvents(g) => at_most("get-events", g.ids.len(), MAX_GET_EVENTS),
            FedMessage::BlobChunk(c) => {
                at_most("blob chunk", c.data.len(), MAX_BLOB_CHUNK)?;
                let end = c.offset.checked_add(c.data.len() as u64);
                if end.is_none_or(|end| end > c.total) {
                    return Err(Error::invalid("blob chunk", "extends past the blob's size"));
                }
                Ok(())
            }
            FedMessage::Error(e) => at_most("error message", e.message.len(), MAX_REASON_LEN),
            FedMessage::BlobRequest(_)
            | FedMessage::Ephemeral(_)
            | FedMessage::Ping(_)
            | FedMessage::Pong(_) => Ok(()),
        }
    }
}
