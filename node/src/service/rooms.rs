//! Rooms, members and profiles for browser sessions: listing, creating,
//! joining, inviting, settings, moderation, summaries and their pushes.

use std::collections::HashSet;

use confab_wire::client::{
    ClientError, ErrorCode, MemberInfo, Moderation, Profile, Push, Response, RoomDetail,
    RoomSummary,
};
use confab_wire::event::{Content, CreateRoom, ROOM_VERSION, ReasonContent, Setting, Visibility};
use confab_wire::fed::TraceId;
use confab_wire::{BlobId, ClientMessage, EventHeader, EventKind, Permissions, RoomId, UserId};

use super::accounts::{error, internal};
use super::{ClientService, bad, lock, node_error};
use crate::engine::{Membership, RoomState};
use crate::local::now_ms;

/// Most users invited with a new room.
pub const INVITES_MAX: usize = 50;
/// Longest display name, in bytes.
pub const DISPLAY_NAME_MAX: usize = 64 * 4;
/// Longest status text, in bytes.
pub const STATUS_MAX: usize = 200 * 4;
/// How long list updates caused by new messages wait to be merged.
pub const SUMMARY_DELAY: std::time::Duration = std::time::Duration::from_millis(100);
/// Most users a search returns.
pub const USER_SEARCH_MAX: u16 = 200;

/// The parts of a room's state a summary needs, read under the rooms lock.
struct Facts {
    name: String,
    topic: String,
    visibility: Visibility,
    direct_with: Option<UserId>,
    members: u32,
    archived: bool,
    membership: Membership,
}

fn facts(state: &RoomState, user: &UserId) -> Facts {
    let direct_with = if state.direct {
        state
            .members
            .iter()
            .find(|(u, m)| {
                *u != user && matches!(m, Membership::Joined { .. } | Membership::Invited)
            })
            .map(|(u, _)| u.clone())
            .or_else(|| (state.creator != *user).then(|| state.creator.clone()))
    } else {
        None
    };
    Facts {
        name: state.name.clone(),
        topic: state.topic.clone(),
        visibility: state.visibility,
        direct_with,
        members: state.joined().count() as u32,
        archived: state.archived,
        membership: state.membership(user),
    }
}

impl ClientService {
    /// The user's membership of a room and whether it is public; `NotFound`
    /// for a room this node does not hold.
    pub(super) fn member_state(
        &self,
        user: &UserId,
        room: &RoomId,
    ) -> Result<(Membership, Visibility), ClientError> {
        let rooms = self.rooms();
        let r = rooms.room(room).ok_or_else(hidden)?;
        let s = r.engine().state();
        Ok((s.membership(user), s.visibility))
    }

    /// Fails unless the user is joined (or, to read, the room is public).
    pub(super) fn may_read(&self, user: &UserId, room: &RoomId) -> Result<(), ClientError> {
        match self.member_state(user, room)? {
            (Membership::Joined { .. }, _) => Ok(()),
            (Membership::Banned, _) => {
                Err(error(ErrorCode::Forbidden, "you are banned from this room"))
            }
            (_, Visibility::Public) => Ok(()),
            (Membership::Invited, _) => {
                Err(error(ErrorCode::Forbidden, "join the room to read it"))
            }
            // Answered as for a room that does not exist: a private room's
            // id tells an outsider nothing.
            _ => Err(hidden()),
        }
    }

    /// Fails unless the user is joined: typing, read positions and other
    /// signals come only from members. Every refusal is the answer for a
    /// room that does not exist, so a signal tells nothing about a room.
    pub(super) fn may_signal(&self, user: &UserId, room: &RoomId) -> Result<(), ClientError> {
        match self.member_state(user, room)? {
            (Membership::Joined { .. }, _) => Ok(()),
            _ => Err(hidden()),
        }
    }

