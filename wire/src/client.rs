//! The client protocol between a gateway and its node (QUIC, ALPN
//! [`CLIENT_ALPN`]).
//!
//! A gateway is authenticated by its TLS key, pinned in the node's config.
//! It opens with [`ClientHello`]; the node answers [`NodeWelcome`] (or a
//! [`Reply`] error and a close when no version is shared). One connection
//! multiplexes many browser sessions: every [`ClientRequest`] names its
//! browser session and carries the user's [`AccessToken`], and gets exactly
//! one [`Reply`] with the same id. The node sends [`Push`]es for the rooms a
//! gateway subscribed to, once per gateway; the gateway fans them out.
//!
//! A request whose envelope decodes but whose body does not (a newer
//! gateway's request) is answered with [`ErrorCode::UnknownRequest`]:
//! [`decode_client_frame`] reports its id in [`Error::BadRequestBody`].

use bincode::{Decode, Encode};

use crate::codec;
use crate::error::{Error, Result};
use crate::event::{
    Attachment, EditContent, InvitePolicy, MessageContent, Permissions, Setting, Visibility,
};
use crate::fed::{Ephemeral, Presence, TraceId};
use crate::frame::{Frame, protocol_messages};
use crate::ids::{BlobId, EventId, NodeId, PublicKey, RoomId, UserId};
use crate::sign::{ACCESS_TOKEN_TAG, NodeKey, SIGNATURE_LEN, SignedEvent, verify_tagged};

/// ALPN of the client protocol.
pub const CLIENT_ALPN: &[u8] = b"confab-client/1";
/// The client protocol version this crate speaks. Version 2: presence
/// names its audience ([`Push::Presence`]) and sign-ins carry the
/// browser's address.
pub const CLIENT_PROTOCOL_VERSION: u16 = 2;
/// Most items in one page of history, search results or lists.
pub const MAX_PAGE: u16 = 200;
/// Most bytes in one upload or download chunk.
pub const MAX_CLIENT_CHUNK: usize = 256 * 1024;

/// A browser session on a gateway (for routing replies and pushes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct SessionId(pub u64);

/// What an access token asserts.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TokenClaims {
    /// The user.
    pub user: UserId,
    /// The refresh-token family (one login) it belongs to.
    pub family: u64,
    /// Issue time, ms since the Unix epoch.
    pub issued: u64,
    /// Expiry, ms since the Unix epoch.
    pub expires: u64,
}

/// A short-lived token signed by the node; gateways check it without a
/// round trip.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AccessToken {
    /// The claims, encoded canonically.
    pub claims: TokenClaims,
    /// The node's signature over `ACCESS_TOKEN_TAG || encode(claims)`.
    pub signature: [u8; SIGNATURE_LEN],
}

impl AccessToken {
    /// Issues a token (node side).
    pub fn issue(key: &NodeKey, claims: TokenClaims) -> Result<AccessToken> {
        let bytes = codec::to_vec("token claims", &claims)?;
        Ok(AccessToken {
            signature: key.sign_tagged(ACCESS_TOKEN_TAG, &bytes),
            claims,
        })
    }

    /// Checks the signature, the issuer and the expiry.
    pub fn check(&self, node: &PublicKey, now_ms: u64) -> Result<&TokenClaims> {
        if self.claims.user.node() != node {
            return Err(Error::WrongSigner);
        }
        let bytes = codec::to_vec("token claims", &self.claims)?;
        verify_tagged(node, ACCESS_TOKEN_TAG, &bytes, &self.signature)?;
        if now_ms >= self.claims.expires {
            return Err(Error::invalid("access token", "expired"));
        }
        Ok(&self.claims)
    }

    /// The token as URL-safe text (what browsers hold).
    pub fn to_text(&self) -> Result<String> {
        Ok(hex_encode(&codec::to_vec("access token", self)?))
    }

