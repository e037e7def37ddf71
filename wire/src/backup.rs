//! The backup file format, sans-IO: a writer that turns a store's trees
//! into bytes and a reader that checks them, fed arbitrary chunks.
//!
//! ```text
//! magic "CONFABBK", format u16 (BE)
//! record*: type u8, length u32 (BE), body
//!   0x01 header   bincode BackupHeader              (first, once)
//!   0x02 file     bincode (name, bytes)             (only names in FILES)
//!   0x03 tree     bincode name                      (entries follow)
//!   0x04 entry    key length u32 (BE), key, value
//!   0x06 event    bincode (room, SignedEvent): the event log, in order
//!                 (format 2; the node derives its indexes from them)
//!   0x05 end      entries u64 (BE), SHA-256 of every byte before this record
//! ```
//!
//! The end record counts entries and events together. Format 1 (trees
//! only, each event inside its index record) is still read.
//!
//! The reader checks each record's length against [`RECORD_MAX`] before
//! buffering it, the order of records, the entry count and the checksum;
//! anything after the end record, or a stream that stops before it, is an
//! error. A file that verifies holds exactly what the writer was given.

use bincode::{Decode, Encode};
use sha2::{Digest, Sha256};

use crate::codec;
use crate::error::{Error, Result};
use crate::{NodeId, RoomId, SignedEvent};

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"CONFABBK";
/// The format version written here.
pub const FORMAT: u16 = 2;
/// The oldest format still read.
pub const FORMAT_MIN: u16 = 1;
/// Largest record body (a sled value is at most a blob chunk, 256 KiB,
/// or an event record; this leaves room).
pub const RECORD_MAX: usize = 4 << 20;
/// Longest tree name.
pub const TREE_NAME_MAX: usize = 255;
/// The files of a data directory a backup may carry.
pub const FILES: &[&str] = &["node.key"];

const T_HEADER: u8 = 0x01;
const T_FILE: u8 = 0x02;
const T_TREE: u8 = 0x03;
const T_ENTRY: u8 = 0x04;
const T_END: u8 = 0x05;
const T_EVENT: u8 = 0x06;
const HEAD_LEN: usize = 8 + 2;
const RECORD_HEAD: usize = 1 + 4;

/// What a backup says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BackupHeader {
    /// The node it was taken from.
    pub node: NodeId,
    /// That node's name.
    pub name: String,
    /// When (ms since epoch).
    pub created: u64,
    /// The software version that wrote it.
    pub software: String,
}

/// Writes a backup: call [`BackupWriter::new`], then `file`, `tree` and
/// `entry` in any order (entries belong to the last tree), then
/// [`BackupWriter::finish`]. Each call returns the bytes to append.
#[derive(Debug)]
pub struct BackupWriter {
    hash: Sha256,
    entries: u64,
    in_tree: bool,
}

