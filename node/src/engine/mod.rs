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

use confab_wire::event::EventKind;
use confab_wire::{EventHeader, EventId, NodeId, RoomId, UserId, VerifiedEvent};
use sha2::{Digest, Sha256};

pub use auth::{Overlay, Rejection, TargetInfo};
pub use state::{Membership, RoomState};

/// How far ahead of the node's clock an event's `ts` may be before it is held.
pub const MAX_FUTURE_SKEW_MS: u64 = 30_000;
/// Events between state checkpoints (bounds the cost of a re-fold).
pub const CHECKPOINT_EVERY: u64 = 256;
/// Most rounds of the sanction fixpoint.
pub const MAX_SANCTION_ROUNDS: usize = 8;

/// An event's place in the room order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

#[derive(Clone, Debug)]
struct Entry {
    meta: Arc<EventMeta>,
    verdict: Verdict,
}

/// One room's events, order, verdicts and state.
#[derive(Clone, Debug)]
pub struct RoomEngine {
    room: RoomId,
    create: Arc<EventMeta>,
    entries: HashMap<EventId, Entry>,
    order: BTreeSet<Position>,
    /// origin → seq → events (more than one: a fork).
    chains: HashMap<NodeId, BTreeMap<u64, Vec<EventId>>>,
    /// origin → first forked sequence.
    forks: BTreeMap<NodeId, u64>,
    /// Sanction events: position → (target, cutoff).
    claims: BTreeMap<Position, (UserId, u64)>,
    claims_by_target: HashMap<UserId, BTreeSet<Position>>,
    /// Events with no children.
    heads: BTreeSet<EventId>,
    /// State after every event in `order`.
    state: RoomState,
    /// State before the keyed position.
    checkpoints: BTreeMap<Position, RoomState>,
    since_checkpoint: u64,
    held: BTreeMap<(u64, EventId), VerifiedEvent>,
}

impl RoomEngine {
    /// Starts a room from its create event.
    pub fn new(create: &VerifiedEvent) -> Result<Self, Refusal> {
        let h = create.header();
        let EventKind::Create(c) = &h.kind else {
            return Err(Refusal::NotCreate);
        };
        let meta = Arc::new(EventMeta::new(create.id(), h));
        let room = create.room();
        let mut state = RoomState::new(room, h.author.clone(), c.direct, h.origin_seq);
        state.apply_settings(&c.settings);
        let mut chains: HashMap<NodeId, BTreeMap<u64, Vec<EventId>>> = HashMap::new();
        chains
            .entry(*meta.origin())
            .or_default()
            .insert(meta.seq, vec![meta.id]);
        let mut engine = RoomEngine {
            room,
            create: meta.clone(),
            entries: HashMap::from([(
                meta.id,
                Entry {
                    meta: meta.clone(),
                    verdict: Verdict::Accepted,
                },
            )]),
            order: BTreeSet::from([meta.position()]),
            chains,
            forks: BTreeMap::new(),
            claims: BTreeMap::new(),
            claims_by_target: HashMap::new(),
            heads: BTreeSet::from([meta.id]),
            state: state.clone(),
            checkpoints: BTreeMap::new(),
            since_checkpoint: 0,
            held: BTreeMap::new(),
        };
        engine.checkpoints.insert(Position::AFTER_CREATE, state);
        Ok(engine)
    }

    /// The room's id.
    pub fn room(&self) -> RoomId {
        self.room
    }

    /// The state after every event held.
    pub fn state(&self) -> &RoomState {
        &self.state
    }

    /// Number of events held (accepted or rejected).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Never true: a room holds at least its create event.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// True if the event is held.
    pub fn contains(&self, id: &EventId) -> bool {
        self.entries.contains_key(id)
    }

    /// An event's verdict.
    pub fn verdict(&self, id: &EventId) -> Option<&Verdict> {
        self.entries.get(id).map(|e| &e.verdict)
    }

