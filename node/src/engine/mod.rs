//! The room engine: a deterministic function of a room's events.
//!
//! No I/O, no clock (time comes in as `now`), no randomness. Input: verified
//! events. Output: an [`Admission`] for the new event, the verdicts of
//! earlier events that changed, and the room's state.
//!
//! ## Acceptance pipeline
//! 1. **Shape** (`confab-wire`): signature, id, header rules. Failures never reach here.
//! 2. **Structure** (here, [`Refusal`]): right room, parents and origin
//!    predecessor present (else [`Refusal::MissingParents`]: fetch them),
//!    `depth` = 1 + max parent depth, the origin chain extended by exactly
//!    one. A refused event is dropped: every node refuses it alike, since
//!    this depends only on the event and its ancestors.
//! 3. **Clock**: an event more than [`MAX_FUTURE_SKEW_MS`] ahead of `now` is
//!    held and admitted when its time comes.
//! 4. **Order and auth**: the event is placed at `(depth, EventId)` and the
//!    room state is the fold of [`auth::judge`]/[`auth::apply`] over events in
//!    that order. A rejected event is kept, marked, and has no effect.
//!
//! ## Sanctions reach back along origin chains
//! A ban, kick, mute or role revocation names the target's origin sequence
//! known to its issuer (`cutoff`). Every event of the target with a higher
//! `origin_seq` is judged under the sanction even where it sorts *before*
//! the sanction, so pointing new events at old parents escapes nothing.
//! Which sanctions stand is itself decided by the fold, so the engine
//! iterates: it starts from every sanction in the affected region, folds,
//! keeps the sanctions that were accepted, and folds again until the set is
//! stable (at most [`MAX_SANCTION_ROUNDS`] rounds; the result is a function
//! of the event set either way). Of two concurrent sanctions against each
//! other, the one that sorts later stands.
//!
//! ## Equivocation
//! Two events with one `(origin, origin_seq)` prove the origin forked its
//! chain: every event of that origin from that sequence on is rejected, on
//! every node that holds both.

pub mod auth;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bincode::{Decode, Encode};
use confab_wire::event::{EventKind, IDEMPOTENCY_SINCE};
use confab_wire::{EventHeader, EventId, NodeId, RoomId, UserId, VerifiedEvent};
use sha2::{Digest, Sha256};

pub use auth::{Overlay, Rejection, TargetInfo};
pub use state::{Membership, RoomState};

/// How far ahead of the node's clock an event's `ts` may be before it is held.
pub const MAX_FUTURE_SKEW_MS: u64 = 30_000;
/// Events further ahead than this are refused, not held (their origin's
/// clock is broken; anti-entropy offers them again later).
pub const HOLD_HORIZON_MS: u64 = 3_600_000;
/// Most bytes of events a room holds for the future; more are refused.
pub const HELD_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Events between state checkpoints (bounds the cost of a re-fold).
pub const CHECKPOINT_EVERY: u64 = 256;
/// Most rounds of the sanction fixpoint.
pub const MAX_SANCTION_ROUNDS: usize = 8;

/// An event's place in the room order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Position {
    /// Its depth.
    pub depth: u64,
    /// Its id (the tie-break).
    pub id: EventId,
}

impl Position {
    /// Before every event of depth 1 or more (just after the create event).
    pub const AFTER_CREATE: Position = Position {
        depth: 1,
        id: EventId([0; 32]),
    };
}

/// What the fold needs of an event: its header, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct EventMeta {
    /// Its id.
    pub id: EventId,
    /// Its depth.
    pub depth: u64,
    /// Its author.
    pub author: UserId,
    /// Its origin sequence.
    pub seq: u64,
    /// Its origin predecessor.
    pub origin_prev: Option<EventId>,
    /// Its timestamp.
    pub ts: u64,
    /// Its kind.
    pub kind: EventKind,
    /// Its parents.
    pub prev: Vec<EventId>,
}

impl EventMeta {
    /// From a verified header.
    pub fn new(id: EventId, h: &EventHeader) -> Self {
        EventMeta {
            id,
            depth: h.depth,
            author: h.author.clone(),
            seq: h.origin_seq,
            origin_prev: h.origin_prev,
            ts: h.ts,
            kind: h.kind.clone(),
            prev: h.prev.clone(),
        }
    }

    /// Its place in the order.
    pub fn position(&self) -> Position {
        Position {
            depth: self.depth,
            id: self.id,
        }
    }

    /// The origin node.
    pub fn origin(&self) -> &NodeId {
        self.author.node()
    }

