//! What only one user sees or what follows one user's messages: the
//! welcome bot's notes, edit history for authors and moderators, and
//! "delivered" / "read" positions of direct rooms' partners on other nodes.

use confab_wire::client::{ErrorCode, Push, Response};
use confab_wire::event::Permissions;
use confab_wire::fed::{Ephemeral, Signal};
use confab_wire::{EventId, RoomId, SignedEvent, UserId};

use super::{ClientError, ClientMessage, ClientService, error, internal, lock};
use crate::engine::Membership;

/// Who the welcome bot's notes are from.
pub const WELCOME_BOT_NAME: &str = "Confab";

/// The welcome bot's greeting and tour, in markdown. The user's name and
/// the room's name and topic are written by people, not by Confab, so they
/// go in as literal text (see [`literal`]): a room's creator cannot make
/// links or headings that seem to come from Confab itself.
pub fn welcome_text(name: &str, room: &str, topic: &str) -> String {
    let (name, room, topic) = (literal(name), literal(room), literal(topic));
    let mut s = format!(
        "👋 Welcome to **{room}**, {name}! A short tour:\n\n\
         - **Mentions**: type `@` and a name; that person gets a notification.\n\
         - **Threads**: hover a message (or focus it) and choose *Reply in thread* \
         to talk about it without filling the room.\n\
         - **Reactions**: the smiley on a message adds an emoji; pick one that is \
         already there to agree.\n\
         - **Formatting**: `**bold**`, `_italic_`, `` `code` `` and lists; the eye \
         button previews it.\n"
    );
    if !topic.trim().is_empty() {
        s.push_str(&format!("\nThis room is about: {}\n", topic.trim()));
    }
    s.push_str("\nOnly you can see this note.");
    s
}

/// `text` as markdown that renders to exactly that text on one line:
/// every ASCII punctuation character is escaped (CommonMark lets any of
/// them be), and line breaks and other control characters become spaces,
/// so nothing in it can start a link, an autolink, HTML, a heading or a
/// list.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
            out.push(c);
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

impl ClientService {
    /// Greets a local user on their first join to a (not direct) room, if
    /// the node's welcome bot is on.
    pub(super) fn greet(&self, user: &UserId, room: &RoomId) {
        if !self.settings().welcome_bot || user.node() != &self.node_id() {
            return;
        }
        let (name, topic) = {
            let rooms = self.rooms();
            let Some(r) = rooms.room(room) else { return };
            let s = r.engine().state();
            if s.direct {
                return;
            }
            (s.name.clone(), s.topic.clone())
        };
        let store = &self.inner.store;
        let now = super::now_ms();
        let display = match store.account(user.localpart()) {
            Ok(Some(a)) if !a.display_name.trim().is_empty() => a.display_name,
            _ => user.localpart().to_string(),
        };
        let made = store
            .first_greeting(room, user.localpart(), now)
            .and_then(|first| {
                first
                    .then(|| {
                        store.add_notice(
                            user.localpart(),
                            room,
                            WELCOME_BOT_NAME,
                            &welcome_text(&display, &name, &topic),
                            now,
                        )
                    })
                    .transpose()
            });
        match made {
            Ok(Some(notice)) => {
                let mut hub = lock(&self.inner.hub);
                for gw in hub.user_gateways(user) {
                    hub.send(
                        gw,
                        ClientMessage::Push(Push::Notice {
                            user: user.clone(),
                            notice: notice.clone(),
                        }),
                    );
                }
            }
            Ok(None) => {}
            // A greeting is a courtesy: failing to keep one fails nothing.
            Err(e) => tracing::warn!(error = %e, "could not keep the welcome note"),
        }
    }

    /// The user's notes.
    pub(super) fn notices(&self, user: &UserId) -> Result<Response, ClientError> {
        let all = self
            .inner
            .store
            .notices(user.localpart())
            .map_err(internal)?;
        // Notes of rooms the user left stay out of sight.
        let rooms = self.rooms();
        let shown = all
            .into_iter()
            .filter(|n| {
                rooms.room(&n.room).is_some_and(|r| {
                    matches!(
                        r.engine().state().membership(user),
                        Membership::Joined { .. }
                    )
                })
            })
            .collect();
        Ok(Response::Notices(shown))
    }

