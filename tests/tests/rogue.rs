//! A rogue peer (a pinned node that speaks the wire protocol with its own
//! key) sends a forged signature, an event authored for another node's
//! user, an event from a muted user, garbage and an oversized frame. The
//! honest node rejects each, counts them, closes the rogue's connection on
//! the broken framing, and keeps serving its honest peer.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use confab_node::federation::sync;
use confab_node::tls::{self, PinSet};
use confab_tests::net::{TestNode, eventually};
use confab_tests::{create_room_event, test_key, text};
use confab_wire::event::{Content, ReasonContent, Visibility};
use confab_wire::fed::{EventBatch, FED_ALPN, FedErrorCode};
use confab_wire::{EventKind, FedMessage, FrameDecoder, NodeKey, RoomId, SignedEvent, UserId};

fn now() -> u64 {
    confab_node::local::now_ms()
}

/// A client endpoint of `key`'s own that pins `to`: a peer speaking the
/// wire protocol by hand.
fn raw_endpoint(key: &NodeKey, to: &TestNode) -> quinn::Endpoint {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let pins: PinSet = [to.key.node_id()].into_iter().collect();
    endpoint.set_default_client_config(tls::client_config(key, pins, &[FED_ALPN]).unwrap());
    endpoint
}

/// A raw federation connection from `endpoint` to `to`.
async fn raw_connect(endpoint: &quinn::Endpoint, to: &TestNode) -> quinn::Connection {
    endpoint
        .connect(
            to.fed.local_addr().unwrap(),
            &tls::server_name(&to.key.node_id()),
        )
        .unwrap()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_peer_is_refused_and_honest_peers_are_still_served() {
    let (ka, kb, kr) = (test_key(1), test_key(2), test_key(3));
    let pins = |keys: &[&NodeKey]| -> PinSet { keys.iter().map(|k| k.node_id()).collect() };
    let a = TestNode::start(&ka, pins(&[&kb, &kr])).unwrap();
    let b = TestNode::start(&kb, pins(&[&ka])).unwrap();
    let r = TestNode::start(&kr, pins(&[&ka])).unwrap();
    for (x, peer) in [(&a, &kb), (&a, &kr), (&b, &ka), (&r, &ka)] {
        let addr = if peer.node_id() == ka.node_id() {
            a.fed.local_addr().unwrap()
        } else if peer.node_id() == kb.node_id() {
            b.fed.local_addr().unwrap()
        } else {
            r.fed.local_addr().unwrap()
        };
        x.fed.connect(peer.node_id(), addr);
    }
    let owner = UserId::new(ka.node_id(), "owner").unwrap();
    let bob = UserId::new(kb.node_id(), "bob").unwrap();
    let mallory = UserId::new(kr.node_id(), "mallory").unwrap();
    let create = create_room_event(1, "owner", "lobby", Visibility::Public, now()).unwrap();
    let room = create.room();
    a.rooms.lock().unwrap().create_room(&create).unwrap();
    for u in [&bob, &mallory] {
        a.post(
            &owner,
            &room,
            EventKind::Invite { target: u.clone() },
            Content::Reason(ReasonContent::default()),
        )
        .unwrap();
    }
    eventually("the room reaches b and r", || {
        b.has(&room, |_| true) && r.has(&room, |_| true)
    })
    .await;
    b.post(&bob, &room, EventKind::Join, Content::Empty)
        .unwrap();
    r.post(&mallory, &room, EventKind::Join, Content::Empty)
        .unwrap();
    eventually("both joined on a", || {
        a.has(&room, |x| {
            x.engine().state().is_joined(&bob) && x.engine().state().is_joined(&mallory)
        })
    })
    .await;
    let cutoff = a.rooms().room(&room).unwrap().engine().cutoff_for(&mallory);
    a.post(
        &owner,
        &room,
        EventKind::Mute {
            target: mallory.clone(),
            cutoff,
            until: now() + 3_600_000,
        },
        Content::Reason(ReasonContent {
            reason: "spam".into(),
        }),
    )
    .unwrap();

    // The rogue's own events, built on its replica but never stored there.
    let (muted_msg, forged, impersonating) = {
        let rooms = r.rooms();
        let engine = rooms.room(&room).unwrap().engine();
        let h = engine.next_header(mallory.clone(), EventKind::Message, now());
        let muted_msg = kr.sign_event(h.clone(), &text("buy my stuff")).unwrap();
        let mut forged = muted_msg.signed().clone();
        forged.signature[10] ^= 0x40;
        let mut hb = h;
        hb.author = bob.clone();
        let impersonating = {
            // Signed by the rogue for a user of node b: the signature cannot
            // verify under b's key.
            let bytes = confab_wire::codec::to_vec("h", &{
                let mut x = hb.clone();
                x.content_hash =
                    confab_wire::sign::content_hash(&text("I am bob").to_bytes().unwrap());
                x
            })
            .unwrap();
            confab_wire::SignedEvent {
                signature: kr.sign_tagged(confab_wire::sign::EVENT_SIGNATURE_TAG, &bytes),
                header: bytes,
                content: Some(text("I am bob").to_bytes().unwrap()),
            }
        };
        (muted_msg, forged, impersonating)
    };

    // A raw connection of the rogue's own, in place of its node's (a new
    // connection of a peer replaces its old one, and the node would dial
    // or knock its way back in).
    r.fed.close();
    let endpoint = raw_endpoint(&kr, &a);
    let conn = raw_connect(&endpoint, &a).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let mut out = Vec::new();
    FedMessage::Hello(sync::hello(kr.node_id(), "rogue"))
        .encode(&mut out)
        .unwrap();
    for events in [
        vec![forged],
        vec![impersonating],
        vec![muted_msg.signed().clone()],
    ] {
        FedMessage::Events(EventBatch {
            room,
            trace: None,
            events,
        })
        .encode(&mut out)
        .unwrap();
    }
    // Garbage in a well-framed events frame: skipped, connection survives.
    out.extend_from_slice(&9u32.to_be_bytes());
    out.push(0x02);
    out.extend_from_slice(b"garbage!");
    send.write_all(&out).await.unwrap();
    eventually("a counted the bad events", || {
        let rooms = a.rooms();
        let rej = rooms.rejections();
        rej.get("refused:bad_signature").copied().unwrap_or(0) >= 2
            && rej.get("rejected:muted").copied().unwrap_or(0) >= 1
    })
    .await;
    // The muted user's message is stored but rejected, on a and on b.
    eventually("the rejected message reached b", || {
        b.has(&room, |x| x.engine().contains(&muted_msg.id()))
    })
    .await;
    for n in [&a, &b] {
        let v = n
            .rooms()
            .room(&room)
            .unwrap()
            .engine()
            .verdict(&muted_msg.id())
            .unwrap();
        assert!(!v.is_accepted(), "{v:?}");
    }
    // An oversized frame: a closes the rogue's connection.
    send.write_all(&(4u32 << 20).to_be_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(_)) = recv.read(&mut buf).await {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "the oversized frame did not close the connection"
    );
    // a still serves its honest peer.
    let hello = a
        .post(&owner, &room, EventKind::Message, text("still here"))
        .unwrap();
    eventually("b receives a's new message", || {
        b.has(&room, |x| x.engine().contains(&hello))
    })
    .await;
    for n in [&a, &b, &r] {
        n.fed.close();
    }
}

/// One raw connection of the rogue to `a`: says hello, sends one batch of
/// more invalid events than a window allows, and returns how `a` answers:
/// its slow-down message, or why it closed the connection.
async fn one_bad_connection(endpoint: &quinn::Endpoint, a: &TestNode, rogue: &NodeKey) -> String {
    let conn = raw_connect(endpoint, a).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let junk = SignedEvent {
        header: vec![1, 2, 3],
        signature: [0; 64],
        content: None,
    };
    let mut out = Vec::new();
    FedMessage::Hello(sync::hello(rogue.node_id(), "rogue"))
        .encode(&mut out)
        .unwrap();
    FedMessage::Events(EventBatch {
        room: RoomId([5; 32]),
        trace: None,
        events: vec![junk; sync::BAD_EVENTS_PER_WINDOW as usize + 1],
    })
    .encode(&mut out)
    .unwrap();
    send.write_all(&out).await.unwrap();
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    let answer = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(n)) = recv.read(&mut buf).await {
            decoder.push(&buf[..n]);
            while let Ok(Some(frame)) = decoder.next_frame() {
                if let Ok(FedMessage::Error(e)) = FedMessage::decode(&frame)
                    && e.code == FedErrorCode::RateLimited
                {
                    return e.message;
                }
            }
        }
        match conn.close_reason() {
            Some(quinn::ConnectionError::ApplicationClosed(c)) => {
                String::from_utf8_lossy(&c.reason).into_owned()
            }
            other => format!("{other:?}"),
        }
    })
    .await
    .expect("a never answered the invalid events");
    conn.close(0u32.into(), b"redialling");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_strikes_outlive_its_connections() {
    let (ka, kr) = (test_key(11), test_key(13));
    let a = TestNode::start(&ka, [kr.node_id()].into_iter().collect()).unwrap();
    let endpoint = raw_endpoint(&kr, &a);
    // Each redial starts where the last connection left off: the pause
    // doubles, and a redial does not buy a clean slate.
    let first = one_bad_connection(&endpoint, &a, &kr).await;
    assert!(
        first.contains(&format!("for {} ms", sync::PAUSE_MS)),
        "{first}"
    );
    let second = one_bad_connection(&endpoint, &a, &kr).await;
    assert!(
        second.contains(&format!("for {} ms", 2 * sync::PAUSE_MS)),
        "{second}"
    );
    let third = one_bad_connection(&endpoint, &a, &kr).await;
    assert!(
        third.contains(&format!("for {} ms", 4 * sync::PAUSE_MS)),
        "{third}"
    );
    // Past the last warning the peer is disconnected, on its fourth
    // connection as it would have been on one.
    let last = one_bad_connection(&endpoint, &a, &kr).await;
    assert!(last.contains("disconnecting"), "{last}");
    a.fed.close();
}

