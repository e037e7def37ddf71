//! Full-text search: posting blocks in sled, written per window of
//! commits, not per commit.
//!
//! A message holds some 25 distinct words and every sled key costs
//! microseconds to write, so postings gather in memory ([`SearchBuffer`])
//! until [`SEARCH_WINDOW`] of them wait; the window is then sealed and the
//! flusher writes one block per (term, room) for it. Searches read the
//! blocks and the windows still in memory. What a crash loses of the
//! buffer is derived again from the log when the store opens (from
//! `search_through`, the log position every written window covers), and
//! a posting too many is harmless: every hit is checked against the
//! message's current text.
//!
//! | key                                    | value               |
//! |----------------------------------------|---------------------|
//! | `W` term 0x00 max_ts(BE) first_event   | room, [(ts, event)] |

use std::collections::{BTreeMap, BinaryHeap};
use std::sync::{Arc, Mutex, MutexGuard};

use confab_wire::event::{Content, EventKind};
use confab_wire::{EventId, RoomId};

use super::views::P_WORD;
use super::{Store, key, store_err};
use crate::error::Result;

/// Most distinct search terms indexed per message.
pub const MAX_TERMS_PER_MESSAGE: usize = 256;
/// Most indexed words one search term is taken to begin (a search for
/// "c" does not read the postings of every word in c).
pub const PREFIX_TERMS_MAX: usize = 64;
/// Postings gathered in memory before they are written as one window.
pub const SEARCH_WINDOW: usize = 65_536;

/// Meta key: the log position below which every posting is in sled.
pub(crate) const SEARCH_THROUGH: &[u8] = b"search_through";

/// Splits text into lowercase search terms (2 to 32 bytes of letters and
/// digits), each once.
pub fn terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| (2..=32).contains(&w.len()))
        .map(str::to_lowercase)
        .collect();
    out.sort();
    out.dedup();
    out.truncate(MAX_TERMS_PER_MESSAGE);
    out
}

/// Postings of one room's commit: term → (ts, message).
pub(crate) type Postings = BTreeMap<String, Vec<(u64, EventId)>>;

/// Adds the terms of `body` (the text of `message` at `ts`, or of an edit
/// of it).
pub(crate) fn collect(body: &str, ts: u64, message: EventId, postings: &mut Postings) {
    for t in terms(body) {
        postings.entry(t).or_default().push((ts, message));
    }
}

/// Postings by (term, room).
type Window = BTreeMap<(String, RoomId), Vec<(u64, EventId)>>;

/// A window handed to the flusher: its postings and the log position
/// below which it holds every posting not written before.
#[derive(Debug)]
pub(crate) struct Sealed {
    postings: Window,
    through: u64,
}

/// The postings not yet written to sled.
#[derive(Debug, Default)]
pub(crate) struct SearchBuffer {
    live: Window,
    entries: usize,
    sealed: Vec<Arc<Sealed>>,
}

/// The buffer, shared by the store's clones, its rooms and the flusher.
pub(crate) type SharedSearch = Arc<Mutex<SearchBuffer>>;

fn lock(s: &SharedSearch) -> MutexGuard<'_, SearchBuffer> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Adds a commit's postings, made with the log at `end`; seals the window
/// once it is full. Returns true if a sealed window waits for a flush.
pub(crate) fn add(search: &SharedSearch, room: RoomId, postings: Postings, end: u64) -> bool {
    let mut b = lock(search);
    for (term, entries) in postings {
        b.entries += entries.len();
        b.live.entry((term, room)).or_default().extend(entries);
    }
    if b.entries >= SEARCH_WINDOW {
        let postings = std::mem::take(&mut b.live);
        b.entries = 0;
        b.sealed.push(Arc::new(Sealed {
            postings,
            through: end,
        }));
    }
    !b.sealed.is_empty()
}

/// Forgets what is gathered, as a crash would (tests).
#[cfg(test)]
pub(crate) fn lose_for_test(search: &SharedSearch) {
    let mut b = lock(search);
    b.live.clear();
    b.entries = 0;
}

/// Seals what is gathered, however little (the store is closing).
pub(crate) fn seal_all(search: &SharedSearch, end: u64) {
    let mut b = lock(search);
    if b.live.is_empty() {
        return;
    }
    let postings = std::mem::take(&mut b.live);
    b.entries = 0;
    b.sealed.push(Arc::new(Sealed {
        postings,
        through: end,
    }));
}