    /// An event's header data.
    pub fn meta(&self, id: &EventId) -> Option<&EventMeta> {
        self.entries.get(id).map(|e| &*e.meta)
    }

    /// The room's current heads (events with no children), ascending.
    pub fn heads(&self) -> &BTreeSet<EventId> {
        &self.heads
    }

    /// The highest origin sequence held for `origin`, with its event(s).
    pub fn origin_tip(&self, origin: &NodeId) -> Option<(u64, &[EventId])> {
        self.chains
            .get(origin)
            .and_then(|c| c.last_key_value())
            .map(|(s, ids)| (*s, ids.as_slice()))
    }

    /// Every origin's tip: the room's version vector.
    pub fn version_vector(&self) -> BTreeMap<NodeId, (u64, EventId)> {
        self.chains
            .iter()
            .filter_map(|(n, c)| c.last_key_value().map(|(s, ids)| (*n, (*s, ids[0]))))
            .collect()
    }

    /// Origins caught equivocating, with the first forked sequence.
    pub fn forks(&self) -> &BTreeMap<NodeId, u64> {
        &self.forks
    }

    /// Event ids in room order.
    pub fn ordered_ids(&self) -> impl DoubleEndedIterator<Item = EventId> + '_ {
        self.order.iter().map(|p| p.id)
    }

    /// Events of `origin` after sequence `after`, in chain order.
    pub fn origin_events_after(&self, origin: &NodeId, after: u64) -> Vec<EventId> {
        self.chains
            .get(origin)
            .map(|c| {
                c.range(after.saturating_add(1)..)
                    .flat_map(|(_, ids)| ids.iter().copied())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A hash of the ordered ids with their verdicts and of the state: two
    /// nodes holding the same events have the same digest (I-4).
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in &self.order {
            h.update(p.id.as_bytes());
            h.update([u8::from(self.entries[&p.id].verdict.is_accepted())]);
        }
        h.update(self.state.digest());
        h.finalize().into()
    }

    /// The header fields for a new event of this node: parents, depth and
    /// origin chain. The caller fills in kind, author, ts and signs.
    pub fn next_header(&self, author: UserId, kind: EventKind, ts: u64) -> EventHeader {
        let mut prev: Vec<EventId> = self.heads.iter().copied().collect();
        if prev.len() > confab_wire::event::MAX_PREV {
            // Keep the deepest heads; the rest stay heads and are merged later.
            prev.sort_by_key(|id| std::cmp::Reverse(self.entries[id].meta.depth));
            prev.truncate(confab_wire::event::MAX_PREV);
            prev.sort();
        }
        let depth = 1 + prev
            .iter()
            .map(|id| self.entries[id].meta.depth)
            .max()
            .unwrap_or(0);
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
        due.into_iter()
            .filter_map(|k| self.held.remove(&k))
            .collect()
    }

    /// Admits a verified event of this room.
    pub fn submit(&mut self, ev: &VerifiedEvent, now: u64) -> Result<Admission, Refusal> {
        let h = ev.header();
        let id = ev.id();
        if ev.room() != self.room {
            return Err(Refusal::WrongRoom(ev.room()));
        }
        if self.entries.contains_key(&id) {
            return Ok(Admission::Duplicate);
        }
        // Structure: parents and the origin predecessor.
        let mut missing: Vec<EventId> = h
            .prev
            .iter()
            .chain(h.origin_prev.iter())
            .filter(|p| !self.entries.contains_key(p))
            .copied()
            .collect();
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(Refusal::MissingParents(missing));
        }
        let expected = 1 + h
            .prev
            .iter()
            .map(|p| self.entries[p].meta.depth)
            .max()
            .unwrap_or(0);
        if h.depth != expected {
            return Err(Refusal::BadDepth {
                got: h.depth,
                expected,
            });
        }
        let origin = *h.author.node();
        if let Some(op) = &h.origin_prev {
            let prev = &self.entries[op].meta;
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
        } else if self
            .chains
            .get(&origin)
            .is_some_and(|c| !c.is_empty() && !c.contains_key(&1))
        {
            return Err(Refusal::BrokenChain("chain start after later events"));
        }
        // Clock.
        if h.ts > now.saturating_add(MAX_FUTURE_SKEW_MS) {
            let until = h.ts - MAX_FUTURE_SKEW_MS;
            self.held.insert((h.ts, id), ev.clone());
            return Ok(Admission::Held { until });
        }
        self.held.remove(&(h.ts, id));

        let meta = Arc::new(EventMeta::new(id, h));
        let pos = meta.position();
        let at_tip = self.order.last().is_none_or(|last| *last < pos);
        // Insert.
        let seq_slot = self
            .chains
            .entry(origin)
            .or_default()
            .entry(meta.seq)
            .or_default();
        seq_slot.push(id);
        let forked = seq_slot.len() > 1;
        for p in &meta.prev {
            self.heads.remove(p);
        }
        self.heads.insert(id);
        self.order.insert(pos);
        self.entries.insert(
            id,
            Entry {
                meta: meta.clone(),
                verdict: Verdict::Accepted,
            },
        );
        let claim = meta.claim();
        if let Some((target, cutoff)) = &claim {
            self.claims.insert(pos, (target.clone(), *cutoff));
            self.claims_by_target
                .entry(target.clone())
                .or_default()
                .insert(pos);
        }
        let mut from = pos;
        if forked {
            let first = self
                .forks
                .get(&origin)
                .map_or(meta.seq, |s| (*s).min(meta.seq));
            self.forks.insert(origin, first);
            if let Some(p) = self.earliest_of_origin_from(&origin, first) {
                from = from.min(p);
            }
        }
        if let Some((target, cutoff)) = &claim
            && let Some(p) = self.earliest_victim(target, *cutoff, pos)
        {
            from = from.min(p);
        }
        let fast = at_tip && from == pos && !self.forks.contains_key(&origin);
        if fast {
            let verdict = self.judge_at_tip(&meta);
            if verdict.is_accepted() {
                auth::apply(&mut self.state, &meta);
            }
            self.set_verdict(id, verdict.clone());
            self.maybe_checkpoint_after(pos);
            return Ok(Admission::Applied {
                verdict,
                changed: Vec::new(),
            });
        }
        let mut changed = self.refold(from);
        let verdict = self.entries[&id].verdict.clone();
        changed.retain(|(e, _)| *e != id);
        Ok(Admission::Applied { verdict, changed })
    }

    fn set_verdict(&mut self, id: EventId, verdict: Verdict) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.verdict = verdict;
        }
    }

    fn judge_at_tip(&self, meta: &EventMeta) -> Verdict {
        if let Some(s) = self.forks.get(meta.origin())
            && meta.seq >= *s
        {
            return Verdict::Rejected(Rejection::Equivocation { seq: *s });
        }
        let lookup = |t: &EventId| self.target_info(t, &HashMap::new());
        match auth::judge(&self.state, meta, &Overlay::default(), &lookup) {
            Ok(()) => Verdict::Accepted,
            Err(r) => Verdict::Rejected(r),
        }
    }

    fn target_info(&self, t: &EventId, fresh: &HashMap<EventId, Verdict>) -> Option<TargetInfo> {
        let e = self.entries.get(t)?;
        let accepted = fresh.get(t).unwrap_or(&e.verdict).is_accepted();
        Some(TargetInfo {
            author: e.meta.author.clone(),
            is_message: matches!(e.meta.kind, EventKind::Message),
            accepted,
        })
    }

    fn maybe_checkpoint_after(&mut self, pos: Position) {
        self.since_checkpoint += 1;
        if self.since_checkpoint >= CHECKPOINT_EVERY {
            // Key: the position just after `pos` — the next event in any
            // order sorts at or after (depth, id+) … use pos itself with the
            // convention "state before key" by bumping the id.
            let key = next_position(pos);
            self.checkpoints.insert(key, self.state.clone());
            self.since_checkpoint = 0;
        }
    }

    fn earliest_of_origin_from(&self, origin: &NodeId, seq: u64) -> Option<Position> {
        self.chains
            .get(origin)?
            .range(seq..)
            .flat_map(|(_, ids)| ids.iter())
            .map(|id| self.entries[id].meta.position())
            .min()
    }

    /// The earliest event of `target` past `cutoff` that sorts before `before`.
    fn earliest_victim(&self, target: &UserId, cutoff: u64, before: Position) -> Option<Position> {
        self.chains
            .get(target.node())?
            .range(cutoff.saturating_add(1)..)
            .flat_map(|(_, ids)| ids.iter())
            .map(|id| &self.entries[id].meta)
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
            for (pos, (target, cutoff)) in self.claims.range(from..) {
                if let Some(v) = self.earliest_victim(target, *cutoff, *pos) {
                    earliest = earliest.min(v);
                }
            }
            if earliest == from {
                break;
            }
            from = earliest;
        }
        let (start, base) = self
            .checkpoints
            .range(..=from)
            .next_back()
            .map(|(k, s)| (*k, s.clone()))
            .unwrap_or_else(|| {
                (
                    Position::AFTER_CREATE,
                    self.checkpoints[&Position::AFTER_CREATE].clone(),
                )
            });
        let region: Vec<Position> = self.order.range(start..).copied().collect();
        let mut in_force: BTreeSet<Position> =
            self.claims.range(start..).map(|(p, _)| *p).collect();
        let mut result = None;
        for _ in 0..MAX_SANCTION_ROUNDS {
            let (verdicts, state, checkpoints) = self.fold_region(&region, base.clone(), &in_force);
            let accepted: BTreeSet<Position> = in_force
                .iter()
                .chain(self.claims.range(start..).map(|(p, _)| p))
                .filter(|p| verdicts.get(&p.id).is_some_and(Verdict::is_accepted))
                .copied()
                .collect();
            let stable = accepted == in_force;
            result = Some((verdicts, state, checkpoints));
            if stable {
                break;
            }
            in_force = accepted;
        }
        let Some((verdicts, state, checkpoints)) = result else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for (id, v) in verdicts {
            if let Some(e) = self.entries.get_mut(&id)
                && e.verdict != v
            {
                e.verdict = v.clone();
                changed.push((id, v));
            }
        }
        changed.sort_by_key(|(id, _)| self.entries[id].meta.position());
        self.state = state;
        let stale: Vec<Position> = self
            .checkpoints
            .range(next_position(start)..)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            self.checkpoints.remove(&k);
        }
        self.checkpoints.extend(checkpoints);
        self.since_checkpoint = self
            .order
            .range(self.checkpoints.last_key_value().map_or(start, |(k, _)| *k)..)
            .count() as u64;
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
            let meta = &self.entries[&pos.id].meta;
            let verdict = if let Some(s) = self.forks.get(meta.origin()).filter(|s| meta.seq >= **s)
            {
                Verdict::Rejected(Rejection::Equivocation { seq: *s })
            } else {
                let overlay = self.overlay(meta, in_force);
                let lookup = |t: &EventId| self.target_info(t, &verdicts);
                match auth::judge(&state, meta, &overlay, &lookup) {
                    Ok(()) => Verdict::Accepted,
                    Err(r) => Verdict::Rejected(r),
                }
            };
            if verdict.is_accepted() {
                auth::apply(&mut state, meta);
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
        let here = meta.position();
        for p in positions.range(next_position(here)..) {
            if !in_force.contains(p) {
                continue;
            }
            let claim = &self.entries[&p.id].meta;
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
        self.checkpoints.retain(|k, _| *k == Position::AFTER_CREATE);
        self.refold(Position::AFTER_CREATE)
    }

    /// The creator's meta (the create event).
    pub fn create_event(&self) -> &EventMeta {
        &self.create
    }
}

/// The smallest position after `p`.
fn next_position(p: Position) -> Position {
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
mod tests;