/// An event dated a little ahead of this node's clock is held, and admitted
/// when its time comes without being sent again; one dated far ahead is
/// refused, not held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_dated_ahead_are_held_then_admitted_without_a_resend() {
    use confab_node::engine::{HOLD_HORIZON_MS, MAX_FUTURE_SKEW_MS};
    use confab_tests::net::{mesh, shared_room};
    let nodes = mesh(81, 2).unwrap();
    let (room, users) = shared_room(&nodes, 81).await.unwrap();
    let (a, r) = (&nodes[0], &nodes[1]);
    // r's node goes quiet; what follows comes over one raw connection of
    // its key that sends once and never answers (no anti-entropy).
    r.fed.close();
    let sign = |ts: u64, body: &str| {
        let rooms = r.rooms();
        let h = rooms.room(&room).unwrap().engine().next_header(
            users[1].clone(),
            EventKind::Message,
            ts,
        );
        r.key.sign_event(h, &text(body)).unwrap()
    };
    let soon = sign(now() + MAX_FUTURE_SKEW_MS + 2_000, "from a fast clock");
    let far = sign(now() + HOLD_HORIZON_MS + 60_000, "from a broken clock");
    let endpoint = raw_endpoint(&r.key, a);
    let conn = raw_connect(&endpoint, a).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let mut out = Vec::new();
    FedMessage::Hello(sync::hello(r.key.node_id(), "fast clock"))
        .encode(&mut out)
        .unwrap();
    for ev in [&far, &soon] {
        FedMessage::Events(EventBatch {
            room,
            trace: None,
            events: vec![ev.signed().clone()],
        })
        .encode(&mut out)
        .unwrap();
    }
    let mut arrived = a.fed.subscribe();
    send.write_all(&out).await.unwrap();
    eventually("the far one is refused", || {
        a.rooms()
            .rejections()
            .get("refused:too_far_ahead")
            .is_some_and(|n| *n >= 1)
    })
    .await;
    eventually("the held one is admitted when due", || {
        a.has(&room, |x| x.engine().contains(&soon.id()))
    })
    .await;
    // And announced like any event from a peer (to the node's gateways).
    let announced = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match arrived.recv().await {
                Ok((_, ev, _)) if ev.id() == soon.id() => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await;
    assert_eq!(announced, Ok(true));
    assert!(!a.has(&room, |x| x.engine().contains(&far.id())));
    conn.close(0u32.into(), b"done");
    for n in &nodes {
        n.fed.close();
    }
}

