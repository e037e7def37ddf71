//! The room event model: the signed header, the content beside it, and the
//! whole event vocabulary of a chat room.
//!
//! The origin signs the header; the content travels beside it and must hash to
//! `content_hash`. So a redacted event drops its content everywhere and its
//! header still verifies. Everything the room's auth rules and state need is in
//! the header ("essential fields"); everything a person reads is content.

use bincode::{Decode, Encode};

use crate::codec;
use crate::error::{Error, Result};
use crate::ids::{BlobId, ContentHash, EventId, RoomId, UserId};

/// The rules version this crate writes into create events. Every node judges
/// a room by the version its create event names, so a change to the auth
/// rules is a new version and never splits a federation.
///
/// - 1: inviting needs `message.send`, whatever the room.
/// - 2: inviting into a private room needs `room.settings` unless the room's
///   [`Setting::Invites`] lets members invite.
/// - 3: a message may carry an [`IdempotencyHash`] after its fields.
pub const ROOM_VERSION: u16 = 3;
/// The first rules version whose messages may carry an [`IdempotencyHash`].
pub const IDEMPOTENCY_SINCE: u16 = 3;
/// The oldest rules version this crate still judges.
pub const OLDEST_ROOM_VERSION: u16 = 1;
/// Most parents an event may name.
pub const MAX_PREV: usize = 20;
/// Most bytes of a signed header.
pub const MAX_HEADER_LEN: usize = 4 * 1024;
/// Most bytes of an event's content.
pub const MAX_CONTENT_LEN: usize = 60 * 1024;
/// Most bytes of a message body (markdown source).
pub const MAX_BODY_LEN: usize = 16 * 1024;
/// Most users one message may mention.
pub const MAX_MENTIONS: usize = 64;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 10;
/// Most bytes of a room name.
pub const MAX_ROOM_NAME_LEN: usize = 100;
/// Most bytes of a room topic.
pub const MAX_TOPIC_LEN: usize = 1000;
/// Most bytes of a moderation or redaction reason.
pub const MAX_REASON_LEN: usize = 500;
/// Most bytes of one reaction emoji (a grapheme cluster can be long).
pub const MAX_EMOJI_LEN: usize = 32;
/// Most bytes of a role name.
pub const MAX_ROLE_NAME_LEN: usize = 32;
/// Most bytes of an attachment's media type.
pub const MAX_MIME_LEN: usize = 100;
/// Most bytes of an attachment's file name.
pub const MAX_FILE_NAME_LEN: usize = 255;
/// Most settings one settings event may change.
pub const MAX_SETTINGS: usize = 16;

/// Who may join a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Visibility {
    /// Listed in the directory; anyone may join.
    Public,
    /// Invite only.
    Private,
}

/// One room setting. New settings are new variants, so old encodings stay valid.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Setting {
    /// The room's display name.
    Name(String),
    /// The room's topic (markdown).
    Topic(String),
    /// Public or private.
    Visibility(Visibility),
    /// Who may invite into a private room (rules version 2 and later).
    Invites(InvitePolicy),
}

/// Who may invite into a private room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub enum InvitePolicy {
    /// Only those holding `room.settings` (the default).
    #[default]
    RoomSettings,
    /// Every member who may post.
    Members,
}

/// Named permissions, as a bit set.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct Permissions(pub u32);

impl Permissions {
    /// Post messages, react, edit one's own messages.
    pub const MESSAGE_SEND: Permissions = Permissions(1 << 0);
    /// Redact anyone's message.
    pub const MESSAGE_DELETE: Permissions = Permissions(1 << 1);
    /// Pin and unpin messages.
    pub const MESSAGE_PIN: Permissions = Permissions(1 << 2);
    /// Mute and unmute users.
    pub const USER_MUTE: Permissions = Permissions(1 << 3);
    /// Kick users.
    pub const USER_KICK: Permissions = Permissions(1 << 4);
    /// Ban and unban users.
    pub const USER_BAN: Permissions = Permissions(1 << 5);
    /// Change name, topic, visibility; archive; invite to private rooms.
    pub const ROOM_SETTINGS: Permissions = Permissions(1 << 6);
    /// Define, grant and revoke roles (never beyond what one holds).
    pub const ROLE_MANAGE: Permissions = Permissions(1 << 7);
    /// No permission.
    pub const NONE: Permissions = Permissions(0);
    /// Every permission this version knows.
    pub const ALL: Permissions = Permissions((1 << 8) - 1);

