//! Bringing the index level with the log when the store opens.
//!
//! The log is written before the index, and made durable before sled's
//! flush records how far both go (`log_checked`). So after a crash the
//! index may lack the last records of the log (their events are judged
//! again, in log order, which is the order they were judged in), and
//! deletions may be durable whose erasures were not done (the `X` intents
//! say which). A room whose index points past the end of the log means
//! writes reached the disk out of order (a power loss): the store says so
//! rather than open a room it cannot trust.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use confab_wire::RoomId;

use super::log::{Loc, Record};
use super::{
    Body, INLINE, P_ERASE, P_EVENT, P_HOT, Room, Store, decode, history, key, migrate, store_err,
};
use crate::engine::Hot;

/// Events replayed between commits.
const REPLAY_BATCH: usize = 4096;
use crate::error::{Error, Result};

/// What [`Store::check_log`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogCheck {
    /// Records in the log.
    pub records: u64,
    /// Records whose event the index does not hold.
    pub unindexed: u64,
    /// Index records that point at no whole record of the log.
    pub dangling: u64,
}

impl LogCheck {
    /// True if the index and the log agree.
    pub fn agrees(&self) -> bool {
        self.unindexed == 0 && self.dangling == 0
    }
}

impl Store {
    /// Reads the whole log and the event index and says where they
    /// disagree (a check after a crash, and for tests).
    pub fn check_log(&self) -> Result<LogCheck> {
        let mut check = LogCheck::default();
        let mut at = std::collections::HashSet::new();
        self.log.scan(|loc, rec| {
            check.records += 1;
            at.insert(loc);
            let id = confab_wire::sign::event_id(&rec.signed.header);
            if history::read_record(&self.data, &id)?.is_none() {
                check.unindexed += 1;
            }
            Ok(())
        })?;
        for item in self.data.scan_prefix([P_EVENT]) {
            let (_, v) = item.map_err(store_err("read event record"))?;
            let rec: super::EventRecord = decode("event record", &v)?;
            if let Body::Logged(loc) = rec.body
                && !at.contains(&loc)
            {
                check.dangling += 1;
            }
        }
        Ok(check)
    }

    /// Runs once in [`Store::open`], before anything reads the store.
    pub(super) fn recover(&self, checked: u64) -> Result<()> {
        if self
            .meta
            .get(INLINE)
            .map_err(store_err("read flags"))?
            .is_some()
        {
            migrate::relocate_inline(&self.data, &self.meta, &self.log)?;
        }
        self.finish_erasures()?;
        self.check_rooms_within_log()?;
        self.replay(checked)?;
        self.rederive_search()
    }

    /// Erases the content of deletions recorded durable whose erasure may
    /// not have reached the disk.
    fn finish_erasures(&self) -> Result<()> {
        let mut done = Vec::new();
        for k in self.data.scan_prefix([P_ERASE]).keys() {
            let k = k.map_err(store_err("scan erasures"))?;
            let (Some(pos), Some(len)) = (
                k.get(1..9).and_then(|b| b.try_into().ok()),
                k.get(9..13).and_then(|b| b.try_into().ok()),
            ) else {
                continue;
            };
            let loc = Loc {
                pos: u64::from_be_bytes(pos),
                len: u32::from_be_bytes(len),
            };
            if loc.end() <= self.log.end() {
                self.log.erase_now(loc)?;
            }
            done.push(k);
        }
        if done.is_empty() {
            return Ok(());
        }
        self.log.sync()?;
        for k in done {
            self.data.remove(k).map_err(store_err("clear erasure"))?;
        }
        Ok(())
    }

    /// Refuses to open a room whose latest events the log does not hold.
    fn check_rooms_within_log(&self) -> Result<()> {
        let end = self.log.end();
        for item in self.data.scan_prefix([P_HOT]) {
            let (k, v) = item.map_err(store_err("read room"))?;
            // A damaged room fails when it is opened, not the whole store.
            let Ok(hot) = decode::<Hot>("room hot state", &v) else {
                continue;
            };
            for head in &hot.heads {
                let Some(rec) = history::read_record(&self.data, head)? else {
                    continue;
                };
                if let Body::Logged(loc) = rec.body
                    && loc.end() > end
                {
                    let room = k.get(1..33).map(hex::encode).unwrap_or_default();
                    return Err(Error::Corrupt {
                        what: "event log",
                        detail: format!(
                            "room {room} is indexed up to position {} but the log ends at \
                             {end}: writes reached the disk out of order; restore the \
                             store from a backup (the node then catches up from its peers)",
                            loc.end()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Judges again the events of the log after `from` that the index
    /// lacks (all of them after a restore), committing as it goes.
    fn replay(&self, from: u64) -> Result<()> {
        let mut rooms: HashMap<RoomId, Room> = HashMap::new();
        let mut replayed = 0u64;
        let mut pending = 0usize;
        self.log.scan_from(from, |loc, rec| {
            if self.replay_one(&mut rooms, loc, rec)? {
                replayed += 1;
                pending += 1;
            }
            if pending >= REPLAY_BATCH {
                for room in rooms.values_mut() {
                    room.commit()?;
                }
                pending = 0;
            }
            Ok(())
        })?;
        for room in rooms.values_mut() {
            room.commit()?;
        }
        if replayed > 0 {
            tracing::info!(
                events = replayed,
                "indexed the events the log held beyond the index"
            );
            self.wait_durable()?;
        }
        Ok(())
    }

    /// Judges one logged event again if the index lacks it; true if it did.
    fn replay_one(&self, rooms: &mut HashMap<RoomId, Room>, loc: Loc, rec: Record) -> Result<bool> {
        let ev = match rec.signed.verify() {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(position = loc.pos, error = %e, "a log record does not verify; skipped");
                return Ok(false);
            }
        };
        if ev.room() != rec.room {
            tracing::warn!(
                position = loc.pos,
                "a log record names another room; skipped"
            );
            return Ok(false);
        }
        let indexed = self
            .data
            .contains_key(key(P_EVENT, &[ev.id().as_bytes()]))
            .map_err(store_err("read event"))?;
        if indexed {
            return Ok(false);
        }
        let room = match rooms.entry(rec.room) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => match self.open_room(&rec.room)? {
                Some(r) => v.insert(r),
                None => {
                    match self.create_room_at(&ev, Some(loc)) {
                        Ok(r) => {
                            v.insert(r);
                            return Ok(true);
                        }
                        Err(e) => {
                            tracing::warn!(position = loc.pos, error = %e, "a logged event of a room not held; skipped");
                        }
                    }
                    return Ok(false);
                }
            },
        };
        room.logged.insert(ev.id(), loc);
        // Judged as when it came: no event waits for its time again.
        match room.submit(&ev, u64::MAX)? {
            Ok(_) => Ok(true),
            Err(refusal) => {
                room.logged.remove(&ev.id());
                tracing::warn!(position = loc.pos, %refusal, "a logged event was refused on replay");
                Ok(false)
            }
        }
    }
}
