//! The admin protocol: `confabctl` ↔ node, over the node's Unix socket
//! (file permissions guard it) or QUIC (ALPN `confab-admin/1`, the admin's
//! key pinned in the node's config).
//!
//! The CLI sends `Hello`, the node answers `Welcome`; then each `Request`
//! gets one `Reply` with the same id, except a backup, whose replies carry
//! `more: true` until the last. Answers are generic on purpose: a
//! [`AdminOutput::Table`] or [`AdminOutput::Record`] of typed cells that
//! the CLI prints as a table or as JSON, so a new command needs no new
//! output type on either side.

use bincode::{Decode, Encode};

use crate::client::Moderation;
use crate::error::{Error, Result};
use crate::event::Permissions;
use crate::fed::TraceId;
use crate::frame::{Frame, protocol_messages};
use crate::{EventId, NodeId, RoomId, UserId, codec};

/// ALPN of the admin protocol over QUIC.
pub const ADMIN_ALPN: &[u8] = b"confab-admin/1";
/// The admin protocol version spoken here.
pub const ADMIN_PROTOCOL_VERSION: u16 = 1;
/// Most bytes of one backup chunk.
pub const BACKUP_CHUNK_MAX: usize = 512 * 1024;
/// Most bytes of a text field of a command (names, reasons, passwords,
/// config values).
pub const ADMIN_TEXT_MAX: usize = 4096;

/// CLI → node, first.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AdminHello {
    /// Protocol version.
    pub version: u16,
    /// The client, for the audit log (`confabctl 0.1.0`).
    pub client: String,
}

/// Node → CLI, the answer to hello.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AdminWelcome {
    /// Protocol version.
    pub version: u16,
    /// The node.
    pub node: NodeId,
    /// Its name.
    pub name: String,
}

/// One command with its envelope.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AdminRequest {
    /// Chosen by the CLI, echoed in replies.
    pub id: u64,
    /// Trace id for logs.
    pub trace: TraceId,
    /// For commands that post room events: the local user to act as (a
    /// localpart). Without it the node picks a local member of the room
    /// who holds the permission, the room's creator first.
    pub act_as: Option<String>,
    /// The command.
    pub command: AdminCommand,
}

