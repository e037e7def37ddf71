//! Every `confabctl` command against whole running nodes: its success path
//! (and that the change shows where people see it: over the browser
//! protocol, in listings, in the audit log) and its bad-input path (the exit
//! code of the top-level help, and a message that says what was wrong).
//!
//! Each test starts its own node(s) in a temporary directory.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Ctl, Node, ctl_raw, until};
use confab_tests::web::{Ws, create_room};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse";
/// A room id no node holds.
const NO_ROOM: &str = "!aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// An event id no node holds.
const NO_EVENT: &str = "$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// The JSON `code` of an exit code (the top-level help's list).
fn json_code(exit: i32) -> &'static str {
    match exit {
        1 => "internal",
        2 => "bad_request",
        3 => "not_found",
        4 => "forbidden",
        5 => "conflict",
        6 => "unavailable",
        7 => "bad_backup",
        other => panic!("no JSON code for exit {other}"),
    }
}

/// `confabctl ARGS` must succeed; its standard output.
async fn ok(node: &Node, args: &[&str]) -> String {
    let out = node.ctl(args).await;
    assert_eq!(out.code, 0, "confabctl {args:?}: {out:?}");
    out.stdout
}

/// Checks a failed run: exit `code`, and `says` in the message.
fn check_failure(args: &[&str], out: &Ctl, code: i32, says: &str) {
    assert_eq!(out.code, code, "confabctl {args:?}: {out:?}");
    assert!(
        out.stderr.contains(says),
        "confabctl {args:?} should say {says:?}: {out:?}"
    );
}

/// Checks a failed `--json` run: the same exit code, and the error as a
/// JSON object on standard output.
fn check_json_failure(args: &[&str], out: &Ctl, code: i32, says: &str) {
    assert_eq!(out.code, code, "confabctl --json {args:?}: {out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("confabctl --json {args:?} printed no JSON ({e}): {out:?}"));
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], json_code(code), "{v}");
    assert!(
        v["message"].as_str().unwrap().contains(says),
        "confabctl --json {args:?} should say {says:?}: {v}"
    );
}

/// `confabctl ARGS` must fail with exit `code` saying `says`, as text and
/// as JSON; the text message.
async fn fails(node: &Node, args: &[&str], code: i32, says: &str) -> String {
    let out = node.ctl(args).await;
    check_failure(args, &out, code, says);
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    check_json_failure(args, &node.ctl(&all).await, code, says);
    out.stderr
}

/// [`fails`] for a command that reads `stdin`.
async fn fails_stdin(node: &Node, args: &[&str], stdin: &str, code: i32, says: &str) {
    check_failure(args, &node.ctl_stdin(args, stdin).await, code, says);
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    check_json_failure(args, &node.ctl_stdin(&all, stdin).await, code, says);
}

/// [`fails`] for commands that need no node.
async fn fails_raw(args: &[&str], code: i32, says: &str) {
    let out = ctl_raw(args).await;
    check_failure(args, &out, code, says);
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    check_json_failure(args, &ctl_raw(&all).await, code, says);
}

/// A request's result: the `ok` payload, or the error's code.
async fn call(ws: &mut Ws, kind: &str, fields: Value) -> Result<Value, String> {
    ws.call(kind, fields)
        .await
        .unwrap()
        .map_err(|e| e["code"].as_str().unwrap_or("").to_string())
}

/// A fresh socket's login as `name`; the socket if it worked.
async fn login(node: &Node, name: &str, password: &str) -> Result<Ws, String> {
    let mut ws = node.ws().await;
    call(
        &mut ws,
        "login",
        json!({"username": name, "password": password}),
    )
    .await
    .map(|_| ws)
}

/// A fresh socket's registration of `name`.
async fn register(node: &Node, name: &str, invite: Option<&str>) -> Result<Ws, String> {
    let mut ws = node.ws().await;
    let mut fields = json!({"username": name, "password": PASSWORD});
    if let Some(code) = invite {
        fields["invite_code"] = json!(code);
    }
    call(&mut ws, "register", fields).await.map(|_| ws)
}

/// Sends `body`; the new event's id, or the error's code.
async fn send(ws: &mut Ws, room: &str, body: &str) -> Result<String, String> {
    let key = format!("k{}", next_key());
    call(
        ws,
        "send",
        json!({"room": room, "body": body, "idempotency_key": key}),
    )
    .await
    .map(|v| v["event"].as_str().unwrap().to_string())
}

/// A new idempotency key number.
fn next_key() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A file's permission bits.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The value of `key:` in a record printed for people.
fn field(out: &str, key: &str) -> String {
    let prefix = format!("{key}:");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}: in {out}"))
        .trim()
        .to_string()
}

/// The row of `user list --json` for `user`.
async fn account(node: &Node, user: &str) -> Value {
    let list = node.json(&["user", "list"]).await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == user)
        .cloned()
        .unwrap_or_else(|| panic!("{user} is not in {list}"))
}

/// The members line of `room show --json`.
async fn members(node: &Node, room: &str) -> String {
    node.json(&["room", "show", room]).await["members"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The member entry of `user` in `room show`'s members line.
fn member_entry<'a>(members: &'a str, user: &str) -> Option<&'a str> {
    members
        .split("; ")
        .find(|m| m.split(' ').next() == Some(user))
}

