//! The log as the source of truth: a tail the index lacks is judged again
//! on open, deleted text leaves the log's files, and stores of schema 3
//! move their events into the log.
#![allow(clippy::unwrap_used)]

use confab_wire::event::{Content, CreateRoom, MessageContent, ReasonContent, Visibility};
use confab_wire::{EventHeader, EventKind, NodeKey, UserId};

use super::tests::raw_sled;
use super::*;

const T0: u64 = 1_700_000_000_000;

fn key_() -> NodeKey {
    NodeKey::from_secret(&[5; 32])
}

fn carol() -> UserId {
    UserId::new(key_().node_id(), "carol").unwrap()
}

fn create() -> VerifiedEvent {
    let h = EventHeader::create(
        carol(),
        CreateRoom::named("durable", Visibility::Public, false),
        T0,
    );
    key_().sign_event(h, &Content::Empty).unwrap()
}

fn sign(room: &Room, kind: EventKind, content: &Content, ts: u64) -> VerifiedEvent {
    let h = room.engine().next_header(carol(), kind, ts);
    key_().sign_event(h, content).unwrap()
}

fn text(body: &str) -> Content {
    Content::Message(MessageContent {
        body: body.into(),
        ..Default::default()
    })
}

fn log_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir.join("log")).unwrap() {
        all.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Events made by a scratch room, to hand to the store under test.
fn events(n: u64) -> (VerifiedEvent, Vec<VerifiedEvent>, [u8; 32]) {
    let scratch = Store::temporary().unwrap();
    let c = create();
    let mut room = scratch.create_room(&c).unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let ev = sign(&room, EventKind::Message, &text(&format!("m{i}")), T0 + i);
        room.submit(&ev, T0 + i).unwrap().unwrap();
        room.commit().unwrap();
        out.push(ev);
    }
    (c, out, room.engine().digest())
}

#[test]
fn events_the_log_holds_beyond_the_index_are_judged_again_on_open() {
    let (c, evs, digest) = events(15);
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut room = store.create_room(&c).unwrap();
        for ev in &evs[..10] {
            room.submit(ev, T0).unwrap().unwrap();
        }
        room.commit().unwrap();
        store.wait_durable().unwrap();
        // A crash after the log write and before the index write: the
        // last five are in the log only.
        let rest: Vec<(RoomId, &SignedEvent)> =
            evs[10..].iter().map(|e| (c.room(), e.signed())).collect();
        let crashed = store.log.commit(&rest, |_, _| {
            Err(crate::error::Error::Flush {
                reason: "the process died here".into(),
            })
        });
        assert!(crashed.is_err());
        store.log.sync().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let room = store.open_room(&c.room()).unwrap().unwrap();
    assert_eq!(room.engine().len(), 16);
    assert_eq!(room.engine().digest(), digest);
    for ev in &evs {
        assert_eq!(store.event(&ev.id()).unwrap().unwrap().signed, *ev.signed());
    }
    // Replayed once: the log holds each event once, and a second open
    // finds nothing to do.
    assert_eq!(log_records(&store), 16);
    drop(room);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(log_records(&store), 16);
    let mut room = store.open_room(&c.room()).unwrap().unwrap();
    assert!(room.audit().is_clean());
}

fn log_records(store: &Store) -> usize {
    let mut n = 0;
    store
        .log
        .scan(|_, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
    n
}

#[test]
fn a_torn_last_record_is_cut_and_the_rest_opens() {
    let (c, evs, _) = events(3);
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut room = store.create_room(&c).unwrap();
        for ev in &evs {
            room.submit(ev, T0).unwrap().unwrap();
        }
        room.commit().unwrap();
        store.wait_durable().unwrap();
    }
    let seg = std::fs::read_dir(dir.path().join("log"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &[b'e', 0, 0, 1, 0, 9, 9]).unwrap();
    drop(f);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.open_room(&c.room()).unwrap().unwrap().engine().len(),
        4
    );
    assert_eq!(log_records(&store), 4);
}