/// The windows sealed so far, for the flusher to write.
pub(crate) fn sealed(search: &SharedSearch) -> Vec<Arc<Sealed>> {
    lock(search).sealed.clone()
}

/// Writes sealed windows as blocks (plain inserts: a block too many is
/// harmless) and records how far they cover; durable with the flush that
/// follows. Call [`forget`] after that flush.
pub(crate) fn write(windows: &[Arc<Sealed>], data: &sled::Tree, meta: &sled::Tree) -> Result<()> {
    let Some(through) = windows.iter().map(|w| w.through).max() else {
        return Ok(());
    };
    for w in windows {
        for ((term, room), entries) in &w.postings {
            let mut entries = entries.clone();
            entries.sort_unstable_by(|a, b| b.cmp(a));
            let Some(&(max_ts, first)) = entries.first() else {
                continue;
            };
            let k = key(
                P_WORD,
                &[
                    term.as_bytes(),
                    &[0],
                    &max_ts.to_be_bytes(),
                    first.as_bytes(),
                ],
            );
            let block = (room.0, entries);
            data.insert(k, super::encode("posting block", &block)?)
                .map_err(store_err("write posting block"))?;
        }
    }
    meta.insert(SEARCH_THROUGH, &through.to_be_bytes())
        .map_err(store_err("write search mark"))?;
    Ok(())
}

/// Drops windows now durable in sled.
pub(crate) fn forget(search: &SharedSearch, written: &[Arc<Sealed>]) {
    lock(search)
        .sealed
        .retain(|w| !written.iter().any(|x| Arc::ptr_eq(w, x)));
}

