//! Signature verification spread over every core.
//!
//! Each event is verified on its own with `verify_strict` (no batch
//! equations), so every node accepts exactly the same set of signatures
//! however its work was split.

use confab_wire::{SignedEvent, VerifiedEvent};

/// Below this many events a batch is verified on the calling thread: a
/// thread costs more than it saves.
pub const PARALLEL_MIN: usize = 32;

/// Verifies every event; the result for each is what
/// [`SignedEvent::verify`] gives, in the same order.
pub fn verify_all(events: Vec<SignedEvent>) -> Vec<confab_wire::Result<VerifiedEvent>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || events.len() < PARALLEL_MIN {
        return events.into_iter().map(SignedEvent::verify).collect();
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
                    part.into_iter()
                        .map(SignedEvent::verify)
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
}
