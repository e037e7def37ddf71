//! Schema migrations, one step at a time, each run once when a store of
//! the older schema opens.

use confab_wire::event::IdempotencyHash;
use confab_wire::{NodeId, UserId};

use bincode::Decode;
use confab_wire::{RoomId, SignedEvent};

use super::client::P_SENT;
use super::log::Log;
use super::views::user_key;
use super::{
    Body, EventRecord, INLINE, P_CHECKPOINT, P_EVENT, P_HOT, decode, encode, key, store_err,
};
use crate::engine::state::Rules;
use crate::engine::{EventMeta, Hot, Verdict};
use crate::error::Result;

/// Schema 1 to 2: every room state gains its rules (the version its create
/// event names, and the default invite policy, which version 1 never
/// consults). Checkpoints of the old shape are dropped; the engine replays
/// from the create event where it needs one. The rooms change in one
/// atomic batch before the schema mark does; a crash between the two leaves
/// states of the new shape, which decode only as that shape and are kept.
pub(super) fn to_2(data: &sled::Tree, meta: &sled::Tree) -> Result<()> {
    let mut batch = sled::Batch::default();
    for item in data.scan_prefix([P_HOT]) {
        let (k, v) = item.map_err(store_err("read room"))?;
        match decode::<Hot<()>>("room hot state (schema 1)", &v) {
            Ok(old) => {
                let rules = Rules::of_version(old.rules_version());
                batch.insert(k, encode("room hot state", &old.map_rules(|()| rules))?);
            }
            Err(e) => {
                if decode::<Hot>("room hot state", &v).is_err() {
                    return Err(e);
                }
            }
        }
    }
    for item in data.scan_prefix([P_CHECKPOINT]) {
        let (k, _) = item.map_err(store_err("read checkpoint"))?;
        batch.remove(k);
    }
    data.apply_batch(batch)
        .map_err(store_err("migrate to schema 2"))?;
    meta.insert("schema", &2u32.to_be_bytes())
        .map_err(store_err("write schema"))?;
    data.flush().map_err(store_err("flush migration"))?;
    meta.flush().map_err(store_err("flush migration"))?;
    Ok(())
}

/// Schema 2's records of sends, by user and idempotency key itself.
const P_SENT_BY_KEY: u8 = b'Z';

/// Schema 2 to 3: records of sends are keyed by idempotency hash, as the
/// messages of rules version 3 carry it, instead of by the key itself. The
/// old records move in one atomic batch (a crash before the schema mark
/// finds none left to move).
pub(super) fn to_3(data: &sled::Tree, meta: &sled::Tree) -> Result<()> {
    let mut batch = sled::Batch::default();
    for item in data.scan_prefix([P_SENT_BY_KEY]) {
        let (k, v) = item.map_err(store_err("read send record"))?;
        batch.remove(k.clone());
        // Prefix, node id, localpart length and bytes, key length and bytes.
        let parsed = (|| {
            let node = NodeId::from_bytes(k.get(1..33)?.try_into().ok()?).ok()?;
            let local_len = usize::from(*k.get(33)?);
            let local = std::str::from_utf8(k.get(34..34 + local_len)?).ok()?;
            let key_len = usize::from(*k.get(34 + local_len)?);
            let idem = std::str::from_utf8(k.get(35 + local_len..)?).ok()?;
            (idem.len() == key_len).then_some(())?;
            let user = UserId::new(node, local).ok()?;
            let hash = IdempotencyHash::of(&user, idem);
            Some((user, hash))
        })();
        // A record that does not parse was never written by schema 2.
        if let Some((user, hash)) = parsed {
            batch.insert(key(P_SENT, &[&user_key(&user), &hash.0]), v);
        }
    }
    data.apply_batch(batch)
        .map_err(store_err("migrate to schema 3"))?;
    meta.insert("schema", &3u32.to_be_bytes())
        .map_err(store_err("write schema"))?;
    data.flush().map_err(store_err("flush migration"))?;
    meta.flush().map_err(store_err("flush migration"))?;
    Ok(())
}

