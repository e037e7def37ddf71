//! Backup files on this machine: the writer behind `backup create`, and
//! the offline `backup verify` and `restore`.
//!
//! Every byte goes through [`BackupReader`], which checks record order,
//! the entry count and the SHA-256 in the end record. So a file that
//! `backup create` finished is whole, `backup verify` says exactly what a
//! restore would import, and a restore never starts from a damaged file.
//!
//! Files are created with mode 0600 and directories with 0700: a backup
//! holds the node's secret key.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use confab_wire::admin::Cell;
use confab_wire::backup::{BackupHeader, BackupItem, BackupReader, FILES};

use crate::error::{Failure, Kind, Result};

/// Bytes read from a backup file at a time.
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// The sled database inside a data directory (the node opens `<data_dir>/db`).
const DB_DIR: &str = "db";

/// What a backup holds, counted while it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    /// The header: node, name, creation time, software.
    pub(crate) header: BackupHeader,
    /// Files of the data directory it carries (`node.key`).
    pub(crate) files: Vec<String>,
    /// Tree records.
    pub(crate) trees: u64,
    /// Entries, as the end record counts them.
    pub(crate) entries: u64,
    /// The SHA-256 of the file before its end record.
    pub(crate) checksum: [u8; 32],
    /// The file's size.
    pub(crate) bytes: u64,
}

impl Summary {
    /// The summary as record fields, for printing.
    pub(crate) fn fields(&self) -> Vec<(String, Cell)> {
        let size = i64::try_from(self.bytes).unwrap_or(i64::MAX);
        let entries = i64::try_from(self.entries).unwrap_or(i64::MAX);
        let trees = i64::try_from(self.trees).unwrap_or(i64::MAX);
        vec![
            ("node".into(), Cell::text(self.header.node)),
            ("name".into(), Cell::text(&self.header.name)),
            ("created".into(), Cell::Time(self.header.created)),
            ("software".into(), Cell::text(&self.header.software)),
            ("files".into(), Cell::text(self.files.join(", "))),
            ("trees".into(), Cell::Int(trees)),
            ("entries".into(), Cell::Int(entries)),
            ("bytes".into(), Cell::Int(size)),
            ("checksum".into(), Cell::text(hex(&self.checksum))),
        ]
    }
}

/// Counts items as a reader yields them.
#[derive(Debug, Default)]
struct Tally {
    header: Option<BackupHeader>,
    files: Vec<String>,
    trees: u64,
    end: Option<(u64, [u8; 32])>,
}

impl Tally {
    fn add(&mut self, item: &BackupItem) {
        match item {
            BackupItem::Header(h) => self.header = Some(h.clone()),
            BackupItem::File { name, .. } => self.files.push(name.clone()),
            BackupItem::Tree(_) => self.trees += 1,
            BackupItem::Entry { .. } => {}
            BackupItem::End { entries, checksum } => self.end = Some((*entries, *checksum)),
        }
    }

    /// The summary of a reader that finished cleanly.
    fn summary(self, bytes: u64) -> Result<Summary> {
        match (self.header, self.end) {
            (Some(header), Some((entries, checksum))) => Ok(Summary {
                header,
                files: self.files,
                trees: self.trees,
                entries,
                checksum,
                bytes,
            }),
            // The reader refuses a stream without both, so this is a bug.
            _ => Err(Failure::internal(
                "the backup reader ended without a header or end record",
            )),
        }
    }
}

/// Lower-case hex of a checksum.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn damaged(path: &Path, e: &confab_wire::Error) -> Failure {
    Failure::new(
        Kind::BadBackup,
        format!("{} failed verification: {e}", path.display()),
    )
}

/// Reads `path` through the backup reader, handing each item to `each`.
/// A damaged, truncated or altered file fails with [`Kind::BadBackup`].
fn read_items(path: &Path, mut each: impl FnMut(BackupItem) -> Result<()>) -> Result<Summary> {
    let mut file = fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Failure::new(
            Kind::NotFound,
            format!("no backup file at {}", path.display()),
        ),
        _ => Failure::io("open", path, &e),
    })?;
    let mut reader = BackupReader::default();
    let mut tally = Tally::default();
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut bytes: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::io("read", path, &e)),
        };
        bytes += n as u64;
        reader.push(&buf[..n]);
        while let Some(item) = reader.next_item().map_err(|e| damaged(path, &e))? {
            tally.add(&item);
            each(item)?;
        }
    }
    reader.finish().map_err(|e| damaged(path, &e))?;
    tally.summary(bytes)
}

