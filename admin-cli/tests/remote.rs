//! confabctl over QUIC: an admin key pinned in the node's `[admin] keys`
//! is let in and named in the audit log; any other key is refused. And
//! settings changed by `config set` survive a restart of the node.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Node, ctl_raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_admin_key_reaches_the_node_over_quic_and_no_other_does() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("admin.key");
    let key_s = key.to_str().unwrap().to_string();
    let made = ctl_raw(&["id", "--key", &key_s]).await;
    assert_eq!(made.code, 0, "{made:?}");
    let admin_id = made.stdout.trim().to_string();
    // The same id again: the key is kept, not remade.
    assert_eq!(
        ctl_raw(&["id", "--key", &key_s]).await.stdout.trim(),
        admin_id
    );

    let mut config = common::config(dir.path(), "q", &[]);
    config.admin.keys = vec![admin_id.parse().unwrap()];
    drop(confab_node::runner::open_node(&config).unwrap());
    let mut node = Node::start_with("q", config).await;
    let addr = node
        .running
        .as_ref()
        .and_then(|r| r.admin_addr)
        .expect("the QUIC admin endpoint runs when a key is pinned")
        .to_string();
    let node_id = node.id.to_string();

    let ok = ctl_raw(&[
        "--json",
        "--node",
        &addr,
        "--node-id",
        &node_id,
        "--key",
        &key_s,
        "user",
        "create",
        "carol",
    ])
    .await;
    assert_eq!(ok.code, 0, "{ok:?}");
    let audit = node.json(&["audit"]).await;
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["command"] == "user create")
        .unwrap_or_else(|| panic!("{audit}"))
        .clone();
    assert!(
        entry["actor"].as_str().unwrap().starts_with("key "),
        "the audit names the admin key: {entry}"
    );

    // A key the node does not pin gets nowhere.
    let stranger = dir.path().join("stranger.key");
    let stranger_s = stranger.to_str().unwrap().to_string();
    assert_eq!(ctl_raw(&["id", "--key", &stranger_s]).await.code, 0);
    let refused = ctl_raw(&[
        "--node",
        &addr,
        "--node-id",
        &node_id,
        "--key",
        &stranger_s,
        "status",
    ])
    .await;
    assert_eq!(refused.code, 6, "{refused:?}");
    // Nor does a client that expects another node at that address.
    let other = confab_wire::NodeKey::from_secret(&[9; 32])
        .node_id()
        .to_string();
    let wrong = ctl_raw(&[
        "--node",
        &addr,
        "--node-id",
        &other,
        "--key",
        &key_s,
        "status",
    ])
    .await;
    assert_eq!(wrong.code, 6, "{wrong:?}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_settings_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), "r", &[]).await;
    assert_eq!(
        node.ctl(&["config", "set", "welcome_bot", "off"])
            .await
            .code,
        0
    );
    assert_eq!(
        node.ctl(&["config", "set", "max_upload_bytes", "2MiB"])
            .await
            .code,
        0
    );
    let config = node.config.clone();
    node.stop().await;
    // The same data directory, in the same process: the stopped node let
    // go of its store.
    let mut again = Node::start_with("r", config).await;
    let got = again.json(&["config", "get"]).await;
    let value = |k: &str| {
        got.as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == k)
            .map(|r| r["value"].clone())
    };
    assert_eq!(value("welcome_bot"), Some("off".into()), "{got}");
    assert_eq!(
        value("max_upload_bytes"),
        Some((2u64 << 20).to_string().into()),
        "{got}"
    );
    again.stop().await;
}

/// Sends `bytes` to the admin socket and returns what came back until the
/// node closed or answered request 999 (the last a test sends).
async fn exchange(socket: &std::path::Path, bytes: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // A guard against a hang, not a timing: the node answers or closes.
        let n = tokio::time::timeout(std::time::Duration::from_secs(30), s.read(&mut buf))
            .await
            .expect("the node neither answered nor closed")
            .unwrap();
        if n == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..n]);
        if replies(&got).iter().any(|r| r.id == 999) {
            return got;
        }
    }
}

