//! The grammar of `confabctl`, as data: clap-derive types whose doc
//! comments are the help text.
//!
//! Parsing checks every value it can without the node (ids, durations,
//! permission names, addresses); [`crate::request`] then turns a parsed
//! command into the [`confab_wire::admin::AdminCommand`] the node executes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use confab_wire::{EventId, NodeId, Permissions, RoomId};

use crate::args::{
    UserArg, parse_event, parse_host_port, parse_node_id, parse_permissions, parse_room, parse_user,
};
use crate::connect::DEFAULT_SOCKET;
use crate::duration;

const TOP_AFTER_HELP: &str = "\
Connecting:
  By default confabctl talks to the node through its Unix socket,
  <data_dir>/admin.sock (./data/admin.sock; --socket PATH or
  CONFAB_ADMIN_SOCKET to change it): run it on the node's machine as the
  node's user. From elsewhere, give --node HOST:PORT with --node-id (the
  node's id) and --key FILE (your admin key; `confabctl id --key FILE`
  makes it and prints the id to pin in node.toml: [admin] keys = [\"<id>\"]).

Users, rooms and events:
  USER is `bob` (a user of the node you talk to) or `@bob:<node id>`.
  ROOM is `!` and 52 characters, EVENT is `$` and 52 characters (quote
  them in the shell). Times are shown in UTC.

Exit codes:
  0  ok
  1  internal error
  2  bad usage or bad request
  3  not found
  4  forbidden
  5  conflict (already so, or in the way)
  6  node unreachable or unavailable
  7  a backup file failed verification

Examples:
  confabctl status
  confabctl mute bob --room '!7xkq…' --for 2h --reason 'cooling off'
  confabctl --json user list | jq '.[].name'";

/// Operate a Confab node: roles, mutes, bans, reports, users, peers,
/// backups, status.
#[derive(Debug, Parser)]
#[command(name = "confabctl", version, about, after_help = TOP_AFTER_HELP)]
pub(crate) struct Cli {
    /// Print JSON instead of tables and sentences (errors too, on stdout,
    /// as {"ok":false,"code":…,"message":…}).
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Post room events (moderation, pins, redactions, roles, archiving) as
    /// this local user; without it the node picks a local member of the
    /// room who may, the room's creator first.
    #[arg(long = "as", global = true, value_name = "USER", value_parser = parse_user)]
    pub(crate) act_as: Option<UserArg>,

    /// The node's admin socket.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "CONFAB_ADMIN_SOCKET",
        default_value = DEFAULT_SOCKET
    )]
    pub(crate) socket: PathBuf,

    /// Connect over QUIC to the node's admin address instead of the socket
    /// (needs --node-id and --key).
    #[arg(long = "node", global = true, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub(crate) node_addr: Option<String>,

    /// The id of the node at --node (`confab-node id` prints it): only that
    /// key is accepted.
    #[arg(long = "node-id", global = true, value_name = "NODE_ID", value_parser = parse_node_id)]
    pub(crate) node_id: Option<NodeId>,

    /// Your admin key file, for --node (and for `id`).
    #[arg(long = "key", global = true, value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// A USER and the ROOM it is in.
#[derive(Debug, Args)]
pub(crate) struct UserInRoom {
    /// The user: `bob` or `@bob:<node id>`.
    #[arg(value_name = "USER", value_parser = parse_user)]
    pub(crate) user: UserArg,
    /// The room (`!…`).
    #[arg(long, value_name = "ROOM", value_parser = parse_room)]
    pub(crate) room: RoomId,
}

/// An EVENT and the ROOM it is in.
#[derive(Debug, Args)]
pub(crate) struct EventInRoom {
    /// The message's event id (`$…`, quoted in the shell).
    #[arg(value_name = "EVENT", value_parser = parse_event)]
    pub(crate) event: EventId,
    /// The room (`!…`).
    #[arg(long, value_name = "ROOM", value_parser = parse_room)]
    pub(crate) room: RoomId,
}

/// A user's localpart on this node (`bob`; `@bob:<this node>` works too).
#[derive(Debug, Args)]
pub(crate) struct UserName {
    /// The user: `bob`.
    #[arg(value_name = "NAME", value_parser = parse_user)]
    pub(crate) name: UserArg,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show the node's version, uptime, rooms, users, sockets, peers and
    /// storage.
    #[command(after_help = "Examples:\n  confabctl status\n  confabctl --json status")]
    Status,