    /// Parses [`AccessToken::to_text`] output.
    pub fn from_text(text: &str) -> Result<AccessToken> {
        if text.len() > 2048 {
            return Err(Error::invalid("access token", "too long"));
        }
        let bytes = hex_decode(text).ok_or_else(|| Error::invalid("access token", "not hex"))?;
        codec::from_slice("access token", &bytes)
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// The gateway's opening message.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ClientHello {
    /// Oldest version spoken.
    pub version_min: u16,
    /// Newest version spoken.
    pub version_max: u16,
    /// The gateway's name, for logs.
    pub name: String,
}

/// The node's answer to [`ClientHello`].
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct NodeWelcome {
    /// The agreed version.
    pub version: u16,
    /// The node's id (also the key that signs access tokens).
    pub node: NodeId,
    /// The node's name.
    pub name: String,
    /// Settings browsers are told about.
    pub settings: NodeSettings,
}

/// Who may create an account on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Registration {
    /// Anyone who reaches a gateway.
    Open,
    /// Holders of an invite code from an admin.
    Invite,
    /// No one; admins create accounts.
    Closed,
}

impl Registration {
    /// The lowercase name (`open`, `invite`, `closed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Open => "open",
            Registration::Invite => "invite",
            Registration::Closed => "closed",
        }
    }
}

/// A node's settings that gateways pass on to browsers; they change at run
/// time ([`Push::Settings`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct NodeSettings {
    /// Who may register.
    pub registration: Registration,
    /// Largest upload, in bytes.
    pub max_upload_bytes: u64,
}

/// Where a page of history starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Anchor {
    /// The newest page.
    Latest,
    /// Items before this event (older).
    Before(EventId),
    /// Items after this event (newer).
    After(EventId),
    /// A page holding this event (if shown) with up to half the limit
    /// before it and the rest after: a search hit or a pin in context.
    Around(EventId),
}

/// A moderation action, which the node turns into a signed room event.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Moderation {
    /// Mute until a time (ms since epoch).
    Mute {
        /// The user.
        target: UserId,
        /// End of the mute.
        until: u64,
        /// Why.
        reason: String,
    },
    /// Lift a mute.
    Unmute {
        /// The user.
        target: UserId,
    },
    /// Remove from the room.
    Kick {
        /// The user.
        target: UserId,
        /// Why.
        reason: String,
    },
    /// Remove and keep out.
    Ban {
        /// The user.
        target: UserId,
        /// Why.
        reason: String,
    },
    /// Lift a ban.
    Unban {
        /// The user.
        target: UserId,
    },
    /// Define a role.
    DefineRole {
        /// Name.
        role: String,
        /// Permissions.
        permissions: Permissions,
    },
    /// Grant a role.
    GrantRole {
        /// The user.
        target: UserId,
        /// The role.
        role: String,
    },
    /// Revoke a role.
    RevokeRole {
        /// The user.
        target: UserId,
        /// The role.
        role: String,
    },
}

