//! What the admin service keeps: the audit log, runtime settings changed by
//! admins, peers added or removed at run time, node-wide roles, report
//! resolutions, and backups of the whole store.
//!
//! | tree               | key                      | value |
//! |--------------------|--------------------------|-------|
//! | `id__audit`        | id(BE)                   | [`AuditEntry`] (bincode) |
//! | `key__setting`     | setting name             | its value as text |
//! | `node__peer`       | node id                  | address text, or empty: removed |
//! | `name__node_role`  | role name                | permissions bits (BE u32) |
//! | `user__node_role`  | user id text 0x00 role   | — |

use bincode::{Decode, Encode};
use confab_wire::backup::{BackupHeader, BackupWriter};
use confab_wire::{NodeId, Permissions, UserId};

use super::{Store, decode, encode, store_err};
use crate::error::{Error, Result};

/// One admin action.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AuditEntry {
    /// When (ms since epoch).
    pub ts: u64,
    /// Who: the OS user of a socket connection, or the admin key.
    pub actor: String,
    /// The command (`mute`, `user create`, …).
    pub command: String,
    /// Its arguments, secrets left out.
    pub detail: String,
    /// `ok`, or the error code.
    pub outcome: String,
}

/// A peer added or removed by an admin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerChange {
    /// Added (or re-added) with this address.
    Added(String),
    /// Removed (also a peer from the config file).
    Removed,
}

/// Prefixes of `room_data` that are not derived from the events: read
/// and delivery positions, and records of sends (those of rooms older than
/// rules version 3 are not in their events).
const NOT_DERIVED: &[u8] = &[
    super::views::P_READ,
    super::views::P_DELIVERED,
    super::client::P_SENT,
];

/// Meta keys a backup carries: not the marks of this store's own log and
/// recovery.
fn meta_travels(k: &[u8]) -> bool {
    k != b"recovering"
        && k != super::LOG_CHECKED
        && k != super::INLINE
        && k != super::search::SEARCH_THROUGH
        && !k.starts_with(super::CAUGHT_UP_PREFIX)
}

impl Store {
    fn admin_tree(&self, name: &'static str) -> Result<sled::Tree> {
        self.db.open_tree(name).map_err(store_err(name))
    }

    /// Appends to the audit log (durable after [`Store::wait_durable`]).
    pub fn audit(&self, entry: &AuditEntry) -> Result<u64> {
        let id = self.db.generate_id().map_err(store_err("new audit id"))?;
        self.admin_tree("id__audit")?
            .insert(id.to_be_bytes(), encode("audit entry", entry)?)
            .map_err(store_err("write audit entry"))?;
        Ok(id)
    }

