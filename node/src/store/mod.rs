//! The node's durable store (sled), behind a narrow seam.
//!
//! ## Layout
//! The events themselves are in the event log ([`log`], the source of
//! truth): each is appended once, as verified. What is derived from them
//! lives in one sled tree, `room_data`, with a one-byte prefix per kind of
//! record, because sled applies a batch atomically only within one tree:
//! an event's location, its indexes, its verdict and the room's hot state
//! land together or not at all. Everything derived can be rebuilt from the
//! log, and the tail of the log that sled may not hold yet is replayed
//! when the store opens.
//!
//! | key                                          | value                |
//! |----------------------------------------------|----------------------|
//! | `E` event_id                                 | [`EventRecord`]: room, meta, verdict, where in the log |
//! | `O` room_id depth(BE) event_id               | — (room order)       |
//! | `C` room_id origin seq(BE) event_id          | — (origin chains)    |
//! | `R` target_id event_id                       | — (relations)        |
//! | `K` room_id depth(BE) event_id               | checkpoint state     |
//! | `H` room_id                                  | the room's [`Hot`]   |
//! | `I` room_id node depth(BE) event_id          | — (invites of a node's users) |
//! | `X` position(BE) length(BE)                  | — (content to erase once its deletion is durable) |
//!
//! Tree `meta` holds the schema version and node-wide flags; tree `blobs`
//! holds attachments (see [`blobs`]).
//!
//! ## Durability
//! Every commit appends its events to the log and applies its batch (both
//! visible to readers at once), then waits for a flush that began after it
//! ([`Store::wait_durable`]); one flush serves every submission waiting for
//! it (group commit): `fdatasync` of the log segments written, then sled's
//! own flush, then the log position both cover is recorded
//! (`log_checked`). On open, the records after it are compared with the
//! index and those it lacks are judged again, so a crash at any point
//! loses nothing the log holds and leaves the index neither ahead of it
//! nor behind.

pub mod accounts;
pub mod admin;
pub mod blobs;
pub mod client;
mod flush;
mod history;
pub mod log;
mod migrate;
mod recover;
pub mod restore;
pub mod search;
pub mod views;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use bincode::{Decode, Encode};
use confab_wire::client::Anchor;
use confab_wire::event::EventKind;
use confab_wire::{EventId, RoomId, SignedEvent, VerifiedEvent, codec};

use crate::engine::{Admission, History, Hot, Refusal, RoomEngine, Verdict};
use crate::error::{Error, Result};
pub use flush::Flusher;
pub use history::SledHistory;
pub use recover::LogCheck;

/// The schema this code writes. 2: room states carry their rules version;
/// 3: sends are keyed by idempotency hash; 4: event bytes live in the log.
pub const SCHEMA_VERSION: u32 = 4;

pub(crate) const P_EVENT: u8 = b'E';
pub(crate) const P_ORDER: u8 = b'O';
pub(crate) const P_CHAIN: u8 = b'C';
pub(crate) const P_RELATION: u8 = b'R';
pub(crate) const P_CHECKPOINT: u8 = b'K';
pub(crate) const P_HOT: u8 = b'H';
pub(crate) const P_ERASE: u8 = b'X';

/// Meta key: the log position below which every record is durable and
/// indexed durably.
pub(crate) const LOG_CHECKED: &[u8] = b"log_checked";
/// Meta key: some event records carry their bytes inline (a restored
/// backup); the store moves them into the log when it opens.
pub(crate) const INLINE: &[u8] = b"inline";

/// An event as stored: its room and its verified bytes (content dropped
/// once redacted).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct StoredEvent {
    /// The room.
    pub room: RoomId,
    /// The bytes as verified.
    pub signed: SignedEvent,
}

/// One index record per event: what the engine needs (meta, verdict) and
/// where readers find the bytes, under one key because every sled key
/// costs microseconds to write.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub(crate) struct EventRecord {
    pub(crate) room: RoomId,
    pub(crate) meta: crate::engine::EventMeta,
    pub(crate) verdict: Verdict,
    pub(crate) body: Body,
}