/// A peer gets one stream per connection (the protocol's one), not QUIC's
/// default hundred, each with a bounded window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_may_open_one_stream() {
    use futures_util::FutureExt;
    let (ka, kr) = (test_key(21), test_key(23));
    let a = TestNode::start(&ka, [kr.node_id()].into_iter().collect()).unwrap();
    let endpoint = raw_endpoint(&kr, &a);
    let conn = raw_connect(&endpoint, &a).await;
    // Opening a stream needs no round trip when the peer allows it; the
    // handshake has told the client how many it may open.
    let (mut send, _recv) = conn.open_bi().now_or_never().unwrap().unwrap();
    let mut out = Vec::new();
    FedMessage::Hello(sync::hello(kr.node_id(), "greedy"))
        .encode(&mut out)
        .unwrap();
    send.write_all(&out).await.unwrap();
    assert!(
        conn.open_bi().now_or_never().is_none(),
        "a second stream was allowed"
    );
    assert!(conn.open_uni().now_or_never().is_none());
    conn.close(0u32.into(), b"done");
    a.fed.close();
}

/// A peer that floods a room with events whose ancestors never come fills
/// the room's parking allowance and no more; honest traffic still flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_waiting_for_ancestors_are_bounded() {
    use confab_node::rooms::PARKED_BYTES_PER_ROOM;
    use confab_tests::net::{mesh, shared_room};
    use confab_wire::{ContentHash, EventHeader, EventId};
    let nodes = mesh(91, 2).unwrap();
    let (room, users) = shared_room(&nodes, 91).await.unwrap();
    let (a, b) = (&nodes[0], &nodes[1]);
    let kr = test_key(93);
    a.fed.pin(kr.node_id());
    let mallory = UserId::new(kr.node_id(), "mallory").unwrap();
    let body = text(&"m".repeat(confab_wire::event::MAX_BODY_LEN));
    let orphan = EventId([0xee; 32]);
    let count = PARKED_BYTES_PER_ROOM / confab_wire::event::MAX_BODY_LEN + 64;
    let events: Vec<_> = (0..count as u64)
        .map(|i| {
            let header = EventHeader {
                room: Some(room),
                author: mallory.clone(),
                kind: EventKind::Message,
                prev: vec![orphan],
                depth: 2 + i,
                origin_seq: 2 + i,
                origin_prev: Some(orphan),
                ts: now(),
                content_hash: ContentHash([0; 32]),
            };
            kr.sign_event(header, &body).unwrap().signed().clone()
        })
        .collect();
    let endpoint = raw_endpoint(&kr, a);
    let conn = raw_connect(&endpoint, a).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let mut out = Vec::new();
    FedMessage::Hello(sync::hello(kr.node_id(), "orphans"))
        .encode(&mut out)
        .unwrap();
    for chunk in events.chunks(32) {
        FedMessage::Events(EventBatch {
            room,
            trace: None,
            events: chunk.to_vec(),
        })
        .encode(&mut out)
        .unwrap();
    }
    let flood = tokio::spawn(async move {
        let _ = send.write_all(&out).await;
        send
    });
    eventually("the room's parking is full", || {
        a.rooms()
            .rejections()
            .get("refused:parked_room_full")
            .is_some_and(|n| *n >= 1)
    })
    .await;
    assert!(a.rooms().parked_bytes() <= PARKED_BYTES_PER_ROOM);
    // The honest peer's messages still arrive.
    let hello = b
        .post(&users[1], &room, EventKind::Message, text("still here"))
        .unwrap();
    eventually("a has b's message", || {
        a.has(&room, |x| x.engine().contains(&hello))
    })
    .await;
    let _send = flood.await.unwrap();
    conn.close(0u32.into(), b"done");
    for n in &nodes {
        n.fed.close();
    }
}

