//! The node's answers as the browser protocol's JSON (`gateway/PROTOCOL.md`
//! §4 objects, §6 pushes, §7 errors).

use confab_wire::client::{
    ClientError, ErrorCode, MemberInfo, MessageVersion, Notice, Page, Profile, RoomDetail,
    RoomSummary, SessionGrant, TimelineItem,
};
use confab_wire::event::{Attachment, Content, EventKind, InvitePolicy, Setting, Visibility};
use confab_wire::fed::{Ephemeral, Presence, Signal};
use confab_wire::{EventHeader, Permissions, codec};
use serde_json::{Map, Value, json};

use crate::markdown;

/// The snake_case name of an error code.
pub fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadRequest => "bad_request",
        ErrorCode::UnknownRequest => "unknown_request",
        ErrorCode::Unauthenticated => "unauthenticated",
        ErrorCode::TokenExpired => "token_expired",
        ErrorCode::Forbidden => "forbidden",
        ErrorCode::NotFound => "not_found",
        ErrorCode::Conflict => "conflict",
        ErrorCode::RateLimited => "rate_limited",
        ErrorCode::Muted => "muted",
        ErrorCode::Archived => "archived",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::UnsupportedType => "unsupported_type",
        ErrorCode::RegistrationClosed => "registration_closed",
        ErrorCode::Disabled => "disabled",
        ErrorCode::Unavailable => "unavailable",
        ErrorCode::Internal => "internal",
    }
}

/// An error body: `{"code","message",…}`.
pub fn error_body(e: &ClientError) -> Value {
    let mut m = Map::new();
    m.insert("code".into(), json!(code_name(e.code)));
    m.insert("message".into(), json!(e.message));
    if let Some(u) = e.until {
        m.insert("until".into(), json!(u));
    }
    if let Some(r) = e.retry_after_ms {
        m.insert("retry_after_ms".into(), json!(r));
    }
    Value::Object(m)
}

/// An error body with a gateway-level code (`bad_json`, …).
pub fn gateway_error(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

/// A reply frame.
pub fn reply(id: Option<u64>, result: Result<Value, Value>) -> String {
    match result {
        Ok(v) => json!({ "id": id, "ok": v }).to_string(),
        Err(e) => json!({ "id": id, "error": e }).to_string(),
    }
}

/// A session grant (§4.1).
pub fn grant(g: &SessionGrant) -> Value {
    json!({
        "user": g.user.to_string(),
        "access_token": g.access_token.to_text().unwrap_or_default(),
        "access_expires": g.access_token.claims.expires,
        "refresh_token": g.refresh_token,
        "refresh_expires": g.refresh_expires,
    })
}

fn presence_name(p: Presence) -> &'static str {
    match p {
        Presence::Online => "online",
        Presence::Away => "away",
        Presence::Offline => "offline",
    }
}

/// A profile (§4.2).
pub fn profile(p: &Profile) -> Value {
    json!({
        "user": p.user.to_string(),
        "display_name": p.display_name,
        "avatar": p.avatar.map(|b| b.to_string()),
        "status": p.status,
        "presence": p.presence.map(presence_name),
        "last_active": p.last_active,
    })
}

fn visibility(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

fn invites(p: InvitePolicy) -> &'static str {
    match p {
        InvitePolicy::Members => "members",
        InvitePolicy::RoomSettings => "room.settings",
    }
}

/// A room summary (§4.4).
pub fn summary(s: &RoomSummary) -> Value {
    let mut v = json!({
        "room": s.room.to_string(),
        "name": s.name,
        "topic": s.topic,
        "visibility": visibility(s.visibility),
        "direct_with": s.direct_with.as_ref().map(ToString::to_string),
        "members": s.members,
        "unread": s.unread,
        "mentions": s.mentions,
        "archived": s.archived,
        "invited": s.invited,
        "last_event": s.last_event.map(|e| e.to_string()),
        "last_ts": s.last_ts,
    });
    if s.left {
        v["left"] = json!(true);
    }
    v
}

fn permissions(p: Permissions) -> Value {
    json!(p.names())
}

fn member(m: &MemberInfo) -> Value {
    json!({
        "user": m.user.to_string(),
        "roles": m.roles,
        "muted_until": m.muted_until,
        "read_up_to": m.read_up_to.map(|e| e.to_string()),
        "delivered_up_to": m.delivered_up_to.map(|e| e.to_string()),
    })
}

/// A note only its user sees (the welcome bot's).
pub fn notice(n: &Notice) -> Value {
    json!({
        "id": n.id.to_string(),
        "room": n.room.to_string(),
        "from": n.from,
        "ts": n.ts,
        "body": n.body,
        "html": markdown::render(&n.body),
    })
}