    /// The message this event relates to (edit, redaction, reaction, pin).
    pub fn relation_target(&self) -> Option<EventId> {
        match &self.kind {
            EventKind::Edit { target }
            | EventKind::Redact { target }
            | EventKind::React { target, .. }
            | EventKind::Unreact { target, .. }
            | EventKind::Pin { target }
            | EventKind::Unpin { target } => Some(*target),
            _ => None,
        }
    }

    /// The sanction this event claims, if it is one.
    fn claim(&self) -> Option<(UserId, u64)> {
        match &self.kind {
            EventKind::Ban { target, cutoff }
            | EventKind::Kick { target, cutoff }
            | EventKind::Mute { target, cutoff, .. }
            | EventKind::RoleRevoke { target, cutoff, .. } => Some((target.clone(), *cutoff)),
            _ => None,
        }
    }
}

/// The room's judgement of an event at its place.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Verdict {
    /// Accepted: shown and in effect.
    Accepted,
    /// Rejected: kept for convergence, never shown.
    Rejected(Rejection),
}

impl Verdict {
    /// True if accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted)
    }
}

/// Why an event was not admitted at all (it is not stored).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The event belongs to another room.
    #[error("event belongs to room {0}")]
    WrongRoom(RoomId),
    /// Ancestors are missing; fetch them and submit again.
    #[error("{} ancestors missing", .0.len())]
    MissingParents(Vec<EventId>),
    /// `depth` is not 1 + the greatest parent depth.
    #[error("depth {got}, expected {expected}")]
    BadDepth {
        /// The event's depth.
        got: u64,
        /// 1 + max parent depth.
        expected: u64,
    },
    /// The origin chain is not extended by exactly one.
    #[error("origin chain broken: {0}")]
    BrokenChain(&'static str),
    /// Not a create event (to start a room).
    #[error("a room starts with its create event")]
    NotCreate,
    /// Its `ts` is more than [`HOLD_HORIZON_MS`] ahead of this node's clock.
    #[error("dated too far ahead of this node's clock")]
    TooFarAhead,
    /// The room holds [`HELD_BYTES_MAX`] of future events already.
    #[error("too many events held for the future")]
    HeldFull,
    /// The event has a form the room's rules version does not know (a
    /// node of that version could not even decode it).
    #[error("this room's rules version has no {0}")]
    NotInRulesVersion(&'static str),
}

impl Refusal {
    /// A short stable name for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::WrongRoom(_) => "wrong_room",
            Refusal::MissingParents(_) => "missing_parents",
            Refusal::BadDepth { .. } => "bad_depth",
            Refusal::BrokenChain(_) => "broken_chain",
            Refusal::NotCreate => "not_create",
            Refusal::TooFarAhead => "too_far_ahead",
            Refusal::HeldFull => "held_full",
            Refusal::NotInRulesVersion(_) => "not_in_rules_version",
        }
    }
}

/// What happened to a submitted event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Stored and judged; `changed` lists earlier events whose verdict flipped.
    Applied {
        /// Its verdict.
        verdict: Verdict,
        /// Earlier events whose verdict changed (a re-fold).
        changed: Vec<(EventId, Verdict)>,
    },
    /// Already held.
    Duplicate,
    /// Its time has not come; submit again at or after `until`.
    Held {
        /// When it may be admitted (ms since epoch).
        until: u64,
    },
}

/// Where the engine keeps a room's events, verdicts and checkpoints: in
/// memory ([`MemHistory`]) for tests and simulation, in sled for a node.
/// Reads must see the engine's own writes at once.
pub trait History {
    /// Header data of a held event.
    fn meta(&self, id: &EventId) -> Option<Arc<EventMeta>>;
    /// An event's verdict.
    fn verdict(&self, id: &EventId) -> Option<Verdict>;
    /// Records a new event with its verdict.
    fn insert(&mut self, meta: Arc<EventMeta>, verdict: Verdict);
    /// Changes an event's verdict.
    fn set_verdict(&mut self, id: &EventId, verdict: Verdict);
    /// Positions in room order from `from` (inclusive) to the tip.
    fn positions_from(&self, from: Position) -> Vec<Position>;
    /// Events of `origin` with sequence `from_seq` or above, ascending.
    fn chain_from(&self, origin: &NodeId, from_seq: u64, limit: usize) -> Vec<(u64, EventId)>;
    /// The checkpoint with the greatest key at or before `pos`: the state
    /// before that key.
    fn checkpoint_at_or_before(&self, pos: Position) -> Option<(Position, RoomState)>;
    /// Stores a checkpoint.
    fn put_checkpoint(&mut self, key: Position, state: RoomState);
    /// Drops the checkpoints with keys after `key`.
    fn drop_checkpoints_after(&mut self, key: Position);
    /// Events that relate to `target` (edits, redactions, reactions, pins).
    fn relations(&self, target: &EventId) -> Vec<EventId>;
}