    fn summary_of(&self, room: &RoomId, user: &UserId, f: Facts) -> RoomSummary {
        let store = &self.inner.store;
        let joined = matches!(f.membership, Membership::Joined { .. });
        let (unread, mentions) = if joined {
            self.counts(room, user)
        } else {
            (0, 0)
        };
        let last = store
            .page(room, confab_wire::client::Anchor::Latest, 1)
            .ok()
            .and_then(|p| p.last().copied());
        let last_ts = last
            .and_then(|id| store.event(&id).ok().flatten())
            .and_then(|e| e.signed.decode_header().ok())
            .map_or(0, |h| h.ts);
        RoomSummary {
            room: *room,
            name: f.name,
            topic: f.topic,
            visibility: f.visibility,
            direct_with: f.direct_with,
            members: f.members,
            unread,
            mentions,
            archived: f.archived,
            invited: f.membership == Membership::Invited,
            last_event: last,
            last_ts,
            left: !matches!(
                f.membership,
                Membership::Joined { .. } | Membership::Invited
            ),
        }
    }

    /// The room as `user` sees it in their list.
    pub(super) fn summary(&self, room: &RoomId, user: &UserId) -> Option<RoomSummary> {
        let f = {
            let rooms = self.rooms();
            facts(rooms.room(room)?.engine().state(), user)
        };
        Some(self.summary_of(room, user, f))
    }

    pub(super) fn list_rooms(&self, user: &UserId) -> Result<Response, ClientError> {
        let mine: Vec<(RoomId, Facts)> = {
            let rooms = self.rooms();
            rooms
                .rooms()
                .filter(|(_, r)| {
                    matches!(
                        r.engine().state().membership(user),
                        Membership::Joined { .. } | Membership::Invited
                    )
                })
                .map(|(id, r)| (*id, facts(r.engine().state(), user)))
                .collect()
        };
        let mut out: Vec<RoomSummary> = mine
            .into_iter()
            .map(|(id, f)| self.summary_of(&id, user, f))
            .collect();
        out.sort_by(|a, b| b.last_ts.cmp(&a.last_ts).then(a.room.cmp(&b.room)));
        Ok(Response::Rooms(out))
    }