/// A request from a browser session, relayed by the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Request {
    /// Create an account.
    Register {
        /// Localpart.
        username: String,
        /// Password.
        password: String,
        /// Invite code, when registration needs one.
        invite_code: Option<String>,
        /// The browser's address as the gateway sees it (behind trusted
        /// proxies, the one they name), for the node's sign-in bounds.
        address: Option<std::net::IpAddr>,
    },
    /// Log in.
    Login {
        /// Localpart.
        username: String,
        /// Password.
        password: String,
        /// The browser's address (see `Register`).
        address: Option<std::net::IpAddr>,
    },
    /// Trade a refresh token for a new pair (rotation).
    Refresh {
        /// The refresh token.
        refresh_token: String,
    },
    /// End this login.
    Logout {
        /// The login's refresh token.
        refresh_token: String,
    },
    /// End every login of the user.
    LogoutAll,
    /// A user's profile.
    GetProfile {
        /// The user.
        user: UserId,
    },
    /// Change one's profile (`None` leaves a field as it is).
    SetProfile {
        /// Display name.
        display_name: Option<String>,
        /// Avatar blob (`Some(None)` removes it).
        avatar: Option<Option<BlobId>>,
        /// Status text.
        status: Option<String>,
    },
    /// Find users of this and known nodes.
    SearchUsers {
        /// Text to match.
        query: String,
        /// Most results.
        limit: u16,
    },
    /// The user's rooms with unread counts.
    ListRooms,
    /// Create a room (or a DM with `direct_with`).
    CreateRoom {
        /// Initial settings.
        settings: Vec<Setting>,
        /// The other person of a direct conversation.
        direct_with: Option<UserId>,
        /// Users to invite at once.
        invite: Vec<UserId>,
    },
    /// Browse the directory of public rooms.
    PublicRooms {
        /// Text to match.
        query: String,
        /// Most results.
        limit: u16,
    },
    /// Join a room.
    JoinRoom {
        /// The room.
        room: RoomId,
    },
    /// Leave a room.
    LeaveRoom {
        /// The room.
        room: RoomId,
    },
    /// Invite a user.
    Invite {
        /// The room.
        room: RoomId,
        /// The user.
        user: UserId,
    },
    /// Change settings.
    ChangeSettings {
        /// The room.
        room: RoomId,
        /// The changes.
        settings: Vec<Setting>,
    },
    /// Archive (read-only).
    ArchiveRoom {
        /// The room.
        room: RoomId,
    },
    /// Members, roles, pins and settings.
    RoomInfo {
        /// The room.
        room: RoomId,
    },
    /// A page of the timeline.
    History {
        /// The room.
        room: RoomId,
        /// Where.
        anchor: Anchor,
        /// How many.
        limit: u16,
    },
    /// A page of a thread.
    Thread {
        /// The room.
        room: RoomId,
        /// The thread's root message.
        root: EventId,
        /// Where.
        anchor: Anchor,
        /// How many.
        limit: u16,
    },
    /// Post a message; a repeated idempotency key returns the first result.
    Send {
        /// The room.
        room: RoomId,
        /// Client-chosen key, unique per user.
        idempotency_key: String,
        /// The message.
        content: MessageContent,
    },
    /// Edit one's message.
    Edit {
        /// The room.
        room: RoomId,
        /// The message.
        target: EventId,
        /// The new body.
        content: EditContent,
    },
    /// Delete a message.
    Redact {
        /// The room.
        room: RoomId,
        /// The message.
        target: EventId,
        /// Why (kept for audit).
        reason: String,
    },
    /// Add a reaction.
    React {
        /// The room.
        room: RoomId,
        /// The message.
        target: EventId,
        /// The emoji.
        emoji: String,
    },
    /// Remove a reaction.
    Unreact {
        /// The room.
        room: RoomId,
        /// The message.
        target: EventId,
        /// The emoji.
        emoji: String,
    },
    /// Pin a message.
    Pin {
        /// The room.
        room: RoomId,
        /// The message.
        target: EventId,
    },
    /// Unpin a message.
    Unpin {
        /// The room.
        room: RoomId,
        /// The message.
        target: EventId,
    },
    /// A moderation action.
    Moderate {
        /// The room.
        room: RoomId,
        /// The action.
        action: Moderation,
    },
    /// Move the user's read position.
    MarkRead {
        /// The room.
        room: RoomId,
        /// The newest event read.
        event: EventId,
    },
    /// Full-text search in one room or all of the user's rooms.
    Search {
        /// The room, or all.
        room: Option<RoomId>,
        /// The words.
        query: String,
        /// Most results.
        limit: u16,
        /// Continue after this hit.
        before: Option<EventId>,
    },
    /// Messages that mention the user, newest first.
    Mentions {
        /// Continue after this one.
        before: Option<EventId>,
        /// Most results.
        limit: u16,
    },
    /// Start receiving a room's events, resuming after `after`.
    Subscribe {
        /// The room.
        room: RoomId,
        /// The last event the session has.
        after: Option<EventId>,
    },
    /// Stop receiving a room's events.
    Unsubscribe {
        /// The room.
        room: RoomId,
    },
    /// Typing started or stopped.
    Typing {
        /// The room.
        room: RoomId,
        /// Started?
        active: bool,
    },
    /// Set presence.
    SetPresence {
        /// The state.
        state: Presence,
    },
    /// Begin an upload.
    UploadStart {
        /// Declared size.
        size: u64,
        /// File name.
        name: String,
    },
    /// A piece of an upload.
    UploadChunk {
        /// From `UploadStart`.
        upload: u64,
        /// Offset.
        offset: u64,
        /// Bytes.
        data: Vec<u8>,
    },
    /// Finish an upload: the node sniffs the type and stores the blob.
    UploadFinish {
        /// From `UploadStart`.
        upload: u64,
    },
    /// Read a blob (fetched from peers if needed).
    FetchBlob {
        /// The blob.
        blob: BlobId,
        /// From.
        offset: u64,
        /// Most bytes.
        max: u32,
    },
    /// Report a message to the node's admins.
    Report {
        /// The room.
        room: RoomId,
        /// The message.
        event: EventId,
        /// Why.
        reason: String,
    },
    /// Block or unblock a user.
    Block {
        /// The user.
        user: UserId,
        /// Block (true) or unblock.
        blocked: bool,
    },
    /// The browser session ended (its socket closed): its subscriptions
    /// end, and its user may be offline now. Needs no token.
    EndSession,
    /// Earlier versions of a message: its author's, or anyone's for a
    /// member with `message.delete` (moderators).
    EditHistory {
        /// The room.
        room: RoomId,
        /// The message.
        target: EventId,
    },
    /// Notes for the user that only they see (the welcome bot's).
    Notices,
    /// Dismiss a note.
    DismissNotice {
        /// The note.
        notice: u64,
    },
}