    /// Show the newest entries of the audit log (who changed what, when).
    #[command(after_help = "Examples:\n  confabctl audit\n  confabctl audit --limit 200")]
    Audit {
        /// How many entries.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
    },

    /// List, define, grant and revoke roles, in a room or node-wide.
    #[command(
        subcommand,
        after_help = "Examples:\n  confabctl role list --room '!7xkq…'\n  confabctl role define \
                      moderator --permissions message.delete,user.mute,user.kick\n  confabctl \
                      role grant bob moderator --room '!7xkq…'"
    )]
    Role(RoleCommand),

    /// Mute a user in a room for a while (they can read, not post).
    #[command(
        after_help = "Examples:\n  confabctl mute bob --room '!7xkq…' --for 2h\n  confabctl \
                            mute @eve:b3x…  --room '!7xkq…' --for 1d12h --reason spam"
    )]
    Mute {
        #[command(flatten)]
        target: UserInRoom,
        /// How long: a number and a unit (s, m, h, d, w), like 90s, 15m,
        /// 2h, 7d, or parts together like 1h30m.
        #[arg(long = "for", value_name = "DURATION", value_parser = duration::parse_arg)]
        duration_ms: u64,
        /// Why (kept in the room's history).
        #[arg(long)]
        reason: Option<String>,
    },

    /// Lift a user's mute in a room.
    #[command(after_help = "Example:\n  confabctl unmute bob --room '!7xkq…'")]
    Unmute {
        #[command(flatten)]
        target: UserInRoom,
    },

    /// Remove a user from a room (they may join again if the room lets
    /// them).
    #[command(after_help = "Example:\n  confabctl kick bob --room '!7xkq…' --reason 'off topic'")]
    Kick {
        #[command(flatten)]
        target: UserInRoom,
        /// Why (kept in the room's history).
        #[arg(long)]
        reason: Option<String>,
    },

    /// Remove a user from a room and keep them out.
    #[command(after_help = "Example:\n  confabctl ban @eve:b3x… --room '!7xkq…' --reason spam")]
    Ban {
        #[command(flatten)]
        target: UserInRoom,
        /// Why (kept in the room's history).
        #[arg(long)]
        reason: Option<String>,
    },

    /// Lift a user's ban from a room.
    #[command(after_help = "Example:\n  confabctl unban @eve:b3x… --room '!7xkq…'")]
    Unban {
        #[command(flatten)]
        target: UserInRoom,
    },

    /// Pin a message in its room.
    #[command(after_help = "Example:\n  confabctl pin '$m4tz…' --room '!7xkq…'")]
    Pin {
        #[command(flatten)]
        target: EventInRoom,
    },

    /// Unpin a message.
    #[command(after_help = "Example:\n  confabctl unpin '$m4tz…' --room '!7xkq…'")]
    Unpin {
        #[command(flatten)]
        target: EventInRoom,
    },

    /// Delete a message's content on every node (the reason stays).
    #[command(
        after_help = "Example:\n  confabctl redact '$m4tz…' --room '!7xkq…' --reason \
                            'personal data'"
    )]
    Redact {
        #[command(flatten)]
        target: EventInRoom,
        /// Why (stays in place of the message).
        #[arg(long)]
        reason: Option<String>,
    },

    /// List, show and resolve users' reports.
    #[command(
        subcommand,
        after_help = "Examples:\n  confabctl reports list\n  confabctl reports show 12\n  \
                      confabctl reports resolve 12 --note 'banned the spammer'"
    )]
    Reports(ReportsCommand),

    /// Create, disable, enable, list and export accounts; reset passwords.
    #[command(
        subcommand,
        after_help = "Examples:\n  confabctl user create bob --display-name 'Bob B.'\n  \
                      confabctl user list\n  confabctl user export bob --out bob.json"
    )]
    User(UserCommand),

    /// List, show and archive rooms.
    #[command(
        subcommand,
        after_help = "Examples:\n  confabctl room list\n  confabctl room show '!7xkq…'"
    )]
    Room(RoomCommand),

    /// List, add and remove federation peers.
    #[command(
        subcommand,
        after_help = "Examples:\n  confabctl peer list\n  confabctl peer add b3x… \
                      peer.example.org:4433"
    )]
    Peer(PeerCommand),

    /// Read and change runtime settings (changes are kept across restarts).
    #[command(
        subcommand,
        after_help = "Examples:\n  confabctl config get\n  confabctl config set \
                      registration invite"
    )]
    Config(ConfigCommand),

    /// Make registration invite codes.
    #[command(
        subcommand,
        after_help = "Example:\n  confabctl invite create --uses 5 --days 14"
    )]
    Invite(InviteCommand),

    /// Take a backup from the running node, or check a backup file.
    #[command(
        subcommand,
        after_help = "Examples:\n  confabctl backup create --out /backups/node-2024-05-01.confab\n  \
                      confabctl backup verify /backups/node-2024-05-01.confab"
    )]
    Backup(BackupCommand),

    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  confabctl completions bash > \
                            /etc/bash_completion.d/confabctl\n  confabctl completions zsh > \
                            \"${fpath[1]}/_confabctl\"\n  confabctl completions fish > \
                            ~/.config/fish/completions/confabctl.fish")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the id of your admin key (--key FILE), making the key if it
    /// does not exist. Pin the id in node.toml: [admin] keys = ["<id>"].
    #[command(after_help = "Example:\n  confabctl id --key ~/.config/confab/admin.key")]
    Id,
}