/// `backup verify`: reads the whole file and says what it holds.
pub(crate) fn verify(path: &Path) -> Result<Summary> {
    read_items(path, |_| Ok(()))
}

/// What a restore made.
#[derive(Debug)]
pub(crate) struct Restored {
    /// The backup it came from.
    pub(crate) summary: Summary,
    /// The data directory it filled.
    pub(crate) data_dir: PathBuf,
}

/// What was at the restore target before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Absent,
    EmptyDir,
}

fn check_target(dir: &Path) -> Result<Target> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Absent),
        Err(e) => return Err(Failure::io("look at", dir, &e)),
    };
    if !meta.is_dir() {
        return Err(Failure::new(
            Kind::Conflict,
            format!(
                "{} exists and is not a directory: restore into a new or empty directory",
                dir.display()
            ),
        ));
    }
    let mut entries = fs::read_dir(dir).map_err(|e| Failure::io("read", dir, &e))?;
    if entries.next().is_some() {
        return Err(Failure::new(
            Kind::Conflict,
            format!(
                "{} is not empty: restore only into a new or empty directory, so nothing of \
                 another store is mixed into this one (a running node's data directory is never \
                 a target)",
                dir.display()
            ),
        ));
    }
    Ok(Target::EmptyDir)
}

/// Removes what a restore made unless it finished: the directory it
/// created, or what it put into the empty directory it was given.
#[derive(Debug)]
struct Undo {
    dir: PathBuf,
    created_dir: bool,
    armed: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.created_dir {
            let _ = fs::remove_dir_all(&self.dir);
            return;
        }
        // The directory was empty when checked: everything in it is ours.
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
}

/// `restore`: verifies the whole file, then makes `data_dir` from it: the
/// carried files (mode 0600) and every tree in a sled database at
/// `data_dir/db`. Refuses a `data_dir` that exists and is not an empty
/// directory. On any failure it leaves nothing behind.
pub(crate) fn restore(file: &Path, data_dir: &Path) -> Result<Restored> {
    let target = check_target(data_dir)?;
    // First pass: nothing is written until the whole file checks out.
    let checked = verify(file)?;

    let mut undo = Undo {
        dir: data_dir.to_owned(),
        created_dir: target == Target::Absent,
        armed: false,
    };
    if target == Target::Absent {
        create_private_dir(data_dir)?;
    }
    undo.armed = true;

    let db_path = data_dir.join(DB_DIR);
    let db = sled::Config::new()
        .path(&db_path)
        .flush_every_ms(None)
        .open()
        .map_err(|e| {
            Failure::internal(format!(
                "cannot create the store at {}: {e}",
                db_path.display()
            ))
        })?;
    let store_err = |e: sled::Error| {
        Failure::internal(format!(
            "cannot write the store at {}: {e}",
            db_path.display()
        ))
    };
    let mut tree: Option<sled::Tree> = None;
    // Second pass: the same bytes again, now imported. The reader checks
    // them again, so a file changed in between fails here instead.
    let imported = read_items(file, |item| {
        match item {
            BackupItem::File { name, bytes } => write_carried_file(data_dir, &name, &bytes)?,
            BackupItem::Tree(name) => tree = Some(db.open_tree(name).map_err(store_err)?),
            BackupItem::Entry { key, value } => {
                let t = tree
                    .as_ref()
                    .ok_or_else(|| Failure::internal("an entry before any tree"))?;
                t.insert(key, value).map_err(store_err)?;
            }
            BackupItem::Header(_) | BackupItem::End { .. } => {}
        }
        Ok(())
    })?;
    if imported.checksum != checked.checksum {
        return Err(Failure::new(
            Kind::BadBackup,
            format!("{} changed while it was being restored", file.display()),
        ));
    }
    db.flush().map_err(store_err)?;
    drop(tree);
    drop(db);
    sync_dir(data_dir)?;
    undo.armed = false;
    Ok(Restored {
        summary: imported,
        data_dir: data_dir.to_owned(),
    })
}

fn write_carried_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    // The reader accepts only these names; checked again because the name
    // becomes a path.
    if !FILES.contains(&name) || name.contains(['/', '\\']) {
        return Err(Failure::new(
            Kind::BadBackup,
            format!("the backup carries a file named {name:?}, which is never restored"),
        ));
    }
    let path = dir.join(name);
    let mut f = create_private_file(&path, false)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Failure::io("write", &path, &e))
}

