//! The gateway's configuration: a TOML file in which every key has a default
//! (`config/gateway.toml` in the repository lists them all).
//!
//! Same approach as the node's loader (this crate does not depend on
//! `confab-node`): the file is parsed into private mirror structs that reject
//! unknown keys, then validated into [`GatewayConfig`], and every error
//! names the file and the exact key.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use confab_wire::NodeId;

use crate::client_addr::TrustedProxies;
use crate::error::{Error, Result};

/// Longest gateway name, in bytes.
pub const MAX_GATEWAY_NAME_LEN: usize = 64;

const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// The gateway's whole configuration, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// `[gateway]`: this gateway's name, listener and key directory.
    pub gateway: GatewaySection,
    /// `[node]`: the one node this gateway serves.
    pub node: NodeLink,
    /// `[limits]`: per-connection and per-user limits.
    pub limits: GatewayLimits,
    /// `[http]`: HTTP settings.
    pub http: HttpConfig,
    /// `[log]`: log filter and format.
    pub log: LogConfig,
    /// `[metrics]`: the operators' endpoint, apart from the chat.
    pub metrics: MetricsConfig,
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySection {
    /// A label for logs and metrics: 1 to 64 bytes of `a-z`, `0-9` and `-`.
    pub name: String,
    /// TCP address for browsers (HTTP and WebSocket).
    pub listen: SocketAddr,
    /// Where the gateway's own key lives; relative to the working directory.
    pub data_dir: PathBuf,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLink {
    /// The node's client endpoint: `host:port`, the host a name or an IP.
    pub addr: String,
    /// The node's pinned key; `None` (the file's `""`) until configured, and
    /// the gateway must not connect without it.
    pub node_id: Option<NodeId>,
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayLimits {
    /// Largest WebSocket message a browser may send, in bytes.
    pub max_ws_message_bytes: u32,
    /// Open WebSockets per user on this gateway.
    pub max_connections_per_user: u32,
    /// Seconds between pings to each browser.
    pub heartbeat_secs: u32,
    /// Requests one user (or, before sign-in, one address) may make per
    /// minute, in bursts of up to as many.
    pub requests_per_minute: u32,
    /// Sign-in attempts (`login`, `register`) one address may make per
    /// minute; failures back off further on the node.
    pub sign_ins_per_minute_per_address: u32,
    /// Open WebSockets not (yet) signed in, per address.
    pub max_unauthenticated_sockets_per_address: u32,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Origins (`scheme://host[:port]`) allowed cross-origin requests.
    pub cors_allow: Vec<String>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Seconds a connection may take to send a request's headers (and may
    /// stay idle between requests) before it is closed.
    pub header_read_timeout_secs: u32,
    /// Open connections (HTTP and WebSocket), in all.
    pub max_connections: u32,
    /// Open connections from one address (trusted proxies excepted).
    pub max_connections_per_address: u32,
    /// Seconds an upload's body may send nothing before it is cancelled.
    pub upload_idle_secs: u32,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Whether the endpoint is served.
    pub enabled: bool,
    /// Its TCP address: `/metrics`, `/health/live`, `/health/ready`.
    /// Loopback by default; never the chat's address.
    pub listen: SocketAddr,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter directive; `RUST_LOG` overrides it.
    pub level: String,
    /// One JSON object per line instead of human-readable text.
    pub json: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            gateway: GatewaySection {
                name: "gateway".into(),
                listen: loopback(8080),
                data_dir: PathBuf::from("./gateway-data"),
            },
            node: NodeLink {
                addr: "127.0.0.1:7701".into(),
                node_id: None,
            },
            limits: GatewayLimits {
                max_ws_message_bytes: 64 * 1024,
                max_connections_per_user: 10,
                heartbeat_secs: 30,
                requests_per_minute: 1200,
                sign_ins_per_minute_per_address: 60,
                max_unauthenticated_sockets_per_address: 64,
            },
            http: HttpConfig {
                cors_allow: Vec::new(),
                trusted_proxies: TrustedProxies::default(),
                header_read_timeout_secs: 10,
                max_connections: 20_000,
                max_connections_per_address: 256,
                upload_idle_secs: 30,
            },
            log: LogConfig {
                level: "info".into(),
                json: false,
            },
            metrics: MetricsConfig {
                enabled: true,
                listen: loopback(9101),
            },
        }
    }
}

