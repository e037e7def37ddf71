//! Attachments: content-addressed blobs, stored in chunks in their own
//! sled tree. A blob's size record is written in the same batch as its
//! chunks, so a blob is visible whole or not at all.
//!
//! | key                          | value            |
//! |------------------------------|------------------|
//! | `S` blob_id                  | size (u64 BE)    |
//! | `D` blob_id chunk_index(BE)  | up to [`CHUNK`] bytes |

use confab_wire::BlobId;
use confab_wire::sign::BlobHasher;

use super::{Store, key, store_err};
use crate::error::{Error, Result};

/// Bytes per stored chunk (also the most one read returns).
pub const CHUNK: usize = 256 * 1024;

const P_SIZE: u8 = b'S';
const P_DATA: u8 = b'D';

impl Store {
    fn blobs(&self) -> Result<sled::Tree> {
        self.db.open_tree("blobs").map_err(store_err("open blobs"))
    }

    /// Stores a blob (applied, not yet durable: follow with
    /// [`Store::wait_durable`]); returns its id. Storing a blob twice
    /// stores it once.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<BlobId> {
        let id = BlobHasher::of(bytes);
        let tree = self.blobs()?;
        if tree
            .contains_key(key(P_SIZE, &[id.as_bytes()]))
            .map_err(store_err("read blob"))?
        {
            return Ok(id);
        }
        let mut batch = sled::Batch::default();
        for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
            batch.insert(
                key(P_DATA, &[id.as_bytes(), &(i as u32).to_be_bytes()]),
                chunk,
            );
        }
        batch.insert(
            key(P_SIZE, &[id.as_bytes()]),
            &(bytes.len() as u64).to_be_bytes(),
        );
        tree.apply_batch(batch).map_err(store_err("write blob"))?;
        Ok(id)
    }

    /// Stores the blob `id` of `size` bytes read from `file` (an upload
    /// streamed to disk), one [`CHUNK`] at a time, so memory stays one
    /// chunk whatever the size. The bytes are hashed again as they are
    /// read and must give `id`; the size record is written last, so the
    /// blob is visible whole or not at all. Applied, not yet durable.
    pub fn put_blob_file(
        &self,
        id: &BlobId,
        size: u64,
        file: &mut impl std::io::Read,
    ) -> Result<()> {
        let tree = self.blobs()?;
        let size_key = key(P_SIZE, &[id.as_bytes()]);
        if tree
            .contains_key(&size_key)
            .map_err(store_err("read blob"))?
        {
            return Ok(());
        }
        let mut hasher = BlobHasher::default();
        let mut chunk = vec![0u8; CHUNK];
        let mut read = 0u64;
        let mut index = 0u32;
        while read < size {
            let want = (size - read).min(CHUNK as u64) as usize;
            file.read_exact(&mut chunk[..want]).map_err(|e| Error::Io {
                path: "upload".into(),
                source: e,
            })?;
            hasher.update(&chunk[..want]);
            tree.insert(
                key(P_DATA, &[id.as_bytes(), &index.to_be_bytes()]),
                &chunk[..want],
            )
            .map_err(store_err("write blob"))?;
            read += want as u64;
            index += 1;
        }
        if hasher.finish() != *id {
            for i in 0..index {
                tree.remove(key(P_DATA, &[id.as_bytes(), &i.to_be_bytes()]))
                    .map_err(store_err("write blob"))?;
            }
            return Err(Error::Corrupt {
                what: "upload",
                detail: format!("its file no longer hashes to {id}"),
            });
        }
        tree.insert(size_key, &size.to_be_bytes())
            .map_err(store_err("write blob"))?;
        Ok(())
    }

    /// A stored blob's size.
    pub fn blob_size(&self, id: &BlobId) -> Result<Option<u64>> {
        let Some(v) = self
            .blobs()?
            .get(key(P_SIZE, &[id.as_bytes()]))
            .map_err(store_err("read blob"))?
        else {
            return Ok(None);
        };
        let v: [u8; 8] = v.as_ref().try_into().map_err(|_| Error::Corrupt {
            what: "blob size",
            detail: "not 8 bytes".into(),
        })?;
        Ok(Some(u64::from_be_bytes(v)))
    }

    /// Bytes of a blob from `offset`, at most up to the end of the chunk
    /// holding it; with the blob's size. `None` if the blob is not held.
    pub fn read_blob(&self, id: &BlobId, offset: u64) -> Result<Option<(u64, Vec<u8>)>> {
        let Some(size) = self.blob_size(id)? else {
            return Ok(None);
        };
        if offset >= size {
            return Ok(Some((size, Vec::new())));
        }
        let index = offset / CHUNK as u64;
        let within = (offset % CHUNK as u64) as usize;
        let chunk = self
            .blobs()?
            .get(key(P_DATA, &[id.as_bytes(), &(index as u32).to_be_bytes()]))
            .map_err(store_err("read blob"))?
            .ok_or(Error::Corrupt {
                what: "blob",
                detail: format!("{id} lacks chunk {index}"),
            })?;
        let data = chunk.get(within..).unwrap_or_default().to_vec();
        Ok(Some((size, data)))
    }

    /// A whole blob, if held.
    pub fn blob(&self, id: &BlobId) -> Result<Option<Vec<u8>>> {
        let Some(size) = self.blob_size(id)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(size.min(1 << 30) as usize);
        while (out.len() as u64) < size {
            match self.read_blob(id, out.len() as u64)? {
                Some((_, data)) if !data.is_empty() => out.extend_from_slice(&data),
                _ => {
                    return Err(Error::Corrupt {
                        what: "blob",
                        detail: format!("{id} is shorter than its size"),
                    });
                }
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_in_chunks_and_are_stored_once() {
        let store = Store::temporary().unwrap();
        let bytes: Vec<u8> = (0..(CHUNK * 2 + 1000)).map(|i| (i % 251) as u8).collect();
        let id = store.put_blob(&bytes).unwrap();
        assert_eq!(id, BlobHasher::of(&bytes));
        assert_eq!(store.put_blob(&bytes).unwrap(), id);
        store.wait_durable().unwrap();
        assert_eq!(store.blob_size(&id).unwrap(), Some(bytes.len() as u64));
        assert_eq!(store.blob(&id).unwrap().unwrap(), bytes);
        let (total, part) = store.read_blob(&id, CHUNK as u64 + 5).unwrap().unwrap();
        assert_eq!(total, bytes.len() as u64);
        assert_eq!(part, bytes[CHUNK + 5..CHUNK * 2]);
        assert!(store.read_blob(&BlobId([9; 32]), 0).unwrap().is_none());
        let empty = store.put_blob(&[]).unwrap();
        assert_eq!(store.blob(&empty).unwrap().unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn a_blob_streams_in_from_a_file_and_must_hash_to_its_id() {
        let store = Store::temporary().unwrap();
        let bytes: Vec<u8> = (0..(CHUNK * 3 + 17)).map(|i| (i % 241) as u8).collect();
        let id = BlobHasher::of(&bytes);
        store
            .put_blob_file(&id, bytes.len() as u64, &mut &bytes[..])
            .unwrap();
        assert_eq!(store.blob(&id).unwrap().unwrap(), bytes);
        // Bytes that changed on disk are refused, and nothing is visible.
        let other = BlobId([4; 32]);
        assert!(matches!(
            store.put_blob_file(&other, bytes.len() as u64, &mut &bytes[..]),
            Err(Error::Corrupt { .. })
        ));
        assert_eq!(store.blob_size(&other).unwrap(), None);
        // A file shorter than announced is an error, not a short blob.
        let short = BlobId([5; 32]);
        assert!(store.put_blob_file(&short, 10, &mut &bytes[..3]).is_err());
        assert_eq!(store.blob_size(&short).unwrap(), None);
    }
}