/// A public room `name` that Alice made and the `others` joined: Alice's
/// socket, theirs, and the room.
async fn room_with(node: &Node, name: &str, others: &[&str]) -> (Ws, Vec<Ws>, String) {
    let mut alice = register(node, "alice", None).await.unwrap();
    let room = create_room(&mut alice, name, "public").await;
    let mut joined = Vec::new();
    for other in others {
        let mut ws = register(node, other, None).await.unwrap();
        call(&mut ws, "join_room", json!({"room": room}))
            .await
            .unwrap();
        joined.push(ws);
    }
    (alice, joined, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_registration() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), "users", &[]).await;
    let bob = node.user("bob");

    // `user create` with a generated password, printed once.
    let out = ok(
        &node,
        &["user", "create", "bob", "--display-name", "Bob B."],
    )
    .await;
    assert!(out.contains(&format!("created {bob}")), "{out}");
    let generated = field(&out, "password");
    assert!(generated.len() >= 16, "{out}");
    assert!(out.contains("shown only now"), "{out}");
    login(&node, "bob", &generated).await.unwrap();
    let row = account(&node, &bob).await;
    assert_eq!(row["display_name"], "Bob B.");
    assert_eq!(row["disabled"], false);
    // ... as JSON, the password beside the message.
    let made = node.json(&["user", "create", "dave"]).await;
    assert_eq!(made["ok"], true, "{made}");
    let dave_pw = made["password"].as_str().unwrap();
    login(&node, "dave", dave_pw).await.unwrap();
    // ... and from standard input, which prints no password.
    let out = node
        .ctl_stdin(
            &["user", "create", "carol", "--password-stdin"],
            "carol's old pass\n",
        )
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("password:"), "{out:?}");
    login(&node, "carol", "carol's old pass").await.unwrap();
    let stdin_json = node
        .ctl_stdin(
            &["--json", "user", "create", "erin", "--password-stdin"],
            "erin's own pass\n",
        )
        .await;
    let v: Value = serde_json::from_str(&stdin_json.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(v.get("password").is_none(), "{v}");
    // Bad input: a taken name, a bad name, a user of another node, a short
    // password.
    fails(&node, &["user", "create", "bob"], 5, "taken").await;
    fails(&node, &["user", "create", "Bob!"], 2, "is not a user").await;
    let mut other_node = Node::start(dir.path(), "other", &[]).await;
    let foreign = other_node.user("zed");
    fails(
        &node,
        &["user", "create", &foreign],
        2,
        "belongs to another node",
    )
    .await;
    fails_stdin(
        &node,
        &["user", "create", "frank", "--password-stdin"],
        "short\n",
        2,
        "the password must have at least 8 characters",
    )
    .await;

    // `user list`, for people and as JSON.
    let out = ok(&node, &["user", "list"]).await;
    assert!(
        out.lines().next().unwrap().contains("display_name"),
        "{out}"
    );
    for name in ["bob", "carol", "dave", "erin"] {
        assert!(out.contains(&node.user(name)), "{out}");
    }
    assert!(!out.contains("frank"), "{out}");
    assert_eq!(
        node.json(&["user", "list"]).await.as_array().unwrap().len(),
        4
    );

    // `user disable`: the login is refused, open sessions end, the list
    // says so.
    let mut bobs_socket = login(&node, "bob", &generated).await.unwrap();
    let out = ok(&node, &["user", "disable", "bob"]).await;
    assert!(out.contains(&format!("{bob} disabled")), "{out}");
    bobs_socket
        .push("the revocation", |v| v["push"] == "revoked")
        .await;
    assert_eq!(
        login(&node, "bob", &generated).await.err().as_deref(),
        Some("disabled")
    );
    assert_eq!(account(&node, &bob).await["disabled"], true);
    fails(
        &node,
        &["user", "disable", "nobody"],
        3,
        "no user \"nobody\"",
    )
    .await;
    fails(&node, &["user", "disable", "nobody"], 3, "user list").await;
    let j = node.json(&["user", "disable", "dave"]).await;
    assert_eq!(j["ok"], true, "{j}");

    // `user enable`: the login works again.
    let out = ok(&node, &["user", "enable", "bob"]).await;
    assert!(out.contains(&format!("{bob} enabled")), "{out}");
    login(&node, "bob", &generated).await.unwrap();
    assert_eq!(account(&node, &bob).await["disabled"], false);
    let j = node.json(&["user", "enable", "dave"]).await;
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(account(&node, &node.user("dave")).await["disabled"], false);
    fails(
        &node,
        &["user", "enable", "nobody"],
        3,
        "no user \"nobody\"",
    )
    .await;

    // `user reset-password --password-stdin`: the old password fails, the
    // new one works.
    let out = node
        .ctl_stdin(
            &["user", "reset-password", "carol", "--password-stdin"],
            "carol's new pass\n",
        )
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("new password set"), "{out:?}");
    assert_eq!(
        login(&node, "carol", "carol's old pass")
            .await
            .err()
            .as_deref(),
        Some("unauthenticated")
    );
    login(&node, "carol", "carol's new pass").await.unwrap();
    // Generated, as JSON.
    let j = node.json(&["user", "reset-password", "carol"]).await;
    let pw = j["password"].as_str().unwrap();
    login(&node, "carol", pw).await.unwrap();
    fails_stdin(
        &node,
        &["user", "reset-password", "nobody", "--password-stdin"],
        "a long enough pass\n",
        3,
        "no user \"nobody\"",
    )
    .await;
    fails_stdin(
        &node,
        &["user", "reset-password", "carol", "--password-stdin"],
        "short\n",
        2,
        "the password must have at least 8 characters",
    )
    .await;

    // The audit log has the account changes, never a password.
    let audit = node.json(&["audit", "--limit", "200"]).await;
    let text = audit.to_string();
    for secret in [
        generated.as_str(),
        dave_pw,
        "carol's old pass",
        "carol's new pass",
        pw,
    ] {
        assert!(
            !text.contains(secret),
            "a password in the audit log: {audit}"
        );
    }
    for (command, detail) in [
        ("user create", "user=bob display_name=\"Bob B.\""),
        ("user disable", "user=bob"),
        ("user enable", "user=bob"),
        ("user reset-password", "user=carol"),
    ] {
        assert!(
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["command"] == command
                    && e["detail"] == detail
                    && e["outcome"] == "ok"
                    && e["actor"].as_str().unwrap().contains("socket")),
            "no {command} {detail} in {audit}"
        );
    }
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["command"] == "user disable" && e["outcome"] == "NotFound"),
        "{audit}"
    );

    // `user export`: the user's messages, as JSON on stdout or in a file.
    let mut alice = register(&node, "alice", None).await.unwrap();
    let room = create_room(&mut alice, "exports", "public").await;
    let said = send(&mut alice, &room, "my data, please").await.unwrap();
    let check_export = |doc: &Value| {
        assert_eq!(doc["user"], node.user("alice"), "{doc}");
        let messages = doc["messages"].as_array().unwrap();
        assert!(
            messages
                .iter()
                .any(|m| m["event"] == said.as_str() && m["body"] == "my data, please"),
            "{doc}"
        );
        assert!(
            doc["rooms"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["room"] == room.as_str() && r["membership"] == "joined"),
            "{doc}"
        );
    };
    check_export(&node.json(&["user", "export", "alice"]).await);
    let plain: Value =
        serde_json::from_str(&ok(&node, &["user", "export", "alice"]).await).unwrap();
    check_export(&plain);
    let file = dir.path().join("alice.json");
    let file_s = file.to_str().unwrap();
    let out = ok(&node, &["user", "export", "alice", "--out", file_s]).await;
    assert!(out.contains("Wrote the data of alice"), "{out}");
    check_export(&serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap());
    assert_eq!(mode(&file), 0o600);
    fails(
        &node,
        &["user", "export", "alice", "--out", file_s],
        5,
        "already exists",
    )
    .await;
    let j = node
        .json(&["user", "export", "alice", "--out", file_s, "--force"])
        .await;
    assert_eq!(j["ok"], true, "{j}");
    fails(
        &node,
        &["user", "export", "nobody"],
        3,
        "no user \"nobody\"",
    )
    .await;
    fails(&node, &["user", "export", "alice", "--force"], 2, "--out").await;

    // Registration: closed, by invite, open (on the other node: its
    // gateway has a login budget of its own).
    let reg = &other_node;
    assert_eq!(
        reg.json(&["config", "get", "registration"]).await["value"],
        "open"
    );
    let out = ok(reg, &["config", "set", "registration", "closed"]).await;
    assert!(out.contains("registration = closed"), "{out}");
    assert_eq!(
        register(reg, "gina", None).await.err().as_deref(),
        Some("registration_closed")
    );
    ok(reg, &["config", "set", "registration", "invite"]).await;
    assert_eq!(
        register(reg, "gina", None).await.err().as_deref(),
        Some("registration_closed")
    );
    let out = ok(reg, &["invite", "create"]).await;
    let code = field(&out, "code");
    assert_eq!(field(&out, "uses"), "1", "{out}");
    assert_eq!(
        register(reg, "gina", Some("not-a-code"))
            .await
            .err()
            .as_deref(),
        Some("registration_closed")
    );
    register(reg, "gina", Some(&code)).await.unwrap();
    // One use only.
    assert_eq!(
        register(reg, "hank", Some(&code)).await.err().as_deref(),
        Some("registration_closed")
    );
    let j = reg
        .json(&["invite", "create", "--uses", "2", "--days", "1"])
        .await;
    assert_eq!(j["uses"], 2, "{j}");
    let code2 = j["code"].as_str().unwrap();
    register(reg, "hank", Some(code2)).await.unwrap();
    register(reg, "ivy", Some(code2)).await.unwrap();
    fails(reg, &["invite", "create", "--uses", "0"], 2, "--uses").await;
    fails(reg, &["invite", "create", "--days", "5000"], 2, "3650").await;
    ok(reg, &["config", "set", "registration", "open"]).await;
    register(reg, "jack", None).await.unwrap();

    node.stop().await;
    other_node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_moderation() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), "mods", &[]).await;
    let (mut alice, mut joined, room) = room_with(&node, "ops", &["bob", "carol"]).await;
    let mut carol = joined.pop().unwrap();
    let mut bob = joined.pop().unwrap();
    let (alice_id, bob_id, carol_id) = (node.user("alice"), node.user("bob"), node.user("carol"));

    // `role list --room`: the room's roles and their holders.
    let out = ok(&node, &["role", "list", "--room", &room]).await;
    assert!(out.lines().next().unwrap().contains("permissions"), "{out}");
    assert!(
        out.contains("owner") && out.contains("role.manage"),
        "{out}"
    );
    let roles = node.json(&["role", "list", "--room", &room]).await;
    let owner = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "owner")
        .unwrap();
    assert!(
        owner["holders"].as_str().unwrap().contains(&alice_id),
        "{roles}"
    );
    fails(&node, &["role", "list", "--room", NO_ROOM], 3, "no room").await;
    fails(
        &node,
        &["role", "list", "--room", "ops"],
        2,
        "is not a room id",
    )
    .await;

    // `role define/grant/revoke` in a room.
    let out = ok(
        &node,
        &[
            "role",
            "define",
            "helper",
            "--permissions",
            "message.pin",
            "--room",
            &room,
        ],
    )
    .await;
    assert!(out.contains("role helper (message.pin) defined"), "{out}");
    let roles = node.json(&["role", "list", "--room", &room]).await;
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["role"] == "helper" && r["permissions"] == "message.pin"),
        "{roles}"
    );
    let j = node
        .json(&[
            "role",
            "define",
            "greeter",
            "--permissions",
            "",
            "--room",
            &room,
        ])
        .await;
    assert_eq!(j["ok"], true, "{j}");
    let out = ok(&node, &["role", "grant", "bob", "helper", "--room", &room]).await;
    assert!(
        out.contains(&format!("helper granted to {bob_id}")),
        "{out}"
    );
    assert_eq!(
        member_entry(&members(&node, &room).await, &bob_id),
        Some(format!("{bob_id} [helper]").as_str())
    );
    let info = alice.ok("room_info", json!({"room": room})).await;
    let bob_roles = info["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == bob_id.as_str())
        .unwrap()["roles"]
        .clone();
    assert!(
        bob_roles.as_array().unwrap().contains(&json!("helper")),
        "{info}"
    );
    let j = node
        .json(&["role", "revoke", "bob", "helper", "--room", &room])
        .await;
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(
        member_entry(&members(&node, &room).await, &bob_id),
        Some(bob_id.as_str())
    );
    let j = node
        .json(&["role", "grant", "bob", "greeter", "--room", &room])
        .await;
    assert_eq!(j["ok"], true, "{j}");
    let out = ok(
        &node,
        &["role", "revoke", "bob", "greeter", "--room", &room],
    )
    .await;
    assert!(
        out.contains(&format!("greeter revoked from {bob_id}")),
        "{out}"
    );
    // Bad input.
    let msg = fails(
        &node,
        &["role", "grant", "bob", "nosuch", "--room", &room],
        3,
        "no role \"nosuch\"",
    )
    .await;
    assert!(msg.contains("owner") && msg.contains("helper"), "{msg}");
    fails(
        &node,
        &["role", "revoke", "bob", "nosuch", "--room", &room],
        3,
        "no role \"nosuch\"",
    )
    .await;
    fails(
        &node,
        &["role", "define", "x", "--permissions", "message.fly"],
        2,
        "message.send, message.delete",
    )
    .await;
    fails(
        &node,
        &[
            "role",
            "define",
            "Bad Name!",
            "--permissions",
            "message.pin",
            "--room",
            &room,
        ],
        2,
        "invalid role name: must be 1 to 32 characters",
    )
    .await;
    fails(
        &node,
        &[
            "role",
            "define",
            "owner",
            "--permissions",
            "message.pin",
            "--room",
            &room,
        ],
        4,
        "the owner role cannot change",
    )
    .await;
    for args in [
        &[
            "role",
            "define",
            "x",
            "--permissions",
            "message.pin",
            "--room",
            &room,
        ][..],
        &["role", "grant", "bob", "helper", "--room", &room],
        &["role", "revoke", "bob", "helper", "--room", &room],
    ] {
        let mut all = vec!["--as", "carol"];
        all.extend_from_slice(args);
        fails(&node, &all, 4, "does not hold role.manage").await;
    }
    fails(
        &node,
        &["role", "grant", "bob", "helper", "--room", NO_ROOM],
        3,
        "no room",
    )
    .await;

    // Node-wide roles: defined in the rooms there are and in later ones;
    // a grant reaches the rooms a user joins afterwards.
    fails(
        &node,
        &["role", "define", "", "--permissions", "message.pin"],
        2,
        "invalid role name",
    )
    .await;
    let out = ok(&node, &["role", "list"]).await;
    assert_eq!(out.trim(), "role  permissions  holders", "{out}");
    assert_eq!(node.json(&["role", "list"]).await, json!([]));
    fails(
        &node,
        &["role", "grant", "dave", "moderator"],
        3,
        "no node-wide role \"moderator\" (defined: none)",
    )
    .await;
    let out = ok(
        &node,
        &[
            "role",
            "define",
            "moderator",
            "--permissions",
            "user.mute,user.kick",
        ],
    )
    .await;
    assert!(out.contains("in 1 rooms now"), "{out}");
    let j = node
        .json(&["role", "define", "scribe", "--permissions", "message.pin"])
        .await;
    assert_eq!(j["ok"], true, "{j}");
    let out = ok(&node, &["role", "list"]).await;
    assert!(
        out.contains("moderator") && out.contains("user.mute,user.kick"),
        "{out}"
    );
    // In the room there is (rooms start with a `moderator` role of their
    // own, which the node-wide one replaces) and in a room made later.
    let later = create_room(&mut alice, "later", "public").await;
    for r in [&room, &later] {
        let roles = node.json(&["role", "list", "--room", r]).await;
        let permissions = |name: &str| {
            roles
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["role"] == name)
                .map(|x| x["permissions"].clone())
        };
        assert_eq!(
            permissions("moderator"),
            Some(json!("user.mute,user.kick")),
            "{roles}"
        );
        assert_eq!(permissions("scribe"), Some(json!("message.pin")), "{roles}");
    }
    let mut dave = register(&node, "dave", None).await.unwrap();
    let dave_id = node.user("dave");
    let out = ok(&node, &["role", "grant", "dave", "moderator"]).await;
    assert!(out.contains("in 0 rooms now"), "{out}");
    let j = node.json(&["role", "grant", "dave", "scribe"]).await;
    assert_eq!(j["ok"], true, "{j}");
    let listed = node.json(&["role", "list"]).await;
    let moderator = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "moderator")
        .unwrap();
    assert_eq!(moderator["holders"], dave_id.as_str(), "{listed}");
    call(&mut dave, "join_room", json!({"room": room}))
        .await
        .unwrap();
    let entry = members(&node, &room).await;
    let entry = member_entry(&entry, &dave_id).unwrap().to_string();
    assert!(
        entry.contains("moderator") && entry.contains("scribe"),
        "{entry}"
    );
    // The role works: Dave may mute.
    let out = ok(
        &node,
        &[
            "--as", "dave", "mute", "carol", "--room", &room, "--for", "1h",
        ],
    )
    .await;
    assert!(out.contains(&format!("as {dave_id}")), "{out}");
    assert_eq!(send(&mut carol, &room, "hello?").await, Err("muted".into()));
    ok(&node, &["--as", "dave", "unmute", "carol", "--room", &room]).await;
    send(&mut carol, &room, "hello again").await.unwrap();
    let out = ok(&node, &["role", "revoke", "dave", "moderator"]).await;
    assert!(
        out.contains(&format!("moderator revoked from {dave_id}: in 1 rooms now")),
        "{out}"
    );
    let j = node.json(&["role", "revoke", "dave", "scribe"]).await;
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(
        member_entry(&members(&node, &room).await, &dave_id),
        Some(dave_id.as_str())
    );
    let listed = node.json(&["role", "list"]).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["holders"] == ""),
        "{listed}"
    );
    fails(
        &node,
        &[
            "--as", "dave", "mute", "carol", "--room", &room, "--for", "1h",
        ],
        4,
        "does not hold user.mute",
    )
    .await;
    for verb in ["grant", "revoke"] {
        fails(
            &node,
            &["role", verb, "dave", "nosuch"],
            3,
            "no node-wide role \"nosuch\" (defined: moderator, scribe)",
        )
        .await;
    }

    // `mute` / `unmute`.
    assert!(send(&mut bob, &room, "before").await.is_ok());
    let out = ok(
        &node,
        &[
            "mute", "bob", "--room", &room, "--for", "2h", "--reason", "cool off",
        ],
    )
    .await;
    assert!(out.contains(&format!("muted {bob_id}")), "{out}");
    assert!(out.contains(&format!("as {alice_id}")), "{out}");
    assert_eq!(
        send(&mut bob, &room, "while muted").await,
        Err("muted".into())
    );
    assert!(
        member_entry(&members(&node, &room).await, &bob_id)
            .unwrap()
            .contains("muted until"),
    );
    let out = ok(&node, &["unmute", "bob", "--room", &room]).await;
    assert!(out.contains(&format!("unmuted {bob_id}")), "{out}");
    send(&mut bob, &room, "free again").await.unwrap();
    let j = node
        .json(&["mute", &bob_id, "--room", &room, "--for", "1h30m"])
        .await;
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(
        send(&mut bob, &room, "muted again").await,
        Err("muted".into())
    );
    let j = node.json(&["unmute", "bob", "--room", &room]).await;
    assert_eq!(j["ok"], true, "{j}");
    send(&mut bob, &room, "and free").await.unwrap();
    // Bad input.
    fails(
        &node,
        &["mute", "bob", "--room", &room, "--for", "2x"],
        2,
        "`2x` is not a duration",
    )
    .await;
    fails(&node, &["mute", "bob", "--room", &room], 2, "--for").await;
    fails(
        &node,
        &[
            "--as", "carol", "mute", "bob", "--room", &room, "--for", "1h",
        ],
        4,
        &format!("{carol_id} does not hold user.mute in {room}"),
    )
    .await;
    fails(
        &node,
        &["--as", "carol", "unmute", "bob", "--room", &room],
        4,
        "does not hold user.mute",
    )
    .await;
    fails(
        &node,
        &["mute", "bob", "--room", NO_ROOM, "--for", "1h"],
        3,
        "no room",
    )
    .await;
    fails(&node, &["unmute", "bob", "--room", NO_ROOM], 3, "no room").await;
    fails(
        &node,
        &[
            "mute", "bob", "--room", &room, "--for", "1h", "--as", "nobody",
        ],
        4,
        "does not hold user.mute",
    )
    .await;
    fails(&node, &["unmute", "bob", "--room", &room], 5, "not muted").await;
    fails(
        &node,
        &["mute", "alice", "--room", &room, "--for", "1h"],
        4,
        "the room's creator cannot be demoted or sanctioned",
    )
    .await;
    assert!(send(&mut bob, &room, "still free").await.is_ok());

    // `kick`: Bob is out, and may come back.
    let out = ok(
        &node,
        &["kick", "bob", "--room", &room, "--reason", "off topic"],
    )
    .await;
    assert!(out.contains(&format!("kicked {bob_id}")), "{out}");
    assert!(member_entry(&members(&node, &room).await, &bob_id).is_none());
    assert_eq!(
        send(&mut bob, &room, "am I in?").await,
        Err("forbidden".into())
    );
    call(&mut bob, "join_room", json!({"room": room}))
        .await
        .unwrap();
    send(&mut bob, &room, "back").await.unwrap();
    let j = node.json(&["kick", "bob", "--room", &room]).await;
    assert_eq!(j["ok"], true, "{j}");
    call(&mut bob, "join_room", json!({"room": room}))
        .await
        .unwrap();
    fails(
        &node,
        &["--as", "carol", "kick", "bob", "--room", &room],
        4,
        "does not hold user.kick",
    )
    .await;
    fails(&node, &["kick", "bob", "--room", NO_ROOM], 3, "no room").await;
    fails(
        &node,
        &["kick", "Bob!", "--room", &room],
        2,
        "is not a user",
    )
    .await;
    fails(
        &node,
        &["kick", "nobody", "--room", &room],
        5,
        "not a member",
    )
    .await;
    fails(
        &node,
        &["mute", "nobody", "--room", &room, "--for", "1h"],
        3,
        "is not a member",
    )
    .await;
    fails(&node, &["unban", "bob", "--room", &room], 5, "not banned").await;

    // `ban`: Bob is out and cannot rejoin; `unban` lets him.
    let out = ok(&node, &["ban", "bob", "--room", &room, "--reason", "spam"]).await;
    assert!(out.contains(&format!("banned {bob_id}")), "{out}");
    assert!(member_entry(&members(&node, &room).await, &bob_id).is_none());
    assert_eq!(
        call(&mut bob, "join_room", json!({"room": room}))
            .await
            .err(),
        Some("forbidden".into())
    );
    assert_eq!(
        send(&mut bob, &room, "let me in").await,
        Err("forbidden".into())
    );
    let out = ok(&node, &["unban", "bob", "--room", &room]).await;
    assert!(out.contains(&format!("unbanned {bob_id}")), "{out}");
    call(&mut bob, "join_room", json!({"room": room}))
        .await
        .unwrap();
    send(&mut bob, &room, "thanks").await.unwrap();
    let j = node.json(&["ban", "bob", "--room", &room]).await;
    assert_eq!(j["ok"], true, "{j}");
    let j = node.json(&["unban", "bob", "--room", &room]).await;
    assert_eq!(j["ok"], true, "{j}");
    fails(
        &node,
        &["--as", "carol", "ban", "bob", "--room", &room],
        4,
        "does not hold user.ban",
    )
    .await;
    fails(
        &node,
        &["--as", "carol", "unban", "bob", "--room", &room],
        4,
        "does not hold user.ban",
    )
    .await;
    fails(&node, &["ban", "bob", "--room", NO_ROOM], 3, "no room").await;
    fails(&node, &["unban", "bob", "--room", NO_ROOM], 3, "no room").await;
    // --as is for commands that post room events, and for local users.
    fails(
        &node,
        &["--as", "alice", "user", "list"],
        2,
        "--as applies only to commands that post room events",
    )
    .await;
    let far = confab_wire::NodeKey::from_secret(&[7; 32]).node_id();
    let foreign = format!("@eve:{far}");
    fails(
        &node,
        &["--as", &foreign, "kick", "bob", "--room", &room],
        2,
        "belongs to another node",
    )
    .await;

    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_pins_and_redactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), "rooms", &[]).await;
    let (mut alice, mut joined, room) = room_with(&node, "general", &["bob"]).await;
    let mut bob = joined.pop().unwrap();
    let first = send(&mut alice, &room, "first").await.unwrap();
    let second = send(&mut alice, &room, "second").await.unwrap();
    let bobs = send(&mut bob, &room, "my phone number is 555-0100")
        .await
        .unwrap();
    let quiet = create_room(&mut alice, "quiet", "private").await;

    // `room list` and `room show`.
    let out = ok(&node, &["room", "list"]).await;
    assert!(out.lines().next().unwrap().contains("visibility"), "{out}");
    assert!(out.contains(&room) && out.contains("general"), "{out}");
    assert!(out.contains(&quiet) && out.contains("private"), "{out}");
    let list = node.json(&["room", "list"]).await;
    let general = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"] == room.as_str())
        .unwrap();
    assert_eq!(general["name"], "general", "{list}");
    assert_eq!(general["members"], 2, "{list}");
    assert_eq!(general["archived"], false, "{list}");
    let out = ok(&node, &["room", "show", &room]).await;
    assert_eq!(field(&out, "name"), "general");
    assert_eq!(field(&out, "creator"), node.user("alice"));
    assert!(field(&out, "members").contains(&node.user("bob")), "{out}");
    let shown = node.json(&["room", "show", &room]).await;
    assert_eq!(shown["visibility"], "public", "{shown}");
    assert_eq!(shown["pins"], 0, "{shown}");
    assert_eq!(shown["may_post"], true, "{shown}");
    fails(&node, &["room", "show", NO_ROOM], 3, "no room").await;
    fails(&node, &["room", "show", NO_ROOM], 3, "room list").await;
    fails(&node, &["room", "show", "general"], 2, "is not a room id").await;

    // `pin` / `unpin`: `room_info` over the socket lists the pin.
    let out = ok(&node, &["pin", &first, "--room", &room]).await;
    assert!(out.contains(&format!("pinned {first}")), "{out}");
    let info = bob.ok("room_info", json!({"room": room})).await;
    assert_eq!(info["pins"], json!([first]), "{info}");
    let j = node.json(&["pin", &second, "--room", &room]).await;
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(node.json(&["room", "show", &room]).await["pins"], 2);
    fails(&node, &["pin", &first, "--room", &room], 5, "pinned").await;
    fails(
        &node,
        &["pin", NO_EVENT, "--room", &room],
        3,
        "no such message in this room",
    )
    .await;
    fails(
        &node,
        &["pin", "abc", "--room", &room],
        2,
        "is not an event id",
    )
    .await;
    fails(&node, &["pin", &first, "--room", NO_ROOM], 3, "no room").await;
    fails(
        &node,
        &["--as", "bob", "pin", &bobs, "--room", &room],
        4,
        "does not hold message.pin",
    )
    .await;
    let out = ok(&node, &["unpin", &first, "--room", &room]).await;
    assert!(out.contains(&format!("unpinned {first}")), "{out}");
    let info = bob.ok("room_info", json!({"room": room})).await;
    assert_eq!(info["pins"], json!([second]), "{info}");
    let j = node.json(&["unpin", &second, "--room", &room]).await;
    assert_eq!(j["ok"], true, "{j}");
    let info = bob.ok("room_info", json!({"room": room})).await;
    assert_eq!(info["pins"], json!([]), "{info}");
    fails(
        &node,
        &["unpin", &first, "--room", &room],
        3,
        "the message is not pinned",
    )
    .await;
    fails(
        &node,
        &["--as", "bob", "unpin", &first, "--room", &room],
        4,
        "does not hold message.pin",
    )
    .await;
    fails(
        &node,
        &["unpin", "abc", "--room", &room],
        2,
        "is not an event id",
    )
    .await;

    // `redact`: the message shows as deleted, with the reason.
    let out = ok(
        &node,
        &[
            "redact",
            &bobs,
            "--room",
            &room,
            "--reason",
            "personal data",
        ],
    )
    .await;
    assert!(out.contains(&format!("deleted {bobs}")), "{out}");
    let page = bob.ok("history", json!({"room": room, "limit": 50})).await;
    let item = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == bobs.as_str())
        .cloned()
        .unwrap();
    assert_eq!(item["redacted"], "personal data", "{item}");
    assert_eq!(item["body"], Value::Null, "{item}");
    let export = node.json(&["user", "export", "bob"]).await;
    let m = export["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["event"] == bobs.as_str())
        .cloned()
        .unwrap();
    assert_eq!(m["deleted"], true, "{export}");
    assert_eq!(m["body"], Value::Null, "{export}");
    let j = node.json(&["redact", &second, "--room", &room]).await;
    assert_eq!(j["ok"], true, "{j}");
    let page = bob.ok("history", json!({"room": room, "limit": 50})).await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == second.as_str() && i["redacted"] == ""),
        "{page}"
    );
    fails(
        &node,
        &["--as", "bob", "redact", &first, "--room", &room],
        4,
        "does not hold message.delete",
    )
    .await;
    fails(
        &node,
        &["redact", NO_EVENT, "--room", &room],
        3,
        "no such message in this room",
    )
    .await;
    fails(&node, &["redact", &first, "--room", NO_ROOM], 3, "no room").await;
    fails(
        &node,
        &["redact", "abc", "--room", &room],
        2,
        "is not an event id",
    )
    .await;

    // `room archive`: sends are refused with `archived`.
    fails(
        &node,
        &["--as", "bob", "room", "archive", &room],
        4,
        "does not hold room.settings",
    )
    .await;
    fails(&node, &["room", "archive", NO_ROOM], 3, "no room").await;
    let out = ok(&node, &["room", "archive", &room]).await;
    assert!(out.contains(&format!("archived {room}")), "{out}");
    fails(&node, &["room", "archive", &room], 5, "already archived").await;
    assert_eq!(
        send(&mut alice, &room, "hello?").await,
        Err("archived".into())
    );
    assert_eq!(
        send(&mut bob, &room, "hello?").await,
        Err("archived".into())
    );
    assert_eq!(node.json(&["room", "show", &room]).await["archived"], true);
    let list = node.json(&["room", "list"]).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"] == room.as_str() && r["archived"] == true),
        "{list}"
    );
    send(&mut alice, &quiet, "still open").await.unwrap();
    let j = node.json(&["room", "archive", &quiet]).await;
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(
        send(&mut alice, &quiet, "now?").await,
        Err("archived".into())
    );

    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), "reports", &[]).await;
    let (mut alice, mut joined, room) = room_with(&node, "market", &["bob"]).await;
    let mut bob = joined.pop().unwrap();
    let spam = send(&mut bob, &room, "buy cheap watches").await.unwrap();
    let other = send(&mut bob, &room, "or sunglasses").await.unwrap();

    // Nothing yet.
    assert_eq!(node.json(&["reports", "list"]).await, json!([]));
    let out = ok(&node, &["reports", "list"]).await;
    assert!(out.starts_with("id"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");

    // Alice reports over the socket; the report is listed.
    alice
        .ok(
            "report",
            json!({"room": room, "event": spam, "reason": "spam"}),
        )
        .await;
    alice
        .ok(
            "report",
            json!({"room": room, "event": other, "reason": "more spam"}),
        )
        .await;
    let list = node.json(&["reports", "list"]).await;
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list}");
    let first = rows.iter().find(|r| r["event"] == spam.as_str()).unwrap();
    assert_eq!(first["reason"], "spam", "{list}");
    assert_eq!(first["reporter"], node.user("alice"), "{list}");
    assert_eq!(first["room"], room.as_str(), "{list}");
    assert_eq!(first["resolution"], Value::Null, "{list}");
    let id = first["id"].as_u64().unwrap().to_string();
    let second_id = rows.iter().find(|r| r["event"] == other.as_str()).unwrap()["id"]
        .as_u64()
        .unwrap()
        .to_string();
    let out = ok(&node, &["reports", "list"]).await;
    assert!(out.contains(&spam) && out.contains("spam"), "{out}");

    // `reports show`: the report and the message's text.
    let out = ok(&node, &["reports", "show", &id]).await;
    assert_eq!(field(&out, "message"), "buy cheap watches");
    assert_eq!(field(&out, "author"), node.user("bob"));
    assert_eq!(field(&out, "reason"), "spam");
    assert_eq!(field(&out, "message_state"), "as posted");
    let shown = node.json(&["reports", "show", &id]).await;
    assert_eq!(shown["message"], "buy cheap watches", "{shown}");
    assert_eq!(shown["event"], spam.as_str(), "{shown}");
    // A deleted message shows as such.
    ok(&node, &["redact", &other, "--room", &room]).await;
    let shown = node.json(&["reports", "show", &second_id]).await;
    assert_eq!(shown["message_state"], "deleted", "{shown}");
    assert_eq!(shown["message"], Value::Null, "{shown}");

    // `reports resolve`: out of the open list, kept in --all.
    let out = ok(
        &node,
        &["reports", "resolve", &id, "--note", "banned the spammer"],
    )
    .await;
    assert!(out.contains(&format!("report #{id} resolved")), "{out}");
    // Once resolved, the note stands.
    fails(
        &node,
        &["reports", "resolve", &id, "--note", "second thoughts"],
        5,
        "already resolved",
    )
    .await;
    let open = node.json(&["reports", "list"]).await;
    assert!(
        open.as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"].as_u64().unwrap().to_string() != id),
        "{open}"
    );
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    let all = node.json(&["reports", "list", "--all"]).await;
    let resolved = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"].as_u64().unwrap().to_string() == id)
        .unwrap();
    assert_eq!(resolved["resolution"], "banned the spammer", "{all}");
    let out = ok(&node, &["reports", "list", "--all"]).await;
    assert!(out.contains("banned the spammer"), "{out}");
    assert_eq!(
        node.json(&["reports", "show", &id]).await["resolution"],
        "banned the spammer"
    );
    let j = node
        .json(&["reports", "resolve", &second_id, "--note", "deleted it"])
        .await;
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(node.json(&["reports", "list"]).await, json!([]));
    assert_eq!(
        node.json(&["reports", "list", "--all"])
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The reporter's export carries their reports.
    let export = node.json(&["user", "export", "alice"]).await;
    assert_eq!(export["reports"].as_array().unwrap().len(), 2, "{export}");

    // Bad input.
    fails(
        &node,
        &["reports", "show", "987654321"],
        3,
        "no report #987654321",
    )
    .await;
    fails(
        &node,
        &["reports", "show", "987654321"],
        3,
        "reports list --all",
    )
    .await;
    fails(
        &node,
        &["reports", "resolve", "987654321", "--note", "x"],
        3,
        "no report #987654321",
    )
    .await;
    fails(&node, &["reports", "resolve", &id], 2, "--note").await;
    fails(&node, &["reports", "show", "twelve"], 2, "twelve").await;
    // The audit log has the resolutions.
    let audit = node.json(&["audit"]).await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["command"] == "reports resolve"
                && e["detail"].as_str().unwrap().contains("banned the spammer")),
        "{audit}"
    );

    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_status_audit_config_and_backups() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Node::start(dir.path(), "a", &[]).await;
    let mut b = Node::start(dir.path(), "b", &[]).await;
    let (a_id, b_id) = (a.id.to_string(), b.id.to_string());

    // `status`.
    let out = ok(&a, &["status"]).await;
    assert_eq!(field(&out, "node"), a_id);
    assert_eq!(field(&out, "name"), "a");
    assert!(field(&out, "version").starts_with("confab-node "), "{out}");
    let status = a.json(&["status"]).await;
    assert_eq!(status["node"], a_id.as_str(), "{status}");
    assert_eq!(status["users"], 0, "{status}");
    assert_eq!(status["peers"], 0, "{status}");
    assert_eq!(status["recovering"], false, "{status}");

    // `peer list/add/remove`.
    assert_eq!(a.json(&["peer", "list"]).await, json!([]));
    let out = ok(&a, &["peer", "add", &b_id, &b.federation.to_string()]).await;
    assert!(
        out.contains(&format!("peer {b_id} at {} added", b.federation)),
        "{out}"
    );
    let j = b
        .json(&["peer", "add", &a_id, &a.federation.to_string()])
        .await;
    assert_eq!(j["ok"], true, "{j}");
    let out = ok(&a, &["peer", "list"]).await;
    assert!(
        out.contains(&b_id) && out.contains(&b.federation.to_string()),
        "{out}"
    );
    let peers = a.json(&["peer", "list"]).await;
    assert_eq!(peers.as_array().unwrap().len(), 1, "{peers}");
    assert_eq!(peers[0]["node"], b_id.as_str(), "{peers}");
    assert_eq!(peers[0]["addr"], b.federation.to_string(), "{peers}");
    assert_eq!(peers[0]["equivocated_in"], 0, "{peers}");
    until("A connects to B", || async {
        a.json(&["peer", "list"]).await[0]["state"] == "connected"
    })
    .await;
    let status = a.json(&["status"]).await;
    assert_eq!(status["peers"], 1, "{status}");
    assert_eq!(status["peers_connected"], 1, "{status}");
    fails(
        &a,
        &["peer", "add", &a_id, "127.0.0.1:4433"],
        2,
        "this node's own id",
    )
    .await;
    fails(
        &a,
        &["peer", "add", "nonsense", "127.0.0.1:4433"],
        2,
        "is not a node id",
    )
    .await;
    fails(
        &a,
        &["peer", "add", &b_id, "nohost"],
        2,
        "is not an address",
    )
    .await;
    let stranger = Node::start(dir.path(), "c", &[]).await;
    let c_id = stranger.id.to_string();
    fails(
        &a,
        &["peer", "remove", &c_id],
        3,
        "is not a peer of this node",
    )
    .await;
    fails(&a, &["peer", "remove", &c_id], 3, "peer list").await;
    let out = ok(&a, &["peer", "remove", &b_id]).await;
    assert!(out.contains(&format!("peer {b_id} removed")), "{out}");
    assert_eq!(a.json(&["peer", "list"]).await, json!([]));
    assert_eq!(a.json(&["status"]).await["peers"], 0);
    let j = b.json(&["peer", "remove", &a_id]).await;
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(b.json(&["peer", "list"]).await, json!([]));

    // `config get/set`.
    let out = ok(&a, &["config", "get"]).await;
    for key in [
        "registration",
        "welcome_bot",
        "max_upload_bytes",
        "messages_per_minute",
    ] {
        assert!(out.contains(key), "{out}");
    }
    let all = a.json(&["config", "get"]).await;
    assert_eq!(all.as_array().unwrap().len(), 4, "{all}");
    let out = ok(&a, &["config", "get", "welcome_bot"]).await;
    assert_eq!(field(&out, "value"), "off");
    let j = a
        .json(&["config", "set", "max_upload_bytes", "25MiB"])
        .await;
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(
        a.json(&["config", "get", "max_upload_bytes"]).await["value"],
        "26214400"
    );
    let out = ok(&a, &["config", "set", "messages_per_minute", "600"]).await;
    assert!(out.contains("messages_per_minute = 600"), "{out}");
    let msg = fails(&a, &["config", "get", "colour"], 3, "no setting \"colour\"").await;
    assert!(msg.contains("registration, welcome_bot"), "{msg}");
    fails(
        &a,
        &["config", "set", "colour", "red"],
        3,
        "the settings are",
    )
    .await;
    fails(
        &a,
        &["config", "set", "registration", "sometimes"],
        2,
        "open, invite or closed",
    )
    .await;
    fails(
        &a,
        &["config", "set", "messages_per_minute", "0"],
        2,
        "from 1 to 100000",
    )
    .await;
    fails(&a, &["config", "set", "registration"], 2, "VALUE").await;

    // `audit`: the changes, with who made them; reads are not logged.
    let out = ok(&a, &["audit"]).await;
    assert!(out.lines().next().unwrap().contains("actor"), "{out}");
    assert!(
        out.contains("peer add") && out.contains("config set"),
        "{out}"
    );
    let audit = a.json(&["audit"]).await;
    let entries = audit.as_array().unwrap();
    let find = |command: &str, detail: &str| {
        entries
            .iter()
            .find(|e| e["command"] == command && e["detail"].as_str().unwrap().contains(detail))
            .unwrap_or_else(|| panic!("no {command} {detail} in {audit}"))
            .clone()
    };
    let added = find("peer add", &b_id);
    assert_eq!(added["outcome"], "ok", "{added}");
    let actor = added["actor"].as_str().unwrap();
    assert!(actor.contains("socket"), "{added}");
    assert_eq!(find("peer remove", &b_id)["outcome"], "ok");
    assert_eq!(
        find("config set", "max_upload_bytes=25MiB")["outcome"],
        "ok"
    );
    assert_eq!(
        find("config set", "messages_per_minute=600")["actor"],
        actor
    );
    assert_eq!(
        find("config set", "messages_per_minute=0")["outcome"],
        "BadRequest"
    );
    assert!(
        entries
            .iter()
            .all(|e| e["command"] != "status" && e["command"] != "peer list"),
        "{audit}"
    );
    let last = a.json(&["audit", "--limit", "1"]).await;
    assert_eq!(last.as_array().unwrap().len(), 1, "{last}");
    fails(&a, &["audit", "--limit", "0"], 2, "--limit").await;

    // `backup create/verify`, and the node's restore.
    let mut alice = register(&a, "alice", None).await.unwrap();
    let room = create_room(&mut alice, "kept", "public").await;
    send(&mut alice, &room, "in the backup").await.unwrap();
    let file = dir.path().join("a.confab");
    let file_s = file.to_str().unwrap();
    let out = ok(&a, &["backup", "create", "--out", file_s]).await;
    assert_eq!(field(&out, "file"), file_s);
    assert!(out.contains("(verified)"), "{out}");
    assert_eq!(mode(&file), 0o600, "the backup holds the node's key");
    fails(
        &a,
        &["backup", "create", "--out", file_s],
        5,
        "already exists",
    )
    .await;
    let j = a
        .json(&["backup", "create", "--out", file_s, "--force"])
        .await;
    assert_eq!(j["file"], file_s, "{j}");
    assert!(j["entries"].as_u64().unwrap() > 0, "{j}");
    fails(&a, &["backup", "create"], 2, "--out").await;
    let out = ctl_raw(&["backup", "verify", file_s]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("is whole"), "{out:?}");
    let verified = ctl_raw(&["--json", "backup", "verify", file_s]).await;
    let v: Value = serde_json::from_str(&verified.stdout).unwrap();
    assert_eq!(v["node"], a.id.to_string(), "{v}");
    // A truncated copy fails verification.
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.confab");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    fails_raw(
        &["backup", "verify", cut.to_str().unwrap()],
        7,
        "failed verification",
    )
    .await;
    let missing = dir.path().join("missing.confab");
    fails_raw(
        &["backup", "verify", missing.to_str().unwrap()],
        3,
        "no backup file at",
    )
    .await;
    // Restore (the node's own command): into a new directory; never into
    // a non-empty one; nothing left behind by a damaged file.
    use confab_node::store::restore::restore;
    let target = dir.path().join("restored");
    let r = restore(&file, &target).unwrap();
    assert_eq!(r.header.node, a.id);
    assert!(r.events > 0, "{r:?}");
    assert!(target.join("node.key").exists());
    let e = restore(&file, &target).unwrap_err().to_string();
    assert!(e.contains("is not empty"), "{e}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    restore(&file, &empty).unwrap();
    let fresh = dir.path().join("fresh");
    let e = restore(&cut, &fresh).unwrap_err().to_string();
    assert!(e.contains("not a whole backup"), "{e}");
    assert!(!fresh.exists(), "a failed restore left {}", fresh.display());
    // The restored store holds the room.
    let mut config = common::config(dir.path(), "a", &[]);
    config.node.data_dir = target.clone();
    a.stop().await;
    let mut restored = Node::start_with("restored", config).await;
    assert_eq!(restored.id, a.id);
    // With the settings changed before the backup.
    assert_eq!(
        restored.json(&["config", "get", "max_upload_bytes"]).await["value"],
        "26214400"
    );
    let rooms = restored.json(&["room", "list"]).await;
    assert!(
        rooms
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"] == room.as_str()),
        "{rooms}"
    );
    restored.stop().await;

    b.stop().await;
    let mut stranger = stranger;
    stranger.stop().await;
}

