//! An endpoint's long-term key (a node's, a gateway's): made once, kept in the data directory, and
//! refused if anyone but the node's user could read or change it.
//!
//! # Key file format
//!
//! `<data_dir>/node.key` is two lines of ASCII text:
//!
//! ```text
//! confab-node-key v1
//! <64 lowercase hex digits: the 32-byte ed25519 secret key>
//! ```
//!
//! A header makes a stray file recognisable and leaves room for a v2; hex
//! keeps the file printable so it can be backed up or moved with a text
//! editor. The public key (the node id) is derived, so it is not stored.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::NodeKey;

use super::{EndpointError as Error, Result};

/// First line of every key file.
const HEADER: &str = "confab-node-key v1";
/// Anything longer than this is not a key file; stops us reading a huge file.
const KEY_FILE_MAX_BYTES: u64 = 256;

/// Loads or creates the node's key file (see the [module docs](self) for the
/// format).
#[derive(Debug)]
pub struct NodeIdentity;

impl NodeIdentity {
    /// Name of the key file inside the data directory.
    pub const KEY_FILE: &'static str = "node.key";

    /// Path of the key file for `data_dir`.
    pub fn key_path(data_dir: &Path) -> PathBuf {
        data_dir.join(Self::KEY_FILE)
    }

    /// Returns the node's key, generating and saving one on first start
    /// (see [`load_or_create`]).
    pub fn load_or_create(data_dir: &Path) -> Result<NodeKey> {
        load_or_create(data_dir, Self::KEY_FILE)
    }
}

/// Returns the key in `data_dir/file_name`, generating and saving one on
/// first start. Gateways keep theirs as `gateway.key`, in the same format.
///
/// Creates `data_dir` (mode 0700) if it is missing. A new key is written
/// to a temporary file, synced, and then linked into place without
/// replacing an existing file, so a crash never leaves a half-written
/// key and two racing starts cannot end up with different identities.
///
/// An existing key file is refused (the endpoint must not start, and must
/// not silently make a new identity) if it is group- or world-accessible,
/// or not in the format above.
pub fn load_or_create(data_dir: &Path, file_name: &str) -> Result<NodeKey> {
    create_private_dir(data_dir)?;
    let path = data_dir.join(file_name);
    match fs::File::open(&path) {
        Ok(file) => load(&path, file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(data_dir, &path),
        Err(source) => Err(Error::Io { path, source }),
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })
}

fn load(path: &Path, mut file: fs::File) -> Result<NodeKey> {
    let io_err = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let bad = |reason: String| Error::KeyFile {
        path: path.to_owned(),
        reason,
    };
    // Checked on the open handle, not the path, so the file we check is the
    // file we read.
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "permissions are {mode:03o}, so other users can read or change the node's \
                 secret key; refusing to start. Fix with `chmod 600 {}` (and consider the key \
                 compromised if others may have read it)",
                path.display()
            )));
        }
    }
    let mut text = Vec::new();
    (&mut file)
        .take(KEY_FILE_MAX_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(io_err)?;
    let parsed = parse(&text).map_err(|reason| bad(reason.into()));
    wipe(&mut text);
    let key = parsed?;
    Ok(key)
}

/// Parses the file's bytes. The error does not echo the content: it may be
/// a secret in another format.
fn parse(text: &[u8]) -> std::result::Result<NodeKey, &'static str> {
    const FORMAT: &str = "expected the line `confab-node-key v1` followed by a line of 64 hex \
                          digits";
    if text.len() as u64 > KEY_FILE_MAX_BYTES {
        return Err(
            "file is too large to be a node key; expected the line `confab-node-key v1` \
                    followed by a line of 64 hex digits",
        );
    }
    let text = std::str::from_utf8(text).map_err(|_| FORMAT)?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(HEADER) {
        return Err(
            "not a Confab node key: expected the first line `confab-node-key v1` followed by a \
             line of 64 hex digits",
        );
    }
    let hex_line = lines.next().ok_or(FORMAT)?;
    if lines.next().is_some() {
        return Err(
            "unexpected text after the key line; expected exactly the line \
                    `confab-node-key v1` followed by a line of 64 hex digits",
        );
    }
    let mut secret = [0u8; 32];
    if hex_line.len() != 64 || hex::decode_to_slice(hex_line, &mut secret).is_err() {
        return Err("the key line must be exactly 64 hex digits (32 bytes)");
    }
    let key = NodeKey::from_secret(&secret);
    wipe(&mut secret);
    Ok(key)
}