/// What an admin can ask.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum AdminCommand {
    /// Version, uptime, rooms, users, sockets, peers, storage.
    Status,
    /// The newest entries of the audit log.
    Audit {
        /// How many.
        limit: u32,
    },
    /// Roles of a room, or the node-wide roles (`room: None`).
    RoleList {
        /// The room.
        room: Option<RoomId>,
    },
    /// Defines (or redefines) a role in a room, or node-wide: in every
    /// room of this node and in rooms created later.
    RoleDefine {
        /// The room (`None`: node-wide).
        room: Option<RoomId>,
        /// Role name.
        role: String,
        /// What it allows.
        permissions: Permissions,
    },
    /// Grants a role in a room, or node-wide.
    RoleGrant {
        /// The room (`None`: node-wide).
        room: Option<RoomId>,
        /// The user.
        user: UserId,
        /// The role.
        role: String,
    },
    /// Revokes a role in a room, or node-wide.
    RoleRevoke {
        /// The room (`None`: node-wide).
        room: Option<RoomId>,
        /// The user.
        user: UserId,
        /// The role.
        role: String,
    },
    /// Mute, unmute, kick, ban or unban: a signed room event.
    Moderate {
        /// The room.
        room: RoomId,
        /// What.
        action: Moderation,
    },
    /// Pins a message.
    Pin {
        /// The room.
        room: RoomId,
        /// The message.
        target: EventId,
    },
    /// Unpins a message.
    Unpin {
        /// The room.
        room: RoomId,
        /// The message.
        target: EventId,
    },
    /// Deletes a message (its content goes on every node; the reason stays).
    Redact {
        /// The room.
        room: RoomId,
        /// The message.
        target: EventId,
        /// Why.
        reason: String,
    },
    /// Users' reports: open ones, or all.
    ReportList {
        /// Resolved ones too.
        all: bool,
    },
    /// One report with the message it is about.
    ReportShow {
        /// Its number.
        id: u64,
    },
    /// Closes a report with a note.
    ReportResolve {
        /// Its number.
        id: u64,
        /// What was done.
        note: String,
    },
    /// Makes an account.
    UserCreate {
        /// Localpart.
        name: String,
        /// Password.
        password: String,
        /// Display name.
        display_name: Option<String>,
    },
    /// Disables an account: it cannot sign in; its sessions end.
    UserDisable {
        /// Localpart.
        name: String,
    },
    /// Enables a disabled account.
    UserEnable {
        /// Localpart.
        name: String,
    },
    /// Sets a new password; the user's sessions end.
    UserResetPassword {
        /// Localpart.
        name: String,
        /// The new password.
        password: String,
    },
    /// Every account.
    UserList,
    /// All of a user's data, as JSON (for data requests).
    UserExport {
        /// Localpart.
        name: String,
    },
    /// Every room of this node.
    RoomList,
    /// One room: members, roles, digest, size.
    RoomShow {
        /// The room.
        room: RoomId,
    },
    /// Archives a room (read-only for everyone).
    RoomArchive {
        /// The room.
        room: RoomId,
    },
    /// Configured peers with connection state and replication lag.
    PeerList,
    /// Adds a peer (pinned and dialled at once; kept across restarts).
    PeerAdd {
        /// Its node id.
        node: NodeId,
        /// Where it listens (`host:port`).
        addr: String,
    },
    /// Removes a peer (disconnected, unpinned).
    PeerRemove {
        /// Its node id.
        node: NodeId,
    },
    /// Runtime settings (one, or all).
    ConfigGet {
        /// The setting.
        key: Option<String>,
    },
    /// Changes a runtime setting; kept across restarts.
    ConfigSet {
        /// The setting.
        key: String,
        /// Its new value, as text.
        value: String,
    },
    /// Makes a registration invite code.
    InviteCreate {
        /// Registrations it allows.
        uses: u32,
        /// Days it is valid.
        days: u32,
    },
    /// A consistent snapshot of the store, streamed in chunks of the
    /// backup file format ([`crate::backup`]).
    BackupCreate,
}