/// An event record of schema 3: the event's bytes inside it.
#[derive(Decode)]
struct RecordV3 {
    room: RoomId,
    meta: EventMeta,
    verdict: Verdict,
    signed: SignedEvent,
}

/// Records moved per step: one log append, one `fdatasync`, one batch.
const RELOCATE_CHUNK: usize = 4096;

/// Schema 3 to 4: the bytes of every event move from its record into the
/// event log. Each step appends a chunk of events, makes the log durable,
/// then rewrites their records to point at it; a crash between steps
/// leaves records of both shapes, and the next open moves the rest (a
/// chunk appended but not yet pointed at stays in the log unreferenced).
pub(super) fn to_4(data: &sled::Tree, meta: &sled::Tree, log: &Log) -> Result<()> {
    relocate(data, log, |v| {
        if decode::<EventRecord>("event record", v).is_ok() {
            return Ok(None);
        }
        let old: RecordV3 = decode("event record (schema 3)", v)?;
        Ok(Some((
            EventRecord {
                room: old.room,
                meta: old.meta,
                verdict: old.verdict,
                body: Body::Inline(SignedEvent {
                    header: Vec::new(),
                    signature: [0; 64],
                    content: None,
                }),
            },
            old.signed,
        )))
    })?;
    meta.insert("schema", &4u32.to_be_bytes())
        .map_err(store_err("write schema"))?;
    meta.flush().map_err(store_err("flush migration"))?;
    Ok(())
}

/// Moves the bytes of records restored from a backup (inline) into the
/// log, then clears the mark that says some are there.
pub(super) fn relocate_inline(data: &sled::Tree, meta: &sled::Tree, log: &Log) -> Result<()> {
    let moved = relocate(data, log, |v| {
        let rec: EventRecord = decode("event record", v)?;
        Ok(match rec.body {
            Body::Inline(ref s) => {
                let s = s.clone();
                Some((rec, s))
            }
            Body::Logged(_) => None,
        })
    })?;
    if moved > 0 {
        tracing::info!(events = moved, "moved restored events into the event log");
    }
    meta.remove(INLINE)
        .map_err(store_err("clear inline mark"))?;
    meta.flush().map_err(store_err("flush migration"))?;
    Ok(())
}