/// A [`History`] in memory.
#[derive(Clone, Debug, Default)]
pub struct MemHistory {
    entries: HashMap<EventId, (Arc<EventMeta>, Verdict)>,
    order: BTreeSet<Position>,
    chains: HashMap<NodeId, BTreeMap<u64, Vec<EventId>>>,
    checkpoints: BTreeMap<Position, RoomState>,
    relations: HashMap<EventId, Vec<EventId>>,
}

impl History for MemHistory {
    fn meta(&self, id: &EventId) -> Option<Arc<EventMeta>> {
        self.entries.get(id).map(|(m, _)| m.clone())
    }

    fn verdict(&self, id: &EventId) -> Option<Verdict> {
        self.entries.get(id).map(|(_, v)| v.clone())
    }

    fn insert(&mut self, meta: Arc<EventMeta>, verdict: Verdict) {
        self.order.insert(meta.position());
        self.chains
            .entry(*meta.origin())
            .or_default()
            .entry(meta.seq)
            .or_default()
            .push(meta.id);
        if let Some(t) = meta.relation_target() {
            self.relations.entry(t).or_default().push(meta.id);
        }
        self.entries.insert(meta.id, (meta, verdict));
    }

    fn set_verdict(&mut self, id: &EventId, verdict: Verdict) {
        if let Some(e) = self.entries.get_mut(id) {
            e.1 = verdict;
        }
    }

    fn positions_from(&self, from: Position) -> Vec<Position> {
        self.order.range(from..).copied().collect()
    }

    fn chain_from(&self, origin: &NodeId, from_seq: u64, limit: usize) -> Vec<(u64, EventId)> {
        self.chains
            .get(origin)
            .map(|c| {
                c.range(from_seq..)
                    .flat_map(|(s, ids)| ids.iter().map(move |id| (*s, *id)))
                    .take(limit)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn checkpoint_at_or_before(&self, pos: Position) -> Option<(Position, RoomState)> {
        self.checkpoints
            .range(..=pos)
            .next_back()
            .map(|(k, s)| (*k, s.clone()))
    }

    fn put_checkpoint(&mut self, key: Position, state: RoomState) {
        self.checkpoints.insert(key, state);
    }

    fn drop_checkpoints_after(&mut self, key: Position) {
        let _ = self.checkpoints.split_off(&next_position(key));
    }

    fn relations(&self, target: &EventId) -> Vec<EventId> {
        self.relations.get(target).cloned().unwrap_or_default()
    }
}

impl MemHistory {
    /// Event ids in room order.
    pub fn ordered_ids(&self) -> impl DoubleEndedIterator<Item = EventId> + '_ {
        self.order.iter().map(|p| p.id)
    }
}

/// What the engine keeps in memory between events: small, whatever the
/// room's size, so that a room opens without reading its history.
/// `R` is [`state::Rules`] but in the store's migration of schema 1.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Hot<R = state::Rules> {
    /// The room's create event.
    pub create: Arc<EventMeta>,
    /// Events with no children.
    pub heads: BTreeSet<EventId>,
    /// Per origin: its highest sequence and the event(s) there.
    pub tips: BTreeMap<NodeId, (u64, Vec<EventId>)>,
    /// Origins caught equivocating, with the first forked sequence.
    pub forks: BTreeMap<NodeId, u64>,
    /// Sanction events: position → (target, cutoff).
    pub claims: BTreeMap<Position, (UserId, u64)>,
    /// The last position in the order.
    pub last: Position,
    /// Number of events held.
    pub count: u64,
    /// State after every event.
    pub state: RoomState<R>,
    /// Events since the last checkpoint.
    pub since_checkpoint: u64,
}

impl<R> Hot<R> {
    /// The rules version the room's create event names.
    pub fn rules_version(&self) -> u16 {
        match &self.create.kind {
            EventKind::Create(c) => c.version,
            _ => 1,
        }
    }

