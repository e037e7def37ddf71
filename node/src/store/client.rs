//! Reads and small records the client service needs: timeline items as
//! browsers see them, catch-up after a position, idempotency keys of sends
//! and per-user blocks.
//!
//! | key (tree `room_data`)                        | value    |
//! |-----------------------------------------------|----------|
//! | `Z` node len localpart key_len key            | event id |
//!
//! | key (tree `blob_access`)                      | value    |
//! |-----------------------------------------------|----------|
//! | `U` blob localpart                            | — (uploaded by this local user) |
//! | `V` blob                                      | — (an avatar: anyone signed in may see it) |
//!
//! | key (tree `user_blocks`)                      | value    |
//! |-----------------------------------------------|----------|
//! | blocker localpart 0x00 blocked user id text   | —        |
//!
//! | key (tree `user_notices`)                     | value    |
//! |-----------------------------------------------|----------|
//! | localpart 0x00 id(BE)                         | notice (bincode) |
//!
//! | key (tree `room_greetings`)                   | value    |
//! |-----------------------------------------------|----------|
//! | room localpart                                | ts(BE) (the welcome bot greeted them there) |
//!
//! An idempotency key is written in the same batch as the event it names
//! ([`super::Room::note`]), so after a crash either both exist or neither:
//! a resend never posts twice and never finds a key without its event.

use confab_wire::client::{Notice, ReactionCount, TimelineItem};
use confab_wire::event::{EventKind, IdempotencyHash};
use confab_wire::{EventId, RoomId, UserId};

use super::history::{ORDER_ACCEPTED, read_record};
use super::{P_ORDER, Room, Store, key, order_key_id, store_err};
use crate::error::Result;

/// A user's sends by idempotency hash, to the event each created (written
/// for every message that carries one, whichever node it came from, so a
/// restored or rebuilt store relearns them from the events).
pub(crate) const P_SENT: u8 = b'N';
/// Most bytes of an idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 64;

fn sent_key(user: &UserId, hash: &IdempotencyHash) -> Vec<u8> {
    key(P_SENT, &[&super::views::user_key(user), &hash.0])
}

impl Room {
    /// Records, with the next commit, that `user`'s send of idempotency
    /// hash `hash` created `event`.
    pub fn note_sent(&mut self, user: &UserId, hash: &IdempotencyHash, event: &EventId) {
        self.note(sent_key(user, hash), event.as_bytes().to_vec());
    }
}

impl Store {
    /// The event a send of `user` with idempotency hash `hash` created.
    pub fn sent_event(&self, user: &UserId, hash: &IdempotencyHash) -> Result<Option<EventId>> {
        Ok(self
            .data
            .get(sent_key(user, hash))
            .map_err(store_err("read idempotency key"))?
            .and_then(|v| <[u8; 32]>::try_from(v.as_ref()).ok())
            .map(EventId))
    }

    /// An event as a timeline item: its bytes (content gone if redacted),
    /// its verdict, and for a message its current edit, deletion,
    /// reactions and thread.
    pub fn timeline_item(&self, id: &EventId) -> Result<Option<TimelineItem>> {
        let Some(rec) = read_record(&self.data, id)? else {
            return Ok(None);
        };
        let mut item = TimelineItem {
            event: self.signed_of(&rec)?,
            rejected: !rec.verdict.is_accepted(),
            edited_body: None,
            redacted: None,
            reactions: Vec::new(),
            thread: None,
        };
        if matches!(rec.meta.kind, EventKind::Message)
            && let Some(view) = self.message_view(id)?
        {
            if view.edited {
                item.edited_body = view.body.clone();
            }
            item.redacted = view.deleted;
            item.reactions = view
                .reactions
                .into_iter()
                .map(|(emoji, users)| ReactionCount { emoji, users })
                .collect();
            item.thread = view.thread;
        } else if matches!(rec.meta.kind, EventKind::Message) {
            // A rejected message is never shown; keep its bytes out too.
            item.event.content = None;
        }
        Ok(Some(item))
    }

