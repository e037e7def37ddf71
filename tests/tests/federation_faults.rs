//! Federation through faults, over real quinn endpoints on loopback: a
//! partition with moderation on one side, a restart mid-traffic, and
//! ephemeral signals and blobs between nodes.
#![allow(clippy::unwrap_used)]

use confab_tests::net::{TestNode, converged, eventually, mesh, shared_room};
use confab_tests::text;
use confab_wire::event::{Attachment, Content, MessageContent, ReasonContent};
use confab_wire::fed::{Ephemeral, Signal};
use confab_wire::sign::BlobHasher;
use confab_wire::{EventKind, UserId};

fn now() -> u64 {
    confab_node::local::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_with_a_mute_and_a_role_change_heals_to_one_state() {
    let nodes = mesh(21, 3).unwrap();
    let (room, users) = shared_room(&nodes, 21).await.unwrap();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let c_id = c.key.node_id();
    // Cut C off: A and B refuse it.
    a.fed.block(c_id);
    b.fed.block(c_id);
    eventually("C is cut off", || {
        !a.fed.connected().contains(&c_id) && !b.fed.connected().contains(&c_id)
    })
    .await;
    // On the A/B side: the owner mutes B's user and makes C's user a
    // moderator; both sides keep talking.
    let owner = &users[0];
    let cutoff = a
        .rooms()
        .room(&room)
        .unwrap()
        .engine()
        .cutoff_for(&users[1]);
    let until = now() + 3_600_000;
    a.post(
        owner,
        &room,
        EventKind::Mute {
            target: users[1].clone(),
            cutoff,
            until,
        },
        Content::Reason(ReasonContent::default()),
    )
    .unwrap();
    a.post(
        owner,
        &room,
        EventKind::RoleGrant {
            target: users[2].clone(),
            role: "moderator".into(),
        },
        Content::Empty,
    )
    .unwrap();
    for i in 0..10 {
        a.post(owner, &room, EventKind::Message, text(&format!("a {i}")))
            .unwrap();
        c.post(
            &users[2],
            &room,
            EventKind::Message,
            text(&format!("c {i}")),
        )
        .unwrap();
    }
    eventually("B sees the mute", || {
        b.has(&room, |r| r.engine().state().mutes.contains_key(&users[1]))
    })
    .await;
    // B's node lets its muted user post anyway (an older or modified
    // node; B itself refuses to): stored, rejected, replicated.
    assert!(
        b.post(&users[1], &room, EventKind::Message, text("am I muted?"))
            .is_err()
    );
    b.post_unjudged(&users[1], &room, EventKind::Message, text("am I muted?"))
        .unwrap();
    assert!(
        !c.has(&room, |r| r.engine().state().mutes.contains_key(&users[1])),
        "C cannot know of the mute while cut off"
    );
    // Heal.
    a.fed.unblock(&c_id);
    b.fed.unblock(&c_id);
    converged(&nodes, &room).await;
    let states: Vec<_> = nodes
        .iter()
        .map(|n| n.rooms().room(&room).unwrap().engine().state().clone())
        .collect();
    for s in &states {
        assert_eq!(s, &states[0], "one state everywhere");
        assert_eq!(
            s.mutes.get(&users[1]),
            Some(&until),
            "B's user is muted everywhere"
        );
        assert!(
            s.grants
                .get(&users[2])
                .is_some_and(|g| g.contains("moderator")),
            "C's user is a moderator everywhere"
        );
    }
    // create + 2 invites + 2 joins + mute + grant + 20 messages + 1 muted post
    assert_eq!(a.digest(&room).unwrap().1, 28);
    let rejected = a.rooms().rejections().get("rejected:muted").copied();
    assert_eq!(rejected, Some(1), "A counted the muted post from B");
    for n in &nodes {
        n.fed.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_on_its_data_mid_traffic_catches_up() {
    let mut nodes = mesh(31, 2).unwrap();
    let (room, users) = shared_room(&nodes, 31).await.unwrap();
    // Stop B (its federation and its in-memory rooms) while A writes.
    let b = nodes.pop().unwrap();
    let b_key = b.key.clone();
    let b_store = b.rooms().store().clone();
    for i in 0..5 {
        b.post(
            &users[1],
            &room,
            EventKind::Message,
            text(&format!("b {i}")),
        )
        .unwrap();
    }
    b.fed.shutdown().await;
    drop(b);
    let a = &nodes[0];
    for i in 0..50 {
        a.post(
            &users[0],
            &room,
            EventKind::Message,
            text(&format!("a {i}")),
        )
        .unwrap();
    }
    // B restarts on the same store: rooms reopened from disk.
    let pins = [a.key.node_id()].into_iter().collect();
    let b = TestNode::start_on(&b_key, pins, b_store).unwrap();
    b.fed.connect(a.key.node_id(), a.fed.local_addr().unwrap());
    a.fed.connect(b_key.node_id(), b.fed.local_addr().unwrap());
    let both = [nodes.pop().unwrap(), b];
    converged(&both, &room).await;
    // create + invite + join + 5 + 50
    assert_eq!(both[0].digest(&room).unwrap().1, 58);
    for n in &both {
        n.fed.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_attachments_cross_nodes() {
    let nodes = mesh(41, 2).unwrap();
    let (room, users) = shared_room(&nodes, 41).await.unwrap();
    let (a, b) = (&nodes[0], &nodes[1]);
    // Typing of A's owner reaches B; a signal claiming B's user from A
    // would be dropped by B (a node speaks only for its own users).
    let mut signals = b.fed.subscribe_ephemeral();
    a.fed.send_ephemeral(Ephemeral {
        room: Some(room),
        user: users[1].clone(),
        signal: Signal::Typing(true),
    });
    a.fed.send_ephemeral(Ephemeral {
        room: Some(room),
        user: users[0].clone(),
        signal: Signal::Typing(true),
    });
    let got = tokio::time::timeout(std::time::Duration::from_secs(30), signals.recv())
        .await
        .expect("a signal within the hang guard")
        .unwrap();
    assert_eq!(got.user, users[0], "only A's own user's signal is taken");
    assert_eq!(got.signal, Signal::Typing(true));
    // An attachment of 600 KiB posted on A is fetched by B in chunks.
    let bytes: Vec<u8> = (0..600 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let blob = a.rooms().store().put_blob(&bytes).unwrap();
    a.rooms().store().wait_durable().unwrap();
    assert_eq!(blob, BlobHasher::of(&bytes));
    let content = Content::Message(MessageContent {
        body: "the report".into(),
        attachments: vec![Attachment {
            blob,
            name: "report.bin".into(),
            mime: "application/octet-stream".into(),
            size: bytes.len() as u64,
            dimensions: None,
        }],
        ..Default::default()
    });
    a.post(&users[0], &room, EventKind::Message, content)
        .unwrap();
    converged(&nodes, &room).await;
    assert!(b.rooms().store().blob(&blob).unwrap().is_none());
    b.fed.fetch_blob(blob, &[a.key.node_id()]).await.unwrap();
    assert_eq!(b.rooms().store().blob(&blob).unwrap().unwrap(), bytes);
    // A blob no one holds is a clear error, not a hang.
    let missing = BlobHasher::of(b"nobody has this");
    let err = b
        .fed
        .fetch_blob(missing, &[a.key.node_id()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not hold it"), "{err}");
    for n in &nodes {
        n.fed.shutdown().await;
    }
}

/// A room a peer offers without inviting any user of this node is refused
/// (and counted), however the peer pushes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_without_a_local_invite_are_refused() {
    let nodes = mesh(51, 2).unwrap();
    let (a, b) = (&nodes[0], &nodes[1]);
    let owner = UserId::new(a.key.node_id(), "owner").unwrap();
    let create = confab_tests::create_room_event(
        51,
        "owner",
        "secret",
        confab_wire::event::Visibility::Private,
        now(),
    )
    .unwrap();
    let room = create.room();
    a.rooms().create_room(&create).unwrap();
    let msg = a
        .rooms()
        .post(
            &a.key,
            &owner,
            &room,
            EventKind::Message,
            &text("internal only"),
            now(),
            None,
        )
        .and_then(|p| p.into_event())
        .unwrap();
    // Even pushed directly (as a confused or hostile peer would), B
    // keeps nothing of it.
    eventually("the nodes are connected", || a.fed.connected().len() == 1).await;
    a.fed
        .push_to(b.key.node_id(), room, create.signed().clone());
    a.fed.push_to(b.key.node_id(), room, msg.signed().clone());
    eventually("B refused the room", || {
        b.rooms()
            .rejections()
            .get("refused:not_invited")
            .copied()
            .unwrap_or(0)
            >= 1
    })
    .await;
    assert!(b.digest(&room).is_none());
    for n in &nodes {
        n.fed.shutdown().await;
    }
}
