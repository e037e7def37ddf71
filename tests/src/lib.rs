//! Shared helpers for Confab's integration tests: fixed keys and events that
//! test processes and the tests that check them agree on.
#![warn(missing_docs, unreachable_pub)]

pub mod net;
pub mod web;

use confab_wire::event::{Content, CreateRoom, MessageContent, Visibility};
use confab_wire::{EventHeader, NodeKey, UserId, VerifiedEvent};

/// A fixed test node key (never use outside tests).
pub fn test_key(seed: u8) -> NodeKey {
    NodeKey::from_secret(&[seed; 32])
}

/// `@name` on the test node `seed`.
pub fn test_user(seed: u8, name: &str) -> anyhow::Result<UserId> {
    Ok(UserId::new(test_key(seed).node_id(), name)?)
}

/// The create event of a room `name` by `@author` of node `seed`.
pub fn create_room_event(
    seed: u8,
    author: &str,
    name: &str,
    visibility: Visibility,
    ts: u64,
) -> anyhow::Result<VerifiedEvent> {
    create_room_of_version(
        seed,
        author,
        name,
        visibility,
        ts,
        confab_wire::event::ROOM_VERSION,
    )
}

/// As [`create_room_event`], for a room judged by rules `version`.
pub fn create_room_of_version(
    seed: u8,
    author: &str,
    name: &str,
    visibility: Visibility,
    ts: u64,
    version: u16,
) -> anyhow::Result<VerifiedEvent> {
    let mut create = CreateRoom::named(name, visibility, false);
    create.version = version;
    let header = EventHeader::create(test_user(seed, author)?, create, ts);
    Ok(test_key(seed).sign_event(header, &Content::Empty)?)
}

/// Message content with `body`.
pub fn text(body: &str) -> Content {
    Content::Message(MessageContent {
        body: body.into(),
        ..Default::default()
    })
}
