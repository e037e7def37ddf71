//! Loading `node.toml`: defaults, the shipped file, and errors that name the
//! file and the key.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use confab_node::Error;
use confab_node::config::{NodeConfig, RegistrationMode};
use confab_wire::NodeKey;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/node.toml");

fn id(n: u8) -> String {
    NodeKey::from_secret(&[n; 32]).node_id().to_string()
}

/// Parses `text` as if it were `config/test.toml`; returns the error's key
/// and its full message.
fn reject(text: &str) -> (String, String) {
    match NodeConfig::from_toml(text, Path::new("config/test.toml")) {
        Ok(config) => panic!("accepted:\n{text}\nas {config:?}"),
        Err(err @ Error::Config { .. }) => {
            let message = err.to_string();
            println!("{message}");
            assert!(message.starts_with("config/test.toml: "), "{message}");
            let Error::Config { key, .. } = err else {
                unreachable!()
            };
            (key, message)
        }
        Err(other) => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn no_file_gives_the_defaults() {
    let config = NodeConfig::load(None).unwrap();
    assert_eq!(config, NodeConfig::default());
    assert_eq!(config.node.name, "local");
    assert_eq!(config.node.data_dir, PathBuf::from("./data"));
    assert!(config.federation.listen.ip().is_loopback());
    assert!(config.client.listen.ip().is_loopback());
    assert!(config.gateway.listen.ip().is_loopback());
    assert!(config.metrics.listen.ip().is_loopback());
    assert_eq!(config.limits.max_upload_bytes, 25 * 1024 * 1024);
    assert_eq!(config.registration.mode, RegistrationMode::Open);
}

#[test]
fn shipped_file_parses_and_equals_the_defaults() {
    // The shipped file documents every key at its default value.
    let config = NodeConfig::load(Some(Path::new(SHIPPED))).unwrap();
    assert_eq!(config, NodeConfig::default());
}

#[test]
fn a_full_file_parses() {
    let text = format!(
        r#"
[node]
name = "acme-2"
data_dir = "/var/lib/confab"

[federation]
listen = "0.0.0.0:7700"
peers = [
  {{ node = "{b}", addr = "peer.example.org:7700", name = "beta" }},
  {{ node = "{c}", addr = "[::1]:7702" }},
]

[client]
listen = "[::]:7701"
gateways = ["{d}"]

[gateway]
enabled = false
listen = "0.0.0.0:8080"

[limits]
max_upload_bytes = 1024
messages_per_minute = 5

[registration]
mode = "invite"

[log]
level = "info,confab_node=debug"
json = true

[metrics]
enabled = false
listen = "127.0.0.1:8080"

[welcome_bot]
enabled = false
"#,
        b = id(2),
        c = id(3),
        d = id(4),
    );
    let config = NodeConfig::from_toml(&text, Path::new("full.toml")).unwrap();
    assert_eq!(config.node.name, "acme-2");
    assert_eq!(config.federation.peers.len(), 2);
    assert_eq!(config.federation.peers[0].node.to_string(), id(2));
    assert_eq!(config.federation.peers[0].name.as_deref(), Some("beta"));
    assert_eq!(config.federation.peers[1].addr, "[::1]:7702");
    assert_eq!(config.client.gateways[0].to_string(), id(4));
    assert_eq!(config.registration.mode, RegistrationMode::Invite);
    assert!(config.log.json);
}

#[test]
fn partial_sections_keep_other_defaults() {
    let config = NodeConfig::from_toml("[node]\nname = \"acme\"\n", Path::new("x.toml")).unwrap();
    assert_eq!(config.node.name, "acme");
    assert_eq!(config.node.data_dir, NodeConfig::default().node.data_dir);
    assert_eq!(config.federation, NodeConfig::default().federation);
}

#[test]
fn missing_explicit_file_is_an_error_naming_it() {
    let path = Path::new("/nonexistent/confab/node.toml");
    let err = NodeConfig::load(Some(path)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/confab/node.toml"),
        "{err}"
    );
}

#[test]
fn unknown_section_is_rejected_naming_key_and_position() {
    let (key, message) = reject("[node]\nname = \"a\"\n\n[federaton]\nlisten = \"127.0.0.1:1\"\n");
    assert_eq!(key, "federaton");
    assert!(message.contains("unknown key `federaton`"), "{message}");
    assert!(message.contains("line 4"), "{message}");
    assert!(
        message.contains("`federation`"),
        "expected keys listed: {message}"
    );
}

#[test]
fn unknown_nested_key_is_rejected_naming_key_and_position() {
    let (key, message) = reject("[federation]\nlisten = \"127.0.0.1:1\"\npeerz = []\n");
    assert_eq!(key, "federation.peerz");
    assert!(
        message.contains("unknown key `federation.peerz` at line 3"),
        "{message}"
    );
    assert!(message.contains("`peers`"), "{message}");
}

#[test]
fn unknown_key_in_a_peer_is_rejected() {
    let text = format!(
        "[federation]\npeers = [{{ node = \"{}\", addr = \"h:1\", nmae = \"x\" }}]\n",
        id(2)
    );
    let (key, message) = reject(&text);
    assert_eq!(key, "federation.peers[0].nmae");
    assert!(
        message.contains("unknown key `federation.peers[0].nmae` at line 2"),
        "{message}"
    );
}

#[test]
fn wrong_type_in_a_multi_line_peer_list_names_the_element() {
    let text = format!(
        "[federation]\npeers = [\n  {{ node = \"{}\", addr = \"a:1\" }},\n  {{ node = \"{}\", addr = 7 }},\n]\n",
        id(2),
        id(3)
    );
    let (key, message) = reject(&text);
    assert_eq!(key, "federation.peers[1].addr");
    assert!(message.contains("line 4"), "{message}");
}

#[test]
fn wrong_type_is_rejected_naming_key() {
    let (key, message) = reject("[limits]\nmessages_per_minute = \"lots\"\n");
    assert_eq!(key, "limits.messages_per_minute");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn syntax_error_is_rejected_with_position() {
    let (_, message) = reject("[node]\nname = \"unterminated\n");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn bad_address_is_rejected_naming_key() {
    let (key, message) = reject("[federation]\nlisten = \"localhost\"\n");
    assert_eq!(key, "federation.listen");
    assert!(message.contains("`federation.listen`"), "{message}");
    assert!(message.contains("\"localhost\""), "{message}");

    let (key, _) = reject("[metrics]\nlisten = \"127.0.0.1:99999\"\n");
    assert_eq!(key, "metrics.listen");

    let text = format!(
        "[federation]\npeers = [{{ node = \"{}\", addr = \"no-port\" }}]\n",
        id(2)
    );
    let (key, _) = reject(&text);
    assert_eq!(key, "federation.peers[0].addr");
}

#[test]
fn bad_node_id_is_rejected_naming_key() {
    let text = format!(
        "[federation]\npeers = [\n  {{ node = \"{}\", addr = \"a:1\" }},\n  {{ node = \"not-a-key\", addr = \"b:1\" }},\n]\n",
        id(2)
    );
    let (key, message) = reject(&text);
    assert_eq!(key, "federation.peers[1].node");
    assert!(message.contains("`federation.peers[1].node`"), "{message}");
    assert!(message.contains("not-a-key"), "{message}");

    let (key, _) = reject("[client]\ngateways = [\"abc\"]\n");
    assert_eq!(key, "client.gateways[0]");
}

#[test]
fn duplicate_peer_is_rejected() {
    let text = format!(
        "[federation]\npeers = [{{ node = \"{0}\", addr = \"a:1\" }}, {{ node = \"{0}\", addr = \"b:1\" }}]\n",
        id(2)
    );
    let (key, _) = reject(&text);
    assert_eq!(key, "federation.peers[1].node");
}

#[test]
fn bad_values_are_rejected_naming_key() {
    for (text, want) in [
        ("[node]\nname = \"\"\n", "node.name"),
        ("[node]\nname = \"Acme\"\n", "node.name"),
        (
            &*format!("[node]\nname = \"{}\"\n", "a".repeat(65)),
            "node.name",
        ),
        ("[node]\ndata_dir = \"\"\n", "node.data_dir"),
        (
            "[limits]\nmax_upload_bytes = 0\n",
            "limits.max_upload_bytes",
        ),
        (
            "[limits]\nmessages_per_minute = 0\n",
            "limits.messages_per_minute",
        ),
        (
            "[registration]\nmode = \"sometimes\"\n",
            "registration.mode",
        ),
        ("[log]\nlevel = \"\"\n", "log.level"),
        ("[metrics]\nlisten = \"127.0.0.1:8080\"\n", "metrics.listen"),
    ] {
        let (key, message) = reject(text);
        assert_eq!(key, want, "{message}");
        assert!(message.contains(&format!("`{want}`")), "{message}");
    }
}