impl GatewayConfig {
    /// Loads the configuration: the embedded defaults if `path` is `None`,
    /// else the file, which must exist.
    pub fn load(path: Option<&Path>) -> Result<GatewayConfig> {
        let Some(path) = path else {
            return Ok(GatewayConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        GatewayConfig::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `file` is only used in errors.
    pub fn from_toml(text: &str, file: &Path) -> Result<GatewayConfig> {
        let raw: file::Root = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        Checker { file }.gateway_config(raw)
    }
}

/// The file's shape: defaults for every key, unknown keys rejected.
mod file {
    use serde::Deserialize;

    use super::GatewayConfig;

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Root {
        pub(super) gateway: Gateway,
        pub(super) node: Node,
        pub(super) limits: Limits,
        pub(super) http: Http,
        pub(super) log: Log,
        pub(super) metrics: Metrics,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Gateway {
        pub(super) name: String,
        pub(super) listen: String,
        pub(super) data_dir: std::path::PathBuf,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Node {
        pub(super) addr: String,
        pub(super) node_id: String,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Limits {
        pub(super) max_ws_message_bytes: u32,
        pub(super) max_connections_per_user: u32,
        pub(super) heartbeat_secs: u32,
        pub(super) requests_per_minute: u32,
        pub(super) sign_ins_per_minute_per_address: u32,
        pub(super) max_unauthenticated_sockets_per_address: u32,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Http {
        pub(super) cors_allow: Vec<String>,
        pub(super) trusted_proxies: Vec<String>,
        pub(super) header_read_timeout_secs: u32,
        pub(super) max_connections: u32,
        pub(super) max_connections_per_address: u32,
        pub(super) upload_idle_secs: u32,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Metrics {
        pub(super) enabled: bool,
        pub(super) listen: String,
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Log {
        pub(super) level: String,
        pub(super) json: bool,
    }

    // The file's defaults are the typed defaults, written out, so there is
    // one list of default values.
    impl Default for Root {
        fn default() -> Self {
            let d = GatewayConfig::default();
            Root {
                gateway: Gateway {
                    name: d.gateway.name,
                    listen: d.gateway.listen.to_string(),
                    data_dir: d.gateway.data_dir,
                },
                node: Node {
                    addr: d.node.addr,
                    node_id: d.node.node_id.map(|id| id.to_string()).unwrap_or_default(),
                },
                limits: Limits {
                    max_ws_message_bytes: d.limits.max_ws_message_bytes,
                    max_connections_per_user: d.limits.max_connections_per_user,
                    heartbeat_secs: d.limits.heartbeat_secs,
                    requests_per_minute: d.limits.requests_per_minute,
                    sign_ins_per_minute_per_address: d.limits.sign_ins_per_minute_per_address,
                    max_unauthenticated_sockets_per_address: d
                        .limits
                        .max_unauthenticated_sockets_per_address,
                },
                http: Http {
                    cors_allow: d.http.cors_allow,
                    trusted_proxies: Vec::new(),
                    header_read_timeout_secs: d.http.header_read_timeout_secs,
                    max_connections: d.http.max_connections,
                    max_connections_per_address: d.http.max_connections_per_address,
                    upload_idle_secs: d.http.upload_idle_secs,
                },
                log: Log {
                    level: d.log.level,
                    json: d.log.json,
                },
                metrics: Metrics {
                    enabled: d.metrics.enabled,
                    listen: d.metrics.listen.to_string(),
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
        Gateway => gateway,
        Node => node,
        Limits => limits,
        Http => http,
        Log => log,
        Metrics => metrics,
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

    fn gateway_config(&self, raw: file::Root) -> Result<GatewayConfig> {
        let listen = self.socket_addr("gateway.listen", &raw.gateway.listen)?;
        let metrics = MetricsConfig {
            enabled: raw.metrics.enabled,
            listen: self.socket_addr("metrics.listen", &raw.metrics.listen)?,
        };
        if metrics.enabled && metrics.listen == listen && listen.port() != 0 {
            return Err(self.err(
                "metrics.listen",
                format!(
                    "{listen} is also `gateway.listen`: metrics are served apart from the chat"
                ),
            ));
        }
        Ok(GatewayConfig {
            gateway: GatewaySection {
                name: self.name("gateway.name", raw.gateway.name)?,
                listen,
                data_dir: self.data_dir("gateway.data_dir", raw.gateway.data_dir)?,
            },
            node: NodeLink {
                addr: self.host_port("node.addr", &raw.node.addr)?,
                node_id: match raw.node.node_id.as_str() {
                    "" => None,
                    text => Some(text.parse().map_err(|e| self.err("node.node_id", e))?),
                },
            },
            limits: GatewayLimits {
                max_ws_message_bytes: self.positive(
                    "limits.max_ws_message_bytes",
                    raw.limits.max_ws_message_bytes,
                )?,
                max_connections_per_user: self.positive(
                    "limits.max_connections_per_user",
                    raw.limits.max_connections_per_user,
                )?,
                heartbeat_secs: self
                    .positive("limits.heartbeat_secs", raw.limits.heartbeat_secs)?,
                requests_per_minute: self
                    .positive("limits.requests_per_minute", raw.limits.requests_per_minute)?,
                sign_ins_per_minute_per_address: self.positive(
                    "limits.sign_ins_per_minute_per_address",
                    raw.limits.sign_ins_per_minute_per_address,
                )?,
                max_unauthenticated_sockets_per_address: self.positive(
                    "limits.max_unauthenticated_sockets_per_address",
                    raw.limits.max_unauthenticated_sockets_per_address,
                )?,
            },
            http: HttpConfig {
                cors_allow: self.origins("http.cors_allow", raw.http.cors_allow)?,
                trusted_proxies: self
                    .networks("http.trusted_proxies", &raw.http.trusted_proxies)?,
                header_read_timeout_secs: self.positive(
                    "http.header_read_timeout_secs",
                    raw.http.header_read_timeout_secs,
                )?,
                max_connections: self.positive("http.max_connections", raw.http.max_connections)?,
                max_connections_per_address: self.positive(
                    "http.max_connections_per_address",
                    raw.http.max_connections_per_address,
                )?,
                upload_idle_secs: self
                    .positive("http.upload_idle_secs", raw.http.upload_idle_secs)?,
            },
            log: LogConfig {
                level: self.log_level("log.level", raw.log.level)?,
                json: raw.log.json,
            },
            metrics,
        })
    }

    fn name(&self, key: &str, name: String) -> Result<String> {
        if name.is_empty() || name.len() > MAX_GATEWAY_NAME_LEN {
            return Err(self.err(
                key,
                format!(
                    "must be 1 to {MAX_GATEWAY_NAME_LEN} bytes long, got {}",
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
                format!("{text:?} is not an IP address and port, e.g. \"127.0.0.1:8080\""),
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
                format!("{text:?} is not host:port, e.g. \"node.example.org:7701\""),
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

    fn positive(&self, key: &str, v: u32) -> Result<u32> {
        if v == 0 {
            return Err(self.err(key, "must be greater than 0"));
        }
        Ok(v)
    }

    /// An origin is exactly what a browser sends in `Origin`:
    /// `scheme://host[:port]`, no path and no trailing slash.
    fn origins(&self, key: &str, origins: Vec<String>) -> Result<Vec<String>> {
        for (i, origin) in origins.iter().enumerate() {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let ok = rest.is_some_and(|host| {
                !host.is_empty()
                    && !host.contains('/')
                    && !host.contains(char::is_whitespace)
                    && host != "*"
            });
            if !ok {
                return Err(self.err(
                    &format!("{key}[{i}]"),
                    format!(
                        "{origin:?} is not an origin like \"https://chat.example.org\" \
                         (scheme and host, optional port, no path or trailing slash)"
                    ),
                ));
            }
        }
        Ok(origins)
    }

    fn networks(&self, key: &str, list: &[String]) -> Result<TrustedProxies> {
        TrustedProxies::parse(list).map_err(|(i, why)| self.err(&format!("{key}[{i}]"), why))
    }

    fn log_level(&self, key: &str, level: String) -> Result<String> {
        if level.trim().is_empty() || level.contains(char::is_whitespace) {
            return Err(self.err(
                key,
                format!("{level:?} is not a filter like \"info\" or \"info,confab_gateway=debug\""),
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

pub mod toml_path;

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/gateway.toml");

    fn reject(text: &str) -> (String, String) {
        match GatewayConfig::from_toml(text, Path::new("config/test.toml")) {
            Ok(config) => panic!("accepted:\n{text}\nas {config:?}"),
            Err(err @ Error::Config { .. }) => {
                let message = err.to_string();
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
    fn no_file_and_empty_file_give_the_defaults() {
        assert_eq!(GatewayConfig::load(None).unwrap(), GatewayConfig::default());
        let parsed = GatewayConfig::from_toml("", Path::new("empty.toml")).unwrap();
        assert_eq!(parsed, GatewayConfig::default());
    }

    #[test]
    fn shipped_file_parses_and_equals_the_defaults() {
        let config = GatewayConfig::load(Some(Path::new(SHIPPED))).unwrap();
        assert_eq!(config, GatewayConfig::default());
        assert_eq!(config.node.node_id, None);
        assert_eq!(config.limits.max_ws_message_bytes, 65536);
    }

    #[test]
    fn a_full_file_parses() {
        let id = confab_wire::NodeKey::from_secret(&[1; 32]).node_id();
        let text = format!(
            "[gateway]\nname = \"gw-2\"\nlisten = \"0.0.0.0:80\"\n\
             [node]\naddr = \"node.example.org:7701\"\nnode_id = \"{id}\"\n\
             [http]\ncors_allow = [\"https://chat.example.org\", \"http://localhost:3000\"]\n"
        );
        let config = GatewayConfig::from_toml(&text, Path::new("x.toml")).unwrap();
        assert_eq!(config.node.node_id, Some(id));
        assert_eq!(config.node.addr, "node.example.org:7701");
        assert_eq!(config.http.cors_allow.len(), 2);
        assert_eq!(config.limits, GatewayConfig::default().limits);
    }

    #[test]
    fn missing_explicit_file_is_an_error_naming_it() {
        let err = GatewayConfig::load(Some(Path::new("/nonexistent/gateway.toml"))).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/gateway.toml"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_key() {
        for (text, want) in [
            ("[gatway]\n", "gatway"),
            ("[limits]\nheartbeat = 5\n", "limits.heartbeat"),
            (
                "[limits]\nheartbeat_secs = \"5\"\n",
                "limits.heartbeat_secs",
            ),
            ("[limits]\nheartbeat_secs = 0\n", "limits.heartbeat_secs"),
            (
                "[limits]\nmax_ws_message_bytes = -1\n",
                "limits.max_ws_message_bytes",
            ),
            ("[gateway]\nlisten = \"localhost:8080\"\n", "gateway.listen"),
            ("[gateway]\nname = \"Gate way\"\n", "gateway.name"),
            ("[node]\naddr = \"no-port\"\n", "node.addr"),
            ("[node]\nnode_id = \"abc\"\n", "node.node_id"),
            (
                "[http]\ncors_allow = [\"https://a.org\", \"https://b.org/\"]\n",
                "http.cors_allow[1]",
            ),
            ("[http]\ncors_allow = [\"*\"]\n", "http.cors_allow[0]"),
            (
                "[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/40\"]\n",
                "http.trusted_proxies[1]",
            ),
            (
                "[http]\nmax_connections_per_address = 0\n",
                "http.max_connections_per_address",
            ),
            ("[log]\nlevel = \" \"\n", "log.level"),
            (
                "[gateway]\nlisten = \"127.0.0.1:8080\"\n[metrics]\nlisten = \"127.0.0.1:8080\"\n",
                "metrics.listen",
            ),
        ] {
            let (key, message) = reject(text);
            assert_eq!(key, want, "{message}");
            assert!(message.contains(&format!("`{want}`")), "{message}");
        }
    }
}
