//! The node's configuration: a TOML file in which every key has a default,
//! so a node started without one runs on loopback with its data in `./data`.
//!
//! The file is parsed into private mirror structs (strings for addresses and
//! ids, unknown keys rejected) and then validated into [`NodeConfig`], so
//! every error names the file and the exact key:
//!
//! ```text
//! config/node.toml: `federation.peers[0].node`: invalid node id "x": expected 52 base32 characters (a-z, 2-7)
//! config/node.toml: unknown key `federaton` at line 3 column 2 (expected one of: `node`, `federation`, …)
//! ```
//!
//! `config/node.toml` in the repository lists every key with its default.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use confab_wire::NodeId;

use crate::error::{Error, Result};

/// Longest node name, in bytes.
pub const MAX_NODE_NAME_LEN: usize = 64;

const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// The node's whole configuration, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `[node]`: who this node is and where it keeps its data.
    pub node: NodeSection,
    /// `[federation]`: the QUIC endpoint for peers, and the pinned peers.
    pub federation: FederationConfig,
    /// `[client]`: the QUIC endpoint for gateways, and the pinned gateways.
    pub client: ClientServiceConfig,
    /// `[gateway]`: the gateway run inside the node process.
    pub gateway: EmbeddedGatewayConfig,
    /// `[limits]`: per-user limits.
    pub limits: LimitsConfig,
    /// `[registration]`: who may create an account.
    pub registration: RegistrationConfig,
    /// `[log]`: log filter and format.
    pub log: LogConfig,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// `[welcome_bot]`: the bot that greets new users.
    pub welcome_bot: WelcomeBotConfig,
    /// `[admin]`: how `confabctl` reaches the node.
    pub admin: AdminConfig,
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Serve the admin protocol on `<data_dir>/admin.sock` (mode 0600: only
    /// the node's OS user, and root, can connect).
    pub socket: bool,
    /// UDP address of the admin QUIC endpoint; it runs only when `keys`
    /// lists at least one admin key.
    pub listen: SocketAddr,
    /// Admin keys (`confabctl id --key FILE` prints one) allowed over QUIC.
    pub keys: Vec<NodeId>,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSection {
    /// The node's name, shown in user ids (`@alice:<name>`): 1 to 64 bytes of
    /// `a-z`, `0-9` and `-`.
    pub name: String,
    /// Where the key, database and blobs live; relative paths are relative to
    /// the working directory.
    pub data_dir: PathBuf,
}

/// `[federation]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationConfig {
    /// UDP address of the federation QUIC endpoint.
    pub listen: SocketAddr,
    /// Peers pinned from the file (the peer table can add more at run time).
    pub peers: Vec<PeerConfig>,
}

/// One entry of `federation.peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's key: the only thing that authenticates it.
    pub node: NodeId,
    /// Where to dial it: `host:port`, the host a name or an IP address.
    pub addr: String,
    /// A label for logs; the peer's own name comes from its handshake.
    pub name: Option<String>,
}

/// `[client]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientServiceConfig {
    /// UDP address of the client-protocol QUIC endpoint (for gateways).
    pub listen: SocketAddr,
    /// Keys of the separately run gateways allowed to connect.
    pub gateways: Vec<NodeId>,
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedGatewayConfig {
    /// Whether the node runs a gateway in-process.
    pub enabled: bool,
    /// TCP address it serves HTTP and WebSocket on.
    pub listen: SocketAddr,
    /// Open WebSockets one user may have at once on it.
    pub max_connections_per_user: u32,
    /// Requests one user (or one address before sign-in) may make per minute.
    pub requests_per_minute: u32,
    /// Sign-in attempts one address may make per minute.
    pub sign_ins_per_minute_per_address: u32,
    /// Open connections from one address.
    pub max_connections_per_address: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: confab_gateway::client_addr::TrustedProxies,
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Messages one user may send per minute.
    pub messages_per_minute: u32,
    /// Failed sign-ins one address may make (in 15 minutes) before each
    /// further try waits, 1 s and doubling.
    pub sign_in_failures_per_address: u32,
}