/// A request with its routing envelope.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ClientRequest {
    /// Chosen by the gateway, echoed in the reply.
    pub id: u64,
    /// The browser session.
    pub session: SessionId,
    /// Trace id for logs.
    pub trace: TraceId,
    /// The user's token (none for register, login, refresh).
    pub auth: Option<AccessToken>,
    /// The request.
    pub body: Request,
}

/// Error codes a request can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum ErrorCode {
    /// The request was malformed or a value invalid.
    BadRequest,
    /// A newer request this node does not know.
    UnknownRequest,
    /// No or bad access token.
    Unauthenticated,
    /// The token expired: refresh.
    TokenExpired,
    /// The user may not do this.
    Forbidden,
    /// No such room, event, user or blob.
    NotFound,
    /// Already exists (user name taken, …).
    Conflict,
    /// Too many requests; retry later.
    RateLimited,
    /// The user is muted in the room (message says until when).
    Muted,
    /// The room is archived.
    Archived,
    /// Too large (upload, message).
    TooLarge,
    /// Type not allowed (upload).
    UnsupportedType,
    /// Registration is closed or needs an invite code.
    RegistrationClosed,
    /// The account is disabled.
    Disabled,
    /// A peer node is unreachable.
    Unavailable,
    /// Something failed on the node.
    Internal,
}

/// A failed request.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ClientError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
    /// [`ErrorCode::Muted`]: when the mute ends (ms since epoch).
    pub until: Option<u64>,
    /// [`ErrorCode::RateLimited`]: how long until a retry would be taken.
    pub retry_after_ms: Option<u64>,
}

impl ClientError {
    /// An error with a code and a message for people.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ClientError {
        ClientError {
            code,
            message: message.into(),
            until: None,
            retry_after_ms: None,
        }
    }
}

/// Tokens handed out at login, register and refresh.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SessionGrant {
    /// The user.
    pub user: UserId,
    /// Short-lived access token.
    pub access_token: AccessToken,
    /// Long-lived refresh token (random; stored hashed on the node).
    pub refresh_token: String,
    /// Refresh token expiry, ms since epoch.
    pub refresh_expires: u64,
}

/// A user's public profile.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Profile {
    /// The user.
    pub user: UserId,
    /// Display name.
    pub display_name: String,
    /// Avatar.
    pub avatar: Option<BlobId>,
    /// Status text.
    pub status: String,
    /// Presence, if known.
    pub presence: Option<Presence>,
    /// Last activity, ms since epoch, if known.
    pub last_active: Option<u64>,
}

