//! The engine's [`History`] over the `room_data` tree.
//!
//! The engine's writes during one submission collect in a write set that
//! reads see at once; [`SledHistory::take_batch`] turns them into one sled
//! batch that the room applies atomically with the event and hot state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use confab_wire::{EventId, NodeId, RoomId};

use super::{
    EventRecord, P_CHAIN, P_CHECKPOINT, P_EVENT, P_ORDER, P_RELATION, decode, encode, key,
    store_err,
};
use crate::engine::{EventMeta, History, Position, RoomState, Verdict};
use crate::error::{Error, Result};

type MetaRecord = (EventMeta, Verdict);

/// Reads an event's whole record.
pub(crate) fn read_record(tree: &sled::Tree, id: &EventId) -> Result<Option<EventRecord>> {
    tree.get(key(P_EVENT, &[id.as_bytes()]))
        .map_err(store_err("read event"))?
        .map(|b| decode("event record", &b))
        .transpose()
}

/// Reads an event's meta and verdict.
pub(crate) fn read_meta(tree: &sled::Tree, id: &EventId) -> Result<Option<MetaRecord>> {
    Ok(read_record(tree, id)?.map(|r| (r.meta, r.verdict)))
}

/// Metas and verdicts written since the last batch, for the room to store
/// with their events.
pub(crate) type MetaWrites = Vec<(EventId, Arc<EventMeta>, Verdict)>;

#[derive(Debug, Default)]
struct WriteSet {
    metas: HashMap<EventId, (Arc<EventMeta>, Verdict)>,
    order: BTreeSet<Position>,
    chains: BTreeSet<(NodeId, u64, EventId)>,
    relations: BTreeSet<(EventId, EventId)>,
    checkpoints: BTreeMap<Position, RoomState>,
    dropped_after: Option<Position>,
}

/// A room's history in sled.
#[derive(Debug)]
pub struct SledHistory {
    room: RoomId,
    tree: sled::Tree,
    pending: WriteSet,
    /// A read error seen inside a trait method (which cannot return one):
    /// reported by `take_batch`, so nothing half-judged is written.
    failed: Option<Error>,
}

impl SledHistory {
    pub(crate) fn new(room: RoomId, tree: sled::Tree) -> Self {
        SledHistory {
            room,
            tree,
            pending: WriteSet::default(),
            failed: None,
        }
    }

    fn note<T>(&mut self, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.failed.get_or_insert(e);
                None
            }
        }
    }

    /// Forgets pending writes (after a refusal).
    pub(crate) fn discard(&mut self) {
        self.pending = WriteSet::default();
    }

    /// Turns the pending writes into a batch and clears them; the metas
    /// and verdicts come back separately, to be stored in event records.
    pub(crate) fn take_batch(&mut self) -> Result<(sled::Batch, MetaWrites)> {
        if let Some(e) = self.failed.take() {
            self.discard();
            return Err(e);
        }
        let p = std::mem::take(&mut self.pending);
        let mut batch = sled::Batch::default();
        let room = self.room;
        let metas: MetaWrites = p
            .metas
            .iter()
            .map(|(id, (m, v))| (*id, m.clone(), v.clone()))
            .collect();
        // Every new event and every changed verdict has a meta write; its
        // order entry carries the flags a page needs, so paging reads no
        // event records.
        for (meta, verdict) in p.metas.values() {
            batch.insert(
                order_key(&room, &meta.position()),
                &[order_flags(meta, verdict)],
            );
        }
        for (origin, seq, id) in &p.chains {
            batch.insert(
                key(
                    P_CHAIN,
                    &[
                        room.as_bytes(),
                        origin.as_bytes(),
                        &seq.to_be_bytes(),
                        id.as_bytes(),
                    ],
                ),
                &[] as &[u8],
            );
        }
        for (target, id) in &p.relations {
            batch.insert(
                key(P_RELATION, &[target.as_bytes(), id.as_bytes()]),
                &[] as &[u8],
            );
        }
        if let Some(after) = p.dropped_after {
            let start = checkpoint_key(&room, &crate::engine::next_position(after));
            let end = key(P_CHECKPOINT, &[&room_bound(&room)]);
            for k in self.tree.range(start..end).keys() {
                batch.remove(k.map_err(store_err("scan checkpoints"))?);
            }
        }
        for (pos, state) in &p.checkpoints {
            batch.insert(checkpoint_key(&room, pos), encode("checkpoint", state)?);
        }
        Ok((batch, metas))
    }

    fn stored_meta(&self, id: &EventId) -> Result<Option<MetaRecord>> {
        let Some((meta, verdict)) = read_meta(&self.tree, id)? else {
            return Ok(None);
        };
        // Events of other rooms are not this room's history.
        if meta.id != *id {
            return Err(Error::Corrupt {
                what: "event meta",
                detail: "id mismatch".into(),
            });
        }
        Ok(Some((meta, verdict)))
    }
}