#[test]
fn deleted_text_leaves_the_log_files() {
    let dir = tempfile::tempdir().unwrap();
    let c = create();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut room = store.create_room(&c).unwrap();
        let m = sign(&room, EventKind::Message, &text("zebra-secret-1"), T0 + 1);
        room.submit(&m, T0 + 1).unwrap().unwrap();
        room.commit().unwrap();
        store.wait_durable().unwrap();
        assert!(contains(&log_bytes(dir.path()), b"zebra-secret-1"));
        let reason = Content::Reason(ReasonContent {
            reason: "gone".into(),
        });
        let r = sign(&room, EventKind::Redact { target: m.id() }, &reason, T0 + 2);
        room.submit(&r, T0 + 2).unwrap().unwrap();
        room.commit().unwrap();
        // Gone for readers at once.
        assert!(
            store
                .event(&m.id())
                .unwrap()
                .unwrap()
                .signed
                .content
                .is_none()
        );
        // The deletion's flush, then the one that makes its erasure durable.
        store.wait_durable().unwrap();
        store.wait_durable().unwrap();
        assert!(!contains(&log_bytes(dir.path()), b"zebra-secret-1"));
        let stored = store.event(&m.id()).unwrap().unwrap();
        assert!(stored.signed.content.is_none());
        assert_eq!(stored.signed.verify().unwrap().id(), m.id());
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(store.data.scan_prefix([P_ERASE]).next().is_none());
}

#[test]
fn an_erasure_cut_short_by_a_crash_is_done_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let c = create();
    let m;
    {
        let store = Store::open(dir.path()).unwrap();
        let mut room = store.create_room(&c).unwrap();
        m = sign(&room, EventKind::Message, &text("yak-secret-2"), T0 + 1);
        room.submit(&m, T0 + 1).unwrap().unwrap();
        let reason = Content::Reason(ReasonContent {
            reason: "gone".into(),
        });
        let r = sign(&room, EventKind::Redact { target: m.id() }, &reason, T0 + 2);
        room.commit().unwrap();
        room.submit(&r, T0 + 2).unwrap().unwrap();
        room.commit().unwrap();
        // The deletion is durable (log and index), its erasure not done.
        store.log.sync().unwrap();
        store.db.flush().unwrap();
        assert!(contains(&log_bytes(dir.path()), b"yak-secret-2"));
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(!contains(&log_bytes(dir.path()), b"yak-secret-2"));
    assert!(
        store
            .event(&m.id())
            .unwrap()
            .unwrap()
            .signed
            .content
            .is_none()
    );
    assert!(store.data.scan_prefix([P_ERASE]).next().is_none());
}

#[test]
fn a_schema_3_store_moves_its_events_into_the_log() {
    let (c, evs, digest) = events(40);
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut room = store.create_room(&c).unwrap();
        for ev in &evs {
            room.submit(ev, T0).unwrap().unwrap();
            room.commit().unwrap();
        }
        store.wait_durable().unwrap();
    }
    // Schema 3's shape: each record holds its event's bytes; no log.
    {
        #[derive(bincode::Encode)]
        struct RecordV3 {
            room: RoomId,
            meta: crate::engine::EventMeta,
            verdict: Verdict,
            signed: SignedEvent,
        }
        let bytes: HashMap<EventId, SignedEvent> = std::iter::once(&c)
            .chain(&evs)
            .map(|e| (e.id(), e.signed().clone()))
            .collect();
        let db = raw_sled(dir.path());
        let data = db.open_tree("room_data").unwrap();
        for item in data.scan_prefix([P_EVENT]) {
            let (k, v) = item.unwrap();
            let rec: EventRecord = decode("record", &v).unwrap();
            let id = EventId(k[1..33].try_into().unwrap());
            let old = RecordV3 {
                room: rec.room,
                meta: rec.meta,
                verdict: rec.verdict,
                signed: bytes[&id].clone(),
            };
            data.insert(k, encode("record", &old).unwrap()).unwrap();
        }
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema", &3u32.to_be_bytes()).unwrap();
        meta.remove(LOG_CHECKED).unwrap();
        db.flush().unwrap();
        std::fs::remove_dir_all(dir.path().join("log")).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema().unwrap(), SCHEMA_VERSION);
    let room = store.open_room(&c.room()).unwrap().unwrap();
    assert_eq!(room.engine().digest(), digest);
    for ev in std::iter::once(&c).chain(&evs) {
        assert_eq!(store.event(&ev.id()).unwrap().unwrap().signed, *ev.signed());
    }
    assert_eq!(log_records(&store), 41);
    assert!(contains(&log_bytes(dir.path()), b"m39"));
}

