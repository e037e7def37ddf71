//! Fetching a blob from a peer, chunk by chunk, as a state machine: the
//! driver feeds it the peer's chunks and sends the requests it asks for.
//! One request is in flight at a time, which is the flow control: a peer
//! never sends more than one chunk this node did not ask for.

use confab_wire::BlobId;
use confab_wire::fed::BlobChunk;
use confab_wire::sign::BlobHasher;

/// What a chunk led to.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Ask for the bytes from this offset next.
    Next(u64),
    /// The whole blob, its hash checked.
    Done(Vec<u8>),
    /// The peer's answer is unusable; try another peer.
    Failed(&'static str),
}

/// A blob being fetched from one peer.
#[derive(Debug)]
pub struct BlobFetch {
    blob: BlobId,
    max: u64,
    buf: Vec<u8>,
    total: Option<u64>,
}

impl BlobFetch {
    /// Starts fetching `blob`, refusing one larger than `max` bytes.
    pub fn new(blob: BlobId, max: u64) -> BlobFetch {
        BlobFetch {
            blob,
            max,
            buf: Vec::new(),
            total: None,
        }
    }

    /// Takes a chunk; `None` if it is not the one asked for (a stale or
    /// duplicated answer), which is ignored.
    pub fn on_chunk(&mut self, c: &BlobChunk) -> Option<ChunkOutcome> {
        if c.blob != self.blob || c.offset != self.buf.len() as u64 {
            return None;
        }
        match self.total {
            None if c.total > self.max => {
                return Some(ChunkOutcome::Failed("larger than this node's upload limit"));
            }
            None => self.total = Some(c.total),
            Some(t) if t != c.total => return Some(ChunkOutcome::Failed("its size changed")),
            Some(_) => {}
        }
        let total = self.total.unwrap_or(0);
        if c.data.is_empty() && (self.buf.len() as u64) < total {
            return Some(ChunkOutcome::Failed("the peer sent an empty chunk"));
        }
        if self.buf.len() as u64 + c.data.len() as u64 > total {
            return Some(ChunkOutcome::Failed("a chunk runs past the blob's size"));
        }
        self.buf.extend_from_slice(&c.data);
        if (self.buf.len() as u64) < total {
            return Some(ChunkOutcome::Next(self.buf.len() as u64));
        }
        if BlobHasher::of(&self.buf) != self.blob {
            return Some(ChunkOutcome::Failed("its bytes do not match the blob id"));
        }
        Some(ChunkOutcome::Done(std::mem::take(&mut self.buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(bytes: &[u8], size: usize) -> Vec<BlobChunk> {
        let blob = BlobHasher::of(bytes);
        let mut out: Vec<BlobChunk> = bytes
            .chunks(size)
            .enumerate()
            .map(|(i, d)| BlobChunk {
                blob,
                offset: (i * size) as u64,
                total: bytes.len() as u64,
                data: d.to_vec(),
            })
            .collect();
        if out.is_empty() {
            out.push(BlobChunk {
                blob,
                offset: 0,
                total: 0,
                data: vec![],
            });
        }
        out
    }

    #[test]
    fn a_blob_arrives_in_order_and_is_checked() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let cs = chunks(&bytes, 4096);
        let mut f = BlobFetch::new(BlobHasher::of(&bytes), 1 << 20);
        assert_eq!(f.on_chunk(&cs[1]), None, "out of order is ignored");
        assert_eq!(f.on_chunk(&cs[0]), Some(ChunkOutcome::Next(4096)));
        assert_eq!(f.on_chunk(&cs[0]), None, "a duplicate is ignored");
        assert_eq!(f.on_chunk(&cs[1]), Some(ChunkOutcome::Next(8192)));
        assert_eq!(f.on_chunk(&cs[2]), Some(ChunkOutcome::Done(bytes)));
    }

    #[test]
    fn wrong_bytes_sizes_and_oversized_blobs_fail() {
        let bytes = vec![7u8; 5000];
        let mut cs = chunks(&bytes, 5000);
        cs[0].data[10] ^= 1;
        let mut f = BlobFetch::new(BlobHasher::of(&bytes), 1 << 20);
        assert!(matches!(f.on_chunk(&cs[0]), Some(ChunkOutcome::Failed(m)) if m.contains("match")));
        let mut f = BlobFetch::new(BlobHasher::of(&bytes), 100);
        assert!(matches!(
            f.on_chunk(&chunks(&bytes, 5000)[0]),
            Some(ChunkOutcome::Failed(m)) if m.contains("limit")
        ));
        let mut f = BlobFetch::new(BlobHasher::of(&bytes), 1 << 20);
        let mut c = chunks(&bytes, 1000);
        assert_eq!(f.on_chunk(&c[0]), Some(ChunkOutcome::Next(1000)));
        c[1].total = 6000;
        assert!(matches!(f.on_chunk(&c[1]), Some(ChunkOutcome::Failed(_))));
        let empty = chunks(&[], 10);
        let mut f = BlobFetch::new(BlobHasher::of(&[]), 10);
        assert_eq!(f.on_chunk(&empty[0]), Some(ChunkOutcome::Done(vec![])));
    }
}
