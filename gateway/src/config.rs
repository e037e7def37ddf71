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
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Origins (`scheme://host[:port]`) allowed cross-origin requests.
    pub cors_allow: Vec<String>,
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
            },
            http: HttpConfig {
                cors_allow: Vec::new(),
            },
            log: LogConfig {
                level: "info".into(),
                json: false,
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
    }

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Http {
        pub(super) cors_allow: Vec<String>,
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
                },
                http: Http {
                    cors_allow: d.http.cors_allow,
                },
                log: Log {
                    level: d.log.level,
                    json: d.log.json,
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
        Ok(GatewayConfig {
            gateway: GatewaySection {
                name: self.name("gateway.name", raw.gateway.name)?,
                listen: self.socket_addr("gateway.listen", &raw.gateway.listen)?,
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
            },
            http: HttpConfig {
                cors_allow: self.origins("http.cors_allow", raw.http.cors_allow)?,
            },
            log: LogConfig {
                level: self.log_level("log.level", raw.log.level)?,
                json: raw.log.json,
            },
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

/// Finds which key a byte offset in a TOML document belongs to, for error
/// messages (a copy of `confab_node::config`'s, which this crate cannot use): toml's errors carry a span but name at most the last key
/// segment. A lenient scanner, not a parser: on odd input it gives a less
/// precise path, never a panic.
mod toml_path {
    /// `unknown field `x`, expected one of `a`, `b`` → "`a`, `b`".
    pub(super) fn unknown_field(message: &str) -> Option<&str> {
        let rest = message.strip_prefix("unknown field `")?;
        let (_, rest) = rest.split_once('`')?;
        Some(
            rest.strip_prefix(", expected one of ")
                .or_else(|| rest.strip_prefix(", expected "))
                .unwrap_or("no keys here"),
        )
    }

    /// 1-based line and column (in characters) of `offset`.
    pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
        let before = &text.as_bytes()[..offset.min(text.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        (line, column)
    }

    enum Frame {
        /// Inside `[ … ]`: the array's path and the current element.
        Array { path: String, index: usize },
        /// Inside `{ … }`: the table's path and its key being assigned.
        Inline { path: String, key: String },
    }

    /// The dotted path (`federation.peers[1].node`) of the key or value at
    /// `offset`.
    pub(super) fn key_at(text: &str, offset: usize) -> String {
        let b = text.as_bytes();
        let mut table = String::new();
        let mut array_tables = std::collections::HashMap::<String, usize>::new();
        let mut top_key = String::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut expect_key = true;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match c {
                b' ' | b'\t' | b'\r' => i += 1,
                b'#' => i = skip_line(b, i),
                b'\n' => {
                    if stack.is_empty() {
                        expect_key = true;
                    }
                    i += 1;
                }
                // A table header: only at the top level, where a key may start.
                b'[' if stack.is_empty() && expect_key => {
                    let double = b.get(i + 1) == Some(&b'[');
                    let start = i + if double { 2 } else { 1 };
                    let end = find(b, start, b']');
                    let name = normalise_key(slice(text, start, end));
                    if double {
                        let n = array_tables.entry(name.clone()).or_insert(0);
                        table = format!("{name}[{n}]");
                        *n += 1;
                    } else {
                        table = name.clone();
                    }
                    if offset < end + if double { 2 } else { 1 } {
                        return name;
                    }
                    top_key.clear();
                    i = skip_line(b, end);
                }
                b'=' => {
                    expect_key = false;
                    i += 1;
                }
                b',' => {
                    match stack.last_mut() {
                        Some(Frame::Array { index, .. }) => *index += 1,
                        Some(Frame::Inline { .. }) => expect_key = true,
                        None => {}
                    }
                    i += 1;
                }
                b']' | b'}' => {
                    stack.pop();
                    expect_key = false;
                    i += 1;
                }
                _ if expect_key => {
                    let end = key_end(b, i).max(i + 1);
                    let key = normalise_key(slice(text, i, end));
                    if offset < end {
                        return join(&container_path(&table, &stack), &key);
                    }
                    match stack.last_mut() {
                        Some(Frame::Inline { key: k, .. }) => *k = key,
                        _ => top_key = key,
                    }
                    i = end;
                }
                _ => {
                    // A value: its path is the key it is assigned to, or
                    // the array element it is.
                    let path = value_path(&table, &top_key, &stack);
                    if offset <= i {
                        return path;
                    }
                    match c {
                        b'[' => {
                            stack.push(Frame::Array { path, index: 0 });
                            i += 1;
                        }
                        b'{' => {
                            stack.push(Frame::Inline {
                                path,
                                key: String::new(),
                            });
                            expect_key = true;
                            i += 1;
                        }
                        _ => {
                            let end = value_end(b, i).max(i + 1);
                            if offset < end {
                                return path;
                            }
                            i = end;
                        }
                    }
                }
            }
        }
        value_path(&table, &top_key, &stack)
    }

    fn value_path(table: &str, top_key: &str, stack: &[Frame]) -> String {
        match stack.last() {
            Some(Frame::Array { path, index }) => format!("{path}[{index}]"),
            Some(Frame::Inline { path, key }) => join(path, key),
            None => join(table, top_key),
        }
    }

    fn container_path(table: &str, stack: &[Frame]) -> String {
        match stack.last() {
            Some(Frame::Array { path, index }) => format!("{path}[{index}]"),
            Some(Frame::Inline { path, .. }) => path.clone(),
            None => table.to_owned(),
        }
    }

    fn join(prefix: &str, key: &str) -> String {
        match (prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_owned(),
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{key}"),
        }
    }

    fn slice(text: &str, start: usize, end: usize) -> &str {
        text.get(start..end.min(text.len())).unwrap_or("")
    }

    /// `a . "b"` → `a.b`.
    fn normalise_key(key: &str) -> String {
        key.split('.')
            .map(|part| part.trim().trim_matches(|c| c == '"' || c == '\''))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// First `what` or newline at or after `from`, else the end.
    fn find(b: &[u8], from: usize, what: u8) -> usize {
        b.get(from..)
            .and_then(|rest| rest.iter().position(|&c| c == what || c == b'\n'))
            .map_or(b.len(), |p| from + p)
    }

    fn skip_line(b: &[u8], from: usize) -> usize {
        find(b, from, b'\n')
    }

    /// End of a (possibly dotted, possibly quoted) key: the `=` or the line end.
    fn key_end(b: &[u8], from: usize) -> usize {
        let mut i = from;
        while i < b.len() && !matches!(b[i], b'=' | b'\n' | b',' | b'}') {
            i = if matches!(b[i], b'"' | b'\'') {
                string_end(b, i)
            } else {
                i + 1
            };
        }
        i
    }

    /// End of a scalar value (string, number, bool, date).
    fn value_end(b: &[u8], from: usize) -> usize {
        if matches!(b[from], b'"' | b'\'') {
            return string_end(b, from);
        }
        let mut i = from;
        while i < b.len() && !matches!(b[i], b',' | b']' | b'}' | b'\n' | b'#') {
            i += 1;
        }
        i
    }

    /// End (exclusive) of the string starting at `from`, single- or
    /// triple-quoted, basic (with escapes) or literal.
    fn string_end(b: &[u8], from: usize) -> usize {
        let q = b[from];
        let triple = b.get(from..from + 3) == Some(&[q, q, q][..]);
        let mut i = from + if triple { 3 } else { 1 };
        while i < b.len() {
            if q == b'"' && b[i] == b'\\' {
                i += 2;
                continue;
            }
            if !triple && b[i] == b'\n' {
                return i;
            }
            if b[i] == q && (!triple || b.get(i..i + 3) == Some(&[q, q, q][..])) {
                return i + if triple { 3 } else { 1 };
            }
            i += 1;
        }
        b.len()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn at(text: &str, needle: &str) -> String {
            key_at(text, text.find(needle).unwrap())
        }

        #[test]
        fn paths_of_keys_and_values() {
            let text = r#"
top = 1 # comment with [brackets] and = signs
[federation]
listen = "127.0.0.1:1" # "quoted"
peers = [
  { node = "n0", addr = "a,}]0" },
  { node = "n1", "addr" = 'x', nmae = 3 },
]
[a . "b"]
c = """multi
line ] } ,
"""
d = [[1, 2], [3, "x4"]]
[[arr]]
e = 1
[[arr]]
f = 2
"#;
            assert_eq!(at(text, "top"), "top");
            assert_eq!(at(text, "listen"), "federation.listen");
            assert_eq!(at(text, "\"127"), "federation.listen");
            assert_eq!(at(text, "peers"), "federation.peers");
            assert_eq!(at(text, "node = \"n0\""), "federation.peers[0].node");
            assert_eq!(at(text, "\"n0\""), "federation.peers[0].node");
            assert_eq!(at(text, "\"n1\""), "federation.peers[1].node");
            assert_eq!(at(text, "'x'"), "federation.peers[1].addr");
            assert_eq!(at(text, "nmae"), "federation.peers[1].nmae");
            assert_eq!(at(text, "a . \"b\""), "a.b");
            assert_eq!(at(text, "c ="), "a.b.c");
            assert_eq!(at(text, "d = [["), "a.b.d");
            assert_eq!(at(text, "\"x4\""), "a.b.d[1][1]");
            assert_eq!(at(text, "e = 1"), "arr[0].e");
            assert_eq!(at(text, "f = 2"), "arr[1].f");
        }

        #[test]
        fn odd_input_does_not_panic() {
            let texts = [
                "",
                "[",
                "[[",
                "a",
                "a =",
                "a = [",
                "a = {",
                "a = \"",
                "a = '''",
                "é = ]}",
                "a = \"\\",
                "[x]]\n]\n}",
                "a = [}]",
            ];
            for text in texts {
                for offset in 0..=text.len() + 2 {
                    key_at(text, offset);
                    line_column(text, offset);
                }
            }
        }

        #[test]
        fn line_and_column() {
            assert_eq!(line_column("a\nbé = c", 6), (2, 4));
            assert_eq!(line_column("ab", 100), (1, 3));
        }
    }
}

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
            ("[log]\nlevel = \" \"\n", "log.level"),
        ] {
            let (key, message) = reject(text);
            assert_eq!(key, want, "{message}");
            assert!(message.contains(&format!("`{want}`")), "{message}");
        }
    }
}