    /// The permissions' names, as used by the CLI and the web UI.
    pub const NAMES: [(&'static str, Permissions); 8] = [
        ("message.send", Self::MESSAGE_SEND),
        ("message.delete", Self::MESSAGE_DELETE),
        ("message.pin", Self::MESSAGE_PIN),
        ("user.mute", Self::USER_MUTE),
        ("user.kick", Self::USER_KICK),
        ("user.ban", Self::USER_BAN),
        ("room.settings", Self::ROOM_SETTINGS),
        ("role.manage", Self::ROLE_MANAGE),
    ];

    /// True if every permission in `other` is in `self`.
    pub fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    pub fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// Parses a permission name such as `message.pin`.
    pub fn from_name(name: &str) -> Option<Permissions> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    }

    /// The names of the permissions in the set, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(_, p)| self.contains(*p))
            .map(|(n, _)| *n)
            .collect()
    }
}

impl std::fmt::Debug for Permissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Permissions({})", self.names().join(","))
    }
}

/// The creation of a room. Its event id becomes the room id.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct CreateRoom {
    /// The room format ([`ROOM_VERSION`]).
    pub version: u16,
    /// A two-person private room shown as a direct conversation.
    pub direct: bool,
    /// Initial settings.
    pub settings: Vec<Setting>,
}

impl CreateRoom {
    /// A room of this version with a name and a visibility.
    pub fn named(name: &str, visibility: Visibility, direct: bool) -> CreateRoom {
        CreateRoom {
            version: ROOM_VERSION,
            direct,
            settings: vec![
                Setting::Name(name.to_string()),
                Setting::Visibility(visibility),
            ],
        }
    }
}

/// What an event does: its kind tag and the fields the auth rules need.
///
/// `cutoff` on a sanction is the target's origin sequence known to the
/// issuer: every event of the target with a higher `origin_seq` is judged
/// under the sanction, wherever it sorts.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum EventKind {
    /// Creates a room; the author is its owner.
    Create(CreateRoom),
    /// Changes room settings.
    Settings(Vec<Setting>),
    /// Invites a user.
    Invite {
        /// The invited user.
        target: UserId,
    },
    /// The author joins.
    Join,
    /// The author leaves.
    Leave,
    /// Removes a member, who may rejoin (if the room lets them).
    Kick {
        /// The removed user.
        target: UserId,
        /// The target's origin sequence known to the issuer.
        cutoff: u64,
    },
    /// Removes a member and keeps them out.
    Ban {
        /// The banned user.
        target: UserId,
        /// The target's origin sequence known to the issuer.
        cutoff: u64,
    },
    /// Lifts a ban.
    Unban {
        /// The user let back.
        target: UserId,
    },
    /// A message ([`MessageContent`]).
    Message,
    /// Replaces the body of the author's own message ([`EditContent`]).
    Edit {
        /// The message edited.
        target: EventId,
    },
    /// Deletes a message: its content is dropped everywhere; the reason is kept.
    Redact {
        /// The message deleted.
        target: EventId,
    },
    /// Adds the author's reaction.
    React {
        /// The message reacted to.
        target: EventId,
        /// The emoji.
        emoji: String,
    },
    /// Removes the author's reaction.
    Unreact {
        /// The message.
        target: EventId,
        /// The emoji.
        emoji: String,
    },
    /// Pins a message.
    Pin {
        /// The message.
        target: EventId,
    },
    /// Unpins a message.
    Unpin {
        /// The message.
        target: EventId,
    },
    /// Defines (or redefines) a role with a permission set.
    RoleDefine {
        /// The role's name.
        role: String,
        /// What it allows.
        permissions: Permissions,
    },
    /// Gives a user a role.
    RoleGrant {
        /// The user.
        target: UserId,
        /// The role.
        role: String,
    },
    /// Takes a role from a user.
    RoleRevoke {
        /// The user.
        target: UserId,
        /// The role.
        role: String,
        /// The target's origin sequence known to the issuer.
        cutoff: u64,
    },
    /// Mutes a user until a time.
    Mute {
        /// The user.
        target: UserId,
        /// The target's origin sequence known to the issuer.
        cutoff: u64,
        /// End of the mute, ms since the Unix epoch, judged against each
        /// event's own `ts`.
        until: u64,
    },
    /// Ends a mute early.
    Unmute {
        /// The user.
        target: UserId,
    },
    /// Makes the room read-only.
    Archive,
}

