//! Replication with one peer, as a state machine.
//!
//! Call order, as in quinn-proto: feed input with [`PeerSync::handle_message`]
//! and [`PeerSync::handle_timeout`]; queue local events with
//! [`PeerSync::push`]; then drain [`PeerSync::poll_transmit`] and ask
//! [`PeerSync::poll_timeout`] when to call `handle_timeout` next.
//!
//! Protocol: both sides send `Hello`; after it, each sends the version
//! vector of every room they share. A side that sees it lacks something
//! sends one `Want` per room (its own vector as `since`); the answer is
//! `Events` in causal order followed by the answerer's vector, which makes
//! the asker look again and ask for the next part: flow control with one
//! request in flight per room. A vector whose head for some origin
//! sequence is an event this node does not hold reveals a forked chain:
//! that head is fetched with `GetEvents`. Events whose parents are missing
//! trigger `GetEvents` for the parents. Every few seconds vectors are sent
//! again (anti-entropy), so lost frames, partitions and restarts heal.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use confab_wire::fed::{
    BlobChunk, BlobRequest, Ephemeral, EventBatch, FED_PROTOCOL_VERSION, FedError, FedErrorCode,
    GetEvents, Hello, MAX_BATCH_EVENTS, MAX_GET_EVENTS, OriginHead, OriginSince, TraceId,
    VersionVector, Want,
};
use confab_wire::{BlobId, EventId, FedMessage, NodeId, RoomId, SignedEvent, VerifiedEvent};

/// Anti-entropy period.
pub const ANTI_ENTROPY_MS: u64 = 5_000;
/// Most events asked for at once.
pub const WANT_LIMIT: u32 = 4096;
/// Most bytes of events in one answer to a `Want` (a few frames); the
/// vector that closes the answer makes the asker ask for the rest, so
/// memory per answer is bounded however much the asker lacks.
pub const WANT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most bytes of events in one frame (the frame limit is 1 MiB).
pub const BATCH_BYTES_MAX: usize = 768 * 1024;
/// Invalid events a peer may send per window before it is slowed down.
pub const BAD_EVENTS_PER_WINDOW: u32 = 32;
/// The window over which invalid events are counted.
pub const BAD_WINDOW_MS: u64 = 10_000;
/// Times a peer is slowed down before it is disconnected.
pub const STRIKES_MAX: u32 = 3;
/// How long reading from a peer pauses at its first strike (doubling).
pub const PAUSE_MS: u64 = 1_000;
/// How long a peer's strikes are remembered after its last one, across
/// its connections (a redial does not wipe them).
pub const STRIKES_FORGOTTEN_MS: u64 = 10 * 60_000;
/// Prefix of the error message that says a blob is not held.
pub const BLOB_NOT_HELD: &str = "blob not held: ";

/// A peer node's standing for invalid events, carried from one of its
/// connections to the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Penalty {
    /// Strikes so far.
    pub strikes: u32,
    /// Until when its frames are not read (ms since epoch).
    pub paused_until: u64,
    /// When it last struck (ms since epoch).
    pub last_strike: u64,
}

/// What ingesting a peer's events gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Newly stored and durable (to be pushed on to other peers).
    pub accepted: Vec<SignedEvent>,
    /// Ancestors to fetch.
    pub missing: Vec<EventId>,
    /// Events that failed verification or the room's structure rules.
    pub invalid: u32,
    /// The batch started a room new to this node.
    pub new_room: bool,
}

/// Verifies a batch's signatures (on every core when it is large). The
/// driver calls this off the rooms lock and hands the result to
/// [`PeerSync::handle_events`].
pub fn verify_batch(events: Vec<SignedEvent>) -> Vec<confab_wire::Result<VerifiedEvent>> {
    crate::verify::verify_all(events)
}