    /// Accepted events of the room after `after` in timeline order, every
    /// kind (edits, reactions, …) but the create event, at most `limit`:
    /// what a client that saw `after` missed. `None` if `after` is not an
    /// event of the room.
    pub fn events_after(
        &self,
        room: &RoomId,
        after: &EventId,
        limit: usize,
    ) -> Result<Option<Vec<EventId>>> {
        let Some(rec) = read_record(&self.data, after)? else {
            return Ok(None);
        };
        if rec.room != *room {
            return Ok(None);
        }
        let prefix = key(P_ORDER, &[room.as_bytes()]);
        let from = key(
            P_ORDER,
            &[
                room.as_bytes(),
                &rec.meta.depth.to_be_bytes(),
                after.as_bytes(),
            ],
        );
        let mut out = Vec::new();
        for item in self.data.range(from..).skip(1) {
            let (k, v) = item.map_err(store_err("scan order"))?;
            if !k.starts_with(&prefix) {
                break;
            }
            if v.first().is_some_and(|f| f & ORDER_ACCEPTED != 0) {
                out.push(order_key_id(&k)?);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(Some(out))
    }

    /// The messages after the user's read position that mention them, at
    /// most `cap`.
    pub fn unread_mentions(&self, room: &RoomId, user: &UserId, cap: u32) -> Result<u32> {
        let read_ts = match self.read_position(room, user)? {
            Some(id) => read_record(&self.data, &id)?.map_or(0, |r| r.meta.ts),
            None => 0,
        };
        let mut n = 0;
        let mut before = None;
        loop {
            let page = self.mentions(user, before, 64)?;
            let Some(last) = page.last() else {
                return Ok(n);
            };
            let mut older = false;
            for id in &page {
                let Some(rec) = read_record(&self.data, id)? else {
                    continue;
                };
                if rec.meta.ts <= read_ts {
                    older = true;
                    break;
                }
                if rec.room == *room && &rec.meta.author != user {
                    n += 1;
                    if n >= cap {
                        return Ok(n);
                    }
                }
            }
            if older || page.len() < 64 {
                return Ok(n);
            }
            before = read_record(&self.data, last)?.map(|r| (r.meta.ts, *last));
        }
    }

    fn blocks(&self) -> Result<sled::Tree> {
        self.db
            .open_tree("user_blocks")
            .map_err(store_err("open blocks"))
    }

    /// Blocks (or unblocks) `blocked` for the local user `blocker`.
    pub fn set_blocked(&self, blocker: &str, blocked: &UserId, on: bool) -> Result<()> {
        let mut k = blocker.as_bytes().to_vec();
        k.push(0);
        k.extend_from_slice(blocked.to_string().as_bytes());
        let t = self.blocks()?;
        if on {
            t.insert(k, &[]).map(|_| ())
        } else {
            t.remove(k).map(|_| ())
        }
        .map_err(store_err("write block"))
    }

    /// True if the local user `blocker` blocked `user`.
    pub fn is_blocked(&self, blocker: &str, user: &UserId) -> Result<bool> {
        let mut k = blocker.as_bytes().to_vec();
        k.push(0);
        k.extend_from_slice(user.to_string().as_bytes());
        self.blocks()?
            .contains_key(k)
            .map_err(store_err("read block"))
    }
}

impl Store {
    fn notices_tree(&self) -> Result<sled::Tree> {
        self.db
            .open_tree("user_notices")
            .map_err(store_err("open notices"))
    }

    /// Keeps a note for the local user `localpart` (applied; durable after
    /// [`Store::wait_durable`]).
    pub fn add_notice(
        &self,
        localpart: &str,
        room: &RoomId,
        from: &str,
        body: &str,
        ts: u64,
    ) -> Result<Notice> {
        let id = self.db.generate_id().map_err(store_err("new notice id"))?;
        let n = Notice {
            id,
            room: *room,
            from: from.to_string(),
            ts,
            body: body.to_string(),
        };
        self.notices_tree()?
            .insert(notice_key(localpart, id), super::encode("notice", &n)?)
            .map_err(store_err("write notice"))?;
        Ok(n)
    }

    /// The local user's notes, oldest first.
    pub fn notices(&self, localpart: &str) -> Result<Vec<Notice>> {
        let mut prefix = localpart.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.notices_tree()?.scan_prefix(prefix) {
            let (_, v) = item.map_err(store_err("scan notices"))?;
            out.push(super::decode("notice", &v)?);
        }
        Ok(out)
    }

    /// Drops one of the local user's notes; false if they had none with
    /// that id.
    pub fn dismiss_notice(&self, localpart: &str, id: u64) -> Result<bool> {
        Ok(self
            .notices_tree()?
            .remove(notice_key(localpart, id))
            .map_err(store_err("drop notice"))?
            .is_some())
    }

    /// Marks that the welcome bot greeted the local user in `room`; false
    /// if it had already (so a user is greeted once per room, rejoins
    /// included).
    pub fn first_greeting(&self, room: &RoomId, localpart: &str, ts: u64) -> Result<bool> {
        let t = self
            .db
            .open_tree("room_greetings")
            .map_err(store_err("open greetings"))?;
        let mut k = room.as_bytes().to_vec();
        k.extend_from_slice(localpart.as_bytes());
        Ok(
            t.compare_and_swap(k, None as Option<&[u8]>, Some(&ts.to_be_bytes()[..]))
                .map_err(store_err("write greeting"))?
                .is_ok(),
        )
    }
}

fn notice_key(localpart: &str, id: u64) -> Vec<u8> {
    let mut k = localpart.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// A user's report of a message, for the node's admins.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Report {
    /// Who reported (a local user).
    pub reporter: UserId,
    /// The room.
    pub room: RoomId,
    /// The message.
    pub event: EventId,
    /// Why.
    pub reason: String,
    /// When (ms since epoch).
    pub ts: u64,
    /// Resolved by an admin, with their note.
    pub resolution: Option<String>,
}

impl Store {
    fn reports(&self) -> Result<sled::Tree> {
        self.db
            .open_tree("id__report")
            .map_err(store_err("open reports"))
    }

    /// Files a report (applied; durable after [`Store::wait_durable`]);
    /// returns its number.
    pub fn add_report(
        &self,
        reporter: &UserId,
        room: &RoomId,
        event: &EventId,
        reason: &str,
        ts: u64,
    ) -> Result<u64> {
        let id = self.db.generate_id().map_err(store_err("new report id"))?;
        let r = Report {
            reporter: reporter.clone(),
            room: *room,
            event: *event,
            reason: reason.to_string(),
            ts,
            resolution: None,
        };
        self.reports()?
            .insert(id.to_be_bytes(), super::encode("report", &r)?)
            .map_err(store_err("write report"))?;
        Ok(id)
    }

    /// Every report, oldest first.
    pub fn reports_list(&self) -> Result<Vec<(u64, Report)>> {
        let mut out = Vec::new();
        for item in self.reports()?.iter() {
            let (k, v) = item.map_err(store_err("scan reports"))?;
            let id = <[u8; 8]>::try_from(k.as_ref()).map_or(0, u64::from_be_bytes);
            out.push((id, super::decode("report", &v)?));
        }
        Ok(out)
    }
}

impl Store {
    fn blob_access(&self) -> Result<sled::Tree> {
        self.db
            .open_tree("blob_access")
            .map_err(store_err("open blob access"))
    }

    /// Records that the local user `localpart` uploaded `blob`.
    pub fn note_uploader(&self, blob: &confab_wire::BlobId, localpart: &str) -> Result<()> {
        self.blob_access()?
            .insert(key(b'U', &[blob.as_bytes(), localpart.as_bytes()]), &[])
            .map(|_| ())
            .map_err(store_err("write uploader"))
    }

    /// Records that `blob` is an avatar (seen by anyone signed in).
    pub fn note_avatar(&self, blob: &confab_wire::BlobId) -> Result<()> {
        self.blob_access()?
            .insert(key(b'V', &[blob.as_bytes()]), &[])
            .map(|_| ())
            .map_err(store_err("write avatar"))
    }

    /// True if the local user uploaded `blob` or it is an avatar.
    pub fn blob_open_to(&self, blob: &confab_wire::BlobId, localpart: &str) -> Result<bool> {
        let t = self.blob_access()?;
        Ok(t.contains_key(key(b'V', &[blob.as_bytes()]))
            .map_err(store_err("read blob access"))?
            || t.contains_key(key(b'U', &[blob.as_bytes(), localpart.as_bytes()]))
                .map_err(store_err("read blob access"))?)
    }

    /// The rooms whose messages attach `blob`.
    pub fn blob_rooms(&self, blob: &confab_wire::BlobId) -> Result<Vec<RoomId>> {
        let prefix = key(super::views::P_ATTACHED, &[blob.as_bytes()]);
        let mut out = Vec::new();
        for k in self.data.scan_prefix(&prefix).keys() {
            let k = k.map_err(store_err("scan attachments"))?;
            if let Some(r) = k
                .get(prefix.len()..)
                .and_then(|s| <[u8; 32]>::try_from(s).ok())
            {
                out.push(RoomId(r));
            }
        }
        Ok(out)
    }
}