/// The content class an event kind carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentClass {
    /// No content: the content bytes are empty.
    Empty,
    /// [`MessageContent`].
    Message,
    /// [`EditContent`].
    Edit,
    /// [`ReasonContent`].
    Reason,
}

impl EventKind {
    /// The kind's name, for logs and views.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Create(_) => "create",
            EventKind::Settings(_) => "settings",
            EventKind::Invite { .. } => "invite",
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::Kick { .. } => "kick",
            EventKind::Ban { .. } => "ban",
            EventKind::Unban { .. } => "unban",
            EventKind::Message => "message",
            EventKind::Edit { .. } => "edit",
            EventKind::Redact { .. } => "redact",
            EventKind::React { .. } => "react",
            EventKind::Unreact { .. } => "unreact",
            EventKind::Pin { .. } => "pin",
            EventKind::Unpin { .. } => "unpin",
            EventKind::RoleDefine { .. } => "role.define",
            EventKind::RoleGrant { .. } => "role.grant",
            EventKind::RoleRevoke { .. } => "role.revoke",
            EventKind::Mute { .. } => "mute",
            EventKind::Unmute { .. } => "unmute",
            EventKind::Archive => "archive",
        }
    }

    /// What content this kind carries.
    pub fn content_class(&self) -> ContentClass {
        match self {
            EventKind::Message => ContentClass::Message,
            EventKind::Edit { .. } => ContentClass::Edit,
            EventKind::Invite { .. }
            | EventKind::Kick { .. }
            | EventKind::Ban { .. }
            | EventKind::Unban { .. }
            | EventKind::Redact { .. }
            | EventKind::RoleRevoke { .. }
            | EventKind::Mute { .. }
            | EventKind::Unmute { .. } => ContentClass::Reason,
            _ => ContentClass::Empty,
        }
    }

    fn validate(&self) -> Result<()> {
        match self {
            EventKind::Create(c) => {
                if !(OLDEST_ROOM_VERSION..=ROOM_VERSION).contains(&c.version) {
                    return Err(Error::invalid(
                        "create",
                        format!(
                            "room version {} (supported: {OLDEST_ROOM_VERSION} to {ROOM_VERSION})",
                            c.version
                        ),
                    ));
                }
                if c.version < 2 && c.settings.iter().any(|s| matches!(s, Setting::Invites(_))) {
                    return Err(Error::invalid(
                        "create",
                        "room version 1 has no invite setting",
                    ));
                }
                validate_settings(&c.settings, true)
            }
            EventKind::Settings(s) => validate_settings(s, false),
            EventKind::React { emoji, .. } | EventKind::Unreact { emoji, .. } => {
                validate_emoji(emoji)
            }
            EventKind::RoleDefine { role, .. }
            | EventKind::RoleGrant { role, .. }
            | EventKind::RoleRevoke { role, .. } => validate_role_name(role),
            _ => Ok(()),
        }
    }
}