/// The node's rooms, as replication needs them.
pub trait Rooms {
    /// Rooms this node shares with `peer` (the peer has a member, an
    /// invitee or events there).
    fn shared_rooms(&self, peer: &NodeId) -> Vec<RoomId>;
    /// True if this node holds the room.
    fn has_room(&self, room: &RoomId) -> bool;
    /// The room's version vector, ascending by origin.
    fn vector(&self, room: &RoomId) -> Vec<OriginHead>;
    /// True if the event is held.
    fn holds(&self, room: &RoomId, id: &EventId) -> bool;
    /// Events the asker lacks given what it has, in causal order, at most
    /// `limit` and about `max_bytes` (at least one event, then none that
    /// would pass the budget): the store is read no further.
    fn events_after(
        &self,
        room: &RoomId,
        since: &[OriginSince],
        limit: usize,
        max_bytes: usize,
    ) -> Vec<SignedEvent>;
    /// These events, those held, in causal order.
    fn events_by_id(&self, room: &RoomId, ids: &[EventId]) -> Vec<SignedEvent>;
    /// Judges and stores events from `from` (verified by
    /// [`verify_batch`]; failures are counted). They are applied, not yet
    /// durable: the caller waits for the store after giving the rooms
    /// back, and only then announces what was accepted.
    fn receive(
        &mut self,
        now: u64,
        from: &NodeId,
        room: &RoomId,
        events: Vec<confab_wire::Result<VerifiedEvent>>,
    ) -> Received;
    /// Notes `from`'s vector of a room (it may show that the peer holds
    /// more of this node's own chain than this node does).
    fn observe_vector(&mut self, room: &RoomId, from: &NodeId, origins: &[OriginHead]);
    /// Events that tell `peer`'s node it belongs in the room (invites of
    /// its users, its own latest event), sent ahead of the history to a
    /// peer that holds nothing of the room.
    fn introductions(&self, room: &RoomId, peer: &NodeId) -> Vec<SignedEvent>;
    /// Events at forked sequences of the room's chains above `since`
    /// (both branches of every fork), sent ahead of the rest.
    fn fork_twins(&self, room: &RoomId, since: &[OriginSince]) -> Vec<SignedEvent>;
    /// Bytes of a held blob from `offset`, with its size.
    fn blob(&self, blob: &BlobId, offset: u64) -> Option<(u64, Vec<u8>)>;
    /// True if `peer` may send this signal (its own user, a member of the
    /// room, or for presence a peer sharing some room).
    fn accepts_ephemeral(&self, peer: &NodeId, e: &Ephemeral) -> bool;
}

/// What the node must act on after a frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Events newly accepted from this peer, per room: push them to the others.
    pub accepted: Vec<(RoomId, SignedEvent)>,
    /// Ephemeral signals from the peer.
    pub ephemeral: Vec<Ephemeral>,
    /// The trace id of the frame the accepted events came in, if the
    /// sender traced it (a user's request on its node).
    pub trace: Option<TraceId>,
    /// Pieces of blobs this node asked for.
    pub blob_chunks: Vec<BlobChunk>,
    /// Blobs the peer said it does not hold.
    pub blobs_missing: Vec<BlobId>,
}

/// Replication with one peer.
#[derive(Debug)]
pub struct PeerSync {
    hello: Hello,
    peer: NodeId,
    version: Option<u16>,
    outbox: VecDeque<FedMessage>,
    pushes: BTreeMap<RoomId, (Vec<SignedEvent>, Option<TraceId>)>,
    wanting: BTreeSet<RoomId>,
    next_anti_entropy: u64,
    bad_window_start: u64,
    bad_in_window: u32,
    strikes: u32,
    last_strike: u64,
    paused_until: Option<u64>,
    closed: Option<String>,
    rng: u64,
    /// When fork branches were last asked for, per room.
    fork_wanted: BTreeMap<RoomId, u64>,
    /// When we last answered a repeated hello (at most once per period,
    /// so two peers cannot ping-pong hellos).
    hello_answered: Option<u64>,
}

