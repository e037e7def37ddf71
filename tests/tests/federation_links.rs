//! A peer that crashes and comes back: the surviving side must not keep a
//! dead link or lose the new one. The crash is played by a UDP relay that
//! goes silent (so no close reaches the survivor, as with `kill -9`) while
//! the peer restarts on its own store.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_node::metrics::PeerLabel;
use confab_node::store::Store;
use confab_node::tls::PinSet;
use confab_tests::net::{TestNode, eventually, shared_room};
use confab_tests::{test_key, text};
use confab_wire::fed::{Ephemeral, Signal};
use confab_wire::{EventKind, NodeKey, RoomId, UserId};
use tokio::net::UdpSocket;

/// A UDP relay to one target that can be cut (every datagram dropped, both
/// ways) and pointed at a new target.
struct Relay {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    cut: Arc<AtomicBool>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let relay = Relay {
            addr: front.local_addr().unwrap(),
            target: Arc::new(Mutex::new(target)),
            cut: Arc::new(AtomicBool::new(false)),
        };
        let (to, cut) = (relay.target.clone(), relay.cut.clone());
        tokio::spawn(async move {
            let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, client)) = front.recv_from(&mut buf).await {
                if cut.load(Ordering::SeqCst) {
                    continue;
                }
                let up = match upstreams.get(&client) {
                    Some(u) => u.clone(),
                    None => {
                        let u = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                        let (back, front, cut) = (u.clone(), front.clone(), cut.clone());
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 65_536];
                            while let Ok(n) = back.recv(&mut buf).await {
                                if !cut.load(Ordering::SeqCst) {
                                    let _ = front.send_to(&buf[..n], client).await;
                                }
                            }
                        });
                        upstreams.insert(client, u.clone());
                        u
                    }
                };
                let target = *to.lock().unwrap();
                let _ = up.send_to(&buf[..n], target).await;
            }
        });
        relay
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }

    fn retarget(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = target;
    }
}

/// Two test keys, the dialer's (the smaller node id) first, with their seeds.
fn dialer_and_acceptor(a: u8, b: u8) -> ((u8, NodeKey), (u8, NodeKey)) {
    let (ka, kb) = (test_key(a), test_key(b));
    if ka.node_id() < kb.node_id() {
        ((a, ka), (b, kb))
    } else {
        ((b, kb), (a, ka))
    }
}

fn pins(key: &NodeKey) -> PinSet {
    [key.node_id()].into_iter().collect()
}

fn typing(room: RoomId, user: &UserId) -> Ephemeral {
    Ephemeral {
        room: Some(room),
        user: user.clone(),
        signal: Signal::Typing(true),
    }
}

/// Sends `user`'s typing from `from` until `to` hears it (a signal is sent
/// once and dropped where there is no link, so it is repeated).
async fn typing_arrives(from: &TestNode, to: &TestNode, room: RoomId, user: &UserId) {
    let mut heard = to.fed.subscribe_ephemeral();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {user}'s typing to cross"
        );
        from.fed.send_ephemeral(typing(room, user));
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), heard.recv()).await
            && e.user == *user
        {
            return;
        }
    }
}

async fn message_arrives(from: &TestNode, to: &TestNode, room: RoomId, user: &UserId, body: &str) {
    let id = from
        .post(user, &room, EventKind::Message, text(body))
        .unwrap();
    eventually("the message crosses", || {
        to.has(&room, |r| r.engine().contains(&id))
    })
    .await;
}

fn label(peer: &NodeKey) -> PeerLabel {
    PeerLabel {
        peer: peer.node_id().short().to_string(),
    }
}

fn connected_gauge(node: &TestNode, peer: &NodeKey) -> i64 {
    node.rooms()
        .metrics()
        .peer_connected
        .get_or_create(&label(peer))
        .get()
}

