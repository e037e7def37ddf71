//! The owner of the node's rooms: every room open, the recovery gate
//! (which rooms take local posts), the rooms awaited from peers, and the
//! one local post path ([`post`]). What peers ask of the rooms and give
//! them (version vectors, missing events, ingest with parking) is in
//! `peers`.

use std::collections::{BTreeMap, HashMap, HashSet};

use confab_wire::event::{Content, EventKind};
use confab_wire::{EventId, NodeId, NodeKey, RoomId, SignedEvent, UserId, VerifiedEvent};

use crate::engine::EventMeta;
use crate::error::{Error, Result};
use crate::metrics::{FederationMetrics, ReasonLabel};
use crate::store::{Room, Store};

mod parking;
mod peers;
pub mod post;

pub use parking::{
    PARKED_BYTES_MAX, PARKED_BYTES_PER_PEER, PARKED_BYTES_PER_ROOM, PARKED_TTL_MS,
    PENDING_ROOMS_PER_PEER,
};

pub use post::{Posted, post};

/// Most rooms awaited at once (invited to or asked for, not yet held).
pub const EXPECTED_MAX: usize = 10_000;
/// Most invites handed to a peer ahead of a room's history.
pub const INTRODUCTIONS_MAX: usize = 16;

/// Every room of a node, open for replication and local posting.
#[derive(Debug)]
pub struct NodeRooms {
    store: Store,
    /// This node.
    local: NodeId,
    rooms: HashMap<RoomId, Room>,
    /// Rooms holding events for the future ([`NodeRooms::release_due`]).
    holding: HashSet<RoomId>,
    /// Verified events whose ancestors have not arrived yet.
    parking: parking::Parking,
    /// Events from peers refused or rejected, by reason (for metrics).
    rejections: BTreeMap<String, u64>,
    /// Rooms not held yet that this node takes from peers: a local user
    /// was invited or asked to join.
    expected: HashSet<RoomId>,
    /// Rooms where this node may not post yet: a peer showed it holds
    /// more of this node's own chain, or (while recovering) not every peer
    /// in the room has shown its view yet.
    unconfirmed: HashSet<RoomId>,
    /// For unconfirmed rooms: peers whose latest vector holds no more of
    /// this node's chain than this node does.
    heard: HashMap<RoomId, HashSet<NodeId>>,
    recovering: bool,
    metrics: FederationMetrics,
}

impl NodeRooms {
    /// Opens every room in the store for node `local`.
    pub fn open(store: Store, local: NodeId) -> Result<NodeRooms> {
        let mut rooms = HashMap::new();
        for id in store.rooms()? {
            if let Some(r) = store.open_room(&id)? {
                rooms.insert(id, r);
            }
        }
        let recovering = store.recovering()?;
        // Only rooms that have not caught up since recovery began wait;
        // those that have need nothing from their peers after a restart.
        let mut unconfirmed = HashSet::new();
        if recovering {
            for id in rooms.keys() {
                if !store.caught_up(id)? {
                    unconfirmed.insert(*id);
                }
            }
        }
        let mut this = NodeRooms {
            store,
            local,
            rooms,
            holding: HashSet::new(),
            parking: parking::Parking::default(),
            rejections: BTreeMap::new(),
            expected: HashSet::new(),
            unconfirmed,
            heard: HashMap::new(),
            recovering,
            metrics: FederationMetrics::default(),
        };
        // A room no peer takes part in has no one to hear from.
        let alone: Vec<RoomId> = this
            .unconfirmed
            .iter()
            .filter(|r| this.room_peers(r).is_empty())
            .copied()
            .collect();
        for r in alone {
            this.unconfirmed.remove(&r);
        }
        Ok(this)
    }

    /// Keeps the store's caught-up mark in step (only while recovering:
    /// otherwise nothing waits at a restart).
    fn mark_caught_up(&self, room: &RoomId, on: bool) {
        if self.recovering
            && let Err(e) = self.store.set_caught_up(room, on)
        {
            // Unmarked, the room waits for its peers once more after a
            // restart: slower, never wrong.
            tracing::warn!(%room, error = %e, "could not record that the room caught up");
        }
    }

    /// The federation metrics (shared by clones).
    pub fn metrics(&self) -> &FederationMetrics {
        &self.metrics
    }