impl PeerSync {
    /// Starts replication with `peer` (already authenticated by TLS).
    /// `seed` drives the jitter of the anti-entropy timer.
    pub fn new(hello: Hello, peer: NodeId, now: u64, seed: u64) -> PeerSync {
        let mut s = PeerSync {
            outbox: VecDeque::from([FedMessage::Hello(hello.clone())]),
            hello,
            peer,
            version: None,
            pushes: BTreeMap::new(),
            wanting: BTreeSet::new(),
            next_anti_entropy: now,
            bad_window_start: now,
            bad_in_window: 0,
            strikes: 0,
            last_strike: 0,
            paused_until: None,
            closed: None,
            rng: seed | 1,
            hello_answered: None,
            fork_wanted: BTreeMap::new(),
        };
        s.next_anti_entropy = now + s.jittered(ANTI_ENTROPY_MS);
        s
    }

    /// The peer.
    pub fn peer(&self) -> &NodeId {
        &self.peer
    }

    /// Why the connection must close, once it must.
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Until when the driver must not read from the peer (it sent too
    /// many invalid events and is being slowed down).
    pub fn paused_until(&self, now: u64) -> Option<u64> {
        self.paused_until.filter(|t| *t > now)
    }

    /// Asks the peer for a blob's bytes from `offset`.
    pub fn request_blob(&mut self, blob: BlobId, offset: u64) {
        if self.closed.is_none() {
            self.outbox
                .push_back(FedMessage::BlobRequest(BlobRequest { blob, offset }));
        }
    }

    /// Sends an ephemeral signal (dropped if the peer is not ready).
    pub fn send_ephemeral(&mut self, e: Ephemeral) {
        if self.is_ready() {
            self.outbox.push_back(FedMessage::Ephemeral(e));
        }
    }

    /// True once both sides have said hello.
    pub fn is_ready(&self) -> bool {
        self.version.is_some() && self.closed.is_none()
    }

    fn jittered(&mut self, ms: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        // ±20 %.
        ms * 4 / 5 + self.rng % (ms * 2 / 5 + 1)
    }

    fn close(&mut self, code: FedErrorCode, reason: String) {
        self.outbox.push_back(FedMessage::Error(FedError {
            code,
            message: reason.chars().take(200).collect(),
        }));
        self.closed.get_or_insert(reason);
    }

    /// Queues a new local or newly accepted event for the peer, with the
    /// trace id of the request that made it (kept for its batch).
    pub fn push(&mut self, room: RoomId, event: SignedEvent, trace: Option<TraceId>) {
        if self.closed.is_none() {
            let (events, t) = self.pushes.entry(room).or_default();
            events.push(event);
            if t.is_none() {
                *t = trace;
            }
        }
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<FedMessage> {
        if let Some(m) = self.outbox.pop_front() {
            return Some(m);
        }
        if !self.is_ready() {
            return None;
        }
        let room = *self.pushes.keys().next()?;
        let (events, trace) = self.pushes.remove(&room)?;
        let mut batches = batches(room, events, trace);
        let first = batches.pop_front();
        self.outbox.extend(batches);
        first
    }

    /// When to call [`PeerSync::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.closed.is_none().then_some(self.next_anti_entropy)
    }

    /// Runs timers: anti-entropy.
    pub fn handle_timeout(&mut self, now: u64, rooms: &impl Rooms) {
        if self.closed.is_some() || now < self.next_anti_entropy {
            return;
        }
        let period = self.jittered(ANTI_ENTROPY_MS);
        self.next_anti_entropy = now + period;
        if self.version.is_some() {
            // Forget requests that got no answer: they are asked anew.
            self.wanting.clear();
            self.send_vectors(rooms);
        } else {
            // No hello from the peer yet: say ours again (harmless twice).
            self.outbox.push_back(FedMessage::Hello(self.hello.clone()));
        }
    }

    fn send_vectors(&mut self, rooms: &impl Rooms) {
        for room in rooms.shared_rooms(&self.peer) {
            self.outbox
                .push_back(FedMessage::VersionVector(VersionVector {
                    room,
                    origins: rooms.vector(&room),
                }));
        }
    }

    /// Handles a frame from the peer.
    pub fn handle_message(&mut self, now: u64, msg: FedMessage, rooms: &mut impl Rooms) -> Effects {
        let mut effects = Effects::default();
        if self.closed.is_some() {
            return effects;
        }
        let hello_done = self.version.is_some();
        match msg {
            FedMessage::Hello(h) => {
                if h.node != self.peer {
                    self.close(
                        FedErrorCode::Malformed,
                        "hello names another node than the TLS key".into(),
                    );
                } else if let Some(v) = h.negotiate(self.hello.version_min, self.hello.version_max)
                {
                    if !hello_done {
                        self.version = Some(v);
                        self.send_vectors(rooms);
                    } else if self
                        .hello_answered
                        .is_none_or(|t| now >= t + ANTI_ENTROPY_MS / 2)
                    {
                        // The peer says hello again: it has not seen ours.
                        self.hello_answered = Some(now);
                        self.outbox.push_back(FedMessage::Hello(self.hello.clone()));
                    }
                } else {
                    self.close(
                        FedErrorCode::UnsupportedVersion,
                        format!(
                            "no common version: peer speaks {}..={}, we speak {}..={}",
                            h.version_min,
                            h.version_max,
                            self.hello.version_min,
                            self.hello.version_max
                        ),
                    );
                }
            }
            // Before the peer's hello nothing is acted on; anti-entropy
            // repeats whatever mattered once the hello is in.
            _ if !hello_done => {}
            FedMessage::VersionVector(v) => self.on_vector(now, v, rooms),
            FedMessage::Want(w) => self.on_want(w, rooms),
            FedMessage::GetEvents(g)
                if rooms.has_room(&g.room) && rooms.shared_rooms(&self.peer).contains(&g.room) =>
            {
                let events = rooms.events_by_id(&g.room, &g.ids);
                self.outbox.extend(batches(g.room, events, None));
            }
            FedMessage::Events(batch) => {
                let trace = batch.trace;
                let mut effects =
                    self.handle_events(now, batch.room, verify_batch(batch.events), rooms);
                effects.trace = trace;
                return effects;
            }
            // A node speaks only for its own users, in rooms they are in.
            FedMessage::Ephemeral(e) if rooms.accepts_ephemeral(&self.peer, &e) => {
                effects.ephemeral.push(e);
            }
            FedMessage::BlobRequest(r) => {
                let reply = match rooms.blob(&r.blob, r.offset) {
                    Some((total, data)) if !rooms.shared_rooms(&self.peer).is_empty() => {
                        FedMessage::BlobChunk(BlobChunk {
                            blob: r.blob,
                            offset: r.offset.min(total),
                            total,
                            data,
                        })
                    }
                    _ => FedMessage::Error(FedError {
                        code: FedErrorCode::NotFound,
                        message: format!("{BLOB_NOT_HELD}{}", r.blob),
                    }),
                };
                self.outbox.push_back(reply);
            }
            FedMessage::BlobChunk(c) => effects.blob_chunks.push(c),
            FedMessage::Ping(n) => self.outbox.push_back(FedMessage::Pong(n)),
            FedMessage::Error(e) => match e.code {
                FedErrorCode::UnsupportedVersion | FedErrorCode::ShuttingDown => {
                    self.closed = Some(format!("peer closed: {}", e.message));
                }
                FedErrorCode::NotFound => {
                    if let Some(blob) = e
                        .message
                        .strip_prefix(BLOB_NOT_HELD)
                        .and_then(|b| b.parse::<BlobId>().ok())
                    {
                        effects.blobs_missing.push(blob);
                    }
                }
                _ => {}
            },
            // Unshared rooms are not served; pongs need nothing.
            _ => {}
        }
        effects
    }

    /// Handles a batch of events from the peer whose signatures
    /// [`verify_batch`] checked.
    pub fn handle_events(
        &mut self,
        now: u64,
        room: RoomId,
        events: Vec<confab_wire::Result<VerifiedEvent>>,
        rooms: &mut impl Rooms,
    ) -> Effects {
        let mut effects = Effects::default();
        if self.closed.is_some() || self.version.is_none() {
            return effects;
        }
        let received = rooms.receive(now, &self.peer, &room, events);
        if !received.missing.is_empty() {
            let mut ids = received.missing;
            ids.truncate(MAX_GET_EVENTS);
            self.outbox
                .push_back(FedMessage::GetEvents(GetEvents { room, ids }));
        }
        if received.new_room {
            // Fetch the rest of the new room now, not at the next round.
            self.want(room, rooms);
        }
        self.note_invalid(now, received.invalid);
        effects
            .accepted
            .extend(received.accepted.into_iter().map(|e| (room, e)));
        effects
    }

    /// Counts invalid events: past the window's allowance the peer is
    /// told to slow down and not read for a while (doubling); at the
    /// last strike it is disconnected.
    fn note_invalid(&mut self, now: u64, invalid: u32) {
        if invalid == 0 {
            return;
        }
        if now >= self.bad_window_start + BAD_WINDOW_MS {
            self.bad_window_start = now;
            self.bad_in_window = 0;
        }
        self.bad_in_window += invalid;
        if self.bad_in_window <= BAD_EVENTS_PER_WINDOW {
            return;
        }
        self.strikes += 1;
        self.last_strike = now;
        self.bad_window_start = now;
        self.bad_in_window = 0;
        if self.strikes > STRIKES_MAX {
            // Its next connection is not read for a while either.
            self.paused_until = Some(now + (PAUSE_MS << STRIKES_MAX));
            self.close(
                FedErrorCode::RateLimited,
                format!("kept sending invalid events after {STRIKES_MAX} warnings; disconnecting"),
            );
            return;
        }
        let pause = PAUSE_MS << (self.strikes - 1);
        self.paused_until = Some(now + pause);
        self.outbox.push_back(FedMessage::Error(FedError {
            code: FedErrorCode::RateLimited,
            message: format!(
                "more than {BAD_EVENTS_PER_WINDOW} invalid events in {} s; not reading from you for {pause} ms",
                BAD_WINDOW_MS / 1000
            ),
        }));
    }

    /// Strikes so far (for logs and tests).
    pub fn strikes(&self) -> u32 {
        self.strikes
    }

    /// The peer's standing, to carry to its next connection.
    pub fn penalty(&self) -> Penalty {
        Penalty {
            strikes: self.strikes,
            paused_until: self.paused_until.unwrap_or(0),
            last_strike: self.last_strike,
        }
    }

    /// Takes up the standing the peer had on its previous connection, unless
    /// its last strike is long enough ago to be forgotten.
    pub fn resume(&mut self, penalty: Penalty, now: u64) {
        if penalty.strikes == 0 || now >= penalty.last_strike + STRIKES_FORGOTTEN_MS {
            return;
        }
        self.strikes = penalty.strikes;
        self.last_strike = penalty.last_strike;
        self.paused_until = Some(penalty.paused_until).filter(|t| *t > now);
    }

    fn want(&mut self, room: RoomId, rooms: &impl Rooms) {
        self.wanting.insert(room);
        let since = rooms
            .vector(&room)
            .into_iter()
            .map(|o| OriginSince {
                origin: o.origin,
                after_seq: o.seq,
            })
            .collect();
        self.outbox.push_back(FedMessage::Want(Want {
            room,
            since,
            limit: WANT_LIMIT,
        }));
    }

    fn on_vector(&mut self, now: u64, v: VersionVector, rooms: &mut impl Rooms) {
        let room = v.room;
        self.wanting.remove(&room);
        rooms.observe_vector(&room, &self.peer, &v.origins);
        let vector = rooms.vector(&room);
        let mine: BTreeMap<NodeId, &OriginHead> = vector.iter().map(|o| (o.origin, o)).collect();
        let mut lacking = false;
        let mut forks = Vec::new();
        // Origins whose fork branches differ: fetched from the fork on.
        let mut fork_points: BTreeMap<NodeId, u64> = BTreeMap::new();
        for theirs in &v.origins {
            match mine.get(&theirs.origin) {
                Some(m) if m.seq >= theirs.seq => {
                    if !rooms.holds(&room, &theirs.head) {
                        forks.push(theirs.head);
                    }
                    if theirs.forks != 0 && theirs.forks != m.forks {
                        let at = match m.forked_at {
                            0 => theirs.forked_at,
                            mine_at => mine_at.min(theirs.forked_at),
                        };
                        fork_points.insert(theirs.origin, at.saturating_sub(1));
                    }
                }
                _ => lacking = true,
            }
        }
        if !fork_points.is_empty()
            && self
                .fork_wanted
                .get(&room)
                .is_none_or(|t| now >= t + ANTI_ENTROPY_MS)
        {
            // At most once a period: if the peer cannot take our branches
            // the two would otherwise ask each other without end.
            self.fork_wanted.insert(room, now);
            let since = vector
                .iter()
                .map(|o| OriginSince {
                    origin: o.origin,
                    after_seq: fork_points.get(&o.origin).copied().unwrap_or(o.seq),
                })
                .collect();
            self.wanting.insert(room);
            self.outbox.push_back(FedMessage::Want(Want {
                room,
                since,
                limit: WANT_LIMIT,
            }));
            lacking = false;
        }
        if !forks.is_empty() {
            forks.truncate(MAX_GET_EVENTS);
            self.outbox
                .push_back(FedMessage::GetEvents(GetEvents { room, ids: forks }));
        }
        if lacking {
            self.want(room, rooms);
        }
    }

    fn on_want(&mut self, w: Want, rooms: &impl Rooms) {
        if !rooms.has_room(&w.room) || !rooms.shared_rooms(&self.peer).contains(&w.room) {
            self.outbox.push_back(FedMessage::Error(FedError {
                code: FedErrorCode::NotInRoom,
                message: format!("{} is not shared with you", w.room),
            }));
            return;
        }
        let limit = w.limit.min(WANT_LIMIT) as usize;
        let mut events = Vec::new();
        if w.since.is_empty() {
            // The asker holds nothing of the room: first what tells it
            // that it belongs there.
            events = rooms.introductions(&w.room, &self.peer);
        }
        // Fork branches may lie below the asker's tips: they go first, so
        // every branch reaches every node.
        events.extend(rooms.fork_twins(&w.room, &w.since));
        let used: usize = events.iter().map(SignedEvent::wire_len).sum();
        events.extend(rooms.events_after(
            &w.room,
            &w.since,
            limit,
            WANT_BYTES_MAX.saturating_sub(used),
        ));
        self.outbox.extend(batches(w.room, events, None));
        // The vector closes the answer: the asker looks again.
        self.outbox
            .push_back(FedMessage::VersionVector(VersionVector {
                room: w.room,
                origins: rooms.vector(&w.room),
            }));
    }
}

/// Splits events into frames that respect the count and byte limits.
fn batches(room: RoomId, events: Vec<SignedEvent>, trace: Option<TraceId>) -> VecDeque<FedMessage> {
    let mut out = VecDeque::new();
    let mut current: Vec<SignedEvent> = Vec::new();
    let mut bytes = 0;
    for e in events {
        let len = e.wire_len() + 16;
        if !current.is_empty()
            && (current.len() == MAX_BATCH_EVENTS || bytes + len > BATCH_BYTES_MAX)
        {
            out.push_back(FedMessage::Events(EventBatch {
                room,
                trace,
                events: std::mem::take(&mut current),
            }));
            bytes = 0;
        }
        bytes += len;
        current.push(e);
    }
    if !current.is_empty() {
        out.push_back(FedMessage::Events(EventBatch {
            room,
            trace,
            events: current,
        }));
    }
    out
}

/// This node's hello.
pub fn hello(node: NodeId, name: &str) -> Hello {
    Hello {
        version_min: FED_PROTOCOL_VERSION,
        version_max: FED_PROTOCOL_VERSION,
        node,
        name: name.to_string(),
        capabilities: 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rooms::NodeRooms;
    use crate::store::Store;
    use confab_wire::NodeKey;

    fn key(n: u8) -> NodeKey {
        NodeKey::from_secret(&[n; 32])
    }

    fn rooms() -> NodeRooms {
        NodeRooms::open(Store::temporary().unwrap(), key(1).node_id()).unwrap()
    }

    fn drain(s: &mut PeerSync) -> Vec<FedMessage> {
        std::iter::from_fn(|| s.poll_transmit()).collect()
    }

    #[test]
    fn hello_is_sent_first_and_versions_are_negotiated() {
        let (a, b) = (key(1).node_id(), key(2).node_id());
        let mut s = PeerSync::new(hello(a, "a"), b, 0, 7);
        assert!(matches!(drain(&mut s).as_slice(), [FedMessage::Hello(h)] if h.node == a));
        let mut r = rooms();
        s.handle_message(0, FedMessage::Hello(hello(b, "b")), &mut r);
        assert!(s.is_ready());
        // A peer that speaks only version 2.
        let mut s = PeerSync::new(hello(a, "a"), b, 0, 7);
        drain(&mut s);
        let mut h = hello(b, "b");
        h.version_min = 2;
        h.version_max = 3;
        s.handle_message(0, FedMessage::Hello(h), &mut r);
        let out = drain(&mut s);
        assert!(matches!(
            out.as_slice(),
            [FedMessage::Error(FedError {
                code: FedErrorCode::UnsupportedVersion,
                ..
            })]
        ));
        assert!(s.closed().unwrap().contains("no common version"));
    }

    #[test]
    fn a_hello_for_another_node_closes_the_connection() {
        let (a, b, c) = (key(1).node_id(), key(2).node_id(), key(3).node_id());
        let mut s = PeerSync::new(hello(a, "a"), b, 0, 7);
        drain(&mut s);
        s.handle_message(0, FedMessage::Hello(hello(c, "c")), &mut rooms());
        assert!(s.closed().is_some());
        assert!(!s.is_ready());
    }

    #[test]
    fn an_answer_to_a_want_is_bounded_in_bytes() {
        use confab_wire::event::{Content, CreateRoom, MessageContent, ReasonContent, Visibility};
        use confab_wire::{EventHeader, EventKind, UserId};
        let (a, b) = (key(1), key(2));
        let mut r = rooms();
        let owner = UserId::new(a.node_id(), "owner").unwrap();
        let create = a
            .sign_event(
                EventHeader::create(
                    owner.clone(),
                    CreateRoom::named("big", Visibility::Public, false),
                    1,
                ),
                &Content::Empty,
            )
            .unwrap();
        let room = create.room();
        r.create_room(&create).unwrap();
        let bee = UserId::new(b.node_id(), "bee").unwrap();
        let invite = EventKind::Invite { target: bee };
        let reason = Content::Reason(ReasonContent::default());
        r.post(&a, &owner, &room, invite, &reason, 2, None).unwrap();
        let body = Content::Message(MessageContent {
            body: "y".repeat(confab_wire::event::MAX_BODY_LEN),
            ..Default::default()
        });
        let total = 2 * WANT_BYTES_MAX / confab_wire::event::MAX_BODY_LEN;
        for i in 0..total as u64 {
            let kind = EventKind::Message;
            r.post(&a, &owner, &room, kind, &body, 3 + i, None).unwrap();
        }
        let mut s = PeerSync::new(hello(a.node_id(), "a"), b.node_id(), 0, 7);
        s.handle_message(0, FedMessage::Hello(hello(b.node_id(), "b")), &mut r);
        drain(&mut s);
        let want = Want {
            room,
            since: vec![],
            limit: WANT_LIMIT,
        };
        s.handle_message(1, FedMessage::Want(want), &mut r);
        let out = drain(&mut s);
        let (events, bytes) = out.iter().fold((0, 0), |(n, b), m| match m {
            FedMessage::Events(batch) => (
                n + batch.events.len(),
                b + batch
                    .events
                    .iter()
                    .map(SignedEvent::wire_len)
                    .sum::<usize>(),
            ),
            _ => (n, b),
        });
        assert!(bytes <= WANT_BYTES_MAX, "{bytes} bytes in one answer");
        assert!(events > 1 && events < total, "{events} of {total}");
        // The vector closes the answer, so the asker asks for the rest.
        assert!(matches!(out.last(), Some(FedMessage::VersionVector(_))));
    }

    #[test]
    fn unshared_rooms_are_not_served() {
        let (a, b) = (key(1).node_id(), key(2).node_id());
        let mut s = PeerSync::new(hello(a, "a"), b, 0, 7);
        let mut r = rooms();
        s.handle_message(0, FedMessage::Hello(hello(b, "b")), &mut r);
        drain(&mut s);
        let want = Want {
            room: RoomId([5; 32]),
            since: vec![],
            limit: 10,
        };
        s.handle_message(1, FedMessage::Want(want), &mut r);
        assert!(matches!(
            drain(&mut s).as_slice(),
            [FedMessage::Error(FedError {
                code: FedErrorCode::NotInRoom,
                ..
            })]
        ));
    }

    #[test]
    fn a_peer_sending_garbage_events_is_disconnected() {
        let (a, b) = (key(1).node_id(), key(2).node_id());
        let mut s = PeerSync::new(hello(a, "a"), b, 0, 7);
        let mut r = rooms();
        s.handle_message(0, FedMessage::Hello(hello(b, "b")), &mut r);
        drain(&mut s);
        let junk = SignedEvent {
            header: vec![1, 2, 3],
            signature: [0; 64],
            content: None,
        };
        let mut rounds = 0;
        while s.closed().is_none() {
            rounds += 1;
            assert!(rounds < 100, "never disconnected");
            let batch = EventBatch {
                room: RoomId([5; 32]),
                trace: None,
                events: vec![junk.clone(); 8],
            };
            let effects = s.handle_message(rounds, FedMessage::Events(batch), &mut r);
            assert!(effects.accepted.is_empty());
        }
        assert!(s.closed().unwrap().contains("invalid events"));
        assert!(drain(&mut s).iter().any(|m| matches!(
            m,
            FedMessage::Error(FedError {
                code: FedErrorCode::RateLimited,
                ..
            })
        )));
    }

    #[test]
    fn strikes_outlive_the_connection_until_forgotten() {
        let (a, b) = (key(1).node_id(), key(2).node_id());
        let mut r = rooms();
        let junk = SignedEvent {
            header: vec![1, 2, 3],
            signature: [0; 64],
            content: None,
        };
        let strike = |s: &mut PeerSync, now: u64, r: &mut NodeRooms| {
            let batch = EventBatch {
                room: RoomId([5; 32]),
                trace: None,
                events: vec![junk.clone(); BAD_EVENTS_PER_WINDOW as usize + 1],
            };
            s.handle_message(now, FedMessage::Events(batch), r);
        };
        let mut first = PeerSync::new(hello(a, "a"), b, 0, 7);
        first.handle_message(0, FedMessage::Hello(hello(b, "b")), &mut r);
        strike(&mut first, 10, &mut r);
        assert_eq!(first.strikes(), 1);
        let penalty = first.penalty();
        assert_eq!(penalty.paused_until, 10 + PAUSE_MS);
        // A redial takes up the standing: still paused, and the next strike
        // is the second.
        let mut second = PeerSync::new(hello(a, "a"), b, 20, 7);
        second.resume(penalty, 20);
        second.handle_message(20, FedMessage::Hello(hello(b, "b")), &mut r);
        assert_eq!(second.paused_until(20), Some(10 + PAUSE_MS));
        strike(&mut second, 5_000, &mut r);
        assert_eq!(second.strikes(), 2);
        assert_eq!(second.paused_until(5_000), Some(5_000 + 2 * PAUSE_MS));
        // Long after the last strike, a connection starts clean.
        let later = 5_000 + STRIKES_FORGOTTEN_MS;
        let mut third = PeerSync::new(hello(a, "a"), b, later, 7);
        third.resume(second.penalty(), later);
        assert_eq!(third.strikes(), 0);
        assert_eq!(third.paused_until(later), None);
    }
}