/// Creates a directory (and its parents) readable only by this user.
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Failure::io("create", dir, &e))
}

/// Creates a file readable only by this user; an existing file is an error
/// unless `replace`.
pub(crate) fn create_private_file(path: &Path, replace: bool) -> Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            Failure::new(Kind::Conflict, format!("{} already exists", path.display()))
        }
        _ => Failure::io("create", path, &e),
    })
}

/// Makes a new directory entry durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Failure::io("sync", dir, &e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `path` with `suffix` added to its file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A file written in full or not at all: the bytes go to `<path>.partial`
/// (mode 0600), which becomes `path` only in [`AtomicFile::commit`].
/// Dropped before that, the partial file is removed.
#[derive(Debug)]
pub(crate) struct AtomicFile {
    path: PathBuf,
    partial: PathBuf,
    file: Option<fs::File>,
    replace: bool,
    bytes: u64,
}

impl AtomicFile {
    /// Starts writing `path`. Without `replace`, an existing `path` is a
    /// conflict (exit 5), checked now and again at commit.
    pub(crate) fn create(path: &Path, replace: bool) -> Result<AtomicFile> {
        if !replace && fs::symlink_metadata(path).is_ok() {
            return Err(Failure::new(
                Kind::Conflict,
                format!(
                    "{} already exists: choose another file, or pass --force to replace it",
                    path.display()
                ),
            ));
        }
        let partial = with_suffix(path, ".partial");
        let file = create_private_file(&partial, replace).map_err(|f| match f.kind {
            Kind::Conflict => Failure::new(
                Kind::Conflict,
                format!(
                    "{} already exists (left by an interrupted run?): remove it, or pass --force",
                    partial.display()
                ),
            ),
            _ => f,
        })?;
        Ok(AtomicFile {
            path: path.to_owned(),
            partial,
            file: Some(file),
            replace,
            bytes: 0,
        })
    }

    /// Appends bytes.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Failure::internal("write after commit"))?;
        file.write_all(bytes)
            .map_err(|e| Failure::io("write", &self.partial, &e))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.bytes
    }

    /// Syncs the bytes and moves the file into place.
    pub(crate) fn commit(mut self) -> Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Failure::internal("commit twice"))?;
        file.sync_all()
            .map_err(|e| Failure::io("sync", &self.partial, &e))?;
        drop(file);
        if self.replace {
            fs::rename(&self.partial, &self.path)
                .map_err(|e| Failure::io("rename into", &self.path, &e))?;
        } else {
            // A link fails if the name was taken since `create`, where a
            // rename would replace it.
            match fs::hard_link(&self.partial, &self.path) {
                Ok(()) => {
                    let _ = fs::remove_file(&self.partial);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Failure::new(
                        Kind::Conflict,
                        format!("{} appeared while it was written", self.path.display()),
                    ));
                }
                // File systems without hard links.
                Err(_) if fs::symlink_metadata(&self.path).is_err() => {
                    fs::rename(&self.partial, &self.path)
                        .map_err(|e| Failure::io("rename into", &self.path, &e))?;
                }
                Err(e) => return Err(Failure::io("link", &self.path, &e)),
            }
        }
        sync_dir(parent_dir(&self.path))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.partial);
        }
    }
}

/// `backup create`'s writer: chunks from the node go to the file as they
/// come and through a [`BackupReader`], so the file is kept only if it
/// verifies.
#[derive(Debug)]
pub(crate) struct BackupSink {
    file: AtomicFile,
    reader: BackupReader,
    tally: Tally,
}

impl BackupSink {
    /// Starts a backup file at `path` (see [`AtomicFile::create`]).
    pub(crate) fn create(path: &Path, replace: bool) -> Result<BackupSink> {
        Ok(BackupSink {
            file: AtomicFile::create(path, replace)?,
            reader: BackupReader::default(),
            tally: Tally::default(),
        })
    }

    /// One chunk from the node.
    pub(crate) fn chunk(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write(bytes)?;
        self.reader.push(bytes);
        while let Some(item) = self.reader.next_item().map_err(|e| sent_damaged(&e))? {
            self.tally.add(&item);
        }
        Ok(())
    }

    /// The node said it was the last chunk: checks the file is whole and
    /// moves it into place.
    pub(crate) fn finish(self) -> Result<Summary> {
        self.reader.finish().map_err(|e| sent_damaged(&e))?;
        let bytes = self.file.len();
        let summary = self.tally.summary(bytes)?;
        self.file.commit()?;
        Ok(summary)
    }
}

