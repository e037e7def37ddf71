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
