//! `confab-node restore`: a backup file becomes a data directory. Only
//! the node knows how it stores things, so only the node restores.
//!
//! The whole file is checked first ([`BackupReader`]: record order, entry
//! count, SHA-256), then read again and written: the carried files (mode
//! 0600), every tree into a sled database at `<data_dir>/db`, and the
//! events (format 2) into its log. The indexes are not in the backup: the
//! store derives them from the log when the node first opens it, judging
//! every event again. A format 1 backup carries its events inside its
//! index records, which the store moves into the log on that open.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use confab_wire::backup::{BackupHeader, BackupItem, BackupReader, FILES};
use confab_wire::{RoomId, SignedEvent};

use super::log::Log;
use crate::error::{Error, Result};

/// Bytes read from the file at a time.
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// Events appended to the log per write.
const EVENTS_PER_APPEND: usize = 1024;

/// What a restore wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// The backup's header.
    pub header: BackupHeader,
    /// Tree entries written.
    pub entries: u64,
    /// Events written to the log.
    pub events: u64,
}

fn bad(detail: impl Into<String>) -> Error {
    Error::Backup {
        detail: detail.into(),
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> Error + 'a {
    move |e| bad(format!("cannot {what} {}: {e}", path.display()))
}

/// Reads every item of `file` through a [`BackupReader`].
fn read_items(file: &Path, mut each: impl FnMut(BackupItem) -> Result<()>) -> Result<()> {
    let mut f = fs::File::open(file).map_err(io("open", file))?;
    let mut reader = BackupReader::default();
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let n = f.read(&mut chunk).map_err(io("read", file))?;
        if n == 0 {
            break;
        }
        reader.push(&chunk[..n]);
        while let Some(item) = reader
            .next_item()
            .map_err(|e| bad(format!("{} is not a whole backup: {e}", file.display())))?
        {
            each(item)?;
        }
    }
    reader
        .finish()
        .map_err(|e| bad(format!("{} is not a whole backup: {e}", file.display())))
}

/// Removes what a failed restore made.
struct Undo<'a> {
    dir: &'a Path,
    created: bool,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.created {
            let _ = fs::remove_dir_all(self.dir);
        } else if let Ok(entries) = fs::read_dir(self.dir) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
}

/// Restores `file` into `data_dir`, which must be absent or an empty
/// directory. On any failure nothing is left behind.
pub fn restore(file: &Path, data_dir: &Path) -> Result<Restored> {
    let created = match fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(bad(format!(
                    "{} is not empty: restore into a new directory",
                    data_dir.display()
                )));
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(bad(format!("cannot use {}: {e}", data_dir.display()))),
    };
    // First pass: nothing is written until the whole file checks out.
    let mut header = None;
    read_items(file, |item| {
        if let BackupItem::Header(h) = item {
            header = Some(h);
        }
        Ok(())
    })?;
    let header = header.ok_or_else(|| bad("the backup has no header"))?;

    let mut undo = Undo {
        dir: data_dir,
        created,
        armed: true,
    };
    let mut dirs = fs::DirBuilder::new();
    dirs.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
    dirs.create(data_dir).map_err(io("create", data_dir))?;
    let db_path = data_dir.join("db");
    let db = sled::Config::new()
        .path(&db_path)
        .flush_every_ms(None)
        .open()
        .map_err(|source| Error::Store {
            what: "create the restored store",
            source,
        })?;
    let log = Log::open(&db_path.join("log"), 0)?;
    let mut tree: Option<sled::Tree> = None;
    let mut pending: Vec<(RoomId, SignedEvent)> = Vec::new();
    let mut restored = Restored {
        header,
        entries: 0,
        events: 0,
    };
    let flush_events = |pending: &mut Vec<(RoomId, SignedEvent)>| -> Result<()> {
        let records: Vec<(RoomId, &SignedEvent)> = pending.iter().map(|(r, e)| (*r, e)).collect();
        log.commit(&records, |_, _| Ok(()))?;
        pending.clear();
        Ok(())
    };
    // Second pass: the same bytes, checked again as they are written, so
    // a file changed in between fails here.
    read_items(file, |item| {
        match item {
            BackupItem::File { name, bytes } => {
                // The reader takes only these names; checked again because
                // the name becomes a path.
                if !FILES.contains(&name.as_str()) || name.contains(['/', '\\']) {
                    return Err(bad(format!("the backup carries a file named {name:?}")));
                }
                let path = data_dir.join(&name);
                let mut f = fs::OpenOptions::new();
                f.write(true).create_new(true);
                std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
                let mut f = f.open(&path).map_err(io("create", &path))?;
                f.write_all(&bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(io("write", &path))?;
            }
            BackupItem::Tree(name) => {
                tree = Some(db.open_tree(name).map_err(|source| Error::Store {
                    what: "open a restored tree",
                    source,
                })?);
            }
            BackupItem::Entry { key, value } => {
                let t = tree
                    .as_ref()
                    .ok_or_else(|| bad("an entry before any tree"))?;
                t.insert(key, value).map_err(|source| Error::Store {
                    what: "write a restored entry",
                    source,
                })?;
                restored.entries += 1;
            }
            BackupItem::Event { room, event } => {
                pending.push((room, event));
                restored.events += 1;
                if pending.len() >= EVENTS_PER_APPEND {
                    flush_events(&mut pending)?;
                }
            }
            BackupItem::Header(_) | BackupItem::End { .. } => {}
        }
        Ok(())
    })?;
    flush_events(&mut pending)?;
    log.sync()?;
    db.flush().map_err(|source| Error::Store {
        what: "flush the restored store",
        source,
    })?;
    drop(tree);
    drop(db);
    fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync", data_dir))?;
    undo.armed = false;
    Ok(restored)
}
