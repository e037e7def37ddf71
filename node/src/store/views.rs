//! Read models over the stored events: threads, reactions, edits,
//! deletions, mentions, read positions and unread counts.
//!
//! Index entries are written with the event, whatever its verdict; every
//! query keeps only what is accepted and not deleted *now*, so a re-fold
//! that flips a verdict, or a later redaction, needs no index rewrite.
//!
//! The word index is in [`super::search`].
//!
//! | key                                              | value   |
//! |--------------------------------------------------|---------|
//! | `T` root depth(BE) event                         | —       |
//! | `U` node len localpart ts(BE) event              | room    |
//! | `P` room node len localpart                      | depth(BE) event |
//! | `Q` room node len localpart                      | depth(BE) event (a remote member's node holds the direct room up to it) |
//! | `A` blob room                                    | — (a message in the room attaches the blob) |

use std::collections::BTreeMap;

use confab_wire::client::MessageVersion;
use confab_wire::event::{Content, EventKind};
use confab_wire::{EventId, RoomId, UserId, VerifiedEvent};

use super::history::read_meta;
use super::{P_RELATION, Store, key, store_err};
use crate::engine::{EventMeta, Verdict};
use crate::error::Result;

pub(crate) const P_THREAD: u8 = b'T';
pub(crate) const P_MENTION: u8 = b'U';
pub(crate) const P_WORD: u8 = b'W';
pub(crate) const P_READ: u8 = b'P';
pub(crate) const P_DELIVERED: u8 = b'Q';
pub(crate) const P_INVITE: u8 = b'I';
pub(crate) const P_ATTACHED: u8 = b'A';

/// Unread counts stop here ("999+").
pub const UNREAD_CAP: u32 = 999;

pub(crate) fn user_key(u: &UserId) -> Vec<u8> {
    let mut k = Vec::with_capacity(33 + u.localpart().len());
    k.extend_from_slice(u.node().as_bytes());
    k.push(u.localpart().len() as u8);
    k.extend_from_slice(u.localpart().as_bytes());
    k
}

/// Index entries for a newly stored event.
pub(crate) fn index(
    ev: &VerifiedEvent,
    ops: &mut Vec<(Vec<u8>, Vec<u8>)>,
    postings: &mut super::search::Postings,
) {
    let h = ev.header();
    let room = ev.room();
    if let EventKind::Invite { target } = &h.kind {
        // Lets a peer hand the invitee's node its invite first.
        ops.push((
            key(
                P_INVITE,
                &[
                    room.as_bytes(),
                    target.node().as_bytes(),
                    &h.depth.to_be_bytes(),
                    ev.id().as_bytes(),
                ],
            ),
            Vec::new(),
        ));
        return;
    }
    if let Some(Content::Message(m)) = ev.content() {
        // Who may download a file: members of the rooms it was posted in.
        for a in &m.attachments {
            ops.push((
                key(P_ATTACHED, &[a.blob.as_bytes(), room.as_bytes()]),
                Vec::new(),
            ));
        }
    }
    let (target, body, mentions, thread) = match ev.content() {
        Some(Content::Message(m)) => (ev.id(), m.body, m.mentions, m.thread),
        Some(Content::Edit(e)) => match h.kind {
            EventKind::Edit { target } => (target, e.body, e.mentions, None),
            _ => return,
        },
        _ => return,
    };
    if let Some(root) = thread {
        ops.push((
            key(
                P_THREAD,
                &[root.as_bytes(), &h.depth.to_be_bytes(), ev.id().as_bytes()],
            ),
            Vec::new(),
        ));
    }
    for u in &mentions {
        ops.push((
            key(
                P_MENTION,
                &[&user_key(u), &h.ts.to_be_bytes(), target.as_bytes()],
            ),
            room.as_bytes().to_vec(),
        ));
    }
    super::search::collect(&body, h.ts, target, postings);
}

