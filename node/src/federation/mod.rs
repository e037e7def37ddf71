//! Federation: replicating the rooms a node shares with its peers.
//!
//! - [`sync`]: the per-peer replication state machine. Sans-IO: frames and
//!   time in, frames and timers out; no `.await`, no clock, seeded jitter.
//! - The rooms it replicates are [`crate::rooms::NodeRooms`]'s; the
//!   replication face of them is [`sync::Rooms`].
//! - [`blobs`]: fetching an attachment from a peer, chunk by chunk.
//! - [`driver`]: the thin I/O layer, one tokio task per quinn connection
//!   moving bytes and timers between a [`sync::PeerSync`] and its socket.

pub mod blobs;
pub mod driver;
pub mod sync;