/// One version of a message (edit history).
pub fn version(v: &MessageVersion) -> Value {
    json!({
        "event": v.event.to_string(),
        "sender": v.sender.to_string(),
        "ts": v.ts,
        "body": v.body,
        "html": markdown::render(&v.body),
    })
}

/// A room detail (§4.5).
pub fn detail(d: &RoomDetail) -> Value {
    let hex: String = d.digest.iter().map(|b| format!("{b:02x}")).collect();
    json!({
        "summary": summary(&d.summary),
        "members": d.members.iter().map(member).collect::<Vec<_>>(),
        "roles": d.roles.iter().map(|(n, p)| json!({"name": n, "permissions": permissions(*p)})).collect::<Vec<_>>(),
        "pins": d.pins.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "my_permissions": permissions(d.my_permissions),
        "digest": hex,
        "rules_version": d.rules_version,
        "invites": invites(d.invites),
    })
}

/// An attachment (§4.6).
pub fn attachment(a: &Attachment) -> Value {
    let mut v = json!({
        "blob": a.blob.to_string(),
        "name": a.name,
        "mime": a.mime,
        "size": a.size,
    });
    if let Some((w, h)) = a.dimensions {
        v["width"] = json!(w);
        v["height"] = json!(h);
    }
    v
}

fn settings(s: &[Setting]) -> Value {
    let mut m = Map::new();
    for s in s {
        match s {
            Setting::Name(n) => m.insert("name".into(), json!(n)),
            Setting::Topic(t) => m.insert("topic".into(), json!(t)),
            Setting::Visibility(v) => m.insert("visibility".into(), json!(visibility(*v))),
            Setting::Invites(p) => m.insert("invites".into(), json!(invites(*p))),
        };
    }
    Value::Object(m)
}