/// `[registration]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Who may create an account.
    pub mode: RegistrationMode,
}

/// Who may create an account on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    /// Anyone who can reach a gateway.
    Open,
    /// Only holders of an invite code from an admin.
    Invite,
    /// No one; admins create accounts.
    Closed,
}

impl RegistrationMode {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationMode::Open => "open",
            RegistrationMode::Invite => "invite",
            RegistrationMode::Closed => "closed",
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter directive, e.g. `info` or `info,confab_node=debug`;
    /// `RUST_LOG` overrides it.
    pub level: String,
    /// One JSON object per line instead of human-readable text.
    pub json: bool,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Whether `/metrics` is served.
    pub enabled: bool,
    /// TCP address of the metrics endpoint.
    pub listen: SocketAddr,
}

/// `[welcome_bot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeBotConfig {
    /// Whether new users are greeted and shown around.
    pub enabled: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node: NodeSection {
                name: "local".into(),
                data_dir: PathBuf::from("./data"),
            },
            federation: FederationConfig {
                listen: loopback(7700),
                peers: Vec::new(),
            },
            client: ClientServiceConfig {
                listen: loopback(7701),
                gateways: Vec::new(),
            },
            gateway: EmbeddedGatewayConfig {
                enabled: true,
                listen: loopback(8080),
                max_connections_per_user: 10,
                requests_per_minute: 1200,
                sign_ins_per_minute_per_address: 60,
                max_connections_per_address: 256,
                trusted_proxies: confab_gateway::client_addr::TrustedProxies::default(),
            },
            limits: LimitsConfig {
                max_upload_bytes: 25 * 1024 * 1024,
                messages_per_minute: 60,
                sign_in_failures_per_address: 20,
            },
            registration: RegistrationConfig {
                mode: RegistrationMode::Open,
            },
            log: LogConfig {
                level: "info".into(),
                json: false,
            },
            metrics: MetricsConfig {
                enabled: true,
                listen: loopback(9100),
            },
            welcome_bot: WelcomeBotConfig { enabled: true },
            admin: AdminConfig {
                socket: true,
                listen: loopback(9300),
                keys: Vec::new(),
            },
        }
    }
}