fn create(data_dir: &Path, path: &Path) -> Result<NodeKey> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|e| Error::Io {
        path: path.to_owned(),
        source: std::io::Error::other(format!("no randomness for a new key: {e}")),
    })?;
    let key = NodeKey::from_secret(&secret);
    wipe(&mut secret);

    let mut builder = tempfile::Builder::new();
    let tmp_prefix = format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key")
    );
    builder.prefix(&tmp_prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o600));
    }
    let mut tmp = builder.tempfile_in(data_dir).map_err(io_err(data_dir))?;
    let mut text = format!("{HEADER}\n{}\n", hex::encode(key.secret())).into_bytes();
    let written = tmp.write_all(&text).and_then(|()| tmp.as_file().sync_all());
    wipe(&mut text);
    written.map_err(io_err(tmp.path()))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {}
        // Another process made the key between our open and our link: its
        // key is the identity now. (The temporary file is removed on drop.)
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            let file = fs::File::open(path).map_err(io_err(path))?;
            return load(path, file);
        }
        Err(e) => return Err(io_err(path)(e.error)),
    }
    // The new directory entry is durable only once the directory is synced.
    #[cfg(unix)]
    fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(data_dir))?;
    Ok(key)
}

/// Best-effort erasure of secret bytes before their memory is freed.
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    // Keeps the zeroing from being optimised away as a dead store.
    std::hint::black_box(bytes);
}

// The tests are about Unix permission bits.
#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn create_then_reload_gives_same_node_id() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data").join("nested");
        let first = NodeIdentity::load_or_create(&data).unwrap();
        let second = NodeIdentity::load_or_create(&data).unwrap();
        assert_eq!(first.node_id(), second.node_id());
        assert_eq!(first.secret(), second.secret());
        let path = NodeIdentity::key_path(&data);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&data), 0o700);
        // Only the key file is left behind, no temporary files.
        let names: Vec<_> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("node.key")]);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("confab-node-key v1\n"), "{text}");
        assert_eq!(text.len(), HEADER.len() + 1 + 64 + 1);
    }

    #[test]
    fn different_dirs_get_different_keys() {
        let dir = tempfile::tempdir().unwrap();
        let a = NodeIdentity::load_or_create(&dir.path().join("a")).unwrap();
        let b = NodeIdentity::load_or_create(&dir.path().join("b")).unwrap();
        assert_ne!(a.node_id(), b.node_id());
    }

    #[test]
    fn existing_file_is_loaded_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = NodeIdentity::key_path(dir.path());
        let secret = [7u8; 32];
        fs::write(&path, format!("{HEADER}\n{}\n", hex::encode(secret))).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        let key = NodeIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(key.node_id(), NodeKey::from_secret(&secret).node_id());
    }

    #[test]
    fn world_readable_key_is_refused_with_fix() {
        let dir = tempfile::tempdir().unwrap();
        NodeIdentity::load_or_create(dir.path()).unwrap();
        let path = NodeIdentity::key_path(dir.path());
        for bad_mode in [0o644, 0o660, 0o602] {
            fs::set_permissions(&path, fs::Permissions::from_mode(bad_mode)).unwrap();
            let err = NodeIdentity::load_or_create(dir.path()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::KeyFile { .. }), "{msg}");
            assert!(msg.contains("chmod 600"), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
        // The file was not replaced by a new identity.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        NodeIdentity::load_or_create(dir.path()).unwrap();
    }

    #[test]
    fn corrupt_files_are_refused_without_echoing_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = NodeIdentity::key_path(dir.path());
        let good_hex = hex::encode([9u8; 32]);
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![0xAB; 32],
            format!("{HEADER}\n").into_bytes(),
            format!("{HEADER}\n{}\n", &good_hex[..62]).into_bytes(),
            format!("{HEADER}\n{}zz\n", &good_hex[..62]).into_bytes(),
            format!("confab-node-key v2\n{good_hex}\n").into_bytes(),
            format!("{HEADER}\n{good_hex}\n{good_hex}\n").into_bytes(),
            vec![b'a'; 4096],
        ];
        for content in cases {
            fs::write(&path, &content).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let err = NodeIdentity::load_or_create(dir.path()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::KeyFile { .. }), "{msg}");
            assert!(msg.contains("node.key"), "{msg}");
            assert!(!msg.contains(&good_hex[..16]), "secret echoed: {msg}");
            // The bad file is left for the operator, never overwritten.
            assert_eq!(fs::read(&path).unwrap(), content);
        }
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = NodeIdentity::key_path(dir.path());
        let secret = [3u8; 32];
        fs::write(&path, format!("{HEADER}\r\n{}\r\n", hex::encode(secret))).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let key = NodeIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(key.secret(), secret);
    }
}
