//! What peers ask of the node's rooms and give them: the replication
//! face ([`Rooms`]) of [`NodeRooms`]: version vectors, the events a peer
//! lacks, and ingest of a peer's events (judge, park events whose
//! ancestors are missing, unpark, commit, flush).

use std::collections::HashMap;

use confab_wire::fed::{Ephemeral, OriginHead, OriginSince};
use confab_wire::{BlobId, EventId, NodeId, RoomId, SignedEvent, VerifiedEvent};

use super::{INTRODUCTIONS_MAX, NodeRooms};
use crate::engine::{Admission, Refusal};
use crate::error::Result;
use crate::federation::sync::{Received, Rooms};
use crate::metrics::FederationMetrics;
use crate::store::Room;

/// Reports an origin's equivocation the first time a room sees it (the
/// room's fork record is durable, so a restart does not report it again):
/// a warning with both event ids, and the origin's count in metrics.
fn report_fork(room: &Room, ev: &VerifiedEvent, forked_before: bool, metrics: &FederationMetrics) {
    let origin = ev.origin();
    if forked_before {
        return;
    }
    let Some(seq) = room.engine().forks().get(origin).copied() else {
        return;
    };
    let twins = room.engine().fork_twins(origin, seq);
    let at_seq: Vec<String> = twins.iter().take(2).map(ToString::to_string).collect();
    tracing::warn!(
        room = %room.engine().room(),
        origin = %origin.short(),
        seq,
        events = %at_seq.join(", "),
        "equivocation: the origin signed two events at one sequence; both are rejected everywhere"
    );
    metrics
        .equivocations
        .get_or_create(&crate::metrics::PeerLabel {
            peer: origin.short().to_string(),
        })
        .inc();
}

impl NodeRooms {
    /// Submits the events held for the future whose time has come, and
    /// what was parked on them. They are applied, not yet durable: wait
    /// for the store after releasing the rooms, then forward them.
    pub fn release_due(&mut self, now: u64) -> Result<Vec<(RoomId, SignedEvent)>> {
        let mut out = Vec::new();
        let holding: Vec<RoomId> = self.holding.iter().copied().collect();
        for id in holding {
            let Some(room) = self.rooms.get_mut(&id) else {
                self.holding.remove(&id);
                continue;
            };
            let mut accepted = Vec::new();
            let mut arrived = Vec::new();
            let mut counts = Vec::new();
            for ev in room.release_due(now) {
                let forked = room.engine().forks().contains_key(ev.origin());
                match room.submit(&ev, now)? {
                    Ok(Admission::Applied { .. }) => {
                        report_fork(room, &ev, forked, &self.metrics);
                        arrived.push(ev.id());
                        accepted.push(ev.into_signed());
                    }
                    Ok(_) => {}
                    Err(refusal) => counts.push(format!("refused:{}", refusal.code())),
                }
            }
            let still_holding = room.engine().held() > 0;
            for c in counts {
                self.count(c);
            }
            self.unpark(&id, now, arrived, &mut accepted)?;
            if let Some(room) = self.rooms.get_mut(&id) {
                room.commit()?;
            }
            if !still_holding {
                self.holding.remove(&id);
            }
            out.extend(accepted.into_iter().map(|e| (id, e)));
        }
        Ok(out)
    }