impl AdminCommand {
    /// The command's name, for logs and the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            AdminCommand::Status => "status",
            AdminCommand::Audit { .. } => "audit",
            AdminCommand::RoleList { .. } => "role list",
            AdminCommand::RoleDefine { .. } => "role define",
            AdminCommand::RoleGrant { .. } => "role grant",
            AdminCommand::RoleRevoke { .. } => "role revoke",
            AdminCommand::Moderate { action, .. } => match action {
                Moderation::Mute { .. } => "mute",
                Moderation::Unmute { .. } => "unmute",
                Moderation::Kick { .. } => "kick",
                Moderation::Ban { .. } => "ban",
                Moderation::Unban { .. } => "unban",
                Moderation::DefineRole { .. } => "role define",
                Moderation::GrantRole { .. } => "role grant",
                Moderation::RevokeRole { .. } => "role revoke",
            },
            AdminCommand::Pin { .. } => "pin",
            AdminCommand::Unpin { .. } => "unpin",
            AdminCommand::Redact { .. } => "redact",
            AdminCommand::ReportList { .. } => "reports list",
            AdminCommand::ReportShow { .. } => "reports show",
            AdminCommand::ReportResolve { .. } => "reports resolve",
            AdminCommand::UserCreate { .. } => "user create",
            AdminCommand::UserDisable { .. } => "user disable",
            AdminCommand::UserEnable { .. } => "user enable",
            AdminCommand::UserResetPassword { .. } => "user reset-password",
            AdminCommand::UserList => "user list",
            AdminCommand::UserExport { .. } => "user export",
            AdminCommand::RoomList => "room list",
            AdminCommand::RoomShow { .. } => "room show",
            AdminCommand::RoomArchive { .. } => "room archive",
            AdminCommand::PeerList => "peer list",
            AdminCommand::PeerAdd { .. } => "peer add",
            AdminCommand::PeerRemove { .. } => "peer remove",
            AdminCommand::ConfigGet { .. } => "config get",
            AdminCommand::ConfigSet { .. } => "config set",
            AdminCommand::InviteCreate { .. } => "invite create",
            AdminCommand::BackupCreate => "backup create",
        }
    }

    /// True for commands that change something (they go to the audit log).
    pub fn changes(&self) -> bool {
        !matches!(
            self,
            AdminCommand::Status
                | AdminCommand::Audit { .. }
                | AdminCommand::RoleList { .. }
                | AdminCommand::ReportList { .. }
                | AdminCommand::ReportShow { .. }
                | AdminCommand::UserList
                | AdminCommand::RoomList
                | AdminCommand::RoomShow { .. }
                | AdminCommand::PeerList
                | AdminCommand::ConfigGet { .. }
        )
    }

    fn texts(&self) -> Vec<&str> {
        match self {
            AdminCommand::RoleDefine { role, .. }
            | AdminCommand::RoleGrant { role, .. }
            | AdminCommand::RoleRevoke { role, .. } => vec![role],
            AdminCommand::Moderate { action, .. } => match action {
                Moderation::Mute { reason, .. }
                | Moderation::Kick { reason, .. }
                | Moderation::Ban { reason, .. } => vec![reason],
                Moderation::DefineRole { role, .. }
                | Moderation::GrantRole { role, .. }
                | Moderation::RevokeRole { role, .. } => vec![role],
                Moderation::Unmute { .. } | Moderation::Unban { .. } => vec![],
            },
            AdminCommand::Redact { reason, .. } => vec![reason],
            AdminCommand::ReportResolve { note, .. } => vec![note],
            AdminCommand::UserCreate {
                name,
                password,
                display_name,
            } => {
                let mut v = vec![name.as_str(), password.as_str()];
                v.extend(display_name.as_deref());
                v
            }
            AdminCommand::UserDisable { name }
            | AdminCommand::UserEnable { name }
            | AdminCommand::UserExport { name } => vec![name],
            AdminCommand::UserResetPassword { name, password } => vec![name, password],
            AdminCommand::PeerAdd { addr, .. } => vec![addr],
            AdminCommand::ConfigGet { key } => key.iter().map(String::as_str).collect(),
            AdminCommand::ConfigSet { key, value } => vec![key, value],
            _ => vec![],
        }
    }
}

/// One value of a table or record.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Cell {
    /// Nothing (JSON `null`, an empty table cell).
    Null,
    /// Yes or no.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// Text.
    Text(String),
    /// A time, ms since the epoch (shown as UTC, JSON as the number).
    Time(u64),
}

impl Cell {
    /// Text from anything printable.
    pub fn text(s: impl ToString) -> Cell {
        Cell::Text(s.to_string())
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum AdminOutput {
    /// Done; a sentence saying what happened.
    Done(String),
    /// Rows under named columns.
    Table {
        /// Column names (JSON keys: snake_case).
        columns: Vec<String>,
        /// Rows, each as long as `columns`.
        rows: Vec<Vec<Cell>>,
    },
    /// Named fields of one thing.
    Record(Vec<(String, Cell)>),
    /// A JSON document (user export).
    Json(String),
    /// A piece of a backup file.
    BackupChunk(Vec<u8>),
}

/// Why a command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum AdminErrorCode {
    /// The command is malformed or a value is out of range.
    BadRequest,
    /// No such user, room, role, report, event or peer.
    NotFound,
    /// Not allowed (no local member holds the permission in the room).
    Forbidden,
    /// Already so (a name taken, a pin limit).
    Conflict,
    /// Not possible now (the node is recovering, a peer unreachable).
    Unavailable,
    /// Unexpected failure (the node logs the details).
    Internal,
}

/// A failed command.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AdminError {
    /// The kind.
    pub code: AdminErrorCode,
    /// What was wrong and, where it helps, what is valid.
    pub message: String,
}

impl AdminError {
    /// An error.
    pub fn new(code: AdminErrorCode, message: impl Into<String>) -> AdminError {
        AdminError {
            code,
            message: message.into(),
        }
    }
}

/// The answer to a request (one of several for a backup).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AdminReply {
    /// The request's id.
    pub id: u64,
    /// More replies follow for this request.
    pub more: bool,
    /// Success or a typed error.
    pub result: std::result::Result<AdminOutput, AdminError>,
}