/// `role …`
#[derive(Debug, Subcommand)]
pub(crate) enum RoleCommand {
    /// List the roles of a room, or the node-wide roles.
    #[command(
        after_help = "Examples:\n  confabctl role list\n  confabctl role list --room \
                            '!7xkq…'"
    )]
    List {
        /// The room (without it: node-wide roles).
        #[arg(long, value_name = "ROOM", value_parser = parse_room)]
        room: Option<RoomId>,
    },
    /// Define (or redefine) a role in a room, or node-wide: in every room
    /// of this node and in rooms made later.
    #[command(
        after_help = "Examples:\n  confabctl role define moderator --permissions \
                            message.delete,message.pin,user.mute,user.kick\n  confabctl role \
                            define helper --permissions message.pin --room '!7xkq…'\n\n\
                            Permissions: message.send, message.delete, message.pin, user.mute, \
                            user.kick, user.ban, room.settings, role.manage"
    )]
    Define {
        /// The role's name.
        role: String,
        /// What it allows, separated by commas.
        #[arg(long, value_name = "NAMES", value_parser = parse_permissions)]
        permissions: Permissions,
        /// The room (without it: node-wide).
        #[arg(long, value_name = "ROOM", value_parser = parse_room)]
        room: Option<RoomId>,
    },
    /// Give a user a role, in a room or node-wide.
    #[command(
        after_help = "Examples:\n  confabctl role grant bob moderator\n  confabctl role \
                            grant bob helper --room '!7xkq…'"
    )]
    Grant {
        /// The user: `bob` or `@bob:<node id>`.
        #[arg(value_name = "USER", value_parser = parse_user)]
        user: UserArg,
        /// The role.
        role: String,
        /// The room (without it: node-wide).
        #[arg(long, value_name = "ROOM", value_parser = parse_room)]
        room: Option<RoomId>,
    },
    /// Take a role from a user, in a room or node-wide.
    #[command(after_help = "Example:\n  confabctl role revoke bob moderator --room '!7xkq…'")]
    Revoke {
        /// The user: `bob` or `@bob:<node id>`.
        #[arg(value_name = "USER", value_parser = parse_user)]
        user: UserArg,
        /// The role.
        role: String,
        /// The room (without it: node-wide).
        #[arg(long, value_name = "ROOM", value_parser = parse_room)]
        room: Option<RoomId>,
    },
}

/// `reports …`
#[derive(Debug, Subcommand)]
pub(crate) enum ReportsCommand {
    /// List open reports (or all with --all).
    #[command(after_help = "Examples:\n  confabctl reports list\n  confabctl reports list --all")]
    List {
        /// Resolved reports too.
        #[arg(long)]
        all: bool,
    },
    /// Show one report and the message it is about.
    #[command(after_help = "Example:\n  confabctl reports show 12")]
    Show {
        /// The report's number.
        id: u64,
    },
    /// Close a report with a note saying what was done.
    #[command(after_help = "Example:\n  confabctl reports resolve 12 --note 'warned the user'")]
    Resolve {
        /// The report's number.
        id: u64,
        /// What was done.
        #[arg(long)]
        note: String,
    },
}

