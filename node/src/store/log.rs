//! The event log: the store's source of truth.
//!
//! Every stored event is appended once, as it was verified, to a log of
//! segment files (`log/<base position>.seg`, rolled at
//! [`SEGMENT_BYTES`]); sled holds only what is derived from it (where
//! each event sits, its verdict, the indexes) and can be rebuilt from it.
//! A record is written in one `pwrite`; the flusher makes it durable with
//! `fdatasync` before anything that needs it is acknowledged.
//!
//! ```text
//! magic 'e' u8
//! len u32            the whole record
//! head_crc u32       CRC-32 of len, head_len and head
//! head_len u32
//! head               room (32) | signature (64) | header bytes
//! content_state u8   0 none, 1 present, 2 erased
//! content_crc u32    CRC-32 of the content bytes
//! content            the content bytes (zeros once erased)
//! ```
//!
//! The one change made in place: when a deletion is durable, the content
//! of what it deleted is overwritten with zeros (the state byte first in
//! the same write), so the text leaves the disk as the redaction promises.
//! A torn erasure leaves content that fails its checksum, which reads as
//! no content: it was being erased.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bincode::{Decode, Encode};
use confab_wire::event::{MAX_CONTENT_LEN, MAX_HEADER_LEN};
use confab_wire::{RoomId, SignedEvent};

use crate::error::{Error, Result};

/// A segment is closed once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 64 << 20;

const MAGIC: u8 = b'e';
const FIXED: usize = 1 + 4 + 4 + 4;
const HEAD_FIXED: usize = 32 + 64;
const CONTENT_FIXED: usize = 1 + 4;
/// The largest record a valid event makes (checked before allocating).
const RECORD_MAX: usize = FIXED + HEAD_FIXED + MAX_HEADER_LEN + CONTENT_FIXED + MAX_CONTENT_LEN;

const CONTENT_NONE: u8 = 0;
const CONTENT_PRESENT: u8 = 1;
const CONTENT_ERASED: u8 = 2;

/// Where a record sits in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Loc {
    /// Its first byte's position (segment base + offset).
    pub pos: u64,
    /// Its length.
    pub len: u32,
}

impl Loc {
    /// The position just after it.
    pub fn end(&self) -> u64 {
        self.pos + u64::from(self.len)
    }
}

/// One record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The room of the event.
    pub room: RoomId,
    /// The event, its content `None` if it had none or it was erased.
    pub signed: SignedEvent,
}

#[derive(Debug, Default)]
struct Segments {
    files: BTreeMap<u64, Arc<File>>,
    /// The next record's position.
    end: u64,
    /// Segments written since their last sync.
    dirty: BTreeSet<u64>,
    /// Content to erase once the log is durable past `after`.
    erase: Vec<(u64, Loc)>,
    /// Content that reads as erased already (scheduled or done).
    erasing: HashSet<Loc>,
}

/// How far index writes have been applied.
#[derive(Debug, Default)]
struct Applied {
    end: u64,
    /// The first record whose index write failed, if any.
    unindexed: Option<u64>,
}

/// The log of one store.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    segments: Mutex<Segments>,
    /// Taken across a commit's append and index write; holds the position
    /// below which every record's index write has been applied.
    commits: Mutex<Applied>,
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::Log {
        what,
        detail: e.to_string(),
    }
}

fn corrupt(detail: impl Into<String>) -> Error {
    Error::Corrupt {
        what: "event log",
        detail: detail.into(),
    }
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

/// Encodes one record.
fn encode_record(room: &RoomId, ev: &SignedEvent, out: &mut Vec<u8>) {
    let start = out.len();
    let head_len = HEAD_FIXED + ev.header.len();
    let content = ev.content.as_deref().unwrap_or(&[]);
    let len = FIXED + head_len + CONTENT_FIXED + content.len();
    out.push(MAGIC);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(head_len as u32).to_be_bytes());
    out.extend_from_slice(room.as_bytes());
    out.extend_from_slice(&ev.signature);
    out.extend_from_slice(&ev.header);
    let head_crc = head_checksum(&out[start + 1..start + 5], &out[start + 9..]);
    out[start + 5..start + 9].copy_from_slice(&head_crc.to_be_bytes());
    out.push(if ev.content.is_some() {
        CONTENT_PRESENT
    } else {
        CONTENT_NONE
    });
    out.extend_from_slice(&crc32fast::hash(content).to_be_bytes());
    out.extend_from_slice(content);
}