fn sent_damaged(e: &confab_wire::Error) -> Failure {
    Failure::new(
        Kind::BadBackup,
        format!("the node sent a backup that failed verification ({e}); nothing was kept"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_wire::NodeKey;
    use confab_wire::backup::BackupWriter;

    fn sample() -> Vec<u8> {
        let h = BackupHeader {
            node: NodeKey::from_secret(&[7; 32]).node_id(),
            name: "acme".into(),
            created: 1_709_210_096_000,
            software: "confab-node 0.1.0".into(),
        };
        let (mut w, mut out) = BackupWriter::new(&h).unwrap();
        w.file("node.key", b"confab-node-key v1\nabc\n", &mut out)
            .unwrap();
        w.tree(b"meta", &mut out).unwrap();
        w.entry(b"schema", &1u32.to_be_bytes(), &mut out).unwrap();
        w.entry(b"recovering", &[1], &mut out).unwrap();
        w.tree(b"room_data", &mut out).unwrap();
        for i in 0..500u32 {
            w.entry(&i.to_be_bytes(), &vec![i as u8; 700], &mut out)
                .unwrap();
        }
        w.tree(b"__sled__default", &mut out).unwrap();
        w.entry(b"k", b"v", &mut out).unwrap();
        w.finish(&mut out);
        out
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    /// Opens a restored store. sled releases its file lock from a
    /// background thread shortly after the last handle drops, so a reopen
    /// in the same process may have to wait a moment (the CLI exits first).
    fn open_restored(dir: &Path) -> sled::Db {
        let path = dir.join("db");
        for _ in 0..100 {
            if let Ok(db) = sled::Config::new().path(&path).open() {
                return db;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        sled::Config::new().path(&path).open().unwrap()
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_good_file_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let bytes = sample();
        let file = write(tmp.path(), "b.confab", &bytes);
        let s = verify(&file).unwrap();
        assert_eq!(s.header.name, "acme");
        assert_eq!(s.files, vec!["node.key".to_string()]);
        assert_eq!(s.trees, 3);
        assert_eq!(s.entries, 503);
        assert_eq!(s.bytes, bytes.len() as u64);
        let all = confab_wire::backup::read_all(&bytes).unwrap();
        let Some(BackupItem::End { checksum, .. }) = all.last() else {
            panic!("no end")
        };
        assert_eq!(&s.checksum, checksum);
        assert_eq!(hex(&s.checksum).len(), 64);
    }

    #[test]
    fn damaged_files_fail_verification_with_exit_7() {
        let tmp = tempfile::tempdir().unwrap();
        let bytes = sample();
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 0x01;
        let cases = [
            ("flipped", flipped),
            ("truncated", bytes[..bytes.len() - 10].to_vec()),
            ("cut mid-record", bytes[..bytes.len() / 3].to_vec()),
            ("empty", Vec::new()),
            ("not a backup", b"hello world, not a backup".to_vec()),
        ];
        for (name, b) in cases {
            let file = write(tmp.path(), name, &b);
            let f = verify(&file).unwrap_err();
            assert_eq!(f.kind, Kind::BadBackup, "{name}: {f}");
            assert_eq!(f.kind.exit_code(), 7);
            assert!(f.message.contains("failed verification"), "{name}: {f}");
        }
        let f = verify(&tmp.path().join("missing")).unwrap_err();
        assert_eq!(f.kind, Kind::NotFound);
    }

    #[test]
    fn a_good_file_restores_into_a_new_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let file = write(tmp.path(), "b.confab", &sample());
        let dir = tmp.path().join("new").join("data");
        let r = restore(&file, &dir).unwrap();
        assert_eq!(r.summary.entries, 503);
        let key = dir.join("node.key");
        assert_eq!(fs::read(&key).unwrap(), b"confab-node-key v1\nabc\n");
        #[cfg(unix)]
        {
            assert_eq!(mode(&key), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        let db = open_restored(&dir);
        let meta = db.open_tree("meta").unwrap();
        assert_eq!(meta.get("recovering").unwrap().unwrap().as_ref(), &[1]);
        assert_eq!(
            meta.get("schema").unwrap().unwrap().as_ref(),
            &1u32.to_be_bytes()
        );
        let data = db.open_tree("room_data").unwrap();
        assert_eq!(data.len(), 500);
        assert_eq!(
            data.get(7u32.to_be_bytes()).unwrap().unwrap().as_ref(),
            &[7u8; 700][..]
        );
        assert_eq!(db.get("k").unwrap().unwrap().as_ref(), b"v");
    }

    #[test]
    fn a_good_file_restores_into_an_empty_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let file = write(tmp.path(), "b.confab", &sample());
        let dir = tmp.path().join("empty");
        fs::create_dir(&dir).unwrap();
        restore(&file, &dir).unwrap();
        let db = open_restored(&dir);
        assert_eq!(db.open_tree("room_data").unwrap().len(), 500);
    }

    #[test]
    fn a_damaged_file_restores_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let bytes = sample();
        let mut flipped = bytes.clone();
        // Late in the file: most of it would import before the flip.
        flipped[bytes.len() - 50] ^= 0x80;
        for (name, b) in [
            ("flipped", flipped),
            ("truncated", bytes[..bytes.len() - 1].to_vec()),
        ] {
            let file = write(tmp.path(), name, &b);
            let dir = tmp.path().join(format!("target-{name}"));
            let f = restore(&file, &dir).unwrap_err();
            assert_eq!(f.kind.exit_code(), 7, "{name}: {f}");
            assert!(!dir.exists(), "{name}: restore left {}", dir.display());

            let empty = tmp.path().join(format!("empty-{name}"));
            fs::create_dir(&empty).unwrap();
            assert_eq!(restore(&file, &empty).unwrap_err().kind, Kind::BadBackup);
            assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
        }
    }

    #[test]
    fn a_non_empty_target_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = write(tmp.path(), "b.confab", &sample());
        let dir = tmp.path().join("used");
        fs::create_dir(&dir).unwrap();
        write(&dir, "node.key", b"someone else's key");
        let f = restore(&file, &dir).unwrap_err();
        assert_eq!(f.kind.exit_code(), 5);
        assert!(f.message.contains("is not empty"), "{f}");
        assert_eq!(
            fs::read(dir.join("node.key")).unwrap(),
            b"someone else's key"
        );
        assert!(!dir.join("db").exists());

        let f = restore(&file, &file).unwrap_err();
        assert_eq!(f.kind.exit_code(), 5);
        assert!(f.message.contains("not a directory"), "{f}");
    }

    #[test]
    fn the_sink_keeps_only_a_whole_backup() {
        let tmp = tempfile::tempdir().unwrap();
        let bytes = sample();
        let out = tmp.path().join("node.backup");
        let mut sink = BackupSink::create(&out, false).unwrap();
        for c in bytes.chunks(1000) {
            sink.chunk(c).unwrap();
        }
        let s = sink.finish().unwrap();
        assert_eq!(fs::read(&out).unwrap(), bytes);
        assert_eq!(s.bytes, bytes.len() as u64);
        assert!(!with_suffix(&out, ".partial").exists());
        #[cfg(unix)]
        assert_eq!(mode(&out), 0o600);

        // No overwrite without --force.
        let f = BackupSink::create(&out, false).unwrap_err();
        assert_eq!(f.kind, Kind::Conflict);
        assert!(f.message.contains("--force"), "{f}");
        let mut sink = BackupSink::create(&out, true).unwrap();
        sink.chunk(&bytes).unwrap();
        sink.finish().unwrap();

        // A stream that stops early is not kept, and neither is its partial.
        let cut = tmp.path().join("cut.backup");
        let mut sink = BackupSink::create(&cut, false).unwrap();
        sink.chunk(&bytes[..bytes.len() - 5]).unwrap();
        assert_eq!(sink.finish().unwrap_err().kind, Kind::BadBackup);
        assert!(!cut.exists());
        assert!(!with_suffix(&cut, ".partial").exists());

        // Nor is one with a damaged byte, or one abandoned midway.
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        {
            let mut sink = BackupSink::create(&cut, false).unwrap();
            let failed = bad.chunks(4096).try_for_each(|c| sink.chunk(c));
            assert_eq!(failed.unwrap_err().kind, Kind::BadBackup);
        }
        assert!(!cut.exists());
        assert!(!with_suffix(&cut, ".partial").exists());
        let mut sink = BackupSink::create(&cut, false).unwrap();
        sink.chunk(&bytes[..100]).unwrap();
        drop(sink);
        assert!(!with_suffix(&cut, ".partial").exists());
    }
}
