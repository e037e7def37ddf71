//! The auth rules: one function judges every event, local or from a peer,
//! against the state before it; another applies an accepted event's effect.

use std::collections::BTreeSet;

use bincode::{Decode, Encode};

use confab_wire::event::{EventKind, InvitePolicy, Setting};
use confab_wire::{EventId, Permissions, UserId};

use super::EventMeta;
use super::state::{MAX_PINS, MEMBER, Membership, OWNER, RoomState};

/// Why the room's rules refused an event. The event is kept (so replicas
/// agree on the set) but never shown and has no effect.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error, Encode, Decode)]
#[non_exhaustive]
pub enum Rejection {
    /// The author is not a member.
    #[error("not a member of the room")]
    NotMember,
    /// The author is banned.
    #[error("banned from the room")]
    Banned,
    /// The author is muted.
    #[error("muted until {until}")]
    Muted {
        /// End of the mute (ms since epoch).
        until: u64,
    },
    /// The author lacks a permission.
    #[error("lacks permission {}", .needs.names().join(","))]
    Forbidden {
        /// What was needed.
        needs: Permissions,
    },
    /// The room is archived (read-only).
    #[error("room is archived")]
    Archived,
    /// The target event is unknown, not accepted, or not a message.
    #[error("target is not an accepted message of this room")]
    BadTarget,
    /// Only the author may do this to their message.
    #[error("not the author of the target")]
    NotAuthor,
    /// The target was deleted.
    #[error("target was deleted")]
    Redacted,
    /// The same reaction exists already.
    #[error("already reacted with this emoji")]
    AlreadyReacted,
    /// No such reaction to remove.
    #[error("no such reaction")]
    NotReacted,
    /// Already pinned.
    #[error("already pinned")]
    AlreadyPinned,
    /// Not pinned.
    #[error("not pinned")]
    NotPinned,
    /// The room holds the maximum of pins.
    #[error("at most {MAX_PINS} pins per room")]
    TooManyPins,
    /// The user is already joined (or invited, for an invite).
    #[error("already a member")]
    AlreadyMember,
    /// A private room needs an invitation.
    #[error("not invited")]
    NotInvited,
    /// The target user is not in a state this event can change.
    #[error("target user is not {0}")]
    TargetState(Expected),
    /// The room's creator cannot be sanctioned or demoted.
    #[error("the room's creator cannot be demoted or sanctioned")]
    CreatorProtected,
    /// The target holds permissions the author lacks.
    #[error("target outranks the author")]
    Outranked,
    /// No such role.
    #[error("unknown role")]
    UnknownRole,
    /// The role is built in and fixed.
    #[error("the owner role is fixed")]
    FixedRole,
    /// Would give more than the author holds.
    #[error("cannot grant more than one holds")]
    ExceedsOwnPermissions,
    /// A direct conversation has two people.
    #[error("a direct conversation has two members")]
    DirectRoomFull,
    /// A direct conversation stays private.
    #[error("a direct conversation cannot be made public")]
    DirectRoomPrivate,
    /// A mute must end after it starts.
    #[error("mute ends before it starts")]
    MuteInPast,
    /// The room already exists (a second create).
    #[error("the room exists already")]
    SecondCreate,
    /// The origin signed two events with one origin sequence.
    #[error("origin equivocated at sequence {seq}")]
    Equivocation {
        /// The first sequence number that was forked.
        seq: u64,
    },
    /// The setting does not exist in the room's rules version.
    #[error("this room's rules version has no such setting")]
    UnsupportedSetting,
}

