//! Fixed sample data shared by the vector and property tests.
#![allow(dead_code, clippy::unwrap_used)]

use confab_wire::event::{
    Attachment, CreateRoom, IdempotencyHash, InvitePolicy, MessageContent, ROOM_VERSION, Setting,
    Visibility,
};
use confab_wire::{
    BlobId, Content, ContentHash, EventHeader, EventKind, NodeKey, UserId, VerifiedEvent,
};

/// The node key every vector is signed with (ed25519 signing is deterministic).
pub(crate) fn key() -> NodeKey {
    NodeKey::from_secret(&[7u8; 32])
}

/// `@alice` on the vector node.
pub(crate) fn alice() -> UserId {
    UserId::new(key().node_id(), "alice").unwrap()
}

/// The sample room's create event: a room of rules version 1, so the
/// vectors signed before rules version 2 existed still hold byte for byte.
pub(crate) fn create_event() -> VerifiedEvent {
    let create = CreateRoom {
        version: 1,
        direct: false,
        settings: vec![
            Setting::Name("general".into()),
            Setting::Topic("Say hi".into()),
            Setting::Visibility(Visibility::Public),
        ],
    };
    let header = EventHeader::create(alice(), create, 1_700_000_000_000);
    key().sign_event(header, &Content::Empty).unwrap()
}

/// A create event of rules `version` (2 on) with every setting.
pub(crate) fn create_event_of(version: u16) -> VerifiedEvent {
    assert!((2..=ROOM_VERSION).contains(&version));
    let create = CreateRoom {
        version,
        direct: false,
        settings: vec![
            Setting::Name("ops".into()),
            Setting::Visibility(Visibility::Private),
            Setting::Invites(InvitePolicy::Members),
        ],
    };
    let header = EventHeader::create(alice(), create, 1_700_000_000_000);
    key().sign_event(header, &Content::Empty).unwrap()
}

/// A message with every content field set, following the create event.
pub(crate) fn message_event() -> VerifiedEvent {
    let create = create_event();
    let header = EventHeader {
        room: Some(create.room()),
        author: alice(),
        kind: EventKind::Message,
        prev: vec![create.id()],
        depth: 1,
        origin_seq: 2,
        origin_prev: Some(create.id()),
        ts: 1_700_000_000_500,
        content_hash: ContentHash([0; 32]),
    };
    let content = Content::Message(MessageContent {
        body: "**hello** world".into(),
        reply_to: Some(create.id()),
        thread: None,
        mentions: vec![alice()],
        attachments: vec![Attachment {
            blob: BlobId([9; 32]),
            size: 1234,
            mime: "image/png".into(),
            name: "cat.png".into(),
            dimensions: Some((64, 48)),
        }],
    });
    key().sign_event(header, &content).unwrap()
}

/// A message carrying an idempotency hash, in a room of rules version 3.
pub(crate) fn message_event_v3() -> VerifiedEvent {
    let create = create_event_of(3);
    let header = EventHeader {
        room: Some(create.room()),
        author: alice(),
        kind: EventKind::Message,
        prev: vec![create.id()],
        depth: 1,
        origin_seq: 2,
        origin_prev: Some(create.id()),
        ts: 1_700_000_000_500,
        content_hash: ContentHash([0; 32]),
    };
    let content = Content::Message(MessageContent {
        body: "sent once".into(),
        ..Default::default()
    });
    key()
        .sign_event_with(header, &content, Some(IdempotencyHash::of(&alice(), "k-1")))
        .unwrap()
}