fn backup_of(store: &Store) -> Vec<u8> {
    let header = confab_wire::backup::BackupHeader {
        node: key_().node_id(),
        name: "test".into(),
        created: T0,
        software: "test".into(),
    };
    let mut file = Vec::new();
    store
        .write_backup(&header, b"key", |piece| {
            file.extend(piece);
            Ok(())
        })
        .unwrap();
    file
}

#[test]
fn a_backup_carries_the_log_and_the_restored_store_derives_the_rest() {
    let (c, evs, _) = events(20);
    let store = Store::temporary().unwrap();
    let mut room = store.create_room(&c).unwrap();
    for ev in &evs {
        room.submit(ev, T0).unwrap().unwrap();
    }
    // A deletion: the copy must not carry the deleted text.
    let reason = Content::Reason(ReasonContent {
        reason: "gone".into(),
    });
    let r = sign(
        &room,
        EventKind::Redact {
            target: evs[3].id(),
        },
        &reason,
        T0 + 100,
    );
    room.submit(&r, T0 + 100).unwrap().unwrap();
    room.commit().unwrap();
    store.wait_durable().unwrap();
    let digest = room.engine().digest();
    let file = backup_of(&store);
    // Only what is not derived travels besides the events.
    let items = confab_wire::backup::read_all(&file).unwrap();
    let events = items
        .iter()
        .filter(|i| matches!(i, confab_wire::backup::BackupItem::Event { .. }))
        .count();
    assert_eq!(events, 22);
    assert!(!items.iter().any(|i| matches!(
        i,
        confab_wire::backup::BackupItem::Entry { key, .. } if key.first() == Some(&P_EVENT)
    )));
    let copied = |id: EventId| {
        items.iter().find_map(|i| match i {
            confab_wire::backup::BackupItem::Event { event, .. }
                if confab_wire::sign::event_id(&event.header) == id =>
            {
                Some(event.clone())
            }
            _ => None,
        })
    };
    assert_eq!(copied(evs[3].id()).unwrap().content, None);
    assert!(copied(evs[4].id()).unwrap().content.is_some());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b.confab");
    std::fs::write(&path, &file).unwrap();
    let dir = tmp.path().join("data");
    let restored = restore::restore(&path, &dir).unwrap();
    assert_eq!(restored.events, 22);
    let back = Store::open(&dir.join("db")).unwrap();
    assert!(back.recovering().unwrap());
    let mut room = back.open_room(&c.room()).unwrap().unwrap();
    assert_eq!(room.engine().digest(), digest);
    assert!(room.audit().is_clean());
    assert!(back.check_log().unwrap().agrees());
    assert!(
        back.event(&evs[3].id())
            .unwrap()
            .unwrap()
            .signed
            .content
            .is_none()
    );
    assert_eq!(
        back.event(&evs[4].id()).unwrap().unwrap().signed,
        *evs[4].signed()
    );
}

#[test]
fn a_restore_refuses_a_used_directory_and_leaves_nothing_from_a_damaged_file() {
    let (c, _, _) = events(0);
    let store = Store::temporary().unwrap();
    store.create_room(&c).unwrap();
    store.wait_durable().unwrap();
    let file = backup_of(&store);
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.confab");
    std::fs::write(&good, &file).unwrap();
    let mut flipped = file.clone();
    let at = file.len() - 50;
    flipped[at] ^= 0x80;
    for (name, bytes) in [
        ("flipped", flipped),
        ("cut", file[..file.len() - 1].to_vec()),
    ] {
        let bad = tmp.path().join(name);
        std::fs::write(&bad, &bytes).unwrap();
        let dir = tmp.path().join(format!("new-{name}"));
        let e = restore::restore(&bad, &dir).unwrap_err().to_string();
        assert!(e.contains("not a whole backup"), "{name}: {e}");
        assert!(
            !dir.exists(),
            "{name}: a failed restore left {}",
            dir.display()
        );
        let empty = tmp.path().join(format!("empty-{name}"));
        std::fs::create_dir(&empty).unwrap();
        assert!(restore::restore(&bad, &empty).is_err());
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    }
    let used = tmp.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("node.key"), b"another key").unwrap();
    let e = restore::restore(&good, &used).unwrap_err().to_string();
    assert!(e.contains("is not empty"), "{e}");
    assert_eq!(
        std::fs::read(used.join("node.key")).unwrap(),
        b"another key"
    );
    let dir = tmp.path().join("fresh");
    restore::restore(&good, &dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("node.key")), 0o600);
    assert_eq!(mode(&dir), 0o700);
}

