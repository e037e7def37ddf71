//! Timelines and messages for browser sessions: history and thread pages,
//! sending (idempotent), read positions, search, mentions, subscriptions
//! with catch-up, uploads and blobs, reports.

use confab_wire::client::{
    Anchor, ClientError, ErrorCode, MAX_CLIENT_CHUNK, MAX_PAGE, Page, Push, Response, SessionId,
    TimelineItem,
};
use confab_wire::event::{Attachment, Content, EventKind, IdempotencyHash, MessageContent};
use confab_wire::fed::{Ephemeral, Signal, TraceId};
use confab_wire::{BlobId, ClientMessage, EventId, RoomId, UserId};

use super::accounts::{error, internal};
use super::sniff::{Sniffed, sniff};
use super::{CATCH_UP_MAX, ClientService, GatewayId, bad, lock};
use crate::engine::Membership;
use crate::store::client::MAX_IDEMPOTENCY_KEY_LEN;

/// Most bytes of a report's reason.
pub const REPORT_REASON_MAX: usize = 500;

fn page_limit(limit: u16, default: u16) -> usize {
    if limit == 0 {
        default as usize
    } else {
        limit.min(MAX_PAGE) as usize
    }
}

impl ClientService {
    fn items(&self, ids: &[EventId]) -> Result<Vec<TimelineItem>, ClientError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(item) = self.inner.store.timeline_item(id).map_err(internal)? {
                out.push(item);
            }
        }
        Ok(out)
    }

    pub(super) fn history(
        &self,
        user: &UserId,
        room: &RoomId,
        anchor: Anchor,
        limit: u16,
    ) -> Result<Response, ClientError> {
        self.may_read(user, room)?;
        let limit = page_limit(limit, 50);
        let store = &self.inner.store;
        let not_found = |e: crate::Error| match e {
            crate::Error::NotFound { .. } => error(ErrorCode::NotFound, "no such event"),
            e => internal(e),
        };
        if let Anchor::Before(id) | Anchor::After(id) | Anchor::Around(id) = &anchor {
            match store.event(id).map_err(internal)? {
                Some(e) if e.room == *room => {}
                _ => return Err(error(ErrorCode::NotFound, "no such event in this room")),
            }
        }
        let ids = store.page(room, anchor, limit).map_err(not_found)?;
        let more = |a: Anchor| -> Result<bool, ClientError> {
            Ok(!store.page(room, a, 1).map_err(not_found)?.is_empty())
        };
        let (more_before, more_after) = match (ids.first(), ids.last()) {
            (Some(first), Some(last)) => {
                (more(Anchor::Before(*first))?, more(Anchor::After(*last))?)
            }
            // Nothing on this side of an existing anchor: the anchor
            // itself lies on the other.
            _ => match anchor {
                Anchor::Latest => (false, false),
                Anchor::Before(_) => (false, true),
                Anchor::After(_) | Anchor::Around(_) => (true, false),
            },
        };
        Ok(Response::Page(Page {
            items: self.items(&ids)?,
            more_before,
            more_after,
        }))
    }

    pub(super) fn thread(
        &self,
        user: &UserId,
        room: &RoomId,
        root: &EventId,
        anchor: Anchor,
        limit: u16,
    ) -> Result<Response, ClientError> {
        self.may_read(user, room)?;
        let store = &self.inner.store;
        match store.event(root).map_err(internal)? {
            Some(e) if e.room == *room => {}
            _ => return Err(error(ErrorCode::NotFound, "no such thread in this room")),
        }
        let limit = page_limit(limit, 50);
        let all = store.thread(root).map_err(internal)?;
        let (start, end) = match anchor {
            Anchor::Latest => (all.len().saturating_sub(limit), all.len()),
            Anchor::Before(id) => {
                let at = all.iter().position(|e| *e == id).unwrap_or(all.len());
                (at.saturating_sub(limit), at)
            }
            Anchor::After(id) => {
                let at = all.iter().position(|e| *e == id).map_or(0, |i| i + 1);
                (at, (at + limit).min(all.len()))
            }
            Anchor::Around(id) => {
                let at = all.iter().position(|e| *e == id).unwrap_or(0);
                let start = at.saturating_sub(limit / 2);
                (start, (start + limit).min(all.len()))
            }
        };
        let mut ids = Vec::with_capacity(end - start + 1);
        if start == 0 {
            ids.push(*root);
        }
        ids.extend_from_slice(&all[start..end]);
        Ok(Response::Page(Page {
            items: self.items(&ids)?,
            more_before: start > 0,
            more_after: end < all.len(),
        }))
    }

    pub(super) fn send_message(
        &self,
        user: &UserId,
        room: &RoomId,
        idem: &str,
        content: MessageContent,
        trace: TraceId,
    ) -> Result<Response, ClientError> {
        if idem.is_empty() || idem.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(bad(format!(
                "idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} bytes"
            )));
        }
        let store = &self.inner.store;
        // A resend answers before the rate limit and the checks below; the
        // check that decides is the one under the rooms lock (`post`).
        let hash = IdempotencyHash::of(user, idem);
        if let Some(id) = store.sent_event(user, &hash).map_err(internal)? {
            return Ok(Response::Event {
                id,
                duplicate: true,
            });
        }
        self.rate(user, crate::local::now_ms())?;
        let mut content = content;
        // The node, not the client, says what a file is.
        for a in &mut content.attachments {
            // Only a file one may read can be passed on.
            self.may_fetch(user, &a.blob)?;
            self.check_attachment(a)?;
        }
        for id in content.thread.iter().chain(content.reply_to.iter()) {
            match store.event(id).map_err(internal)? {
                Some(e) if e.room == *room => {}
                _ => {
                    return Err(error(
                        ErrorCode::NotFound,
                        "the message replied to is not in this room",
                    ));
                }
            }
        }
        self.check_blocked_dm(user, room)?;
        let (id, duplicate) = self.post(
            user,
            room,
            EventKind::Message,
            Content::Message(content),
            trace,
            Some(idem),
        )?;
        Ok(Response::Event { id, duplicate })
    }

    /// Fills an attachment's size, type and image size from the blob.
    fn check_attachment(&self, a: &mut Attachment) -> Result<(), ClientError> {
        let store = &self.inner.store;
        let Some(size) = store.blob_size(&a.blob).map_err(internal)? else {
            return Err(error(
                ErrorCode::NotFound,
                format!("the file {:?} was not uploaded", a.name),
            ));
        };
        let head = store
            .read_blob(&a.blob, 0)
            .map_err(internal)?
            .map(|(_, b)| b)
            .unwrap_or_default();
        match sniff(&head) {
            Sniffed::Allowed { mime, dimensions } => {
                a.size = size;
                a.mime = mime.to_string();
                a.dimensions = dimensions;
                Ok(())
            }
            Sniffed::Refused { what } => Err(error(
                ErrorCode::UnsupportedType,
                format!("{} is {what}; such files are not allowed", a.name),
            )),
        }
    }

    /// In a direct conversation, a partner who blocked the sender refuses
    /// their messages.
    fn check_blocked_dm(&self, user: &UserId, room: &RoomId) -> Result<(), ClientError> {
        let me = self.node_id();
        let partners: Vec<UserId> = {
            let rooms = self.rooms();
            let Some(r) = rooms.room(room) else {
                return Ok(());
            };
            let s = r.engine().state();
            if !s.direct {
                return Ok(());
            }
            s.joined()
                .filter(|u| *u != user && u.node() == &me)
                .cloned()
                .collect()
        };
        for p in partners {
            if self
                .inner
                .store
                .is_blocked(p.localpart(), user)
                .map_err(internal)?
            {
                return Err(error(
                    ErrorCode::Forbidden,
                    "this person does not accept your messages",
                ));
            }
        }
        Ok(())
    }

    pub(super) fn mark_read(
        &self,
        user: &UserId,
        room: &RoomId,
        event: &EventId,
    ) -> Result<Response, ClientError> {
        self.may_read(user, room)?;
        let store = &self.inner.store;
        match store.event(event).map_err(internal)? {
            Some(e) if e.room == *room => {}
            _ => return Err(error(ErrorCode::NotFound, "no such event in this room")),
        }
        store.mark_read(room, user, event).map_err(internal)?;
        self.forget_counts(room, Some(user));
        // Read positions are not precious: no flush of their own (the next
        // flush takes them).
        if let Some(summary) = self.summary(room, user) {
            let mut hub = lock(&self.inner.hub);
            for gw in hub.user_gateways(user) {
                hub.send(
                    gw,
                    ClientMessage::Push(Push::RoomUpdate {
                        user: user.clone(),
                        summary: summary.clone(),
                    }),
                );
            }
        }
        // A reader of a public room keeps a position; only members tell
        // the room theirs.
        if self.may_signal(user, room).is_err() {
            return Ok(Response::Done);
        }
        let e = Ephemeral {
            room: Some(*room),
            user: user.clone(),
            signal: Signal::ReadUpTo(*event),
        };
        if let Some(fed) = self.federation() {
            fed.send_ephemeral(e.clone());
        }
        self.push_to_room(room, e);
        Ok(Response::Done)
    }

    fn joined_rooms(&self, user: &UserId) -> Vec<RoomId> {
        self.rooms()
            .rooms()
            .filter(|(_, r)| r.engine().state().is_joined(user))
            .map(|(id, _)| *id)
            .collect()
    }

    fn ts_of(&self, id: &EventId) -> Result<Option<u64>, ClientError> {
        Ok(self
            .inner
            .store
            .event(id)
            .map_err(internal)?
            .and_then(|e| e.signed.decode_header().ok())
            .map(|h| h.ts))
    }

    pub(super) fn search(
        &self,
        user: &UserId,
        room: Option<RoomId>,
        query: &str,
        limit: u16,
        before: Option<EventId>,
    ) -> Result<Response, ClientError> {
        let rooms = match room {
            Some(r) => {
                self.may_read(user, &r)?;
                vec![r]
            }
            None => self.joined_rooms(user),
        };
        let limit = page_limit(limit, 20);
        // The cursor is the anchor's (ts, id): messages can share a ts.
        let before = self.cursor(before)?;
        let ids = self
            .inner
            .store
            .search(Some(&rooms), query, before, limit + 1)
            .map_err(internal)?;
        self.results(ids, limit)
    }

    /// A result cursor: the anchor's (ts, id), since messages can share a ts.
    fn cursor(&self, before: Option<EventId>) -> Result<Option<(u64, EventId)>, ClientError> {
        match before {
            Some(id) => Ok(self.ts_of(&id)?.map(|ts| (ts, id))),
            None => Ok(None),
        }
    }

    /// A page of results, newest first, from up to `limit + 1` hits.
    fn results(&self, mut ids: Vec<EventId>, limit: usize) -> Result<Response, ClientError> {
        let more = ids.len() > limit;
        ids.truncate(limit);
        Ok(Response::Page(Page {
            items: self.items(&ids)?,
            more_before: more,
            more_after: false,
        }))
    }

    pub(super) fn mentions(
        &self,
        user: &UserId,
        before: Option<EventId>,
        limit: u16,
    ) -> Result<Response, ClientError> {
        let limit = page_limit(limit, 30);
        let before = self.cursor(before)?;
        let rooms = self.joined_rooms(user);
        let store = &self.inner.store;
        let mut ids = Vec::new();
        let mut cursor = before;
        // Mentions in rooms the user has left are skipped.
        loop {
            let page = store.mentions(user, cursor, 64).map_err(internal)?;
            let Some(last) = page.last().copied() else {
                break;
            };
            for id in &page {
                if let Some(e) = store.event(id).map_err(internal)?
                    && rooms.contains(&e.room)
                {
                    ids.push(*id);
                }
            }
            if ids.len() > limit || page.len() < 64 {
                break;
            }
            cursor = self.cursor(Some(last))?;
        }
        self.results(ids, limit)
    }

    pub(super) fn subscribe(
        &self,
        gw: GatewayId,
        session: SessionId,
        user: &UserId,
        room: &RoomId,
        after: Option<EventId>,
    ) -> Result<Response, ClientError> {
        match self.member_state(user, room)? {
            (Membership::Joined { .. }, _) => {}
            (Membership::Invited | Membership::Left, confab_wire::event::Visibility::Public) => {}
            (Membership::Invited | Membership::Banned, _) => {
                return Err(error(ErrorCode::Forbidden, "join the room to follow it"));
            }
            _ => return Err(super::rooms::hidden()),
        }
        let missed = match &after {
            Some(after) => {
                match self
                    .inner
                    .store
                    .events_after(room, after, CATCH_UP_MAX + 1)
                    .map_err(internal)?
                {
                    None => {
                        return Err(error(
                            ErrorCode::NotFound,
                            "that event is not known in this room; reload the room",
                        ));
                    }
                    Some(ids) if ids.len() > CATCH_UP_MAX => {
                        return Err(error(
                            ErrorCode::NotFound,
                            "too much happened since; reload the room",
                        ));
                    }
                    Some(ids) => ids,
                }
            }
            None => Vec::new(),
        };
        // Subscribe first: an event accepted meanwhile is pushed live and
        // maybe also below; clients de-duplicate by id.
        lock(&self.inner.hub).subscribe(gw, session, *room);
        let mut items = Vec::with_capacity(missed.len());
        for id in &missed {
            let Some(item) = self.inner.store.timeline_item(id).map_err(internal)? else {
                continue;
            };
            let target = item
                .event
                .decode_header()
                .ok()
                .and_then(|h| super::changed_target(&h.kind, &item.event));
            items.push(item);
            if let Some(t) = target
                && let Some(ti) = self.inner.store.timeline_item(&t).map_err(internal)?
            {
                items.push(ti);
            }
        }
        let mut hub = lock(&self.inner.hub);
        for item in items {
            hub.send(
                gw,
                ClientMessage::Push(Push::RoomEvent {
                    room: *room,
                    item,
                    trace: None,
                }),
            );
        }
        Ok(Response::Done)
    }

    pub(super) fn upload_start(
        &self,
        user: &UserId,
        owner: super::uploads::Owner,
        size: u64,
        name: String,
        now: u64,
    ) -> Result<Response, ClientError> {
        let max = self.settings().max_upload_bytes;
        if size > max {
            return Err(error(
                ErrorCode::TooLarge,
                format!("files are limited to {} MiB here", max >> 20),
            ));
        }
        if size == 0 {
            return Err(bad("the file is empty"));
        }
        if name.is_empty() || name.len() > confab_wire::event::MAX_FILE_NAME_LEN {
            return Err(bad("the file name must be 1 to 255 bytes"));
        }
        let upload = self
            .inner
            .uploads
            .start(&self.inner.limits, user, owner, size, name, now)?;
        Ok(Response::Upload { upload })
    }

    pub(super) fn upload_finish(
        &self,
        user: &UserId,
        upload: u64,
    ) -> Result<Response, ClientError> {
        let store = &self.inner.store;
        let attachment = self.inner.uploads.finish(store, user, upload)?;
        store
            .note_uploader(&attachment.blob, user.localpart())
            .map_err(internal)?;
        store.wait_durable().map_err(internal)?;
        Ok(Response::Attachment(attachment))
    }

    /// A user may read a file they uploaded, an avatar, or a file posted
    /// in a room they may read.
    fn may_fetch(&self, user: &UserId, blob: &BlobId) -> Result<(), ClientError> {
        let store = &self.inner.store;
        if user.node() == &self.node_id()
            && store
                .blob_open_to(blob, user.localpart())
                .map_err(internal)?
        {
            return Ok(());
        }
        let rooms = store.blob_rooms(blob).map_err(internal)?;
        if rooms.is_empty() {
            return Err(error(ErrorCode::NotFound, "no such file"));
        }
        if rooms.iter().any(|r| self.may_read(user, r).is_ok()) {
            Ok(())
        } else {
            Err(error(
                ErrorCode::Forbidden,
                "that file was posted in a room you are not in",
            ))
        }
    }

    pub(super) fn fetch_blob(
        &self,
        user: &UserId,
        blob: BlobId,
        offset: u64,
        max: u32,
    ) -> Result<Response, ClientError> {
        self.may_fetch(user, &blob)?;
        let store = &self.inner.store;
        if store.blob_size(&blob).map_err(internal)?.is_none() {
            let Some(fed) = self.federation() else {
                return Err(error(ErrorCode::NotFound, "no such file"));
            };
            let sources = fed.connected();
            let handle = tokio::runtime::Handle::try_current()
                .map_err(|_| error(ErrorCode::Unavailable, "cannot reach peers now"))?;
            handle
                .block_on(fed.fetch_blob(blob, &sources))
                .map_err(|e| error(ErrorCode::Unavailable, e.to_string()))?;
        }
        let Some(total) = store.blob_size(&blob).map_err(internal)? else {
            return Err(error(ErrorCode::NotFound, "no such file"));
        };
        let head = store
            .read_blob(&blob, 0)
            .map_err(internal)?
            .map(|(_, b)| b)
            .unwrap_or_default();
        let mime = match sniff(&head) {
            Sniffed::Allowed { mime, .. } => mime,
            Sniffed::Refused { .. } => "application/octet-stream",
        };
        let max = (max as usize).clamp(1, MAX_CLIENT_CHUNK);
        let mut data = Vec::new();
        let mut at = offset;
        while data.len() < max && at < total {
            let Some((_, chunk)) = store.read_blob(&blob, at).map_err(internal)? else {
                break;
            };
            if chunk.is_empty() {
                break;
            }
            let take = chunk.len().min(max - data.len());
            data.extend_from_slice(&chunk[..take]);
            at += take as u64;
        }
        Ok(Response::Blob {
            offset,
            total,
            mime: mime.to_string(),
            data,
        })
    }

    pub(super) fn report(
        &self,
        user: &UserId,
        room: &RoomId,
        event: &EventId,
        reason: &str,
        now: u64,
    ) -> Result<Response, ClientError> {
        if reason.len() > REPORT_REASON_MAX {
            return Err(bad(format!(
                "the reason is limited to {REPORT_REASON_MAX} bytes"
            )));
        }
        self.may_read(user, room)?;
        let store = &self.inner.store;
        match store.event(event).map_err(internal)? {
            Some(e) if e.room == *room => {}
            _ => return Err(error(ErrorCode::NotFound, "no such message in this room")),
        }
        store
            .add_report(user, room, event, reason, now)
            .and_then(|_| store.wait_durable())
            .map_err(internal)?;
        Ok(Response::Done)
    }
}
