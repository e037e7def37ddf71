//! Unread and mention counts per user and room, kept in memory so that a
//! new message updates every member's summary in constant time instead of
//! a scan from each one's read position. An entry is recomputed from the
//! store when it is missing, older than [`COUNTS_TTL_MS`], or invalidated
//! (the user read; a message was deleted).

use std::collections::HashMap;

use confab_wire::{EventId, RoomId, UserId};

use super::{ClientService, lock};
use crate::store::views::UNREAD_CAP;

/// Counts older than this are recomputed from the store.
pub const COUNTS_TTL_MS: u64 = 30_000;

#[derive(Debug, Clone, Copy)]
pub(super) struct Counts {
    unread: u32,
    mentions: u32,
    at: u64,
}

/// room → user → counts.
pub(super) type CountCache = HashMap<RoomId, HashMap<UserId, Counts>>;

impl ClientService {
    /// The user's unread and mention counts in the room.
    pub(super) fn counts(&self, room: &RoomId, user: &UserId) -> (u32, u32) {
        let now = crate::local::now_ms();
        if let Some(c) = lock(&self.inner.counts)
            .get(room)
            .and_then(|m| m.get(user))
            .filter(|c| now.saturating_sub(c.at) < COUNTS_TTL_MS)
        {
            return (c.unread, c.mentions);
        }
        let store = &self.inner.store;
        let unread = store.unread(room, user).unwrap_or(0);
        let mentions = if unread > 0 {
            store.unread_mentions(room, user, UNREAD_CAP).unwrap_or(0)
        } else {
            0
        };
        lock(&self.inner.counts).entry(*room).or_default().insert(
            user.clone(),
            Counts {
                unread,
                mentions,
                at: now,
            },
        );
        (unread, mentions)
    }

    /// An accepted message `id` at `depth` by `author`, mentioning
    /// `mentions`: one more unread for every counted member who had read
    /// up to an earlier place.
    pub(super) fn count_message(
        &self,
        room: &RoomId,
        id: &EventId,
        depth: u64,
        author: &UserId,
        mentions: &[UserId],
    ) {
        let users: Vec<UserId> = match lock(&self.inner.counts).get(room) {
            Some(m) => m.keys().filter(|u| *u != author).cloned().collect(),
            None => return,
        };
        // Read positions come from the store, outside the lock.
        let after: Vec<(UserId, bool)> = users
            .into_iter()
            .map(|u| {
                let later = match self.inner.store.read_place(room, &u) {
                    Ok(Some(read)) => (depth, *id) > read,
                    Ok(None) => true,
                    Err(_) => true,
                };
                (u, later)
            })
            .collect();
        let mut counts = lock(&self.inner.counts);
        let Some(m) = counts.get_mut(room) else {
            return;
        };
        for (u, later) in after {
            if let Some(c) = m.get_mut(&u)
                && later
            {
                c.unread = (c.unread + 1).min(UNREAD_CAP);
                if mentions.contains(&u) {
                    c.mentions = (c.mentions + 1).min(UNREAD_CAP);
                }
            }
        }
    }

    /// Forgets counts so they are recomputed: one user's (they read) or
    /// the whole room's (a message was deleted).
    pub(super) fn forget_counts(&self, room: &RoomId, user: Option<&UserId>) {
        let mut counts = lock(&self.inner.counts);
        match user {
            Some(u) => {
                if let Some(m) = counts.get_mut(room) {
                    m.remove(u);
                }
            }
            None => {
                counts.remove(room);
            }
        }
    }
}
