//! What follows one user's messages or greets one user, over the browser
//! protocol against real gateways and nodes: "delivered" and "read" in a
//! direct room across two nodes, the welcome bot's note on a first join,
//! and edit history for authors and moderators.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use confab_node::tls::PinSet;
use confab_tests::test_key;
use confab_tests::web::{WebNode, Ws, create_room, test_settings};
use serde_json::{Value, json};

static KEYS: AtomicU64 = AtomicU64::new(1);

/// Sends `body` to `room` and returns the new event's id.
async fn say(ws: &mut Ws, room: &str, body: &str) -> String {
    let r = ws
        .ok(
            "send",
            json!({"room": room, "body": body,
                   "idempotency_key": format!("n-{}", KEYS.fetch_add(1, Ordering::Relaxed))}),
        )
        .await;
    r["event"].as_str().unwrap().to_string()
}

fn member<'a>(detail: &'a Value, user: &str) -> &'a Value {
    detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == user)
        .unwrap_or_else(|| panic!("{user} is not in {detail}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_room_shows_delivered_then_read_across_nodes() {
    let (ka, kb) = (test_key(120), test_key(121));
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
    let bob_id = b.user("bob");

    let dm = alice
        .ok(
            "create_room",
            json!({"settings": {"visibility": "private"}, "direct_with": bob_id}),
        )
        .await["room"]
        .as_str()
        .unwrap()
        .to_string();
    alice.ok("subscribe", json!({"room": dm})).await;
    bob.push("the DM invitation", |v| {
        v["push"] == "room_update" && v["summary"]["invited"] == true
    })
    .await;
    // Bob is only invited, but his node holds the conversation: delivered.
    let msg = say(&mut alice, &dm, "are you there?").await;
    let d = alice
        .push("delivered to bob's node", |v| {
            v["push"] == "delivered" && v["event"] == msg.as_str()
        })
        .await;
    assert_eq!(
        (&d["room"], &d["user"], &d["event"]),
        (&json!(dm), &json!(bob_id), &json!(msg))
    );
    bob.ok("join_room", json!({"room": dm})).await;
    bob.ok("subscribe", json!({"room": dm})).await;
    alice
        .push("bob joined", |v| {
            v["push"] == "room_event" && v["item"]["kind"] == "join"
        })
        .await;
    let page = bob.ok("history", json!({"room": dm, "limit": 10})).await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == msg.as_str())
    );
    bob.ok("mark_read", json!({"room": dm, "event": msg})).await;
    let r = alice
        .push("bob read it", |v| {
            v["push"] == "read" && v["user"] == bob_id.as_str()
        })
        .await;
    assert_eq!(r["event"], msg.as_str());

    // Both positions are kept: a reload (room_info) shows them.
    let after = alice.ok("room_info", json!({"room": dm})).await;
    let m = member(&after, &bob_id);
    assert_eq!(
        (&m["read_up_to"], &m["delivered_up_to"]),
        (&json!(msg), &json!(msg))
    );
    // Alice's own node needs no delivery mark for her.
    assert!(member(&after, &a.user("alice"))["delivered_up_to"].is_null());

    // A room that is not direct carries no receipts.
    let group = create_room(&mut alice, "group", "public").await;
    let info = alice.ok("room_info", json!({"room": group})).await;
    assert!(member(&info, &a.user("alice"))["read_up_to"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_bot_greets_a_user_once_per_room_and_can_be_turned_off() {
    let mut settings = test_settings();
    settings.welcome_bot = true;
    let n = WebNode::with_settings(&test_key(122), PinSet::new(), settings)
        .await
        .unwrap();
    let mut alice = Ws::connect(&n.ws_url()).await.unwrap();
    alice.register("alice").await;
    let room = create_room(&mut alice, "design", "public").await;
    alice
        .ok(
            "change_settings",
            json!({"room": room, "settings": {"topic": "Mockups and reviews"}}),
        )
        .await;
    // The creator made the room: no tour for her.
    assert_eq!(alice.ok("notices", json!({})).await["notices"], json!([]));

    let mut bob = Ws::connect(&n.ws_url()).await.unwrap();
    let grant = bob.register("bob").await;
    bob.ok("set_profile", json!({"display_name": "Bob Builder"}))
        .await;
    let mut bob2 = Ws::connect(&n.ws_url()).await.unwrap();
    bob2.ok(
        "authenticate",
        json!({"access_token": grant["access_token"]}),
    )
    .await;
    bob.ok("join_room", json!({"room": room})).await;
    let p = bob
        .push("the welcome note", |v| v["push"] == "notice")
        .await;
    let note = &p["notice"];
    assert_eq!(
        (&note["room"], &note["from"]),
        (&json!(room), &json!("Confab"))
    );
    let html = note["html"].as_str().unwrap();
    for part in [
        "Welcome to <strong>design</strong>, Bob Builder!",
        "Mentions",
        "Threads",
        "Reactions",
        "Mockups and reviews",
    ] {
        assert!(html.contains(part), "{part:?} missing from {html}");
    }
    let listed = bob.ok("notices", json!({})).await;
    assert_eq!(listed["notices"].as_array().unwrap().len(), 1);
    let id = note["id"].as_str().unwrap().to_string();
    // Nobody else sees it.
    assert_eq!(alice.ok("notices", json!({})).await["notices"], json!([]));

    // Leaving hides it; joining again brings no second greeting.
    bob.ok("leave_room", json!({"room": room})).await;
    assert_eq!(bob.ok("notices", json!({})).await["notices"], json!([]));
    bob.ok("join_room", json!({"room": room})).await;
    let again = bob.ok("notices", json!({})).await;
    assert_eq!(again["notices"].as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again["notices"][0]["id"], id.as_str());

    // Dismissed for good, on every socket of the user.
    bob.ok("dismiss_notice", json!({"notice": id})).await;
    let gone = bob2
        .push("the dismissal", |v| v["push"] == "notice_dismissed")
        .await;
    assert_eq!(gone["notice"], id.as_str());
    assert_eq!(bob.ok("notices", json!({})).await["notices"], json!([]));
    assert_eq!(
        bob.err("dismiss_notice", json!({"notice": id})).await,
        "not_found"
    );
    assert_eq!(
        bob.err("dismiss_notice", json!({"notice": "x"})).await,
        "bad_request"
    );

    // Direct rooms get no tour.
    let dm = alice
        .ok(
            "create_room",
            json!({"settings": {"visibility": "private"}, "direct_with": n.user("bob")}),
        )
        .await["room"]
        .as_str()
        .unwrap()
        .to_string();
    bob.ok("join_room", json!({"room": dm})).await;
    assert_eq!(bob.ok("notices", json!({})).await["notices"], json!([]));

    // Turned off, the bot is quiet.
    let mut off = n.service.settings();
    off.welcome_bot = false;
    n.service.set_settings(off);
    let mut carol = Ws::connect(&n.ws_url()).await.unwrap();
    carol.register("carol").await;
    carol.ok("join_room", json!({"room": room})).await;
    assert_eq!(carol.ok("notices", json!({})).await["notices"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_history_is_for_the_author_and_moderators() {
    let n = WebNode::start(&test_key(123), PinSet::new()).await.unwrap();
    let mut alice = Ws::connect(&n.ws_url()).await.unwrap();
    alice.register("alice").await;
    let room = create_room(&mut alice, "notes", "public").await;
    let mut bob = Ws::connect(&n.ws_url()).await.unwrap();
    bob.register("bob").await;
    let mut carol = Ws::connect(&n.ws_url()).await.unwrap();
    carol.register("carol").await;
    for ws in [&mut bob, &mut carol] {
        ws.ok("join_room", json!({"room": room})).await;
    }
    let msg = say(&mut bob, &room, "first **draft**").await;
    for body in ["second draft", "final"] {
        bob.ok("edit", json!({"room": room, "target": msg, "body": body}))
            .await;
    }
    let mine = bob
        .ok("edit_history", json!({"room": room, "target": msg}))
        .await;
    let versions = mine["versions"].as_array().unwrap();
    let bodies: Vec<&str> = versions
        .iter()
        .map(|v| v["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["first **draft**", "second draft", "final"]);
    assert_eq!(versions[0]["event"], msg.as_str());
    assert!(
        versions[0]["html"]
            .as_str()
            .unwrap()
            .contains("<strong>draft</strong>")
    );
    assert!(
        versions
            .iter()
            .all(|v| v["sender"] == n.user("bob").as_str())
    );
    assert!(
        versions
            .windows(2)
            .all(|w| w[0]["ts"].as_u64() <= w[1]["ts"].as_u64())
    );

    // The room's creator moderates (message.delete): she sees it too.
    let theirs = alice
        .ok("edit_history", json!({"room": room, "target": msg}))
        .await;
    assert_eq!(theirs, mine);
    // Another member does not.
    assert_eq!(
        carol
            .err("edit_history", json!({"room": room, "target": msg}))
            .await,
        "forbidden"
    );
    // A message never edited has one version; a deleted one has none.
    let plain = say(&mut carol, &room, "plain").await;
    let one = carol
        .ok("edit_history", json!({"room": room, "target": plain}))
        .await;
    assert_eq!(one["versions"].as_array().unwrap().len(), 1);
    bob.ok(
        "redact",
        json!({"room": room, "target": msg, "reason": "oops"}),
    )
    .await;
    assert_eq!(
        alice
            .err("edit_history", json!({"room": room, "target": msg}))
            .await,
        "not_found"
    );
    // Bad and unknown targets.
    let other = create_room(&mut alice, "other", "public").await;
    assert_eq!(
        alice
            .err("edit_history", json!({"room": other, "target": plain}))
            .await,
        "not_found"
    );
    assert_eq!(
        alice
            .err("edit_history", json!({"room": room, "target": "nope"}))
            .await,
        "bad_request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_note_shows_room_names_and_topics_as_text() {
    let mut settings = test_settings();
    settings.welcome_bot = true;
    let n = WebNode::with_settings(&test_key(124), PinSet::new(), settings)
        .await
        .unwrap();
    let mut mallory = Ws::connect(&n.ws_url()).await.unwrap();
    mallory.register("mallory").await;
    // A room whose name and topic try to speak with Confab's voice.
    let name = "[Confab: verify your account](https://evil.example/login)";
    let topic = "<https://evil.example/reset>\n# Security notice\n**Sign in again** at [this link](https://evil.example)";
    let room = create_room(&mut mallory, name, "public").await;
    mallory
        .ok(
            "change_settings",
            json!({"room": room, "settings": {"topic": topic}}),
        )
        .await;
    let mut bob = Ws::connect(&n.ws_url()).await.unwrap();
    bob.register("bob").await;
    bob.ok("join_room", json!({"room": room})).await;
    let p = bob
        .push("the welcome note", |v| v["push"] == "notice")
        .await;
    let html = p["notice"]["html"].as_str().unwrap();
    assert!(!html.contains("<a"), "a link in the note: {html}");
    assert!(!html.contains("<h1"), "a heading in the note: {html}");
    assert!(
        !html.contains("<strong>Sign in again</strong>"),
        "markup from the topic: {html}"
    );
    // The words are all there, as written.
    for part in [
        "[Confab: verify your account](https://evil.example/login)",
        "&lt;https://evil.example/reset&gt;",
        "# Security notice",
        "**Sign in again**",
    ] {
        assert!(html.contains(part), "{part:?} missing from {html}");
    }
}
