//! Signature verification spread over every core.
//!
//! Each event is verified on its own with `verify_strict` (no batch
//! equations), so every node accepts exactly the same set of signatures
//! however its work was split.

use confab_wire::sign::KeyCache;
use confab_wire::{SignedEvent, VerifiedEvent};

thread_local! {
    static KEYS: std::cell::RefCell<KeyCache> = std::cell::RefCell::new(KeyCache::default());
}

/// Below this many events a batch is verified on the calling thread: a
/// thread costs more than it saves.
pub const PARALLEL_MIN: usize = 32;

/// Verifies every event; the result for each is what
/// [`SignedEvent::verify`] gives, in the same order.
pub fn verify_all(events: Vec<SignedEvent>) -> Vec<confab_wire::Result<VerifiedEvent>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || events.len() < PARALLEL_MIN {
        // Small batches (live pushes) are the common case: keep each
        // thread's decompressed keys, which cost as much as a verify.
        return KEYS.with(|keys| {
            let mut keys = keys.borrow_mut();
            events
                .into_iter()
                .map(|e| e.verify_cached(&mut keys))
                .collect()
        });
    }
    let chunk = events.len().div_ceil(threads);
    let mut events = events;
    let mut parts: Vec<Vec<SignedEvent>> = Vec::with_capacity(threads);
    while events.len() > chunk {
        let rest = events.split_off(chunk);
        parts.push(events);
        events = rest;
    }
    parts.push(events);
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                s.spawn(move || {
                    let mut keys = KeyCache::default();
                    part.into_iter()
                        .map(|e| e.verify_cached(&mut keys))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    // verify never panics; if it did, fail closed.
                    Vec::new()
                })
            })
            .collect()
    })
}

/// Verification on a thread of its own, so a caller can store batch k
/// while batch k+1 is verified (ingest from a peer: the two stages use
/// both cores). Batches come back in the order they went in.
#[derive(Debug)]
pub struct Verifier {
    input: Option<std::sync::mpsc::SyncSender<Vec<SignedEvent>>>,
    output: std::sync::mpsc::Receiver<Vec<confab_wire::Result<VerifiedEvent>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Verifier {
    /// Starts the thread; at most `depth` batches wait on either side.
    pub fn start(depth: usize) -> Verifier {
        let (input, batches) = std::sync::mpsc::sync_channel::<Vec<SignedEvent>>(depth);
        let (results, output) = std::sync::mpsc::sync_channel(depth);
        let thread = std::thread::Builder::new()
            .name("confab-verify".into())
            .spawn(move || {
                let mut keys = KeyCache::default();
                for batch in batches {
                    let verified = batch
                        .into_iter()
                        .map(|e| e.verify_cached(&mut keys))
                        .collect();
                    if results.send(verified).is_err() {
                        return;
                    }
                }
            })
            .ok();
        Verifier {
            input: Some(input),
            output,
            thread,
        }
    }

    /// Queues a batch (blocks while `depth` batches are waiting). False if
    /// the thread is gone.
    pub fn push(&self, batch: Vec<SignedEvent>) -> bool {
        self.input.as_ref().is_some_and(|i| i.send(batch).is_ok())
    }

    /// The next verified batch, in order; `None` once the thread is gone.
    pub fn next(&self) -> Option<Vec<confab_wire::Result<VerifiedEvent>>> {
        self.output.recv().ok()
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        self.input.take();
        while self.output.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            // The thread ends once its input is closed and its last result
            // is taken or refused.
            drop(std::mem::replace(
                &mut self.output,
                std::sync::mpsc::sync_channel(0).1,
            ));
            let _ = t.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use confab_wire::event::{Content, MessageContent};
    use confab_wire::{ContentHash, EventHeader, EventId, EventKind, NodeKey, RoomId, UserId};

    fn events(n: usize) -> Vec<SignedEvent> {
        let key = NodeKey::from_secret(&[5; 32]);
        let author = UserId::new(key.node_id(), "a").unwrap();
        (0..n)
            .map(|i| {
                let h = EventHeader {
                    room: Some(RoomId([1; 32])),
                    author: author.clone(),
                    kind: EventKind::Message,
                    prev: vec![EventId([2; 32])],
                    depth: 1 + i as u64,
                    origin_seq: 2 + i as u64,
                    origin_prev: Some(EventId([3; 32])),
                    ts: i as u64,
                    content_hash: ContentHash([0; 32]),
                };
                let c = Content::Message(MessageContent {
                    body: format!("m{i}"),
                    ..Default::default()
                });
                key.sign_event(h, &c).unwrap().into_signed()
            })
            .collect()
    }

    #[test]
    fn parallel_results_equal_single_results_in_order() {
        let mut evs = events(200);
        // Spoil a few, spread over the chunks.
        for i in [0usize, 57, 101, 199] {
            evs[i].signature[3] ^= 1;
        }
        let single: Vec<bool> = evs.iter().cloned().map(|e| e.verify().is_ok()).collect();
        let parallel = verify_all(evs.clone());
        assert_eq!(parallel.len(), evs.len());
        let par_ok: Vec<bool> = parallel.iter().map(|r| r.is_ok()).collect();
        assert_eq!(par_ok, single);
        for (r, e) in parallel.iter().zip(&evs) {
            if let Ok(v) = r {
                assert_eq!(v.signed(), e);
            }
        }
        assert_eq!(single.iter().filter(|ok| !**ok).count(), 4);
    }

    #[test]
    fn the_pipeline_returns_batches_in_order() {
        let evs = events(100);
        let v = Verifier::start(2);
        let batches: Vec<Vec<SignedEvent>> = evs.chunks(7).map(<[_]>::to_vec).collect();
        let mut got = Vec::new();
        let mut sent = 0;
        for b in &batches {
            assert!(v.push(b.clone()));
            sent += 1;
            if sent >= 2 {
                got.extend(v.next().unwrap());
            }
        }
        while got.len() < evs.len() {
            got.extend(v.next().unwrap());
        }
        let ids: Vec<_> = got.into_iter().map(|r| r.unwrap().id()).collect();
        let want: Vec<_> = evs.iter().map(SignedEvent::id).collect();
        assert_eq!(ids, want);
    }
}
