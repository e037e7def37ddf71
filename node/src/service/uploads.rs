//! Uploads in progress. Each streams to a file of its own in the node's
//! upload directory, hashed as it comes, so an upload costs the node a
//! chunk of memory while a chunk is written and nothing while it waits,
//! whatever its declared size. Bounded three ways: [`UPLOADS_MAX`] at once
//! on the node, [`UPLOADS_PER_USER_MAX`] per user (so one user cannot take
//! every slot), and [`UPLOAD_IDLE_MS`] without a chunk, after which the
//! upload is cancelled and its file removed. An upload also ends with the
//! gateway session that started it (the HTTP request: however it ends).
//!
//! The table's lock guards bookkeeping only: file writes, hashing and the
//! copy into the store run with the upload taken out of the table, marked
//! busy, so one slow disk write never holds up another user's upload.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use confab_wire::client::{ClientError, ErrorCode, MAX_CLIENT_CHUNK, SessionId};
use confab_wire::event::Attachment;
use confab_wire::sign::BlobHasher;
use confab_wire::{BlobId, UserId};

use super::GatewayId;
use super::accounts::error;
use super::limits::{Limit, Limits};
use super::sniff::{Sniffed, sniff};

/// Uploads in progress at once, node-wide.
pub const UPLOADS_MAX: usize = 64;
/// Uploads in progress at once, per user.
pub const UPLOADS_PER_USER_MAX: usize = 4;
/// An upload that receives no chunk for this long is cancelled.
pub const UPLOAD_IDLE_MS: u64 = 60 * 1000;
/// The first bytes of an upload kept to judge its type by.
pub const SNIFF_BYTES: usize = 64 * 1024;

/// Who started an upload: a gateway's session (one HTTP request).
pub(crate) type Owner = (GatewayId, SessionId);

#[derive(Debug)]
struct Upload {
    user: UserId,
    owner: Owner,
    name: String,
    size: u64,
    received: u64,
    hasher: BlobHasher,
    head: Vec<u8>,
    file: File,
    touched: u64,
}

#[derive(Debug)]
enum Slot {
    /// Waiting for its next chunk.
    Idle(Box<Upload>),
    /// A chunk (or the finish) is being written outside the lock.
    Busy { user: UserId, owner: Owner },
}

impl Slot {
    fn user(&self) -> &UserId {
        match self {
            Slot::Idle(u) => &u.user,
            Slot::Busy { user, .. } => user,
        }
    }