/// `user …`
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Make an account. Without --password-stdin a password is generated
    /// and printed once.
    #[command(
        after_help = "Examples:\n  confabctl user create bob --display-name 'Bob B.'\n  \
                            printf '%s\\n' \"$PW\" | confabctl user create bob --password-stdin"
    )]
    Create {
        #[command(flatten)]
        name: UserName,
        /// The name others see.
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: it cannot sign in, and its sessions end.
    #[command(after_help = "Example:\n  confabctl user disable bob")]
    Disable {
        #[command(flatten)]
        name: UserName,
    },
    /// Enable a disabled account.
    #[command(after_help = "Example:\n  confabctl user enable bob")]
    Enable {
        #[command(flatten)]
        name: UserName,
    },
    /// Set a new password (generated and printed once, unless
    /// --password-stdin); the user's sessions end.
    #[command(
        after_help = "Examples:\n  confabctl user reset-password bob\n  printf '%s\\n' \
                            \"$PW\" | confabctl user reset-password bob --password-stdin"
    )]
    ResetPassword {
        #[command(flatten)]
        name: UserName,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every account.
    #[command(after_help = "Examples:\n  confabctl user list\n  confabctl --json user list")]
    List,
    /// Export all of a user's data as JSON (for a data request).
    #[command(
        after_help = "Examples:\n  confabctl user export bob --out bob.json\n  confabctl \
                            user export bob | jq ."
    )]
    Export {
        #[command(flatten)]
        name: UserName,
        /// Write to this file (mode 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace the --out file if it exists.
        #[arg(long, requires = "out")]
        force: bool,
    },
}

/// `room …`
#[derive(Debug, Subcommand)]
pub(crate) enum RoomCommand {
    /// List every room of this node.
    #[command(after_help = "Example:\n  confabctl room list")]
    List,
    /// Show one room: members, roles, digest, size.
    #[command(after_help = "Example:\n  confabctl room show '!7xkq…'")]
    Show {
        /// The room (`!…`).
        #[arg(value_name = "ROOM", value_parser = parse_room)]
        room: RoomId,
    },
    /// Archive a room: it becomes read-only for everyone, on every node.
    #[command(after_help = "Example:\n  confabctl room archive '!7xkq…'")]
    Archive {
        /// The room (`!…`).
        #[arg(value_name = "ROOM", value_parser = parse_room)]
        room: RoomId,
    },
}

/// `peer …`
#[derive(Debug, Subcommand)]
pub(crate) enum PeerCommand {
    /// List configured peers with connection state and replication lag.
    #[command(after_help = "Example:\n  confabctl peer list")]
    List,
    /// Add a peer: pinned and dialled at once, kept across restarts.
    #[command(after_help = "Example:\n  confabctl peer add b3x… peer.example.org:4433")]
    Add {
        /// Its node id (`confab-node id` on that machine prints it).
        #[arg(value_name = "NODE_ID", value_parser = parse_node_id)]
        node: NodeId,
        /// Where it listens for federation.
        #[arg(value_name = "HOST:PORT", value_parser = parse_host_port)]
        addr: String,
    },
    /// Remove a peer: disconnected and unpinned.
    #[command(after_help = "Example:\n  confabctl peer remove b3x…")]
    Remove {
        /// Its node id.
        #[arg(value_name = "NODE_ID", value_parser = parse_node_id)]
        node: NodeId,
    },
}

/// `config …`
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Show one runtime setting, or all of them.
    #[command(
        after_help = "Examples:\n  confabctl config get\n  confabctl config get \
                            registration"
    )]
    Get {
        /// The setting (without it: all).
        #[arg(value_name = "KEY")]
        setting: Option<String>,
    },
    /// Change a runtime setting; kept across restarts.
    #[command(after_help = "Example:\n  confabctl config set registration invite")]
    Set {
        /// The setting (`config get` lists them).
        #[arg(value_name = "KEY")]
        setting: String,
        /// Its new value.
        value: String,
    },
}

/// `invite …`
#[derive(Debug, Subcommand)]
pub(crate) enum InviteCommand {
    /// Make a code and print it; give it to the person who will register.
    #[command(
        after_help = "Examples:\n  confabctl invite create\n  confabctl invite create \
                            --uses 5 --days 14"
    )]
    Create {
        /// How many accounts it may create.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        uses: u32,
        /// Days until it expires.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
    },
}