protocol_messages! {
    /// A frame of the admin protocol.
    AdminMessage, "admin" {
        /// CLI → node, first.
        Hello(AdminHello) = 0x61,
        /// Node → CLI, answer to hello.
        Welcome(AdminWelcome) = 0x62,
        /// CLI → node.
        Request(AdminRequest) = 0x63,
        /// Node → CLI.
        Reply(AdminReply) = 0x64,
    }
}

impl AdminMessage {
    /// Checks limits bincode cannot express.
    pub fn validate(&self) -> Result<()> {
        match self {
            AdminMessage::Request(r) => {
                if r.command.texts().iter().any(|t| t.len() > ADMIN_TEXT_MAX)
                    || r.act_as.as_ref().is_some_and(|a| a.len() > ADMIN_TEXT_MAX)
                {
                    return Err(Error::invalid("admin request", "a text field is too long"));
                }
                Ok(())
            }
            AdminMessage::Reply(AdminReply {
                result: Ok(AdminOutput::BackupChunk(c)),
                ..
            }) if c.len() > BACKUP_CHUNK_MAX => Err(Error::invalid("backup chunk", "too large")),
            _ => Ok(()),
        }
    }
}

/// Decodes an admin frame.
pub fn decode_admin_frame(frame: &Frame) -> Result<AdminMessage> {
    AdminMessage::decode(frame)
}

/// The id of a request frame whose body did not decode, so it can be
/// answered.
pub fn request_id(frame: &Frame) -> Option<u64> {
    if frame.tag != 0x63 {
        return None;
    }
    codec::from_prefix::<u64>("request id", &frame.body)
        .ok()
        .map(|(id, _)| id)
}

/// Milliseconds since the epoch as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn format_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so leap days end each 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::FrameDecoder;

    fn round_trip(m: &AdminMessage) -> AdminMessage {
        let bytes = m.to_frame_bytes().unwrap();
        let mut d = FrameDecoder::default();
        d.push(&bytes);
        decode_admin_frame(&d.next_frame().unwrap().unwrap()).unwrap()
    }

    #[test]
    fn requests_and_replies_round_trip() {
        let req = AdminMessage::Request(AdminRequest {
            id: 7,
            trace: TraceId(9),
            act_as: Some("alice".into()),
            command: AdminCommand::Moderate {
                room: RoomId([3; 32]),
                action: Moderation::Mute {
                    target: UserId::new(crate::NodeKey::from_secret(&[1; 32]).node_id(), "bob")
                        .unwrap(),
                    until: 5,
                    reason: "cool off".into(),
                },
            },
        });
        assert_eq!(round_trip(&req), req);
        let reply = AdminMessage::Reply(AdminReply {
            id: 7,
            more: false,
            result: Ok(AdminOutput::Table {
                columns: vec!["a".into(), "b".into()],
                rows: vec![
                    vec![Cell::Int(-1), Cell::Time(3)],
                    vec![Cell::Null, Cell::text("x")],
                ],
            }),
        });
        assert_eq!(round_trip(&reply), reply);
    }

    #[test]
    fn long_texts_and_chunks_are_refused() {
        let req = AdminMessage::Request(AdminRequest {
            id: 1,
            trace: TraceId(0),
            act_as: None,
            command: AdminCommand::ConfigSet {
                key: "x".into(),
                value: "v".repeat(ADMIN_TEXT_MAX + 1),
            },
        });
        assert!(req.to_frame_bytes().is_err());
        let chunk = AdminMessage::Reply(AdminReply {
            id: 1,
            more: true,
            result: Ok(AdminOutput::BackupChunk(vec![0; BACKUP_CHUNK_MAX + 1])),
        });
        assert!(chunk.to_frame_bytes().is_err());
    }

    #[test]
    fn a_bad_request_body_still_names_its_id() {
        let mut body = Vec::new();
        crate::codec::append("id", &42u64, &mut body).unwrap();
        body.push(0xff);
        let f = Frame { tag: 0x63, body };
        assert!(decode_admin_frame(&f).is_err());
        assert_eq!(request_id(&f), Some(42));
    }
}