impl Store {
    /// Gathers again the postings of the log after `search_through` (a
    /// crash lost the buffer that held them).
    pub(super) fn rederive_search(&self) -> Result<()> {
        let from = match self
            .meta
            .get(SEARCH_THROUGH)
            .map_err(store_err("read search mark"))?
        {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                crate::error::Error::Corrupt {
                    what: "search mark",
                    detail: "not 8 bytes".into(),
                }
            })?),
            None => 0,
        };
        let mut by_room: BTreeMap<RoomId, Postings> = BTreeMap::new();
        self.log.scan_from(from, |_, rec| {
            let Ok(h) = rec.signed.decode_header() else {
                return Ok(());
            };
            let Some(bytes) = rec.signed.content.as_deref() else {
                return Ok(());
            };
            let id = confab_wire::sign::event_id(&rec.signed.header);
            let postings = by_room.entry(rec.room).or_default();
            match (&h.kind, Content::decode_for(&h.kind, bytes)) {
                (EventKind::Message, Ok(Content::Message(m))) => {
                    collect(&m.body, h.ts, id, postings);
                }
                (EventKind::Edit { target }, Ok(Content::Edit(e))) => {
                    collect(&e.body, h.ts, *target, postings);
                }
                _ => {}
            }
            Ok(())
        })?;
        let end = self.log.end();
        for (room, postings) in by_room {
            add(&self.search, room, postings, end);
        }
        Ok(())
    }

    /// Full-text search: messages whose current text has, for every term
    /// of `query`, a word it begins ("check" finds "checklist"), newest
    /// first (by ts, then id), in `rooms` (all rooms if `None`), after the
    /// cursor `before` = (ts, id) of the last result already seen (the id
    /// too, as several messages can share a ts). Deleted messages and
    /// words removed by an edit are never found. The longest query term
    /// picks the candidates: the postings of at most
    /// [`PREFIX_TERMS_MAX`] words that begin with it.
    pub fn search(
        &self,
        rooms: Option<&[RoomId]>,
        query: &str,
        before: Option<(u64, EventId)>,
        limit: usize,
    ) -> Result<Vec<EventId>> {
        let words = terms(query);
        let Some(driver) = words.iter().max_by_key(|w| w.len()) else {
            return Ok(Vec::new());
        };
        // Each word that begins with the driver has its blocks, newest
        // first by their newest entry (ts, id); entries of an older block
        // may still be newer than some of a newer one, so merge through a
        // heap and emit only what no unread block can beat. Order and
        // cursor are (ts, id), so that results of one ts page exactly too.
        // Postings still in memory join the heap at once.
        let mut blocks: Vec<(usize, std::iter::Peekable<std::iter::Rev<sled::Iter>>)> = self
            .words_beginning(driver)?
            .into_iter()
            .map(|w| {
                let prefix = key(P_WORD, &[w.as_bytes(), &[0]]);
                (
                    prefix.len(),
                    self.data.scan_prefix(&prefix).rev().peekable(),
                )
            })
            .collect();
        let mut heap: BinaryHeap<(u64, EventId, RoomId)> = BinaryHeap::new();
        {
            let b = lock(&self.search);
            let windows = std::iter::once(&b.live).chain(b.sealed.iter().map(|w| &w.postings));
            for w in windows {
                let from = (driver.clone(), RoomId([0; 32]));
                for ((term, room), entries) in w.range(from..) {
                    if !term.starts_with(driver.as_str()) {
                        break;
                    }
                    for &(ts, id) in entries {
                        if before.is_none_or(|b| (ts, id) < b) {
                            heap.push((ts, id, *room));
                        }
                    }
                }
            }
        }
        let newest = |k: &[u8], at: usize| -> (u64, EventId) {
            (
                k.get(at..at + 8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_be_bytes),
                k.get(at + 8..at + 40)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .map_or(EventId([0; 32]), EventId),
            )
        };
        let mut out: Vec<EventId> = Vec::new();
        loop {
            for (_, it) in blocks.iter_mut() {
                if matches!(it.peek(), Some(Err(_)))
                    && let Some(Err(e)) = it.next()
                {
                    return Err(store_err("scan search index")(e));
                }
            }
            // The word whose next block has the newest entry; `None` once
            // all are read.
            let next: Option<(usize, (u64, EventId))> = blocks
                .iter_mut()
                .enumerate()
                .filter_map(|(i, (at, it))| match it.peek() {
                    Some(Ok((k, _))) => Some((i, newest(k, *at))),
                    _ => None,
                })
                .max_by_key(|(_, n)| *n);
            let next_max = next.map(|(_, n)| n);
            while heap
                .peek()
                .is_some_and(|(ts, id, _)| next_max.is_none_or(|n| (*ts, *id) >= n))
            {
                let Some((_, id, room)) = heap.pop() else {
                    break;
                };
                if out.contains(&id) {
                    continue;
                }
                if let Some(rooms) = rooms
                    && !rooms.contains(&room)
                {
                    continue;
                }
                // Check against the text as it is now (edits, deletions).
                let Some(view) = self.message_view(&id)? else {
                    continue;
                };
                let Some(body) = &view.body else {
                    continue;
                };
                let now = terms(body);
                if words.iter().all(|w| begins_a_word(&now, w)) {
                    out.push(id);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
            let Some((i, _)) = next else {
                break;
            };
            let Some(block) = blocks[i].1.next() else {
                continue;
            };
            let (_, value) = block.map_err(store_err("scan search index"))?;
            let (room, entries): ([u8; 32], Vec<(u64, EventId)>) =
                super::decode("posting block", &value)?;
            for (ts, id) in entries {
                if before.is_none_or(|b| (ts, id) < b) {
                    heap.push((ts, id, RoomId(room)));
                }
            }
        }
        Ok(out)
    }

    /// The indexed words that begin with `prefix`, at most
    /// [`PREFIX_TERMS_MAX`], the word itself first if indexed.
    fn words_beginning(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut from = key(P_WORD, &[prefix.as_bytes()]);
        let scope = from.clone();
        while out.len() < PREFIX_TERMS_MAX {
            let Some(item) = self.data.range(from.clone()..).next() else {
                break;
            };
            let (k, _) = item.map_err(store_err("scan search index"))?;
            if !k.starts_with(&scope) {
                break;
            }
            let Some(end) = k.iter().skip(1).position(|b| *b == 0) else {
                break;
            };
            let word = String::from_utf8_lossy(&k[1..1 + end]).into_owned();
            // Past every block of this word: its name, then 0x01.
            from = key(P_WORD, &[word.as_bytes(), &[1]]);
            out.push(word);
        }
        Ok(out)
    }
}

/// True if some word of `sorted` (sorted, as [`terms`] gives them) begins
/// with `w`.
fn begins_a_word(sorted: &[String], w: &str) -> bool {
    let i = sorted.partition_point(|t| t.as_str() < w);
    sorted.get(i).is_some_and(|t| t.starts_with(w))
}
