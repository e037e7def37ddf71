//! confabctl across federation: a mute set by node A's admin holds on node
//! B too and ends by itself; a backup taken while messages flow restores
//! into a node that catches up with its peer before it posts again.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Node, ctl_raw, until};
use serde_json::{Value, json};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A and B, each knowing the other (B from its config, A by `peer add`).
async fn two_nodes(dir: &std::path::Path) -> (Node, Node) {
    let a = Node::start(dir, "a", &[]).await;
    let b = Node::start(dir, "b", &[(a.id, a.federation)]).await;
    let added = a
        .ctl(&["peer", "add", &b.id.to_string(), &b.federation.to_string()])
        .await;
    assert_eq!(added.code, 0, "{added:?}");
    (a, b)
}

/// Alice (of A) owns a private room that Bob (of B) joined; both sockets
/// are subscribed.
async fn shared_room(a: &Node, b: &Node) -> (confab_tests::web::Ws, confab_tests::web::Ws, String) {
    let mut alice = a.ws().await;
    alice.register("alice").await;
    let mut bob = b.ws().await;
    bob.register("bob").await;
    let room = confab_tests::web::create_room(&mut alice, "ops", "private").await;
    alice.ok("subscribe", json!({"room": room})).await;
    alice
        .ok("invite", json!({"room": room, "user": b.user("bob")}))
        .await;
    bob.push("the invitation", |v| {
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
    (alice, bob, room)
}

async fn send(
    ws: &mut confab_tests::web::Ws,
    room: &str,
    body: &str,
    key: &str,
) -> Result<Value, String> {
    match ws
        .call(
            "send",
            json!({"room": room, "body": body, "idempotency_key": key}),
        )
        .await
        .unwrap()
    {
        Ok(v) => Ok(v),
        Err(e) => Err(e["code"].as_str().unwrap_or("").to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_set_on_one_node_holds_on_the_other_and_ends_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = two_nodes(dir.path()).await;
    let (_alice, mut bob, room) = shared_room(&a, &b).await;
    assert!(send(&mut bob, &room, "before", "m0").await.is_ok());

    // A's admin mutes Bob; the event is posted as Alice (the room's owner).
    let muted_at = now_ms();
    let out = a
        .ctl(&[
            "mute",
            &b.user("bob"),
            "--room",
            &room,
            "--for",
            "6s",
            "--reason",
            "cool off",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("muted"), "{}", out.stdout);
    // B holds the mute once it has the event: Bob's own node refuses him.
    until("B refuses Bob's sends", || async {
        let info = b.json(&["room", "show", &room]).await;
        info["members"]
            .as_str()
            .unwrap_or("")
            .contains("muted until")
    })
    .await;
    assert!(
        now_ms() < muted_at + 6_000,
        "the machine was too slow to see the mute in force"
    );
    assert_eq!(
        send(&mut bob, &room, "while muted", "m1").await,
        Err("muted".into())
    );

    // The mute ends by itself: Bob's next send after its end is accepted
    // on B, and reaches A.
    until("the mute's end", || async { now_ms() > muted_at + 6_500 }).await;
    let after = send(&mut bob, &room, "free again", "m2").await.unwrap();
    let ev = after["event"].as_str().unwrap().to_string();
    let mut alice = a.ws().await;
    alice
        .ok(
            "login",
            json!({"username": "alice", "password": "correct horse"}),
        )
        .await;
    until("A holds Bob's message", || async {
        let shown = a.json(&["room", "show", &room]).await;
        let theirs = b.json(&["room", "show", &room]).await;
        shown["digest"] == theirs["digest"]
    })
    .await;
    let page = alice.ok("history", json!({"room": room, "limit": 5})).await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == ev.as_str()),
        "{page}"
    );

    // The audit log of A names the command.
    let audit = a.json(&["audit"]).await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["command"] == "mute" && e["outcome"] == "ok"),
        "{audit}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_and_catches_up_before_posting() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = two_nodes(dir.path()).await;
    let (mut alice, _bob, room) = shared_room(&a, &b).await;

    // Messages flow from A while the backup is taken.
    let file = dir.path().join("a.backup");
    let file_s = file.to_str().unwrap().to_string();
    let backup = {
        let socket = a.socket.clone();
        let file_s = file_s.clone();
        tokio::spawn(async move {
            common::ctl_at(&socket, &["backup", "create", "--out", &file_s], None).await
        })
    };
    let mut sent = 0;
    while !backup.is_finished() || sent < 20 {
        send(
            &mut alice,
            &room,
            &format!("load {sent}"),
            &format!("l{sent}"),
        )
        .await
        .unwrap();
        sent += 1;
    }
    let out = backup.await.unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    // More after the backup: the restored node will have to hear of these
    // (its own events!) from B.
    for i in 0..10 {
        send(&mut alice, &room, &format!("after {i}"), &format!("x{i}"))
            .await
            .unwrap();
    }
    let verify = ctl_raw(&["backup", "verify", &file_s]).await;
    assert_eq!(verify.code, 0, "{verify:?}");

    // Node A's disk is lost; it comes back from the backup.
    a.stop().await;
    let restored = dir.path().join("a-restored");
    let r = confab_node::store::restore::restore(&file, &restored).unwrap();
    assert!(r.events > 0, "{r:?}");
    // A second restore into the now non-empty dir is refused.
    assert!(confab_node::store::restore::restore(&file, &restored).is_err());

    // The restored store opens, and its rooms re-fold to the digests they
    // hold.
    {
        let store = confab_node::store::Store::open(&restored.join("db")).unwrap();
        assert!(
            store.recovering().unwrap(),
            "a restored store must be marked recovering"
        );
        for id in store.rooms().unwrap() {
            let mut room = store.open_room(&id).unwrap().unwrap();
            let audit = room.audit();
            assert!(
                audit.verdicts.is_empty() && !audit.state_differs,
                "{audit:?}"
            );
        }
    }

    let mut config = common::config(dir.path(), "a", &[(b.id, b.federation)]);
    config.node.data_dir = restored.clone();
    let mut a2 = Node::start_with("a2", config).await;
    assert_eq!(a2.id, a.id, "the restore is the same node");
    // It came back on another address: B's operator says where.
    let moved = b
        .ctl(&[
            "peer",
            "add",
            &a2.id.to_string(),
            &a2.federation.to_string(),
        ])
        .await;
    assert_eq!(moved.code, 0, "{moved:?}");
    // It catches up with its own chain from B before it posts: until then
    // the room refuses local posts; afterwards they are accepted.
    until("A is level with B", || async {
        let x = a2.json(&["room", "show", &room]).await;
        let y = b.json(&["room", "show", &room]).await;
        x["digest"] == y["digest"] && x["may_post"] == true
    })
    .await;
    let mut alice2 = a2.ws().await;
    alice2
        .ok(
            "login",
            json!({"username": "alice", "password": "correct horse"}),
        )
        .await;
    let posted = send(&mut alice2, &room, "back", "b1").await.unwrap();
    let ev = posted["event"].as_str().unwrap().to_string();
    // B accepts it (no equivocation: its sequence number is new).
    until("B holds the post-restore message", || async {
        let y = b.json(&["room", "show", &room]).await;
        let x = a2.json(&["room", "show", &room]).await;
        x["digest"] == y["digest"]
    })
    .await;
    let mut bob2 = b.ws().await;
    bob2.ok(
        "login",
        json!({"username": "bob", "password": "correct horse"}),
    )
    .await;
    let page = bob2.ok("history", json!({"room": room, "limit": 5})).await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == ev.as_str() && i["body"] == "back"),
        "{page}"
    );
    let shown = b.json(&["room", "show", &room]).await;
    assert_eq!(shown["rejected"], 0, "B rejected something: {shown}");
    a2.stop().await;
    b.stop().await;
}
