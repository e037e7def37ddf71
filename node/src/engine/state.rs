//! Room state: the fold of the engine over a room's accepted events.
//!
//! Everything here is ordered (`BTreeMap`/`BTreeSet`) so that the digest of
//! two equal states is equal byte for byte. The state stays small whatever
//! the room's history: facts about single messages (reactions, deletions)
//! are answered from the history's relation index, not kept here.

use std::collections::{BTreeMap, BTreeSet};

use bincode::{Decode, Encode};
use confab_wire::event::{InvitePolicy, Setting, Visibility};
use confab_wire::{EventId, Permissions, RoomId, UserId};
use sha2::{Digest, Sha256};

/// Most pinned messages per room.
pub const MAX_PINS: usize = 3;

/// The built-in roles and what they allow. `owner` is held by the room's
/// creator alone and can be neither redefined, granted nor revoked.
pub const OWNER: &str = "owner";
/// Built-in role with every permission.
pub const ADMIN: &str = "admin";
/// Built-in role for moderation.
pub const MODERATOR: &str = "moderator";
/// Built-in role every joined member implicitly holds.
pub const MEMBER: &str = "member";

/// The permissions of the built-in roles when a room is created.
pub fn default_roles() -> BTreeMap<String, Permissions> {
    let moderator = Permissions::MESSAGE_SEND
        .union(Permissions::MESSAGE_DELETE)
        .union(Permissions::MESSAGE_PIN)
        .union(Permissions::USER_MUTE)
        .union(Permissions::USER_KICK);
    BTreeMap::from([
        (OWNER.to_string(), Permissions::ALL),
        (ADMIN.to_string(), Permissions::ALL),
        (MODERATOR.to_string(), moderator),
        (MEMBER.to_string(), Permissions::MESSAGE_SEND),
    ])
}

/// A user's membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum Membership {
    /// Invited, not yet joined.
    Invited,
    /// Joined; `seq` is the origin sequence of their join event (a kick with
    /// a cutoff at or above it removes them).
    Joined {
        /// Origin sequence of the join.
        seq: u64,
    },
    /// Left or was kicked.
    Left,
    /// Banned.
    Banned,
}

/// What the room's rules version decides beyond membership and roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Rules {
    /// The rules version its create event names.
    pub version: u16,
    /// Who may invite while the room is private (version 2 and later).
    pub invites: InvitePolicy,
}

impl Rules {
    /// The rules of a room created with `version`.
    pub fn of_version(version: u16) -> Rules {
        Rules {
            version,
            invites: InvitePolicy::default(),
        }
    }
}

/// The folded state of a room. `R` is [`Rules`] everywhere but in the
/// store's migration of schema 1, whose states had none (`()`).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct RoomState<R = Rules> {
    /// The room.
    pub room: RoomId,
    /// Its creator (the owner, who cannot be demoted).
    pub creator: UserId,
    /// A direct conversation.
    pub direct: bool,
    /// Display name.
    pub name: String,
    /// Topic.
    pub topic: String,
    /// Public or private.
    pub visibility: Visibility,
    /// Read-only.
    pub archived: bool,
    /// Membership of every user the room has seen.
    pub members: BTreeMap<UserId, Membership>,
    /// Defined roles.
    pub roles: BTreeMap<String, Permissions>,
    /// Roles granted per user (besides the implicit `member`).
    pub grants: BTreeMap<UserId, BTreeSet<String>>,
    /// Mutes in force: user → end time (ms since epoch).
    pub mutes: BTreeMap<UserId, u64>,
    /// Pinned messages, oldest pin first.
    pub pins: Vec<EventId>,
    /// Accepted events counted so far.
    pub accepted: u64,
    /// The rules it is judged by.
    pub rules: R,
}

impl<R> RoomState<R> {
    /// The same state with other rules (the store's schema migration).
    pub fn map_rules<S>(self, f: impl FnOnce(R) -> S) -> RoomState<S> {
        RoomState {
            room: self.room,
            creator: self.creator,
            direct: self.direct,
            name: self.name,
            topic: self.topic,
            visibility: self.visibility,
            archived: self.archived,
            members: self.members,
            roles: self.roles,
            grants: self.grants,
            mutes: self.mutes,
            pins: self.pins,
            accepted: self.accepted,
            rules: f(self.rules),
        }
    }
}