fn head_checksum(len: &[u8], head_len_and_head: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(head_len_and_head);
    h.finalize()
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The length a record says it has, if its fixed part is sane.
fn record_len(fixed: &[u8]) -> Option<usize> {
    if fixed.first() != Some(&MAGIC) {
        return None;
    }
    let len = be32(fixed, 1)? as usize;
    (FIXED + HEAD_FIXED + CONTENT_FIXED..=RECORD_MAX)
        .contains(&len)
        .then_some(len)
}

/// Decodes a whole record; `None` if it is torn or damaged in its head.
fn decode_record(b: &[u8]) -> Option<Record> {
    let len = record_len(b)?;
    if b.len() != len {
        return None;
    }
    let head_crc = be32(b, 5)?;
    let head_len = be32(b, 9)? as usize;
    let head_end = FIXED.checked_add(head_len)?;
    if head_len < HEAD_FIXED || head_end + CONTENT_FIXED > len {
        return None;
    }
    if head_checksum(&b[1..5], &b[9..head_end]) != head_crc {
        return None;
    }
    let room = RoomId(b[FIXED..FIXED + 32].try_into().ok()?);
    let signature = b[FIXED + 32..FIXED + 96].try_into().ok()?;
    let header = b[FIXED + 96..head_end].to_vec();
    let state = b[head_end];
    let content_crc = be32(b, head_end + 1)?;
    let content = &b[head_end + CONTENT_FIXED..];
    let content = match state {
        CONTENT_PRESENT if crc32fast::hash(content) == content_crc => Some(content.to_vec()),
        // Erased, or torn while being erased.
        _ => None,
    };
    Some(Record {
        room,
        signed: SignedEvent {
            header,
            signature,
            content,
        },
    })
}

impl Log {
    /// Opens (or creates) the log in `dir`. Validates records from
    /// `checked` (everything before it was made durable and indexed) to the
    /// end and cuts a torn tail; the store then compares the records after
    /// `checked` with its indexes ([`Log::scan_from`]).
    pub fn open(dir: &Path, checked: u64) -> Result<Log> {
        std::fs::create_dir_all(dir).map_err(io("create log directory"))?;
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io("list log"))? {
            let entry = entry.map_err(io("list log"))?;
            let name = entry.file_name();
            let Some(base) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(entry.path())
                .map_err(io("open segment"))?;
            files.insert(base, Arc::new(f));
        }
        let log = Log {
            dir: dir.to_path_buf(),
            segments: Mutex::new(Segments {
                files,
                ..Segments::default()
            }),
            commits: Mutex::new(Applied::default()),
        };
        log.recover(checked)?;
        log.commits.lock().unwrap_or_else(|p| p.into_inner()).end = log.end();
        Ok(log)
    }

    fn lock(&self) -> MutexGuard<'_, Segments> {
        self.segments.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the records from `from` to the end; cuts the log after the
    /// last whole record.
    fn recover(&self, from: u64) -> Result<()> {
        let files: Vec<(u64, Arc<File>)> = {
            let s = self.lock();
            s.files.iter().map(|(b, f)| (*b, f.clone())).collect()
        };
        let Some(&(last_base, _)) = files.last() else {
            if from > 0 {
                return Err(corrupt(format!(
                    "the store indexes {from} bytes of log, but the log is gone"
                )));
            }
            return Ok(());
        };
        let mut end = from;
        for (i, (base, file)) in files.iter().enumerate() {
            let size = file.metadata().map_err(io("size segment"))?.len();
            let next_base = files.get(i + 1).map(|(b, _)| *b);
            if base + size <= from && next_base.is_some() {
                continue;
            }
            let mut at = from.saturating_sub(*base);
            if *base > from {
                if end != *base {
                    return Err(corrupt(format!("a gap before segment {base}")));
                }
                at = 0;
            }
            let torn = loop {
                if at >= size {
                    break false;
                }
                let mut fixed = [0u8; FIXED];
                if at + FIXED as u64 > size {
                    break true;
                }
                file.read_exact_at(&mut fixed, at)
                    .map_err(io("read segment"))?;
                let Some(len) = record_len(&fixed) else {
                    break true;
                };
                if at + len as u64 > size {
                    break true;
                }
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, at)
                    .map_err(io("read segment"))?;
                if decode_record(&buf).is_none() {
                    break true;
                }
                at += len as u64;
            };
            end = base + at;
            if torn || at < size {
                if *base != last_base {
                    return Err(corrupt(format!(
                        "segment {base} is damaged at offset {at}, before the last segment"
                    )));
                }
                // A record cut short by a crash was never acknowledged.
                tracing::warn!(
                    segment = base,
                    offset = at,
                    dropped = size - at,
                    "the event log ends in a torn record; cutting it"
                );
                file.set_len(at).map_err(io("cut torn tail"))?;
                file.sync_data().map_err(io("sync segment"))?;
            }
        }
        self.lock().end = end;
        Ok(())
    }

    /// The position after the last record.
    pub fn end(&self) -> u64 {
        self.lock().end
    }

    /// Appends `records` and calls `index` with where each went and the
    /// log's end, to apply the index writes that point at them; commits
    /// go through here one at a time, so [`Log::applied`] never counts a
    /// record whose index write is still to come.
    pub fn commit(
        &self,
        records: &[(RoomId, &SignedEvent)],
        index: impl FnOnce(&[Loc], u64) -> Result<()>,
    ) -> Result<()> {
        let mut applied = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        let locs = if records.is_empty() {
            Vec::new()
        } else {
            self.append(records)?
        };
        let end = self.end();
        let r = index(&locs, end);
        if r.is_err()
            && let Some(first) = locs.first()
        {
            // Never counted as indexed: the next open judges them again.
            applied.unindexed.get_or_insert(first.pos);
        }
        applied.end = end;
        r
    }

    /// Every record below this position has had its index write applied
    /// (not necessarily durable).
    pub fn applied(&self) -> u64 {
        let a = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        a.unindexed.map_or(a.end, |u| u.min(a.end))
    }

    /// Appends records in one write each segment; returns where each went.
    /// Not durable until [`Log::sync`]. Nothing is appended on an error.
    pub fn append(&self, records: &[(RoomId, &SignedEvent)]) -> Result<Vec<Loc>> {
        let mut s = self.lock();
        let mut locs = Vec::with_capacity(records.len());
        let mut buf = Vec::new();
        let mut end = s.end;
        let (mut base, mut file) = self.active(&mut s, end)?;
        let mut written = Vec::new();
        for (room, ev) in records {
            let before = buf.len();
            encode_record(room, ev, &mut buf);
            let len = (buf.len() - before) as u64;
            if end + len - base > SEGMENT_BYTES && end > base {
                // Roll: what is buffered goes to the old segment.
                let rec = buf.split_off(before);
                file.write_all_at(&buf, end - buf.len() as u64 - base)
                    .map_err(io("append"))?;
                written.push(base);
                buf = rec;
                base = end;
                file = self.create_segment(&mut s, base)?;
            }
            locs.push(Loc {
                pos: end,
                len: len as u32,
            });
            end += len;
        }
        let start = end - buf.len() as u64;
        file.write_all_at(&buf, start - base)
            .map_err(io("append"))?;
        written.push(base);
        s.dirty.extend(written);
        s.end = end;
        Ok(locs)
    }

    /// The segment that takes writes at `end`.
    fn active(&self, s: &mut Segments, end: u64) -> Result<(u64, Arc<File>)> {
        match s.files.range(..=end).next_back() {
            Some((b, f)) => Ok((*b, f.clone())),
            None => Ok((end, self.create_segment(s, end)?)),
        }
    }

    fn create_segment(&self, s: &mut Segments, base: u64) -> Result<Arc<File>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(segment_path(&self.dir, base))
            .map_err(io("create segment"))?;
        // The new name must survive a crash with the data.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync log directory"))?;
        let f = Arc::new(f);
        s.files.insert(base, f.clone());
        Ok(f)
    }

    /// Reads the record at `loc`.
    pub fn read(&self, loc: Loc) -> Result<Record> {
        let (file, base, erasing) = {
            let s = self.lock();
            let (base, f) = s
                .files
                .range(..=loc.pos)
                .next_back()
                .ok_or_else(|| corrupt(format!("no segment holds position {}", loc.pos)))?;
            (f.clone(), *base, s.erasing.contains(&loc))
        };
        if loc.len as usize > RECORD_MAX {
            return Err(corrupt("a location longer than any record"));
        }
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.pos - base)
            .map_err(io("read record"))?;
        let mut rec = decode_record(&buf)
            .ok_or_else(|| corrupt(format!("the record at {} is damaged", loc.pos)))?;
        if erasing {
            rec.signed.content = None;
        }
        Ok(rec)
    }

    /// Erases the content at `loc` once the log is durable past `after`
    /// (the deletion that asks for it); it reads as gone at once.
    pub fn erase_after(&self, loc: Loc, after: u64) {
        let mut s = self.lock();
        if s.erasing.insert(loc) {
            s.erase.push((after, loc));
        }
    }

    /// Makes every record appended so far durable (`fdatasync` of each
    /// segment written since the last sync); returns the end it covers.
    pub fn sync(&self) -> Result<u64> {
        let (end, files) = {
            let mut s = self.lock();
            let dirty = std::mem::take(&mut s.dirty);
            let files: Vec<Arc<File>> = dirty
                .iter()
                .filter_map(|b| s.files.get(b).cloned())
                .collect();
            (s.end, files)
        };
        for f in files {
            f.sync_data().map_err(io("sync segment"))?;
        }
        Ok(end)
    }

    /// Erases the content whose deletions are durable (`durable` from
    /// [`Log::sync`]); returns the locations erased. The erasures become
    /// durable with the next sync.
    pub fn erase_due(&self, durable: u64) -> Result<Vec<Loc>> {
        let due: Vec<Loc> = {
            let mut s = self.lock();
            let (due, keep): (Vec<_>, Vec<_>) = s.erase.drain(..).partition(|(a, _)| *a <= durable);
            s.erase = keep;
            due.into_iter().map(|(_, l)| l).collect()
        };
        for loc in &due {
            self.erase_now(*loc)?;
        }
        Ok(due)
    }

    /// Overwrites the content at `loc` with zeros, state byte first.
    pub fn erase_now(&self, loc: Loc) -> Result<()> {
        let (file, base) = {
            let s = self.lock();
            let Some((base, f)) = s.files.range(..=loc.pos).next_back() else {
                return Ok(());
            };
            (f.clone(), *base)
        };
        let mut head = [0u8; FIXED];
        file.read_exact_at(&mut head, loc.pos - base)
            .map_err(io("read record"))?;
        let head_len = be32(&head, 9).unwrap_or(0) as u64;
        let Some(len) = record_len(&head) else {
            return Err(corrupt(format!("no record to erase at {}", loc.pos)));
        };
        let content_at = FIXED as u64 + head_len;
        if len as u64 != u64::from(loc.len) || content_at + CONTENT_FIXED as u64 > len as u64 {
            return Err(corrupt(format!("no record to erase at {}", loc.pos)));
        }
        let mut blank = vec![0u8; len - content_at as usize];
        blank[0] = CONTENT_ERASED;
        file.write_all_at(&blank, loc.pos - base + content_at)
            .map_err(io("erase content"))?;
        self.lock().dirty.insert(base);
        Ok(())
    }

    /// Every segment's base and length, for a backup or a check.
    pub fn segments(&self) -> Result<Vec<(u64, u64)>> {
        let s = self.lock();
        s.files
            .iter()
            .map(|(b, f)| Ok((*b, f.metadata().map_err(io("size segment"))?.len())))
            .collect()
    }

    /// Reads every record in order from the start (a rebuild or a check).
    pub fn scan(&self, f: impl FnMut(Loc, Record) -> Result<()>) -> Result<()> {
        self.scan_from(0, f)
    }

    /// Reads every record in order from position `from` (a record's start).
    pub fn scan_from(&self, from: u64, f: impl FnMut(Loc, Record) -> Result<()>) -> Result<()> {
        let end = self.end();
        self.scan_between(from, end, f)
    }

    /// Reads every record that ends at or before `to`, in order.
    pub fn scan_until(&self, to: u64, f: impl FnMut(Loc, Record) -> Result<()>) -> Result<()> {
        self.scan_between(0, to.min(self.end()), f)
    }

    fn scan_between(
        &self,
        from: u64,
        end: u64,
        mut f: impl FnMut(Loc, Record) -> Result<()>,
    ) -> Result<()> {
        let first = self.lock().files.keys().next().copied().unwrap_or(0);
        let mut pos = from.max(first);
        while pos < end {
            let (file, base) = {
                let s = self.lock();
                let Some((b, f)) = s.files.range(..=pos).next_back() else {
                    break;
                };
                (f.clone(), *b)
            };
            let mut fixed = [0u8; FIXED];
            file.read_exact_at(&mut fixed, pos - base)
                .map_err(io("read segment"))?;
            let Some(len) = record_len(&fixed) else {
                // The rest of a rolled segment is empty: the next one starts.
                match self.lock().files.range(pos + 1..).next() {
                    Some((b, _)) => {
                        pos = *b;
                        continue;
                    }
                    None => return Err(corrupt(format!("no record at {pos}"))),
                }
            };
            let loc = Loc {
                pos,
                len: len as u32,
            };
            f(loc, self.read(loc)?)?;
            pos += len as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u8, content: Option<Vec<u8>>) -> SignedEvent {
        SignedEvent {
            header: vec![n; 40 + n as usize],
            signature: [n; 64],
            content,
        }
    }

    fn tail(log: &Log, from: u64) -> Vec<(Loc, Record)> {
        let mut out = Vec::new();
        log.scan_from(from, |l, r| {
            out.push((l, r));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn records_come_back_after_a_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let room = RoomId([7; 32]);
        let log = Log::open(dir.path(), 0).unwrap();
        assert!(tail(&log, 0).is_empty());
        let a = event(1, Some(b"hello".to_vec()));
        let b = event(2, None);
        let locs = log.append(&[(room, &a), (room, &b)]).unwrap();
        assert_eq!(log.read(locs[0]).unwrap().signed, a);
        assert_eq!(log.read(locs[1]).unwrap().signed, b);
        log.sync().unwrap();
        let end = log.end();
        drop(log);
        // Half a record after the last whole one, as a crash leaves it.
        let seg = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&seg).unwrap();
        let mut extra = Vec::new();
        encode_record(&room, &event(3, Some(vec![9; 100])), &mut extra);
        bytes.extend_from_slice(&extra[..extra.len() / 2]);
        std::fs::write(&seg, &bytes).unwrap();
        let log = Log::open(dir.path(), 0).unwrap();
        assert_eq!(log.end(), end);
        let all = tail(&log, 0);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1.signed, a);
        drop(log);
        let log = Log::open(dir.path(), locs[1].pos).unwrap();
        let last = tail(&log, locs[1].pos);
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].1.signed, b);
    }

    #[test]
    fn erased_content_is_gone_from_the_file_and_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let room = RoomId([7; 32]);
        let log = Log::open(dir.path(), 0).unwrap();
        let secret = b"the secret text".to_vec();
        let a = event(1, Some(secret.clone()));
        let loc = log.append(&[(room, &a)]).unwrap()[0];
        log.erase_after(loc, loc.end() + 1);
        assert_eq!(log.read(loc).unwrap().signed.content, None);
        // Not yet durable past the deletion: nothing erased on disk.
        assert!(log.erase_due(loc.end()).unwrap().is_empty());
        assert_eq!(log.erase_due(loc.end() + 1).unwrap(), vec![loc]);
        log.sync().unwrap();
        let bytes = std::fs::read(segment_path(dir.path(), 0)).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()));
        let log = Log::open(dir.path(), 0).unwrap();
        assert_eq!(tail(&log, 0).len(), 1);
        let back = log.read(loc).unwrap().signed;
        assert_eq!(back.content, None);
        assert_eq!(back.header, a.header);
    }

    #[test]
    fn segments_roll_and_scan_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let room = RoomId([1; 32]);
        let log = Log::open(dir.path(), 0).unwrap();
        let big = event(5, Some(vec![3; MAX_CONTENT_LEN]));
        let per = (SEGMENT_BYTES / 61_000) as usize + 3;
        let mut all = Vec::new();
        for _ in 0..per {
            all.extend(log.append(&[(room, &big)]).unwrap());
        }
        assert!(log.segments().unwrap().len() >= 2);
        let mut seen = Vec::new();
        log.scan(|loc, rec| {
            assert_eq!(rec.signed, big);
            seen.push(loc);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, all);
        log.sync().unwrap();
        drop(log);
        let log = Log::open(dir.path(), 0).unwrap();
        assert_eq!(tail(&log, 0).len(), all.len());
        assert_eq!(log.read(all[per - 1]).unwrap().signed, big);
    }

    #[test]
    fn damage_reads_as_an_error_not_a_panic() {
        for cut in [0usize, 1, 5, 9, 13, 40, 100, 150] {
            let room = RoomId([1; 32]);
            let mut buf = Vec::new();
            encode_record(&room, &event(2, Some(vec![1; 50])), &mut buf);
            let mut short = buf.clone();
            short.truncate(cut.min(buf.len()));
            assert!(decode_record(&short).is_none() || cut >= buf.len());
            let mut flipped = buf.clone();
            if let Some(b) = flipped.get_mut(cut) {
                *b ^= 0x40;
            }
            // A flip in the head is refused; in the content it reads as none.
            if let Some(r) = decode_record(&flipped) {
                assert!(r.signed.content.is_none() || flipped == buf);
            }
        }
    }
}
