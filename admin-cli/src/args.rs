//! Parsers for the values on the command line: users, rooms, events, node
//! ids, permission lists and addresses.
//!
//! Each `parse_*` function is a clap value parser: it returns the typed
//! value or a message that says what the value should look like. A user may
//! be given as a bare localpart (`bob`), which needs the node's id to become
//! a [`UserId`]: that id arrives with the node's welcome, so such a user is
//! kept as a [`UserArg`] until then.

use std::fmt;

use confab_wire::{EventId, NodeId, Permissions, RoomId, UserId};

use crate::error::{Failure, Result};

/// A USER argument: `bob` (a user of the node spoken to) or
/// `@bob:<node id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UserArg {
    /// A localpart, on the node spoken to.
    Local(String),
    /// A full user id, possibly of another node.
    Full(UserId),
}

impl UserArg {
    /// The user id, with a bare localpart placed on `node`.
    pub(crate) fn resolve(&self, node: &NodeId) -> Result<UserId> {
        match self {
            UserArg::Local(name) => {
                UserId::new(*node, name).map_err(|e| Failure::usage(format!("user `{name}`: {e}")))
            }
            UserArg::Full(id) => Ok(id.clone()),
        }
    }

    /// The localpart of a user who must belong to `node` (accounts and
    /// `--as` only exist for the node's own users).
    pub(crate) fn local_on(&self, node: &NodeId, what: &str) -> Result<String> {
        match self {
            UserArg::Local(name) => Ok(name.clone()),
            UserArg::Full(id) if id.node() == node => Ok(id.localpart().to_string()),
            UserArg::Full(id) => Err(Failure::usage(format!(
                "{what} must be a user of this node ({node}); {id} belongs to another node"
            ))),
        }
    }
}

impl fmt::Display for UserArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserArg::Local(name) => f.write_str(name),
            UserArg::Full(id) => write!(f, "{id}"),
        }
    }
}

/// Parses a USER: `bob`, `@bob` (the same) or `@bob:<node id>`.
pub(crate) fn parse_user(s: &str) -> Result<UserArg, String> {
    let local = match s.strip_prefix('@') {
        Some(rest) if rest.contains(':') => {
            return s.parse::<UserId>().map(UserArg::Full).map_err(|e| {
                format!(
                    "`{}` is not a user: {e}; use `bob` or `@bob:<node id>`",
                    cut(s)
                )
            });
        }
        Some(rest) => rest,
        None => s,
    };
    UserId::validate_localpart(local)
        .map(|()| UserArg::Local(local.to_string()))
        .map_err(|e| {
            format!(
                "`{}` is not a user: {e}; use `bob` or `@bob:<node id>`",
                cut(s)
            )
        })
}

/// Parses a ROOM (`!<52 base32 characters>`).
pub(crate) fn parse_room(s: &str) -> Result<RoomId, String> {
    s.parse::<RoomId>().map_err(|e| {
        format!(
            "`{}` is not a room id: {e}; room ids look like `!` and 52 characters a-z, 2-7 \
             (`confabctl room list` shows them)",
            cut(s)
        )
    })
}

/// Parses an EVENT (`$<52 base32 characters>`). In most shells `$` must be
/// quoted: `'$abc…'`.
pub(crate) fn parse_event(s: &str) -> Result<EventId, String> {
    s.parse::<EventId>().map_err(|e| {
        let hint = if s.starts_with('$') {
            ""
        } else {
            " (quote it in the shell, like '$abc…', or `$` starts a variable)"
        };
        format!(
            "`{}` is not an event id: {e}; event ids look like `$` and 52 characters a-z, 2-7{hint}",
            cut(s)
        )
    })
}

/// Parses a NODE_ID (52 base32 characters).
pub(crate) fn parse_node_id(s: &str) -> Result<NodeId, String> {
    s.parse::<NodeId>().map_err(|e| {
        format!(
            "`{}` is not a node id: {e}; `confab-node id` prints a node's id",
            cut(s)
        )
    })
}

/// Parses a comma-separated permission list (`message.send,message.pin`).
/// An empty list is a role that allows nothing.
pub(crate) fn parse_permissions(s: &str) -> Result<Permissions, String> {
    let mut set = Permissions::NONE;
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match Permissions::from_name(name) {
            Some(p) => set = set.union(p),
            None => {
                let valid: Vec<&str> = Permissions::NAMES.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "`{}` is not a permission; the permissions are: {}",
                    cut(name),
                    valid.join(", ")
                ));
            }
        }
    }
    Ok(set)
}