impl RoomState {
    /// The state right after a room's create event.
    pub fn new(room: RoomId, creator: UserId, direct: bool, create_seq: u64, version: u16) -> Self {
        let mut s = RoomState {
            room,
            creator: creator.clone(),
            direct,
            name: String::new(),
            topic: String::new(),
            visibility: Visibility::Private,
            archived: false,
            members: BTreeMap::new(),
            roles: default_roles(),
            grants: BTreeMap::new(),
            mutes: BTreeMap::new(),
            pins: Vec::new(),
            accepted: 1,
            rules: Rules::of_version(version),
        };
        s.members
            .insert(creator.clone(), Membership::Joined { seq: create_seq });
        s.grants
            .entry(creator)
            .or_default()
            .insert(OWNER.to_string());
        s
    }

    /// Applies settings.
    pub fn apply_settings(&mut self, settings: &[Setting]) {
        for s in settings {
            match s {
                Setting::Name(n) => self.name.clone_from(n),
                Setting::Topic(t) => self.topic.clone_from(t),
                Setting::Visibility(v) => self.visibility = *v,
                Setting::Invites(p) => self.rules.invites = *p,
            }
        }
    }

    /// A user's membership (`Left` if never seen).
    pub fn membership(&self, user: &UserId) -> Membership {
        self.members.get(user).copied().unwrap_or(Membership::Left)
    }

    /// True if the user is joined.
    pub fn is_joined(&self, user: &UserId) -> bool {
        matches!(self.membership(user), Membership::Joined { .. })
    }

    /// The roles a user holds, `member` included when joined.
    pub fn roles_of(&self, user: &UserId) -> BTreeSet<String> {
        let mut roles = self.grants.get(user).cloned().unwrap_or_default();
        if user == &self.creator {
            roles.insert(OWNER.to_string());
        }
        if self.is_joined(user) {
            roles.insert(MEMBER.to_string());
        }
        roles
    }

    /// A user's permissions: the union of their roles' (nothing unless joined).
    pub fn permissions(&self, user: &UserId) -> Permissions {
        if !self.is_joined(user) {
            return Permissions::NONE;
        }
        self.roles_of(user)
            .iter()
            .filter_map(|r| self.roles.get(r))
            .fold(Permissions::NONE, |acc, p| acc.union(*p))
    }

    /// The end of a user's mute if it is in force at `ts`.
    pub fn muted_at(&self, user: &UserId, ts: u64) -> Option<u64> {
        self.mutes.get(user).copied().filter(|until| ts < *until)
    }

    /// Joined members.
    pub fn joined(&self) -> impl Iterator<Item = &UserId> {
        self.members
            .iter()
            .filter(|(_, m)| matches!(m, Membership::Joined { .. }))
            .map(|(u, _)| u)
    }

    /// Joined and invited members.
    pub fn joined_or_invited(&self) -> usize {
        self.members
            .values()
            .filter(|m| matches!(m, Membership::Joined { .. } | Membership::Invited))
            .count()
    }

    /// A canonical hash of the state.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut put = |b: &[u8]| {
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        };
        put(self.room.as_bytes());
        put(self.creator.to_string().as_bytes());
        put(&[u8::from(self.direct), u8::from(self.archived)]);
        put(self.name.as_bytes());
        put(self.topic.as_bytes());
        put(&[matches!(self.visibility, Visibility::Public) as u8]);
        for (u, m) in &self.members {
            put(u.to_string().as_bytes());
            let code: [u8; 9] = match m {
                Membership::Invited => [1, 0, 0, 0, 0, 0, 0, 0, 0],
                Membership::Joined { seq } => {
                    let mut b = [2u8; 9];
                    b[1..].copy_from_slice(&seq.to_be_bytes());
                    b
                }
                Membership::Left => [3, 0, 0, 0, 0, 0, 0, 0, 0],
                Membership::Banned => [4, 0, 0, 0, 0, 0, 0, 0, 0],
            };
            put(&code);
        }
        for (r, p) in &self.roles {
            put(r.as_bytes());
            put(&p.0.to_be_bytes());
        }
        for (u, roles) in &self.grants {
            put(u.to_string().as_bytes());
            for r in roles {
                put(r.as_bytes());
            }
        }
        for (u, until) in &self.mutes {
            put(u.to_string().as_bytes());
            put(&until.to_be_bytes());
        }
        for p in &self.pins {
            put(p.as_bytes());
        }
        put(&self.accepted.to_be_bytes());
        // Version 1 states hash as they always did, so nodes of different
        // releases agree on them.
        if self.rules.version >= 2 {
            put(&self.rules.version.to_be_bytes());
            put(&[match self.rules.invites {
                InvitePolicy::RoomSettings => 0,
                InvitePolicy::Members => 1,
            }]);
        }
        h.finalize().into()
    }
}
