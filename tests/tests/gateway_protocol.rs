//! The browser protocol of `gateway/PROTOCOL.md`, request by request:
//! real WebSocket and HTTP clients against a real gateway and node on
//! loopback. Every test has a node of its own (test keys 60 and up).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use confab_node::tls::PinSet;
use confab_tests::net::eventually;
use confab_tests::test_key;
use confab_tests::web::{WebNode, Ws, create_room, http, test_settings};
use confab_wire::client::{AccessToken, TokenClaims};
use confab_wire::{BlobId, EventId, RoomId};
use serde_json::{Value, json};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

static KEYS: AtomicU64 = AtomicU64::new(1);

/// A fresh idempotency key.
fn key() -> String {
    format!("key-{}", KEYS.fetch_add(1, Ordering::Relaxed))
}

/// Sends `body` to `room` and returns the new event's id.
async fn say(ws: &mut Ws, room: &str, body: &str) -> String {
    let r = ws
        .ok(
            "send",
            json!({"room": room, "body": body, "idempotency_key": key()}),
        )
        .await;
    assert_eq!(r["duplicate"], false, "{r}");
    r["event"].as_str().unwrap().to_string()
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().unwrap().clone()
}

fn ids(page: &Value) -> Vec<String> {
    items(page).iter().map(|i| s(&i["id"])).collect()
}

/// A `room_event` push of `room` whose item `f` accepts.
fn item_where(room: &str, f: impl Fn(&Value) -> bool) -> impl Fn(&Value) -> bool {
    let room = room.to_string();
    move |v: &Value| v["push"] == "room_event" && v["room"] == room.as_str() && f(&v["item"])
}

fn is_revoked(v: &Value) -> bool {
    v["push"] == "revoked"
}

/// Connects a socket and authenticates it with `token`.
async fn signed_in(n: &WebNode, token: &Value) -> Ws {
    let mut ws = Ws::connect(&n.ws_url()).await.unwrap();
    ws.ok("authenticate", json!({ "access_token": token }))
        .await;
    ws
}

async fn login(ws: &mut Ws, name: &str) -> Value {
    ws.ok(
        "login",
        json!({"username": name, "password": "correct horse"}),
    )
    .await
}

fn token_of(grant: &Value) -> AccessToken {
    AccessToken::from_text(grant["access_token"].as_str().unwrap()).unwrap()
}