    /// Pushes fresh summaries to the local users an event concerns: the
    /// target of a membership change, and every local member with a
    /// session for anything that changes counts or names.
    pub(super) fn update_summaries(&self, room: &RoomId, h: &EventHeader) {
        let me = self.node_id();
        let online = lock(&self.inner.hub).online_users();
        if online.is_empty() {
            return;
        }
        // Whose membership changed hears at once; everyone else's list
        // (name, count, last message) may wait a moment and take several
        // events in one summary.
        let (now, later): (Vec<UserId>, Vec<UserId>) = {
            let rooms = self.rooms();
            let Some(r) = rooms.room(room) else {
                return;
            };
            let state = r.engine().state();
            let mut now: HashSet<UserId> = HashSet::new();
            match &h.kind {
                EventKind::Invite { target }
                | EventKind::Kick { target, .. }
                | EventKind::Ban { target, .. }
                | EventKind::Unban { target } => {
                    now.insert(target.clone());
                }
                EventKind::Join | EventKind::Leave => {
                    now.insert(h.author.clone());
                }
                _ => {}
            }
            let mut later: Vec<UserId> = Vec::new();
            if matches!(
                h.kind,
                EventKind::Message
                    | EventKind::Create(_)
                    | EventKind::Settings(_)
                    | EventKind::Archive
                    | EventKind::Join
                    | EventKind::Leave
                    | EventKind::Kick { .. }
                    | EventKind::Ban { .. }
                    | EventKind::Redact { .. }
            ) {
                later = state
                    .joined()
                    .filter(|u| u.node() == &me && online.contains(*u) && !now.contains(*u))
                    .cloned()
                    .collect();
            }
            let now = now
                .into_iter()
                .filter(|u| u.node() == &me && online.contains(u))
                .collect();
            (now, later)
        };
        self.push_summaries(room, now);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if !later.is_empty() => {
                let fresh = {
                    let mut pending = lock(&self.inner.pending_summaries);
                    let fresh = pending.is_empty();
                    pending.extend(later.into_iter().map(|u| (*room, u)));
                    fresh
                };
                if fresh {
                    let svc = self.clone();
                    rt.spawn(async move {
                        tokio::time::sleep(SUMMARY_DELAY).await;
                        let _ = tokio::task::spawn_blocking(move || svc.flush_summaries()).await;
                    });
                }
            }
            // Without a runtime (unit tests), at once.
            _ => self.push_summaries(room, later),
        }
    }

    /// Pushes the summaries queued by [`ClientService::update_summaries`].
    fn flush_summaries(&self) {
        let pending = std::mem::take(&mut *lock(&self.inner.pending_summaries));
        let mut by_room: std::collections::HashMap<RoomId, Vec<UserId>> =
            std::collections::HashMap::new();
        for (room, user) in pending {
            by_room.entry(room).or_default().push(user);
        }
        for (room, users) in by_room {
            self.push_summaries(&room, users);
        }
    }

    /// Computes and pushes the room's summary for each of `users`.
    fn push_summaries(&self, room: &RoomId, users: Vec<UserId>) {
        if users.is_empty() {
            return;
        }
        let targets: Vec<(UserId, Facts)> = {
            let rooms = self.rooms();
            let Some(r) = rooms.room(room) else {
                return;
            };
            let state = r.engine().state();
            users
                .into_iter()
                .map(|u| {
                    let f = facts(state, &u);
                    (u, f)
                })
                .collect()
        };
        for (user, f) in targets {
            let summary = self.summary_of(room, &user, f);
            if summary.left {
                lock(&self.inner.hub).unsubscribe_user(&user, room);
            }
            let mut hub = lock(&self.inner.hub);
            for gw in hub.user_gateways(&user) {
                hub.send(
                    gw,
                    ClientMessage::Push(Push::RoomUpdate {
                        user: user.clone(),
                        summary: summary.clone(),
                    }),
                );
            }
        }
    }

    /// A user of this node or of a node this one knows.
    fn check_user(&self, user: &UserId) -> Result<(), ClientError> {
        if user.node() == &self.node_id() {
            return match self
                .inner
                .store
                .account(user.localpart())
                .map_err(internal)?
            {
                Some(_) => Ok(()),
                None => Err(error(ErrorCode::NotFound, format!("no user {user} here"))),
            };
        }
        let known = self
            .inner
            .known_nodes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(user.node());
        if known {
            Ok(())
        } else {
            Err(error(
                ErrorCode::NotFound,
                format!(
                    "the node of {} is not a peer of this node; an admin must add it first",
                    user.localpart()
                ),
            ))
        }
    }

    pub(super) fn create_room(
        &self,
        user: &UserId,
        settings: Vec<Setting>,
        direct_with: Option<UserId>,
        invite: Vec<UserId>,
        trace: TraceId,
    ) -> Result<Response, ClientError> {
        if invite.len() > INVITES_MAX {
            return Err(bad(format!("at most {INVITES_MAX} invitations at once")));
        }
        let direct = direct_with.is_some();
        let mut settings = settings;
        if let Some(other) = &direct_with {
            if other == user {
                return Err(bad("a direct conversation needs another person"));
            }
            self.check_user(other)?;
            if let Some(existing) = self.existing_dm(user, other) {
                // One conversation per pair: the existing one is the answer.
                return Ok(Response::Event {
                    id: confab_wire::EventId(existing.0),
                    duplicate: true,
                });
            }
            settings.retain(|s| !matches!(s, Setting::Visibility(_)));
            settings.push(Setting::Visibility(Visibility::Private));
        } else if !settings.iter().any(|s| matches!(s, Setting::Name(_))) {
            return Err(bad("a room needs a name"));
        }
        for u in &invite {
            self.check_user(u)?;
        }
        let create = CreateRoom {
            version: ROOM_VERSION,
            direct,
            settings,
        };
        let header = EventHeader::create(user.clone(), create, now_ms());
        header.validate().map_err(|e| bad(e.to_string()))?;
        let ev = self
            .inner
            .key
            .sign_event(header, &Content::Empty)
            .map_err(|e| bad(e.to_string()))?;
        let room = ev.room();
        self.rooms().create_room(&ev).map_err(node_error)?;
        self.inner.store.wait_logged().map_err(internal)?;
        self.announce(room, ev.signed(), Some(trace));
        if !direct {
            self.apply_node_roles(&room, user, trace);
            self.grant_node_roles(user, &room, trace);
        }
        let mut invitees: Vec<UserId> = direct_with.into_iter().collect();
        invitees.extend(invite);
        invitees.dedup();
        for u in invitees {
            if &u != user {
                self.post(
                    user,
                    &room,
                    EventKind::Invite { target: u },
                    Content::Reason(ReasonContent::default()),
                    trace,
                    None,
                )?;
            }
        }
        Ok(room_response(room))
    }

    /// A direct conversation `user` and `other` are both still in.
    fn existing_dm(&self, user: &UserId, other: &UserId) -> Option<RoomId> {
        let rooms = self.rooms();
        rooms
            .rooms()
            .find(|(_, r)| {
                let s = r.engine().state();
                let inside = |u: &UserId| {
                    matches!(
                        s.membership(u),
                        Membership::Joined { .. } | Membership::Invited
                    )
                };
                s.direct && inside(user) && inside(other)
            })
            .map(|(id, _)| *id)
    }

    pub(super) fn public_rooms(
        &self,
        user: &UserId,
        query: &str,
        limit: u16,
    ) -> Result<Response, ClientError> {
        let q = query.trim().to_lowercase();
        let limit = limit.clamp(1, confab_wire::client::MAX_PAGE) as usize;
        let found: Vec<(RoomId, Facts)> = {
            let rooms = self.rooms();
            rooms
                .rooms()
                .filter(|(_, r)| {
                    let s = r.engine().state();
                    s.visibility == Visibility::Public
                        && !s.direct
                        && (q.is_empty()
                            || s.name.to_lowercase().contains(&q)
                            || s.topic.to_lowercase().contains(&q))
                })
                .map(|(id, r)| (*id, facts(r.engine().state(), user)))
                .collect()
        };
        let mut out: Vec<RoomSummary> = found
            .into_iter()
            .map(|(id, f)| self.summary_of(&id, user, f))
            .collect();
        out.sort_by(|a, b| b.members.cmp(&a.members).then(a.name.cmp(&b.name)));
        out.truncate(limit);
        Ok(Response::Rooms(out))
    }

    pub(super) fn join(
        &self,
        user: &UserId,
        room: &RoomId,
        trace: TraceId,
    ) -> Result<Response, ClientError> {
        if let (Membership::Joined { .. }, _) = self.member_state(user, room)? {
            return Ok(Response::Done);
        }
        self.post(user, room, EventKind::Join, Content::Empty, trace, None)?;
        // The room's other nodes may not have heard of this user before.
        self.announce_presence(user);
        self.grant_node_roles(user, room, trace);
        self.greet(user, room);
        Ok(Response::Done)
    }

    pub(super) fn leave(
        &self,
        user: &UserId,
        room: &RoomId,
        trace: TraceId,
    ) -> Result<Response, ClientError> {
        match self.member_state(user, room)? {
            (Membership::Joined { .. } | Membership::Invited, _) => {
                self.post(user, room, EventKind::Leave, Content::Empty, trace, None)?;
                Ok(Response::Done)
            }
            _ => Ok(Response::Done),
        }
    }

    pub(super) fn invite(
        &self,
        user: &UserId,
        room: &RoomId,
        target: &UserId,
        trace: TraceId,
    ) -> Result<Response, ClientError> {
        self.check_user(target)?;
        self.post(
            user,
            room,
            EventKind::Invite {
                target: target.clone(),
            },
            Content::Reason(ReasonContent::default()),
            trace,
            None,
        )?;
        Ok(Response::Done)
    }

    pub(super) fn room_info(&self, user: &UserId, room: &RoomId) -> Result<Response, ClientError> {
        self.may_read(user, room)?;
        let (f, members, roles, pins, mine, digest, rules) = {
            let rooms = self.rooms();
            let r = rooms
                .room(room)
                .ok_or_else(|| error(ErrorCode::NotFound, "no such room"))?;
            let s = r.engine().state();
            let now = now_ms();
            let members: Vec<MemberInfo> = s
                .members
                .iter()
                .filter(|(_, m)| matches!(m, Membership::Joined { .. } | Membership::Invited))
                .map(|(u, _)| MemberInfo {
                    user: u.clone(),
                    roles: s
                        .roles_of(u)
                        .into_iter()
                        .filter(|r| r != crate::engine::state::MEMBER)
                        .collect(),
                    muted_until: s.muted_at(u, now),
                    read_up_to: None,
                    delivered_up_to: None,
                })
                .collect();
            let roles: Vec<(String, Permissions)> =
                s.roles.iter().map(|(n, p)| (n.clone(), *p)).collect();
            (
                facts(s, user),
                members,
                roles,
                s.pins.clone(),
                s.permissions(user),
                r.engine().digest(),
                s.rules,
            )
        };
        // Receipts are shown in direct rooms only (a read per member of a
        // big room would cost a lookup each).
        let mut members = members;
        if f.direct_with.is_some() {
            let store = &self.inner.store;
            for m in &mut members {
                m.read_up_to = store.read_position(room, &m.user).map_err(internal)?;
                if m.user.node() != &self.node_id() {
                    m.delivered_up_to =
                        store.delivered_position(room, &m.user).map_err(internal)?;
                }
            }
        }
        Ok(Response::Room(RoomDetail {
            summary: self.summary_of(room, user, f),
            members,
            roles,
            pins,
            my_permissions: mine,
            digest,
            rules_version: rules.version,
            invites: rules.invites,
        }))
    }

    pub(super) fn moderate(
        &self,
        user: &UserId,
        room: &RoomId,
        action: Moderation,
        trace: TraceId,
    ) -> Result<Response, ClientError> {
        let cutoff = |target: &UserId| -> Result<u64, ClientError> {
            let rooms = self.rooms();
            let r = rooms
                .room(room)
                .ok_or_else(|| error(ErrorCode::NotFound, "no such room"))?;
            Ok(r.engine().cutoff_for(target))
        };
        let reason = |r: String| Content::Reason(ReasonContent { reason: r });
        let (kind, content) = match action {
            Moderation::Mute {
                target,
                until,
                reason: r,
            } => (
                EventKind::Mute {
                    cutoff: cutoff(&target)?,
                    target,
                    until,
                },
                reason(r),
            ),
            Moderation::Unmute { target } => (EventKind::Unmute { target }, reason(String::new())),
            Moderation::Kick { target, reason: r } => (
                EventKind::Kick {
                    cutoff: cutoff(&target)?,
                    target,
                },
                reason(r),
            ),
            Moderation::Ban { target, reason: r } => (
                EventKind::Ban {
                    cutoff: cutoff(&target)?,
                    target,
                },
                reason(r),
            ),
            Moderation::Unban { target } => (EventKind::Unban { target }, reason(String::new())),
            Moderation::DefineRole { role, permissions } => {
                (EventKind::RoleDefine { role, permissions }, Content::Empty)
            }
            Moderation::GrantRole { target, role } => {
                (EventKind::RoleGrant { target, role }, Content::Empty)
            }
            Moderation::RevokeRole { target, role } => (
                EventKind::RoleRevoke {
                    cutoff: cutoff(&target)?,
                    target,
                    role,
                },
                reason(String::new()),
            ),
        };
        self.post_event(user, room, kind, content, trace)
    }

    pub(super) fn profile(&self, user: &UserId) -> Result<Profile, ClientError> {
        let (presence, last_active) = self.presence_of(user);
        if user.node() == &self.node_id() {
            let a = self
                .inner
                .store
                .account(user.localpart())
                .map_err(internal)?
                .filter(|a| !a.disabled)
                .ok_or_else(|| error(ErrorCode::NotFound, format!("no user {user} here")))?;
            return Ok(Profile {
                user: user.clone(),
                display_name: a.display_name,
                avatar: a.avatar,
                status: a.status,
                presence,
                last_active,
            });
        }
        // A user of another node: what this node has seen of them.
        Ok(Profile {
            user: user.clone(),
            display_name: user.localpart().to_string(),
            avatar: None,
            status: String::new(),
            presence,
            last_active,
        })
    }

    pub(super) fn set_profile(
        &self,
        user: &UserId,
        display_name: Option<String>,
        avatar: Option<Option<BlobId>>,
        status: Option<String>,
    ) -> Result<Response, ClientError> {
        let clean = |s: &str, max: usize, what: &str| -> Result<String, ClientError> {
            let t = s.trim();
            if t.len() > max {
                return Err(bad(format!("the {what} is too long")));
            }
            if t.chars().any(char::is_control) {
                return Err(bad(format!("the {what} holds control characters")));
            }
            Ok(t.to_string())
        };
        let display_name = display_name
            .map(|d| clean(&d, DISPLAY_NAME_MAX, "display name"))
            .transpose()?;
        let status = status
            .map(|s| clean(&s, STATUS_MAX, "status"))
            .transpose()?;
        if let Some(Some(blob)) = &avatar {
            if self
                .inner
                .store
                .blob_size(blob)
                .map_err(internal)?
                .is_none()
            {
                return Err(error(ErrorCode::NotFound, "upload the avatar first"));
            }
            // Only one's own upload can become one's avatar (it is then
            // public to everyone signed in).
            if !self
                .inner
                .store
                .blob_open_to(blob, user.localpart())
                .map_err(internal)?
            {
                return Err(error(ErrorCode::Forbidden, "upload the avatar first"));
            }
            self.inner.store.note_avatar(blob).map_err(internal)?;
        }
        let updated = self
            .inner
            .store
            .update_account(user.localpart(), |a| {
                if let Some(d) = &display_name {
                    a.display_name = if d.is_empty() {
                        a.localpart.clone()
                    } else {
                        d.clone()
                    };
                }
                if let Some(s) = &status {
                    a.status.clone_from(s);
                }
                if let Some(av) = avatar {
                    a.avatar = av;
                }
            })
            .map_err(internal)?;
        if updated.is_none() {
            return Err(error(ErrorCode::NotFound, "no such account"));
        }
        self.inner.store.wait_durable().map_err(internal)?;
        Ok(Response::Done)
    }

    pub(super) fn search_users(&self, query: &str, limit: u16) -> Result<Response, ClientError> {
        let limit = limit.clamp(1, USER_SEARCH_MAX) as usize;
        let q = query.trim().trim_start_matches('@');
        // A full id: that one user, if it resolves.
        if let Ok(u) = query.trim().parse::<UserId>() {
            return Ok(Response::Users(match self.check_user(&u) {
                Ok(()) => vec![self.profile(&u)?],
                Err(_) => Vec::new(),
            }));
        }
        let q = q.split(':').next().unwrap_or("").to_lowercase();
        let mut out: Vec<Profile> = Vec::new();
        for a in self
            .inner
            .store
            .find_accounts(&q, limit)
            .map_err(internal)?
        {
            if a.disabled {
                continue;
            }
            if let Ok(u) = UserId::new(self.node_id(), &a.localpart) {
                let (presence, last_active) = self.presence_of(&u);
                out.push(Profile {
                    user: u,
                    display_name: a.display_name,
                    avatar: a.avatar,
                    status: a.status,
                    presence,
                    last_active,
                });
            }
        }
        // Users of other nodes seen in rooms held here.
        let me = self.node_id();
        let remote: Vec<UserId> = {
            let rooms = self.rooms();
            let mut seen: HashSet<UserId> = HashSet::new();
            for (_, r) in rooms.rooms() {
                for u in r.engine().state().members.keys() {
                    if u.node() != &me && u.localpart().starts_with(&q) {
                        seen.insert(u.clone());
                    }
                }
            }
            let mut v: Vec<UserId> = seen.into_iter().collect();
            v.sort();
            v
        };
        for u in remote {
            if out.len() >= limit {
                break;
            }
            out.push(self.profile(&u)?);
        }
        out.truncate(limit);
        Ok(Response::Users(out))
    }
}

fn room_response(room: RoomId) -> Response {
    // The room id is the create event's id.
    Response::Event {
        id: confab_wire::EventId(room.0),
        duplicate: false,
    }
}

/// The answer for a room that does not exist or that the user may not see:
/// one answer for both.
pub(super) fn hidden() -> ClientError {
    error(
        ErrorCode::NotFound,
        "no such room here, or you may not see it",
    )
}
