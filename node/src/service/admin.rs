//! The admin service: what `confabctl` asks of a node. Moderation becomes
//! signed room events posted as a local member who holds the permission,
//! so every node in the room enforces it; everything else is this node's
//! own business (accounts, reports, peers, settings, backups). Every
//! command that changes something is written to the audit log with who
//! asked, what and when.

use std::fmt::Write as _;
use std::time::Instant;

use confab_wire::admin::{
    AdminCommand, AdminError, AdminErrorCode, AdminOutput, AdminReply, AdminRequest,
    BACKUP_CHUNK_MAX, Cell,
};
use confab_wire::backup::BackupHeader;
use confab_wire::client::{Anchor, ClientError, ErrorCode, Moderation, Registration, Response};
use confab_wire::event::{Content, EventKind, ReasonContent};
use confab_wire::{EventId, NodeId, Permissions, RoomId, UserId};

use super::{ClientService, ServiceSettings};
use crate::engine::Membership;
use crate::local::now_ms;
use crate::store::admin::{AuditEntry, PeerChange};

/// Longest a user export may grow (messages beyond are counted, not listed).
pub const EXPORT_MESSAGES_MAX: usize = 100_000;

/// Runtime settings `config get|set` knows, with what they take.
pub const SETTINGS: &[(&str, &str)] = &[
    ("registration", "open, invite or closed"),
    ("welcome_bot", "on or off"),
    (
        "max_upload_bytes",
        "bytes, like 26214400 or 25MiB (1 KiB to 1 GiB)",
    ),
    ("messages_per_minute", "a number from 1 to 100000"),
];

/// Who is asking: the OS user behind the socket or the admin's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor(pub String);

type Outcome = Result<AdminOutput, AdminError>;

fn fail(code: AdminErrorCode, message: impl Into<String>) -> AdminError {
    AdminError::new(code, message)
}

fn internal(e: crate::Error) -> AdminError {
    tracing::error!(error = %e, "admin command failed");
    fail(
        AdminErrorCode::Internal,
        "internal error (see the node's log)",
    )
}

/// A client error (from the code shared with browsers) for an admin.
fn from_client(e: ClientError) -> AdminError {
    let code = match e.code {
        ErrorCode::NotFound => AdminErrorCode::NotFound,
        ErrorCode::Forbidden | ErrorCode::Muted | ErrorCode::Archived => AdminErrorCode::Forbidden,
        ErrorCode::Conflict => AdminErrorCode::Conflict,
        ErrorCode::Unavailable => AdminErrorCode::Unavailable,
        ErrorCode::Internal => AdminErrorCode::Internal,
        _ => AdminErrorCode::BadRequest,
    };
    fail(code, e.message)
}

fn done(s: impl Into<String>) -> Outcome {
    Ok(AdminOutput::Done(s.into()))
}

fn table(columns: &[&str], rows: Vec<Vec<Cell>>) -> Outcome {
    Ok(AdminOutput::Table {
        columns: columns.iter().map(|c| (*c).to_string()).collect(),
        rows,
    })
}

fn record(fields: Vec<(&str, Cell)>) -> Outcome {
    Ok(AdminOutput::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    ))
}

fn int(n: impl TryInto<i64>) -> Cell {
    n.try_into().map_or(Cell::Null, Cell::Int)
}

fn opt_text(s: Option<impl ToString>) -> Cell {
    s.map_or(Cell::Null, Cell::text)
}

/// The permission a moderation command needs in the room.
fn needs(action: &Moderation) -> Permissions {
    match action {
        Moderation::Mute { .. } | Moderation::Unmute { .. } => Permissions::USER_MUTE,
        Moderation::Kick { .. } => Permissions::USER_KICK,
        Moderation::Ban { .. } | Moderation::Unban { .. } => Permissions::USER_BAN,
        Moderation::DefineRole { .. }
        | Moderation::GrantRole { .. }
        | Moderation::RevokeRole { .. } => Permissions::ROLE_MANAGE,
    }
}

fn perm_name(p: Permissions) -> String {
    p.names().join(",")
}

/// Parses a size like `25MiB`, `512KiB`, `1GiB` or plain bytes.
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = [
        ("GiB", 1u64 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suffix, m)| v.strip_suffix(suffix).map(|n| (n.trim(), *m)))
    .unwrap_or((v, 1));
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// The admin side of the node. Cloning shares it.
#[derive(Clone, Debug)]
pub struct AdminService {
    svc: ClientService,
    started: Instant,
    key_file: std::path::PathBuf,
    software: String,
}