// ---------------------------------------------------------------------
// 1. Session
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_register_login_refresh_reuse_and_logout() {
    let n = WebNode::start(&test_key(60), PinSet::new()).await.unwrap();
    let alice = n.user("alice");

    // register: a grant whose token is the node's and names the user.
    let mut a = Ws::connect(&n.ws_url()).await.unwrap();
    let g0 = a.register("alice").await;
    assert_eq!(g0["user"], alice.as_str());
    let t0 = token_of(&g0);
    assert_eq!(t0.claims.user.to_string(), alice);
    assert_eq!(g0["access_expires"], json!(t0.claims.expires));
    assert!(
        g0["refresh_expires"].as_u64().unwrap() > t0.claims.expires,
        "{g0}"
    );
    assert!(g0["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));
    // The socket is signed in by the registration.
    a.ok("list_rooms", json!({})).await;

    // register: a taken name, a short password, a bad localpart.
    let mut x = Ws::connect(&n.ws_url()).await.unwrap();
    let taken = x
        .err(
            "register",
            json!({"username": "alice", "password": "another password"}),
        )
        .await;
    assert_eq!(taken, "conflict");
    let short = x
        .err("register", json!({"username": "bob", "password": "short"}))
        .await;
    assert_eq!(short, "bad_request");
    for bad_name in ["Bad Name!", "", "-dash", &"x".repeat(33)] {
        let code = x
            .err(
                "register",
                json!({"username": bad_name, "password": "long enough"}),
            )
            .await;
        assert_eq!(code, "bad_request", "{bad_name:?}");
    }
    // None of the refused registrations signed the socket in.
    assert_eq!(x.err("list_rooms", json!({})).await, "unauthenticated");

    // login: wrong password and unknown user look alike.
    let wrong = x
        .call(
            "login",
            json!({"username": "alice", "password": "wrong horse"}),
        )
        .await
        .unwrap()
        .unwrap_err();
    let unknown = x
        .call(
            "login",
            json!({"username": "nobody", "password": "wrong horse"}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(wrong["code"], "unauthenticated");
    assert_eq!(unknown["code"], "unauthenticated");
    assert_eq!(wrong["message"], unknown["message"]);
    assert_eq!(x.err("list_rooms", json!({})).await, "unauthenticated");
    // login: success, a login of its own (another family).
    let g_x = login(&mut x, "alice").await;
    assert_eq!(g_x["user"], alice.as_str());
    assert_ne!(token_of(&g_x).claims.family, t0.claims.family);
    x.ok("list_rooms", json!({})).await;

    // authenticate: a held token on a new socket.
    let mut b = Ws::connect(&n.ws_url()).await.unwrap();
    let me = b
        .ok("authenticate", json!({"access_token": g0["access_token"]}))
        .await;
    assert_eq!(me, json!({ "user": alice }));
    b.ok("list_rooms", json!({})).await;

    // refresh rotates the refresh token within the same login.
    let g1 = a
        .ok("refresh", json!({"refresh_token": g0["refresh_token"]}))
        .await;
    assert_eq!(g1["user"], alice.as_str());
    assert_ne!(g1["refresh_token"], g0["refresh_token"]);
    assert_eq!(token_of(&g1).claims.family, t0.claims.family);
    a.ok("list_rooms", json!({})).await;

    // The rotated token presented again: refused, and the login revoked.
    let mut c = Ws::connect(&n.ws_url()).await.unwrap();
    let reuse = c
        .err("refresh", json!({"refresh_token": g0["refresh_token"]}))
        .await;
    assert_eq!(reuse, "unauthenticated");
    b.push("revoked after refresh-token reuse", is_revoked)
        .await;
    assert_eq!(b.err("list_rooms", json!({})).await, "unauthenticated");
    a.push("revoked on the refreshing socket too", is_revoked)
        .await;
    assert_eq!(a.err("list_rooms", json!({})).await, "unauthenticated");
    // Every token of that login is dead, the new ones included.
    assert_eq!(
        c.err("refresh", json!({"refresh_token": g1["refresh_token"]}))
            .await,
        "unauthenticated"
    );
    assert_eq!(
        c.err("authenticate", json!({"access_token": g1["access_token"]}))
            .await,
        "unauthenticated"
    );
    // Another login of the same user is untouched.
    x.ok("list_rooms", json!({})).await;
    assert!(x.take_pushes(is_revoked).is_empty());

    // logout: ends this login; its other sockets get `revoked`, the
    // asking one only the reply.
    let mut y = signed_in(&n, &g_x["access_token"]).await;
    let mut other = Ws::connect(&n.ws_url()).await.unwrap();
    let g_other = login(&mut other, "alice").await;
    let out = x
        .ok("logout", json!({"refresh_token": g_x["refresh_token"]}))
        .await;
    assert_eq!(out, Value::Null);
    y.push("revoked by logout elsewhere", is_revoked).await;
    assert_eq!(y.err("list_rooms", json!({})).await, "unauthenticated");
    assert_eq!(x.err("list_rooms", json!({})).await, "unauthenticated");
    assert!(
        x.take_pushes(is_revoked).is_empty(),
        "the socket that logged out gets the reply, not a push"
    );
    assert_eq!(
        c.err("refresh", json!({"refresh_token": g_x["refresh_token"]}))
            .await,
        "unauthenticated"
    );
    other.ok("list_rooms", json!({})).await;
    assert!(other.take_pushes(is_revoked).is_empty());

    // logout_all: every login of the user ends.
    let mut p = Ws::connect(&n.ws_url()).await.unwrap();
    login(&mut p, "alice").await;
    let mut q = signed_in(&n, &g_other["access_token"]).await;
    assert_eq!(p.ok("logout_all", json!({})).await, Value::Null);
    other.push("revoked by logout_all", is_revoked).await;
    q.push("revoked by logout_all", is_revoked).await;
    for ws in [&mut p, &mut q, &mut other] {
        assert_eq!(ws.err("list_rooms", json!({})).await, "unauthenticated");
    }
    assert!(p.take_pushes(is_revoked).is_empty());
    assert_eq!(
        c.err(
            "refresh",
            json!({"refresh_token": g_other["refresh_token"]})
        )
        .await,
        "unauthenticated"
    );
    // The password still works: a new login.
    login(&mut c, "alice").await;
    c.ok("list_rooms", json!({})).await;
}

// ---------------------------------------------------------------------
// 2. Token expiry
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_forged_access_tokens() {
    let seed = 61;
    let n = WebNode::start(&test_key(seed), PinSet::new())
        .await
        .unwrap();
    let mut a = Ws::connect(&n.ws_url()).await.unwrap();
    let grant = a.register("alice").await;
    let real = token_of(&grant);
    let now = now_ms();
    let expired = AccessToken::issue(
        &test_key(seed),
        TokenClaims {
            user: real.claims.user.clone(),
            family: real.claims.family,
            issued: now - 20 * 60 * 1000,
            expires: now - 5 * 60 * 1000,
        },
    )
    .unwrap()
    .to_text()
    .unwrap();

    let mut s = Ws::connect(&n.ws_url()).await.unwrap();
    assert_eq!(
        s.err("authenticate", json!({ "access_token": expired }))
            .await,
        "token_expired"
    );
    assert_eq!(s.err("list_rooms", json!({})).await, "unauthenticated");

    // Forged: claims changed after signing (a later expiry, another user).
    let mut longer = real.clone();
    longer.claims.expires += 60 * 60 * 1000;
    let mut other_user = real.clone();
    other_user.claims.user = confab_tests::test_user(seed, "mallory").unwrap();
    let mut forged_expired = AccessToken::from_text(&expired).unwrap();
    forged_expired.claims.user = confab_tests::test_user(seed, "mallory").unwrap();
    // Signed by another key for this node's user.
    let foreign = AccessToken::issue(&test_key(161), real.claims.clone()).unwrap();
    for (what, t) in [
        ("later expiry", longer),
        ("other user", other_user),
        ("expired and changed", forged_expired),
        ("wrong signer", foreign),
    ] {
        let code = s
            .err(
                "authenticate",
                json!({ "access_token": t.to_text().unwrap() }),
            )
            .await;
        assert_eq!(code, "unauthenticated", "{what}");
    }
    assert_eq!(
        s.err("authenticate", json!({"access_token": "not hex at all"}))
            .await,
        "unauthenticated"
    );
    assert_eq!(s.err("list_rooms", json!({})).await, "unauthenticated");

    // A fresh token signed the same way, for a real login, is accepted:
    // the test's signing is the node's.
    let fresh = AccessToken::issue(
        &test_key(seed),
        TokenClaims {
            user: real.claims.user.clone(),
            family: real.claims.family,
            issued: now,
            expires: now + 60 * 1000,
        },
    )
    .unwrap();
    let me = s
        .ok(
            "authenticate",
            json!({"access_token": fresh.to_text().unwrap()}),
        )
        .await;
    assert_eq!(me["user"], n.user("alice").as_str());
    // Over HTTP an expired token is a 401 with `token_expired` too.
    let r = http(
        n.gateway.local_addr(),
        "POST",
        "/api/upload",
        &[
            ("authorization", &format!("Bearer {expired}")),
            ("x-filename", "a.png"),
        ],
        &png(1, 1),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "token_expired");
}

// ---------------------------------------------------------------------
// 3. The 11th connection
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_socket_of_a_user_is_closed_with_4008() {
    let n = WebNode::start(&test_key(62), PinSet::new()).await.unwrap();
    let mut first = Ws::connect(&n.ws_url()).await.unwrap();
    let grant = first.register("alice").await;
    let mut sockets = vec![first];
    for _ in 1..10 {
        sockets.push(signed_in(&n, &grant["access_token"]).await);
    }
    for ws in &mut sockets {
        ws.ok("ping", json!({})).await;
    }
    // The 11th gets hello, then is closed when it authenticates.
    let mut eleventh = Ws::connect(&n.ws_url()).await.unwrap();
    assert_eq!(eleventh.hello["push"], "hello");
    eleventh
        .send(
            "authenticate",
            json!({"access_token": grant["access_token"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        eleventh.until_closed().await,
        (4008, "too_many_connections".to_string())
    );
    // Signing in by password counts the same.
    let mut twelfth = Ws::connect(&n.ws_url()).await.unwrap();
    twelfth
        .send(
            "login",
            json!({"username": "alice", "password": "correct horse"}),
        )
        .await
        .unwrap();
    assert_eq!(
        twelfth.until_closed().await,
        (4008, "too_many_connections".to_string())
    );
    // The refused sockets leave nothing behind, on the gateway or the
    // node: ten sockets, ten node sessions.
    eventually("the refused sockets are forgotten", || {
        n.gateway.state().sessions.len() == 10 && n.service.connections().1 == 10
    })
    .await;
    // The ten still work; another user is not affected.
    for ws in &mut sockets {
        ws.ok("list_rooms", json!({})).await;
    }
    let mut bob = Ws::connect(&n.ws_url()).await.unwrap();
    bob.register("bob").await;
    // One closes: there is room for another again.
    sockets.pop().unwrap().close().await;
    eventually("the closed socket is forgotten", || {
        n.gateway.state().sessions.len() == 10
    })
    .await;
    let mut again = signed_in(&n, &grant["access_token"]).await;
    again.ok("list_rooms", json!({})).await;
}

// ---------------------------------------------------------------------
// 4. Rate limit
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fourth_message_in_a_minute_is_rate_limited() {
    let mut settings = test_settings();
    settings.messages_per_minute = 3;
    let n = WebNode::with_settings(&test_key(63), PinSet::new(), settings)
        .await
        .unwrap();
    let mut a = Ws::connect(&n.ws_url()).await.unwrap();
    a.register("alice").await;
    let room = create_room(&mut a, "general", "public").await;
    let first_key = key();
    let first = a
        .ok(
            "send",
            json!({"room": room, "body": "one", "idempotency_key": first_key}),
        )
        .await;
    say(&mut a, &room, "two").await;
    say(&mut a, &room, "three").await;
    let e = a
        .call(
            "send",
            json!({"room": room, "body": "four", "idempotency_key": key()}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e["code"], "rate_limited", "{e}");
    let wait = e["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 20_000, "{e}");
    // Edits and reactions count as messages too.
    let edit = a
        .err(
            "edit",
            json!({"room": room, "target": first["event"], "body": "uno"}),
        )
        .await;
    assert_eq!(edit, "rate_limited");
    // A repeated key is answered from the record, limit or not.
    let again = a
        .ok(
            "send",
            json!({"room": room, "body": "one", "idempotency_key": first_key}),
        )
        .await;
    assert_eq!(again, json!({"event": first["event"], "duplicate": true}));
    // The refused message was not posted.
    let page = a.ok("history", json!({"room": room})).await;
    let bodies: Vec<Value> = items(&page)
        .into_iter()
        .filter(|i| i["kind"] == "message")
        .map(|i| i["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("one"), json!("two"), json!("three")]);
}

// ---------------------------------------------------------------------
// 5. Framing, bad input, sign-in gate
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_before_sign_in_bad_frames_and_close_codes() {
    let n = WebNode::start(&test_key(64), PinSet::new()).await.unwrap();
    let mut ws = Ws::connect(&n.ws_url()).await.unwrap();
    assert_eq!(ws.hello["protocol"], 1);
    assert_eq!(ws.hello["node"], n.node.key.node_id().to_string());
    assert_eq!(ws.hello["limits"]["max_message_bytes"], 16384);
    assert_eq!(ws.hello["limits"]["max_upload_bytes"], 1 << 20);

    // ping works before sign-in and answers the server's time.
    let before = now_ms();
    let pong = ws.ok("ping", json!({})).await;
    let ts = pong["ts"].as_u64().unwrap();
    assert!(ts >= before && ts <= now_ms(), "{pong}");

    // Everything but ping/register/login/refresh/authenticate needs it.
    let room = RoomId([0xa1; 32]).to_string();
    for (kind, fields) in [
        ("list_rooms", json!({})),
        ("logout_all", json!({})),
        ("logout", json!({"refresh_token": "x"})),
        ("get_profile", json!({"user": n.user("alice")})),
        ("set_presence", json!({"presence": "online"})),
        ("search_users", json!({"query": "a"})),
        ("create_room", json!({"settings": {"name": "x"}})),
        ("public_rooms", json!({"query": ""})),
        ("join_room", json!({"room": room})),
        ("history", json!({"room": room})),
        ("subscribe", json!({"room": room})),
        (
            "send",
            json!({"room": room, "body": "hi", "idempotency_key": "k"}),
        ),
        ("search", json!({"query": "hi"})),
        ("mentions", json!({})),
        ("typing", json!({"room": room, "typing": true})),
    ] {
        assert_eq!(ws.err(kind, fields).await, "unauthenticated", "{kind}");
    }
    // refresh and login are allowed (and fail here on their merits).
    assert_eq!(
        ws.err("refresh", json!({"refresh_token": "nope"})).await,
        "unauthenticated"
    );
    assert_eq!(
        ws.err(
            "login",
            json!({"username": "alice", "password": "correct horse"})
        )
        .await,
        "unauthenticated"
    );
    // register is allowed, and signs the socket in.
    let grant = ws.register("alice").await;
    ws.ok("list_rooms", json!({})).await;
    let mut r = Ws::connect(&n.ws_url()).await.unwrap();
    let g = r
        .ok("refresh", json!({"refresh_token": grant["refresh_token"]}))
        .await;
    assert_eq!(g["user"], n.user("alice").as_str());
    r.ok("list_rooms", json!({})).await;
    let mut l = Ws::connect(&n.ws_url()).await.unwrap();
    login(&mut l, "alice").await;
    l.ok("list_rooms", json!({})).await;

    // Bad JSON, a non-object and a missing id get `"id": null`.
    for (text, code) in [
        ("not json", "bad_json"),
        ("[1,2]", "bad_json"),
        ("\"text\"", "bad_json"),
        (r#"{"type":"ping"}"#, "bad_request"),
        (r#"{"id":0,"type":"ping"}"#, "bad_request"),
        (r#"{"id":"7","type":"ping"}"#, "bad_request"),
    ] {
        ws.send_text(text.to_string()).await.unwrap();
        let v = ws
            .push(text, |v| v.get("push").is_none() && v["id"].is_null())
            .await;
        assert_eq!(v["error"]["code"], code, "{text}: {v}");
        assert!(v["error"]["message"].is_string(), "{v}");
        assert!(v.get("ok").is_none());
    }
    // An unknown type is named by its id.
    ws.send_text(r#"{"id":77,"type":"fly"}"#.to_string())
        .await
        .unwrap();
    let v = ws.push("unknown type", |v| v["id"] == 77).await;
    assert_eq!(v["error"]["code"], "unknown_request", "{v}");
    for kind in [
        "upload_start",
        "upload_chunk",
        "upload_finish",
        "fetch_blob",
    ] {
        assert_eq!(ws.err(kind, json!({})).await, "unknown_request", "{kind}");
    }
    // A missing field names the request too.
    assert_eq!(ws.err("join_room", json!({})).await, "bad_request");
    // The socket is still fine after all that.
    ws.ok("ping", json!({})).await;

    // A binary frame closes with 1003.
    let mut bin = Ws::connect(&n.ws_url()).await.unwrap();
    bin.send_binary(vec![1, 2, 3]).await.unwrap();
    assert_eq!(bin.until_closed().await, (1003, "binary".to_string()));

    // A text frame over 64 KiB: `too_large` if it can be read, then 1009.
    let mut big = Ws::connect(&n.ws_url()).await.unwrap();
    let body = "x".repeat(70 * 1024);
    big.send_text(format!(
        r#"{{"id":1,"type":"send","room":"{room}","body":"{body}","idempotency_key":"k"}}"#
    ))
    .await
    .unwrap();
    assert_eq!(big.until_closed().await, (1009, "too_large".to_string()));
    let replies = big.take_pushes(|v| v.get("push").is_none());
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["id"], Value::Null, "{replies:?}");
    assert_eq!(replies[0]["error"]["code"], "too_large", "{replies:?}");
    // Exactly 64 KiB is still accepted.
    let mut edge = Ws::connect(&n.ws_url()).await.unwrap();
    let mut text = r#"{"id":1,"type":"ping","pad":""}"#.to_string();
    let pad = 64 * 1024 - text.len();
    text.insert_str(text.len() - 2, &"p".repeat(pad));
    assert_eq!(text.len(), 64 * 1024);
    edge.send_text(text).await.unwrap();
    let v = edge.push("the ping reply", |v| v["id"] == 1).await;
    assert!(v["ok"]["ts"].is_u64(), "{v}");

    // A protocol version the gateway does not speak: 4001.
    let (mut raw, _) = tokio_tungstenite::connect_async(format!("{}?v=2", n.ws_url()))
        .await
        .unwrap();
    let close = loop {
        use futures_util::StreamExt;
        match raw.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(c))) => break c,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.unwrap();
    assert_eq!(
        (u16::from(close.code), close.reason.as_str()),
        (4001, "unsupported_version")
    );
}

// ---------------------------------------------------------------------
// 6. Rooms
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_create_join_invite_settings_archive_and_moderation() {
    let n = WebNode::start(&test_key(65), PinSet::new()).await.unwrap();
    let (alice, bob, carol, dave) = (
        n.user("alice"),
        n.user("bob"),
        n.user("carol"),
        n.user("dave"),
    );
    let mut a = Ws::connect(&n.ws_url()).await.unwrap();
    a.register("alice").await;
    let mut b = Ws::connect(&n.ws_url()).await.unwrap();
    b.register("bob").await;
    let mut c = Ws::connect(&n.ws_url()).await.unwrap();
    c.register("carol").await;
    let mut d = Ws::connect(&n.ws_url()).await.unwrap();
    d.register("dave").await;

    // create_room needs a name.
    assert_eq!(a.err("create_room", json!({})).await, "bad_request");
    assert_eq!(
        a.err("create_room", json!({"settings": {"topic": "no name"}}))
            .await,
        "bad_request"
    );
    assert_eq!(
        a.err(
            "create_room",
            json!({"settings": {"name": "x", "visibility": "secret"}})
        )
        .await,
        "bad_request"
    );
    let lobby = create_room(&mut a, "lobby", "public").await;
    assert!(lobby.starts_with('!') && lobby.len() == 53, "{lobby}");
    let update = a
        .push("the new room in alice's list", |v| {
            v["push"] == "room_update" && v["summary"]["room"] == lobby.as_str()
        })
        .await;
    assert_eq!(update["summary"]["name"], "lobby");
    let secret = create_room(&mut a, "secret", "private").await;

    // public_rooms lists the public room, not the private one.
    let found = b.ok("public_rooms", json!({"query": ""})).await;
    let listed: Vec<String> = found["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| s(&r["room"]))
        .collect();
    assert!(listed.contains(&lobby), "{found}");
    assert!(!listed.contains(&secret), "{found}");
    let by_name = b.ok("public_rooms", json!({"query": "LOB"})).await;
    assert_eq!(by_name["rooms"][0]["room"], lobby.as_str());
    let none = b.ok("public_rooms", json!({"query": "secret"})).await;
    assert_eq!(none["rooms"], json!([]));

    // A private room needs an invitation.
    assert_eq!(
        b.err("join_room", json!({"room": secret})).await,
        "forbidden"
    );
    // Reading it is answered as for a room that does not exist.
    assert_eq!(
        b.err("room_info", json!({"room": secret})).await,
        "not_found"
    );
    assert_eq!(
        b.err("invite", json!({"room": secret, "user": carol}))
            .await,
        "forbidden",
        "a non-member cannot invite"
    );
    assert_eq!(
        a.err("invite", json!({"room": secret, "user": n.user("nobody")}))
            .await,
        "not_found"
    );
    a.ok("invite", json!({"room": secret, "user": bob})).await;
    let inv = b
        .push("bob's invitation", |v| {
            v["push"] == "room_update"
                && v["summary"]["room"] == secret.as_str()
                && v["summary"]["invited"] == true
        })
        .await;
    assert_eq!(inv["summary"]["name"], "secret");
    let rooms = b.ok("list_rooms", json!({})).await;
    assert!(
        rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"] == secret.as_str() && r["invited"] == true),
        "{rooms}"
    );
    b.ok("join_room", json!({"room": secret})).await;
    let info = b.ok("room_info", json!({"room": secret})).await;
    assert_eq!(info["summary"]["members"], 2);
    assert_eq!(info["summary"]["invited"], false);
    // leave_room: gone from the list.
    b.ok("leave_room", json!({"room": secret})).await;
    b.push("bob left", |v| {
        v["push"] == "room_update"
            && v["summary"]["room"] == secret.as_str()
            && v["summary"]["left"] == true
    })
    .await;
    let rooms = b.ok("list_rooms", json!({})).await;
    assert!(
        !rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"] == secret.as_str()),
        "{rooms}"
    );
    assert_eq!(
        b.err("join_room", json!({"room": secret})).await,
        "forbidden"
    );

    // room_info: members, roles, permissions, pins, digest.
    b.ok("join_room", json!({"room": lobby})).await;
    let info = b.ok("room_info", json!({"room": lobby})).await;
    assert_eq!(info["summary"]["room"], lobby.as_str());
    assert_eq!(info["summary"]["members"], 2);
    let members = info["members"].as_array().unwrap();
    let member = |u: &str| {
        members
            .iter()
            .find(|m| m["user"] == u)
            .cloned()
            .unwrap_or_else(|| panic!("{u} not in {info}"))
    };
    assert_eq!(member(&alice)["roles"], json!(["owner"]));
    assert_eq!(member(&bob)["roles"], json!([]));
    assert_eq!(member(&bob)["muted_until"], Value::Null);
    let owner = info["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "owner")
        .cloned()
        .unwrap();
    assert_eq!(
        owner["permissions"],
        json!([
            "message.send",
            "message.delete",
            "message.pin",
            "user.mute",
            "user.kick",
            "user.ban",
            "room.settings",
            "role.manage"
        ])
    );
    let mine: Vec<String> = info["my_permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert!(mine.contains(&"message.send".to_string()), "{info}");
    assert!(!mine.contains(&"room.settings".to_string()), "{info}");
    assert_eq!(info["pins"], json!([]));
    let digest = s(&info["digest"]);
    assert!(
        digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "{digest}"
    );
    let owner_view = a.ok("room_info", json!({"room": lobby})).await;
    assert_eq!(owner_view["my_permissions"], owner["permissions"]);
    assert_eq!(owner_view["digest"], info["digest"]);

    // change_settings: forbidden without room.settings; the owner's
    // change is a `settings` item.
    assert_eq!(
        b.err(
            "change_settings",
            json!({"room": lobby, "settings": {"topic": "mine now"}})
        )
        .await,
        "forbidden"
    );
    assert_eq!(
        a.err("change_settings", json!({"room": lobby, "settings": {}}))
            .await,
        "bad_request"
    );
    a.ok("subscribe", json!({"room": lobby})).await;
    b.ok("subscribe", json!({"room": lobby})).await;
    let changed = a
        .ok(
            "change_settings",
            json!({"room": lobby, "settings": {"topic": "Be kind."}}),
        )
        .await;
    let ev = s(&changed["event"]);
    let pushed = b
        .push(
            "the settings item",
            item_where(&lobby, |i| i["id"] == ev.as_str()),
        )
        .await;
    assert_eq!(pushed["item"]["kind"], "settings");
    assert_eq!(pushed["item"]["settings"], json!({"topic": "Be kind."}));
    assert_eq!(pushed["item"]["author"], alice.as_str());
    let info = b.ok("room_info", json!({"room": lobby})).await;
    assert_eq!(info["summary"]["topic"], "Be kind.");
    assert_ne!(info["digest"], json!(digest), "the state changed");

    // moderate mute: the muted user's send fails with `muted` and `until`.
    let until = now_ms() + 3_600_000;
    assert_eq!(
        b.err(
            "moderate",
            json!({"room": lobby, "action": {"kind": "mute", "target": alice, "until": until}})
        )
        .await,
        "forbidden"
    );
    let muted = a
        .ok(
            "moderate",
            json!({"room": lobby, "action": {"kind": "mute", "target": bob, "until": until, "reason": "cool off"}}),
        )
        .await;
    let mute_ev = s(&muted["event"]);
    let item = b
        .push(
            "the mute",
            item_where(&lobby, |i| i["id"] == mute_ev.as_str()),
        )
        .await;
    assert_eq!(item["item"]["kind"], "mute");
    assert_eq!(item["item"]["target"], bob.as_str());
    assert_eq!(item["item"]["until"], json!(until));
    assert_eq!(item["item"]["reason"], "cool off");
    let e = b
        .call(
            "send",
            json!({"room": lobby, "body": "let me speak", "idempotency_key": key()}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e["code"], "muted", "{e}");
    assert_eq!(e["until"], json!(until), "{e}");
    let info = a.ok("room_info", json!({"room": lobby})).await;
    let bob_info = info["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == bob.as_str())
        .cloned()
        .unwrap();
    assert_eq!(bob_info["muted_until"], json!(until));
    a.ok(
        "moderate",
        json!({"room": lobby, "action": {"kind": "unmute", "target": bob}}),
    )
    .await;
    say(&mut b, &lobby, "thanks").await;

    // kick: the room leaves carol's list.
    c.ok("join_room", json!({"room": lobby})).await;
    assert_eq!(
        b.err(
            "moderate",
            json!({"room": lobby, "action": {"kind": "kick", "target": carol}})
        )
        .await,
        "forbidden"
    );
    a.ok(
        "moderate",
        json!({"room": lobby, "action": {"kind": "kick", "target": carol, "reason": "bye"}}),
    )
    .await;
    c.push("carol was kicked", |v| {
        v["push"] == "room_update"
            && v["summary"]["room"] == lobby.as_str()
            && v["summary"]["left"] == true
    })
    .await;
    let rooms = c.ok("list_rooms", json!({})).await;
    assert_eq!(rooms["rooms"], json!([]));
    assert_eq!(
        c.err(
            "send",
            json!({"room": lobby, "body": "still here?", "idempotency_key": key()})
        )
        .await,
        "forbidden"
    );

    // ban, then join: forbidden.
    d.ok("join_room", json!({"room": lobby})).await;
    a.ok(
        "moderate",
        json!({"room": lobby, "action": {"kind": "ban", "target": dave}}),
    )
    .await;
    assert_eq!(
        d.err("join_room", json!({"room": lobby})).await,
        "forbidden"
    );
    assert_eq!(d.err("history", json!({"room": lobby})).await, "forbidden");
    a.ok(
        "moderate",
        json!({"room": lobby, "action": {"kind": "unban", "target": dave}}),
    )
    .await;
    d.ok("join_room", json!({"room": lobby})).await;

    // archive_room, then send: archived.
    let old = create_room(&mut a, "old", "public").await;
    b.ok("join_room", json!({"room": old})).await;
    assert_eq!(
        b.err("archive_room", json!({"room": old})).await,
        "forbidden"
    );
    a.ok("archive_room", json!({"room": old})).await;
    for ws in [&mut a, &mut b] {
        assert_eq!(
            ws.err(
                "send",
                json!({"room": old, "body": "anyone?", "idempotency_key": key()})
            )
            .await,
            "archived"
        );
    }
    assert_eq!(
        a.err(
            "change_settings",
            json!({"room": old, "settings": {"name": "new"}})
        )
        .await,
        "archived"
    );
    let info = a.ok("room_info", json!({"room": old})).await;
    assert_eq!(info["summary"]["archived"], true);

    // A direct conversation: create_room with direct_with, once per pair.
    assert_eq!(
        a.err("create_room", json!({"direct_with": alice})).await,
        "bad_request",
        "a DM with oneself"
    );
    assert_eq!(
        a.err("create_room", json!({"direct_with": n.user("nobody")}))
            .await,
        "not_found"
    );
    let dm = a
        .ok(
            "create_room",
            json!({"direct_with": bob, "settings": {"visibility": "private"}}),
        )
        .await;
    let dm = s(&dm["room"]);
    let again = a
        .ok(
            "create_room",
            json!({"direct_with": bob, "settings": {"visibility": "private"}}),
        )
        .await;
    assert_eq!(again["room"], dm.as_str());
    let inv = b
        .push("the DM invitation", |v| {
            v["push"] == "room_update"
                && v["summary"]["room"] == dm.as_str()
                && v["summary"]["invited"] == true
        })
        .await;
    assert_eq!(inv["summary"]["direct_with"], alice.as_str());
    assert_eq!(inv["summary"]["visibility"], "private");
    // From bob's side too, before and after joining.
    let from_bob = b.ok("create_room", json!({"direct_with": alice})).await;
    assert_eq!(from_bob["room"], dm.as_str());
    b.ok("join_room", json!({"room": dm})).await;
    let rooms = a.ok("list_rooms", json!({})).await;
    let dm_summary = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"] == dm.as_str())
        .cloned()
        .unwrap();
    assert_eq!(dm_summary["direct_with"], bob.as_str());
    assert_eq!(dm_summary["members"], 2);
    // A DM is not in the directory.
    let found = c.ok("public_rooms", json!({"query": ""})).await;
    assert!(
        !found["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"] == dm.as_str()),
        "{found}"
    );
}

// ---------------------------------------------------------------------
// 7. Messages
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_history_threads_edits_reactions_pins_search_and_more() {
    let n = WebNode::start(&test_key(66), PinSet::new()).await.unwrap();
    let (alice, bob) = (n.user("alice"), n.user("bob"));
    let mut a = Ws::connect(&n.ws_url()).await.unwrap();
    a.register("alice").await;
    let mut b = Ws::connect(&n.ws_url()).await.unwrap();
    b.register("bob").await;
    let room = create_room(&mut a, "chat", "public").await;
    b.ok("join_room", json!({"room": room})).await;
    a.ok("subscribe", json!({"room": room})).await;
    b.ok("subscribe", json!({"room": room})).await;

    // History paging: `limit`, `before`, `more_before`.
    let mut sent = Vec::new();
    for i in 1..=5 {
        sent.push(say(&mut a, &room, &format!("message {i}")).await);
    }
    let all = a.ok("history", json!({"room": room, "limit": 200})).await;
    let all_ids = ids(&all);
    assert_eq!(all["more_before"], false);
    assert_eq!(all["more_after"], false);
    assert_eq!(&all_ids[all_ids.len() - 5..], &sent[..]);
    let page = a.ok("history", json!({"room": room, "limit": 2})).await;
    assert_eq!(ids(&page), sent[3..5].to_vec());
    assert_eq!(page["more_before"], true);
    assert_eq!(page["more_after"], false);
    let page2 = a
        .ok(
            "history",
            json!({"room": room, "limit": 2, "before": sent[3]}),
        )
        .await;
    assert_eq!(ids(&page2), sent[1..3].to_vec());
    assert_eq!(page2["more_before"], true);
    assert_eq!(page2["more_after"], true);
    // Page back to the start: the pages add up to the whole history.
    let mut collected: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut q = json!({"room": room, "limit": 2});
        if let Some(b) = &before {
            q["before"] = json!(b);
        }
        let p = a.ok("history", q).await;
        let mut got = ids(&p);
        assert!(!got.is_empty(), "{p}");
        got.append(&mut collected);
        collected = got;
        before = Some(collected[0].clone());
        if p["more_before"] == false {
            break;
        }
    }
    assert_eq!(collected, all_ids);
    let empty = a
        .ok(
            "history",
            json!({"room": room, "before": all_ids[0].clone()}),
        )
        .await;
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["more_before"], false);
    // `after` excludes its anchor.
    let after = a
        .ok("history", json!({"room": room, "after": sent[2]}))
        .await;
    assert_eq!(ids(&after), sent[3..].to_vec());
    assert_eq!(after["more_before"], true);
    // `around` contains its anchor.
    let around = a
        .ok(
            "history",
            json!({"room": room, "around": sent[2], "limit": 3}),
        )
        .await;
    assert_eq!(ids(&around), sent[1..4].to_vec());
    assert_eq!(around["more_before"], true);
    assert_eq!(around["more_after"], true);
    let one = a
        .ok(
            "history",
            json!({"room": room, "around": sent[0], "limit": 1}),
        )
        .await;
    assert_eq!(ids(&one), vec![sent[0].clone()]);
    assert_eq!(
        a.err(
            "history",
            json!({"room": room, "before": sent[0], "after": sent[1]})
        )
        .await,
        "bad_request"
    );
    assert_eq!(
        a.err(
            "history",
            json!({"room": room, "around": EventId([0xa2; 32]).to_string()})
        )
        .await,
        "not_found"
    );

    // Threads: a reply with thread_root; the root is pushed again.
    let root = say(&mut a, &room, "thread root").await;
    let reply = b
        .ok(
            "send",
            json!({"room": room, "body": "in the thread", "idempotency_key": key(), "thread_root": root}),
        )
        .await;
    let reply = s(&reply["event"]);
    let pushed = a
        .push(
            "the reply",
            item_where(&room, |i| i["id"] == reply.as_str()),
        )
        .await;
    assert_eq!(pushed["item"]["thread_root"], root.as_str());
    let root_again = a
        .push(
            "the root with its thread",
            item_where(&room, |i| {
                i["id"] == root.as_str() && !i["thread"].is_null()
            }),
        )
        .await;
    assert_eq!(root_again["item"]["thread"]["replies"], 1);
    let thread = a.ok("thread", json!({"room": room, "root": root})).await;
    let t_ids = ids(&thread);
    assert!(t_ids.contains(&reply), "{thread}");
    for i in items(&thread) {
        assert!(
            i["id"] == root.as_str() || i["thread_root"] == root.as_str(),
            "{i}"
        );
    }
    assert_eq!(thread["more_before"], false);
    assert_eq!(thread["more_after"], false);
    assert_eq!(
        a.err(
            "thread",
            json!({"room": room, "root": EventId([0xa3; 32]).to_string()})
        )
        .await,
        "not_found"
    );
    assert_eq!(
        b.err(
            "send",
            json!({"room": room, "body": "x", "idempotency_key": key(), "thread_root": EventId([0xa4; 32]).to_string()})
        )
        .await,
        "not_found"
    );

    // Edits: not someone else's message; one's own is pushed again.
    let m1 = sent[0].clone();
    assert_eq!(
        b.err(
            "edit",
            json!({"room": room, "target": m1, "body": "bob was here"})
        )
        .await,
        "forbidden"
    );
    let edit = a
        .ok(
            "edit",
            json!({"room": room, "target": m1, "body": "message *one*"}),
        )
        .await;
    let edit_ev = s(&edit["event"]);
    let e_item = b
        .push(
            "the edit",
            item_where(&room, |i| i["id"] == edit_ev.as_str()),
        )
        .await;
    assert_eq!(e_item["item"]["kind"], "edit");
    assert_eq!(e_item["item"]["target"], m1.as_str());
    let edited = b
        .push(
            "the edited message",
            item_where(&room, |i| {
                i["id"] == m1.as_str() && i.get("edited_body").is_some()
            }),
        )
        .await;
    assert_eq!(edited["item"]["edited_body"], "message *one*");
    assert_eq!(
        edited["item"]["edited_html"],
        "<p>message <em>one</em></p>\n"
    );
    assert_eq!(edited["item"]["body"], "message 1", "the original stays");

    // Reactions: once per emoji and user; unreact.
    let react = b
        .ok("react", json!({"room": room, "target": m1, "emoji": "👍"}))
        .await;
    assert!(react["event"].is_string());
    let reacted = a
        .push(
            "the reaction on the message",
            item_where(&room, |i| {
                i["id"] == m1.as_str() && i["reactions"].as_array().is_some_and(|r| !r.is_empty())
            }),
        )
        .await;
    assert_eq!(
        reacted["item"]["reactions"],
        json!([{"emoji": "👍", "users": [bob]}])
    );
    assert_eq!(
        b.err("react", json!({"room": room, "target": m1, "emoji": "👍"}))
            .await,
        "conflict"
    );
    // Earlier versions of the item read meanwhile are stale now.
    a.take_pushes(|v| v["item"]["id"] == m1.as_str());
    b.ok(
        "unreact",
        json!({"room": room, "target": m1, "emoji": "👍"}),
    )
    .await;
    a.push(
        "the reaction removed",
        item_where(&room, |i| {
            i["id"] == m1.as_str() && i["reactions"] == json!([])
        }),
    )
    .await;
    assert_eq!(
        b.err(
            "unreact",
            json!({"room": room, "target": m1, "emoji": "👍"})
        )
        .await,
        "not_found"
    );

    // Pins: up to 3, a 4th is a conflict.
    assert_eq!(
        b.err("pin", json!({"room": room, "target": sent[3]})).await,
        "forbidden"
    );
    for m in &sent[0..3] {
        a.ok("pin", json!({"room": room, "target": m})).await;
    }
    assert_eq!(
        a.err("pin", json!({"room": room, "target": sent[0]})).await,
        "conflict",
        "already pinned"
    );
    assert_eq!(
        a.err("pin", json!({"room": room, "target": sent[3]})).await,
        "conflict",
        "a 4th pin"
    );
    let info = a.ok("room_info", json!({"room": room})).await;
    assert_eq!(info["pins"], json!(sent[0..3].to_vec()));
    a.ok("unpin", json!({"room": room, "target": sent[2]}))
        .await;
    assert_eq!(
        a.err("unpin", json!({"room": room, "target": sent[2]}))
            .await,
        "not_found"
    );
    a.ok("pin", json!({"room": room, "target": sent[3]})).await;

    // Redact one's own: the item comes back `redacted`.
    let m5 = sent[4].clone();
    assert_eq!(
        b.err("redact", json!({"room": room, "target": m5})).await,
        "forbidden"
    );
    a.ok(
        "redact",
        json!({"room": room, "target": m5, "reason": "typo"}),
    )
    .await;
    let gone = b
        .push(
            "the deleted message",
            item_where(&room, |i| {
                i["id"] == m5.as_str() && i.get("redacted").is_some()
            }),
        )
        .await;
    assert_eq!(gone["item"]["redacted"], "typo");
    assert!(gone["item"]["body"].is_null() && gone["item"]["html"].is_null());
    assert_eq!(
        a.err(
            "edit",
            json!({"room": room, "target": m5, "body": "back from the dead"})
        )
        .await,
        "not_found"
    );

    // Search: finds text, follows edits, forgets deletions.
    let zebra = say(&mut a, &room, "zebra stripes today").await;
    let walrus = say(&mut b, &room, "walrus tusks tomorrow").await;
    let found = b
        .ok("search", json!({"query": "zebra", "room": room}))
        .await;
    assert_eq!(ids(&found), vec![zebra.clone()]);
    let found = b.ok("search", json!({"query": "ZEBRA stripes"})).await;
    assert_eq!(ids(&found), vec![zebra.clone()], "all rooms, any case");
    a.ok(
        "edit",
        json!({"room": room, "target": zebra, "body": "giraffe necks today"}),
    )
    .await;
    let found = b
        .ok("search", json!({"query": "zebra", "room": room}))
        .await;
    assert_eq!(found["items"], json!([]), "old words are not found");
    let found = b
        .ok("search", json!({"query": "giraffe", "room": room}))
        .await;
    assert_eq!(ids(&found), vec![zebra.clone()]);
    let found = b.ok("search", json!({"query": "walrus"})).await;
    assert_eq!(ids(&found), vec![walrus.clone()]);
    b.ok("redact", json!({"room": room, "target": walrus}))
        .await;
    let found = b.ok("search", json!({"query": "walrus"})).await;
    assert_eq!(found["items"], json!([]), "deleted messages never match");
    // Newest first, and paging with `before`.
    let older = say(&mut a, &room, "platypus one").await;
    let newer = say(&mut a, &room, "platypus two").await;
    // (Two messages of one millisecond have no order by time: the pages
    // must hold both, once each, the first no older than the second.)
    let first = b
        .ok("search", json!({"query": "platypus", "limit": 1}))
        .await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(first["more_before"], true);
    let top = ids(&first)[0].clone();
    let second = b
        .ok(
            "search",
            json!({"query": "platypus", "limit": 1, "before": top}),
        )
        .await;
    let mut both = vec![top.clone(), ids(&second)[0].clone()];
    assert!(
        first["items"][0]["ts"].as_u64() >= second["items"][0]["ts"].as_u64(),
        "newest first"
    );
    both.sort();
    let mut want = vec![older.clone(), newer.clone()];
    want.sort();
    assert_eq!(both, want);

    // Mentions.
    let mention = a
        .ok(
            "send",
            json!({"room": room, "body": "ping @bob", "idempotency_key": key(), "mentions": [bob]}),
        )
        .await;
    let mention = s(&mention["event"]);
    let view = b.ok("mentions", json!({})).await;
    let at = ids(&view).iter().position(|e| *e == mention);
    assert!(at.is_some(), "{view}");
    assert_eq!(items(&view)[at.unwrap_or(0)]["mentions"], json!([bob]));
    let view = a.ok("mentions", json!({})).await;
    assert!(!ids(&view).contains(&mention));

    // mark_read lowers `unread`.
    let unread = |rooms: &Value| {
        rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["room"] == room.as_str())
            .map(|r| {
                (
                    r["unread"].as_u64().unwrap(),
                    r["mentions"].as_u64().unwrap(),
                )
            })
            .unwrap()
    };
    let rooms = b.ok("list_rooms", json!({})).await;
    let (before_count, before_mentions) = unread(&rooms);
    assert!(before_count >= 5, "{rooms}");
    assert!(before_mentions >= 1, "{rooms}");
    let latest = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"] == room.as_str())
        .map(|r| s(&r["last_event"]))
        .unwrap();
    b.ok("mark_read", json!({"room": room, "event": latest}))
        .await;
    let rooms = b.ok("list_rooms", json!({})).await;
    assert_eq!(unread(&rooms), (0, 0), "{rooms}");
    // Never backwards.
    b.ok("mark_read", json!({"room": room, "event": sent[0]}))
        .await;
    let rooms = b.ok("list_rooms", json!({})).await;
    assert_eq!(unread(&rooms).0, 0, "{rooms}");
    say(&mut a, &room, "one more").await;
    let rooms = b.ok("list_rooms", json!({})).await;
    assert_eq!(unread(&rooms).0, 1, "{rooms}");

    // Typing reaches the other user, not the typer.
    b.ok("typing", json!({"room": room, "typing": true})).await;
    let t = a
        .push("bob typing", |v| {
            v["push"] == "typing" && v["room"] == room.as_str()
        })
        .await;
    assert_eq!(t["user"], bob.as_str());
    assert_eq!(t["typing"], true);
    // Anything pushed after bob's typing signal reaches bob after it
    // would have: a message from alice, then bob's buffer is checked.
    let marker = say(&mut a, &room, "after typing").await;
    b.push(
        "alice's message after the typing signal",
        item_where(&room, |i| i["id"] == marker.as_str()),
    )
    .await;
    assert!(
        b.take_pushes(|v| v["push"] == "typing").is_empty(),
        "one's own typing is not echoed"
    );

    // Profiles.
    a.ok(
        "set_profile",
        json!({"display_name": "Alice Liddell", "status": "down the hole"}),
    )
    .await;
    let p = b.ok("get_profile", json!({"user": alice})).await;
    assert_eq!(p["user"], alice.as_str());
    assert_eq!(p["display_name"], "Alice Liddell");
    assert_eq!(p["status"], "down the hole");
    assert_eq!(p["avatar"], Value::Null);
    a.ok("set_profile", json!({"status": ""})).await;
    let p = b.ok("get_profile", json!({"user": alice})).await;
    assert_eq!(p["display_name"], "Alice Liddell", "absent keys stay");
    assert_eq!(p["status"], "");
    assert_eq!(
        b.err("get_profile", json!({"user": n.user("nobody")}))
            .await,
        "not_found"
    );
    assert_eq!(
        a.err(
            "set_profile",
            json!({"avatar": BlobId([0xa6; 32]).to_string()})
        )
        .await,
        "not_found"
    );
    let users = b.ok("search_users", json!({"query": "ali"})).await;
    let found: Vec<String> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| s(&u["user"]))
        .collect();
    assert!(found.contains(&alice), "{users}");
    assert!(!found.contains(&bob), "{users}");
    let users = b.ok("search_users", json!({"query": alice})).await;
    assert_eq!(users["users"][0]["user"], alice.as_str());

    // Report.
    assert_eq!(
        b.ok(
            "report",
            json!({"room": room, "event": sent[1], "reason": "rude"})
        )
        .await,
        Value::Null
    );
    assert_eq!(
        b.err(
            "report",
            json!({"room": room, "event": EventId([0xa5; 32]).to_string(), "reason": "?"})
        )
        .await,
        "not_found"
    );

    // Block: a blocked user's DM send is refused.
    let dm = a
        .ok(
            "create_room",
            json!({"direct_with": bob, "settings": {"visibility": "private"}}),
        )
        .await;
    let dm = s(&dm["room"]);
    b.ok("join_room", json!({"room": dm})).await;
    say(&mut a, &dm, "hello bob").await;
    b.ok("block", json!({"user": alice, "blocked": true})).await;
    assert_eq!(
        a.err(
            "send",
            json!({"room": dm, "body": "are you there?", "idempotency_key": key()})
        )
        .await,
        "forbidden"
    );
    // Blocking is about DMs: the shared public room still takes messages.
    say(&mut a, &room, "in public").await;
    // And bob may still write to alice.
    say(&mut b, &dm, "I blocked you").await;
    b.ok("block", json!({"user": alice, "blocked": false}))
        .await;
    say(&mut a, &dm, "thanks for unblocking").await;
}

// ---------------------------------------------------------------------
// 8. Files over HTTP
// ---------------------------------------------------------------------

/// A PNG header: the signature and an IHDR chunk (enough to sniff).
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(&13u32.to_be_bytes());
    b.extend_from_slice(b"IHDR");
    b.extend_from_slice(&width.to_be_bytes());
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0]);
    b.extend_from_slice(&[0, 0, 0, 0]); // CRC (not checked)
    b
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_upload_download_and_attach() {
    let n = WebNode::start(&test_key(67), PinSet::new()).await.unwrap();
    let addr = n.gateway.local_addr();
    let mut a = Ws::connect(&n.ws_url()).await.unwrap();
    let grant = a.register("alice").await;
    let bearer = format!("Bearer {}", s(&grant["access_token"]));
    let image = png(640, 480);
    let upload = |name: &'static str, body: Vec<u8>, auth: Option<String>| async move {
        let mut h: Vec<(&str, String)> = vec![
            ("x-filename", name.to_string()),
            ("content-type", "image/png".into()),
        ];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http(addr, "POST", "/api/upload", &h, &body).await.unwrap()
    };

    let r = upload("tiny%20pic.png", image.clone(), Some(bearer.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let att = r.json();
    let blob = s(&att["blob"]);
    assert!(blob.starts_with('&') && blob.len() == 53, "{att}");
    assert_eq!(att["name"], "tiny pic.png");
    assert_eq!(att["mime"], "image/png");
    assert_eq!(att["size"], image.len());
    assert_eq!(
        (att["width"].as_u64(), att["height"].as_u64()),
        (Some(640), Some(480))
    );
    // The same bytes are the same blob.
    let r = upload("other.png", image.clone(), Some(bearer.clone())).await;
    assert_eq!(r.json()["blob"], blob.as_str());

    // Programs are refused whatever their name.
    for exe in [
        b"\x7fELF\x02\x01\x01\0rest".to_vec(),
        b"MZ\x90\0\x03\0rest".to_vec(),
    ] {
        let r = upload("x.png", exe, Some(bearer.clone())).await;
        assert_eq!(r.status, 415, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "unsupported_type");
    }
    // Over the node's limit (1 MiB in tests): 413, by Content-Length.
    let too_big = ((1u64 << 20) + 1).to_string();
    let r = http(
        addr,
        "POST",
        "/api/upload",
        &[
            ("authorization", &bearer),
            ("x-filename", "big.png"),
            ("content-length", &too_big),
        ],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "too_large");
    // And by the bytes actually sent.
    let mut big = png(1, 1);
    big.resize((1 << 20) + 1, 0);
    let r = upload("big.png", big, Some(bearer.clone())).await;
    assert_eq!(r.status, 413, "{}", r.text());
    // No token, a bad token, no file name.
    let r = upload("a.png", image.clone(), None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "unauthenticated");
    let r = upload("a.png", image.clone(), Some("Bearer 00ff".into())).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = http(
        addr,
        "POST",
        "/api/upload",
        &[("authorization", &bearer)],
        &image,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "bad_request");

    // Download: percent-encoded full id, with the token.
    let path = format!("/api/blob/{}", percent_encode(&blob));
    assert!(path.contains("%26"), "{path}");
    let r = http(addr, "GET", &path, &[("authorization", &bearer)], &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, image);
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("content-disposition"), Some("inline"));
    assert_eq!(
        r.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );
    // The bare base32 form works too.
    let bare = format!("/api/blob/{}", &blob[1..]);
    let r = http(addr, "GET", &bare, &[("authorization", &bearer)], &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, image);
    // Without a token: 401.
    let r = http(addr, "GET", &path, &[], &[]).await.unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "unauthenticated");
    // A blob no room of this node attaches is not found, whatever the
    // peers hold; neither is something that is not a blob id.
    let unknown = format!(
        "/api/blob/{}",
        percent_encode(&BlobId([0xa8; 32]).to_string())
    );
    let r = http(addr, "GET", &unknown, &[("authorization", &bearer)], &[])
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "not_found");
    let r = http(
        addr,
        "GET",
        "/api/blob/nope",
        &[("authorization", &bearer)],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "not_found");

    // Attach it: the node, not the client, says what the file is.
    let room = create_room(&mut a, "pics", "private").await;
    a.ok("subscribe", json!({"room": room})).await;
    let sent = a
        .ok(
            "send",
            json!({"room": room, "body": "", "idempotency_key": key(), "attachments": [
                {"blob": blob, "name": "tiny pic.png", "mime": "text/html", "size": 1, "width": 9, "height": 9}
            ]}),
        )
        .await;
    let ev = s(&sent["event"]);
    let item = a
        .push(
            "the message with the file",
            item_where(&room, |i| i["id"] == ev.as_str()),
        )
        .await;
    let got = &item["item"]["attachments"][0];
    assert_eq!(got["blob"], blob.as_str());
    assert_eq!(got["name"], "tiny pic.png");
    assert_eq!(got["mime"], "image/png");
    assert_eq!(got["size"], image.len());
    assert_eq!(
        (got["width"].as_u64(), got["height"].as_u64()),
        (Some(640), Some(480))
    );
    // Someone outside the private room may not download it; once in, may.
    let mut b = Ws::connect(&n.ws_url()).await.unwrap();
    let bob = b.register("bob").await;
    let bob_bearer = format!("Bearer {}", s(&bob["access_token"]));
    let r = http(addr, "GET", &path, &[("authorization", &bob_bearer)], &[])
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "forbidden");
    a.ok("invite", json!({"room": room, "user": n.user("bob")}))
        .await;
    b.ok("join_room", json!({"room": room})).await;
    let r = http(addr, "GET", &path, &[("authorization", &bob_bearer)], &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, image);
    // Bob cannot make Alice's file his avatar; his own upload he can.
    assert_eq!(
        b.err(
            "set_profile",
            json!({"avatar": BlobId([0xa8; 32]).to_string()})
        )
        .await,
        "not_found"
    );
    // An attachment that was never uploaded.
    assert_eq!(
        a.err(
            "send",
            json!({"room": room, "body": "", "idempotency_key": key(), "attachments": [
                {"blob": BlobId([0xa7; 32]).to_string(), "name": "ghost.png"}
            ]})
        )
        .await,
        "not_found"
    );
    // The avatar can be an uploaded blob.
    a.ok("set_profile", json!({"avatar": blob})).await;
    let p = a.ok("get_profile", json!({"user": n.user("alice")})).await;
    assert_eq!(p["avatar"], blob.as_str());
    a.ok("set_profile", json!({"avatar": null})).await;
    let p = a.ok("get_profile", json!({"user": n.user("alice")})).await;
    assert_eq!(p["avatar"], Value::Null);
}

// ---------------------------------------------------------------------
// 9. Headers, health, metrics
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_health_and_metrics() {
    let n = WebNode::start(&test_key(68), PinSet::new()).await.unwrap();
    let addr = n.gateway.local_addr();
    let csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
    let check = |r: &confab_tests::web::HttpReply, what: &str| {
        let got = r.header("content-security-policy").unwrap_or("");
        assert!(got.contains("frame-ancestors 'none'"), "{what}: {got}");
        assert_eq!(got, csp, "{what}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
        let policy = r.header("permissions-policy").unwrap_or("");
        for feature in ["camera=()", "microphone=()", "geolocation=()", "payment=()"] {
            assert!(policy.contains(feature), "{what}: {policy}");
        }
    };
    let index = http(addr, "GET", "/", &[], &[]).await.unwrap();
    assert_eq!(index.status, 200);
    assert!(
        index
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        index.headers
    );
    check(&index, "/");
    let js = http(addr, "GET", "/app.js", &[], &[]).await.unwrap();
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type")
            .is_some_and(|t| t.starts_with("text/javascript"))
    );
    check(&js, "/app.js");
    let sw = http(addr, "GET", "/sw.js", &[], &[]).await.unwrap();
    assert_eq!(sw.header("cache-control"), Some("no-cache"));
    let missing = http(addr, "GET", "/no/such/file.js", &[], &[])
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
    check(&missing, "a 404");

    let live = http(addr, "GET", "/health/live", &[], &[]).await.unwrap();
    assert_eq!(live.status, 200);
    assert_eq!(live.text().trim(), "ok");
    check(&live, "/health/live");
    let ready = http(addr, "GET", "/health/ready", &[], &[]).await.unwrap();
    assert_eq!(ready.status, 200);
    assert_eq!(ready.text().trim(), "ok");

    // Metrics are not on the chat's address; on their own, they count
    // open sockets.
    let chat = http(addr, "GET", "/metrics", &[], &[]).await.unwrap();
    assert_eq!(chat.status, 404);
    let mut ws = Ws::connect(&n.ws_url()).await.unwrap();
    ws.register("alice").await;
    let ops = n.gateway.metrics_addr().unwrap();
    let metrics = http(ops, "GET", "/metrics", &[], &[]).await.unwrap();
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(text.contains("confab_gateway_sockets"), "{text}");
    assert!(
        text.lines().any(|l| l == "confab_gateway_sockets 1"),
        "{text}"
    );
    // An API error carries the headers too.
    let r = http(addr, "GET", "/api/blob/x", &[], &[]).await.unwrap();
    assert_eq!(r.status, 401);
    check(&r, "an API error");
}

// ---------------------------------------------------------------------
// Paging search results and mentions across messages of one millisecond
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_mentions_page_through_messages_of_one_millisecond() {
    use confab_wire::event::{Content, EventKind, MessageContent};
    let n = WebNode::start(&test_key(69), PinSet::new()).await.unwrap();
    let mut a = Ws::connect(&n.ws_url()).await.unwrap();
    a.register("alice").await;
    let mut b = Ws::connect(&n.ws_url()).await.unwrap();
    b.register("bob").await;
    let room = create_room(&mut a, "same-ms", "public").await;
    b.ok("join_room", json!({"room": room})).await;
    // Two messages with one timestamp (a busy room does this), posted as
    // the node does for its users.
    let alice: confab_wire::UserId = n.user("alice").parse().unwrap();
    let bob: confab_wire::UserId = n.user("bob").parse().unwrap();
    let room_id: RoomId = room.parse().unwrap();
    let ts = now_ms();
    let mut posted = Vec::new();
    for body in ["kiwi one @bob", "kiwi two @bob"] {
        let content = Content::Message(MessageContent {
            body: body.into(),
            mentions: vec![bob.clone()],
            ..Default::default()
        });
        let ev = n
            .node
            .rooms()
            .post(
                &n.node.key,
                &alice,
                &room_id,
                EventKind::Message,
                &content,
                ts,
                None,
            )
            .and_then(|p| p.into_event())
            .unwrap();
        posted.push(ev.id().to_string());
    }
    n.service.store().wait_durable().unwrap();
    posted.sort();

    // One page at a time, each result exactly once.
    let mut seen: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..3 {
        let mut q = json!({"query": "kiwi", "limit": 1});
        if let Some(b) = &before {
            q["before"] = json!(b);
        }
        let page = b.ok("search", q).await;
        seen.extend(ids(&page));
        if page["more_before"] == false {
            break;
        }
        before = seen.last().cloned();
    }
    seen.sort();
    assert_eq!(seen, posted, "search pages");

    let mut seen: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..3 {
        let mut q = json!({"limit": 1});
        if let Some(b) = &before {
            q["before"] = json!(b);
        }
        let page = b.ok("mentions", q).await;
        seen.extend(ids(&page));
        if page["more_before"] == false {
            break;
        }
        before = seen.last().cloned();
    }
    seen.sort();
    assert_eq!(seen, posted, "mention pages");
}