fn validate_settings(settings: &[Setting], create: bool) -> Result<()> {
    if settings.len() > MAX_SETTINGS {
        return Err(Error::invalid("settings", "too many settings in one event"));
    }
    if settings.is_empty() && !create {
        return Err(Error::invalid("settings", "no setting changed"));
    }
    for s in settings {
        match s {
            Setting::Name(n) => {
                check_text("room name", n, MAX_ROOM_NAME_LEN)?;
                if n.trim().is_empty() {
                    return Err(Error::invalid("room name", "must not be blank"));
                }
            }
            Setting::Topic(t) => check_text("topic", t, MAX_TOPIC_LEN)?,
            Setting::Visibility(_) | Setting::Invites(_) => {}
        }
    }
    Ok(())
}

fn check_text(what: &'static str, s: &str, max: usize) -> Result<()> {
    if s.len() > max {
        return Err(Error::invalid(
            what,
            format!("{} bytes, at most {max} allowed", s.len()),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid(what, "contains control characters"));
    }
    Ok(())
}

/// Checks a reaction emoji: 1 to [`MAX_EMOJI_LEN`] bytes, no spaces or control characters.
pub fn validate_emoji(emoji: &str) -> Result<()> {
    if emoji.is_empty() || emoji.len() > MAX_EMOJI_LEN {
        return Err(Error::invalid("emoji", "must be 1 to 32 bytes"));
    }
    if emoji.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            "emoji",
            "must not hold spaces or control characters",
        ));
    }
    Ok(())
}

/// Checks a role name: 1 to 32 of `a-z 0-9 _ -`.
pub fn validate_role_name(role: &str) -> Result<()> {
    if role.is_empty()
        || role.len() > MAX_ROLE_NAME_LEN
        || !role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(Error::invalid(
            "role name",
            "must be 1 to 32 characters of a-z, 0-9, '_' and '-'",
        ));
    }
    Ok(())
}

/// What the origin signs.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct EventHeader {
    /// The room; `None` only on a create event, whose id becomes the room's.
    pub room: Option<RoomId>,
    /// The author; their node is the origin and signer.
    pub author: UserId,
    /// The kind and its essential fields.
    pub kind: EventKind,
    /// The room's heads at the origin when it wrote this event, ascending and unique.
    pub prev: Vec<EventId>,
    /// 1 + the greatest depth among `prev` (0 for a create event).
    pub depth: u64,
    /// This event's place in its origin's chain in this room, from 1.
    pub origin_seq: u64,
    /// The origin's previous event in this room (`None` iff `origin_seq` is 1).
    pub origin_prev: Option<EventId>,
    /// Milliseconds since the Unix epoch, by the origin's clock.
    pub ts: u64,
    /// Hash of the content.
    pub content_hash: ContentHash,
}

impl EventHeader {
    /// The header of a room's create event: no parents, depth 0, the first
    /// event of its origin's chain. Sign it with empty content.
    pub fn create(author: UserId, create: CreateRoom, ts: u64) -> EventHeader {
        EventHeader {
            room: None,
            author,
            kind: EventKind::Create(create),
            prev: Vec::new(),
            depth: 0,
            origin_seq: 1,
            origin_prev: None,
            ts,
            content_hash: ContentHash([0; 32]),
        }
    }

