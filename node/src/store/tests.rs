//! Store tests on real sled databases in temporary directories.
#![allow(clippy::unwrap_used)]

use confab_wire::event::{Content, CreateRoom, MessageContent, ReasonContent, Visibility};
use confab_wire::{EventHeader, EventKind, NodeKey, UserId};

use super::*;
use crate::engine::tests::{deliver_shuffled, random_room};

const T0: u64 = 1_700_000_000_000;

fn alice_key() -> NodeKey {
    NodeKey::from_secret(&[1; 32])
}

fn alice() -> UserId {
    UserId::new(alice_key().node_id(), "alice").unwrap()
}

fn create_event() -> VerifiedEvent {
    let header = EventHeader::create(
        alice(),
        CreateRoom::named("general", Visibility::Public, false),
        T0,
    );
    alice_key().sign_event(header, &Content::Empty).unwrap()
}

fn post(room: &mut Room, kind: EventKind, content: Content, ts: u64) -> VerifiedEvent {
    let header = room.engine().next_header(alice(), kind, ts);
    let ev = alice_key().sign_event(header, &content).unwrap();
    let adm = room.submit(&ev, ts).unwrap().unwrap();
    assert!(
        matches!(
            adm,
            Admission::Applied {
                verdict: Verdict::Accepted,
                ..
            }
        ),
        "{adm:?}"
    );
    room.commit().unwrap();
    ev
}

fn message(room: &mut Room, body: &str, ts: u64) -> VerifiedEvent {
    post(
        room,
        EventKind::Message,
        Content::Message(MessageContent {
            body: body.into(),
            ..Default::default()
        }),
        ts,
    )
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let create = create_event();
    let (digest, ids) = {
        let store = Store::open(dir.path()).unwrap();
        let mut room = store.create_room(&create).unwrap();
        let ids: Vec<EventId> = (0..300)
            .map(|i| message(&mut room, &format!("m{i}"), T0 + i))
            .map(|e| e.id())
            .collect();
        store.wait_durable().unwrap();
        (room.engine().digest(), ids)
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.rooms().unwrap(), vec![create.room()]);
    let mut room = store.open_room(&create.room()).unwrap().unwrap();
    assert_eq!(room.engine().digest(), digest);
    assert_eq!(room.engine().len(), 301);
    for id in &ids {
        let ev = store.event(id).unwrap().unwrap();
        assert_eq!(ev.room, create.room());
        assert_eq!(ev.signed.id(), *id);
    }
    // It goes on where it stopped, and a fold from scratch agrees.
    message(&mut room, "after reopen", T0 + 1000);
    let d = room.engine().digest();
    assert!(room.audit().is_clean());
    assert_eq!(room.engine().digest(), d);
}