/// A timeline item (§4.7). `None` only for bytes the node should never
/// have sent (an undecodable header).
pub fn item(it: &TimelineItem) -> Option<Value> {
    let h: EventHeader = codec::from_slice("event header", &it.event.header).ok()?;
    let id = it.event.id();
    let room = h.room_id(&id);
    let content = it
        .event
        .content
        .as_deref()
        .and_then(|c| Content::decode_for(&h.kind, c).ok());
    let mut v = json!({
        "id": id.to_string(),
        "room": room.to_string(),
        "author": h.author.to_string(),
        "ts": h.ts,
        "depth": h.depth,
        "kind": h.kind.name(),
        "rejected": it.rejected,
        "body": null,
        "html": null,
        "thread_root": null,
        "reply_to": null,
        "mentions": [],
        "attachments": [],
        "reactions": it.reactions.iter().map(|r| json!({
            "emoji": r.emoji,
            "users": r.users.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "thread": it.thread.map(|(n, ts)| json!({"replies": n, "last_ts": ts})),
    });
    let redacted = it.redacted.is_some();
    match content {
        Some(Content::Message(m)) if !redacted => {
            v["html"] = json!(markdown::render(&m.body));
            v["body"] = json!(m.body);
            v["thread_root"] = json!(m.thread.map(|e| e.to_string()));
            v["reply_to"] = json!(m.reply_to.map(|e| e.to_string()));
            v["mentions"] = json!(
                m.mentions
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            );
            v["attachments"] = json!(m.attachments.iter().map(attachment).collect::<Vec<_>>());
        }
        Some(Content::Edit(e)) => {
            v["html"] = json!(markdown::render(&e.body));
            v["body"] = json!(e.body);
            v["mentions"] = json!(
                e.mentions
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            );
        }
        Some(Content::Reason(r)) => {
            v["reason"] = json!(r.reason);
        }
        _ => {}
    }
    if let Some(reason) = &it.redacted {
        v["redacted"] = json!(reason);
        v["reactions"] = json!([]);
    } else if let Some(b) = &it.edited_body {
        v["edited_body"] = json!(b);
        v["edited_html"] = json!(markdown::render(b));
    }
    let target_user = |u: &confab_wire::UserId| json!(u.to_string());
    match &h.kind {
        EventKind::Create(c) => {
            v["settings"] = settings(&c.settings);
            v["direct"] = json!(c.direct);
        }
        EventKind::Settings(s) => v["settings"] = settings(s),
        EventKind::Invite { target }
        | EventKind::Unban { target }
        | EventKind::Unmute { target } => {
            v["target"] = target_user(target);
        }
        EventKind::Kick { target, .. } | EventKind::Ban { target, .. } => {
            v["target"] = target_user(target)
        }
        EventKind::Mute { target, until, .. } => {
            v["target"] = target_user(target);
            v["until"] = json!(until);
        }
        EventKind::RoleDefine {
            role,
            permissions: p,
        } => {
            v["role"] = json!(role);
            v["permissions"] = permissions(*p);
        }
        EventKind::RoleGrant { target, role } | EventKind::RoleRevoke { target, role, .. } => {
            v["target"] = target_user(target);
            v["role"] = json!(role);
        }
        EventKind::Edit { target }
        | EventKind::Redact { target }
        | EventKind::Pin { target }
        | EventKind::Unpin { target } => v["target"] = json!(target.to_string()),
        EventKind::React { target, emoji } | EventKind::Unreact { target, emoji } => {
            v["target"] = json!(target.to_string());
            v["emoji"] = json!(emoji);
        }
        EventKind::Join | EventKind::Leave | EventKind::Message | EventKind::Archive => {}
    }
    if h.kind.content_class() == confab_wire::event::ContentClass::Reason
        && v.get("reason").is_none()
    {
        v["reason"] = json!("");
    }
    Some(v)
}

/// A page (§4.8).
pub fn page(p: &Page) -> Value {
    json!({
        "items": p.items.iter().filter_map(item).collect::<Vec<_>>(),
        "more_before": p.more_before,
        "more_after": p.more_after,
    })
}

/// An ephemeral signal as a push (`typing`, `presence`, `read`, `delivered`).
pub fn ephemeral(e: &Ephemeral) -> Option<String> {
    let v = match (&e.signal, &e.room) {
        (Signal::Typing(t), Some(room)) => json!({
            "push": "typing", "room": room.to_string(), "user": e.user.to_string(), "typing": t,
        }),
        (Signal::ReadUpTo(ev), Some(room)) => json!({
            "push": "read", "room": room.to_string(), "user": e.user.to_string(), "event": ev.to_string(),
        }),
        (Signal::Delivered(ev), Some(room)) => json!({
            "push": "delivered", "room": room.to_string(), "user": e.user.to_string(), "event": ev.to_string(),
        }),
        (Signal::Presence { state, last_active }, _) => json!({
            "push": "presence", "user": e.user.to_string(),
            "presence": presence_name(*state), "last_active": last_active,
        }),
        _ => return None,
    };
    Some(v.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use confab_wire::event::{MessageContent, ReasonContent};
    use confab_wire::{EventId, NodeKey, RoomId, UserId};

    fn signed(kind: EventKind, content: &Content) -> confab_wire::SignedEvent {
        let key = NodeKey::from_secret(&[5; 32]);
        let header = EventHeader {
            room: Some(RoomId([1; 32])),
            author: UserId::new(key.node_id(), "alice").unwrap(),
            kind,
            prev: vec![EventId([2; 32])],
            depth: 3,
            origin_seq: 2,
            origin_prev: Some(EventId([2; 32])),
            ts: 1_767_225_000_000,
            content_hash: confab_wire::ContentHash([0; 32]),
        };
        key.sign_event(header, content).unwrap().into_signed()
    }

    #[test]
    fn a_message_item_is_rendered_and_sanitized() {
        let ev = signed(
            EventKind::Message,
            &Content::Message(MessageContent {
                body: "Ship **it** <script>x</script>".into(),
                ..Default::default()
            }),
        );
        let v = item(&TimelineItem {
            event: ev,
            rejected: false,
            edited_body: Some("Shipped".into()),
            redacted: None,
            reactions: vec![],
            thread: Some((2, 5)),
        })
        .unwrap();
        assert_eq!(v["kind"], "message");
        assert_eq!(v["depth"], 3);
        assert!(v["html"].as_str().unwrap().contains("<strong>it</strong>"));
        assert!(!v["html"].as_str().unwrap().contains("<script"));
        assert_eq!(v["edited_body"], "Shipped");
        assert_eq!(v["thread"]["replies"], 2);
        assert!(v["author"].as_str().unwrap().starts_with("@alice:"));
    }

    #[test]
    fn a_mute_and_a_deleted_message() {
        let target = UserId::new(NodeKey::from_secret(&[6; 32]).node_id(), "bob").unwrap();
        let mute = signed(
            EventKind::Mute {
                target: target.clone(),
                cutoff: 0,
                until: 99,
            },
            &Content::Reason(ReasonContent {
                reason: "cool off".into(),
            }),
        );
        let v = item(&TimelineItem {
            event: mute,
            rejected: false,
            edited_body: None,
            redacted: None,
            reactions: vec![],
            thread: None,
        })
        .unwrap();
        assert_eq!(v["target"], target.to_string());
        assert_eq!(
            (v["until"].as_u64(), v["reason"].as_str()),
            (Some(99), Some("cool off"))
        );
        let mut gone = signed(
            EventKind::Message,
            &Content::Message(MessageContent {
                body: "oops".into(),
                ..Default::default()
            }),
        );
        gone.content = None;
        let v = item(&TimelineItem {
            event: gone,
            rejected: false,
            edited_body: None,
            redacted: Some("spam".into()),
            reactions: vec![],
            thread: None,
        })
        .unwrap();
        assert_eq!(v["redacted"], "spam");
        assert!(v["body"].is_null() && v["html"].is_null());
    }
}