    /// Checks the rules that need no room state: shape, limits, chain fields.
    pub fn validate(&self) -> Result<()> {
        let is_create = matches!(self.kind, EventKind::Create(_));
        match (is_create, self.room.is_some()) {
            (true, true) => return Err(Error::invalid("header", "a create event names no room")),
            (false, false) => return Err(Error::invalid("header", "event names no room")),
            _ => {}
        }
        if is_create {
            if !self.prev.is_empty() || self.depth != 0 {
                return Err(Error::invalid(
                    "header",
                    "a create event has no parents and depth 0",
                ));
            }
            if self.origin_seq != 1 {
                return Err(Error::invalid(
                    "header",
                    "a create event starts its origin chain",
                ));
            }
        } else {
            if self.prev.is_empty() || self.prev.len() > MAX_PREV {
                return Err(Error::invalid("prev", "must name 1 to 20 parents"));
            }
            if !self.prev.windows(2).all(|w| w[0] < w[1]) {
                return Err(Error::invalid("prev", "must be ascending and unique"));
            }
            if self.depth == 0 {
                return Err(Error::invalid("header", "only a create event has depth 0"));
            }
        }
        if self.origin_seq == 0 {
            return Err(Error::invalid("origin_seq", "starts at 1"));
        }
        if (self.origin_seq == 1) != self.origin_prev.is_none() {
            return Err(Error::invalid(
                "origin_prev",
                "must be set exactly when origin_seq is above 1",
            ));
        }
        if self.depth >= 1 << 53 || self.origin_seq >= 1 << 53 {
            return Err(Error::invalid("header", "depth or origin_seq out of range"));
        }
        self.kind.validate()
    }

    /// The room this event belongs to, given its own id (a create event's
    /// room is itself).
    pub fn room_id(&self, own_id: &EventId) -> RoomId {
        self.room.unwrap_or(RoomId::from(*own_id))
    }
}

/// A file attached to a message: a content-addressed blob.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Attachment {
    /// The blob's id (hash of its bytes).
    pub blob: BlobId,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type, as sniffed by the uploading node.
    pub mime: String,
    /// The file name the uploader gave.
    pub name: String,
    /// Width and height of an image, when known.
    pub dimensions: Option<(u32, u32)>,
}

/// What a message says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct MessageContent {
    /// Markdown source.
    pub body: String,
    /// The message this one replies to (quote).
    pub reply_to: Option<EventId>,
    /// The root of the thread this message belongs to.
    pub thread: Option<EventId>,
    /// Users named in the body.
    pub mentions: Vec<UserId>,
    /// Attached files.
    pub attachments: Vec<Attachment>,
}

/// An edit's replacement body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct EditContent {
    /// The new markdown source.
    pub body: String,
    /// Users named in the new body.
    pub mentions: Vec<UserId>,
}

/// A reason, kept for audit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct ReasonContent {
    /// Free text, possibly empty.
    pub reason: String,
}

/// A hash of a message's author and of the idempotency key its client sent
/// it with, carried in the message (rules version 3 on), so that a node
/// restored or rebuilt from its peers learns from the events themselves
/// which sends it has already posted. The key itself stays on its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct IdempotencyHash(pub [u8; 16]);

/// Domain separation of [`IdempotencyHash::of`].
const IDEMPOTENCY_TAG: &[u8] = b"confab/v1 idempotency\0";

impl IdempotencyHash {
    /// The hash of `author`'s send with idempotency key `key`.
    pub fn of(author: &UserId, key: &str) -> IdempotencyHash {
        use sha2::{Digest, Sha256};
        let local = author.localpart().as_bytes();
        let digest = Sha256::new()
            .chain_update(IDEMPOTENCY_TAG)
            .chain_update(author.node().as_bytes())
            .chain_update((local.len() as u64).to_be_bytes())
            .chain_update(local)
            .chain_update(key.as_bytes())
            .finalize();
        let mut h = [0u8; 16];
        h.copy_from_slice(&digest[..16]);
        IdempotencyHash(h)
    }
}

/// An event's content, typed by its kind's [`ContentClass`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// No content.
    Empty,
    /// A message.
    Message(MessageContent),
    /// An edit.
    Edit(EditContent),
    /// A reason.
    Reason(ReasonContent),
}

impl Content {
    /// The class of this content.
    pub fn class(&self) -> ContentClass {
        match self {
            Content::Empty => ContentClass::Empty,
            Content::Message(_) => ContentClass::Message,
            Content::Edit(_) => ContentClass::Edit,
            Content::Reason(_) => ContentClass::Reason,
        }
    }