    /// Drops one of the user's notes; their other sockets hear of it.
    pub(super) fn dismiss_notice(&self, user: &UserId, id: u64) -> Result<Response, ClientError> {
        let store = &self.inner.store;
        if !store
            .dismiss_notice(user.localpart(), id)
            .map_err(internal)?
        {
            return Err(error(ErrorCode::NotFound, "no such note"));
        }
        let mut hub = lock(&self.inner.hub);
        for gw in hub.user_gateways(user) {
            hub.send(
                gw,
                ClientMessage::Push(Push::NoticeDismissed {
                    user: user.clone(),
                    notice: id,
                }),
            );
        }
        Ok(Response::Done)
    }

    /// Every version of a message: for its author, or a member allowed to
    /// delete others' messages.
    pub(super) fn edit_history(
        &self,
        user: &UserId,
        room: &RoomId,
        target: &EventId,
    ) -> Result<Response, ClientError> {
        self.may_read(user, room)?;
        let store = &self.inner.store;
        match store.event(target).map_err(internal)? {
            Some(e) if e.room == *room => {}
            _ => return Err(error(ErrorCode::NotFound, "no such message in this room")),
        }
        let versions = store
            .message_versions(target)
            .map_err(internal)?
            .ok_or_else(|| error(ErrorCode::NotFound, "no such message (or it was deleted)"))?;
        let author = &versions[0].sender;
        if author != user {
            let allowed = {
                let rooms = self.rooms();
                rooms.room(room).is_some_and(|r| {
                    r.engine()
                        .state()
                        .permissions(user)
                        .contains(Permissions::MESSAGE_DELETE)
                })
            };
            if !allowed {
                return Err(error(
                    ErrorCode::Forbidden,
                    "only the author and moderators (message.delete) see earlier versions",
                ));
            }
        }
        Ok(Response::Edits(versions))
    }

    /// After events from a peer were accepted in a direct room: tell the
    /// partner's node its message arrived here.
    pub(super) fn acknowledge_delivery(&self, room: &RoomId, ev: &SignedEvent) {
        let Ok(header) = ev.decode_header() else {
            return;
        };
        let me = self.node_id();
        if header.author.node() == &me {
            return;
        }
        let locals: Vec<UserId> = {
            let rooms = self.rooms();
            let Some(r) = rooms.room(room) else { return };
            let s = r.engine().state();
            if !s.direct {
                return;
            }
            // An invitee's node holds the room's events too.
            s.members
                .iter()
                .filter(|(u, m)| {
                    u.node() == &me && matches!(m, Membership::Joined { .. } | Membership::Invited)
                })
                .map(|(u, _)| u.clone())
                .collect()
        };
        let Some(fed) = self.federation() else { return };
        for user in locals {
            fed.send_ephemeral(Ephemeral {
                room: Some(*room),
                user,
                signal: Signal::Delivered(ev.id()),
            });
        }
    }

    /// Keeps a remote member's read or delivered position (checked by
    /// federation: the user is of the sending node and joined).
    pub(super) fn keep_position(&self, e: &Ephemeral) {
        let Some(room) = e.room else { return };
        let store = &self.inner.store;
        let (Signal::ReadUpTo(ev) | Signal::Delivered(ev)) = &e.signal else {
            return;
        };
        // A position names an event of its own room; one this node does not
        // hold yet is dropped (the next read or message repeats it).
        match store.event(ev) {
            Ok(Some(stored)) if stored.room == room => {}
            _ => return,
        }
        let kept = if matches!(e.signal, Signal::ReadUpTo(_)) {
            store.mark_read(&room, &e.user, ev)
        } else {
            store.mark_delivered(&room, &e.user, ev)
        };
        if let Err(err) = kept {
            tracing::debug!(error = %err, "position of a remote member not kept");
        }
    }
}