#[test]
fn postings_in_memory_when_the_node_stops_are_found_again_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let c = create();
    let mut ids = Vec::new();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut room = store.create_room(&c).unwrap();
        for i in 0..5 {
            let m = sign(
                &room,
                EventKind::Message,
                &text(&format!("walrus {i}")),
                T0 + i,
            );
            room.submit(&m, T0 + i).unwrap().unwrap();
            room.commit().unwrap();
            ids.push(m.id());
        }
        store.wait_durable().unwrap();
        assert_eq!(store.search(None, "walrus", None, 10).unwrap().len(), 5);
        // A window this small stays in memory: nothing in sled yet.
        assert!(store.data.scan_prefix([search_prefix()]).next().is_none());
        // A crash loses it (a clean close would write it).
        search::lose_for_test(&store.search);
    }
    let store = Store::open(dir.path()).unwrap();
    ids.reverse();
    assert_eq!(store.search(None, "walrus", None, 10).unwrap(), ids);
}

fn search_prefix() -> u8 {
    views::P_WORD
}

#[test]
fn a_full_window_of_postings_is_written_as_blocks_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let c = create();
    let words: Vec<String> = (0..40).map(|w| format!("word{w}")).collect();
    let body = words.join(" ");
    let per_message = search::terms(&body).len();
    let messages = search::SEARCH_WINDOW / per_message + 1;
    let store = Store::open(dir.path()).unwrap();
    let mut room = store.create_room(&c).unwrap();
    for i in 0..messages as u64 {
        let m = sign(&room, EventKind::Message, &text(&body), T0 + i);
        room.submit(&m, T0 + i).unwrap().unwrap();
        if i % 256 == 255 {
            room.commit().unwrap();
        }
    }
    room.commit().unwrap();
    store.wait_durable().unwrap();
    // One block per term for the whole window, not one per commit.
    let blocks = store.data.scan_prefix([search_prefix()]).count();
    assert_eq!(blocks, per_message);
    assert!(store.meta.get(search::SEARCH_THROUGH).unwrap().is_some());
    assert_eq!(
        store
            .search(None, "word7", None, messages + 5)
            .unwrap()
            .len(),
        messages
    );
    drop(room);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store
            .search(None, "word7 word8", None, messages + 5)
            .unwrap()
            .len(),
        messages
    );
}

#[test]
fn search_finds_words_by_their_beginning_in_memory_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let c = create();
    let store = Store::open(dir.path()).unwrap();
    let mut room = store.create_room(&c).unwrap();
    let post = |room: &mut Room, body: &str, ts: u64| {
        let m = sign(room, EventKind::Message, &text(body), ts);
        room.submit(&m, ts).unwrap().unwrap();
        room.commit().unwrap();
        m.id()
    };
    let list = post(&mut room, "the launch checklist is ready", T0 + 1);
    let check = post(&mut room, "please check the logs", T0 + 2);
    let other = post(&mut room, "nothing to see", T0 + 3);
    let found = |s: &Store, q: &str| s.search(None, q, None, 10).unwrap();
    assert_eq!(found(&store, "check"), vec![check, list]);
    assert_eq!(found(&store, "checkl"), vec![list]);
    // Every term must begin a word of the message.
    assert_eq!(found(&store, "lau check"), vec![list]);
    assert!(found(&store, "checkmate").is_empty());
    assert_eq!(found(&store, "noth"), vec![other]);
    // The same from blocks in sled after a close.
    drop(room);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(store.data.scan_prefix([search_prefix()]).next().is_some());
    assert_eq!(found(&store, "check"), vec![check, list]);
    assert_eq!(found(&store, "lau check"), vec![list]);
    // Paging across words keeps (ts, id) order.
    assert_eq!(
        store
            .search(None, "check", Some((T0 + 2, check)), 10)
            .unwrap(),
        vec![list]
    );
}