/// A room as listed.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct RoomSummary {
    /// The room.
    pub room: RoomId,
    /// Name.
    pub name: String,
    /// Topic.
    pub topic: String,
    /// Visibility.
    pub visibility: Visibility,
    /// A direct conversation with this user.
    pub direct_with: Option<UserId>,
    /// Members.
    pub members: u32,
    /// Unread messages for the asking user.
    pub unread: u32,
    /// Unread mentions of the asking user.
    pub mentions: u32,
    /// Archived.
    pub archived: bool,
    /// The asking user is invited, not joined.
    pub invited: bool,
    /// Newest event.
    pub last_event: Option<EventId>,
    /// Time of newest activity.
    pub last_ts: u64,
    /// The asking user is no longer in the room (left, kicked, banned,
    /// declined); only in [`Push::RoomUpdate`].
    pub left: bool,
}

/// A member of a room.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct MemberInfo {
    /// The user.
    pub user: UserId,
    /// Roles held.
    pub roles: Vec<String>,
    /// Muted until (ms since epoch).
    pub muted_until: Option<u64>,
    /// The member's read position, when known.
    pub read_up_to: Option<EventId>,
    /// The newest event the member's node is known to hold (direct rooms).
    pub delivered_up_to: Option<EventId>,
}

/// A room's details.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct RoomDetail {
    /// Summary.
    pub summary: RoomSummary,
    /// Members.
    pub members: Vec<MemberInfo>,
    /// Defined roles.
    pub roles: Vec<(String, Permissions)>,
    /// Pinned messages.
    pub pins: Vec<EventId>,
    /// The asking user's permissions.
    pub my_permissions: Permissions,
    /// The room's digest.
    pub digest: [u8; 32],
    /// The rules version the room is judged by.
    pub rules_version: u16,
    /// Who may invite while the room is private.
    pub invites: InvitePolicy,
}

/// Aggregated reactions to a message.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ReactionCount {
    /// The emoji.
    pub emoji: String,
    /// Who reacted (count = len).
    pub users: Vec<UserId>,
}

/// A timeline item with what the node knows about it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TimelineItem {
    /// The event, as verified (content absent if redacted).
    pub event: SignedEvent,
    /// Rejected by the room's rules (kept for convergence, not shown).
    pub rejected: bool,
    /// The latest edit's body, if edited.
    pub edited_body: Option<String>,
    /// Redaction reason, if deleted.
    pub redacted: Option<String>,
    /// Reactions.
    pub reactions: Vec<ReactionCount>,
    /// For a thread root: reply count and time of the last reply.
    pub thread: Option<(u32, u64)>,
}

/// A page of items, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Page {
    /// The items.
    pub items: Vec<TimelineItem>,
    /// More exist before the first item.
    pub more_before: bool,
    /// More exist after the last item.
    pub more_after: bool,
}

/// A successful reply.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Response {
    /// Done; nothing to return.
    Done,
    /// Tokens.
    Session(SessionGrant),
    /// A profile.
    Profile(Profile),
    /// Users found.
    Users(Vec<Profile>),
    /// Rooms.
    Rooms(Vec<RoomSummary>),
    /// A room's details.
    Room(RoomDetail),
    /// A page of events.
    Page(Page),
    /// An event was created (or an idempotent resend found it).
    Event {
        /// Its id.
        id: EventId,
        /// It existed already (idempotent resend).
        duplicate: bool,
    },
    /// An upload was started.
    Upload {
        /// Its id.
        upload: u64,
    },
    /// An upload finished.
    Attachment(Attachment),
    /// Versions of a message, oldest (the original) first.
    Edits(Vec<MessageVersion>),
    /// The user's notes.
    Notices(Vec<Notice>),
    /// Bytes of a blob.
    Blob {
        /// Offset.
        offset: u64,
        /// Size of the whole blob.
        total: u64,
        /// Media type.
        mime: String,
        /// Bytes.
        data: Vec<u8>,
    },
}

/// One version of a message's text.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct MessageVersion {
    /// The event that set it (the message itself, then its edits).
    pub event: EventId,
    /// Who wrote it.
    pub sender: UserId,
    /// When (ms since epoch, the event's own time).
    pub ts: u64,
    /// The markdown body.
    pub body: String,
}