/// The admin replies in `bytes`.
fn replies(bytes: &[u8]) -> Vec<confab_wire::admin::AdminReply> {
    let mut d = confab_wire::FrameDecoder::default();
    d.push(bytes);
    let mut out = Vec::new();
    while let Ok(Some(f)) = d.next_frame() {
        if let Ok(confab_wire::admin::AdminMessage::Reply(r)) =
            confab_wire::admin::decode_admin_frame(&f)
        {
            out.push(r);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bytes_on_the_admin_socket_get_refusals_and_change_nothing() {
    use confab_wire::admin::{
        AdminCommand, AdminErrorCode, AdminHello, AdminMessage, AdminRequest,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), "h", &[]).await;
    let hello = AdminMessage::Hello(AdminHello {
        version: confab_wire::admin::ADMIN_PROTOCOL_VERSION,
        client: "test".into(),
    })
    .to_frame_bytes()
    .unwrap();
    let status = |id| {
        AdminMessage::Request(AdminRequest {
            id,
            trace: confab_wire::fed::TraceId(2),
            act_as: None,
            command: AdminCommand::Status,
        })
        .to_frame_bytes()
        .unwrap()
    };
    let create = |id| {
        AdminMessage::Request(AdminRequest {
            id,
            trace: confab_wire::fed::TraceId(1),
            act_as: None,
            command: AdminCommand::UserCreate {
                name: "mallory".into(),
                password: "correct horse".into(),
                display_name: None,
            },
        })
        .to_frame_bytes()
        .unwrap()
    };
    // A request before the hello: refused, nothing done.
    let r = replies(&exchange(&node.socket, &create(5)).await);
    assert!(
        matches!(&r[..], [x] if x.result.as_ref().is_err_and(|e| e.code == AdminErrorCode::BadRequest)),
        "{r:?}"
    );
    // A length prefix of 4 GiB: refused before anything is buffered.
    let r = replies(&exchange(&node.socket, &[0xff, 0xff, 0xff, 0xff, 0x63]).await);
    assert!(matches!(&r[..], [x] if x.result.is_err()), "{r:?}");
    // After the hello: a request body that does not decode gets an error
    // naming its id; garbage and an unknown type byte too.
    let mut bad = hello.clone();
    let mut body = vec![0x63];
    body.extend_from_slice(&[42, 0xfe, 0xfe, 0xfe]);
    bad.extend_from_slice(&(body.len() as u32).to_be_bytes());
    bad.extend_from_slice(&body);
    bad.extend_from_slice(&[0, 0, 0, 3, 0x7f, 1, 2]);
    // Then a good request: the connection still works after all that.
    bad.extend_from_slice(&status(999));
    let r = replies(&exchange(&node.socket, &bad).await);
    assert!(r.iter().any(|x| x.id == 42 && x.result.is_err()), "{r:?}");
    assert_eq!(r.iter().filter(|x| x.result.is_err()).count(), 2, "{r:?}");
    assert!(r.iter().any(|x| x.id == 999 && x.result.is_ok()), "{r:?}");
    // A version this node does not speak.
    let old = AdminMessage::Hello(AdminHello {
        version: 99,
        client: "old".into(),
    })
    .to_frame_bytes()
    .unwrap();
    let r = replies(&exchange(&node.socket, &old).await);
    assert!(
        matches!(&r[..], [x] if x.result.as_ref().is_err_and(|e| e.message.contains("protocol"))),
        "{r:?}"
    );
    // Nothing of that made an account; the node still serves.
    let users = node.json(&["user", "list"]).await;
    assert_eq!(users, serde_json::json!([]), "{users}");
    let mut ok = hello;
    ok.extend_from_slice(&create(6));
    ok.extend_from_slice(&status(999));
    let r = replies(&exchange(&node.socket, &ok).await);
    assert!(r.iter().any(|x| x.id == 6 && x.result.is_ok()), "{r:?}");
    node.stop().await;
}