/// The content of a record, if it still has one. It was checked against
/// its hash when the event was accepted; decoding it again is all a view
/// needs.
fn record_content(store: &Store, rec: &super::EventRecord) -> Result<Option<Content>> {
    let signed = store.signed_of(rec)?;
    Ok(signed
        .content
        .as_ref()
        .and_then(|c| Content::decode_for(&rec.meta.kind, c).ok()))
}

/// A message as people see it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageView {
    /// The message.
    pub id: EventId,
    /// Its room.
    pub room: RoomId,
    /// Its author.
    pub author: UserId,
    /// Its timestamp.
    pub ts: u64,
    /// The current body (the latest accepted edit), `None` once deleted.
    pub body: Option<String>,
    /// Edited at least once.
    pub edited: bool,
    /// The deletion's reason, if deleted.
    pub deleted: Option<String>,
    /// Reactions: emoji → users, in the order they reacted.
    pub reactions: BTreeMap<String, Vec<UserId>>,
    /// Thread replies: count and time of the last.
    pub thread: Option<(u32, u64)>,
}

impl Store {
    fn meta_of(&self, id: &EventId) -> Result<Option<(EventMeta, Verdict)>> {
        read_meta(&self.data, id)
    }

    /// Accepted relations of `target`, in room order.
    fn accepted_relations(&self, target: &EventId) -> Result<Vec<EventMeta>> {
        let mut out = Vec::new();
        for k in self
            .data
            .scan_prefix(key(P_RELATION, &[target.as_bytes()]))
            .keys()
        {
            let k = k.map_err(store_err("scan relations"))?;
            let Some(id) = k.get(33..65).and_then(|s| <[u8; 32]>::try_from(s).ok()) else {
                continue;
            };
            if let Some((m, v)) = self.meta_of(&EventId(id))?
                && v.is_accepted()
            {
                out.push(m);
            }
        }
        out.sort_by_key(|m| m.position());
        Ok(out)
    }

    fn content_of(&self, id: &EventId) -> Result<Option<Content>> {
        match super::history::read_record(&self.data, id)? {
            Some(r) => record_content(self, &r),
            None => Ok(None),
        }
    }

    /// The message as shown now, or `None` if it is not an accepted message.
    pub fn message_view(&self, id: &EventId) -> Result<Option<MessageView>> {
        let Some(rec) = super::history::read_record(&self.data, id)? else {
            return Ok(None);
        };
        if !rec.verdict.is_accepted() || !matches!(rec.meta.kind, EventKind::Message) {
            return Ok(None);
        }
        let room = rec.room;
        let mut body = match record_content(self, &rec)? {
            Some(Content::Message(m)) => Some(m.body),
            _ => None,
        };
        let meta = rec.meta;
        let mut edited = false;
        let mut deleted = None;
        let mut reactions: BTreeMap<String, Vec<UserId>> = BTreeMap::new();
        for rel in self.accepted_relations(id)? {
            match &rel.kind {
                EventKind::Edit { .. } => {
                    if let Some(Content::Edit(e)) = self.content_of(&rel.id)? {
                        body = Some(e.body);
                        edited = true;
                    }
                }
                EventKind::Redact { .. } => {
                    let reason = match self.content_of(&rel.id)? {
                        Some(Content::Reason(r)) => r.reason,
                        _ => String::new(),
                    };
                    deleted = Some(reason);
                }
                EventKind::React { emoji, .. } => {
                    let users = reactions.entry(emoji.clone()).or_default();
                    if !users.contains(&rel.author) {
                        users.push(rel.author.clone());
                    }
                }
                EventKind::Unreact { emoji, .. } => {
                    if let Some(users) = reactions.get_mut(emoji) {
                        users.retain(|u| u != &rel.author);
                        if users.is_empty() {
                            reactions.remove(emoji);
                        }
                    }
                }
                _ => {}
            }
        }
        if deleted.is_some() {
            body = None;
            reactions.clear();
        }
        let thread = self.thread_summary(id)?;
        Ok(Some(MessageView {
            id: *id,
            room,
            author: meta.author,
            ts: meta.ts,
            body,
            edited,
            deleted,
            reactions,
            thread,
        }))
    }