    /// The same hot state with other rules (the store's schema migration).
    pub fn map_rules<S>(self, f: impl FnOnce(R) -> S) -> Hot<S> {
        Hot {
            create: self.create,
            heads: self.heads,
            tips: self.tips,
            forks: self.forks,
            claims: self.claims,
            last: self.last,
            count: self.count,
            state: self.state.map_rules(f),
            since_checkpoint: self.since_checkpoint,
        }
    }
}

/// One room's order, verdicts and state over a [`History`].
#[derive(Debug)]
pub struct RoomEngine<H: History = MemHistory> {
    room: RoomId,
    history: H,
    hot: Hot,
    claims_by_target: HashMap<UserId, BTreeSet<Position>>,
    held: BTreeMap<(u64, EventId), VerifiedEvent>,
    /// Wire bytes of `held`.
    held_bytes: usize,
}

impl RoomEngine<MemHistory> {
    /// Starts a room from its create event, in memory.
    pub fn new(create: &VerifiedEvent) -> Result<Self, Refusal> {
        Self::create(create, MemHistory::default())
    }
}

impl<H: History> RoomEngine<H> {
    /// Starts a room from its create event in an empty history.
    pub fn create(create: &VerifiedEvent, mut history: H) -> Result<Self, Refusal> {
        let h = create.header();
        let EventKind::Create(c) = &h.kind else {
            return Err(Refusal::NotCreate);
        };
        let meta = Arc::new(EventMeta::new(create.id(), h));
        let room = create.room();
        let mut state = RoomState::new(room, h.author.clone(), c.direct, h.origin_seq, c.version);
        state.apply_settings(&c.settings);
        history.insert(meta.clone(), Verdict::Accepted);
        history.put_checkpoint(Position::AFTER_CREATE, state.clone());
        let hot = Hot {
            create: meta.clone(),
            heads: BTreeSet::from([meta.id]),
            tips: BTreeMap::from([(*meta.origin(), (meta.seq, vec![meta.id]))]),
            forks: BTreeMap::new(),
            claims: BTreeMap::new(),
            last: meta.position(),
            count: 1,
            state,
            since_checkpoint: 0,
        };
        Ok(Self::open(history, hot))
    }

    /// Reopens a room from its history and saved hot state.
    pub fn open(history: H, hot: Hot) -> Self {
        let mut claims_by_target: HashMap<UserId, BTreeSet<Position>> = HashMap::new();
        for (pos, (target, _)) in &hot.claims {
            claims_by_target
                .entry(target.clone())
                .or_default()
                .insert(*pos);
        }
        RoomEngine {
            room: hot.create.id.into(),
            history,
            hot,
            claims_by_target,
            held: BTreeMap::new(),
            held_bytes: 0,
        }
    }

    /// The room's id.
    pub fn room(&self) -> RoomId {
        self.room
    }

    /// The state after every event held.
    pub fn state(&self) -> &RoomState {
        &self.hot.state
    }

    /// What must be saved to reopen the room without reading its history.
    pub fn hot(&self) -> &Hot {
        &self.hot
    }

    /// The history.
    pub fn history(&self) -> &H {
        &self.history
    }

    /// The history, mutably (for the store to take its pending writes).
    pub fn history_mut(&mut self) -> &mut H {
        &mut self.history
    }

    /// Number of events held (accepted or rejected).
    pub fn len(&self) -> u64 {
        self.hot.count
    }

    /// Never true: a room holds at least its create event.
    pub fn is_empty(&self) -> bool {
        self.hot.count == 0
    }

    /// True if the event is held.
    pub fn contains(&self, id: &EventId) -> bool {
        self.history.meta(id).is_some()
    }

    /// An event's verdict.
    pub fn verdict(&self, id: &EventId) -> Option<Verdict> {
        self.history.verdict(id)
    }

    /// An event's header data.
    pub fn meta(&self, id: &EventId) -> Option<Arc<EventMeta>> {
        self.history.meta(id)
    }

    /// The room's current heads (events with no children), ascending.
    pub fn heads(&self) -> &BTreeSet<EventId> {
        &self.hot.heads
    }

    /// The highest origin sequence held for `origin`, with its event(s).
    pub fn origin_tip(&self, origin: &NodeId) -> Option<(u64, &[EventId])> {
        self.hot
            .tips
            .get(origin)
            .map(|(s, ids)| (*s, ids.as_slice()))
    }

    /// Every origin's tip: the room's version vector.
    pub fn version_vector(&self) -> BTreeMap<NodeId, (u64, EventId)> {
        self.hot
            .tips
            .iter()
            .map(|(n, (s, ids))| (*n, (*s, ids[0])))
            .collect()
    }

    /// Origins caught equivocating, with the first forked sequence.
    pub fn forks(&self) -> &BTreeMap<NodeId, u64> {
        &self.hot.forks
    }

    /// Events of `origin` at forked sequences from `from_seq` on (two or
    /// more events with one sequence), ascending by sequence.
    pub fn fork_twins(&self, origin: &NodeId, from_seq: u64) -> Vec<EventId> {
        let Some(first) = self.hot.forks.get(origin) else {
            return Vec::new();
        };
        let chain = self
            .history
            .chain_from(origin, from_seq.max(*first), usize::MAX);
        let mut out = Vec::new();
        for (i, (seq, id)) in chain.iter().enumerate() {
            let twin =
                chain.get(i + 1).is_some_and(|n| n.0 == *seq) || (i > 0 && chain[i - 1].0 == *seq);
            if twin {
                out.push(*id);
            }
        }
        out
    }