impl AdminService {
    /// The admin service over the node's client service; `key_file` is
    /// the node's key, carried in backups.
    pub fn new(svc: ClientService, key_file: std::path::PathBuf) -> AdminService {
        AdminService {
            svc,
            started: Instant::now(),
            key_file,
            software: format!("confab-node {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Applies the runtime settings kept in the store over the
    /// configuration's (call once at start).
    pub fn apply_kept_settings(&self) -> crate::Result<()> {
        let mut s = self.svc.settings();
        for (k, v) in self.svc.store().settings_changed()? {
            match apply_setting(&mut s, &k, &v) {
                Ok(()) => {}
                Err(e) => tracing::warn!(setting = %k, error = %e.message, "kept setting ignored"),
            }
        }
        self.set_settings(s);
        Ok(())
    }

    fn set_settings(&self, s: ServiceSettings) {
        self.svc.set_settings(s);
        if let Some(fed) = self.svc.federation() {
            fed.set_max_blob(s.max_upload_bytes);
        }
    }

    /// The welcome for a CLI.
    pub fn welcome(&self) -> confab_wire::admin::AdminWelcome {
        confab_wire::admin::AdminWelcome {
            version: confab_wire::admin::ADMIN_PROTOCOL_VERSION,
            node: self.svc.node_id(),
            name: self.svc.inner.name.clone(),
        }
    }

    /// Runs one request; `reply` gets each answer (several for a backup,
    /// all but the last with `more`). Blocking: call off the async runtime.
    pub fn handle(
        &self,
        actor: &Actor,
        req: AdminRequest,
        reply: &mut dyn FnMut(AdminReply) -> bool,
    ) {
        let id = req.id;
        let name = req.command.name();
        let changes = req.command.changes();
        let detail = self.describe(&req);
        let span =
            tracing::info_span!("admin", trace = %req.trace, command = name, actor = %actor.0);
        let _g = span.enter();
        let result = if let AdminCommand::BackupCreate = req.command {
            self.backup(id, reply)
        } else {
            self.run(&req)
        };
        if changes {
            let entry = AuditEntry {
                ts: now_ms(),
                actor: actor.0.clone(),
                command: name.to_string(),
                detail,
                outcome: match &result {
                    Ok(_) => "ok".into(),
                    Err(e) => format!("{:?}", e.code),
                },
            };
            let store = self.svc.store();
            if let Err(e) = store.audit(&entry).and_then(|_| store.wait_durable()) {
                tracing::error!(error = %e, "could not write the audit log");
            }
            tracing::info!(outcome = %entry.outcome, detail = %entry.detail, "admin command");
        }
        match result {
            Ok(output) => {
                let mut pieces = split(output).into_iter().peekable();
                while let Some(piece) = pieces.next() {
                    let more = pieces.peek().is_some();
                    if !reply(AdminReply {
                        id,
                        more,
                        result: Ok(piece),
                    }) {
                        return;
                    }
                }
            }
            Err(e) => {
                reply(AdminReply {
                    id,
                    more: false,
                    result: Err(e),
                });
            }
        }
    }

    /// The command's arguments for the audit log, passwords left out.
    fn describe(&self, req: &AdminRequest) -> String {
        let room = |r: &Option<RoomId>| r.map_or("node-wide".to_string(), |r| format!("room={r}"));
        let mut s = match &req.command {
            AdminCommand::RoleDefine {
                room: r,
                role,
                permissions,
            } => format!(
                "{} role={role} permissions={}",
                room(r),
                perm_name(*permissions)
            ),
            AdminCommand::RoleGrant {
                room: r,
                user,
                role,
            }
            | AdminCommand::RoleRevoke {
                room: r,
                user,
                role,
            } => {
                format!("{} user={user} role={role}", room(r))
            }
            AdminCommand::Moderate { room, action } => match action {
                Moderation::Mute {
                    target,
                    until,
                    reason,
                } => format!("room={room} user={target} until={until} reason={reason:?}"),
                Moderation::Kick { target, reason } | Moderation::Ban { target, reason } => {
                    format!("room={room} user={target} reason={reason:?}")
                }
                Moderation::Unmute { target } | Moderation::Unban { target } => {
                    format!("room={room} user={target}")
                }
                other => format!("room={room} {}", describe_moderation(other)),
            },
            AdminCommand::Pin { room, target } | AdminCommand::Unpin { room, target } => {
                format!("room={room} event={target}")
            }
            AdminCommand::Redact {
                room,
                target,
                reason,
            } => format!("room={room} event={target} reason={reason:?}"),
            AdminCommand::ReportResolve { id, note } => format!("report={id} note={note:?}"),
            AdminCommand::UserCreate {
                name, display_name, ..
            } => match display_name {
                Some(d) => format!("user={name} display_name={d:?}"),
                None => format!("user={name}"),
            },
            AdminCommand::UserDisable { name }
            | AdminCommand::UserEnable { name }
            | AdminCommand::UserExport { name }
            | AdminCommand::UserResetPassword { name, .. } => format!("user={name}"),
            AdminCommand::RoomArchive { room } => format!("room={room}"),
            AdminCommand::PeerAdd { node, addr } => format!("peer={node} addr={addr}"),
            AdminCommand::PeerRemove { node } => format!("peer={node}"),
            AdminCommand::ConfigSet { key, value } => format!("{key}={value}"),
            AdminCommand::InviteCreate { uses, days } => format!("uses={uses} days={days}"),
            _ => String::new(),
        };
        if let Some(a) = &req.act_as {
            let _ = write!(s, " as={a}");
        }
        s
    }

    fn run(&self, req: &AdminRequest) -> Outcome {
        let trace = req.trace;
        let act_as = req.act_as.as_deref();
        match &req.command {
            AdminCommand::Status => self.status(),
            AdminCommand::Audit { limit } => self.audit(*limit),
            AdminCommand::RoleList { room } => self.role_list(room.as_ref()),
            AdminCommand::RoleDefine {
                room,
                role,
                permissions,
            } => self.role_define(room.as_ref(), role, *permissions, act_as, trace),
            AdminCommand::RoleGrant { room, user, role } => {
                self.role_grant(room.as_ref(), user, role, true, act_as, trace)
            }
            AdminCommand::RoleRevoke { room, user, role } => {
                self.role_grant(room.as_ref(), user, role, false, act_as, trace)
            }
            AdminCommand::Moderate { room, action } => {
                // A mute is for someone in the room (the room's rules take
                // one of anyone; a ban may well come first, to keep them
                // out; a kick of a non-member the rules refuse).
                if let Moderation::Mute { target, .. } = action {
                    let present = self.svc.rooms().room(room).is_some_and(|r| {
                        matches!(
                            r.engine().state().membership(target),
                            Membership::Joined { .. } | Membership::Invited
                        )
                    });
                    if !present && self.svc.rooms().room(room).is_some() {
                        return Err(fail(
                            AdminErrorCode::NotFound,
                            format!(
                                "{target} is not a member of {room} (`confabctl room show` lists them)"
                            ),
                        ));
                    }
                }
                let actor = self.acting(room, needs(action), act_as)?;
                let what = describe_moderation(action);
                let ev = self.event_of(self.svc.moderate(&actor, room, action.clone(), trace))?;
                done(format!("{what} in {room} as {actor}: event {ev}"))
            }
            AdminCommand::Pin { room, target } => self.post_as(
                (room, Permissions::MESSAGE_PIN, act_as, trace),
                EventKind::Pin { target: *target },
                Content::Empty,
                &format!("pinned {target} in {room}"),
            ),
            AdminCommand::Unpin { room, target } => self.post_as(
                (room, Permissions::MESSAGE_PIN, act_as, trace),
                EventKind::Unpin { target: *target },
                Content::Empty,
                &format!("unpinned {target} in {room}"),
            ),
            AdminCommand::Redact {
                room,
                target,
                reason,
            } => self.post_as(
                (room, Permissions::MESSAGE_DELETE, act_as, trace),
                EventKind::Redact { target: *target },
                Content::Reason(ReasonContent {
                    reason: reason.clone(),
                }),
                &format!("deleted {target} in {room}"),
            ),
            AdminCommand::ReportList { all } => self.reports(*all),
            AdminCommand::ReportShow { id } => self.report(*id),
            AdminCommand::ReportResolve { id, note } => {
                if let Some(r) = self.svc.store().report(*id).map_err(internal)?
                    && let Some(done_note) = r.resolution
                {
                    return Err(fail(
                        AdminErrorCode::Conflict,
                        format!("report #{id} is already resolved: {done_note:?}"),
                    ));
                }
                if !self
                    .svc
                    .store()
                    .resolve_report(*id, note)
                    .map_err(internal)?
                {
                    return Err(fail(
                        AdminErrorCode::NotFound,
                        format!("no report #{id} (see `confabctl reports list --all`)"),
                    ));
                }
                self.svc.store().wait_durable().map_err(internal)?;
                done(format!("report #{id} resolved"))
            }
            AdminCommand::UserCreate {
                name,
                password,
                display_name,
            } => {
                self.svc
                    .inner
                    .accounts
                    .create(name, password, display_name.as_deref(), now_ms())
                    .map_err(from_client)?;
                done(format!("created {}", self.local_user(name)?))
            }
            AdminCommand::UserDisable { name } => self.set_disabled(name, true),
            AdminCommand::UserEnable { name } => self.set_disabled(name, false),
            AdminCommand::UserResetPassword { name, password } => {
                let user = self.local_user(name)?;
                let hash = self
                    .svc
                    .inner
                    .accounts
                    .hash_password_checked(password)
                    .map_err(from_client)?;
                self.svc
                    .store()
                    .update_account(name, |a| a.password_hash.clone_from(&hash))
                    .map_err(internal)?
                    .ok_or_else(|| self.no_user(name))?;
                self.end_sessions(&user)?;
                done(format!(
                    "new password set for {user}; their sessions were ended"
                ))
            }
            AdminCommand::UserList => self.users(),
            AdminCommand::UserExport { name } => self.export(name),
            AdminCommand::RoomList => self.rooms(),
            AdminCommand::RoomShow { room } => self.room(room),
            AdminCommand::RoomArchive { room } => {
                if self
                    .svc
                    .rooms()
                    .room(room)
                    .is_some_and(|r| r.engine().state().archived)
                {
                    return Err(fail(
                        AdminErrorCode::Conflict,
                        format!("{room} is already archived"),
                    ));
                }
                self.post_as(
                    (room, Permissions::ROOM_SETTINGS, act_as, trace),
                    EventKind::Archive,
                    Content::Empty,
                    &format!("archived {room}"),
                )
            }
            AdminCommand::PeerList => self.peers(),
            AdminCommand::PeerAdd { node, addr } => self.peer_add(*node, addr),
            AdminCommand::PeerRemove { node } => self.peer_remove(node),
            AdminCommand::ConfigGet { key } => self.config_get(key.as_deref()),
            AdminCommand::ConfigSet { key, value } => self.config_set(key, value),
            AdminCommand::InviteCreate { uses, days } => {
                if *uses == 0 || *days == 0 || *days > 3650 {
                    return Err(fail(
                        AdminErrorCode::BadRequest,
                        "an invite needs at least 1 use and 1 to 3650 days",
                    ));
                }
                let now = now_ms();
                let code = self
                    .svc
                    .inner
                    .accounts
                    .create_invite(*uses, now + u64::from(*days) * 86_400_000, now)
                    .map_err(from_client)?;
                record(vec![
                    ("code", Cell::text(code)),
                    ("uses", int(*uses)),
                    ("expires", Cell::Time(now + u64::from(*days) * 86_400_000)),
                ])
            }
            AdminCommand::BackupCreate => Err(fail(AdminErrorCode::Internal, "backups stream")),
        }
    }

    fn event_of(&self, r: Result<Response, ClientError>) -> Result<EventId, AdminError> {
        match r.map_err(from_client)? {
            Response::Event { id, .. } => Ok(id),
            _ => Err(fail(AdminErrorCode::Internal, "unexpected answer")),
        }
    }

    /// Posts a room event as the local member who may (see
    /// [`AdminService::acting`]) and says what was done: `{what} as {actor}:
    /// event {id}`.
    fn post_as(
        &self,
        (room, p, act_as, trace): (
            &RoomId,
            Permissions,
            Option<&str>,
            confab_wire::fed::TraceId,
        ),
        kind: EventKind,
        content: Content,
        what: &str,
    ) -> Outcome {
        let actor = self.acting(room, p, act_as)?;
        let ev = self.event_of(self.svc.post_event(&actor, room, kind, content, trace))?;
        done(format!("{what} as {actor}: event {ev}"))
    }

    fn local_user(&self, name: &str) -> Result<UserId, AdminError> {
        UserId::new(self.svc.node_id(), name).map_err(|e| {
            fail(
                AdminErrorCode::BadRequest,
                format!("user name {name:?}: {e}"),
            )
        })
    }

    fn no_user(&self, name: &str) -> AdminError {
        fail(
            AdminErrorCode::NotFound,
            format!("no user {name:?} on this node (see `confabctl user list`)"),
        )
    }

    /// The local user to post as: `act_as` if given (it must hold `p`),
    /// else the room's creator if local and allowed, else the first local
    /// member who holds `p`.
    fn acting(
        &self,
        room: &RoomId,
        p: Permissions,
        act_as: Option<&str>,
    ) -> Result<UserId, AdminError> {
        let me = self.svc.node_id();
        let rooms = self.svc.rooms();
        let r = rooms.room(room).ok_or_else(|| {
            fail(
                AdminErrorCode::NotFound,
                format!("no room {room} on this node (see `confabctl room list`)"),
            )
        })?;
        let s = r.engine().state();
        let need = perm_name(p);
        if let Some(name) = act_as {
            let u = self.local_user(name)?;
            if !s.permissions(&u).contains(p) {
                return Err(fail(
                    AdminErrorCode::Forbidden,
                    format!("{u} does not hold {need} in {room}"),
                ));
            }
            return Ok(u);
        }
        if s.creator.node() == &me && s.permissions(&s.creator).contains(p) {
            return Ok(s.creator.clone());
        }
        s.joined()
            .filter(|u| u.node() == &me)
            .find(|u| s.permissions(u).contains(p))
            .cloned()
            .ok_or_else(|| {
                fail(
                    AdminErrorCode::Forbidden,
                    format!(
                        "no user of this node holds {need} in {room}: the room's rules are \
                         enforced by every node, so a local member must hold it \
                         (grant one a role with it, from a member who may)"
                    ),
                )
            })
    }

    fn status(&self) -> Outcome {
        let store = self.svc.store();
        let (gateways, sessions) = self.svc.connections();
        let (rooms, catching_up) = {
            let r = self.svc.rooms();
            (r.rooms().count(), r.catching_up())
        };
        let peers = self.peer_table();
        let connected = peers.iter().filter(|p| p.connected).count();
        record(vec![
            ("node", Cell::text(self.svc.node_id())),
            ("name", Cell::text(&self.svc.inner.name)),
            ("version", Cell::text(&self.software)),
            ("uptime_s", int(self.started.elapsed().as_secs())),
            ("rooms", int(rooms)),
            ("rooms_catching_up", int(catching_up)),
            ("users", int(store.account_count().map_err(internal)?)),
            ("gateways", int(gateways)),
            ("sessions", int(sessions)),
            ("peers", int(peers.len())),
            ("peers_connected", int(connected)),
            (
                "storage_bytes",
                int(store.size_on_disk().map_err(internal)?),
            ),
            (
                "recovering",
                Cell::Bool(store.recovering().map_err(internal)?),
            ),
        ])
    }

    fn audit(&self, limit: u32) -> Outcome {
        let rows = self
            .svc
            .store()
            .audit_log(limit.clamp(1, 10_000) as usize)
            .map_err(internal)?
            .into_iter()
            .map(|(id, e)| {
                vec![
                    int(id),
                    Cell::Time(e.ts),
                    Cell::Text(e.actor),
                    Cell::Text(e.command),
                    Cell::Text(e.outcome),
                    Cell::Text(e.detail),
                ]
            })
            .collect();
        table(
            &["id", "time", "actor", "command", "outcome", "detail"],
            rows,
        )
    }

    fn role_list(&self, room: Option<&RoomId>) -> Outcome {
        let store = self.svc.store();
        let Some(room) = room else {
            let grants = store.node_grants().map_err(internal)?;
            let rows = store
                .node_roles()
                .map_err(internal)?
                .into_iter()
                .map(|(name, p)| {
                    let holders: Vec<String> = grants
                        .iter()
                        .filter(|(_, r)| *r == name)
                        .map(|(u, _)| u.to_string())
                        .collect();
                    vec![
                        Cell::Text(name),
                        Cell::text(perm_name(p)),
                        Cell::text(holders.join(" ")),
                    ]
                })
                .collect();
            return table(&["role", "permissions", "holders"], rows);
        };
        let rooms = self.svc.rooms();
        let r = rooms.room(room).ok_or_else(|| {
            fail(
                AdminErrorCode::NotFound,
                format!("no room {room} on this node (see `confabctl room list`)"),
            )
        })?;
        let s = r.engine().state();
        let rows = s
            .roles
            .iter()
            .map(|(name, p)| {
                let holders: Vec<String> = s
                    .joined()
                    .filter(|u| s.roles_of(u).contains(name))
                    .map(ToString::to_string)
                    .collect();
                vec![
                    Cell::text(name),
                    Cell::text(perm_name(*p)),
                    Cell::text(holders.join(" ")),
                ]
            })
            .collect();
        table(&["role", "permissions", "holders"], rows)
    }

    /// Rooms of this node, for node-wide role changes.
    fn all_rooms(&self) -> Vec<RoomId> {
        self.svc.rooms().rooms().map(|(id, _)| *id).collect()
    }

    fn role_define(
        &self,
        room: Option<&RoomId>,
        role: &str,
        permissions: Permissions,
        act_as: Option<&str>,
        trace: confab_wire::fed::TraceId,
    ) -> Outcome {
        // Checked here: a bad name would otherwise fail only when the event
        // is signed (an internal error), or be kept node-wide for good.
        confab_wire::event::validate_role_name(role)
            .map_err(|e| fail(AdminErrorCode::BadRequest, format!("{role:?}: {e}")))?;
        let action = Moderation::DefineRole {
            role: role.to_string(),
            permissions,
        };
        if let Some(room) = room {
            let actor = self.acting(room, Permissions::ROLE_MANAGE, act_as)?;
            let ev = self.event_of(self.svc.moderate(&actor, room, action, trace))?;
            return done(format!(
                "role {role} ({}) defined in {room}: event {ev}",
                perm_name(permissions)
            ));
        }
        let store = self.svc.store();
        store
            .define_node_role(role, permissions)
            .map_err(internal)?;
        store.wait_durable().map_err(internal)?;
        let (mut ok, mut skipped) = (0, 0);
        for room in self.all_rooms() {
            match self
                .acting(&room, Permissions::ROLE_MANAGE, act_as)
                .and_then(|a| self.event_of(self.svc.moderate(&a, &room, action.clone(), trace)))
            {
                Ok(_) => ok += 1,
                Err(_) => skipped += 1,
            }
        }
        done(format!(
            "node-wide role {role} ({}) defined: in {ok} rooms now ({skipped} where no local member may manage roles) and in rooms created from now on",
            perm_name(permissions)
        ))
    }

    fn role_grant(
        &self,
        room: Option<&RoomId>,
        user: &UserId,
        role: &str,
        on: bool,
        act_as: Option<&str>,
        trace: confab_wire::fed::TraceId,
    ) -> Outcome {
        let action = if on {
            Moderation::GrantRole {
                target: user.clone(),
                role: role.to_string(),
            }
        } else {
            Moderation::RevokeRole {
                target: user.clone(),
                role: role.to_string(),
            }
        };
        let verb = if on { "granted to" } else { "revoked from" };
        if let Some(room) = room {
            if let Some(r) = self.svc.rooms().room(room) {
                let roles = &r.engine().state().roles;
                if !roles.contains_key(role) {
                    let known: Vec<&str> = roles.keys().map(String::as_str).collect();
                    return Err(fail(
                        AdminErrorCode::NotFound,
                        format!(
                            "no role {role:?} in {room}; its roles are: {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
            let actor = self.acting(room, Permissions::ROLE_MANAGE, act_as)?;
            let ev = self.event_of(self.svc.moderate(&actor, room, action, trace))?;
            return done(format!("{role} {verb} {user} in {room}: event {ev}"));
        }
        let store = self.svc.store();
        // A node-wide grant exists only for a defined role, so revoking an
        // undefined one is a mistake too.
        if !store
            .node_roles()
            .map_err(internal)?
            .iter()
            .any(|(n, _)| n == role)
        {
            let known: Vec<String> = store
                .node_roles()
                .map_err(internal)?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            return Err(fail(
                AdminErrorCode::NotFound,
                format!(
                    "no node-wide role {role:?} (defined: {}); make it with `confabctl role define`",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        store.set_node_grant(user, role, on).map_err(internal)?;
        store.wait_durable().map_err(internal)?;
        let mut ok = 0;
        for room in self.all_rooms() {
            let member = self.svc.rooms().room(&room).is_some_and(|r| {
                let s = r.engine().state();
                s.is_joined(user) && s.roles.contains_key(role)
            });
            if !member {
                continue;
            }
            if self
                .acting(&room, Permissions::ROLE_MANAGE, act_as)
                .and_then(|a| self.event_of(self.svc.moderate(&a, &room, action.clone(), trace)))
                .is_ok()
            {
                ok += 1;
            }
        }
        done(format!(
            "node-wide role {role} {verb} {user}: in {ok} rooms now and in rooms they join from now on"
        ))
    }

    fn reports(&self, all: bool) -> Outcome {
        let rows = self
            .svc
            .store()
            .reports_list()
            .map_err(internal)?
            .into_iter()
            .filter(|(_, r)| all || r.resolution.is_none())
            .map(|(id, r)| {
                vec![
                    int(id),
                    Cell::Time(r.ts),
                    Cell::text(r.reporter),
                    Cell::text(r.room),
                    Cell::text(r.event),
                    Cell::Text(r.reason),
                    opt_text(r.resolution),
                ]
            })
            .collect();
        table(
            &[
                "id",
                "time",
                "reporter",
                "room",
                "event",
                "reason",
                "resolution",
            ],
            rows,
        )
    }

    fn report(&self, id: u64) -> Outcome {
        let store = self.svc.store();
        let r = store.report(id).map_err(internal)?.ok_or_else(|| {
            fail(
                AdminErrorCode::NotFound,
                format!("no report #{id} (see `confabctl reports list --all`)"),
            )
        })?;
        let item = store.timeline_item(&r.event).map_err(internal)?;
        let (author, body, state) = match &item {
            Some(i) => {
                let h = i.event.decode_header().ok();
                let body = i.edited_body.clone().or_else(|| {
                    i.event
                        .content
                        .as_deref()
                        .and_then(|c| Content::decode_for(&EventKind::Message, c).ok())
                        .and_then(|c| match c {
                            Content::Message(m) => Some(m.body),
                            _ => None,
                        })
                });
                let state = if i.redacted.is_some() {
                    "deleted"
                } else if i.edited_body.is_some() {
                    "edited"
                } else {
                    "as posted"
                };
                (h.map(|h| h.author.to_string()), body, state)
            }
            None => (None, None, "not held here"),
        };
        record(vec![
            ("id", int(id)),
            ("time", Cell::Time(r.ts)),
            ("reporter", Cell::text(r.reporter)),
            ("room", Cell::text(r.room)),
            ("event", Cell::text(r.event)),
            ("reason", Cell::Text(r.reason)),
            ("author", opt_text(author)),
            ("message", opt_text(body)),
            ("message_state", Cell::text(state)),
            ("resolution", opt_text(r.resolution)),
        ])
    }

    fn end_sessions(&self, user: &UserId) -> Result<(), AdminError> {
        self.svc
            .store()
            .revoke_all_logins(user.localpart())
            .and_then(|_| self.svc.store().wait_durable())
            .map_err(internal)?;
        self.svc.revoke(user, None, None);
        Ok(())
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Outcome {
        let user = self.local_user(name)?;
        self.svc
            .store()
            .update_account(name, |a| a.disabled = disabled)
            .map_err(internal)?
            .ok_or_else(|| self.no_user(name))?;
        if disabled {
            self.end_sessions(&user)?;
            done(format!(
                "{user} disabled: they cannot sign in and their sessions were ended"
            ))
        } else {
            self.svc.store().wait_durable().map_err(internal)?;
            done(format!("{user} enabled"))
        }
    }

    fn users(&self) -> Outcome {
        let rows = self
            .svc
            .store()
            .find_accounts("", usize::MAX)
            .map_err(internal)?
            .into_iter()
            .map(|a| {
                vec![
                    Cell::text(
                        self.local_user(&a.localpart)
                            .map_or(a.localpart.clone(), |u| u.to_string()),
                    ),
                    Cell::Text(a.display_name),
                    Cell::Bool(a.disabled),
                    Cell::Time(a.created),
                ]
            })
            .collect();
        table(&["user", "display_name", "disabled", "created"], rows)
    }

    /// Everything this node holds about a user, for data requests.
    fn export(&self, name: &str) -> Outcome {
        let store = self.svc.store();
        let user = self.local_user(name)?;
        let account = store
            .account(name)
            .map_err(internal)?
            .ok_or_else(|| self.no_user(name))?;
        let mut rooms_json = Vec::new();
        let mut messages = Vec::new();
        let mut more = 0usize;
        let room_ids: Vec<(RoomId, String, String)> = {
            let rooms = self.svc.rooms();
            rooms
                .rooms()
                .filter_map(|(id, r)| {
                    let s = r.engine().state();
                    let m = s.members.get(&user)?;
                    let membership = match m {
                        Membership::Joined { .. } => "joined",
                        Membership::Invited => "invited",
                        Membership::Left => "left",
                        Membership::Banned => "banned",
                    };
                    Some((*id, s.name.clone(), membership.to_string()))
                })
                .collect()
        };
        for (room, name, membership) in &room_ids {
            let read = store.read_position(room, &user).map_err(internal)?;
            rooms_json.push(serde_json::json!({
                "room": room.to_string(), "name": name, "membership": membership,
                "read_up_to": read.map(|e| e.to_string()),
            }));
            let mut anchor = Anchor::After(EventId(room.0));
            loop {
                let ids = store.page(room, anchor, 200).map_err(internal)?;
                let Some(last) = ids.last().copied() else {
                    break;
                };
                for id in &ids {
                    let Some(item) = store.timeline_item(id).map_err(internal)? else {
                        continue;
                    };
                    let Ok(h) = item.event.decode_header() else {
                        continue;
                    };
                    if h.author != user || !matches!(h.kind, EventKind::Message) {
                        continue;
                    }
                    if messages.len() >= EXPORT_MESSAGES_MAX {
                        more += 1;
                        continue;
                    }
                    let body = item.edited_body.clone().or_else(|| {
                        item.event
                            .content
                            .as_deref()
                            .and_then(|c| Content::decode_for(&EventKind::Message, c).ok())
                            .and_then(|c| match c {
                                Content::Message(m) => Some(m.body),
                                _ => None,
                            })
                    });
                    messages.push(serde_json::json!({
                        "room": room.to_string(), "event": id.to_string(), "ts": h.ts,
                        "body": body, "edited": item.edited_body.is_some(),
                        "deleted": item.redacted.is_some(),
                    }));
                }
                anchor = Anchor::After(last);
            }
        }
        let reports: Vec<serde_json::Value> = store
            .reports_list()
            .map_err(internal)?
            .into_iter()
            .filter(|(_, r)| r.reporter == user)
            .map(|(id, r)| {
                serde_json::json!({"id": id, "room": r.room.to_string(), "event": r.event.to_string(),
                                   "reason": r.reason, "ts": r.ts})
            })
            .collect();
        let notices: Vec<serde_json::Value> = store
            .notices(name)
            .map_err(internal)?
            .into_iter()
            .map(|n| serde_json::json!({"room": n.room.to_string(), "ts": n.ts, "body": n.body}))
            .collect();
        let doc = serde_json::json!({
            "user": user.to_string(),
            "exported": now_ms(),
            "account": {
                "display_name": account.display_name,
                "status": account.status,
                "avatar": account.avatar.map(|b| b.to_string()),
                "disabled": account.disabled,
                "created": account.created,
            },
            "rooms": rooms_json,
            "messages": messages,
            "messages_not_listed": more,
            "reports": reports,
            "notices": notices,
        });
        serde_json::to_string_pretty(&doc)
            .map(AdminOutput::Json)
            .map_err(|e| fail(AdminErrorCode::Internal, e.to_string()))
    }

    fn rooms(&self) -> Outcome {
        let me = self.svc.node_id();
        let rooms = self.svc.rooms();
        let mut rows: Vec<Vec<Cell>> = rooms
            .rooms()
            .map(|(id, r)| {
                let e = r.engine();
                let s = e.state();
                let local = s.joined().filter(|u| u.node() == &me).count();
                vec![
                    Cell::text(id),
                    Cell::text(if s.direct { "(direct)" } else { &s.name }),
                    Cell::text(format!("{:?}", s.visibility).to_lowercase()),
                    int(s.joined().count()),
                    int(local),
                    int(e.len()),
                    Cell::Bool(s.archived),
                    Cell::text(hex(&e.digest()[..8])),
                ]
            })
            .collect();
        rows.sort_by(|a, b| format!("{:?}", a[1]).cmp(&format!("{:?}", b[1])));
        table(
            &[
                "room",
                "name",
                "visibility",
                "members",
                "local_members",
                "events",
                "archived",
                "digest",
            ],
            rows,
        )
    }

    fn room(&self, room: &RoomId) -> Outcome {
        let mut fields = {
            let rooms = self.svc.rooms();
            let r = rooms.room(room).ok_or_else(|| {
                fail(
                    AdminErrorCode::NotFound,
                    format!("no room {room} on this node (see `confabctl room list`)"),
                )
            })?;
            let e = r.engine();
            let s = e.state();
            let now = now_ms();
            let members: Vec<String> = s
                .members
                .iter()
                .filter(|(_, m)| matches!(m, Membership::Joined { .. } | Membership::Invited))
                .map(|(u, m)| {
                    let mut t = u.to_string();
                    let roles: Vec<String> = s
                        .roles_of(u)
                        .into_iter()
                        .filter(|r| r != "member")
                        .collect();
                    if !roles.is_empty() {
                        let _ = write!(t, " [{}]", roles.join(","));
                    }
                    if matches!(m, Membership::Invited) {
                        t.push_str(" (invited)");
                    }
                    if let Some(until) = s.muted_at(u, now) {
                        let _ = write!(
                            t,
                            " (muted until {} UTC)",
                            confab_wire::admin::format_utc(until)
                        );
                    }
                    t
                })
                .collect();
            let roles: Vec<String> = s
                .roles
                .iter()
                .map(|(n, p)| format!("{n}={}", perm_name(*p)))
                .collect();
            let peers: Vec<String> = rooms.room_peers(room).iter().map(NodeId::short).collect();
            vec![
                ("room", Cell::text(room)),
                ("name", Cell::text(&s.name)),
                ("topic", Cell::text(&s.topic)),
                (
                    "visibility",
                    Cell::text(format!("{:?}", s.visibility).to_lowercase()),
                ),
                ("direct", Cell::Bool(s.direct)),
                ("archived", Cell::Bool(s.archived)),
                ("creator", Cell::text(&s.creator)),
                ("members", Cell::text(members.join("; "))),
                ("roles", Cell::text(roles.join("; "))),
                ("pins", int(s.pins.len())),
                ("events", int(e.len())),
                ("accepted", int(s.accepted)),
                ("rejected", int(e.len().saturating_sub(s.accepted))),
                ("peers", Cell::text(peers.join(" "))),
                ("digest", Cell::text(hex(&e.digest()))),
                ("may_post", Cell::Bool(rooms.may_post(room))),
            ]
        };
        // Bytes: the room's stored events, read outside the rooms lock.
        let store = self.svc.store();
        let (mut bytes, mut anchor) = (0u64, Anchor::After(EventId(room.0)));
        loop {
            let page = store.page(room, anchor, 500).map_err(internal)?;
            let Some(last) = page.last().copied() else {
                break;
            };
            for id in &page {
                if let Some(e) = store.event(id).map_err(internal)? {
                    bytes += e.signed.header.len() as u64
                        + e.signed.content.as_ref().map_or(0, |c| c.len() as u64)
                        + 64;
                }
            }
            anchor = Anchor::After(last);
        }
        fields.push(("shown_bytes", int(bytes)));
        record(fields)
    }

    /// (node, address, connected, shared rooms, lag) of every peer.
    fn peer_table(&self) -> Vec<PeerRow> {
        let peers = self.svc.peers();
        // Per room: its peers, and the origins caught equivocating there.
        let shared: Vec<(RoomId, Vec<NodeId>, Vec<NodeId>)> = {
            let rooms = self.svc.rooms();
            rooms
                .rooms()
                .map(|(id, r)| {
                    let forked = r.engine().forks().keys().copied().collect();
                    (*id, rooms.room_peers(id), forked)
                })
                .collect()
        };
        let fed = self.svc.federation();
        let connected = fed.as_ref().map(|f| f.connected()).unwrap_or_default();
        peers
            .into_iter()
            .map(|(node, addr)| {
                let mine: Vec<&RoomId> = shared
                    .iter()
                    .filter(|(_, p, _)| p.contains(&node))
                    .map(|(r, _, _)| r)
                    .collect();
                let lags: Vec<u64> = fed
                    .iter()
                    .flat_map(|f| mine.iter().filter_map(|r| f.lag(&node, r)))
                    .collect();
                PeerRow {
                    connected: connected.contains(&node),
                    shared_rooms: mine.len(),
                    lag: (!lags.is_empty()).then(|| lags.iter().sum()),
                    equivocations: shared.iter().filter(|(_, _, f)| f.contains(&node)).count(),
                    node,
                    addr,
                }
            })
            .collect()
    }

    fn peers(&self) -> Outcome {
        let rows = self
            .peer_table()
            .into_iter()
            .map(|p| {
                vec![
                    Cell::text(p.node),
                    Cell::Text(p.addr),
                    Cell::text(if p.connected {
                        "connected"
                    } else {
                        "disconnected"
                    }),
                    int(p.shared_rooms),
                    p.lag.map_or(Cell::Null, int),
                    int(p.equivocations),
                ]
            })
            .collect();
        table(
            &[
                "node",
                "addr",
                "state",
                "shared_rooms",
                "lag_events",
                "equivocated_in",
            ],
            rows,
        )
    }

    fn peer_add(&self, node: NodeId, addr: &str) -> Outcome {
        if node == self.svc.node_id() {
            return Err(fail(
                AdminErrorCode::BadRequest,
                "that is this node's own id",
            ));
        }
        let sock: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                fail(
                    AdminErrorCode::BadRequest,
                    format!("{addr:?} is not an address this node can resolve (use host:port)"),
                )
            })?;
        let store = self.svc.store();
        store
            .set_peer_change(&node, &PeerChange::Added(addr.to_string()))
            .map_err(internal)?;
        store.wait_durable().map_err(internal)?;
        self.svc.add_peer(node, addr.to_string());
        if let Some(fed) = self.svc.federation() {
            fed.unblock(&node);
            fed.pin(node);
            fed.connect(node, sock);
        }
        done(format!(
            "peer {node} at {addr} added (pinned; dialled by the node with the smaller id)"
        ))
    }

    fn peer_remove(&self, node: &NodeId) -> Outcome {
        if !self.svc.peers().iter().any(|(n, _)| n == node) {
            return Err(fail(
                AdminErrorCode::NotFound,
                format!("{node} is not a peer of this node (see `confabctl peer list`)"),
            ));
        }
        let store = self.svc.store();
        store
            .set_peer_change(node, &PeerChange::Removed)
            .map_err(internal)?;
        store.wait_durable().map_err(internal)?;
        self.svc.remove_peer(node);
        if let Some(fed) = self.svc.federation() {
            fed.unpin(node);
            fed.block(*node);
        }
        done(format!(
            "peer {node} removed: disconnected and no longer accepted"
        ))
    }

    fn config_get(&self, key: Option<&str>) -> Outcome {
        let s = self.svc.settings();
        let values = settings_values(&s);
        match key {
            Some(k) => {
                let (_, v) = values
                    .iter()
                    .find(|(n, _)| *n == k)
                    .ok_or_else(|| unknown_setting(k))?;
                record(vec![("key", Cell::text(k)), ("value", Cell::text(v))])
            }
            None => table(
                &["key", "value", "accepts"],
                values
                    .iter()
                    .map(|(k, v)| {
                        let accepts = SETTINGS.iter().find(|(n, _)| n == k).map_or("", |(_, a)| a);
                        vec![Cell::text(k), Cell::text(v), Cell::text(accepts)]
                    })
                    .collect(),
            ),
        }
    }

    fn config_set(&self, key: &str, value: &str) -> Outcome {
        let mut s = self.svc.settings();
        apply_setting(&mut s, key, value)?;
        let store = self.svc.store();
        let canonical = settings_values(&s)
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .unwrap_or_default();
        store.set_setting(key, &canonical).map_err(internal)?;
        store.wait_durable().map_err(internal)?;
        self.set_settings(s);
        done(format!(
            "{key} = {canonical} (in effect now, kept across restarts)"
        ))
    }

    /// Streams a backup while the node keeps running: the events are the
    /// log up to where it stood when the backup began, other records are
    /// copied one by one (see [`crate::store::Store::write_backup`]). No
    /// lock is held, so a slow or stalled admin client delays only its
    /// own backup.
    fn backup(&self, id: u64, reply: &mut dyn FnMut(AdminReply) -> bool) -> Outcome {
        let key = std::fs::read(&self.key_file).map_err(|e| {
            fail(
                AdminErrorCode::Internal,
                format!("cannot read the node key {}: {e}", self.key_file.display()),
            )
        })?;
        let header = BackupHeader {
            node: self.svc.node_id(),
            name: self.svc.inner.name.clone(),
            created: now_ms(),
            software: self.software.clone(),
        };
        let store = self.svc.store();
        let started = Instant::now();
        let mut size = 0u64;
        let (entries, sum) = {
            store
                .write_backup(&header, &key, |bytes| {
                    size += bytes.len() as u64;
                    for piece in bytes.chunks(BACKUP_CHUNK_MAX) {
                        let sent = reply(AdminReply {
                            id,
                            more: true,
                            result: Ok(AdminOutput::BackupChunk(piece.to_vec())),
                        });
                        if !sent {
                            return Err(crate::Error::Corrupt {
                                what: "backup",
                                detail: "the admin connection closed".into(),
                            });
                        }
                    }
                    Ok(())
                })
                .map_err(internal)?
        };
        tracing::info!(
            entries,
            bytes = size,
            ms = started.elapsed().as_millis() as u64,
            "backup taken"
        );
        record(vec![
            ("node", Cell::text(header.node)),
            ("created", Cell::Time(header.created)),
            ("entries", int(entries)),
            ("bytes", int(size)),
            ("checksum", Cell::text(hex(&sum))),
        ])
    }
}

/// Bytes of output one reply carries at most (a frame is at most 1 MiB).
const PIECE_BYTES: usize = 512 * 1024;

fn cell_len(c: &Cell) -> usize {
    match c {
        Cell::Text(t) => t.len() + 4,
        _ => 10,
    }
}

/// An answer in replies that each fit a frame: a long table in tables of
/// the same columns, a long JSON document in pieces of its text (the CLI
/// joins them).
fn split(output: AdminOutput) -> Vec<AdminOutput> {
    match output {
        AdminOutput::Table { columns, rows } => {
            let mut out = Vec::new();
            let mut piece = Vec::new();
            let mut bytes = 0;
            for row in rows {
                let len: usize = row.iter().map(cell_len).sum();
                if !piece.is_empty() && bytes + len > PIECE_BYTES {
                    out.push(AdminOutput::Table {
                        columns: columns.clone(),
                        rows: std::mem::take(&mut piece),
                    });
                    bytes = 0;
                }
                bytes += len;
                piece.push(row);
            }
            out.push(AdminOutput::Table {
                columns,
                rows: piece,
            });
            out
        }
        AdminOutput::Json(doc) if doc.len() > PIECE_BYTES => {
            let mut out = Vec::new();
            let mut rest = doc.as_str();
            while !rest.is_empty() {
                let mut cut = rest.len().min(PIECE_BYTES);
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push(AdminOutput::Json(rest[..cut].to_string()));
                rest = &rest[cut..];
            }
            out
        }
        other => vec![other],
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn describe_moderation(a: &Moderation) -> String {
    match a {
        Moderation::Mute { target, until, .. } => format!(
            "muted {target} until {} UTC",
            confab_wire::admin::format_utc(*until)
        ),
        Moderation::Unmute { target } => format!("unmuted {target}"),
        Moderation::Kick { target, .. } => format!("kicked {target}"),
        Moderation::Ban { target, .. } => format!("banned {target}"),
        Moderation::Unban { target } => format!("unbanned {target}"),
        Moderation::DefineRole { role, .. } => format!("defined role {role}"),
        Moderation::GrantRole { target, role } => format!("granted {role} to {target}"),
        Moderation::RevokeRole { target, role } => format!("revoked {role} from {target}"),
    }
}

fn unknown_setting(k: &str) -> AdminError {
    let names: Vec<&str> = SETTINGS.iter().map(|(n, _)| *n).collect();
    fail(
        AdminErrorCode::NotFound,
        format!("no setting {k:?}; the settings are: {}", names.join(", ")),
    )
}

fn settings_values(s: &ServiceSettings) -> Vec<(&'static str, String)> {
    vec![
        (
            "registration",
            match s.registration {
                Registration::Open => "open",
                Registration::Invite => "invite",
                Registration::Closed => "closed",
            }
            .to_string(),
        ),
        (
            "welcome_bot",
            if s.welcome_bot { "on" } else { "off" }.to_string(),
        ),
        ("max_upload_bytes", s.max_upload_bytes.to_string()),
        ("messages_per_minute", s.messages_per_minute.to_string()),
    ]
}

fn apply_setting(s: &mut ServiceSettings, key: &str, value: &str) -> Result<(), AdminError> {
    let v = value.trim();
    let bad = |accepts: &str| {
        fail(
            AdminErrorCode::BadRequest,
            format!("{v:?} is not a value for {key}: it takes {accepts}"),
        )
    };
    let accepts = SETTINGS
        .iter()
        .find(|(n, _)| *n == key)
        .map(|(_, a)| *a)
        .ok_or_else(|| unknown_setting(key))?;
    match key {
        "registration" => {
            s.registration = match v {
                "open" => Registration::Open,
                "invite" => Registration::Invite,
                "closed" => Registration::Closed,
                _ => return Err(bad(accepts)),
            }
        }
        "welcome_bot" => {
            s.welcome_bot = match v {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                _ => return Err(bad(accepts)),
            }
        }
        "max_upload_bytes" => {
            s.max_upload_bytes = parse_size(v)
                .filter(|n| (1024..=1 << 30).contains(n))
                .ok_or_else(|| bad(accepts))?;
        }
        "messages_per_minute" => {
            s.messages_per_minute = v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| bad(accepts))?;
        }
        _ => return Err(unknown_setting(key)),
    }
    Ok(())
}

impl ClientService {
    /// After a local user created a room: the node-wide roles and the
    /// grants of its members, as room events by the creator.
    pub(super) fn apply_node_roles(
        &self,
        room: &RoomId,
        creator: &UserId,
        trace: confab_wire::fed::TraceId,
    ) {
        let store = self.store();
        let (Ok(roles), Ok(grants)) = (store.node_roles(), store.node_grants()) else {
            return;
        };
        for (role, permissions) in roles {
            let action = Moderation::DefineRole { role, permissions };
            if let Err(e) = self.moderate(creator, room, action, trace) {
                tracing::warn!(%room, error = %e.message, "node-wide role not defined in a new room");
            }
        }
        // Grants reach members as they join (see `grant_node_roles`).
        let _ = grants;
    }

    /// After a user joined: their node-wide roles in this room, granted by
    /// a local member who may.
    pub(super) fn grant_node_roles(
        &self,
        user: &UserId,
        room: &RoomId,
        trace: confab_wire::fed::TraceId,
    ) {
        let Ok(grants) = self.store().node_grants() else {
            return;
        };
        let mine: Vec<String> = grants
            .into_iter()
            .filter(|(u, _)| u == user)
            .map(|(_, r)| r)
            .collect();
        if mine.is_empty() {
            return;
        }
        let me = self.node_id();
        for role in mine {
            let granter = {
                let rooms = self.rooms();
                let Some(r) = rooms.room(room) else { return };
                let s = r.engine().state();
                if !s.roles.contains_key(&role) || s.roles_of(user).contains(&role) {
                    continue;
                }
                s.joined()
                    .filter(|u| {
                        u.node() == &me && s.permissions(u).contains(Permissions::ROLE_MANAGE)
                    })
                    .min_by_key(|u| *u != &s.creator)
                    .cloned()
            };
            let Some(granter) = granter else { continue };
            let action = Moderation::GrantRole {
                target: user.clone(),
                role,
            };
            if let Err(e) = self.moderate(&granter, room, action, trace) {
                tracing::warn!(%room, error = %e.message, "node-wide role not granted on join");
            }
        }
    }
}

/// One row of `peer list`.
struct PeerRow {
    node: NodeId,
    addr: String,
    connected: bool,
    shared_rooms: usize,
    /// Events the peer lacks, summed over shared rooms, when known.
    lag: Option<u64>,
    /// Rooms in which the peer was caught equivocating.
    equivocations: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_answers_are_split_into_frames_and_nothing_is_lost() {
        let rows: Vec<Vec<Cell>> = (0..20_000)
            .map(|i| vec![Cell::Int(i), Cell::text("x".repeat(100))])
            .collect();
        let pieces = split(AdminOutput::Table {
            columns: vec!["n".into(), "t".into()],
            rows: rows.clone(),
        });
        assert!(pieces.len() > 1);
        let mut back = Vec::new();
        for p in &pieces {
            let AdminOutput::Table { rows, .. } = p else {
                panic!("not a table")
            };
            back.extend(rows.iter().cloned());
        }
        assert_eq!(back, rows);
        let doc = "é".repeat(400_000);
        let pieces = split(AdminOutput::Json(doc.clone()));
        let joined: String = pieces
            .iter()
            .map(|p| match p {
                AdminOutput::Json(t) => t.as_str(),
                _ => "",
            })
            .collect();
        assert!(pieces.len() > 1 && joined == doc);
    }

    #[test]
    fn sizes_and_settings_parse_or_say_what_is_valid() {
        assert_eq!(parse_size("25MiB"), Some(25 << 20));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("2 KiB"), Some(2048));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999GiB"), None);
        let mut s = ServiceSettings {
            registration: Registration::Open,
            max_upload_bytes: 1,
            messages_per_minute: 1,
            welcome_bot: true,
            sign_in_failures_per_address: 20,
        };
        apply_setting(&mut s, "registration", "invite").ok();
        apply_setting(&mut s, "welcome_bot", "off").ok();
        apply_setting(&mut s, "max_upload_bytes", "10MiB").ok();
        assert_eq!(
            (s.registration, s.welcome_bot, s.max_upload_bytes),
            (Registration::Invite, false, 10 << 20)
        );
        let e = apply_setting(&mut s, "registration", "sometimes").err();
        assert!(e.is_some_and(|e| e.message.contains("open, invite or closed")));
        let e = apply_setting(&mut s, "colour", "red").err();
        assert!(e.is_some_and(
            |e| e.code == AdminErrorCode::NotFound && e.message.contains("registration")
        ));
        assert!(apply_setting(&mut s, "messages_per_minute", "0").is_err());
    }
}
