//! Backup files on this machine: the writer behind `backup create`, and
//! the offline `backup verify` (the node restores: `confab-node restore`).
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
use confab_wire::backup::{BackupHeader, BackupItem, BackupReader};

use crate::error::{Failure, Kind, Result};

/// Bytes read from a backup file at a time.
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// What a backup holds, counted while it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    /// The header: node, name, creation time, software.
    pub(crate) header: BackupHeader,
    /// Files of the data directory it carries (`node.key`).
    pub(crate) files: Vec<String>,
    /// Tree records.
    pub(crate) trees: u64,
    /// Entries and events, as the end record counts them.
    pub(crate) entries: u64,
    /// Events of the log (format 2).
    pub(crate) events: u64,
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
        let events = i64::try_from(self.events).unwrap_or(i64::MAX);
        vec![
            ("node".into(), Cell::text(self.header.node)),
            ("name".into(), Cell::text(&self.header.name)),
            ("created".into(), Cell::Time(self.header.created)),
            ("software".into(), Cell::text(&self.header.software)),
            ("files".into(), Cell::text(self.files.join(", "))),
            ("trees".into(), Cell::Int(trees)),
            ("entries".into(), Cell::Int(entries)),
            ("events".into(), Cell::Int(events)),
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
    events: u64,
    end: Option<(u64, [u8; 32])>,
}

impl Tally {
    fn add(&mut self, item: &BackupItem) {
        match item {
            BackupItem::Header(h) => self.header = Some(h.clone()),
            BackupItem::File { name, .. } => self.files.push(name.clone()),
            BackupItem::Tree(_) => self.trees += 1,
            BackupItem::Entry { .. } => {}
            BackupItem::Event { .. } => self.events += 1,
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
                events: self.events,
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