    /// The newest `limit` audit entries, oldest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<(u64, AuditEntry)>> {
        let mut out = Vec::new();
        for item in self.admin_tree("id__audit")?.iter().rev().take(limit) {
            let (k, v) = item.map_err(store_err("scan audit log"))?;
            let id = <[u8; 8]>::try_from(k.as_ref()).map_or(0, u64::from_be_bytes);
            out.push((id, decode("audit entry", &v)?));
        }
        out.reverse();
        Ok(out)
    }

    /// Runtime settings admins changed, by name.
    pub fn settings_changed(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for item in self.admin_tree("key__setting")?.iter() {
            let (k, v) = item.map_err(store_err("scan settings"))?;
            out.push((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        Ok(out)
    }

    /// Keeps a runtime setting (durable after [`Store::wait_durable`]).
    pub fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        self.admin_tree("key__setting")?
            .insert(name.as_bytes(), value.as_bytes())
            .map(|_| ())
            .map_err(store_err("write setting"))
    }

    /// Peers added or removed at run time.
    pub fn peer_changes(&self) -> Result<Vec<(NodeId, PeerChange)>> {
        let mut out = Vec::new();
        for item in self.admin_tree("node__peer")?.iter() {
            let (k, v) = item.map_err(store_err("scan peers"))?;
            let Ok(bytes) = <[u8; 32]>::try_from(k.as_ref()) else {
                continue;
            };
            let Ok(node) = NodeId::from_bytes(&bytes) else {
                continue;
            };
            let change = if v.is_empty() {
                PeerChange::Removed
            } else {
                PeerChange::Added(String::from_utf8_lossy(&v).into_owned())
            };
            out.push((node, change));
        }
        Ok(out)
    }

    /// Records a peer added or removed (durable after [`Store::wait_durable`]).
    pub fn set_peer_change(&self, node: &NodeId, change: &PeerChange) -> Result<()> {
        let v: &[u8] = match change {
            PeerChange::Added(addr) => addr.as_bytes(),
            PeerChange::Removed => &[],
        };
        self.admin_tree("node__peer")?
            .insert(node.as_bytes(), v)
            .map(|_| ())
            .map_err(store_err("write peer"))
    }

    /// Node-wide roles: name and permissions.
    pub fn node_roles(&self) -> Result<Vec<(String, Permissions)>> {
        let mut out = Vec::new();
        for item in self.admin_tree("name__node_role")?.iter() {
            let (k, v) = item.map_err(store_err("scan node roles"))?;
            let bits = <[u8; 4]>::try_from(v.as_ref()).map_or(0, u32::from_be_bytes);
            out.push((String::from_utf8_lossy(&k).into_owned(), Permissions(bits)));
        }
        Ok(out)
    }

    /// Defines a node-wide role.
    pub fn define_node_role(&self, role: &str, p: Permissions) -> Result<()> {
        self.admin_tree("name__node_role")?
            .insert(role.as_bytes(), &p.0.to_be_bytes())
            .map(|_| ())
            .map_err(store_err("write node role"))
    }

    /// Node-wide grants: (user, role).
    pub fn node_grants(&self) -> Result<Vec<(UserId, String)>> {
        let mut out = Vec::new();
        for item in self.admin_tree("user__node_role")?.iter() {
            let (k, _) = item.map_err(store_err("scan node grants"))?;
            let Some(split) = k.iter().position(|b| *b == 0) else {
                continue;
            };
            let (Ok(user), Ok(role)) = (
                std::str::from_utf8(&k[..split]).map(str::parse::<UserId>),
                std::str::from_utf8(&k[split + 1..]),
            ) else {
                continue;
            };
            if let Ok(user) = user {
                out.push((user, role.to_string()));
            }
        }
        Ok(out)
    }

    /// Grants (or revokes) a node-wide role.
    pub fn set_node_grant(&self, user: &UserId, role: &str, on: bool) -> Result<()> {
        let mut k = user.to_string().into_bytes();
        k.push(0);
        k.extend_from_slice(role.as_bytes());
        let t = self.admin_tree("user__node_role")?;
        if on {
            t.insert(k, &[]).map(|_| ())
        } else {
            t.remove(k).map(|_| ())
        }
        .map_err(store_err("write node grant"))
    }

    /// Closes a report with a note; false if there is no such report.
    pub fn resolve_report(&self, id: u64, note: &str) -> Result<bool> {
        let t = self.admin_tree("id__report")?;
        let Some(v) = t.get(id.to_be_bytes()).map_err(store_err("read report"))? else {
            return Ok(false);
        };
        let mut r: super::client::Report = decode("report", &v)?;
        r.resolution = Some(note.to_string());
        t.insert(id.to_be_bytes(), encode("report", &r)?)
            .map_err(store_err("write report"))?;
        Ok(true)
    }

    /// One report.
    pub fn report(&self, id: u64) -> Result<Option<super::client::Report>> {
        match self
            .admin_tree("id__report")?
            .get(id.to_be_bytes())
            .map_err(store_err("read report"))?
        {
            Some(v) => Ok(Some(decode("report", &v)?)),
            None => Ok(None),
        }
    }

    /// Number of accounts.
    pub fn account_count(&self) -> Result<usize> {
        Ok(self.admin_tree("localpart__account")?.len())
    }

    /// Reads every key and value of every tree once and returns their
    /// bytes: the floor under any backup (benchmarks).
    pub fn scan_all_bytes(&self) -> Result<u64> {
        let mut n = 0u64;
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name).map_err(store_err("open tree"))?;
            for item in tree.iter() {
                let (k, v) = item.map_err(store_err("scan"))?;
                n += (k.len() + v.len()) as u64;
            }
        }
        Ok(n)
    }

    /// Writes the store in the backup format (2), calling `out` with each
    /// piece; `key_file` is the node's key file, carried so a restore is
    /// the same node. The copy's meta tree says `recovering`: a restored
    /// node has missed what it posted after the backup and must hear its
    /// own chain back from peers before it posts again, in every room (the
    /// copy holds no room caught up).
    ///
    /// Nothing waits for it: the events are the log up to where it stood
    /// when the backup began (its records never change but for erased
    /// text, which reads as erased); of `room_data` only what is not
    /// derived from them is copied (read and delivery positions, records
    /// of sends); every other tree is copied key by key, each key as it is
    /// when read. A restored node derives its indexes from the events.
    /// Returns (entries and events, checksum).
    pub fn write_backup(
        &self,
        header: &BackupHeader,
        key_file: &[u8],
        mut out: impl FnMut(Vec<u8>) -> Result<()>,
    ) -> Result<(u64, [u8; 32])> {
        const PIECE: usize = confab_wire::admin::BACKUP_CHUNK_MAX / 2;
        let wire = |e: confab_wire::Error| Error::Corrupt {
            what: "backup",
            detail: e.to_string(),
        };
        let upto = self.log.applied();
        let (mut w, mut buf) = BackupWriter::new(header).map_err(wire)?;
        w.file("node.key", key_file, &mut buf).map_err(wire)?;
        let mut entries = 0u64;
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name).map_err(store_err("open tree"))?;
            w.tree(&name, &mut buf).map_err(wire)?;
            let is_meta = name.as_ref() == b"meta";
            let is_data = name.as_ref() == b"room_data";
            for item in tree.iter() {
                let (k, v) = item.map_err(store_err("read for backup"))?;
                if is_meta && !meta_travels(&k) {
                    continue;
                }
                if is_data && !k.first().is_some_and(|p| NOT_DERIVED.contains(p)) {
                    continue;
                }
                w.entry(&k, &v, &mut buf).map_err(wire)?;
                entries += 1;
                if buf.len() >= PIECE {
                    out(std::mem::take(&mut buf))?;
                }
            }
            if is_meta {
                w.entry(b"recovering", &[1], &mut buf).map_err(wire)?;
                entries += 1;
            }
        }
        self.log.scan_until(upto, |_, rec| {
            w.event(&rec.room, &rec.signed, &mut buf).map_err(wire)?;
            entries += 1;
            if buf.len() >= PIECE {
                out(std::mem::take(&mut buf))?;
            }
            Ok(())
        })?;
        let sum = w.finish(&mut buf);
        out(buf)?;
        Ok((entries, sum))
    }
}