impl Rejection {
    /// A short stable name for metrics and logs (no values, so few labels).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NotMember => "not_member",
            Rejection::Banned => "banned",
            Rejection::Muted { .. } => "muted",
            Rejection::Forbidden { .. } => "forbidden",
            Rejection::Archived => "archived",
            Rejection::BadTarget => "bad_target",
            Rejection::NotAuthor => "not_author",
            Rejection::Redacted => "redacted",
            Rejection::AlreadyReacted => "already_reacted",
            Rejection::NotReacted => "not_reacted",
            Rejection::AlreadyPinned => "already_pinned",
            Rejection::NotPinned => "not_pinned",
            Rejection::TooManyPins => "too_many_pins",
            Rejection::AlreadyMember => "already_member",
            Rejection::NotInvited => "not_invited",
            Rejection::TargetState(_) => "target_state",
            Rejection::CreatorProtected => "creator_protected",
            Rejection::Outranked => "outranked",
            Rejection::UnknownRole => "unknown_role",
            Rejection::FixedRole => "fixed_role",
            Rejection::ExceedsOwnPermissions => "exceeds_own_permissions",
            Rejection::DirectRoomFull => "direct_room_full",
            Rejection::DirectRoomPrivate => "direct_room_private",
            Rejection::MuteInPast => "mute_in_past",
            Rejection::SecondCreate => "second_create",
            Rejection::Equivocation { .. } => "equivocation",
            Rejection::UnsupportedSetting => "unsupported_setting",
        }
    }
}

/// The state a target user was expected to be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub enum Expected {
    /// Muted.
    Muted,
    /// Banned.
    Banned,
    /// Not banned.
    Unbanned,
    /// Joined or invited.
    Member,
    /// Without the role being granted.
    WithoutRole,
    /// Holding the role being revoked.
    HoldingRole,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expected::Muted => "muted",
            Expected::Banned => "banned",
            Expected::Unbanned => "unbanned",
            Expected::Member => "a member",
            Expected::WithoutRole => "without this role",
            Expected::HoldingRole => "holding this role",
        })
    }
}

/// Sanctions from later in the order that reach back to this event because
/// its origin sequence is past their cutoff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    /// A ban applies.
    pub banned: bool,
    /// A kick applies with this (highest) cutoff.
    pub kicked: Option<u64>,
    /// A mute applies until this time.
    pub muted_until: Option<u64>,
    /// Roles revoked.
    pub revoked: BTreeSet<String>,
}

impl Overlay {
    /// True if nothing applies.
    pub fn is_empty(&self) -> bool {
        !self.banned
            && self.kicked.is_none()
            && self.muted_until.is_none()
            && self.revoked.is_empty()
    }
}

/// What the rules need of a target event.
#[derive(Clone, Debug)]
pub struct TargetInfo {
    /// Its author.
    pub author: UserId,
    /// It is a message.
    pub is_message: bool,
    /// It was accepted at its place.
    pub accepted: bool,
    /// An accepted redaction of it sorts before the event being judged.
    pub redacted: bool,
}

/// What the rules ask of the room's history, as of the event being judged.
pub trait Lookup {
    /// The target message, if held.
    fn target(&self, id: &EventId) -> Option<TargetInfo>;
    /// Whether `user` has an active `emoji` reaction on `target`.
    fn reacted(&self, target: &EventId, user: &UserId, emoji: &str) -> bool;
}

/// The author as the rules see them: state plus overlay.
struct Actor {
    membership: Membership,
    perms: Permissions,
    muted_until: Option<u64>,
}

fn actor(state: &RoomState, ev: &EventMeta, overlay: &Overlay) -> Actor {
    let user = &ev.author;
    let mut membership = state.membership(user);
    if overlay.banned {
        membership = Membership::Banned;
    }
    if let (Some(cutoff), Membership::Joined { seq }) = (overlay.kicked, membership)
        && seq <= cutoff
    {
        membership = Membership::Left;
    }
    let perms = if matches!(membership, Membership::Joined { .. }) {
        let mut roles = state.roles_of(user);
        for r in &overlay.revoked {
            roles.remove(r);
        }
        if user == &state.creator {
            roles.insert(OWNER.to_string());
        }
        roles.insert(MEMBER.to_string());
        roles
            .iter()
            .filter_map(|r| state.roles.get(r))
            .fold(Permissions::NONE, |acc, p| acc.union(*p))
    } else {
        Permissions::NONE
    };
    let muted_until = [
        state.muted_at(user, ev.ts),
        overlay.muted_until.filter(|u| ev.ts < *u),
    ]
    .into_iter()
    .flatten()
    .max();
    Actor {
        membership,
        perms,
        muted_until,
    }
}