    /// The edits of a message, oldest first: (edit event, body) — for
    /// moderators' edit history.
    pub fn edit_history(&self, id: &EventId) -> Result<Vec<(EventId, String)>> {
        let mut out = Vec::new();
        for rel in self.accepted_relations(id)? {
            if let (EventKind::Edit { .. }, Some(Content::Edit(e))) =
                (&rel.kind, self.content_of(&rel.id)?)
            {
                out.push((rel.id, e.body));
            }
        }
        Ok(out)
    }

    /// Every version of an accepted, not deleted message, the original
    /// first, then its accepted edits in order; `None` if there is no such
    /// message.
    pub fn message_versions(&self, id: &EventId) -> Result<Option<Vec<MessageVersion>>> {
        let Some(rec) = super::history::read_record(&self.data, id)? else {
            return Ok(None);
        };
        let Some(Content::Message(m)) = record_content(self, &rec)? else {
            return Ok(None);
        };
        if !rec.verdict.is_accepted() || !matches!(rec.meta.kind, EventKind::Message) {
            return Ok(None);
        }
        let mut out = vec![MessageVersion {
            event: *id,
            sender: rec.meta.author.clone(),
            ts: rec.meta.ts,
            body: m.body,
        }];
        for (edit, body) in self.edit_history(id)? {
            let Some((meta, _)) = self.meta_of(&edit)? else {
                continue;
            };
            out.push(MessageVersion {
                event: edit,
                sender: meta.author,
                ts: meta.ts,
                body,
            });
        }
        Ok(Some(out))
    }

    fn visible(&self, id: &EventId) -> Result<bool> {
        Ok(self.message_view(id)?.is_some_and(|v| v.deleted.is_none()))
    }

