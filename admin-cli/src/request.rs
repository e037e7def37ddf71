//! From a parsed command to the request the node executes.
//!
//! Building needs what only the node's welcome tells (its id, to turn a
//! bare `bob` into `@bob:<node id>`) and the clock (a mute's end), so both
//! come in as parameters: building stays a pure function, tested without a
//! node.

use confab_wire::NodeId;
use confab_wire::admin::AdminCommand;
use confab_wire::client::Moderation;

use crate::args::UserArg;
use crate::cli::{
    BackupCommand, Command, ConfigCommand, EventInRoom, InviteCommand, PeerCommand, ReportsCommand,
    RoleCommand, RoomCommand, UserCommand, UserInRoom,
};
use crate::error::{Failure, Result};

/// What building a request needs besides the command.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    /// The node spoken to (from its welcome).
    pub(crate) node: NodeId,
    /// Now, ms since the epoch.
    pub(crate) now_ms: u64,
    /// The password for `user create` / `user reset-password`, read or
    /// generated before connecting.
    pub(crate) password: Option<&'a str>,
}

/// The node's command for `command`, or `None` for the commands that run
/// here without a node.
pub(crate) fn build(command: &Command, cx: &Context<'_>) -> Result<Option<AdminCommand>> {
    let user = |u: &UserArg| u.resolve(&cx.node);
    let local = |u: &UserArg| u.local_on(&cx.node, "the account");
    let password = || {
        cx.password
            .map(str::to_string)
            .ok_or_else(|| Failure::internal("no password was prepared"))
    };
    let moderate = |t: &UserInRoom, action: fn(confab_wire::UserId) -> Moderation| -> Result<_> {
        Ok(AdminCommand::Moderate {
            room: t.room,
            action: action(user(&t.user)?),
        })
    };
    let reason = |r: &Option<String>| r.clone().unwrap_or_default();
    let cmd = match command {
        Command::Status => AdminCommand::Status,
        Command::Audit { limit } => AdminCommand::Audit { limit: *limit },
        Command::Role(r) => match r {
            RoleCommand::List { room } => AdminCommand::RoleList { room: *room },
            RoleCommand::Define {
                role,
                permissions,
                room,
            } => AdminCommand::RoleDefine {
                room: *room,
                role: role.clone(),
                permissions: *permissions,
            },
            RoleCommand::Grant {
                user: u,
                role,
                room,
            } => AdminCommand::RoleGrant {
                room: *room,
                user: user(u)?,
                role: role.clone(),
            },
            RoleCommand::Revoke {
                user: u,
                role,
                room,
            } => AdminCommand::RoleRevoke {
                room: *room,
                user: user(u)?,
                role: role.clone(),
            },
        },
        Command::Mute {
            target,
            duration_ms,
            reason: why,
        } => {
            let until = cx.now_ms.checked_add(*duration_ms).ok_or_else(|| {
                Failure::usage("that mute would end too far in the future: use a shorter --for")
            })?;
            AdminCommand::Moderate {
                room: target.room,
                action: Moderation::Mute {
                    target: user(&target.user)?,
                    until,
                    reason: reason(why),
                },
            }
        }
        Command::Unmute { target } => moderate(target, |target| Moderation::Unmute { target })?,
        Command::Unban { target } => moderate(target, |target| Moderation::Unban { target })?,
        Command::Kick {
            target,
            reason: why,
        } => AdminCommand::Moderate {
            room: target.room,
            action: Moderation::Kick {
                target: user(&target.user)?,
                reason: reason(why),
            },
        },
        Command::Ban {
            target,
            reason: why,
        } => AdminCommand::Moderate {
            room: target.room,
            action: Moderation::Ban {
                target: user(&target.user)?,
                reason: reason(why),
            },
        },
        Command::Pin {
            target: EventInRoom { event, room },
        } => AdminCommand::Pin {
            room: *room,
            target: *event,
        },
        Command::Unpin {
            target: EventInRoom { event, room },
        } => AdminCommand::Unpin {
            room: *room,
            target: *event,
        },
        Command::Redact {
            target: EventInRoom { event, room },
            reason: why,
        } => AdminCommand::Redact {
            room: *room,
            target: *event,
            reason: reason(why),
        },
        Command::Reports(r) => match r {
            ReportsCommand::List { all } => AdminCommand::ReportList { all: *all },
            ReportsCommand::Show { id } => AdminCommand::ReportShow { id: *id },
            ReportsCommand::Resolve { id, note } => AdminCommand::ReportResolve {
                id: *id,
                note: note.clone(),
            },
        },
        Command::User(u) => match u {
            UserCommand::Create {
                name, display_name, ..
            } => AdminCommand::UserCreate {
                name: local(&name.name)?,
                password: password()?,
                display_name: display_name.clone(),
            },
            UserCommand::Disable { name } => AdminCommand::UserDisable {
                name: local(&name.name)?,
            },
            UserCommand::Enable { name } => AdminCommand::UserEnable {
                name: local(&name.name)?,
            },
            UserCommand::ResetPassword { name, .. } => AdminCommand::UserResetPassword {
                name: local(&name.name)?,
                password: password()?,
            },
            UserCommand::List => AdminCommand::UserList,
            UserCommand::Export { name, .. } => AdminCommand::UserExport {
                name: local(&name.name)?,
            },
        },
        Command::Room(r) => match r {
            RoomCommand::List => AdminCommand::RoomList,
            RoomCommand::Show { room } => AdminCommand::RoomShow { room: *room },
            RoomCommand::Archive { room } => AdminCommand::RoomArchive { room: *room },
        },
        Command::Peer(p) => match p {
            PeerCommand::List => AdminCommand::PeerList,
            PeerCommand::Add { node, addr } => AdminCommand::PeerAdd {
                node: *node,
                addr: addr.clone(),
            },
            PeerCommand::Remove { node } => AdminCommand::PeerRemove { node: *node },
        },
        Command::Config(c) => match c {
            ConfigCommand::Get { setting } => AdminCommand::ConfigGet {
                key: setting.clone(),
            },
            ConfigCommand::Set { setting, value } => AdminCommand::ConfigSet {
                key: setting.clone(),
                value: value.clone(),
            },
        },
        Command::Invite(InviteCommand::Create { uses, days }) => AdminCommand::InviteCreate {
            uses: *uses,
            days: *days,
        },
        Command::Backup(BackupCommand::Create { .. }) => AdminCommand::BackupCreate,
        Command::Backup(BackupCommand::Verify { .. })
        | Command::Completions { .. }
        | Command::Id => return Ok(None),
    };
    Ok(Some(cmd))
}