/// The room id plus one, as an exclusive upper bound for the room's keys.
fn room_bound(room: &RoomId) -> [u8; 32] {
    let mut b = room.0;
    for x in b.iter_mut().rev() {
        if *x == 0xff {
            *x = 0;
        } else {
            *x += 1;
            return b;
        }
    }
    [0xff; 32]
}

/// Order entry flag: the event is accepted.
pub(crate) const ORDER_ACCEPTED: u8 = 1;
/// Order entry flag: the event has a line of its own in a timeline (a
/// message, or a system line such as a join or a topic change; not the
/// create event, nor edits, deletions and reactions, which change the
/// message they point at).
pub(crate) const ORDER_SHOWN: u8 = 2;

fn order_flags(meta: &EventMeta, verdict: &Verdict) -> u8 {
    let mut f = 0;
    if verdict.is_accepted() {
        f |= ORDER_ACCEPTED;
    }
    use confab_wire::event::EventKind as K;
    if !matches!(
        meta.kind,
        K::Create(_) | K::Edit { .. } | K::Redact { .. } | K::React { .. } | K::Unreact { .. }
    ) {
        f |= ORDER_SHOWN;
    }
    f
}

fn order_key(room: &RoomId, pos: &Position) -> Vec<u8> {
    key(
        P_ORDER,
        &[room.as_bytes(), &pos.depth.to_be_bytes(), pos.id.as_bytes()],
    )
}

fn checkpoint_key(room: &RoomId, pos: &Position) -> Vec<u8> {
    key(
        P_CHECKPOINT,
        &[room.as_bytes(), &pos.depth.to_be_bytes(), pos.id.as_bytes()],
    )
}

fn parse_pos(k: &[u8]) -> Option<Position> {
    // prefix(1) room(32) depth(8) id(32)
    if k.len() != 73 {
        return None;
    }
    let depth = u64::from_be_bytes(k[33..41].try_into().ok()?);
    let id: [u8; 32] = k[41..73].try_into().ok()?;
    Some(Position {
        depth,
        id: EventId(id),
    })
}

impl History for SledHistory {
    fn meta(&self, id: &EventId) -> Option<Arc<EventMeta>> {
        if let Some((m, _)) = self.pending.metas.get(id) {
            return Some(m.clone());
        }
        // Reads cannot fail through this trait; a store error here is
        // treated as absence and surfaces on the next write.
        self.stored_meta(id)
            .ok()
            .flatten()
            .map(|(m, _)| Arc::new(m))
    }

    fn verdict(&self, id: &EventId) -> Option<Verdict> {
        if let Some((_, v)) = self.pending.metas.get(id) {
            return Some(v.clone());
        }
        self.stored_meta(id).ok().flatten().map(|(_, v)| v)
    }

    fn insert(&mut self, meta: Arc<EventMeta>, verdict: Verdict) {
        let pos = meta.position();
        self.pending.order.insert(pos);
        self.pending
            .chains
            .insert((*meta.origin(), meta.seq, meta.id));
        if let Some(t) = meta.relation_target() {
            self.pending.relations.insert((t, meta.id));
        }
        self.pending.metas.insert(meta.id, (meta, verdict));
    }