fn need(actor: &Actor, p: Permissions) -> Result<(), Rejection> {
    if actor.perms.contains(p) {
        Ok(())
    } else {
        Err(Rejection::Forbidden { needs: p })
    }
}

fn joined(actor: &Actor) -> Result<(), Rejection> {
    match actor.membership {
        Membership::Joined { .. } => Ok(()),
        Membership::Banned => Err(Rejection::Banned),
        _ => Err(Rejection::NotMember),
    }
}

fn not_muted(actor: &Actor) -> Result<(), Rejection> {
    match actor.muted_until {
        Some(until) => Err(Rejection::Muted { until }),
        None => Ok(()),
    }
}

/// A sanction needs the permission, a target other than the creator, and
/// a target who holds nothing the author lacks.
fn may_sanction(
    state: &RoomState,
    actor: &Actor,
    target: &UserId,
    p: Permissions,
) -> Result<(), Rejection> {
    need(actor, p)?;
    if target == &state.creator {
        return Err(Rejection::CreatorProtected);
    }
    if !actor.perms.contains(state.permissions(target)) {
        return Err(Rejection::Outranked);
    }
    Ok(())
}

fn message_target(target: &EventId, lookup: &dyn Lookup) -> Result<TargetInfo, Rejection> {
    let info = lookup.target(target).ok_or(Rejection::BadTarget)?;
    if !info.is_message || !info.accepted {
        return Err(Rejection::BadTarget);
    }
    if info.redacted {
        return Err(Rejection::Redacted);
    }
    Ok(info)
}