/// Every command path, for `--help`.
const COMMANDS: &[&[&str]] = &[
    &["status"],
    &["audit"],
    &["role"],
    &["role", "list"],
    &["role", "define"],
    &["role", "grant"],
    &["role", "revoke"],
    &["mute"],
    &["unmute"],
    &["kick"],
    &["ban"],
    &["unban"],
    &["pin"],
    &["unpin"],
    &["redact"],
    &["reports"],
    &["reports", "list"],
    &["reports", "show"],
    &["reports", "resolve"],
    &["user"],
    &["user", "create"],
    &["user", "disable"],
    &["user", "enable"],
    &["user", "reset-password"],
    &["user", "list"],
    &["user", "export"],
    &["room"],
    &["room", "list"],
    &["room", "show"],
    &["room", "archive"],
    &["peer"],
    &["peer", "list"],
    &["peer", "add"],
    &["peer", "remove"],
    &["config"],
    &["config", "get"],
    &["config", "set"],
    &["invite"],
    &["invite", "create"],
    &["backup"],
    &["backup", "create"],
    &["backup", "verify"],
    &["completions"],
    &["id"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_completions_and_transports() {
    // Top-level help: the exit codes and examples.
    let out = ctl_raw(&["--help"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    for text in [
        "Exit codes:",
        "0  ok",
        "3  not found",
        "6  node unreachable or unavailable",
        "7  a backup file failed verification",
        "Examples:",
        "  confabctl status",
    ] {
        assert!(out.stdout.contains(text), "no {text:?} in {}", out.stdout);
    }
    let version = ctl_raw(&["--version"]).await;
    assert_eq!(version.code, 0, "{version:?}");
    assert!(version.stdout.starts_with("confabctl "), "{version:?}");

    // Every command's help: exit 0, an example line of that command.
    for path in COMMANDS {
        let mut args = path.to_vec();
        args.push("--help");
        let out = ctl_raw(&args).await;
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        let example = format!("confabctl {}", path.join(" "));
        assert!(
            out.stdout.contains("Example"),
            "{args:?} shows no example: {}",
            out.stdout
        );
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&example)),
            "{args:?} shows no example line `{example} …`: {}",
            out.stdout
        );
    }
    let out = ctl_raw(&["help", "mute"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("confabctl mute bob"), "{out:?}");

    // Usage errors: exit 2, as text and as JSON.
    fails_raw(&["frobnicate"], 2, "frobnicate").await;
    let out = ctl_raw(&["user"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("Usage: confabctl user") && out.stderr.contains("reset-password"),
        "{out:?}"
    );
    fails_raw(&["completions", "nosh"], 2, "nosh").await;
    fails_raw(
        &["completions", "bash", "--as", "alice"],
        2,
        "--as applies only",
    )
    .await;

    // `completions`.
    let out = ctl_raw(&["completions", "bash"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("_confabctl()"), "{}", out.stdout);
    assert!(
        out.stdout.contains("complete -F _confabctl"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("reset-password"), "{}", out.stdout);
    for shell in ["zsh", "fish"] {
        let out = ctl_raw(&["completions", shell]).await;
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.contains("confabctl"), "{out:?}");
    }

    // `id`: makes a key, then reads it.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("keys").join("admin.key");
    let key_s = key.to_str().unwrap();
    let out = ctl_raw(&["id", "--key", key_s]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let admin_id = out.stdout.trim().to_string();
    assert_eq!(admin_id.len(), 52, "{out:?}");
    assert!(out.stderr.contains("made a new admin key"), "{out:?}");
    let again = ctl_raw(&["--json", "id", "--key", key_s]).await;
    let v: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(v["id"], admin_id.as_str(), "{v}");
    assert_eq!(v["created"], false, "{v}");
    fails_raw(&["id"], 2, "needs --key FILE").await;

    // Transport errors.
    let gone = dir.path().join("no-node").join("admin.sock");
    let gone_s = gone.to_str().unwrap();
    let args = ["--socket", gone_s, "status"];
    fails_raw(&args, 6, &format!("no admin socket at {gone_s}")).await;
    let out = ctl_raw(&["status"]).await;
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("./data/admin.sock"), "{out:?}");
    fails_raw(
        &["--node", "127.0.0.1:1", "status"],
        2,
        "--node needs --node-id",
    )
    .await;
    fails_raw(
        &["--node", "127.0.0.1:1", "--node-id", &admin_id, "status"],
        2,
        "--node needs --key FILE",
    )
    .await;
    fails_raw(&["--node-id", &admin_id, "status"], 2, "goes with --node").await;
    fails_raw(&["--key", key_s, "status"], 2, "goes with --node").await;
    fails_raw(&["--node", "nohost", "status"], 2, "is not an address").await;

    // QUIC with a pinned key works; another key is refused.
    let mut config = common::config(dir.path(), "q", &[]);
    config.admin.keys = vec![admin_id.parse().unwrap()];
    drop(confab_node::runner::open_node(&config).unwrap());
    let mut node = Node::start_with("q", config).await;
    let addr = node
        .running
        .as_ref()
        .unwrap()
        .admin_addr
        .unwrap()
        .to_string();
    let node_id = node.id.to_string();
    let quic = ["--node", &addr, "--node-id", &node_id, "--key", key_s];
    let mut args = quic.to_vec();
    args.extend(["--json", "status"]);
    let out = ctl_raw(&args).await;
    assert_eq!(out.code, 0, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["node"], node_id.as_str(), "{v}");
    let mut args = quic.to_vec();
    args.extend(["config", "set", "welcome_bot", "off"]);
    assert_eq!(ctl_raw(&args).await.code, 0);
    let audit = node.json(&["audit"]).await;
    assert!(
        audit[0]["actor"].as_str().unwrap().starts_with("key "),
        "{audit}"
    );
    let stranger = dir.path().join("stranger.key");
    let stranger_s = stranger.to_str().unwrap();
    assert_eq!(ctl_raw(&["id", "--key", stranger_s]).await.code, 0);
    fails_raw(
        &[
            "--node",
            &addr,
            "--node-id",
            &node_id,
            "--key",
            stranger_s,
            "status",
        ],
        6,
        "refused",
    )
    .await;
    let missing_key = dir.path().join("absent.key");
    fails_raw(
        &[
            "--node",
            &addr,
            "--node-id",
            &node_id,
            "--key",
            missing_key.to_str().unwrap(),
            "status",
        ],
        2,
        "no key file at",
    )
    .await;
    assert!(!missing_key.exists());
    node.stop().await;
}