    fn set_verdict(&mut self, id: &EventId, verdict: Verdict) {
        if let Some(e) = self.pending.metas.get_mut(id) {
            e.1 = verdict;
            return;
        }
        let stored = self.stored_meta(id);
        if let Some(Some((m, _))) = self.note(stored) {
            self.pending.metas.insert(*id, (Arc::new(m), verdict));
        }
    }

    fn positions_from(&self, from: Position) -> Vec<Position> {
        let start = order_key(&self.room, &from);
        let end = key(P_ORDER, &[&room_bound(&self.room)]);
        let mut out: BTreeSet<Position> = self
            .tree
            .range(start..end)
            .keys()
            .filter_map(|k| k.ok().and_then(|k| parse_pos(&k)))
            .collect();
        out.extend(self.pending.order.range(from..).copied());
        out.into_iter().collect()
    }

    fn chain_from(&self, origin: &NodeId, from_seq: u64, limit: usize) -> Vec<(u64, EventId)> {
        let prefix = key(P_CHAIN, &[self.room.as_bytes(), origin.as_bytes()]);
        let start = key(
            P_CHAIN,
            &[
                self.room.as_bytes(),
                origin.as_bytes(),
                &from_seq.to_be_bytes(),
            ],
        );
        let mut out: BTreeSet<(u64, EventId)> = self
            .tree
            .range(start..)
            .keys()
            .map_while(|k| k.ok().filter(|k| k.starts_with(&prefix)))
            .filter_map(|k| {
                let rest = k.get(prefix.len()..)?;
                let seq = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
                let id: [u8; 32] = rest.get(8..40)?.try_into().ok()?;
                Some((seq, EventId(id)))
            })
            .take(limit)
            .collect();
        out.extend(
            self.pending
                .chains
                .iter()
                .filter(|(o, s, _)| o == origin && *s >= from_seq)
                .map(|(_, s, id)| (*s, *id)),
        );
        out.into_iter().take(limit).collect()
    }

    fn checkpoint_at_or_before(&self, pos: Position) -> Option<(Position, RoomState)> {
        let pending = self
            .pending
            .checkpoints
            .range(..=pos)
            .next_back()
            .map(|(k, s)| (*k, s.clone()));
        let limit = match self.pending.dropped_after {
            Some(d) => d.min(pos),
            None => pos,
        };
        let start = key(P_CHECKPOINT, &[self.room.as_bytes()]);
        let end = checkpoint_key(&self.room, &crate::engine::next_position(limit));
        let stored = self
            .tree
            .range(start..end)
            .next_back()
            .and_then(|r| r.ok())
            .and_then(|(k, v)| Some((parse_pos(&k)?, decode::<RoomState>("checkpoint", &v).ok()?)));
        match (pending, stored) {
            (Some(p), Some(s)) => Some(if p.0 >= s.0 { p } else { s }),
            (p, s) => p.or(s),
        }
    }

    fn put_checkpoint(&mut self, key: Position, state: RoomState) {
        self.pending.checkpoints.insert(key, state);
    }

    fn drop_checkpoints_after(&mut self, key: Position) {
        let _ = self
            .pending
            .checkpoints
            .split_off(&crate::engine::next_position(key));
        self.pending.dropped_after = Some(match self.pending.dropped_after {
            Some(d) => d.min(key),
            None => key,
        });
    }

    fn relations(&self, target: &EventId) -> Vec<EventId> {
        let prefix = key(P_RELATION, &[target.as_bytes()]);
        let mut out: BTreeSet<EventId> = self
            .tree
            .scan_prefix(&prefix)
            .keys()
            .filter_map(|k| {
                let k = k.ok()?;
                let id: [u8; 32] = k.get(33..65)?.try_into().ok()?;
                Some(EventId(id))
            })
            .collect();
        out.extend(
            self.pending
                .relations
                .iter()
                .filter(|(t, _)| t == target)
                .map(|(_, id)| *id),
        );
        out.into_iter().collect()
    }
}