    fn owner(&self) -> Owner {
        match self {
            Slot::Idle(u) => u.owner,
            Slot::Busy { owner, .. } => *owner,
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    slots: HashMap<u64, Slot>,
}

/// The uploads of one node.
#[derive(Debug)]
pub(crate) struct Uploads {
    dir: PathBuf,
    /// Removes `dir` on drop when the service made it itself.
    owned_dir: bool,
    table: Mutex<Table>,
}

fn not_found() -> ClientError {
    error(
        ErrorCode::NotFound,
        "no such upload (it may have been cancelled after a minute without data)",
    )
}

fn io_failed(e: &std::io::Error) -> ClientError {
    tracing::error!(error = %e, "an upload could not be written to disk");
    error(ErrorCode::Internal, "the upload could not be stored")
}

fn busy(limit: Limit) -> ClientError {
    let mut e = error(
        ErrorCode::RateLimited,
        match limit {
            Limit::UploadsPerUser => {
                "you have too many uploads in progress; wait for one to finish"
            }
            _ => "too many uploads in progress; try again shortly",
        },
    );
    e.retry_after_ms = Some(2000);
    e
}

impl Uploads {
    /// Uploads written under `dir` (made if missing, emptied of what a
    /// previous run left).
    pub(crate) fn new(dir: PathBuf) -> std::io::Result<Uploads> {
        Self::open(dir, false)
    }

    /// Uploads in a fresh directory of the system's temporary space,
    /// removed with the service (tests and in-memory nodes).
    pub(crate) fn temporary() -> std::io::Result<Uploads> {
        let mut b = [0u8; 8];
        let _ = getrandom::getrandom(&mut b);
        let dir = std::env::temp_dir().join(format!("confab-uploads-{}", hex::encode(b)));
        Self::open(dir, true)
    }

    fn open(dir: PathBuf, owned_dir: bool) -> std::io::Result<Uploads> {
        if dir.exists() {
            for e in std::fs::read_dir(&dir)? {
                let p = e?.path();
                if p.extension().is_some_and(|x| x == "part") {
                    std::fs::remove_file(&p)?;
                }
            }
        } else {
            std::fs::create_dir_all(&dir)?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Uploads {
            dir,
            owned_dir,
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    fn remove_file(&self, id: u64) {
        let _ = std::fs::remove_file(self.path(id));
    }

    /// Uploads in progress.
    pub(crate) fn len(&self) -> usize {
        self.table().slots.len()
    }

    /// Cancels uploads idle for [`UPLOAD_IDLE_MS`].
    pub(crate) fn sweep(&self, limits: &Limits, now: u64) {
        let idle: Vec<(u64, UserId)> = {
            let mut t = self.table();
            let ids: Vec<(u64, UserId)> = t
                .slots
                .iter()
                .filter_map(|(id, s)| match s {
                    Slot::Idle(u) if now.saturating_sub(u.touched) >= UPLOAD_IDLE_MS => {
                        Some((*id, u.user.clone()))
                    }
                    _ => None,
                })
                .collect();
            for (id, _) in &ids {
                t.slots.remove(id);
            }
            ids
        };
        for (id, user) in idle {
            self.remove_file(id);
            limits.refused(Limit::UploadIdle, &user, now);
        }
    }

    /// Cancels the uploads a session started (its request ended).
    pub(crate) fn end(&self, owner: impl Fn(Owner) -> bool) {
        let ended: Vec<u64> = {
            let mut t = self.table();
            let ids: Vec<u64> = t
                .slots
                .iter()
                .filter(|(_, s)| owner(s.owner()))
                .map(|(id, _)| *id)
                .collect();
            for id in &ids {
                t.slots.remove(id);
            }
            ids
        };
        for id in ended {
            self.remove_file(id);
        }
    }

    /// Starts an upload of `size` bytes (already checked against the
    /// node's size limit) named `name`.
    pub(crate) fn start(
        &self,
        limits: &Limits,
        user: &UserId,
        owner: Owner,
        size: u64,
        name: String,
        now: u64,
    ) -> Result<u64, ClientError> {
        self.sweep(limits, now);
        let id = {
            let mut t = self.table();
            let limit =
                if t.slots.values().filter(|s| s.user() == user).count() >= UPLOADS_PER_USER_MAX {
                    Some(Limit::UploadsPerUser)
                } else if t.slots.len() >= UPLOADS_MAX {
                    Some(Limit::Uploads)
                } else {
                    None
                };
            if let Some(limit) = limit {
                drop(t);
                limits.refused(limit, user, now);
                return Err(busy(limit));
            }
            t.next += 1;
            let id = t.next;
            // Reserved while its file is made.
            t.slots.insert(
                id,
                Slot::Busy {
                    user: user.clone(),
                    owner,
                },
            );
            id
        };
        let made = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(self.path(id));
        let file = match made {
            Ok(f) => f,
            Err(e) => {
                self.table().slots.remove(&id);
                return Err(io_failed(&e));
            }
        };
        let upload = Upload {
            user: user.clone(),
            owner,
            name,
            size,
            received: 0,
            hasher: BlobHasher::default(),
            head: Vec::new(),
            file,
            touched: now,
        };
        self.put_back(id, upload)?;
        Ok(id)
    }

    /// Takes an idle upload of `user` out of the table (it stays counted,
    /// busy) to work on it without the lock.
    fn take(&self, user: &UserId, id: u64) -> Result<Box<Upload>, ClientError> {
        let mut t = self.table();
        match t.slots.get(&id) {
            Some(Slot::Idle(u)) if &u.user == user => {}
            Some(Slot::Busy { user: u, .. }) if u == user => {
                return Err(error(
                    ErrorCode::Conflict,
                    "a chunk of this upload is still being written",
                ));
            }
            _ => return Err(not_found()),
        }
        let Some(Slot::Idle(u)) = t.slots.remove(&id) else {
            return Err(not_found());
        };
        t.slots.insert(
            id,
            Slot::Busy {
                user: u.user.clone(),
                owner: u.owner,
            },
        );
        Ok(u)
    }

    /// Returns a taken upload, unless it was cancelled meanwhile.
    fn put_back(&self, id: u64, u: Upload) -> Result<(), ClientError> {
        let mut t = self.table();
        match t.slots.get_mut(&id) {
            Some(slot @ Slot::Busy { .. }) => {
                *slot = Slot::Idle(Box::new(u));
                Ok(())
            }
            _ => {
                drop(t);
                self.remove_file(id);
                Err(not_found())
            }
        }
    }

    fn cancel(&self, id: u64) {
        self.table().slots.remove(&id);
        self.remove_file(id);
    }

    /// Appends a chunk at `offset` (which must be what was received so
    /// far). A file that is not allowed is refused at its first chunk.
    pub(crate) fn chunk(
        &self,
        user: &UserId,
        id: u64,
        offset: u64,
        data: &[u8],
        now: u64,
    ) -> Result<(), ClientError> {
        if data.len() > MAX_CLIENT_CHUNK {
            return Err(error(ErrorCode::BadRequest, "chunk too large"));
        }
        let mut u = self.take(user, id)?;
        let checked = if offset != u.received {
            Err(error(
                ErrorCode::BadRequest,
                format!("expected offset {}", u.received),
            ))
        } else if u.received + data.len() as u64 > u.size {
            Err(error(ErrorCode::TooLarge, "more bytes than declared"))
        } else {
            Ok(())
        };
        if let Err(e) = checked {
            self.put_back(id, *u)?;
            return Err(e);
        }
        if let Err(e) = u.file.write_all(data) {
            self.cancel(id);
            return Err(io_failed(&e));
        }
        u.hasher.update(data);
        if u.head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - u.head.len()).min(data.len());
            u.head.extend_from_slice(&data[..take]);
        }
        u.received += data.len() as u64;
        u.touched = now;
        // Refused types are refused as soon as they can be told, not after
        // the whole file came.
        if (u.head.len() >= SNIFF_BYTES || u.received == u.size)
            && let Sniffed::Refused { what } = sniff(&u.head)
        {
            let name = u.name.clone();
            self.cancel(id);
            return Err(refused_type(&name, what));
        }
        self.put_back(id, *u)
    }

    /// Ends an upload whose every byte came: the file goes into the store
    /// (streamed, a chunk at a time) and is removed; the caller makes the
    /// store durable. Returns the attachment and its blob.
    pub(crate) fn finish(
        &self,
        store: &crate::store::Store,
        user: &UserId,
        id: u64,
    ) -> Result<Attachment, ClientError> {
        let mut u = self.take(user, id)?;
        if u.received != u.size {
            let e = error(
                ErrorCode::BadRequest,
                format!("received {} of {} bytes", u.received, u.size),
            );
            self.put_back(id, *u)?;
            return Err(e);
        }
        let (mime, dimensions) = match sniff(&u.head) {
            Sniffed::Allowed { mime, dimensions } => (mime, dimensions),
            Sniffed::Refused { what } => {
                self.cancel(id);
                return Err(refused_type(&u.name, what));
            }
        };
        let blob: BlobId = std::mem::take(&mut u.hasher).finish();
        let stored = u.file.rewind().map_err(|e| io_failed(&e)).and_then(|()| {
            store
                .put_blob_file(&blob, u.size, &mut std::io::BufReader::new(&u.file))
                .map_err(super::accounts::internal)
        });
        self.cancel(id);
        stored?;
        Ok(Attachment {
            blob,
            size: u.size,
            mime: mime.to_string(),
            name: u.name,
            dimensions,
        })
    }
}

fn refused_type(name: &str, what: &str) -> ClientError {
    error(
        ErrorCode::UnsupportedType,
        format!("{name} is {what}; such files are not allowed"),
    )
}

impl Drop for Uploads {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.table().slots.keys().copied().collect();
        for id in ids {
            self.remove_file(id);
        }
        if self.owned_dir {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use confab_wire::NodeKey;

    fn user(name: &str) -> UserId {
        UserId::new(NodeKey::from_secret(&[1; 32]).node_id(), name).unwrap()
    }

    const OWNER: Owner = (GatewayId(1), SessionId(1));

    #[test]
    fn an_upload_streams_to_disk_and_into_the_store() {
        let store = crate::store::Store::temporary().unwrap();
        let up = Uploads::temporary().unwrap();
        let limits = Limits::default();
        let alice = user("alice");
        let bytes: Vec<u8> = (0..(MAX_CLIENT_CHUNK * 2 + 5))
            .map(|i| b"hello world\n"[i % 12])
            .collect();
        let id = up
            .start(
                &limits,
                &alice,
                OWNER,
                bytes.len() as u64,
                "notes.txt".into(),
                0,
            )
            .unwrap();
        let mut offset = 0;
        for chunk in bytes.chunks(MAX_CLIENT_CHUNK) {
            up.chunk(&alice, id, offset, chunk, 1).unwrap();
            offset += chunk.len() as u64;
        }
        // On disk, not in memory: the file holds every byte so far.
        assert_eq!(
            std::fs::metadata(up.path(id)).unwrap().len(),
            bytes.len() as u64
        );
        // Another user cannot touch it.
        assert_eq!(
            up.finish(&store, &user("mallory"), id).unwrap_err().code,
            ErrorCode::NotFound
        );
        let a = up.finish(&store, &alice, id).unwrap();
        assert_eq!(a.mime, "text/plain");
        assert_eq!(a.blob, BlobHasher::of(&bytes));
        assert_eq!(store.blob(&a.blob).unwrap().unwrap(), bytes);
        assert!(!up.path(id).exists(), "the file is gone once stored");
        assert_eq!(up.len(), 0);
    }

    #[test]
    fn uploads_are_bounded_per_user_on_the_node_and_in_idle_time() {
        let up = Uploads::temporary().unwrap();
        let limits = Limits::default();
        let mallory = user("mallory");
        let mut mine = Vec::new();
        for _ in 0..UPLOADS_PER_USER_MAX {
            mine.push(
                up.start(&limits, &mallory, OWNER, 100, "x".into(), 0)
                    .unwrap(),
            );
        }
        let e = up
            .start(&limits, &mallory, OWNER, 100, "x".into(), 0)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(limits.count(Limit::UploadsPerUser), 1);
        // Others still get in, up to the node's bound.
        let mut others = Vec::new();
        for i in 0..UPLOADS_MAX - UPLOADS_PER_USER_MAX {
            others.push(
                up.start(&limits, &user(&format!("u{i}")), OWNER, 100, "x".into(), 0)
                    .unwrap(),
            );
        }
        let e = up
            .start(&limits, &user("late"), OWNER, 100, "x".into(), 0)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(limits.count(Limit::Uploads), 1);
        // A minute without data cancels, and frees the slots and files.
        let path = up.path(mine[0]);
        assert!(path.exists());
        up.sweep(&limits, UPLOAD_IDLE_MS);
        assert_eq!(up.len(), 0);
        assert!(!path.exists());
        assert_eq!(limits.count(Limit::UploadIdle), UPLOADS_MAX as u64);
        assert_eq!(
            up.chunk(&mallory, mine[0], 0, b"late", UPLOAD_IDLE_MS)
                .unwrap_err()
                .code,
            ErrorCode::NotFound
        );
    }

    #[test]
    fn an_upload_ends_with_its_session_and_programs_are_refused_early() {
        let up = Uploads::temporary().unwrap();
        let limits = Limits::default();
        let alice = user("alice");
        let other = (GatewayId(1), SessionId(2));
        let a = up.start(&limits, &alice, OWNER, 10, "a".into(), 0).unwrap();
        let b = up.start(&limits, &alice, other, 10, "b".into(), 0).unwrap();
        up.end(|o| o == OWNER);
        assert!(!up.path(a).exists());
        assert!(up.path(b).exists());
        assert_eq!(up.len(), 1);
        // An ELF binary is refused at its first chunk, long before its end.
        let big = 10 * SNIFF_BYTES as u64;
        let c = up
            .start(&limits, &alice, other, big, "tool".into(), 0)
            .unwrap();
        let mut first = b"\x7fELF".to_vec();
        first.resize(SNIFF_BYTES, 0);
        let e = up.chunk(&alice, c, 0, &first, 1).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedType);
        assert!(!up.path(c).exists());
    }
}