/// Parses `HOST:PORT` (`node.example:4433`, `10.0.0.2:4433`, `[::1]:4433`);
/// the host is resolved later.
pub(crate) fn parse_host_port(s: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "`{}` is not an address: use HOST:PORT, like node.example.org:4433 or [::1]:4433",
            cut(s)
        )
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && !host.contains(':')
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    if port_ok && host_ok {
        Ok(s.to_string())
    } else {
        Err(bad())
    }
}

/// The start of a long input, for messages.
fn cut(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_wire::NodeKey;

    fn node(n: u8) -> NodeId {
        NodeKey::from_secret(&[n; 32]).node_id()
    }

    #[test]
    fn users_parse_as_localparts_or_full_ids() {
        let n = node(1);
        assert_eq!(parse_user("bob"), Ok(UserArg::Local("bob".into())));
        assert_eq!(parse_user("@bob"), Ok(UserArg::Local("bob".into())));
        let full = format!("@bob:{n}");
        let arg = parse_user(&full).unwrap();
        assert_eq!(arg.resolve(&node(2)).unwrap().to_string(), full);
        assert_eq!(
            UserArg::Local("bob".into())
                .resolve(&n)
                .unwrap()
                .to_string(),
            full
        );
    }

    #[test]
    fn bad_users_say_what_a_user_looks_like() {
        for bad in [
            "",
            "Bob",
            "@",
            "-bob",
            "bob smith",
            "@bob:nonsense",
            "@:abc",
            "a".repeat(33).as_str(),
        ] {
            let e = parse_user(bad).unwrap_err();
            assert!(e.contains("is not a user"), "{bad}: {e}");
            assert!(e.contains("@bob:<node id>"), "{bad}: {e}");
        }
        assert!(parse_user("Bob").unwrap_err().contains("a-z"));
    }

    #[test]
    fn accounts_and_act_as_must_be_local() {
        let (here, there) = (node(1), node(2));
        let remote = parse_user(&format!("@bob:{there}")).unwrap();
        let e = remote.local_on(&here, "--as").unwrap_err();
        assert!(e.message.contains("another node"), "{}", e.message);
        let local = parse_user(&format!("@bob:{here}")).unwrap();
        assert_eq!(local.local_on(&here, "--as").unwrap(), "bob");
    }

    #[test]
    fn rooms_and_events_need_their_sigils() {
        let room = RoomId([5; 32]);
        assert_eq!(parse_room(&room.to_string()), Ok(room));
        let e = parse_room(&room.to_b32()).unwrap_err();
        assert!(e.contains("is not a room id") && e.contains("'!'"), "{e}");
        assert!(parse_room("!short").unwrap_err().contains("52"));
        // An event id is not a room id.
        let ev = EventId([5; 32]);
        assert!(parse_room(&ev.to_string()).is_err());

        assert_eq!(parse_event(&ev.to_string()), Ok(ev));
        let e = parse_event(&ev.to_b32()).unwrap_err();
        assert!(e.contains("quote it"), "{e}");
        assert!(!parse_event("$abc").unwrap_err().contains("quote it"));
    }

    #[test]
    fn node_ids_parse() {
        let n = node(3);
        assert_eq!(parse_node_id(&n.to_string()), Ok(n));
        assert!(
            parse_node_id("abc")
                .unwrap_err()
                .contains("is not a node id")
        );
    }

    #[test]
    fn permissions_parse_against_the_names() {
        let p = parse_permissions("message.send, message.pin").unwrap();
        assert_eq!(p, Permissions::MESSAGE_SEND.union(Permissions::MESSAGE_PIN));
        assert_eq!(parse_permissions(""), Ok(Permissions::NONE));
        let all: Vec<&str> = Permissions::NAMES.iter().map(|(n, _)| *n).collect();
        assert_eq!(parse_permissions(&all.join(",")), Ok(Permissions::ALL));
        let e = parse_permissions("message.send,message.fly").unwrap_err();
        assert!(e.starts_with("`message.fly` is not a permission"), "{e}");
        for name in all {
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn addresses_need_host_and_port() {
        for good in [
            "node.example.org:4433",
            "10.0.0.2:1",
            "[::1]:4433",
            "localhost:65535",
        ] {
            assert_eq!(parse_host_port(good), Ok(good.to_string()));
        }
        for bad in [
            "node",
            "node:",
            ":4433",
            "node:0",
            "node:65536",
            "::1:4433",
            "[::1:4433",
            "a b:1",
            "[x]:1",
        ] {
            assert!(
                parse_host_port(bad).unwrap_err().contains("HOST:PORT"),
                "{bad}"
            );
        }
    }
}