    /// Peer nodes that take part in the room: they have a member, an
    /// invitee or events there (they get its new events).
    pub fn room_peers(&self, room: &RoomId) -> Vec<NodeId> {
        let Some(r) = self.rooms.get(room) else {
            return Vec::new();
        };
        let e = r.engine();
        let mut out: Vec<NodeId> = e
            .version_vector()
            .into_keys()
            .chain(e.state().members.keys().map(|u| *u.node()))
            .filter(|n| *n != self.local)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// This node.
    pub fn local(&self) -> &NodeId {
        &self.local
    }

    /// Takes room `room` from peers once they offer it (a local user asked
    /// to join it).
    pub fn expect_room(&mut self, room: RoomId) {
        if self.expected.len() < EXPECTED_MAX {
            self.expected.insert(room);
        }
    }

    /// True if local users may post in the room now (see
    /// [`Error::CatchingUp`]).
    pub fn may_post(&self, room: &RoomId) -> bool {
        !self.unconfirmed.contains(room)
    }

    /// Rooms where this node is still catching up with its own chain.
    pub fn catching_up(&self) -> usize {
        self.unconfirmed.len()
    }

    /// True if `ev` tells this node it belongs in the room: its own event,
    /// or an invite of one of its users.
    fn introduces_us(&self, ev: &VerifiedEvent) -> bool {
        let h = ev.header();
        h.author.node() == &self.local
            || matches!(&h.kind, EventKind::Invite { target } if target.node() == &self.local)
    }

    /// Events from peers that were refused (bad signature, malformed,
    /// wrong room, broken structure) or rejected by the room's rules,
    /// counted by reason.
    pub fn rejections(&self) -> &BTreeMap<String, u64> {
        &self.rejections
    }

    fn count(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        self.metrics
            .events_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.clone(),
            })
            .inc();
        *self.rejections.entry(reason).or_default() += 1;
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A room.
    pub fn room(&self, id: &RoomId) -> Option<&Room> {
        self.rooms.get(id)
    }

    /// Creates a room from its create event (applied, not yet durable:
    /// wait with [`Store::wait_logged`] after giving the rooms back).
    pub fn create_room(&mut self, create: &VerifiedEvent) -> Result<()> {
        let room = self.store.create_room(create)?;
        self.rooms.insert(create.room(), room);
        self.expected.remove(&create.room());
        Ok(())
    }

    /// The room, if local users may post in it now.
    fn room_to_post(&mut self, room: &RoomId) -> Result<&mut Room> {
        if self.unconfirmed.contains(room) {
            return Err(Error::CatchingUp { room: *room });
        }
        self.rooms
            .get_mut(room)
            .ok_or(Error::NotFound { what: "room" })
    }

    /// Posts as a local user through [`crate::rooms::post`], once the
    /// room takes local posts (it is not catching up after a recovery).
    /// The rooms lock is held for the call: the idempotency check and the
    /// post are one step. Wait for durability after releasing it.
    #[allow(clippy::too_many_arguments)]
    pub fn post(
        &mut self,
        key: &NodeKey,
        author: &UserId,
        room: &RoomId,
        kind: EventKind,
        content: &Content,
        now: u64,
        once: Option<&str>,
    ) -> Result<Posted> {
        let store = self.store.clone();
        let r = self.room_to_post(room)?;
        crate::rooms::post(&store, r, key, author, kind, content, now, once)
    }

    /// Every room held, for listing (the caller filters by membership).
    pub fn rooms(&self) -> impl Iterator<Item = (&RoomId, &Room)> {
        self.rooms.iter()
    }

    fn record(&self, id: &EventId) -> Option<SignedEvent> {
        self.store.event(id).ok().flatten().map(|s| s.signed)
    }

    fn metas(
        &self,
        room: &Room,
        ids: impl IntoIterator<Item = EventId>,
    ) -> Vec<std::sync::Arc<EventMeta>> {
        let mut metas: Vec<_> = ids
            .into_iter()
            .filter_map(|id| room.engine().meta(&id))
            .collect();
        metas.sort_by_key(|m| m.position());
        metas.dedup_by_key(|m| m.id);
        metas
    }
}