/// A note for one user that only they see, in a room: the welcome bot's
/// greeting and tour. Kept by the node, not in the room's events.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Notice {
    /// Its id (per node).
    pub id: u64,
    /// The room it belongs to.
    pub room: RoomId,
    /// Who it is from (a display name, e.g. "Confab").
    pub from: String,
    /// When (ms since epoch).
    pub ts: u64,
    /// The markdown body.
    pub body: String,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Reply {
    /// The request's id.
    pub id: u64,
    /// The session it came from.
    pub session: SessionId,
    /// Success or a typed error.
    pub result: std::result::Result<Response, ClientError>,
}

/// Something the node tells gateways without being asked.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Push {
    /// A new or updated timeline item in a subscribed room.
    RoomEvent {
        /// The room.
        room: RoomId,
        /// The item.
        item: TimelineItem,
        /// Trace id, when the event came from a traced request.
        trace: Option<TraceId>,
    },
    /// Typing, presence or a read position.
    Ephemeral(Ephemeral),
    /// A user's sessions were revoked (`family: None`: all of them).
    Revoked {
        /// The user.
        user: UserId,
        /// The login revoked.
        family: Option<u64>,
    },
    /// A room's summary changed for a user (unread counts, invites).
    RoomUpdate {
        /// The user it concerns.
        user: UserId,
        /// The new summary.
        summary: RoomSummary,
    },
    /// The node's settings changed.
    Settings(NodeSettings),
    /// A new note for a user (the welcome bot's).
    Notice {
        /// The user it is for.
        user: UserId,
        /// The note.
        notice: Notice,
    },
    /// A user dismissed a note (their other sockets hide it).
    NoticeDismissed {
        /// The user.
        user: UserId,
        /// The note's id.
        notice: u64,
    },
    /// A user's presence, for the users of this gateway who share a room
    /// (or a DM) with them: only their sockets may hear it.
    Presence {
        /// The signal (`Signal::Presence`).
        presence: Ephemeral,
        /// Who may hear it, at most [`MAX_AUDIENCE`].
        audience: Vec<UserId>,
    },
}

/// Most users named in one [`Push::Presence`]; a larger audience goes in
/// several pushes.
pub const MAX_AUDIENCE: usize = 1024;

protocol_messages! {
    /// A frame of the client protocol.
    ClientMessage, "client" {
        /// Gateway → node, first.
        Hello(ClientHello) = 0x41,
        /// Node → gateway, answer to hello.
        Welcome(NodeWelcome) = 0x42,
        /// Gateway → node.
        Request(ClientRequest) = 0x43,
        /// Node → gateway.
        Reply(Reply) = 0x44,
        /// Node → gateway.
        Push(Push) = 0x45,
        /// Either way; answered with `Pong`.
        Ping(u64) = 0x46,
        /// Answer to `Ping`.
        Pong(u64) = 0x47,
    }
}

impl ClientMessage {
    /// Checks counts and lengths.
    pub fn validate(&self) -> Result<()> {
        match self {
            ClientMessage::Request(r) => match &r.body {
                Request::UploadChunk { data, .. } if data.len() > MAX_CLIENT_CHUNK => {
                    Err(Error::invalid("upload chunk", "too large"))
                }
                _ => Ok(()),
            },
            ClientMessage::Push(Push::Presence { audience, .. })
                if audience.len() > MAX_AUDIENCE =>
            {
                Err(Error::invalid("presence audience", "too many users"))
            }
            _ => Ok(()),
        }
    }
}

/// Decodes a client frame; a request whose body is unknown or malformed
/// yields [`Error::BadRequestBody`] with its id, so it can be answered.
pub fn decode_client_frame(frame: &Frame) -> Result<ClientMessage> {
    match ClientMessage::decode(frame) {
        Err(e) if frame.tag == 0x43 => {
            match codec::from_prefix::<(u64, SessionId)>("request id", &frame.body) {
                Ok(((id, _), _)) => Err(Error::BadRequestBody {
                    id,
                    detail: e.to_string(),
                }),
                Err(_) => Err(e),
            }
        }
        other => other,
    }
}

/// The session of a request frame whose body did not decode.
pub fn request_session(frame: &Frame) -> Option<SessionId> {
    codec::from_prefix::<(u64, SessionId)>("request id", &frame.body)
        .ok()
        .map(|((_, s), _)| s)
}