/// `backup …`
#[derive(Debug, Subcommand)]
pub(crate) enum BackupCommand {
    /// Take a consistent backup of the running node into FILE (mode 0600:
    /// it holds the node's secret key). The file appears only once it is
    /// whole and verified.
    #[command(after_help = "Examples:\n  confabctl backup create --out \
                            /backups/node-$(date +%F).confab\n  confabctl backup create --out \
                            latest.confab --force")]
    Create {
        /// The file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Check a backup file (offline): every record, the entry count and
    /// the checksum; prints what it holds. Exit 7 if it is damaged.
    #[command(after_help = "Example:\n  confabctl backup verify /backups/node-2024-05-01.confab")]
    Verify {
        /// The backup file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("confabctl").chain(args.iter().copied()))
    }

    const ROOM: &str = "!aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_help_and_examples() {
        fn walk(cmd: &clap::Command, path: &str) {
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_name() == "help" {
                    continue;
                }
                assert!(sub.get_about().is_some(), "{path} has no doc comment");
                let after = sub
                    .get_after_help()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                assert!(after.contains("confabctl "), "{path} has no example");
                walk(sub, &path);
            }
        }
        walk(&Cli::command(), "confabctl");
        let top = Cli::command().render_help().to_string();
        assert!(top.contains("Exit codes:"), "{top}");
        for code in [
            "0  ok",
            "6  node unreachable",
            "7  a backup file failed verification",
        ] {
            assert!(top.contains(code), "{top}");
        }
    }

    #[test]
    fn help_and_version_work() {
        for args in [
            &["--help"][..],
            &["mute", "--help"],
            &["role", "define", "--help"],
            &["--version"],
        ] {
            let e = parse(args).unwrap_err();
            assert!(
                matches!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                ),
                "{args:?}: {e}"
            );
        }
    }

    #[test]
    fn mute_needs_a_room_and_a_duration() {
        assert!(parse(&["mute", "bob", "--for", "2h"]).is_err());
        assert!(parse(&["mute", "bob", "--room", ROOM]).is_err());
        let e = parse(&["mute", "bob", "--room", ROOM, "--for", "2x"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("`2x` is not a duration"), "{e}");
        let cli = parse(&[
            "mute", "bob", "--room", ROOM, "--for", "1h30m", "--as", "alice",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Mute {
                duration_ms: 5_400_000,
                ..
            }
        ));
        assert_eq!(cli.act_as, Some(UserArg::Local("alice".into())));
    }

    #[test]
    fn bad_ids_are_usage_errors() {
        for args in [
            &["kick", "Bob!", "--room", ROOM][..],
            &["kick", "bob", "--room", "general"],
            &["pin", "abc", "--room", ROOM],
            &["peer", "add", "nonsense", "host:1"],
            &["role", "define", "x", "--permissions", "message.fly"],
            &["--node", "nohost", "status"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}: {e}"
            );
        }
        let e = parse(&["role", "define", "x", "--permissions", "message.fly"]).unwrap_err();
        assert!(
            e.to_string().contains("message.send, message.delete"),
            "{e}"
        );
    }

    #[test]
    fn destructive_and_offline_commands_need_their_flags() {
        // A backup needs somewhere to go; a restore, a directory to fill.
        assert!(parse(&["backup", "create"]).is_err());
        assert!(parse(&["user", "export", "bob", "--force"]).is_err());
        let cli = parse(&["backup", "create", "--out", "b.confab"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Backup(BackupCommand::Create { force: false, .. })
        ));
        assert!(parse(&["invite", "create", "--uses", "0"]).is_err());
        assert!(parse(&["audit", "--limit", "0"]).is_err());
    }

    #[test]
    fn defaults_and_globals() {
        let cli = parse(&["audit"]).unwrap();
        assert!(matches!(cli.command, Command::Audit { limit: 50 }));
        let cli = parse(&["invite", "create"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Invite(InviteCommand::Create { uses: 1, days: 7 })
        ));
        // Global flags go before or after the command.
        let cli = parse(&["status", "--json", "--socket", "/x/admin.sock"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.socket, PathBuf::from("/x/admin.sock"));
        let cli = parse(&["id", "--key", "k"]).unwrap();
        assert_eq!(cli.key_file, Some(PathBuf::from("k")));
        let cli = parse(&["completions", "zsh"]).unwrap();
        assert!(matches!(cli.command, Command::Completions { .. }));
    }
}