/// Judges a non-create event against the state before it.
pub fn judge(
    state: &RoomState,
    ev: &EventMeta,
    overlay: &Overlay,
    lookup: &dyn Lookup,
) -> Result<(), Rejection> {
    let a = actor(state, ev, overlay);
    if a.membership == Membership::Banned {
        return Err(Rejection::Banned);
    }
    if state.archived && !matches!(ev.kind, EventKind::Leave) {
        return Err(Rejection::Archived);
    }
    match &ev.kind {
        EventKind::Create(_) => Err(Rejection::SecondCreate),
        EventKind::Settings(settings) => {
            joined(&a)?;
            need(&a, Permissions::ROOM_SETTINGS)?;
            if state.rules.version < 2 && settings.iter().any(|s| matches!(s, Setting::Invites(_)))
            {
                return Err(Rejection::UnsupportedSetting);
            }
            if state.direct
                && settings.iter().any(|s| {
                    matches!(
                        s,
                        Setting::Visibility(confab_wire::event::Visibility::Public)
                    )
                })
            {
                return Err(Rejection::DirectRoomPrivate);
            }
            Ok(())
        }
        EventKind::Archive => {
            joined(&a)?;
            need(&a, Permissions::ROOM_SETTINGS)
        }
        EventKind::Invite { target } => {
            joined(&a)?;
            need(&a, Permissions::MESSAGE_SEND)?;
            // Version 1 let any member invite; from version 2 a private
            // room's invitations need `room.settings` unless the room lets
            // members invite.
            if state.rules.version >= 2
                && state.visibility == confab_wire::event::Visibility::Private
                && state.rules.invites == InvitePolicy::RoomSettings
            {
                need(&a, Permissions::ROOM_SETTINGS)?;
            }
            not_muted(&a)?;
            match state.membership(target) {
                Membership::Joined { .. } | Membership::Invited => Err(Rejection::AlreadyMember),
                Membership::Banned => Err(Rejection::TargetState(Expected::Unbanned)),
                Membership::Left => {
                    if state.direct && state.joined_or_invited() >= 2 {
                        Err(Rejection::DirectRoomFull)
                    } else {
                        Ok(())
                    }
                }
            }
        }
        EventKind::Join => match a.membership {
            Membership::Joined { .. } => Err(Rejection::AlreadyMember),
            Membership::Invited => Ok(()),
            Membership::Left if state.visibility == confab_wire::event::Visibility::Public => {
                Ok(())
            }
            _ => Err(Rejection::NotInvited),
        },
        EventKind::Leave => match a.membership {
            Membership::Joined { .. } | Membership::Invited => Ok(()),
            _ => Err(Rejection::NotMember),
        },
        EventKind::Kick { target, .. } => {
            joined(&a)?;
            may_sanction(state, &a, target, Permissions::USER_KICK)?;
            match state.membership(target) {
                Membership::Joined { .. } | Membership::Invited => Ok(()),
                _ => Err(Rejection::TargetState(Expected::Member)),
            }
        }
        EventKind::Ban { target, .. } => {
            joined(&a)?;
            may_sanction(state, &a, target, Permissions::USER_BAN)?;
            if state.membership(target) == Membership::Banned {
                return Err(Rejection::TargetState(Expected::Unbanned));
            }
            Ok(())
        }
        EventKind::Unban { target } => {
            joined(&a)?;
            need(&a, Permissions::USER_BAN)?;
            if state.membership(target) != Membership::Banned {
                return Err(Rejection::TargetState(Expected::Banned));
            }
            Ok(())
        }
        EventKind::Message => {
            joined(&a)?;
            need(&a, Permissions::MESSAGE_SEND)?;
            not_muted(&a)
        }
        EventKind::Edit { target } => {
            joined(&a)?;
            need(&a, Permissions::MESSAGE_SEND)?;
            not_muted(&a)?;
            let t = message_target(target, lookup)?;
            if t.author != ev.author {
                return Err(Rejection::NotAuthor);
            }
            Ok(())
        }
        EventKind::Redact { target } => {
            joined(&a)?;
            let t = message_target(target, lookup)?;
            if t.author != ev.author {
                need(&a, Permissions::MESSAGE_DELETE)?;
            }
            Ok(())
        }
        EventKind::React { target, emoji } => {
            joined(&a)?;
            need(&a, Permissions::MESSAGE_SEND)?;
            not_muted(&a)?;
            message_target(target, lookup)?;
            if lookup.reacted(target, &ev.author, emoji) {
                return Err(Rejection::AlreadyReacted);
            }
            Ok(())
        }
        EventKind::Unreact { target, emoji } => {
            joined(&a)?;
            if !lookup.reacted(target, &ev.author, emoji) {
                return Err(Rejection::NotReacted);
            }
            Ok(())
        }
        EventKind::Pin { target } => {
            joined(&a)?;
            need(&a, Permissions::MESSAGE_PIN)?;
            message_target(target, lookup)?;
            if state.pins.contains(target) {
                return Err(Rejection::AlreadyPinned);
            }
            if state.pins.len() >= MAX_PINS {
                return Err(Rejection::TooManyPins);
            }
            Ok(())
        }
        EventKind::Unpin { target } => {
            joined(&a)?;
            need(&a, Permissions::MESSAGE_PIN)?;
            if !state.pins.contains(target) {
                return Err(Rejection::NotPinned);
            }
            Ok(())
        }
        EventKind::RoleDefine { role, permissions } => {
            joined(&a)?;
            need(&a, Permissions::ROLE_MANAGE)?;
            if role == OWNER {
                return Err(Rejection::FixedRole);
            }
            let old = state.roles.get(role).copied().unwrap_or_default();
            if !a.perms.contains(*permissions) || !a.perms.contains(old) {
                return Err(Rejection::ExceedsOwnPermissions);
            }
            Ok(())
        }
        EventKind::RoleGrant { target, role } => {
            joined(&a)?;
            need(&a, Permissions::ROLE_MANAGE)?;
            if role == OWNER {
                return Err(Rejection::FixedRole);
            }
            let p = *state.roles.get(role).ok_or(Rejection::UnknownRole)?;
            if !a.perms.contains(p) {
                return Err(Rejection::ExceedsOwnPermissions);
            }
            if !state.is_joined(target) {
                return Err(Rejection::TargetState(Expected::Member));
            }
            if state.grants.get(target).is_some_and(|g| g.contains(role)) {
                return Err(Rejection::TargetState(Expected::WithoutRole));
            }
            Ok(())
        }
        EventKind::RoleRevoke { target, role, .. } => {
            joined(&a)?;
            need(&a, Permissions::ROLE_MANAGE)?;
            if role == OWNER || target == &state.creator {
                return Err(Rejection::CreatorProtected);
            }
            let p = *state.roles.get(role).ok_or(Rejection::UnknownRole)?;
            if !a.perms.contains(p) {
                return Err(Rejection::ExceedsOwnPermissions);
            }
            if !state.grants.get(target).is_some_and(|g| g.contains(role)) {
                return Err(Rejection::TargetState(Expected::HoldingRole));
            }
            Ok(())
        }
        EventKind::Mute { target, until, .. } => {
            joined(&a)?;
            may_sanction(state, &a, target, Permissions::USER_MUTE)?;
            if *until <= ev.ts {
                return Err(Rejection::MuteInPast);
            }
            Ok(())
        }
        EventKind::Unmute { target } => {
            joined(&a)?;
            need(&a, Permissions::USER_MUTE)?;
            if state.muted_at(target, ev.ts).is_none() {
                return Err(Rejection::TargetState(Expected::Muted));
            }
            Ok(())
        }
    }
}