    /// Where `origin`'s chain first forks and a hash of every event at a
    /// forked sequence; `(0, 0)` if it does not fork.
    pub fn fork_summary(&self, origin: &NodeId) -> (u64, u64) {
        let Some(first) = self.hot.forks.get(origin) else {
            return (0, 0);
        };
        let mut twins = self.fork_twins(origin, *first);
        twins.sort();
        let mut h = Sha256::new();
        for id in &twins {
            h.update(id.as_bytes());
        }
        let d: [u8; 32] = h.finalize().into();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        // 0 means "no fork"; a real hash of 0 is vanishingly unlikely.
        (*first, u64::from_le_bytes(b).max(1))
    }

    /// The first `limit` events of `origin` after sequence `after`, in
    /// chain order.
    pub fn origin_events_after(&self, origin: &NodeId, after: u64, limit: usize) -> Vec<EventId> {
        self.history
            .chain_from(origin, after.saturating_add(1), limit)
            .into_iter()
            .map(|(_, id)| id)
            .collect()
    }

    /// A hash of the ordered ids with their verdicts and of the state: two
    /// nodes holding the same events have the same digest (I-4).
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in self.history.positions_from(self.hot.create.position()) {
            h.update(p.id.as_bytes());
            let accepted = self.history.verdict(&p.id).is_some_and(|v| v.is_accepted());
            h.update([u8::from(accepted)]);
        }
        h.update(self.hot.state.digest());
        h.finalize().into()
    }

    /// The header fields for a new event of this node: parents, depth and
    /// origin chain. The caller fills in kind, author, ts and signs.
    pub fn next_header(&self, author: UserId, kind: EventKind, ts: u64) -> EventHeader {
        let depth_of = |id: &EventId| self.history.meta(id).map_or(0, |m| m.depth);
        let mut prev: Vec<EventId> = self.hot.heads.iter().copied().collect();
        if prev.len() > confab_wire::event::MAX_PREV {
            // Keep the deepest heads; the rest stay heads and are merged later.
            prev.sort_by_key(|id| std::cmp::Reverse(depth_of(id)));
            prev.truncate(confab_wire::event::MAX_PREV);
            prev.sort();
        }
        let depth = 1 + prev.iter().map(depth_of).max().unwrap_or(0);
        let (origin_seq, origin_prev) = match self.origin_tip(author.node()) {
            Some((seq, ids)) => (seq + 1, Some(ids[0])),
            None => (1, None),
        };
        EventHeader {
            room: Some(self.room),
            author,
            kind,
            prev,
            depth,
            origin_seq,
            origin_prev,
            ts,
            content_hash: confab_wire::ContentHash([0; 32]),
        }
    }

    /// The cutoff a sanction against `target` should carry: the highest
    /// origin sequence of the target's node known here.
    pub fn cutoff_for(&self, target: &UserId) -> u64 {
        self.origin_tip(target.node()).map_or(0, |(s, _)| s)
    }

    /// Events held for the future whose time has come.
    pub fn release_due(&mut self, now: u64) -> Vec<VerifiedEvent> {
        let due: Vec<(u64, EventId)> = self
            .held
            .range(..=(now.saturating_add(MAX_FUTURE_SKEW_MS), EventId([0xff; 32])))
            .map(|(k, _)| *k)
            .collect();
        let released: Vec<VerifiedEvent> = due
            .into_iter()
            .filter_map(|k| self.held.remove(&k))
            .collect();
        for ev in &released {
            self.held_bytes -= ev.signed().wire_len();
        }
        released
    }