/// A peer inviting this node's users into rooms whose create event never
/// comes gets a few such rooms kept, not one per invitation; an honest
/// peer's invitation into a new room is still taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_into_rooms_that_never_come_are_bounded_per_peer() {
    use confab_node::rooms::PENDING_ROOMS_PER_PEER;
    use confab_tests::net::{mesh, shared_room};
    use confab_wire::{ContentHash, EventHeader, EventId};
    let nodes = mesh(95, 2).unwrap();
    let (_, users) = shared_room(&nodes, 95).await.unwrap();
    let (a, b) = (&nodes[0], &nodes[1]);
    let kr = test_key(97);
    a.fed.pin(kr.node_id());
    let mallory = UserId::new(kr.node_id(), "mallory").unwrap();
    let invented = |n: usize| {
        let mut id = [0xabu8; 32];
        id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        RoomId(id)
    };
    let rooms = PENDING_ROOMS_PER_PEER + 40;
    let endpoint = raw_endpoint(&kr, a);
    let conn = raw_connect(&endpoint, a).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let mut out = Vec::new();
    FedMessage::Hello(sync::hello(kr.node_id(), "inviter"))
        .encode(&mut out)
        .unwrap();
    for n in 0..rooms {
        let room = invented(n);
        let header = EventHeader {
            room: Some(room),
            author: mallory.clone(),
            kind: EventKind::Invite {
                target: users[0].clone(),
            },
            prev: vec![EventId(room.0)],
            depth: 1,
            origin_seq: 1,
            origin_prev: None,
            ts: now(),
            content_hash: ContentHash([0; 32]),
        };
        let ev = kr
            .sign_event(header, &Content::Reason(ReasonContent::default()))
            .unwrap();
        FedMessage::Events(EventBatch {
            room,
            trace: None,
            events: vec![ev.signed().clone()],
        })
        .encode(&mut out)
        .unwrap();
    }
    send.write_all(&out).await.unwrap();
    let over = rooms - PENDING_ROOMS_PER_PEER;
    eventually("the invitations past the share are refused", || {
        a.rooms()
            .rejections()
            .get("refused:pending_rooms_full")
            .is_some_and(|n| *n as usize >= over)
    })
    .await;
    assert_eq!(
        a.rooms().rejections().get("refused:pending_rooms_full"),
        Some(&(over as u64))
    );
    // An honest peer's new room reaches a's user.
    let owner = users[1].clone();
    let create = create_room_event(96, "user", "fresh", Visibility::Private, now()).unwrap();
    assert_eq!(create.header().author, owner);
    b.rooms().create_room(&create).unwrap();
    let fresh = create.room();
    b.post(
        &owner,
        &fresh,
        EventKind::Invite {
            target: users[0].clone(),
        },
        Content::Reason(ReasonContent::default()),
    )
    .unwrap();
    eventually("a holds the honest peer's new room", || {
        a.has(&fresh, |r| {
            r.engine().state().membership(&users[0]) == confab_node::engine::Membership::Invited
        })
    })
    .await;
    conn.close(0u32.into(), b"done");
    for n in &nodes {
        n.fed.close();
    }
}