/// Where an event's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub(crate) enum Body {
    /// In the log.
    Logged(log::Loc),
    /// In the record itself: a backup's copy, until the store that
    /// restored it moves it into its log.
    Inline(SignedEvent),
}

fn erase_key(loc: &log::Loc) -> Vec<u8> {
    key(P_ERASE, &[&loc.pos.to_be_bytes(), &loc.len.to_be_bytes()])
}

pub(crate) fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut k = Vec::with_capacity(len);
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// Meta keys of rooms caught up since recovery began; a backup leaves them
/// out, so a restored node confirms every room again.
pub(crate) const CAUGHT_UP_PREFIX: &[u8] = b"caught_up/";

fn caught_up_key(room: &RoomId) -> Vec<u8> {
    [CAUGHT_UP_PREFIX, room.as_bytes()].concat()
}

pub(crate) fn encode<T: Encode>(what: &'static str, v: &T) -> Result<Vec<u8>> {
    codec::to_vec(what, v).map_err(|e| Error::Corrupt {
        what,
        detail: e.to_string(),
    })
}

pub(crate) fn decode<T: Decode<()>>(what: &'static str, bytes: &[u8]) -> Result<T> {
    codec::from_slice(what, bytes).map_err(|e| Error::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// The node's database.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    data: sled::Tree,
    meta: sled::Tree,
    log: Arc<log::Log>,
    /// Search postings not yet written to sled.
    search: search::SharedSearch,
    /// Where a temporary store's log lives (removed with the last clone).
    _scratch: Option<Arc<tempfile::TempDir>>,
    /// The store was created by this open (it held nothing before).
    fresh: bool,
    /// Never flushed (simulations): see [`Store::volatile`].
    volatile: bool,
    flusher: Arc<Flusher>,
}

/// How long an open waits for a lock sled's own threads still hold.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// True if sled could not take the directory lock (`EWOULDBLOCK`).
fn lock_contended(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.get_ref().is_some_and(|inner| {
                    let t = inner.to_string();
                    t.contains("WouldBlock") || t.contains("could not acquire lock")
                })
        }
        _ => false,
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, checking the schema version.
    pub fn open(dir: &Path) -> Result<Store> {
        // sled 0.34 releases its directory lock from a background thread
        // after the last handle drops (sled issues #1234, #1289): an open
        // right after a close can find it still taken for a moment. A lock
        // held longer than the wait belongs to another process.
        let mut wait = std::time::Duration::from_millis(5);
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match Self::with_config(sled::Config::new().path(dir), &dir.join("log"), None) {
                Err(Error::Store { ref source, .. })
                    if lock_contended(source) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(std::time::Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// A store in a temporary directory removed on drop (tests, benches).
    pub fn temporary() -> Result<Store> {
        let scratch = tempfile::Builder::new()
            .prefix("confab-log")
            .tempdir()
            .map_err(|e| Error::Log {
                what: "create a temporary log",
                detail: e.to_string(),
            })?;
        let dir = scratch.path().to_path_buf();
        Self::with_config(
            sled::Config::new().temporary(true),
            &dir,
            Some(Arc::new(scratch)),
        )
    }

    /// A temporary store that never waits for the disk: for deterministic
    /// simulations, whose subject is replication, not durability. Nothing
    /// it "acknowledges" survives a crash; never use it for a node.
    pub fn volatile() -> Result<Store> {
        let mut s = Self::temporary()?;
        s.volatile = true;
        Ok(s)
    }

    fn with_config(
        config: sled::Config,
        log_dir: &Path,
        scratch: Option<Arc<tempfile::TempDir>>,
    ) -> Result<Store> {
        let db = config
            // Durability comes from our own group commit, not a timer.
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(store_err("open"))?;
        Self::from_db(db, log_dir, scratch)
    }

    fn from_db(
        db: sled::Db,
        log_dir: &Path,
        scratch: Option<Arc<tempfile::TempDir>>,
    ) -> Result<Store> {
        let meta = db.open_tree("meta").map_err(store_err("open meta"))?;
        let data = db
            .open_tree("room_data")
            .map_err(store_err("open room_data"))?;
        let checked = match meta.get(LOG_CHECKED).map_err(store_err("read log mark"))? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| Error::Corrupt {
                what: "log mark",
                detail: "not 8 bytes".into(),
            })?),
            None => 0,
        };
        let log = log::Log::open(log_dir, checked)?;
        let log = Arc::new(log);
        let mut fresh = false;
        match meta.get("schema").map_err(store_err("read schema"))? {
            Some(v) => {
                let v: [u8; 4] = v.as_ref().try_into().map_err(|_| Error::Corrupt {
                    what: "schema version",
                    detail: "not 4 bytes".into(),
                })?;
                let v = u32::from_be_bytes(v);
                if v > SCHEMA_VERSION {
                    return Err(Error::Schema {
                        found: v,
                        supported: SCHEMA_VERSION,
                    });
                }
                if v == 1 {
                    migrate::to_2(&data, &meta)?;
                }
                if v <= 2 {
                    migrate::to_3(&data, &meta)?;
                }
                if v <= 3 {
                    migrate::to_4(&data, &meta, &log)?;
                }
            }
            None => {
                if !data.is_empty() {
                    return Err(Error::Corrupt {
                        what: "schema version",
                        detail: "missing in a non-empty store".into(),
                    });
                }
                meta.insert("schema", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(store_err("write schema"))?;
                fresh = true;
            }
        }
        let search = search::SharedSearch::default();
        let flusher = Arc::new(Flusher::start(
            db.clone(),
            data.clone(),
            meta.clone(),
            log.clone(),
            search.clone(),
        ));
        let store = Store {
            db,
            data,
            meta,
            log,
            search,
            _scratch: scratch,
            fresh,
            volatile: false,
            flusher,
        };
        store.recover(checked)?;
        Ok(store)
    }

    /// The schema the store is in.
    pub fn schema(&self) -> Result<u32> {
        let v = self.meta.get("schema").map_err(store_err("read schema"))?;
        v.and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(u32::from_be_bytes)
            .ok_or(Error::Corrupt {
                what: "schema version",
                detail: "missing or not 4 bytes".into(),
            })
    }

    /// True if this open created the store (nothing was there before).
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// True while the node recovers its history from peers (its data was
    /// lost or restored from a backup): it may not post in a room before
    /// a peer has shown it its own latest event there.
    pub fn recovering(&self) -> Result<bool> {
        Ok(self
            .meta
            .get("recovering")
            .map_err(store_err("read flags"))?
            .is_some())
    }

    /// True if, since the store was marked [`Store::recovering`], the room
    /// caught up with this node's own chain (every peer in it showed it
    /// holds no more of it). Such a room need not wait again on a restart.
    pub fn caught_up(&self, room: &RoomId) -> Result<bool> {
        Ok(self
            .meta
            .get(caught_up_key(room))
            .map_err(store_err("read flags"))?
            .is_some())
    }

    /// Records or forgets [`Store::caught_up`] for a room (durable after
    /// [`Store::wait_durable`]).
    pub fn set_caught_up(&self, room: &RoomId, on: bool) -> Result<()> {
        let k = caught_up_key(room);
        if on {
            self.meta.insert(k, &[1u8]).map(|_| ())
        } else {
            self.meta.remove(k).map(|_| ())
        }
        .map_err(store_err("write flags"))
    }

    /// Sets or clears [`Store::recovering`] (durable after
    /// [`Store::wait_durable`]).
    pub fn set_recovering(&self, on: bool) -> Result<()> {
        if on {
            self.meta.insert("recovering", &[1u8]).map(|_| ())
        } else {
            self.meta.remove("recovering").map(|_| ())
        }
        .map_err(store_err("write flags"))
    }

    /// Invite events in `room` whose target is a user of `node`, newest
    /// last, at most `limit` (the newest).
    pub fn invites_for(
        &self,
        room: &RoomId,
        node: &confab_wire::NodeId,
        limit: usize,
    ) -> Result<Vec<EventId>> {
        let prefix = key(views::P_INVITE, &[room.as_bytes(), node.as_bytes()]);
        let mut out = Vec::new();
        for k in self.data.scan_prefix(&prefix).keys().rev().take(limit) {
            let k = k.map_err(store_err("scan invites"))?;
            out.push(order_key_id_any(&k)?);
        }
        out.reverse();
        Ok(out)
    }

    /// Waits until everything applied before this call is on disk. One
    /// flush serves every caller waiting at the time (group commit).
    pub fn wait_durable(&self) -> Result<()> {
        if self.volatile {
            return Ok(());
        }
        self.flusher.wait()
    }

    /// Waits until every event committed before this call is in the
    /// durable log: enough to acknowledge events (their index is replayed
    /// from the log after a crash), cheaper than [`Store::wait_durable`].
    pub fn wait_logged(&self) -> Result<()> {
        if self.volatile {
            return Ok(());
        }
        self.flusher.wait_logged()
    }

    /// Registers the storage metrics (flush batch sizes and latencies).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.flusher.metrics().register(registry);
    }

    /// The flusher, for its statistics.
    pub fn flusher(&self) -> &Flusher {
        &self.flusher
    }

    /// Starts a room from its create event (applied, not yet durable).
    pub fn create_room(&self, create: &VerifiedEvent) -> Result<Room> {
        self.create_room_at(create, None)
    }

    /// [`Store::create_room`]; `logged` if the log holds the event already.
    fn create_room_at(&self, create: &VerifiedEvent, logged: Option<log::Loc>) -> Result<Room> {
        let history = SledHistory::new(create.room(), self.data.clone());
        let engine = RoomEngine::create(create, history).map_err(|r| Error::Refused {
            reason: r.to_string(),
        })?;
        let mut room = Room::new(engine, self);
        if let Some(loc) = logged {
            room.logged.insert(create.id(), loc);
        }
        room.collect(create, &[])?;
        room.commit()?;
        Ok(room)
    }

    /// Opens a stored room.
    pub fn open_room(&self, room: &RoomId) -> Result<Option<Room>> {
        let Some(bytes) = self
            .data
            .get(key(P_HOT, &[room.as_bytes()]))
            .map_err(store_err("read room"))?
        else {
            return Ok(None);
        };
        let hot: Hot = decode("room hot state", &bytes)?;
        let history = SledHistory::new(*room, self.data.clone());
        Ok(Some(Room::new(RoomEngine::open(history, hot), self)))
    }

    /// Every stored room.
    pub fn rooms(&self) -> Result<Vec<RoomId>> {
        self.data
            .scan_prefix([P_HOT])
            .keys()
            .map(|k| {
                let k = k.map_err(store_err("scan rooms"))?;
                let id: [u8; 32] =
                    k.get(1..33)
                        .and_then(|s| s.try_into().ok())
                        .ok_or(Error::Corrupt {
                            what: "room key",
                            detail: "short key".into(),
                        })?;
                Ok(RoomId(id))
            })
            .collect()
    }

    /// A stored event.
    pub fn event(&self, id: &EventId) -> Result<Option<StoredEvent>> {
        let Some(rec) = history::read_record(&self.data, id)? else {
            return Ok(None);
        };
        Ok(Some(StoredEvent {
            room: rec.room,
            signed: self.signed_of(&rec)?,
        }))
    }

    /// The bytes of a stored event.
    pub(crate) fn signed_of(&self, rec: &EventRecord) -> Result<SignedEvent> {
        signed_of(&self.log, rec)
    }

    /// A page of the room's timeline (accepted messages and system lines)
    /// in order, at most `limit`,
    /// oldest first; cost is proportional to the page, not the history
    /// (the order index carries each event's flags, so no record is read).
    pub fn page(&self, room: &RoomId, anchor: Anchor, limit: usize) -> Result<Vec<EventId>> {
        let prefix = key(P_ORDER, &[room.as_bytes()]);
        let order_key = |id: &EventId| -> Result<Vec<u8>> {
            let Some((m, _)) = history::read_meta(&self.data, id)? else {
                return Err(Error::NotFound { what: "event" });
            };
            Ok(key(
                P_ORDER,
                &[room.as_bytes(), &m.depth.to_be_bytes(), id.as_bytes()],
            ))
        };
        let shown = |k: &[u8], v: &[u8]| -> Result<Option<EventId>> {
            let wanted = history::ORDER_ACCEPTED | history::ORDER_SHOWN;
            if v.first().is_some_and(|f| f & wanted == wanted) {
                order_key_id(k).map(Some)
            } else {
                Ok(None)
            }
        };
        let mut out = Vec::with_capacity(limit);
        match anchor {
            Anchor::Around(id) => {
                let half = limit / 2;
                if half > 0 {
                    out = self.page(room, Anchor::Before(id), half)?;
                }
                let k = order_key(&id)?;
                if let Some(v) = self.data.get(&k).map_err(store_err("page"))?
                    && shown(&k, &v)?.is_some()
                {
                    out.push(id);
                }
                let rest = limit.saturating_sub(out.len());
                if rest > 0 {
                    out.extend(self.page(room, Anchor::After(id), rest)?);
                }
            }
            Anchor::Latest | Anchor::Before(_) => {
                let iter = match anchor {
                    Anchor::Before(id) => self.data.range(prefix.clone()..order_key(&id)?),
                    _ => self.data.scan_prefix(&prefix),
                };
                for item in iter.rev() {
                    let (k, v) = item.map_err(store_err("page"))?;
                    if let Some(id) = shown(&k, &v)? {
                        out.push(id);
                        if out.len() == limit {
                            break;
                        }
                    }
                }
                out.reverse();
            }
            Anchor::After(id) => {
                for item in self.data.range(order_key(&id)?..).skip(1) {
                    let (k, v) = item.map_err(store_err("page"))?;
                    if !k.starts_with(&prefix) {
                        break;
                    }
                    if let Some(id) = shown(&k, &v)? {
                        out.push(id);
                        if out.len() == limit {
                            break;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Bytes on disk: sled's files and the log's.
    pub fn size_on_disk(&self) -> Result<u64> {
        let log: u64 = self.log.segments()?.iter().map(|(_, len)| len).sum();
        Ok(self.db.size_on_disk().map_err(store_err("size"))? + log)
    }
}

/// The bytes of a stored event, from the log or the record itself.
pub(crate) fn signed_of(log: &log::Log, rec: &EventRecord) -> Result<SignedEvent> {
    match &rec.body {
        Body::Inline(s) => Ok(s.clone()),
        Body::Logged(loc) => {
            let r = log.read(*loc)?;
            if r.room != rec.room {
                return Err(Error::Corrupt {
                    what: "event log",
                    detail: format!("the record at {} is of another room", loc.pos),
                });
            }
            Ok(r.signed)
        }
    }
}

fn order_key_id_any(k: &[u8]) -> Result<EventId> {
    k.get(k.len().saturating_sub(32)..)
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .map(EventId)
        .ok_or(Error::Corrupt {
            what: "index key",
            detail: "short key".into(),
        })
}

pub(crate) fn order_key_id(k: &[u8]) -> Result<EventId> {
    k.get(k.len().saturating_sub(32)..)
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .filter(|_| k.len() == 1 + 32 + 8 + 32)
        .map(EventId)
        .ok_or(Error::Corrupt {
            what: "order key",
            detail: "wrong length".into(),
        })
}

pub(crate) fn store_err(what: &'static str) -> impl Fn(sled::Error) -> Error {
    move |source| Error::Store { what, source }
}

/// What a re-fold from scratch found (see [`Room::audit`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audit {
    /// Events whose verdict the re-fold gives differently, with that verdict.
    pub verdicts: Vec<(EventId, Verdict)>,
    /// The folded state differs from the stored one.
    pub state_differs: bool,
}

impl Audit {
    /// True if the stored room equals a fold from scratch.
    pub fn is_clean(&self) -> bool {
        self.verdicts.is_empty() && !self.state_differs
    }
}

/// A room open for writing: its engine over the store.
///
/// [`Room::submit`] judges events and collects their writes;
/// [`Room::commit`] appends the new events to the log and applies
/// everything else collected as one atomic batch (their locations,
/// indexes, verdicts and the room's hot state). Then
/// [`Store::wait_durable`] makes it durable. Collecting several events per
/// batch is what makes ingest fast.
#[derive(Debug)]
pub struct Room {
    engine: RoomEngine<SledHistory>,
    data: sled::Tree,
    log: Arc<log::Log>,
    search: search::SharedSearch,
    /// New events since the last commit, in the order they came (the log
    /// keeps it, so a replay judges them in the same order).
    fresh: Vec<(EventId, SignedEvent)>,
    /// Stored events whose content a deletion in this commit takes.
    purged: Vec<EventId>,
    /// New events the log holds already (a replay of its tail).
    logged: HashMap<EventId, log::Loc>,
    /// Index writes since the last commit.
    ops: Vec<(Vec<u8>, Vec<u8>)>,
    /// Search postings since the last commit.
    postings: search::Postings,
    /// Something to commit.
    dirty: bool,
}

impl Room {
    fn new(engine: RoomEngine<SledHistory>, store: &Store) -> Room {
        Room {
            engine,
            data: store.data.clone(),
            log: store.log.clone(),
            search: store.search.clone(),
            fresh: Vec::new(),
            purged: Vec::new(),
            logged: HashMap::new(),
            ops: Vec::new(),
            postings: search::Postings::new(),
            dirty: false,
        }
    }

    /// The engine (state, heads, digest, …).
    pub fn engine(&self) -> &RoomEngine<SledHistory> {
        &self.engine
    }

    /// Events held for the future whose time has come, to submit again.
    pub fn release_due(&mut self, now: u64) -> Vec<VerifiedEvent> {
        self.engine.release_due(now)
    }

    /// Re-folds the room from scratch and compares with what is stored.
    /// Writes nothing; call it with nothing uncommitted.
    pub fn audit(&mut self) -> Audit {
        let hot = self.engine.hot().clone();
        let verdicts = self.engine.refold_all();
        self.engine.history_mut().discard();
        let state_differs = self.engine.hot().state != hot.state;
        self.engine.restore_hot(hot);
        Audit {
            verdicts,
            state_differs,
        }
    }

    /// Judges a verified event and collects its writes (see [`Room::commit`]).
    /// A refusal collects nothing.
    pub fn submit(&mut self, ev: &VerifiedEvent, now: u64) -> Result<Result<Admission, Refusal>> {
        let admission = match self.engine.submit(ev, now) {
            Ok(a) => a,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Admission::Applied { verdict, changed } = &admission {
            let mut redactions: Vec<(EventId, Verdict)> = changed.clone();
            redactions.push((ev.id(), verdict.clone()));
            self.collect(ev, &redactions)?;
        }
        Ok(Ok(admission))
    }

    /// Collects the event, its view indexes, and drops the content of
    /// messages whose redaction was just accepted.
    fn collect(&mut self, ev: &VerifiedEvent, verdicts: &[(EventId, Verdict)]) -> Result<()> {
        let redacted: Vec<EventId> = verdicts
            .iter()
            .filter(|(_, v)| v.is_accepted())
            .filter_map(|(id, _)| match self.engine.meta(id)?.kind {
                EventKind::Redact { target } => Some(target),
                _ => None,
            })
            .collect();
        let mut signed = ev.signed().clone();
        // An edit of a deleted message keeps no text, however late it
        // comes: the deletion took every version.
        let edit_of_deleted = match self.engine.meta(&ev.id()).map(|m| m.kind.clone()) {
            Some(EventKind::Edit { target }) => self.is_deleted(&target),
            _ => false,
        };
        if edit_of_deleted {
            signed.content = None;
        } else {
            views::index(ev, &mut self.ops, &mut self.postings);
        }
        if let Some(hash) = ev.idempotency() {
            self.note_sent(&ev.header().author, hash, &ev.id());
        }
        self.fresh.push((ev.id(), signed));
        for target in redacted {
            // The message and every edit of it: the text of each version.
            let mut purged = vec![target];
            purged.extend(
                self.engine
                    .history()
                    .relations(&target)
                    .into_iter()
                    .filter(|id| {
                        self.engine
                            .meta(id)
                            .is_some_and(|m| matches!(m.kind, EventKind::Edit { .. }))
                    }),
            );
            for id in purged {
                match self.fresh.iter_mut().find(|(f, _)| *f == id) {
                    Some((_, s)) => s.content = None,
                    None => self.purged.push(id),
                }
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// Whether an accepted redaction of `target` is known (stored or in
    /// this commit).
    fn is_deleted(&self, target: &EventId) -> bool {
        self.engine.history().relations(target).iter().any(|id| {
            self.engine
                .meta(id)
                .is_some_and(|m| matches!(m.kind, EventKind::Redact { .. }))
                && self.engine.verdict(id).is_some_and(|v| v.is_accepted())
        })
    }

    /// Adds a write of the caller's to the next commit, so it lands
    /// atomically with the events (an idempotency key with its event).
    pub(crate) fn note(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push((key, value));
        self.dirty = true;
    }

    /// Appends the new events to the log and applies everything else
    /// collected since the last commit as one atomic batch. Not yet
    /// durable: follow with [`Store::wait_durable`].
    pub fn commit(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let room = self.engine.room();
        let (mut batch, metas) = self.engine.history_mut().take_batch()?;
        let fresh = std::mem::take(&mut self.fresh);
        let purged = std::mem::take(&mut self.purged);
        let mut logged = std::mem::take(&mut self.logged);
        let ops = std::mem::take(&mut self.ops);
        let postings = std::mem::take(&mut self.postings);
        let search = &self.search;
        self.dirty = false;
        let to_append: Vec<(RoomId, &SignedEvent)> = fresh
            .iter()
            .filter(|(id, _)| !logged.contains_key(id))
            .map(|(_, s)| (room, s))
            .collect();
        let data = &self.data;
        let log = &self.log;
        let hot = encode("room hot state", self.engine.hot())?;
        let purged_set: HashSet<EventId> = purged.iter().copied().collect();
        let meta_ids: HashSet<EventId> = metas.iter().map(|(id, _, _)| *id).collect();
        log.commit(&to_append, |locs, end| {
            let new: Vec<EventId> = fresh
                .iter()
                .filter(|(id, _)| !logged.contains_key(id))
                .map(|(id, _)| *id)
                .collect();
            for (id, loc) in new.into_iter().zip(locs) {
                logged.insert(id, *loc);
            }
            // New events and changed verdicts.
            for (id, meta, verdict) in metas {
                let body = match logged.get(&id) {
                    Some(loc) => Body::Logged(*loc),
                    None => match history::read_record(data, &id)? {
                        Some(r) => match r.body {
                            Body::Inline(mut s) if purged_set.contains(&id) => {
                                s.content = None;
                                Body::Inline(s)
                            }
                            b => b,
                        },
                        None => {
                            return Err(Error::Corrupt {
                                what: "event record",
                                detail: format!("verdict for {id} without its event"),
                            });
                        }
                    },
                };
                let rec = EventRecord {
                    room,
                    meta: (*meta).clone(),
                    verdict,
                    body,
                };
                batch.insert(
                    key(P_EVENT, &[id.as_bytes()]),
                    encode("event record", &rec)?,
                );
            }
            // Content a deletion takes: erased in the log once the
            // deletion is durable; the intent lands with the deletion.
            for id in &purged {
                if let Some(rec) = history::read_record(data, id)? {
                    if matches!(rec.body, Body::Inline(_)) && meta_ids.contains(id) {
                        continue;
                    }
                    match rec.body {
                        Body::Logged(loc) => {
                            batch.insert(erase_key(&loc), &[] as &[u8]);
                            log.erase_after(loc, end);
                        }
                        Body::Inline(mut s) => {
                            s.content = None;
                            let rec = EventRecord {
                                body: Body::Inline(s),
                                ..rec
                            };
                            batch.insert(
                                key(P_EVENT, &[id.as_bytes()]),
                                encode("event record", &rec)?,
                            );
                        }
                    }
                }
            }
            for (k, v) in ops {
                batch.insert(k, v);
            }
            batch.insert(key(P_HOT, &[room.as_bytes()]), hot);
            data.apply_batch(batch).map_err(store_err("apply batch"))?;
            search::add(search, room, postings, end);
            Ok(())
        })
    }
}

#[cfg(test)]
mod log_tests;
#[cfg(test)]
mod tests;
