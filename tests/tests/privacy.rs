//! What a signed-in stranger can learn about rooms they are not in: no
//! event, typing, read position or presence of a private room reaches
//! their socket, and no answer tells a private room from one that does not
//! exist. Real WebSockets against a real gateway and node on loopback
//! (test keys 170 and up).
//!
//! "Nothing arrived" is proved with a barrier, never with a wait: every
//! push is queued for all its sockets in one step of the gateway, and a
//! socket's frames leave in order, so once the rightful reader has a push,
//! a `ping` answered on the stranger's socket comes after anything that
//! push would have left there.
#![allow(clippy::unwrap_used)]

use confab_node::tls::PinSet;
use confab_tests::test_key;
use confab_tests::web::{WebNode, Ws, create_room};
use serde_json::{Value, json};

fn about(room: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v: &Value| v["room"] == room || v["summary"]["room"] == room
}

/// Reads everything queued for `ws` before now (see the module docs).
async fn drain(ws: &mut Ws) {
    ws.ok("ping", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_asking_to_follow_a_private_room_sees_nothing_of_it() {
    let n = WebNode::start(&test_key(170), PinSet::new()).await.unwrap();
    let mut alice = Ws::connect(&n.ws_url()).await.unwrap();
    alice.register("alice").await;
    let room = create_room(&mut alice, "secret plans", "private").await;
    alice.ok("subscribe", json!({ "room": room })).await;
    let mut mallory = Ws::connect(&n.ws_url()).await.unwrap();
    mallory.register("mallory").await;

    // Mallory asks again and again while Alice talks and types: every
    // request is in flight while the room's events pass the gateway.
    const ROUNDS: usize = 240;
    let mut asks = Vec::new();
    for _ in 0..ROUNDS {
        asks.push(
            mallory
                .send("subscribe", json!({ "room": room }))
                .await
                .unwrap(),
        );
    }
    let mut sent = Vec::new();
    for i in 0..ROUNDS / 3 {
        alice
            .send("typing", json!({ "room": room, "typing": true }))
            .await
            .unwrap();
        sent.push(
            alice
                .send(
                    "send",
                    json!({"room": room, "body": format!("plan {i}"), "idempotency_key": format!("p{i}")}),
                )
                .await
                .unwrap(),
        );
    }
    for id in sent {
        alice.reply(id).await.unwrap().unwrap();
    }
    let mut refusals = Vec::new();
    for id in asks {
        refusals.push(mallory.reply(id).await.unwrap().unwrap_err());
    }
    // Alice has her last message: whatever it left on Mallory's socket is
    // read by the time Mallory's ping is answered.
    let last = format!("plan {}", ROUNDS / 3 - 1);
    alice
        .push("alice's last message", |v| {
            v["push"] == "room_event" && v["item"]["body"] == last.as_str()
        })
        .await;
    drain(&mut mallory).await;
    let leaked = mallory.take_pushes(about(&room));
    assert!(
        leaked.is_empty(),
        "{} pushes leaked: {leaked:?}",
        leaked.len()
    );
    for e in &refusals {
        assert_eq!(e["code"], "not_found", "{e}");
    }

    // A subscription refused is answered as for a room that does not
    // exist, word for word.
    let hidden = mallory
        .call("subscribe", json!({ "room": room }))
        .await
        .unwrap();
    let none = mallory
        .call(
            "subscribe",
            json!({ "room": "!aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" }),
        )
        .await
        .unwrap();
    assert_eq!(hidden, none);

    // Once invited and joined, the same request follows the room, with
    // what was said before it as catch-up.
    let mallory_id = n.user("mallory");
    alice
        .ok("invite", json!({ "room": room, "user": mallory_id }))
        .await;
    mallory.ok("join_room", json!({ "room": room })).await;
    let page = alice
        .ok("history", json!({ "room": room, "limit": 200 }))
        .await;
    let (first, second) = (
        page["items"][0]["id"].clone(),
        page["items"][1]["id"].clone(),
    );
    mallory
        .ok("subscribe", json!({ "room": room, "since": first }))
        .await;
    mallory
        .push("catch-up after joining", |v| {
            v["push"] == "room_event" && v["item"]["id"] == second
        })
        .await;
    alice
        .ok(
            "send",
            json!({"room": room, "body": "welcome", "idempotency_key": "w"}),
        )
        .await;
    mallory
        .push("a live message after joining", |v| {
            v["push"] == "room_event" && v["item"]["body"] == "welcome"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_come_only_from_members_and_tell_nothing_of_a_room() {
    let n = WebNode::start(&test_key(171), PinSet::new()).await.unwrap();
    let mut alice = Ws::connect(&n.ws_url()).await.unwrap();
    alice.register("alice").await;
    let private = create_room(&mut alice, "board", "private").await;
    let public = create_room(&mut alice, "lobby", "public").await;
    for room in [&private, &public] {
        alice.ok("subscribe", json!({ "room": room })).await;
    }
    let mut mallory = Ws::connect(&n.ws_url()).await.unwrap();
    mallory.register("mallory").await;
    let nowhere = "!aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    // Typing into a private room, a public one she has not joined, and a
    // room that does not exist: one answer for all three.
    let mut answers = Vec::new();
    for room in [&private, &public, &nowhere.to_string()] {
        answers.push(
            mallory
                .call("typing", json!({ "room": room, "typing": true }))
                .await
                .unwrap(),
        );
    }
    assert_eq!(answers[0], answers[1], "{answers:?}");
    assert_eq!(answers[0], answers[2], "{answers:?}");
    assert_eq!(answers[0].as_ref().unwrap_err()["code"], "not_found");

    // A reader of the public room may keep a read position, but the room
    // does not hear of it.
    let ev = alice
        .ok(
            "send",
            json!({"room": public, "body": "hi", "idempotency_key": "h"}),
        )
        .await["event"]
        .clone();
    mallory
        .ok("mark_read", json!({ "room": public, "event": ev }))
        .await;
    // Alice's own typing reaches nobody but other members; her read
    // position comes back to her other sockets only as a summary. So the
    // barrier: a member's typing, seen by a second member.
    let mut bob = Ws::connect(&n.ws_url()).await.unwrap();
    bob.register("bob").await;
    bob.ok("join_room", json!({ "room": public })).await;
    bob.ok("subscribe", json!({ "room": public })).await;
    bob.ok("typing", json!({ "room": public, "typing": true }))
        .await;
    alice
        .push("bob's typing", |v| {
            v["push"] == "typing" && v["user"] == n.user("bob").as_str()
        })
        .await;
    drain(&mut alice).await;
    let heard: Vec<Value> = alice.take_pushes(|v| {
        (v["push"] == "typing" || v["push"] == "read") && v["user"] == n.user("mallory").as_str()
    });
    assert!(
        heard.is_empty(),
        "a non-member's signals reached the room: {heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_reaches_only_people_who_share_a_room() {
    let n = WebNode::start(&test_key(172), PinSet::new()).await.unwrap();
    let mut alice = Ws::connect(&n.ws_url()).await.unwrap();
    alice.register("alice").await;
    let mut carol = Ws::connect(&n.ws_url()).await.unwrap();
    carol.register("carol").await;
    let mut bob = Ws::connect(&n.ws_url()).await.unwrap();
    bob.register("bob").await;
    // Alice and Bob share a room; Carol shares none with Bob.
    let room = create_room(&mut alice, "pair", "private").await;
    alice
        .ok("invite", json!({ "room": room, "user": n.user("bob") }))
        .await;
    bob.ok("join_room", json!({ "room": room })).await;
    drain(&mut carol).await;
    carol.take_pushes(|_| true);

    // Bob goes away and comes back.
    bob.close().await;
    let bob_id = n.user("bob");
    alice
        .push("bob offline", |v| {
            v["push"] == "presence" && v["user"] == bob_id.as_str() && v["presence"] == "offline"
        })
        .await;
    let mut bob = Ws::connect(&n.ws_url()).await.unwrap();
    bob.ok(
        "login",
        json!({"username": "bob", "password": "correct horse"}),
    )
    .await;
    alice
        .push("bob online", |v| {
            v["push"] == "presence" && v["user"] == bob_id.as_str() && v["presence"] == "online"
        })
        .await;
    drain(&mut carol).await;
    let heard = carol.take_pushes(|v| v["push"] == "presence" && v["user"] == bob_id.as_str());
    assert!(heard.is_empty(), "carol heard bob's presence: {heard:?}");
}
