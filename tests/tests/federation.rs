//! Federation over real quinn endpoints on loopback: three nodes, users on
//! each, chatting in one shared room; every node reaches the same digest.
#![allow(clippy::unwrap_used)]

use confab_node::tls::PinSet;
use confab_tests::net::{TestNode, eventually};
use confab_tests::{create_room_event, test_key, text};
use confab_wire::event::{Content, ReasonContent, Visibility};
use confab_wire::{EventKind, NodeKey, UserId};

fn now() -> u64 {
    confab_node::local::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_over_quic() {
    let keys: Vec<NodeKey> = (1..=3).map(test_key).collect();
    let ids: Vec<_> = keys.iter().map(NodeKey::node_id).collect();
    let nodes: Vec<TestNode> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let pins: PinSet = ids.iter().filter(|p| **p != ids[i]).copied().collect();
            TestNode::start(key, pins).unwrap()
        })
        .collect();
    for a in &nodes {
        for (j, b) in nodes.iter().enumerate() {
            a.fed.connect(ids[j], b.fed.local_addr().unwrap());
        }
    }
    // Node 0's owner creates a room and invites a user of each other node.
    let owner = UserId::new(ids[0], "owner").unwrap();
    let create = create_room_event(1, "owner", "ops", Visibility::Private, now()).unwrap();
    let room = create.room();
    nodes[0].rooms.lock().unwrap().create_room(&create).unwrap();
    let users: Vec<UserId> = ids
        .iter()
        .map(|n| UserId::new(*n, "user").unwrap())
        .collect();
    for u in &users[1..] {
        nodes[0]
            .post(
                &owner,
                &room,
                EventKind::Invite { target: u.clone() },
                Content::Reason(ReasonContent::default()),
            )
            .unwrap();
    }
    // The others learn of the room from its vector, join, and everyone talks.
    eventually("the room reaches every node", || {
        nodes.iter().all(|n| n.digest(&room).is_some())
    })
    .await;
    for (i, n) in nodes.iter().enumerate().skip(1) {
        eventually("the invite arrived", || {
            n.rooms.lock().unwrap().room(&room).is_some_and(|r| {
                r.engine().state().membership(&users[i]) == confab_node::engine::Membership::Invited
            })
        })
        .await;
        n.post(&users[i], &room, EventKind::Join, Content::Empty)
            .unwrap();
    }
    // A node that signs what its rules reject (an older or modified one):
    // already joined, so rejected, and replicated anyway.
    nodes[0]
        .post_unjudged(&owner, &room, EventKind::Join, Content::Empty)
        .unwrap();
    for round in 0..20 {
        for (i, n) in nodes.iter().enumerate() {
            let author = if i == 0 {
                owner.clone()
            } else {
                users[i].clone()
            };
            let joined = n
                .rooms
                .lock()
                .unwrap()
                .room(&room)
                .is_some_and(|r| r.engine().state().is_joined(&author));
            if joined {
                n.post(
                    &author,
                    &room,
                    EventKind::Message,
                    text(&format!("round {round} from node {i}")),
                )
                .unwrap();
            }
        }
    }
    eventually("all digests equal", || {
        let d: Vec<_> = nodes.iter().map(|n| n.digest(&room)).collect();
        d.iter().all(|x| x.is_some() && *x == d[0])
    })
    .await;
    let (_, len) = nodes[0].digest(&room).unwrap();
    // create + 2 invites + 2 joins + 1 rejected join + 60 messages
    assert_eq!(len, 66, "every event reached every node");
    let store_msgs = nodes[2]
        .rooms
        .lock()
        .unwrap()
        .store()
        .page(&room, confab_wire::client::Anchor::Latest, 200)
        .unwrap();
    assert_eq!(
        store_msgs.len(),
        64,
        "60 messages, 2 invites and 2 joins are shown on node 2"
    );
    for n in &nodes {
        n.fed.close();
    }
}