    /// Events held for the future.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Admits a verified event of this room.
    pub fn submit(&mut self, ev: &VerifiedEvent, now: u64) -> Result<Admission, Refusal> {
        let h = ev.header();
        let id = ev.id();
        if ev.room() != self.room {
            return Err(Refusal::WrongRoom(ev.room()));
        }
        if self.history.meta(&id).is_some() {
            return Ok(Admission::Duplicate);
        }
        if ev.idempotency().is_some() && self.hot.state.rules.version < IDEMPOTENCY_SINCE {
            return Err(Refusal::NotInRulesVersion("idempotency hash in messages"));
        }
        // Structure: parents and the origin predecessor.
        let mut parents = Vec::with_capacity(h.prev.len());
        let mut missing = Vec::new();
        for p in &h.prev {
            match self.history.meta(p) {
                Some(m) => parents.push(m),
                None => missing.push(*p),
            }
        }
        let origin_prev = match &h.origin_prev {
            Some(op) => match self.history.meta(op) {
                Some(m) => Some(m),
                None => {
                    missing.push(*op);
                    None
                }
            },
            None => None,
        };
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(Refusal::MissingParents(missing));
        }
        let expected = 1 + parents.iter().map(|m| m.depth).max().unwrap_or(0);
        if h.depth != expected {
            return Err(Refusal::BadDepth {
                got: h.depth,
                expected,
            });
        }
        let origin = *h.author.node();
        if let Some(prev) = &origin_prev {
            if prev.origin() != &origin || prev.seq + 1 != h.origin_seq {
                return Err(Refusal::BrokenChain(
                    "origin_prev is not the origin's previous event",
                ));
            }
            if prev.depth >= h.depth {
                return Err(Refusal::BrokenChain(
                    "an origin cannot write before its own last event",
                ));
            }
        }
        // Clock.
        if h.ts > now.saturating_add(MAX_FUTURE_SKEW_MS) {
            if h.ts > now.saturating_add(HOLD_HORIZON_MS) {
                return Err(Refusal::TooFarAhead);
            }
            let until = h.ts - MAX_FUTURE_SKEW_MS;
            if !self.held.contains_key(&(h.ts, id)) {
                let len = ev.signed().wire_len();
                if self.held_bytes + len > HELD_BYTES_MAX {
                    return Err(Refusal::HeldFull);
                }
                self.held_bytes += len;
                self.held.insert((h.ts, id), ev.clone());
            }
            return Ok(Admission::Held { until });
        }
        if let Some(was) = self.held.remove(&(h.ts, id)) {
            self.held_bytes -= was.signed().wire_len();
        }