fn disconnects(node: &TestNode, peer: &NodeKey) -> u64 {
    node.rooms()
        .metrics()
        .disconnects
        .get_or_create(&label(peer))
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_dialer_replaces_its_old_link_and_signals_keep_flowing() {
    let ((lo_seed, lo_key), (_, hi_key)) = dialer_and_acceptor(61, 62);
    let hi = TestNode::start(&hi_key, pins(&lo_key)).unwrap();
    let relay = Relay::start(hi.fed.local_addr().unwrap()).await;
    let lo_store = Store::temporary().unwrap();
    let lo = TestNode::start_on(&lo_key, pins(&hi_key), lo_store.clone()).unwrap();
    lo.fed.connect(hi_key.node_id(), relay.addr);
    hi.fed
        .connect(lo_key.node_id(), lo.fed.local_addr().unwrap());
    let nodes = [lo, hi];
    let (room, users) = shared_room(&nodes, lo_seed).await.unwrap();
    let [lo, hi] = nodes;
    let ended = disconnects(&hi, &lo_key);

    // The dialer dies without a word reaching the acceptor.
    relay.set_cut(true);
    lo.fed.shutdown().await;
    drop(lo);
    // It comes back on its store and dials the acceptor directly.
    let lo = TestNode::start_on(&lo_key, pins(&hi_key), lo_store).unwrap();
    lo.fed
        .connect(hi_key.node_id(), hi.fed.local_addr().unwrap());
    hi.fed
        .connect(lo_key.node_id(), lo.fed.local_addr().unwrap());
    eventually("the restarted dialer is linked", || {
        lo.fed.connected() == [hi_key.node_id()]
    })
    .await;
    // The dead link ends (closed when it was replaced, or by its idle
    // timeout); its end must not take the new link with it.
    eventually("the dead link has ended", || {
        disconnects(&hi, &lo_key) > ended
    })
    .await;
    eventually("only the new connection is left", || {
        hi.fed.open_connections() == 1
    })
    .await;
    assert_eq!(hi.fed.connected(), [lo_key.node_id()]);
    assert_eq!(connected_gauge(&hi, &lo_key), 1);
    typing_arrives(&hi, &lo, room, &users[1]).await;
    typing_arrives(&lo, &hi, room, &users[0]).await;
    message_arrives(&hi, &lo, room, &users[1], "still linked").await;
    // And it was the first link all along: never dropped and redialled.
    assert_eq!(disconnects(&lo, &hi_key), 0);
    for n in [&lo, &hi] {
        n.fed.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_acceptor_knocks_and_is_redialled() {
    let ((lo_seed, lo_key), (_, hi_key)) = dialer_and_acceptor(63, 64);
    let hi_store = Store::temporary().unwrap();
    let hi = TestNode::start_on(&hi_key, pins(&lo_key), hi_store.clone()).unwrap();
    let relay = Relay::start(hi.fed.local_addr().unwrap()).await;
    let lo = TestNode::start(&lo_key, pins(&hi_key)).unwrap();
    lo.fed.connect(hi_key.node_id(), relay.addr);
    hi.fed
        .connect(lo_key.node_id(), lo.fed.local_addr().unwrap());
    let nodes = [lo, hi];
    let (room, users) = shared_room(&nodes, lo_seed).await.unwrap();
    let [lo, hi] = nodes;
    let knocks = |n: &TestNode| {
        n.rooms()
            .metrics()
            .knocks
            .get_or_create(&label(&hi_key))
            .get()
    };
    let before = knocks(&lo);

    // The acceptor dies without a word reaching the dialer, and comes back
    // on its store, behind the relay that is still cut: the dialer cannot
    // reach it, and does not know its link is dead.
    relay.set_cut(true);
    hi.fed.shutdown().await;
    drop(hi);
    let hi = TestNode::start_on(&hi_key, pins(&lo_key), hi_store).unwrap();
    relay.retarget(hi.fed.local_addr().unwrap());
    hi.fed
        .connect(lo_key.node_id(), lo.fed.local_addr().unwrap());
    // Having no link, it knocks; the dialer drops its dead link for it.
    eventually("the dialer takes a knock", || knocks(&lo) > before).await;
    eventually("the dialer has dropped its dead link", || {
        lo.fed.connected().is_empty()
    })
    .await;
    relay.set_cut(false);
    eventually("the two are linked again", || {
        lo.fed.connected() == [hi_key.node_id()] && hi.fed.connected() == [lo_key.node_id()]
    })
    .await;
    typing_arrives(&lo, &hi, room, &users[0]).await;
    typing_arrives(&hi, &lo, room, &users[1]).await;
    message_arrives(&lo, &hi, room, &users[0], "back").await;
    for n in [&lo, &hi] {
        n.fed.shutdown().await;
    }
}