/// A node that lost its data directory but kept its key comes back empty,
/// reconnects, and recovers the room from its peer (everything the peer
/// wrote while it was away included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_rebuilt_from_its_peer_catches_up() {
    let mut keys = [test_key(11), test_key(12)];
    keys.sort_by_key(NodeKey::node_id);
    // The smaller id dials; make it the node that goes away and comes back.
    let (k_lo, k_hi) = (keys[0].clone(), keys[1].clone());
    let start = |key: &NodeKey, peer: &NodeKey| {
        TestNode::start(key, [peer.node_id()].into_iter().collect()).unwrap()
    };
    let a = start(&k_hi, &k_lo);
    let b = start(&k_lo, &k_hi);
    b.fed.connect(k_hi.node_id(), a.fed.local_addr().unwrap());
    let owner = UserId::new(k_hi.node_id(), "owner").unwrap();
    let bee = UserId::new(k_lo.node_id(), "bee").unwrap();
    let hi_seed = if k_hi.node_id() == test_key(12).node_id() {
        12
    } else {
        11
    };
    let create = create_room_event(hi_seed, "owner", "ops", Visibility::Private, now()).unwrap();
    assert_eq!(create.header().author, owner);
    let room = create.room();
    a.rooms.lock().unwrap().create_room(&create).unwrap();
    a.post(
        &owner,
        &room,
        EventKind::Invite {
            target: bee.clone(),
        },
        Content::Reason(ReasonContent::default()),
    )
    .unwrap();
    eventually("the invite reaches b", || {
        b.rooms.lock().unwrap().room(&room).is_some_and(|r| {
            r.engine().state().membership(&bee) == confab_node::engine::Membership::Invited
        })
    })
    .await;
    b.post(&bee, &room, EventKind::Join, Content::Empty)
        .unwrap();
    for i in 0..10 {
        b.post(
            &bee,
            &room,
            EventKind::Message,
            text(&format!("before {i}")),
        )
        .unwrap();
    }
    eventually("a and b agree", || {
        a.digest(&room).is_some() && a.digest(&room) == b.digest(&room)
    })
    .await;
    // b goes away with its data.
    b.fed.shutdown().await;
    drop(b);
    for i in 0..30 {
        a.post(
            &owner,
            &room,
            EventKind::Message,
            text(&format!("while away {i}")),
        )
        .unwrap();
    }
    // b comes back with its key and an empty store, marked recovering (as
    // confab-node marks a new store beside an old key).
    let store = confab_node::store::Store::temporary().unwrap();
    store.set_recovering(true).unwrap();
    let b =
        TestNode::start_on(&k_lo, [k_hi.node_id()].into_iter().collect(), store.clone()).unwrap();
    b.fed.connect(k_hi.node_id(), a.fed.local_addr().unwrap());
    eventually("b recovered the room", || {
        b.digest(&room).is_some() && a.digest(&room) == b.digest(&room)
    })
    .await;
    // create + invite + join + 10 + 30 messages
    assert_eq!(b.digest(&room).unwrap().1, 43);
    // Once its peer has shown it holds no more of b's chain, b posts
    // again, continuing its chain (no fork anywhere).
    eventually("b may post", || b.rooms().may_post(&room)).await;
    b.post(&bee, &room, EventKind::Message, text("back"))
        .unwrap();
    eventually("a has b's new message", || {
        a.digest(&room) == b.digest(&room)
    })
    .await;
    assert!(a.has(&room, |r| r.engine().forks().is_empty()));
    a.fed.shutdown().await;
    b.fed.shutdown().await;
    drop(b);
    // b restarts on the same store while a is down: the room caught up
    // before, so it is writable at once rather than waiting for a peer
    // that may never come back.
    store.wait_durable().unwrap();
    let b = TestNode::start_on(&k_lo, [k_hi.node_id()].into_iter().collect(), store).unwrap();
    assert!(
        b.rooms().may_post(&room),
        "a caught-up room waits again after a restart"
    );
    assert_eq!(b.rooms().catching_up(), 0);
    b.post(&bee, &room, EventKind::Message, text("still here"))
        .unwrap();
    b.fed.shutdown().await;
}