/// True for commands that post room events, the ones `--as` applies to.
pub(crate) fn posts_events(command: &AdminCommand) -> bool {
    matches!(
        command,
        AdminCommand::Moderate { .. }
            | AdminCommand::Pin { .. }
            | AdminCommand::Unpin { .. }
            | AdminCommand::Redact { .. }
            | AdminCommand::RoleDefine { .. }
            | AdminCommand::RoleGrant { .. }
            | AdminCommand::RoleRevoke { .. }
            | AdminCommand::RoomArchive { .. }
    )
}

/// The `act_as` localpart for `command`: `--as` must name a user of this
/// node, and only commands that post room events take it.
pub(crate) fn act_as(
    command: &AdminCommand,
    user: Option<&UserArg>,
    node: &NodeId,
) -> Result<Option<String>> {
    let Some(user) = user else {
        return Ok(None);
    };
    if !posts_events(command) {
        return Err(Failure::usage(format!(
            "--as applies only to commands that post room events (mute, unmute, kick, ban, \
             unban, pin, unpin, redact, role define/grant/revoke, room archive), not `{}`",
            command.name()
        )));
    }
    user.local_on(node, "--as").map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;
    use confab_wire::{NodeKey, RoomId, UserId};

    fn node(n: u8) -> NodeId {
        NodeKey::from_secret(&[n; 32]).node_id()
    }

    fn build_args(args: &[&str], password: Option<&str>) -> Result<Option<AdminCommand>> {
        let cli =
            Cli::try_parse_from(std::iter::once("confabctl").chain(args.iter().copied())).unwrap();
        build(
            &cli.command,
            &Context {
                node: node(1),
                now_ms: 1_000_000,
                password,
            },
        )
    }

    #[test]
    fn bare_users_land_on_the_welcoming_node() {
        let room = RoomId([4; 32]).to_string();
        let cmd = build_args(&["mute", "bob", "--room", &room, "--for", "90s"], None)
            .unwrap()
            .unwrap();
        assert_eq!(
            cmd,
            AdminCommand::Moderate {
                room: RoomId([4; 32]),
                action: Moderation::Mute {
                    target: UserId::new(node(1), "bob").unwrap(),
                    until: 1_000_000 + 90_000,
                    reason: String::new(),
                },
            }
        );
        let remote = format!("@eve:{}", node(2));
        let cmd = build_args(&["ban", &remote, "--room", &room, "--reason", "spam"], None)
            .unwrap()
            .unwrap();
        assert!(matches!(
            cmd,
            AdminCommand::Moderate { action: Moderation::Ban { ref target, ref reason }, .. }
                if target.node() == &node(2) && reason == "spam"
        ));
    }

    #[test]
    fn accounts_are_localparts_of_this_node() {
        let cmd = build_args(&["user", "create", "bob"], Some("pw"))
            .unwrap()
            .unwrap();
        assert_eq!(
            cmd,
            AdminCommand::UserCreate {
                name: "bob".into(),
                password: "pw".into(),
                display_name: None,
            }
        );
        let remote = format!("@bob:{}", node(2));
        let e = build_args(&["user", "disable", &remote], None).unwrap_err();
        assert_eq!(e.kind.exit_code(), 2);
        assert!(e.message.contains("another node"), "{e}");
    }

    #[test]
    fn roles_without_a_room_are_node_wide() {
        let cmd = build_args(
            &["role", "define", "mod", "--permissions", "user.mute"],
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            cmd,
            AdminCommand::RoleDefine {
                room: None,
                role: "mod".into(),
                permissions: confab_wire::Permissions::USER_MUTE,
            }
        );
    }

    #[test]
    fn offline_commands_build_nothing() {
        assert_eq!(build_args(&["backup", "verify", "f"], None).unwrap(), None);
        assert_eq!(build_args(&["id"], None).unwrap(), None);
        assert_eq!(
            build_args(&["backup", "create", "--out", "f"], None).unwrap(),
            Some(AdminCommand::BackupCreate)
        );
    }

    #[test]
    fn act_as_only_for_room_events_and_local_users() {
        let n = node(1);
        let alice = UserArg::Local("alice".into());
        let pin = AdminCommand::Pin {
            room: RoomId([1; 32]),
            target: confab_wire::EventId([2; 32]),
        };
        assert_eq!(
            act_as(&pin, Some(&alice), &n).unwrap(),
            Some("alice".into())
        );
        assert_eq!(act_as(&pin, None, &n).unwrap(), None);
        let e = act_as(&AdminCommand::UserList, Some(&alice), &n).unwrap_err();
        assert!(
            e.message.contains("only to commands that post room events"),
            "{e}"
        );
        let other = UserArg::Full(UserId::new(node(2), "alice").unwrap());
        assert!(act_as(&pin, Some(&other), &n).is_err());
    }
}
