//! Shared helpers for Confab's integration tests: fixed keys and events that
//! test processes and the tests that check them agree on.
#![warn(missing_docs, unreachable_pub)]

use confab_wire::event::{Content, CreateRoom, MessageContent, ROOM_VERSION, Setting, Visibility};
use confab_wire::{ContentHash, EventHeader, EventKind, NodeKey, UserId, VerifiedEvent};

/// A fixed test node key (never use outside tests).
pub fn test_key(seed: u8) -> NodeKey {
    NodeKey::from_secret(&[seed; 32])
}

/// `@name` on the test node `seed`.
pub fn test_user(seed: u8, name: &str) -> anyhow::Result<UserId> {
    Ok(UserId::new(test_key(seed).node_id(), name)?)
}

/// The create event of a public room `name` by `@alice` of node `seed`.
pub fn create_room_event(seed: u8, name: &str, ts: u64) -> anyhow::Result<VerifiedEvent> {
    let header = EventHeader {
        room: None,
        author: test_user(seed, "alice")?,
        kind: EventKind::Create(CreateRoom {
            version: ROOM_VERSION,
            direct: false,
            settings: vec![
                Setting::Name(name.into()),
                Setting::Visibility(Visibility::Public),
            ],
        }),
        prev: vec![],
        depth: 0,
        origin_seq: 1,
        origin_prev: None,
        ts,
        content_hash: ContentHash([0; 32]),
    };
    Ok(test_key(seed).sign_event(header, &Content::Empty)?)
}

/// Message content with `body`.
pub fn text(body: &str) -> Content {
    Content::Message(MessageContent {
        body: body.into(),
        ..Default::default()
    })
}