impl BackupWriter {
    /// Starts a backup with its header; returns the first bytes.
    pub fn new(header: &BackupHeader) -> Result<(BackupWriter, Vec<u8>)> {
        let mut w = BackupWriter {
            hash: Sha256::new(),
            entries: 0,
            in_tree: false,
        };
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_be_bytes());
        w.hash.update(&out);
        w.record(T_HEADER, &codec::to_vec("backup header", header)?, &mut out)?;
        Ok((w, out))
    }

    fn record(&mut self, tag: u8, body: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if body.len() > RECORD_MAX {
            return Err(Error::invalid("backup record", "too large"));
        }
        let start = out.len();
        out.push(tag);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
        self.hash.update(&out[start..]);
        Ok(())
    }

    /// A file of the data directory (a name of [`FILES`]).
    pub fn file(&mut self, name: &str, bytes: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if !FILES.contains(&name) {
            return Err(Error::invalid("backup file", "not a file a backup carries"));
        }
        let body = codec::to_vec("backup file", &(name.to_string(), bytes.to_vec()))?;
        self.record(T_FILE, &body, out)
    }

    /// Starts a tree; the entries after it are its.
    pub fn tree(&mut self, name: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if name.len() > TREE_NAME_MAX {
            return Err(Error::invalid("backup tree", "name too long"));
        }
        self.in_tree = true;
        self.record(T_TREE, &codec::to_vec("backup tree", &name.to_vec())?, out)
    }

    /// One key and value of the current tree.
    pub fn entry(&mut self, key: &[u8], value: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if !self.in_tree {
            return Err(Error::invalid("backup entry", "no tree started"));
        }
        let mut body = Vec::with_capacity(4 + key.len() + value.len());
        body.extend_from_slice(&(key.len() as u32).to_be_bytes());
        body.extend_from_slice(key);
        body.extend_from_slice(value);
        self.entries += 1;
        self.record(T_ENTRY, &body, out)
    }

    /// One event of the log, in log order.
    pub fn event(&mut self, room: &RoomId, ev: &SignedEvent, out: &mut Vec<u8>) -> Result<()> {
        let body = codec::to_vec("backup event", &(room.0, ev))?;
        self.entries += 1;
        self.record(T_EVENT, &body, out)
    }

    /// The end record; returns the checksum written.
    pub fn finish(self, out: &mut Vec<u8>) -> [u8; 32] {
        let sum: [u8; 32] = self.hash.finalize().into();
        out.push(T_END);
        out.extend_from_slice(&40u32.to_be_bytes());
        out.extend_from_slice(&self.entries.to_be_bytes());
        out.extend_from_slice(&sum);
        sum
    }
}

