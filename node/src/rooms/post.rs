//! The one local post path: preview → sign → submit → commit. The client
//! service, the admin service, the offline CLI, the simulation, the
//! benches and the test nets all post through [`post`], so the code the
//! tests certify is the code that runs. The rules are asked first: an
//! event the room would reject now is never signed, stored or sent.

use confab_wire::event::{Content, EventKind, IDEMPOTENCY_SINCE, IdempotencyHash};
use confab_wire::{EventId, NodeKey, UserId, VerifiedEvent};

use crate::engine::{Admission, Rejection, Verdict};
use crate::error::{Error, Result};
use crate::store::{Room, Store};

/// What [`post`] did.
#[derive(Debug)]
pub enum Posted {
    /// Signed and applied (not yet durable).
    Event(Box<VerifiedEvent>),
    /// The idempotency key was used already, by this event.
    Duplicate(EventId),
    /// The room's rules refuse it now; nothing was signed or stored.
    Rejected(Rejection),
}

/// Signs and submits an event of a local user to `room` only if the room
/// would accept it now. With an idempotency key (`once`, the author's), a
/// key already used answers with its event and posts nothing, and a new
/// key lands in the same commit as the event; from rules version 3 the
/// message carries the key's hash, so every store that holds it knows the
/// send. The caller holds the room exclusively for the whole call, so two
/// sends of one key never both post. The event is applied but not yet
/// durable: wait with [`Store::wait_logged`] after giving the room back,
/// so that concurrent posts share one flush.
#[allow(clippy::too_many_arguments)]
pub fn post(
    store: &Store,
    room: &mut Room,
    key: &NodeKey,
    author: &UserId,
    kind: EventKind,
    content: &Content,
    now: u64,
    once: Option<&str>,
) -> Result<Posted> {
    let hash = once.map(|k| IdempotencyHash::of(author, k));
    if let Some(h) = &hash
        && let Some(id) = store.sent_event(author, h)?
    {
        return Ok(Posted::Duplicate(id));
    }
    let carried = hash.filter(|_| {
        matches!(content, Content::Message(_))
            && room.engine().state().rules.version >= IDEMPOTENCY_SINCE
    });
    let header = room.engine().next_header(author.clone(), kind, now);
    if let Verdict::Rejected(why) = room.engine().preview(&header) {
        return Ok(Posted::Rejected(why));
    }
    let ev = key
        .sign_event_with(header, content, carried)
        .map_err(|e| Error::Refused {
            reason: e.to_string(),
        })?;
    match room.submit(&ev, now)? {
        Ok(Admission::Applied { verdict, .. }) => {
            // A carried hash is indexed with the event itself; a key of an
            // older room is not in the event, so sled must keep it durably.
            if let (Some(h), None) = (&hash, &carried) {
                room.note_sent(author, h, &ev.id());
                store.flusher().mark_index_dirty();
            }
            room.commit()?;
            match verdict {
                Verdict::Accepted => Ok(Posted::Event(Box::new(ev))),
                Verdict::Rejected(why) => Ok(Posted::Rejected(why)),
            }
        }
        Ok(other) => Err(Error::Refused {
            reason: format!("{other:?}"),
        }),
        Err(refusal) => Err(Error::Refused {
            reason: refusal.to_string(),
        }),
    }
}

impl Posted {
    /// The new event, or why there is none as an error (for callers that
    /// send no idempotency key, where a duplicate cannot happen).
    pub fn into_event(self) -> Result<VerifiedEvent> {
        match self {
            Posted::Event(ev) => Ok(*ev),
            Posted::Duplicate(id) => Err(Error::Refused {
                reason: format!("already posted as {id}"),
            }),
            Posted::Rejected(why) => Err(Error::Refused {
                reason: why.to_string(),
            }),
        }
    }
}
