//! A resend never posts twice, even after the node that took the first
//! send lost its disk and took the room back from its peer: from rules
//! version 3 the message carries its idempotency hash, and every store
//! that holds the message knows the send.
#![allow(clippy::unwrap_used)]

use confab_node::local::now_ms;
use confab_node::rooms::Posted;
use confab_node::store::Store;
use confab_tests::net::{TestNode, converged, eventually, mesh, shared_room};
use confab_tests::text;
use confab_wire::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_after_a_rebuild_from_peers_posts_nothing() {
    let mut nodes = mesh(71, 2).unwrap();
    let (room, users) = shared_room(&nodes, 71).await.unwrap();
    let bee = &users[1];
    let send = |node: &TestNode| {
        node.rooms()
            .post(
                &node.key,
                bee,
                &room,
                EventKind::Message,
                &text("only once"),
                now_ms(),
                Some("send-1"),
            )
            .unwrap()
    };
    let b = nodes.pop().unwrap();
    let Posted::Event(first) = send(&b) else {
        panic!("the first send did not post");
    };
    b.rooms().store().wait_durable().unwrap();
    b.fed.publish(room, first.signed(), None);
    let a = nodes.pop().unwrap();
    eventually("the message reaches a", || {
        a.has(&room, |r| r.engine().contains(&first.id()))
    })
    .await;
    // On b, a resend is a duplicate, as before.
    assert!(matches!(send(&b), Posted::Duplicate(id) if id == first.id()));

    // b loses its disk, comes back empty and takes the room back from a.
    let b_key = b.key.clone();
    b.fed.shutdown().await;
    drop(b);
    let store = Store::temporary().unwrap();
    store.set_recovering(true).unwrap();
    let b = TestNode::start_on(&b_key, [a.key.node_id()].into_iter().collect(), store).unwrap();
    b.fed.connect(a.key.node_id(), a.fed.local_addr().unwrap());
    a.fed.connect(b_key.node_id(), b.fed.local_addr().unwrap());
    let both = [a, b];
    converged(&both, &room).await;
    let [a, b] = both;
    eventually("b may post again", || b.rooms().may_post(&room)).await;
    // The client, never told its first send landed, sends again.
    match send(&b) {
        Posted::Duplicate(id) => assert_eq!(id, first.id()),
        other => panic!("a resend after the rebuild posted again: {other:?}"),
    }
    // A new key still posts.
    let fresh = b
        .rooms()
        .post(
            &b.key,
            bee,
            &room,
            EventKind::Message,
            &text("a new message"),
            now_ms(),
            Some("send-2"),
        )
        .unwrap();
    assert!(matches!(fresh, Posted::Event(_)), "{fresh:?}");
    for n in [&a, &b] {
        n.fed.shutdown().await;
    }
}
