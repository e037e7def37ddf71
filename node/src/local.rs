//! Local room operations on a node's own store, for operators and tests
//! before (and besides) the gateway: create a room, post, read the timeline.
//! They sign with the node key, judge with the room engine and return only
//! once the event is durable, exactly as a gateway's request will.

use std::time::{SystemTime, UNIX_EPOCH};

use confab_wire::client::Anchor;
use confab_wire::event::{Content, CreateRoom, MessageContent, Visibility};
use confab_wire::{EventHeader, EventId, EventKind, NodeKey, RoomId, UserId};

use crate::error::{Error, Result};
use crate::store::Store;

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Creates a room owned by `creator` (a user of this node).
pub fn create_room(
    store: &Store,
    key: &NodeKey,
    creator: &UserId,
    name: &str,
    visibility: Visibility,
) -> Result<RoomId> {
    let header = EventHeader::create(
        creator.clone(),
        CreateRoom::named(name, visibility, false),
        now_ms(),
    );
    let ev = key.sign_event(header, &Content::Empty).map_err(invalid)?;
    store.create_room(&ev)?;
    store.wait_durable()?;
    Ok(ev.room())
}

fn invalid(e: confab_wire::Error) -> Error {
    Error::Refused {
        reason: e.to_string(),
    }
}

/// Posts `kind` with `content` as `author` through the one post path
/// ([`crate::rooms::post`]); returns the event id once it is durable, or
/// the room's reason for refusing it (nothing is then signed or stored).
pub fn post(
    store: &Store,
    key: &NodeKey,
    author: &UserId,
    room: &RoomId,
    kind: EventKind,
    content: &Content,
) -> Result<EventId> {
    let mut r = store
        .open_room(room)?
        .ok_or(Error::NotFound { what: "room" })?;
    let ev = crate::rooms::post(store, &mut r, key, author, kind, content, now_ms(), None)?
        .into_event()?;
    store.wait_durable()?;
    Ok(ev.id())
}

/// Posts a plain message.
pub fn post_message(
    store: &Store,
    key: &NodeKey,
    author: &UserId,
    room: &RoomId,
    body: &str,
) -> Result<EventId> {
    let content = Content::Message(MessageContent {
        body: body.to_string(),
        ..Default::default()
    });
    post(store, key, author, room, EventKind::Message, &content)
}

/// One line of a timeline: who, when, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The message.
    pub id: EventId,
    /// Its author.
    pub author: UserId,
    /// Its time.
    pub ts: u64,
    /// Its current text, or a deletion note.
    pub text: String,
}

/// The last `limit` messages before `before` (or the newest), oldest first.
pub fn timeline(
    store: &Store,
    room: &RoomId,
    limit: usize,
    before: Option<EventId>,
) -> Result<Vec<Line>> {
    let anchor = before.map_or(Anchor::Latest, Anchor::Before);
    let mut out = Vec::new();
    for id in store.page(room, anchor, limit)? {
        let Some(v) = store.message_view(&id)? else {
            continue;
        };
        let text = match (&v.body, &v.deleted) {
            (_, Some(reason)) if reason.is_empty() => "(message deleted)".to_string(),
            (_, Some(reason)) => format!("(message deleted: {reason})"),
            (Some(b), None) if v.edited => format!("{b} (edited)"),
            (Some(b), None) => b.clone(),
            (None, None) => String::new(),
        };
        out.push(Line {
            id,
            author: v.author,
            ts: v.ts,
            text,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn create_post_and_read_back() {
        let store = Store::temporary().unwrap();
        let key = NodeKey::from_secret(&[3; 32]);
        let admin = UserId::new(key.node_id(), "admin").unwrap();
        let room = create_room(&store, &key, &admin, "ops", Visibility::Private).unwrap();
        let a = post_message(&store, &key, &admin, &room, "first").unwrap();
        let b = post_message(&store, &key, &admin, &room, "second").unwrap();
        let lines = timeline(&store, &room, 10, None).unwrap();
        assert_eq!(
            lines
                .iter()
                .map(|l| (l.id, l.text.as_str()))
                .collect::<Vec<_>>(),
            vec![(a, "first"), (b, "second")]
        );
        assert_eq!(timeline(&store, &room, 10, Some(b)).unwrap().len(), 1);
        // A stranger is refused with the room's reason.
        let eve = UserId::new(key.node_id(), "eve").unwrap();
        let e = post_message(&store, &key, &eve, &room, "hi").unwrap_err();
        assert!(e.to_string().contains("not a member"), "{e}");
        assert!(post_message(&store, &key, &admin, &RoomId([1; 32]), "x").is_err());
    }
}