    /// Replies of a thread, oldest first.
    pub fn thread(&self, root: &EventId) -> Result<Vec<EventId>> {
        let mut out = Vec::new();
        for k in self
            .data
            .scan_prefix(key(P_THREAD, &[root.as_bytes()]))
            .keys()
        {
            let k = k.map_err(store_err("scan thread"))?;
            let Some(id) = k.get(41..73).and_then(|s| <[u8; 32]>::try_from(s).ok()) else {
                continue;
            };
            let id = EventId(id);
            if self.meta_of(&id)?.is_some_and(|(_, v)| v.is_accepted())
                && self.content_of(&id)?.is_some()
            {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// A thread's reply count and the time of its last reply.
    pub fn thread_summary(&self, root: &EventId) -> Result<Option<(u32, u64)>> {
        let replies = self.thread(root)?;
        let Some(last) = replies.last() else {
            return Ok(None);
        };
        let ts = self.meta_of(last)?.map_or(0, |(m, _)| m.ts);
        Ok(Some((replies.len() as u32, ts)))
    }

    /// Messages that mention `user`, newest first (by ts, then id), after
    /// the cursor `before` = (ts, id) of the last one already seen. The id
    /// is part of the cursor because several messages can share a ts: a ts
    /// alone would skip the rest of them.
    pub fn mentions(
        &self,
        user: &UserId,
        before: Option<(u64, EventId)>,
        limit: usize,
    ) -> Result<Vec<EventId>> {
        let prefix = key(P_MENTION, &[&user_key(user)]);
        let end = match before {
            Some((ts, id)) => key(
                P_MENTION,
                &[&user_key(user), &ts.to_be_bytes(), id.as_bytes()],
            ),
            None => {
                let mut e = prefix.clone();
                e.push(0xff);
                e
            }
        };
        let mut out: Vec<EventId> = Vec::new();
        for k in self.data.range(prefix.clone()..end).keys().rev() {
            let k = k.map_err(store_err("scan mentions"))?;
            let Some(id) = k
                .get(k.len() - 32..)
                .and_then(|s| <[u8; 32]>::try_from(s).ok())
            else {
                continue;
            };
            let id = EventId(id);
            if !out.contains(&id) && self.visible(&id)? {
                out.push(id);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Sets a user's read position in a room (only forwards).
    pub fn mark_read(&self, room: &RoomId, user: &UserId, event: &EventId) -> Result<()> {
        self.move_place(P_READ, room, user, event)
    }

    /// Records that a remote user's node holds a direct room up to `event`
    /// (only forwards).
    pub fn mark_delivered(&self, room: &RoomId, user: &UserId, event: &EventId) -> Result<()> {
        self.move_place(P_DELIVERED, room, user, event)
    }

    /// The newest event a user's node is known to hold in a direct room.
    pub fn delivered_position(&self, room: &RoomId, user: &UserId) -> Result<Option<EventId>> {
        self.place_event(P_DELIVERED, room, user)
    }

    fn move_place(&self, prefix: u8, room: &RoomId, user: &UserId, event: &EventId) -> Result<()> {
        let Some((meta, _)) = self.meta_of(event)? else {
            return Err(crate::error::Error::NotFound { what: "event" });
        };
        let k = key(prefix, &[room.as_bytes(), &user_key(user)]);
        let mut v = Vec::with_capacity(40);
        v.extend_from_slice(&meta.depth.to_be_bytes());
        v.extend_from_slice(event.as_bytes());
        self.data
            .fetch_and_update(&k, |old| match old {
                Some(old) if old >= v.as_slice() => Some(old.to_vec()),
                _ => Some(v.clone()),
            })
            .map_err(store_err("mark read"))?;
        Ok(())
    }

    /// The place (depth, event) of the user's read position in a room.
    pub fn read_place(&self, room: &RoomId, user: &UserId) -> Result<Option<(u64, EventId)>> {
        let k = key(P_READ, &[room.as_bytes(), &user_key(user)]);
        Ok(self
            .data
            .get(k)
            .map_err(store_err("read position"))?
            .and_then(|v| {
                let depth = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
                let id = <[u8; 32]>::try_from(v.get(8..40)?).ok()?;
                Some((depth, EventId(id)))
            }))
    }

    /// The user's read position in a room.
    pub fn read_position(&self, room: &RoomId, user: &UserId) -> Result<Option<EventId>> {
        self.place_event(P_READ, room, user)
    }

    fn place_event(&self, prefix: u8, room: &RoomId, user: &UserId) -> Result<Option<EventId>> {
        let k = key(prefix, &[room.as_bytes(), &user_key(user)]);
        Ok(self
            .data
            .get(k)
            .map_err(store_err("read position"))?
            .and_then(|v| <[u8; 32]>::try_from(v.get(8..40)?).ok())
            .map(EventId))
    }

    /// Accepted messages by others after the user's read position, up to
    /// [`UNREAD_CAP`].
    pub fn unread(&self, room: &RoomId, user: &UserId) -> Result<u32> {
        let k = key(P_READ, &[room.as_bytes(), &user_key(user)]);
        let from = match self.data.get(k).map_err(store_err("read position"))? {
            Some(v) => {
                let mut s = key(super::P_ORDER, &[room.as_bytes()]);
                s.extend_from_slice(&v);
                s.push(0); // strictly after the read event
                s
            }
            None => key(super::P_ORDER, &[room.as_bytes()]),
        };
        let prefix = key(super::P_ORDER, &[room.as_bytes()]);
        let mut n = 0;
        for k in self.data.range(from..).keys() {
            let k = k.map_err(store_err("scan order"))?;
            if !k.starts_with(&prefix) {
                break;
            }
            let Some(id) = k.get(41..73).and_then(|s| <[u8; 32]>::try_from(s).ok()) else {
                continue;
            };
            if let Some((m, v)) = self.meta_of(&EventId(id))?
                && v.is_accepted()
                && matches!(m.kind, EventKind::Message)
                && &m.author != user
            {
                n += 1;
                if n >= UNREAD_CAP {
                    break;
                }
            }
        }
        Ok(n)
    }
}