impl NodeConfig {
    /// Loads the configuration: the embedded defaults if `path` is `None`,
    /// else the file, which must exist.
    pub fn load(path: Option<&Path>) -> Result<NodeConfig> {
        let Some(path) = path else {
            return Ok(NodeConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        NodeConfig::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `file` is only used in errors.
    pub fn from_toml(text: &str, file: &Path) -> Result<NodeConfig> {
        let raw: file::Root = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        Checker { file }.node_config(raw)
    }
}

/// The file's shape. Every struct has defaults for every key and rejects
/// unknown keys, so a typo is an error instead of a silently ignored setting.
mod file {
    use serde::Deserialize;

    use super::NodeConfig;

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Root {
        pub(super) node: Node,
        pub(super) federation: Federation,
        pub(super) client: Client,
        pub(super) gateway: Gateway,
        pub(super) limits: Limits,
        pub(super) registration: Registration,
        pub(super) log: Log,
        pub(super) metrics: Metrics,
        pub(super) welcome_bot: WelcomeBot,
        pub(super) admin: Admin,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Admin {
        pub(super) socket: bool,
        pub(super) listen: String,
        pub(super) keys: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Node {
        pub(super) name: String,
        pub(super) data_dir: std::path::PathBuf,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Federation {
        pub(super) listen: String,
        pub(super) peers: Vec<Peer>,
    }

    /// No defaults: a peer without a key or an address means nothing.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Peer {
        pub(super) node: String,
        pub(super) addr: String,
        #[serde(default)]
        pub(super) name: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Client {
        pub(super) listen: String,
        pub(super) gateways: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Gateway {
        pub(super) enabled: bool,
        pub(super) listen: String,
        pub(super) max_connections_per_user: u32,
        pub(super) requests_per_minute: u32,
        pub(super) sign_ins_per_minute_per_address: u32,
        pub(super) max_connections_per_address: u32,
        pub(super) trusted_proxies: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Limits {
        pub(super) max_upload_bytes: u64,
        pub(super) messages_per_minute: u32,
        pub(super) sign_in_failures_per_address: u32,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Registration {
        pub(super) mode: String,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Log {
        pub(super) level: String,
        pub(super) json: bool,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Metrics {
        pub(super) enabled: bool,
        pub(super) listen: String,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct WelcomeBot {
        pub(super) enabled: bool,
    }

    // The file's defaults are the typed defaults, written out, so there is
    // one list of default values.
    impl Default for Root {
        fn default() -> Self {
            let d = NodeConfig::default();
            Root {
                node: Node {
                    name: d.node.name,
                    data_dir: d.node.data_dir,
                },
                federation: Federation {
                    listen: d.federation.listen.to_string(),
                    peers: Vec::new(),
                },
                client: Client {
                    listen: d.client.listen.to_string(),
                    gateways: Vec::new(),
                },
                gateway: Gateway {
                    enabled: d.gateway.enabled,
                    listen: d.gateway.listen.to_string(),
                    max_connections_per_user: d.gateway.max_connections_per_user,
                    requests_per_minute: d.gateway.requests_per_minute,
                    sign_ins_per_minute_per_address: d.gateway.sign_ins_per_minute_per_address,
                    max_connections_per_address: d.gateway.max_connections_per_address,
                    trusted_proxies: Vec::new(),
                },
                limits: Limits {
                    max_upload_bytes: d.limits.max_upload_bytes,
                    messages_per_minute: d.limits.messages_per_minute,
                    sign_in_failures_per_address: d.limits.sign_in_failures_per_address,
                },
                registration: Registration {
                    mode: d.registration.mode.as_str().into(),
                },
                log: Log {
                    level: d.log.level,
                    json: d.log.json,
                },
                metrics: Metrics {
                    enabled: d.metrics.enabled,
                    listen: d.metrics.listen.to_string(),
                },
                welcome_bot: WelcomeBot {
                    enabled: d.welcome_bot.enabled,
                },
                admin: Admin {
                    socket: d.admin.socket,
                    listen: d.admin.listen.to_string(),
                    keys: Vec::new(),
                },
            }
        }
    }

    macro_rules! default_from_root {
        ($($ty:ident => $field:ident),* $(,)?) => {
            $(impl Default for $ty {
                fn default() -> Self {
                    Root::default().$field
                }
            })*
        };
    }
    default_from_root!(
        Node => node,
        Federation => federation,
        Client => client,
        Gateway => gateway,
        Limits => limits,
        Registration => registration,
        Log => log,
        Metrics => metrics,
        WelcomeBot => welcome_bot,
        Admin => admin,
    );
}

/// Turns the file's values into typed ones; every error names `file` and
/// the dotted key.
struct Checker<'a> {
    file: &'a Path,
}

impl Checker<'_> {
    fn err(&self, key: &str, reason: impl std::fmt::Display) -> Error {
        Error::Config {
            file: self.file.to_owned(),
            key: key.to_owned(),
            reason: format!("`{key}`: {reason}"),
        }
    }

    fn node_config(&self, raw: file::Root) -> Result<NodeConfig> {
        let config = NodeConfig {
            node: NodeSection {
                name: self.name("node.name", raw.node.name)?,
                data_dir: self.data_dir("node.data_dir", raw.node.data_dir)?,
            },
            federation: FederationConfig {
                listen: self.socket_addr("federation.listen", &raw.federation.listen)?,
                peers: self.peers(raw.federation.peers)?,
            },
            client: ClientServiceConfig {
                listen: self.socket_addr("client.listen", &raw.client.listen)?,
                gateways: self.node_ids("client.gateways", &raw.client.gateways)?,
            },
            gateway: EmbeddedGatewayConfig {
                enabled: raw.gateway.enabled,
                listen: self.socket_addr("gateway.listen", &raw.gateway.listen)?,
                max_connections_per_user: self.positive(
                    "gateway.max_connections_per_user",
                    raw.gateway.max_connections_per_user,
                )?,
                requests_per_minute: self.positive(
                    "gateway.requests_per_minute",
                    raw.gateway.requests_per_minute,
                )?,
                sign_ins_per_minute_per_address: self.positive(
                    "gateway.sign_ins_per_minute_per_address",
                    raw.gateway.sign_ins_per_minute_per_address,
                )?,
                max_connections_per_address: self.positive(
                    "gateway.max_connections_per_address",
                    raw.gateway.max_connections_per_address,
                )?,
                trusted_proxies: self
                    .networks("gateway.trusted_proxies", &raw.gateway.trusted_proxies)?,
            },
            limits: LimitsConfig {
                max_upload_bytes: self
                    .positive("limits.max_upload_bytes", raw.limits.max_upload_bytes)?,
                messages_per_minute: self
                    .positive("limits.messages_per_minute", raw.limits.messages_per_minute)?,
                sign_in_failures_per_address: self.positive(
                    "limits.sign_in_failures_per_address",
                    raw.limits.sign_in_failures_per_address,
                )?,
            },
            registration: RegistrationConfig {
                mode: self.registration_mode("registration.mode", &raw.registration.mode)?,
            },
            log: LogConfig {
                level: self.log_level("log.level", raw.log.level)?,
                json: raw.log.json,
            },
            metrics: MetricsConfig {
                enabled: raw.metrics.enabled,
                listen: self.socket_addr("metrics.listen", &raw.metrics.listen)?,
            },
            welcome_bot: WelcomeBotConfig {
                enabled: raw.welcome_bot.enabled,
            },
            admin: AdminConfig {
                socket: raw.admin.socket,
                listen: self.socket_addr("admin.listen", &raw.admin.listen)?,
                keys: self.node_ids("admin.keys", &raw.admin.keys)?,
            },
        };
        // Both are TCP listeners in this process (port 0 picks a free one
        // for each).
        if config.gateway.enabled
            && config.metrics.enabled
            && config.gateway.listen == config.metrics.listen
            && config.metrics.listen.port() != 0
        {
            return Err(self.err(
                "metrics.listen",
                format!(
                    "{} is also `gateway.listen`; they need different ports",
                    config.metrics.listen
                ),
            ));
        }
        Ok(config)
    }

    fn name(&self, key: &str, name: String) -> Result<String> {
        if name.is_empty() || name.len() > MAX_NODE_NAME_LEN {
            return Err(self.err(
                key,
                format!(
                    "must be 1 to {MAX_NODE_NAME_LEN} bytes long, got {}",
                    name.len()
                ),
            ));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(self.err(key, format!("{name:?} may only contain a-z, 0-9 and '-'")));
        }
        Ok(name)
    }

    fn data_dir(&self, key: &str, dir: PathBuf) -> Result<PathBuf> {
        if dir.as_os_str().is_empty() {
            return Err(self.err(key, "must not be empty"));
        }
        Ok(dir)
    }

    fn socket_addr(&self, key: &str, text: &str) -> Result<SocketAddr> {
        text.parse().map_err(|_| {
            self.err(
                key,
                format!("{text:?} is not an IP address and port, e.g. \"127.0.0.1:7700\""),
            )
        })
    }

    /// `host:port` where the host may be a DNS name (resolved when dialling).
    fn host_port(&self, key: &str, text: &str) -> Result<String> {
        if text.parse::<SocketAddr>().is_ok() {
            return Ok(text.to_owned());
        }
        let bad = || {
            self.err(
                key,
                format!("{text:?} is not host:port, e.g. \"peer.example.org:7700\""),
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad());
        }
        Ok(text.to_owned())
    }

    fn node_id(&self, key: &str, text: &str) -> Result<NodeId> {
        text.parse().map_err(|e| self.err(key, e))
    }

    fn node_ids(&self, key: &str, texts: &[String]) -> Result<Vec<NodeId>> {
        let mut seen = HashSet::new();
        let mut ids = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let id = self.node_id(&key, text)?;
            if !seen.insert(id) {
                return Err(self.err(&key, format!("{text} is listed twice")));
            }
            ids.push(id);
        }
        Ok(ids)
    }

    fn peers(&self, raw: Vec<file::Peer>) -> Result<Vec<PeerConfig>> {
        let mut seen = HashSet::new();
        let mut peers = Vec::with_capacity(raw.len());
        for (i, peer) in raw.into_iter().enumerate() {
            let key = |field: &str| format!("federation.peers[{i}].{field}");
            let node = self.node_id(&key("node"), &peer.node)?;
            if !seen.insert(node) {
                return Err(self.err(&key("node"), format!("{node} is already an earlier peer")));
            }
            let addr = self.host_port(&key("addr"), &peer.addr)?;
            let name = match peer.name {
                Some(name) => Some(self.name(&key("name"), name)?),
                None => None,
            };
            peers.push(PeerConfig { node, addr, name });
        }
        Ok(peers)
    }

    fn positive<T: Default + PartialOrd + std::fmt::Display>(&self, key: &str, v: T) -> Result<T> {
        if v <= T::default() {
            return Err(self.err(key, format!("must be greater than 0, got {v}")));
        }
        Ok(v)
    }

    fn networks(
        &self,
        key: &str,
        list: &[String],
    ) -> Result<confab_gateway::client_addr::TrustedProxies> {
        confab_gateway::client_addr::TrustedProxies::parse(list)
            .map_err(|(i, why)| self.err(&format!("{key}[{i}]"), why))
    }

    fn registration_mode(&self, key: &str, text: &str) -> Result<RegistrationMode> {
        match text {
            "open" => Ok(RegistrationMode::Open),
            "invite" => Ok(RegistrationMode::Invite),
            "closed" => Ok(RegistrationMode::Closed),
            _ => Err(self.err(
                key,
                format!("{text:?} is not one of \"open\", \"invite\", \"closed\""),
            )),
        }
    }

    fn log_level(&self, key: &str, level: String) -> Result<String> {
        if level.trim().is_empty() || level.contains(char::is_whitespace) {
            return Err(self.err(
                key,
                format!("{level:?} is not a filter like \"info\" or \"info,confab_node=debug\""),
            ));
        }
        Ok(level)
    }
}

/// Wraps a TOML syntax or shape error with the file, the key it concerns and
/// its line and column.
fn toml_error(file: &Path, text: &str, err: &toml::de::Error) -> Error {
    let message = err.message().trim_end();
    let (key, position) = match err.span() {
        Some(span) => {
            let (line, column) = toml_path::line_column(text, span.start);
            (
                toml_path::key_at(text, span.start),
                format!(" at line {line} column {column}"),
            )
        }
        None => (String::new(), String::new()),
    };
    let reason = match toml_path::unknown_field(message) {
        Some(expected) => format!("unknown key `{key}`{position} (expected one of: {expected})"),
        None if key.is_empty() => format!("{message}{position}"),
        None => format!("`{key}`{position}: {message}"),
    };
    Error::Config {
        file: file.to_owned(),
        key,
        reason,
    }
}

use confab_gateway::config::toml_path;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        let parsed = NodeConfig::from_toml("", Path::new("empty.toml")).unwrap();
        assert_eq!(parsed, NodeConfig::default());
    }
}