    /// The canonical bytes of this content.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.to_bytes_with(None)
    }

    /// The canonical bytes of this content; a message's end with
    /// `idempotency` when it has one (its other bytes are unchanged).
    pub fn to_bytes_with(&self, idempotency: Option<&IdempotencyHash>) -> Result<Vec<u8>> {
        let mut bytes = match self {
            Content::Empty => Vec::new(),
            Content::Message(m) => codec::to_vec("message content", m)?,
            Content::Edit(e) => codec::to_vec("edit content", e)?,
            Content::Reason(r) => codec::to_vec("reason content", r)?,
        };
        if let Some(h) = idempotency {
            if !matches!(self, Content::Message(_)) {
                return Err(Error::invalid(
                    "content",
                    "only a message carries an idempotency hash",
                ));
            }
            bytes.extend_from_slice(&h.0);
        }
        Ok(bytes)
    }

    /// Decodes and checks content bytes for an event of `kind`.
    pub fn decode_for(kind: &EventKind, bytes: &[u8]) -> Result<Content> {
        Ok(Self::decode_with_idempotency(kind, bytes)?.0)
    }

    /// Decodes and checks content bytes for an event of `kind`, with the
    /// idempotency hash a message may end with.
    pub fn decode_with_idempotency(
        kind: &EventKind,
        bytes: &[u8],
    ) -> Result<(Content, Option<IdempotencyHash>)> {
        if bytes.len() > MAX_CONTENT_LEN {
            return Err(Error::invalid("content", "too large"));
        }
        let mut idempotency = None;
        let content = match kind.content_class() {
            ContentClass::Empty => {
                if !bytes.is_empty() {
                    return Err(Error::invalid("content", "this kind carries no content"));
                }
                Content::Empty
            }
            ContentClass::Message => {
                let (m, used) = codec::from_prefix("message content", bytes)?;
                let rest = &bytes[used..];
                if !rest.is_empty() {
                    let h = <[u8; 16]>::try_from(rest).map_err(|_| Error::TrailingBytes {
                        what: "message content",
                        extra: rest.len(),
                    })?;
                    idempotency = Some(IdempotencyHash(h));
                }
                Content::Message(m)
            }
            ContentClass::Edit => Content::Edit(codec::from_slice("edit content", bytes)?),
            ContentClass::Reason => Content::Reason(codec::from_slice("reason content", bytes)?),
        };
        content.validate()?;
        Ok((content, idempotency))
    }

    /// Checks limits.
    pub fn validate(&self) -> Result<()> {
        match self {
            Content::Empty => Ok(()),
            Content::Message(m) => {
                check_body(&m.body, &m.mentions)?;
                if m.body.trim().is_empty() && m.attachments.is_empty() {
                    return Err(Error::invalid("message", "empty body and no attachment"));
                }
                if m.attachments.len() > MAX_ATTACHMENTS {
                    return Err(Error::invalid("attachments", "at most 10 per message"));
                }
                for a in &m.attachments {
                    check_text("media type", &a.mime, MAX_MIME_LEN)?;
                    check_text("file name", &a.name, MAX_FILE_NAME_LEN)?;
                }
                Ok(())
            }
            Content::Edit(e) => {
                check_body(&e.body, &e.mentions)?;
                if e.body.trim().is_empty() {
                    return Err(Error::invalid("edit", "empty body"));
                }
                Ok(())
            }
            Content::Reason(r) => check_text("reason", &r.reason, MAX_REASON_LEN),
        }
    }
}

fn check_body(body: &str, mentions: &[UserId]) -> Result<()> {
    if body.len() > MAX_BODY_LEN {
        return Err(Error::invalid(
            "message body",
            format!("{} bytes, at most {MAX_BODY_LEN} allowed", body.len()),
        ));
    }
    if body.contains('\0') {
        return Err(Error::invalid("message body", "contains a NUL character"));
    }
    if mentions.len() > MAX_MENTIONS {
        return Err(Error::invalid("mentions", "at most 64 per message"));
    }
    Ok(())
}