/// Appends the bytes `pick` finds in event records to the log, chunk by
/// chunk, and points each record at them. Returns how many moved.
fn relocate(
    data: &sled::Tree,
    log: &Log,
    pick: impl Fn(&[u8]) -> Result<Option<(EventRecord, SignedEvent)>>,
) -> Result<u64> {
    let mut iter = data.scan_prefix([P_EVENT]);
    let mut moved = 0u64;
    loop {
        let mut chunk = Vec::new();
        for item in iter.by_ref() {
            let (k, v) = item.map_err(store_err("read event record"))?;
            if let Some(found) = pick(&v)? {
                chunk.push((k, found));
                if chunk.len() == RELOCATE_CHUNK {
                    break;
                }
            }
        }
        if chunk.is_empty() {
            break;
        }
        let records: Vec<(RoomId, &SignedEvent)> =
            chunk.iter().map(|(_, (r, s))| (r.room, s)).collect();
        log.commit(&records, |locs, _| {
            // The bytes are durable before any record points at them.
            log.sync()?;
            let mut batch = sled::Batch::default();
            for ((k, (rec, _)), loc) in chunk.iter().zip(locs) {
                let rec = EventRecord {
                    body: Body::Logged(*loc),
                    ..rec.clone()
                };
                batch.insert(k.clone(), encode("event record", &rec)?);
            }
            data.apply_batch(batch)
                .map_err(store_err("move events into the log"))?;
            data.flush().map_err(store_err("flush migration"))?;
            Ok(())
        })?;
        moved += chunk.len() as u64;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use confab_wire::event::{Content, CreateRoom, MessageContent, Visibility};
    use confab_wire::{EventHeader, EventKind, NodeKey, UserId};

    use super::*;
    use crate::store::tests::raw_sled;
    use crate::store::{SCHEMA_VERSION, Store, key};

    const T0: u64 = 1_700_000_000_000;

    /// A room of rules `version` with messages, rewritten to schema 1 as
    /// the release before rules versions wrote it.
    fn schema_1_store(version: u16) -> (tempfile::TempDir, confab_wire::RoomId, [u8; 32]) {
        let key_ = NodeKey::from_secret(&[3; 32]);
        let alice = UserId::new(key_.node_id(), "alice").unwrap();
        let mut create = CreateRoom::named("general", Visibility::Private, false);
        create.version = version;
        let create = key_
            .sign_event(
                EventHeader::create(alice.clone(), create, T0),
                &Content::Empty,
            )
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let digest = {
            let store = Store::open(dir.path()).unwrap();
            let mut room = store.create_room(&create).unwrap();
            for i in 0..40 {
                let h = room
                    .engine()
                    .next_header(alice.clone(), EventKind::Message, T0 + i);
                let body = Content::Message(MessageContent {
                    body: format!("m{i}"),
                    ..Default::default()
                });
                let ev = key_.sign_event(h, &body).unwrap();
                room.submit(&ev, T0 + i).unwrap().unwrap();
                room.commit().unwrap();
            }
            store.wait_durable().unwrap();
            room.engine().digest()
        };
        let db = raw_sled(dir.path());
        let data = db.open_tree("room_data").unwrap();
        let k = key(P_HOT, &[create.room().as_bytes()]);
        let hot: Hot = decode("hot", &data.get(&k).unwrap().unwrap()).unwrap();
        data.insert(k, encode("hot", &hot.map_rules(|_| ())).unwrap())
            .unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema", &1u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
        drop(db);
        (dir, create.room(), digest)
    }

    #[test]
    fn a_schema_1_store_opens_with_each_room_judged_by_its_version() {
        for version in [1, 2] {
            let (dir, room, digest) = schema_1_store(version);
            let store = Store::open(dir.path()).unwrap();
            let r = store.open_room(&room).unwrap().unwrap();
            assert_eq!(r.engine().state().rules, Rules::of_version(version));
            assert_eq!(r.engine().digest(), digest, "version {version}");
            assert_eq!(r.engine().len(), 41);
            drop(r);
            drop(store);
            // Opening again finds schema 2 and nothing left to migrate.
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(
                store.open_room(&room).unwrap().unwrap().engine().digest(),
                digest
            );
            assert_eq!(store.schema().unwrap(), SCHEMA_VERSION);
        }
    }

    #[test]
    fn a_migration_cut_short_before_the_schema_mark_completes_on_the_next_open() {
        let (dir, room, digest) = schema_1_store(2);
        {
            let db = raw_sled(dir.path());
            let data = db.open_tree("room_data").unwrap();
            let meta = db.open_tree("meta").unwrap();
            to_2(&data, &meta).unwrap();
            // The rooms are migrated; the mark goes back as if the crash
            // came before it.
            meta.insert("schema", &1u32.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.open_room(&room).unwrap().unwrap().engine().digest(),
            digest
        );
    }

    #[test]
    fn a_schema_2_record_of_a_send_is_found_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let alice = UserId::new(NodeKey::from_secret(&[3; 32]).node_id(), "alice").unwrap();
        let event = [7u8; 32];
        {
            let db = raw_sled(dir.path());
            let data = db.open_tree("room_data").unwrap();
            let mut k = key(P_SENT_BY_KEY, &[&user_key(&alice)]);
            k.push(6);
            k.extend_from_slice(b"send-1");
            data.insert(k, &event).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("schema", &2u32.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema().unwrap(), SCHEMA_VERSION);
        let hash = IdempotencyHash::of(&alice, "send-1");
        assert_eq!(
            store.sent_event(&alice, &hash).unwrap(),
            Some(confab_wire::EventId(event))
        );
        assert_eq!(
            store
                .sent_event(&alice, &IdempotencyHash::of(&alice, "send-2"))
                .unwrap(),
            None
        );
    }
}
