//! The browser protocol end to end: real WebSocket clients against real
//! gateways (in-process and over QUIC) and nodes on loopback.
#![allow(clippy::unwrap_used)]

use confab_node::tls::PinSet;
use confab_tests::test_key;
use confab_tests::web::{WebNode, Ws, create_room};
use serde_json::{Value, json};

fn is_event(room: &str, body: &str) -> impl Fn(&Value) -> bool {
    let room = room.to_string();
    let body = body.to_string();
    move |v: &Value| {
        v["push"] == "room_event"
            && v["room"] == room.as_str()
            && v["item"]["body"] == body.as_str()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_and_a_dropped_socket_resumes_without_loss() {
    let n = WebNode::start(&test_key(40), PinSet::new()).await.unwrap();
    let mut alice = Ws::connect(&n.ws_url()).await.unwrap();
    assert_eq!(alice.hello["protocol"], 1);
    assert_eq!(alice.hello["node"], n.node.key.node_id().to_string());
    assert_eq!(alice.hello["registration"], "open");
    alice.register("alice").await;
    let mut bob = Ws::connect(&n.ws_url()).await.unwrap();
    let bob_grant = bob.register("bob").await;
    let room = create_room(&mut alice, "general", "public").await;
    bob.ok("join_room", json!({"room": room})).await;
    bob.ok("subscribe", json!({"room": room})).await;
    alice.ok("subscribe", json!({"room": room})).await;

    let sent = alice
        .ok(
            "send",
            json!({"room": room, "body": "Hello **team**", "idempotency_key": "k-1"}),
        )
        .await;
    assert_eq!(sent["duplicate"], false);
    let got = bob
        .push("alice's message", is_event(&room, "Hello **team**"))
        .await;
    assert_eq!(got["item"]["html"], "<p>Hello <strong>team</strong></p>\n");
    assert_eq!(got["item"]["id"], sent["event"]);
    let seen = got["item"]["id"].as_str().unwrap().to_string();

    // Bob's socket drops. Alice posts twice; Bob's in-flight send reached
    // the node before the drop but its reply was lost.
    bob.send(
        "send",
        json!({"room": room, "body": "Are we done?", "idempotency_key": "c0ffee"}),
    )
    .await
    .unwrap();
    alice
        .push("bob's in-flight message", is_event(&room, "Are we done?"))
        .await;
    bob.close().await;
    alice
        .ok(
            "send",
            json!({"room": room, "body": "Yes!", "idempotency_key": "k-2"}),
        )
        .await;

    // A new socket: authenticate, resume after the last event seen, resend.
    let mut bob = Ws::connect(&n.ws_url()).await.unwrap();
    let me = bob
        .ok(
            "authenticate",
            json!({"access_token": bob_grant["access_token"]}),
        )
        .await;
    assert_eq!(me["user"], n.user("bob"));
    bob.ok("subscribe", json!({"room": room, "since": seen}))
        .await;
    bob.push(
        "catch-up of his own message",
        is_event(&room, "Are we done?"),
    )
    .await;
    bob.push("catch-up of alice's", is_event(&room, "Yes!"))
        .await;
    let again = bob
        .ok(
            "send",
            json!({"room": room, "body": "Are we done?", "idempotency_key": "c0ffee"}),
        )
        .await;
    assert_eq!(again["duplicate"], true);
    // Nothing lost, nothing doubled.
    let page = bob.ok("history", json!({"room": room, "limit": 50})).await;
    let bodies: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "message")
        .filter_map(|i| i["body"].as_str())
        .collect();
    assert_eq!(bodies, vec!["Hello **team**", "Are we done?", "Yes!"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_node_deliver_to_each_others_users() {
    let n = WebNode::start(&test_key(41), PinSet::new()).await.unwrap();
    let g = n.quic_gateway(&test_key(141), "second").await.unwrap();
    let mut alice = Ws::connect(&n.ws_url()).await.unwrap();
    alice.register("alice").await;
    let mut bob = Ws::connect(&format!("ws://{}/ws", g.local_addr()))
        .await
        .unwrap();
    assert_eq!(bob.hello["node"], n.node.key.node_id().to_string());
    bob.register("bob").await;
    let room = create_room(&mut alice, "ops", "private").await;
    alice
        .ok("invite", json!({"room": room, "user": n.user("bob")}))
        .await;
    // The invitation reaches Bob's list on the other gateway.
    let update = bob
        .push("the invitation", |v| {
            v["push"] == "room_update" && v["summary"]["invited"] == true
        })
        .await;
    assert_eq!(update["summary"]["room"], room.as_str());
    bob.ok("join_room", json!({"room": room})).await;
    bob.ok("subscribe", json!({"room": room})).await;
    alice
        .ok(
            "send",
            json!({"room": room, "body": "over QUIC", "idempotency_key": "q1"}),
        )
        .await;
    bob.push("a message across gateways", is_event(&room, "over QUIC"))
        .await;
    alice.ok("subscribe", json!({"room": room})).await;
    bob.ok(
        "send",
        json!({"room": room, "body": "and back", "idempotency_key": "q2"}),
    )
    .await;
    alice.push("the answer", is_event(&room, "and back")).await;
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_of_two_federated_nodes_chat() {
    let (ka, kb) = (test_key(42), test_key(43));
    let a = WebNode::start(&ka, [kb.node_id()].into_iter().collect())
        .await
        .unwrap();
    let b = WebNode::start(&kb, [ka.node_id()].into_iter().collect())
        .await
        .unwrap();
    a.federate(&b).unwrap();
    let mut alice = Ws::connect(&a.ws_url()).await.unwrap();
    alice.register("alice").await;
    let mut bob = Ws::connect(&b.ws_url()).await.unwrap();
    bob.register("bob").await;
    let room = create_room(&mut alice, "cross", "private").await;
    alice.ok("subscribe", json!({"room": room})).await;
    alice
        .ok("invite", json!({"room": room, "user": b.user("bob")}))
        .await;
    bob.push("the invitation from the other node", |v| {
        v["push"] == "room_update" && v["summary"]["invited"] == true
    })
    .await;
    bob.ok("join_room", json!({"room": room})).await;
    bob.ok("subscribe", json!({"room": room})).await;
    alice
        .push("bob joined", |v| {
            v["push"] == "room_event" && v["item"]["kind"] == "join"
        })
        .await;
    alice
        .ok(
            "send",
            json!({"room": room, "body": "hi bob", "idempotency_key": "x1"}),
        )
        .await;
    bob.push("alice's message on node b", is_event(&room, "hi bob"))
        .await;
    bob.ok(
        "send",
        json!({"room": room, "body": "hi alice", "idempotency_key": "x2"}),
    )
    .await;
    alice
        .push("bob's answer on node a", is_event(&room, "hi alice"))
        .await;
    // Typing crosses too, and is not echoed to the typer.
    bob.ok("typing", json!({"room": room, "typing": true}))
        .await;
    let t = alice
        .push("bob typing", |v| {
            v["push"] == "typing" && v["typing"] == true
        })
        .await;
    assert_eq!(t["user"], b.user("bob"));
}
