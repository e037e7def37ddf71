//! An origin that signs two events at one sequence is reported: once per
//! room, with a count per origin in metrics, however many twins follow.
#![allow(clippy::unwrap_used)]

use confab_node::metrics::PeerLabel;
use confab_tests::net::{eventually, mesh, shared_room};
use confab_tests::text;
use confab_wire::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocating_origin_is_counted_once_per_room() {
    let nodes = mesh(51, 2).unwrap();
    let (room, users) = shared_room(&nodes, 51).await.unwrap();
    let (a, b) = (&nodes[0], &nodes[1]);
    let liar = b.key.node_id();
    let count = || {
        a.rooms()
            .metrics()
            .equivocations
            .get_or_create(&PeerLabel {
                peer: liar.short().to_string(),
            })
            .get()
    };
    assert_eq!(count(), 0);
    // b signs three different events at one sequence, out of band, and
    // sends them all to a.
    let header = b.rooms().room(&room).unwrap().engine().next_header(
        users[1].clone(),
        EventKind::Message,
        confab_node::local::now_ms(),
    );
    let twins: Vec<_> = ["one", "two", "three"]
        .iter()
        .map(|body| b.key.sign_event(header.clone(), &text(body)).unwrap())
        .collect();
    for t in &twins {
        b.fed.push_to(a.key.node_id(), room, t.signed().clone());
    }
    eventually("a holds every twin", || {
        a.has(&room, |r| {
            twins.iter().all(|t| r.engine().contains(&t.id()))
        })
    })
    .await;
    assert!(a.has(&room, |r| r.engine().forks().contains_key(&liar)));
    assert_eq!(count(), 1, "one room, one report");
    for n in &nodes {
        n.fed.close();
    }
}