        let meta = Arc::new(EventMeta::new(id, h));
        let pos = meta.position();
        let at_tip = self.hot.last < pos;
        // Insert.
        let tip = self.hot.tips.entry(origin).or_insert((0, Vec::new()));
        let forked = match meta.seq.cmp(&tip.0) {
            std::cmp::Ordering::Greater => {
                *tip = (meta.seq, vec![id]);
                false
            }
            std::cmp::Ordering::Equal => {
                tip.1.push(id);
                true
            }
            // An earlier sequence arriving now: a fork of an older link.
            std::cmp::Ordering::Less => true,
        };
        for p in &meta.prev {
            self.hot.heads.remove(p);
        }
        self.hot.heads.insert(id);
        self.hot.count += 1;
        self.hot.last = self.hot.last.max(pos);
        self.history.insert(meta.clone(), Verdict::Accepted);
        let claim = meta.claim();
        if let Some((target, cutoff)) = &claim {
            self.hot.claims.insert(pos, (target.clone(), *cutoff));
            self.claims_by_target
                .entry(target.clone())
                .or_default()
                .insert(pos);
        }
        let mut from = pos;
        if forked {
            let first = self
                .hot
                .forks
                .get(&origin)
                .map_or(meta.seq, |s| (*s).min(meta.seq));
            self.hot.forks.insert(origin, first);
            if let Some(p) = self.earliest_of_origin_from(&origin, first) {
                from = from.min(p);
            }
        }
        if let Some((target, cutoff)) = &claim
            && let Some(p) = self.earliest_victim(target, *cutoff, pos)
        {
            from = from.min(p);
        }
        let fast = at_tip && from == pos && !self.hot.forks.contains_key(&origin);
        if fast {
            let verdict = self.judge_at_tip(&meta);
            if verdict.is_accepted() {
                auth::apply(&mut self.hot.state, &meta);
            }
            self.history.set_verdict(&id, verdict.clone());
            self.hot.since_checkpoint += 1;
            if self.hot.since_checkpoint >= CHECKPOINT_EVERY {
                self.history
                    .put_checkpoint(next_position(pos), self.hot.state.clone());
                self.hot.since_checkpoint = 0;
            }
            return Ok(Admission::Applied {
                verdict,
                changed: Vec::new(),
            });
        }
        let mut changed = self.refold(from);
        let verdict = self.history.verdict(&id).unwrap_or(Verdict::Accepted);
        changed.retain(|(e, _)| *e != id);
        Ok(Admission::Applied { verdict, changed })
    }

    /// How the room would judge `header` (from [`RoomEngine::next_header`])
    /// if it were signed and submitted now: lets a local author hear "no"
    /// before anything is signed or stored.
    pub fn preview(&self, header: &EventHeader) -> Verdict {
        // The id only breaks ties among events of the same depth; a new
        // local event is deeper than every event held.
        let meta = EventMeta::new(EventId([0xff; 32]), header);
        self.judge_at_tip(&meta)
    }

    fn judge_at_tip(&self, meta: &EventMeta) -> Verdict {
        if let Some(s) = self.hot.forks.get(meta.origin())
            && meta.seq >= *s
        {
            return Verdict::Rejected(Rejection::Equivocation { seq: *s });
        }
        let fresh = HashMap::new();
        let lookup = FoldLookup {
            history: &self.history,
            at: meta.position(),
            fresh: &fresh,
        };
        match auth::judge(&self.hot.state, meta, &Overlay::default(), &lookup) {
            Ok(()) => Verdict::Accepted,
            Err(r) => Verdict::Rejected(r),
        }
    }

    fn earliest_of_origin_from(&self, origin: &NodeId, seq: u64) -> Option<Position> {
        self.history
            .chain_from(origin, seq, usize::MAX)
            .into_iter()
            .filter_map(|(_, id)| self.history.meta(&id).map(|m| m.position()))
            .min()
    }

    /// The earliest event of `target` past `cutoff` that sorts before `before`.
    fn earliest_victim(&self, target: &UserId, cutoff: u64, before: Position) -> Option<Position> {
        self.history
            .chain_from(target.node(), cutoff.saturating_add(1), usize::MAX)
            .into_iter()
            .filter_map(|(_, id)| self.history.meta(&id))
            .filter(|m| &m.author == target)
            .map(|m| m.position())
            .filter(|p| *p < before)
            .min()
    }

    /// Re-folds from `from` to the tip, iterating the sanction set to a
    /// fixpoint. Returns the events whose verdict changed.
    fn refold(&mut self, mut from: Position) -> Vec<(EventId, Verdict)> {
        // Widen the region until no sanction inside it reaches before it.
        loop {
            let mut earliest = from;
            for (pos, (target, cutoff)) in self.hot.claims.range(from..) {
                if let Some(v) = self.earliest_victim(target, *cutoff, *pos) {
                    earliest = earliest.min(v);
                }
            }
            if earliest == from {
                break;
            }
            from = earliest;
        }
        let Some((start, base)) = self.history.checkpoint_at_or_before(from) else {
            // The create checkpoint is always there; a history without it
            // is corrupt, and changing nothing is the safe answer.
            return Vec::new();
        };
        let region = self.history.positions_from(start);
        let claims_in_region: Vec<Position> =
            self.hot.claims.range(start..).map(|(p, _)| *p).collect();
        let mut in_force: BTreeSet<Position> = claims_in_region.iter().copied().collect();
        let mut result = None;
        for _ in 0..MAX_SANCTION_ROUNDS {
            let folded = self.fold_region(&region, base.clone(), &in_force);
            let accepted: BTreeSet<Position> = claims_in_region
                .iter()
                .filter(|p| folded.0.get(&p.id).is_some_and(Verdict::is_accepted))
                .copied()
                .collect();
            let stable = accepted == in_force;
            result = Some(folded);
            if stable {
                break;
            }
            in_force = accepted;
        }
        let Some((verdicts, state, checkpoints)) = result else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for pos in &region {
            let Some(v) = verdicts.get(&pos.id) else {
                continue;
            };
            if self.history.verdict(&pos.id).as_ref() != Some(v) {
                self.history.set_verdict(&pos.id, v.clone());
                changed.push((pos.id, v.clone()));
            }
        }
        self.hot.state = state;
        self.history.drop_checkpoints_after(start);
        let last_checkpoint = checkpoints.last().map(|(k, _)| *k);
        for (k, s) in checkpoints {
            self.history.put_checkpoint(k, s);
        }
        let since = last_checkpoint.unwrap_or(start);
        self.hot.since_checkpoint = region.iter().filter(|p| **p >= since).count() as u64;
        changed
    }

    #[allow(clippy::type_complexity)]
    fn fold_region(
        &self,
        region: &[Position],
        mut state: RoomState,
        in_force: &BTreeSet<Position>,
    ) -> (
        HashMap<EventId, Verdict>,
        RoomState,
        Vec<(Position, RoomState)>,
    ) {
        let mut verdicts: HashMap<EventId, Verdict> = HashMap::with_capacity(region.len());
        let mut checkpoints = Vec::new();
        let mut count = 0u64;
        for pos in region {
            let Some(meta) = self.history.meta(&pos.id) else {
                continue;
            };
            let fork = self
                .hot
                .forks
                .get(meta.origin())
                .filter(|s| meta.seq >= **s);
            let verdict = if let Some(s) = fork {
                Verdict::Rejected(Rejection::Equivocation { seq: *s })
            } else {
                let overlay = self.overlay(&meta, in_force);
                let lookup = FoldLookup {
                    history: &self.history,
                    at: *pos,
                    fresh: &verdicts,
                };
                match auth::judge(&state, &meta, &overlay, &lookup) {
                    Ok(()) => Verdict::Accepted,
                    Err(r) => Verdict::Rejected(r),
                }
            };
            if verdict.is_accepted() {
                auth::apply(&mut state, &meta);
            }
            verdicts.insert(pos.id, verdict);
            count += 1;
            if count % CHECKPOINT_EVERY == 0 {
                checkpoints.push((next_position(*pos), state.clone()));
            }
        }
        (verdicts, state, checkpoints)
    }

    /// Sanctions in force that sort after `meta` and reach back to it.
    fn overlay(&self, meta: &EventMeta, in_force: &BTreeSet<Position>) -> Overlay {
        let mut o = Overlay::default();
        let Some(positions) = self.claims_by_target.get(&meta.author) else {
            return o;
        };
        for p in positions.range(next_position(meta.position())..) {
            if !in_force.contains(p) {
                continue;
            }
            let Some(claim) = self.history.meta(&p.id) else {
                continue;
            };
            match &claim.kind {
                EventKind::Ban { cutoff, .. } if meta.seq > *cutoff => o.banned = true,
                EventKind::Kick { cutoff, .. } if meta.seq > *cutoff => {
                    o.kicked = Some(o.kicked.map_or(*cutoff, |k| k.max(*cutoff)));
                }
                EventKind::Mute { cutoff, until, .. } if meta.seq > *cutoff => {
                    o.muted_until = Some(o.muted_until.map_or(*until, |u| u.max(*until)));
                }
                EventKind::RoleRevoke { cutoff, role, .. } if meta.seq > *cutoff => {
                    o.revoked.insert(role.clone());
                }
                _ => {}
            }
        }
        o
    }

    /// Re-folds the whole room from its create event (for tests and audits:
    /// the result must equal the incremental state).
    pub fn refold_all(&mut self) -> Vec<(EventId, Verdict)> {
        self.history.drop_checkpoints_after(Position::AFTER_CREATE);
        self.refold(Position::AFTER_CREATE)
    }

    /// Puts back a saved hot state (after an audit that must not change anything).
    pub fn restore_hot(&mut self, hot: Hot) {
        self.hot = hot;
    }

    /// The create event's header data.
    pub fn create_event(&self) -> &EventMeta {
        &self.hot.create
    }
}