#[test]
fn pages_are_exact_at_the_boundaries() {
    let store = Store::temporary().unwrap();
    let create = create_event();
    let mut room = store.create_room(&create).unwrap();
    let ids: Vec<EventId> = (0..120)
        .map(|i| message(&mut room, &format!("m{i}"), T0 + i))
        .map(|e| e.id())
        .collect();
    let r = create.room();
    assert_eq!(store.page(&r, Anchor::Latest, 50).unwrap(), ids[70..]);
    assert_eq!(
        store.page(&r, Anchor::Before(ids[70]), 50).unwrap(),
        ids[20..70]
    );
    assert_eq!(
        store.page(&r, Anchor::Before(ids[20]), 50).unwrap(),
        ids[..20]
    );
    assert!(
        store
            .page(&r, Anchor::Before(ids[0]), 50)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.page(&r, Anchor::After(ids[0]), 50).unwrap(),
        ids[1..51]
    );
    assert_eq!(
        store.page(&r, Anchor::After(ids[100]), 50).unwrap(),
        ids[101..]
    );
    assert!(
        store
            .page(&r, Anchor::After(ids[119]), 50)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.page(&r, Anchor::Latest, 1000).unwrap(), ids);
    assert!(matches!(
        store.page(&r, Anchor::Before(EventId([7; 32])), 5),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn a_redaction_drops_the_content_from_the_store() {
    let store = Store::temporary().unwrap();
    let mut room = store.create_room(&create_event()).unwrap();
    let m = message(&mut room, "secret", T0 + 1);
    assert!(
        store
            .event(&m.id())
            .unwrap()
            .unwrap()
            .signed
            .content
            .is_some()
    );
    post(
        &mut room,
        EventKind::Redact { target: m.id() },
        Content::Reason(ReasonContent {
            reason: "oops".into(),
        }),
        T0 + 2,
    );
    let stored = store.event(&m.id()).unwrap().unwrap();
    assert!(stored.signed.content.is_none());
    // The header still verifies.
    assert_eq!(stored.signed.verify().unwrap().id(), m.id());
    // A deleted message keeps its place in the timeline; only its content
    // is gone.
    assert!(
        store
            .page(&room.engine().room(), Anchor::Latest, 10)
            .unwrap()
            .contains(&m.id())
    );
}

#[test]
fn a_refused_event_stores_nothing() {
    let store = Store::temporary().unwrap();
    let mut room = store.create_room(&create_event()).unwrap();
    let mut h = room.engine().next_header(alice(), EventKind::Message, T0);
    h.depth += 3;
    let ev = alice_key()
        .sign_event(
            h,
            &Content::Message(MessageContent {
                body: "x".into(),
                ..Default::default()
            }),
        )
        .unwrap();
    assert!(matches!(
        room.submit(&ev, T0).unwrap(),
        Err(Refusal::BadDepth { .. })
    ));
    assert!(store.event(&ev.id()).unwrap().is_none());
    assert!(!room.engine().contains(&ev.id()));
}

/// The sled-backed engine reaches the same digest as the in-memory one on
/// random multi-origin rooms with sanctions and re-folds, and keeps it
/// across a reopen.
#[test]
fn the_store_agrees_with_the_in_memory_engine() {
    for seed in 1..=8u64 {
        let events = random_room(seed, 3, 60);
        let mem = deliver_shuffled(&events, seed);
        let dir = tempfile::tempdir().unwrap();
        let digest = {
            let store = Store::open(dir.path()).unwrap();
            let mut room = store.create_room(&events[0]).unwrap();
            // The same causal order as the in-memory run.
            let order: Vec<EventId> = mem.history().ordered_ids().collect();
            let mut pending: Vec<&VerifiedEvent> = events[1..].iter().collect();
            while !pending.is_empty() {
                let i = pending
                    .iter()
                    .position(|e| {
                        let h = e.header();
                        h.prev
                            .iter()
                            .chain(h.origin_prev.iter())
                            .all(|p| room.engine().contains(p))
                    })
                    .unwrap();
                let ev = pending.remove(i);
                room.submit(ev, u64::MAX / 2).unwrap().unwrap();
                if pending.len() % 7 == 0 {
                    room.commit().unwrap();
                }
            }
            room.commit().unwrap();
            assert_eq!(order.len() as u64, room.engine().len());
            store.wait_durable().unwrap();
            room.engine().digest()
        };
        assert_eq!(digest, mem.digest(), "seed {seed}");
        let store = Store::open(dir.path()).unwrap();
        let room = store.open_room(&events[0].room()).unwrap().unwrap();
        assert_eq!(
            room.engine().digest(),
            mem.digest(),
            "seed {seed} after reopen"
        );
    }
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let e = Store::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("schema 99 is newer"), "{e}");
}

#[test]
fn group_commit_serves_many_waiters_with_few_flushes() {
    let store = Store::temporary().unwrap();
    let create = create_event();
    let room = std::sync::Arc::new(std::sync::Mutex::new(store.create_room(&create).unwrap()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let room = room.clone();
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    {
                        let mut r = room.lock().unwrap();
                        message(&mut r, &format!("t{t} m{i}"), T0 + 1);
                    }
                    store.wait_durable().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (flushes, served) = store.flusher().stats();
    assert_eq!(served, 400);
    assert!(flushes <= served, "{flushes} flushes for {served} waiters");
}

fn bob_key() -> NodeKey {
    NodeKey::from_secret(&[2; 32])
}

fn bob() -> UserId {
    UserId::new(bob_key().node_id(), "bob").unwrap()
}

fn post_as(
    room: &mut Room,
    key: &NodeKey,
    who: &UserId,
    kind: EventKind,
    content: Content,
    ts: u64,
) -> VerifiedEvent {
    let header = room.engine().next_header(who.clone(), kind, ts);
    let ev = key.sign_event(header, &content).unwrap();
    let adm = room.submit(&ev, ts).unwrap().unwrap();
    assert!(
        matches!(
            adm,
            Admission::Applied {
                verdict: Verdict::Accepted,
                ..
            }
        ),
        "{adm:?}"
    );
    room.commit().unwrap();
    ev
}

fn msg(body: &str, thread: Option<EventId>, mentions: Vec<UserId>) -> Content {
    Content::Message(MessageContent {
        body: body.into(),
        thread,
        mentions,
        ..Default::default()
    })
}

#[test]
fn views_follow_threads_reactions_edits_and_deletions() {
    use confab_wire::event::EditContent;
    let store = Store::temporary().unwrap();
    let mut room = store.create_room(&create_event()).unwrap();
    let r = room.engine().room();
    post_as(
        &mut room,
        &bob_key(),
        &bob(),
        EventKind::Join,
        Content::Empty,
        T0 + 1,
    );
    let root = post_as(
        &mut room,
        &alice_key(),
        &alice(),
        EventKind::Message,
        msg("release planning for friday", None, vec![bob()]),
        T0 + 2,
    );
    let reply1 = post_as(
        &mut room,
        &bob_key(),
        &bob(),
        EventKind::Message,
        msg("I can take the changelog", Some(root.id()), vec![]),
        T0 + 3,
    );
    let reply2 = post_as(
        &mut room,
        &alice_key(),
        &alice(),
        EventKind::Message,
        msg("thanks bob", Some(root.id()), vec![bob()]),
        T0 + 4,
    );
    for (k, u, e, ts) in [
        (&alice_key(), alice(), "👍", 5),
        (&bob_key(), bob(), "👍", 6),
        (&bob_key(), bob(), "🎉", 7),
    ] {
        post_as(
            &mut room,
            k,
            &u,
            EventKind::React {
                target: root.id(),
                emoji: e.into(),
            },
            Content::Empty,
            T0 + ts,
        );
    }
    post_as(
        &mut room,
        &bob_key(),
        &bob(),
        EventKind::Unreact {
            target: root.id(),
            emoji: "🎉".into(),
        },
        Content::Empty,
        T0 + 8,
    );
    // Threads.
    assert_eq!(
        store.thread(&root.id()).unwrap(),
        vec![reply1.id(), reply2.id()]
    );
    let view = store.message_view(&root.id()).unwrap().unwrap();
    assert_eq!(view.thread, Some((2, T0 + 4)));
    assert_eq!(view.reactions.len(), 1);
    assert_eq!(view.reactions["👍"], vec![alice(), bob()]);
    // Mentions, newest first.
    assert_eq!(
        store.mentions(&bob(), None, 10).unwrap(),
        vec![reply2.id(), root.id()]
    );
    // Edit: new text is found, old text is not; the history keeps both.
    post_as(
        &mut room,
        &bob_key(),
        &bob(),
        EventKind::Edit {
            target: reply1.id(),
        },
        Content::Edit(EditContent {
            body: "I can take the release notes".into(),
            mentions: vec![],
        }),
        T0 + 9,
    );
    let v = store.message_view(&reply1.id()).unwrap().unwrap();
    assert!(v.edited);
    assert_eq!(v.body.as_deref(), Some("I can take the release notes"));
    assert_eq!(store.edit_history(&reply1.id()).unwrap().len(), 1);
    assert_eq!(
        store.search(Some(&[r]), "notes", None, 10).unwrap(),
        vec![reply1.id()]
    );
    assert!(
        store
            .search(Some(&[r]), "changelog", None, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.search(None, "RELEASE", None, 10).unwrap(),
        vec![reply1.id(), root.id()]
    );
    assert_eq!(
        store.search(None, "release friday", None, 10).unwrap(),
        vec![root.id()]
    );
    assert!(
        store
            .search(Some(&[RoomId([9; 32])]), "release", None, 10)
            .unwrap()
            .is_empty()
    );
    // Delete reply2: gone from the thread, search and mentions; reason kept.
    post_as(
        &mut room,
        &alice_key(),
        &alice(),
        EventKind::Redact {
            target: reply2.id(),
        },
        Content::Reason(ReasonContent {
            reason: "duplicate".into(),
        }),
        T0 + 10,
    );
    assert_eq!(store.thread(&root.id()).unwrap(), vec![reply1.id()]);
    assert!(store.search(None, "thanks", None, 10).unwrap().is_empty());
    assert_eq!(store.mentions(&bob(), None, 10).unwrap(), vec![root.id()]);
    let gone = store.message_view(&reply2.id()).unwrap().unwrap();
    assert_eq!(gone.body, None);
    assert_eq!(gone.deleted.as_deref(), Some("duplicate"));
}

#[test]
fn unread_counts_follow_read_positions() {
    let store = Store::temporary().unwrap();
    let mut room = store.create_room(&create_event()).unwrap();
    let r = room.engine().room();
    post_as(
        &mut room,
        &bob_key(),
        &bob(),
        EventKind::Join,
        Content::Empty,
        T0 + 1,
    );
    let ids: Vec<EventId> = (0..10)
        .map(|i| {
            post_as(
                &mut room,
                &alice_key(),
                &alice(),
                EventKind::Message,
                msg(&format!("m{i}"), None, vec![]),
                T0 + 10 + i,
            )
            .id()
        })
        .collect();
    // Bob's own messages never count as unread for him.
    post_as(
        &mut room,
        &bob_key(),
        &bob(),
        EventKind::Message,
        msg("mine", None, vec![]),
        T0 + 30,
    );
    assert_eq!(store.unread(&r, &bob()).unwrap(), 10);
    store.mark_read(&r, &bob(), &ids[3]).unwrap();
    assert_eq!(store.unread(&r, &bob()).unwrap(), 6);
    assert_eq!(store.read_position(&r, &bob()).unwrap(), Some(ids[3]));
    // Read positions only move forwards.
    store.mark_read(&r, &bob(), &ids[1]).unwrap();
    assert_eq!(store.read_position(&r, &bob()).unwrap(), Some(ids[3]));
    store.mark_read(&r, &bob(), &ids[9]).unwrap();
    assert_eq!(store.unread(&r, &bob()).unwrap(), 0);
    assert!(store.mark_read(&r, &bob(), &EventId([4; 32])).is_err());
}

#[test]
fn search_terms_are_words_lowercased() {
    assert_eq!(
        search::terms("Hello, **World**! hello a 42 café"),
        vec!["42", "café", "hello", "world"]
    );
}

/// Postings of one commit share a block; blocks from later commits may
/// hold older messages (late arrivals): results still come newest first,
/// and `before` pages through them exactly.
#[test]
fn search_merges_blocks_newest_first() {
    let store = Store::temporary().unwrap();
    let mut room = store.create_room(&create_event()).unwrap();
    let r = room.engine().room();
    let submit = |room: &mut Room, body: &str, ts: u64| {
        let header = room.engine().next_header(alice(), EventKind::Message, ts);
        let ev = alice_key()
            .sign_event(header, &msg(body, None, vec![]))
            .unwrap();
        room.submit(&ev, u64::MAX / 2).unwrap().unwrap();
        ev.id()
    };
    // Commit 1: ts 10, 30, 50.
    let a = submit(&mut room, "deploy alpha", T0 + 10);
    let b = submit(&mut room, "deploy beta", T0 + 30);
    let c = submit(&mut room, "deploy gamma", T0 + 50);
    room.commit().unwrap();
    // Commit 2: ts 20, 40 (older than c).
    let d = submit(&mut room, "deploy delta", T0 + 20);
    let e = submit(&mut room, "deploy epsilon", T0 + 40);
    room.commit().unwrap();
    let all = store.search(Some(&[r]), "deploy", None, 10).unwrap();
    assert_eq!(all, vec![c, e, b, d, a]);
    assert_eq!(store.search(None, "deploy", None, 2).unwrap(), vec![c, e]);
    assert_eq!(
        store
            .search(None, "deploy", Some((T0 + 40, EventId([0; 32]))), 2)
            .unwrap(),
        vec![b, d]
    );
    assert_eq!(
        store
            .search(None, "deploy", Some((T0 + 20, EventId([0; 32]))), 5)
            .unwrap(),
        vec![a]
    );
    assert_eq!(
        store.search(None, "deploy epsilon", None, 5).unwrap(),
        vec![e]
    );
}

/// Messages of one ts, spread over blocks, come in (ts, id) order and a
/// (ts, id) cursor pages through them exactly.
#[test]
fn search_pages_through_messages_of_one_ts() {
    let store = Store::temporary().unwrap();
    let mut room = store.create_room(&create_event()).unwrap();
    let submit = |room: &mut Room, body: &str| {
        let header = room
            .engine()
            .next_header(alice(), EventKind::Message, T0 + 5);
        let ev = alice_key()
            .sign_event(header, &msg(body, None, vec![bob()]))
            .unwrap();
        room.submit(&ev, u64::MAX / 2).unwrap().unwrap();
        ev.id()
    };
    let mut all = vec![submit(&mut room, "kiwi one"), submit(&mut room, "kiwi two")];
    room.commit().unwrap();
    all.push(submit(&mut room, "kiwi three"));
    room.commit().unwrap();
    all.push(submit(&mut room, "kiwi four"));
    all.push(submit(&mut room, "kiwi five"));
    room.commit().unwrap();
    all.sort_by(|a, b| b.cmp(a));
    assert_eq!(store.search(None, "kiwi", None, 10).unwrap(), all);
    assert_eq!(store.mentions(&bob(), None, 10).unwrap(), all);
    let mut cursor = None;
    let (mut found, mut mentioned) = (Vec::new(), Vec::new());
    for _ in 0..all.len() {
        let page = store.search(None, "kiwi", cursor, 1).unwrap();
        let m = store.mentions(&bob(), cursor, 1).unwrap();
        found.extend(page.iter().copied());
        mentioned.extend(m);
        cursor = page.last().map(|id| (T0 + 5, *id));
    }
    assert_eq!(found, all);
    assert_eq!(mentioned, all);
}

/// A page lists messages and system lines (joins here) that were accepted;
/// reactions, edits and deletions change their message instead, and a
/// rejected event is never listed.
#[test]
fn pages_list_messages_and_system_lines_only() {
    use confab_wire::event::EditContent;
    let store = Store::temporary().unwrap();
    let mut room = store.create_room(&create_event()).unwrap();
    let r = room.engine().room();
    let join = post_as(
        &mut room,
        &bob_key(),
        &bob(),
        EventKind::Join,
        Content::Empty,
        T0 + 1,
    );
    let m = post_as(
        &mut room,
        &bob_key(),
        &bob(),
        EventKind::Message,
        msg("hi", None, vec![]),
        T0 + 2,
    );
    post_as(
        &mut room,
        &alice_key(),
        &alice(),
        EventKind::React {
            target: m.id(),
            emoji: "👍".into(),
        },
        Content::Empty,
        T0 + 3,
    );
    post_as(
        &mut room,
        &bob_key(),
        &bob(),
        EventKind::Edit { target: m.id() },
        Content::Edit(EditContent {
            body: "hello".into(),
            mentions: vec![],
        }),
        T0 + 4,
    );
    // A stranger's message is rejected (kept, not listed).
    let carol_key = NodeKey::from_secret(&[3; 32]);
    let carol = UserId::new(carol_key.node_id(), "carol").unwrap();
    let header = room
        .engine()
        .next_header(carol.clone(), EventKind::Message, T0 + 5);
    let rejected = carol_key
        .sign_event(header, &msg("spam", None, vec![]))
        .unwrap();
    assert!(matches!(
        room.submit(&rejected, T0 + 5).unwrap().unwrap(),
        Admission::Applied {
            verdict: Verdict::Rejected(_),
            ..
        }
    ));
    room.commit().unwrap();
    assert_eq!(
        store.page(&r, Anchor::Latest, 10).unwrap(),
        vec![join.id(), m.id()]
    );
}

/// sled itself, on a store just closed: as [`Store::open`], it waits for
/// sled's background thread to let go of the directory lock.
/// Opens the store's sled directly, waiting out the lock sled releases late.
pub(crate) fn raw_sled(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::open(dir) {
            Err(e) if lock_contended(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other.unwrap(),
        }
    }
}

fn edit(body: &str) -> Content {
    Content::Edit(confab_wire::event::EditContent {
        body: body.into(),
        mentions: vec![],
    })
}

fn reason() -> Content {
    Content::Reason(ReasonContent {
        reason: "gone".into(),
    })
}

#[test]
fn deleting_a_message_purges_the_text_of_every_edit() {
    let store = Store::temporary().unwrap();
    let mut room = store.create_room(&create_event()).unwrap();
    let m = message(&mut room, "secret v1", T0 + 1);
    let e1 = post(
        &mut room,
        EventKind::Edit { target: m.id() },
        edit("secret v2"),
        T0 + 2,
    );
    // An edit and the deletion in one commit.
    let h = room
        .engine()
        .next_header(alice(), EventKind::Edit { target: m.id() }, T0 + 3);
    let e2 = alice_key().sign_event(h, &edit("secret v3")).unwrap();
    room.submit(&e2, T0 + 3).unwrap().unwrap();
    let h = room
        .engine()
        .next_header(alice(), EventKind::Redact { target: m.id() }, T0 + 4);
    let r = alice_key().sign_event(h, &reason()).unwrap();
    room.submit(&r, T0 + 4).unwrap().unwrap();
    room.commit().unwrap();
    for id in [m.id(), e1.id(), e2.id()] {
        let stored = store.event(&id).unwrap().unwrap();
        assert!(stored.signed.content.is_none(), "{id} kept its text");
        assert_eq!(stored.signed.verify().unwrap().id(), id);
        let item = store.timeline_item(&id).unwrap().unwrap();
        assert!(item.event.content.is_none());
    }
    assert!(store.message_versions(&m.id()).unwrap().is_none());
    assert!(store.edit_history(&m.id()).unwrap().is_empty());
}

#[test]
fn an_edit_arriving_after_the_deletion_keeps_no_text() {
    // Bob (another node) edits his message while Alice, the room's owner,
    // deletes it: each node sees the other's event second.
    let bob_key = NodeKey::from_secret(&[2; 32]);
    let bob = UserId::new(bob_key.node_id(), "bob").unwrap();
    let create = create_event();
    let (sa, sb) = (Store::temporary().unwrap(), Store::temporary().unwrap());
    let (mut a, mut b) = (
        sa.create_room(&create).unwrap(),
        sb.create_room(&create).unwrap(),
    );
    let both = |a: &mut Room, b: &mut Room, ev: &VerifiedEvent, ts: u64| {
        for room in [a, b] {
            room.submit(ev, ts).unwrap().unwrap();
            room.commit().unwrap();
        }
    };
    let join = bob_key
        .sign_event(
            a.engine().next_header(bob.clone(), EventKind::Join, T0 + 1),
            &Content::Empty,
        )
        .unwrap();
    both(&mut a, &mut b, &join, T0 + 1);
    let msg = Content::Message(MessageContent {
        body: "secret v1".into(),
        ..Default::default()
    });
    let m = bob_key
        .sign_event(
            a.engine()
                .next_header(bob.clone(), EventKind::Message, T0 + 2),
            &msg,
        )
        .unwrap();
    both(&mut a, &mut b, &m, T0 + 2);
    let e = bob_key
        .sign_event(
            a.engine()
                .next_header(bob.clone(), EventKind::Edit { target: m.id() }, T0 + 3),
            &edit("secret v2"),
        )
        .unwrap();
    let r = alice_key()
        .sign_event(
            b.engine()
                .next_header(alice(), EventKind::Redact { target: m.id() }, T0 + 3),
            &reason(),
        )
        .unwrap();
    for (room, first, second) in [(&mut a, &e, &r), (&mut b, &r, &e)] {
        for ev in [first, second] {
            room.submit(ev, T0 + 4).unwrap().unwrap();
            room.commit().unwrap();
        }
    }
    for store in [&sa, &sb] {
        for id in [m.id(), e.id()] {
            let stored = store.event(&id).unwrap().unwrap();
            assert!(stored.signed.content.is_none(), "{id} kept its text");
        }
        assert!(store.search(None, "secret", None, 10).unwrap().is_empty());
    }
}

/// Damaged records read back as typed errors, never panics.
#[test]
fn damaged_records_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let create = create_event();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_room(&create).unwrap();
        store.wait_durable().unwrap();
    }
    {
        let db = raw_sled(dir.path());
        let t = db.open_tree("room_data").unwrap();
        t.insert(
            key(P_EVENT, &[create.id().as_bytes()]),
            &[0xff, 0x00, 0x13][..],
        )
        .unwrap();
        t.insert(
            key(P_HOT, &[create.room().as_bytes()]),
            &b"not a hot state"[..],
        )
        .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(
        store.event(&create.id()),
        Err(Error::Corrupt { .. })
    ));
    let e = store.open_room(&create.room()).unwrap_err().to_string();
    assert!(e.contains("store is damaged"), "{e}");
}