/// One thing read from a backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupItem {
    /// The header (always first).
    Header(BackupHeader),
    /// A file of the data directory.
    File {
        /// Its name (one of [`FILES`]).
        name: String,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// A tree starts.
    Tree(Vec<u8>),
    /// An entry of the current tree.
    Entry {
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// An event of the log (format 2), its signature not yet checked.
    Event {
        /// Its room.
        room: RoomId,
        /// The event as it was stored.
        event: SignedEvent,
    },
    /// The end: count and checksum matched.
    End {
        /// Entries in the file.
        entries: u64,
        /// The checksum.
        checksum: [u8; 32],
    },
}

/// Reads a backup fed in arbitrary chunks ([`BackupReader::push`], then
/// [`BackupReader::next_item`] until `None`; [`BackupReader::finish`] at the
/// end of the input).
#[derive(Debug, Default)]
pub struct BackupReader {
    buf: Vec<u8>,
    start: usize,
    hash: Sha256,
    magic_read: bool,
    format: u16,
    header_read: bool,
    in_tree: bool,
    entries: u64,
    ended: bool,
    failed: bool,
}

fn bad(what: &'static str) -> Error {
    Error::invalid("backup file", what)
}

impl BackupReader {
    /// Adds input bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = true;
        self.buf = Vec::new();
        self.start = 0;
        e
    }

    /// The next item, `None` when more input is needed (or after the end).
    pub fn next_item(&mut self) -> Result<Option<BackupItem>> {
        if self.failed {
            return Err(bad("already failed"));
        }
        let avail = &self.buf[self.start..];
        if self.ended {
            if !avail.is_empty() {
                return Err(self.fail(bad("bytes after the end record")));
            }
            return Ok(None);
        }
        if !self.magic_read {
            if avail.len() < HEAD_LEN {
                if !MAGIC.starts_with(&avail[..avail.len().min(8)]) {
                    return Err(self.fail(bad("not a Confab backup (wrong magic bytes)")));
                }
                return Ok(None);
            }
            if &avail[..8] != MAGIC {
                return Err(self.fail(bad("not a Confab backup (wrong magic bytes)")));
            }
            let format = u16::from_be_bytes([avail[8], avail[9]]);
            if !(FORMAT_MIN..=FORMAT).contains(&format) {
                return Err(self.fail(bad("a backup format this version does not read")));
            }
            self.format = format;
            self.hash.update(&avail[..HEAD_LEN]);
            self.start += HEAD_LEN;
            self.magic_read = true;
            return self.next_item();
        }
        if avail.len() < RECORD_HEAD {
            return Ok(None);
        }
        let tag = avail[0];
        let len = u32::from_be_bytes([avail[1], avail[2], avail[3], avail[4]]) as usize;
        // The length is checked before anything is buffered for it.
        if len > RECORD_MAX {
            return Err(self.fail(bad("a record is larger than the format allows")));
        }
        if avail.len() < RECORD_HEAD + len {
            return Ok(None);
        }
        let body = avail[RECORD_HEAD..RECORD_HEAD + len].to_vec();
        let whole = RECORD_HEAD + len;
        if tag == T_END {
            let sum: [u8; 32] = self.hash.clone().finalize().into();
            let item = (|| {
                if len != 40 || !self.header_read {
                    return Err(bad("a misplaced or malformed end record"));
                }
                let mut n = [0u8; 8];
                n.copy_from_slice(&body[..8]);
                let entries = u64::from_be_bytes(n);
                if entries != self.entries {
                    return Err(bad("the entry count does not match (truncated or altered)"));
                }
                if body[8..40] != sum {
                    return Err(bad(
                        "the checksum does not match (the file is damaged or altered)",
                    ));
                }
                Ok(BackupItem::End {
                    entries,
                    checksum: sum,
                })
            })();
            return match item {
                Ok(item) => {
                    self.start += whole;
                    self.ended = true;
                    Ok(Some(item))
                }
                Err(e) => Err(self.fail(e)),
            };
        }
        let hashed_start = self.start;
        let item = self.item(tag, body);
        match item {
            Ok(item) => {
                let end = hashed_start + whole;
                self.hash.update(&self.buf[hashed_start..end]);
                self.start = end;
                Ok(Some(item))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn item(&mut self, tag: u8, body: Vec<u8>) -> Result<BackupItem> {
        if !self.header_read && tag != T_HEADER {
            return Err(bad("the header record is missing"));
        }
        match tag {
            T_HEADER if self.header_read => Err(bad("a second header record")),
            T_HEADER => {
                let h: BackupHeader = codec::from_slice("backup header", &body)?;
                self.header_read = true;
                Ok(BackupItem::Header(h))
            }
            T_FILE => {
                let (name, bytes): (String, Vec<u8>) = codec::from_slice("backup file", &body)?;
                if !FILES.contains(&name.as_str()) {
                    return Err(bad("a file a backup never carries"));
                }
                Ok(BackupItem::File { name, bytes })
            }
            T_TREE => {
                let name: Vec<u8> = codec::from_slice("backup tree", &body)?;
                if name.len() > TREE_NAME_MAX {
                    return Err(bad("a tree name is too long"));
                }
                self.in_tree = true;
                Ok(BackupItem::Tree(name))
            }
            T_ENTRY => {
                if !self.in_tree {
                    return Err(bad("an entry before any tree"));
                }
                if body.len() < 4 {
                    return Err(bad("a truncated entry"));
                }
                let klen = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
                if klen > body.len() - 4 {
                    return Err(bad("an entry's key runs past its record"));
                }
                self.entries += 1;
                Ok(BackupItem::Entry {
                    key: body[4..4 + klen].to_vec(),
                    value: body[4 + klen..].to_vec(),
                })
            }
            T_EVENT if self.format >= 2 => {
                let (room, event): ([u8; 32], SignedEvent) =
                    codec::from_slice("backup event", &body)?;
                self.entries += 1;
                Ok(BackupItem::Event {
                    room: RoomId(room),
                    event,
                })
            }
            _ => Err(bad("an unknown record type")),
        }
    }

    /// Call at the end of the input: an error unless the end record was
    /// read (and nothing followed it).
    pub fn finish(&self) -> Result<()> {
        if self.failed {
            return Err(bad("already failed"));
        }
        if !self.ended {
            return Err(bad("the file ends before its end record (truncated)"));
        }
        Ok(())
    }
}

/// Reads a whole backup in memory: every item, or the first error. For
/// tests and the fuzz target.
pub fn read_all(bytes: &[u8]) -> Result<Vec<BackupItem>> {
    let mut r = BackupReader::default();
    r.push(bytes);
    let mut out = Vec::new();
    while let Some(item) = r.next_item()? {
        out.push(item);
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let h = BackupHeader {
            node: crate::NodeKey::from_secret(&[7; 32]).node_id(),
            name: "n".into(),
            created: 5,
            software: "t".into(),
        };
        let (mut w, mut out) = BackupWriter::new(&h).unwrap();
        w.file("node.key", b"secret", &mut out).unwrap();
        w.tree(b"meta", &mut out).unwrap();
        w.entry(b"k1", b"v1", &mut out).unwrap();
        w.entry(b"", b"", &mut out).unwrap();
        w.tree(b"room_data", &mut out).unwrap();
        w.entry(b"k", &[9; 1000], &mut out).unwrap();
        w.finish(&mut out);
        out
    }

    fn event() -> SignedEvent {
        SignedEvent {
            header: vec![1, 2, 3],
            signature: [4; 64],
            content: Some(b"hi".to_vec()),
        }
    }

    #[test]
    fn events_read_back_in_order_and_count_as_entries() {
        let h = BackupHeader {
            node: crate::NodeKey::from_secret(&[7; 32]).node_id(),
            name: "n".into(),
            created: 5,
            software: "t".into(),
        };
        let (mut w, mut out) = BackupWriter::new(&h).unwrap();
        w.tree(b"meta", &mut out).unwrap();
        w.entry(b"k", b"v", &mut out).unwrap();
        let mut second = event();
        second.content = None;
        w.event(&RoomId([1; 32]), &event(), &mut out).unwrap();
        w.event(&RoomId([2; 32]), &second, &mut out).unwrap();
        w.finish(&mut out);
        let all = read_all(&out).unwrap();
        assert_eq!(
            all[3],
            BackupItem::Event {
                room: RoomId([1; 32]),
                event: event()
            }
        );
        assert_eq!(
            all[4],
            BackupItem::Event {
                room: RoomId([2; 32]),
                event: second
            }
        );
        assert!(matches!(all[5], BackupItem::End { entries: 3, .. }));
        // A file that says format 1 carries no events (its checksum made
        // right, so the event record is what it refuses).
        let mut old = out.clone();
        old[8..10].copy_from_slice(&1u16.to_be_bytes());
        let end = old.len() - (RECORD_HEAD + 40);
        let sum: [u8; 32] = Sha256::digest(&old[..end]).into();
        old[end + RECORD_HEAD + 8..].copy_from_slice(&sum);
        let e = read_all(&old).unwrap_err().to_string();
        assert!(e.contains("unknown record type"), "{e}");
    }

    #[test]
    fn a_backup_reads_back_whole_in_any_chunking() {
        let bytes = sample();
        let all = read_all(&bytes).unwrap();
        assert_eq!(all.len(), 8);
        assert!(matches!(&all[0], BackupItem::Header(h) if h.name == "n"));
        assert_eq!(
            all[3],
            BackupItem::Entry {
                key: b"k1".to_vec(),
                value: b"v1".to_vec()
            }
        );
        assert!(matches!(all[7], BackupItem::End { entries: 3, .. }));
        for step in [1, 3, 17, 1000] {
            let mut r = BackupReader::default();
            let mut got = Vec::new();
            for c in bytes.chunks(step) {
                r.push(c);
                while let Some(i) = r.next_item().unwrap() {
                    got.push(i);
                }
            }
            r.finish().unwrap();
            assert_eq!(got, all, "chunks of {step}");
        }
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_an_error() {
        let bytes = sample();
        for n in 0..bytes.len() {
            assert!(read_all(&bytes[..n]).is_err(), "truncated at {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert!(read_all(&b).is_err(), "byte {i} flipped");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(read_all(&extra).is_err());
    }

    #[test]
    fn oversized_records_fail_before_buffering() {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT.to_be_bytes());
        b.push(T_HEADER);
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut r = BackupReader::default();
        r.push(&b);
        assert!(r.next_item().is_err());
    }

    #[test]
    fn only_known_files_are_carried() {
        let h = BackupHeader {
            node: crate::NodeKey::from_secret(&[7; 32]).node_id(),
            name: "n".into(),
            created: 5,
            software: "t".into(),
        };
        let (mut w, mut out) = BackupWriter::new(&h).unwrap();
        assert!(w.file("../etc/passwd", b"x", &mut out).is_err());
    }
}