/// Answers the rules' questions about single messages as of one place in
/// the order, seeing the verdicts of the fold in progress.
struct FoldLookup<'a, H: History> {
    history: &'a H,
    at: Position,
    fresh: &'a HashMap<EventId, Verdict>,
}

impl<H: History> FoldLookup<'_, H> {
    fn accepted(&self, id: &EventId) -> bool {
        match self.fresh.get(id) {
            Some(v) => v.is_accepted(),
            None => self.history.verdict(id).is_some_and(|v| v.is_accepted()),
        }
    }

    /// Accepted relations of `target` that sort before the judged event.
    fn earlier_relations(&self, target: &EventId) -> Vec<Arc<EventMeta>> {
        let mut rel: Vec<Arc<EventMeta>> = self
            .history
            .relations(target)
            .iter()
            .filter_map(|id| self.history.meta(id))
            .filter(|m| m.position() < self.at && self.accepted(&m.id))
            .collect();
        rel.sort_by_key(|m| m.position());
        rel
    }
}

impl<H: History> auth::Lookup for FoldLookup<'_, H> {
    fn target(&self, id: &EventId) -> Option<TargetInfo> {
        let meta = self.history.meta(id)?;
        let redacted = self
            .earlier_relations(id)
            .iter()
            .any(|m| matches!(m.kind, EventKind::Redact { .. }));
        Some(TargetInfo {
            author: meta.author.clone(),
            is_message: matches!(meta.kind, EventKind::Message),
            accepted: self.accepted(id),
            redacted,
        })
    }

    fn reacted(&self, target: &EventId, user: &UserId, emoji: &str) -> bool {
        let mut active = false;
        for m in self.earlier_relations(target) {
            if &m.author != user {
                continue;
            }
            match &m.kind {
                EventKind::React { emoji: e, .. } if e == emoji => active = true,
                EventKind::Unreact { emoji: e, .. } if e == emoji => active = false,
                _ => {}
            }
        }
        active
    }
}

/// The smallest position after `p`.
pub fn next_position(p: Position) -> Position {
    let mut id = p.id.0;
    for b in id.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return Position {
                depth: p.depth,
                id: EventId(id),
            };
        }
    }
    Position {
        depth: p.depth + 1,
        id: EventId([0; 32]),
    }
}

#[cfg(test)]
pub(crate) mod tests;