    /// Submits the parked events that waited for the events `arrived`
    /// (just applied), then those that waited for them, and so on; an
    /// event that still lacks an ancestor is parked again.
    fn unpark(
        &mut self,
        room_id: &RoomId,
        now: u64,
        mut arrived: Vec<EventId>,
        accepted: &mut Vec<SignedEvent>,
    ) -> Result<()> {
        while !arrived.is_empty() {
            let mut ready = self.parking.take_waiting(room_id, &arrived);
            arrived.clear();
            let Some(room) = self.rooms.get_mut(room_id) else {
                return Ok(());
            };
            ready.sort_by_key(|(e, _)| (e.header().depth, e.id()));
            for (ev, from) in ready {
                let forked = room.engine().forks().contains_key(ev.origin());
                match room.submit(&ev, now)? {
                    Ok(Admission::Applied { .. }) => {
                        report_fork(room, &ev, forked, &self.metrics);
                        arrived.push(ev.id());
                        accepted.push(ev.into_signed());
                    }
                    Ok(Admission::Held { .. }) => {
                        self.holding.insert(*room_id);
                    }
                    Ok(Admission::Duplicate) => {}
                    Err(Refusal::MissingParents(ids)) => {
                        // It was within the limits a moment ago.
                        let _ = self.parking.park(*room_id, ev, from, &ids, now);
                    }
                    Err(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Drops parked events that waited too long for their ancestors.
    pub fn expire_parked(&mut self, now: u64) {
        for _ in 0..self.parking.expire(now) {
            self.count("dropped:parked_expired");
        }
    }

    /// Bytes of events parked in all (bounded by [`super::PARKED_BYTES_MAX`]).
    pub fn parked_bytes(&self) -> usize {
        self.parking.bytes()
    }
}

impl Rooms for NodeRooms {
    fn shared_rooms(&self, peer: &NodeId) -> Vec<RoomId> {
        let mut out: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, r)| {
                let e = r.engine();
                e.version_vector().contains_key(peer)
                    || e.state().members.keys().any(|u| u.node() == peer)
            })
            .map(|(id, _)| *id)
            .collect();
        out.sort();
        out
    }

    fn has_room(&self, room: &RoomId) -> bool {
        self.rooms.contains_key(room)
    }

    fn vector(&self, room: &RoomId) -> Vec<OriginHead> {
        self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.engine()
                .version_vector()
                .into_iter()
                .map(|(origin, (seq, head))| {
                    let (forked_at, forks) = r.engine().fork_summary(&origin);
                    OriginHead {
                        origin,
                        seq,
                        head,
                        forked_at,
                        forks,
                    }
                })
                .collect()
        })
    }

    fn holds(&self, room: &RoomId, id: &EventId) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|r| r.engine().contains(id))
    }

    fn events_after(
        &self,
        room_id: &RoomId,
        since: &[OriginSince],
        limit: usize,
        max_bytes: usize,
    ) -> Vec<SignedEvent> {
        let Some(room) = self.rooms.get(room_id) else {
            return Vec::new();
        };
        let since: HashMap<NodeId, u64> = since.iter().map(|s| (s.origin, s.after_seq)).collect();
        let mut ids = Vec::new();
        for origin in room.engine().version_vector().keys() {
            let after = since.get(origin).copied().unwrap_or(0);
            // Each origin's first `limit` suffice: at most `limit` are sent.
            ids.extend(room.engine().origin_events_after(origin, after, limit));
        }
        // By depth: a prefix of what the asker lacks is causally closed.
        let mut bytes = 0;
        let mut out = Vec::new();
        for m in self.metas(room, ids).into_iter().take(limit) {
            let Some(ev) = self.record(&m.id) else {
                continue;
            };
            bytes += ev.wire_len();
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(ev);
        }
        out
    }

    fn events_by_id(&self, room_id: &RoomId, ids: &[EventId]) -> Vec<SignedEvent> {
        let Some(room) = self.rooms.get(room_id) else {
            return Vec::new();
        };
        self.metas(room, ids.iter().copied())
            .into_iter()
            .filter_map(|m| self.record(&m.id))
            .collect()
    }

    fn observe_vector(&mut self, room: &RoomId, from: &NodeId, origins: &[OriginHead]) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let theirs = origins
            .iter()
            .find(|o| o.origin == self.local)
            .map_or(0, |o| o.seq);
        let mine = r.engine().origin_tip(&self.local).map_or(0, |(seq, _)| seq);
        if theirs > mine {
            // A peer holds more of our own chain than we do: posting now
            // would reuse a sequence number.
            self.heard.remove(room);
            if self.unconfirmed.insert(*room) {
                self.mark_caught_up(room, false);
                tracing::warn!(%room, mine, theirs, "a peer holds more of this node's chain; catching up before posting");
            }
            return;
        }
        if !self.unconfirmed.contains(room) {
            return;
        }
        // Any one peer may lack our newest events while another holds
        // them: every peer in the room must have shown its view.
        let peers = self.room_peers(room);
        let heard = self.heard.entry(*room).or_default();
        heard.insert(*from);
        if peers.iter().all(|p| heard.contains(p)) {
            self.heard.remove(room);
            self.unconfirmed.remove(room);
            self.mark_caught_up(room, true);
            tracing::info!(%room, seq = mine, "caught up with this node's own chain");
        }
    }

    fn introductions(&self, room_id: &RoomId, peer: &NodeId) -> Vec<SignedEvent> {
        let Some(room) = self.rooms.get(room_id) else {
            return Vec::new();
        };
        let mut ids = self
            .store
            .invites_for(room_id, peer, INTRODUCTIONS_MAX)
            .unwrap_or_default();
        if let Some((_, heads)) = room.engine().origin_tip(peer) {
            ids.extend_from_slice(heads);
        }
        self.events_by_id(room_id, &ids)
    }

    fn fork_twins(&self, room_id: &RoomId, since: &[OriginSince]) -> Vec<SignedEvent> {
        let Some(room) = self.rooms.get(room_id) else {
            return Vec::new();
        };
        let e = room.engine();
        let ids: Vec<EventId> = e
            .forks()
            .keys()
            .flat_map(|origin| {
                let after = since
                    .iter()
                    .find(|s| s.origin == *origin)
                    .map_or(0, |s| s.after_seq);
                e.fork_twins(origin, after.saturating_add(1))
            })
            .collect();
        self.events_by_id(room_id, &ids)
    }

    fn blob(&self, blob: &BlobId, offset: u64) -> Option<(u64, Vec<u8>)> {
        self.store.read_blob(blob, offset).ok().flatten()
    }

    fn accepts_ephemeral(&self, peer: &NodeId, e: &Ephemeral) -> bool {
        if e.user.node() != peer {
            return false;
        }
        match &e.room {
            // "Delivered" comes from the node of an invitee too: a direct
            // conversation starts as an invitation.
            Some(room) if matches!(e.signal, confab_wire::fed::Signal::Delivered(_)) => {
                self.rooms.get(room).is_some_and(|r| {
                    matches!(
                        r.engine().state().membership(&e.user),
                        crate::engine::Membership::Joined { .. }
                            | crate::engine::Membership::Invited
                    )
                })
            }
            Some(room) => self
                .rooms
                .get(room)
                .is_some_and(|r| r.engine().state().is_joined(&e.user)),
            None => !self.shared_rooms(peer).is_empty(),
        }
    }

    fn receive(
        &mut self,
        now: u64,
        from: &NodeId,
        room_id: &RoomId,
        events: Vec<confab_wire::Result<VerifiedEvent>>,
    ) -> Received {
        let mut received = Received::default();
        // Ids of events applied by this batch: what parked events wait for.
        let mut arrived = Vec::new();
        let mut verified = Vec::with_capacity(events.len());
        for e in events {
            match e {
                Ok(v) if v.room() == *room_id => verified.push(v),
                Ok(_) => {
                    received.invalid += 1;
                    self.count("refused:wrong_room");
                }
                Err(confab_wire::Error::BadSignature) => {
                    received.invalid += 1;
                    self.count("refused:bad_signature");
                }
                Err(_) => {
                    received.invalid += 1;
                    self.count("refused:malformed");
                }
            }
        }
        if !self.rooms.contains_key(room_id) {
            // A room new to this node is taken only if it concerns one of
            // its users; it starts with its create event.
            let expected = self.expected.contains(room_id);
            if !expected && !verified.iter().any(|e| self.introduces_us(e)) {
                if !verified.is_empty() {
                    self.count("refused:not_invited");
                }
                return received;
            }
            match verified.iter().position(|e| e.id() == EventId(room_id.0)) {
                Some(i) => {
                    let create = verified.remove(i);
                    if self.create_room(&create).is_err() {
                        received.invalid += 1;
                        return received;
                    }
                    if self.recovering {
                        self.unconfirmed.insert(*room_id);
                    }
                    received.new_room = true;
                    arrived.push(create.id());
                    received.accepted.push(create.into_signed());
                }
                None => {
                    // Keep what came (the invite) until the create is in.
                    // A room is awaited only while something of it is kept:
                    // a peer over its share of pending rooms adds none.
                    let create = EventId(room_id.0);
                    let mut kept = false;
                    for ev in verified {
                        match self.parking.park(*room_id, ev, *from, &[create], now) {
                            Ok(()) => kept = true,
                            Err(limit) => self.count(format!("refused:{limit}")),
                        }
                    }
                    if kept && !expected {
                        self.expect_room(*room_id);
                    }
                    if kept || expected {
                        received.missing.push(create);
                    }
                    return received;
                }
            }
        }
        verified.sort_by_key(|e| (e.header().depth, e.id()));
        let mut outcome: Result<()> = Ok(());
        let mut counts: Vec<String> = Vec::new();
        let mut held = false;
        if let Some(room) = self.rooms.get_mut(room_id) {
            for ev in verified {
                let forked = room.engine().forks().contains_key(ev.origin());
                match room.submit(&ev, now) {
                    Ok(Ok(Admission::Applied { verdict, .. })) => {
                        report_fork(room, &ev, forked, &self.metrics);
                        if let crate::engine::Verdict::Rejected(r) = verdict {
                            counts.push(format!("rejected:{}", r.code()));
                        }
                        arrived.push(ev.id());
                        received.accepted.push(ev.into_signed());
                    }
                    Ok(Ok(Admission::Held { .. })) => held = true,
                    Ok(Ok(_)) => {}
                    Ok(Err(Refusal::MissingParents(ids))) => {
                        match self.parking.park(*room_id, ev, *from, &ids, now) {
                            Ok(()) => {
                                for id in ids {
                                    if !self.parking.contains(room_id, &id)
                                        && !received.missing.contains(&id)
                                    {
                                        received.missing.push(id);
                                    }
                                }
                            }
                            Err(limit) => counts.push(format!("refused:{limit}")),
                        }
                    }
                    Ok(Err(refusal)) => {
                        received.invalid += 1;
                        counts.push(format!("refused:{}", refusal.code()));
                    }
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
        }
        for c in counts {
            self.count(c);
        }
        if held {
            self.holding.insert(*room_id);
        }
        if outcome.is_ok() {
            outcome = self.unpark(room_id, now, arrived, &mut received.accepted);
        }
        if let Some(room) = self.rooms.get_mut(room_id)
            && outcome.is_ok()
        {
            // Durable later: the caller waits after giving the rooms back,
            // so the flush is shared and no fsync happens under the lock.
            outcome = room.commit();
        }
        if let Err(e) = outcome {
            // Nothing of this batch is acknowledged; anti-entropy resends it.
            tracing::error!(error = %e, "storing events from a peer failed");
            received.accepted.clear();
        }
        // Ancestors we now hold need no fetching.
        if let Some(room) = self.rooms.get(room_id) {
            received.missing.retain(|id| !room.engine().contains(id));
        }
        received
    }
}