/// Applies an accepted event's effect on the state.
pub fn apply(state: &mut RoomState, ev: &EventMeta) {
    state.accepted += 1;
    match &ev.kind {
        EventKind::Create(_) | EventKind::Message | EventKind::Edit { .. } => {}
        EventKind::Settings(s) => state.apply_settings(s),
        EventKind::Archive => state.archived = true,
        EventKind::Invite { target } => {
            state.members.insert(target.clone(), Membership::Invited);
        }
        EventKind::Join => {
            state
                .members
                .insert(ev.author.clone(), Membership::Joined { seq: ev.seq });
        }
        EventKind::Leave => {
            state.members.insert(ev.author.clone(), Membership::Left);
            state.grants.remove(&ev.author);
        }
        EventKind::Kick { target, .. } => {
            state.members.insert(target.clone(), Membership::Left);
            state.grants.remove(target);
        }
        EventKind::Ban { target, .. } => {
            state.members.insert(target.clone(), Membership::Banned);
            state.grants.remove(target);
        }
        EventKind::Unban { target } => {
            state.members.insert(target.clone(), Membership::Left);
        }
        EventKind::Redact { target } => state.pins.retain(|p| p != target),
        // Reactions live in the history's relation index.
        EventKind::React { .. } | EventKind::Unreact { .. } => {}
        EventKind::Pin { target } => state.pins.push(*target),
        EventKind::Unpin { target } => state.pins.retain(|p| p != target),
        EventKind::RoleDefine { role, permissions } => {
            state.roles.insert(role.clone(), *permissions);
        }
        EventKind::RoleGrant { target, role } => {
            state
                .grants
                .entry(target.clone())
                .or_default()
                .insert(role.clone());
        }
        EventKind::RoleRevoke { target, role, .. } => {
            if let Some(g) = state.grants.get_mut(target) {
                g.remove(role);
                if g.is_empty() {
                    state.grants.remove(target);
                }
            }
        }
        EventKind::Mute { target, until, .. } => {
            state.mutes.insert(target.clone(), *until);
        }
        EventKind::Unmute { target } => {
            state.mutes.remove(target);
        }
    }
}
