//! Browser requests (JSON, `gateway/PROTOCOL.md` §5) into node requests,
//! and node responses into each request's `ok` payload.
//!
//! Parsing is total: any JSON value gives either a request or a typed
//! `bad_request`/`bad_json`/`unknown_request` error naming the field.

use std::str::FromStr;

use confab_wire::client::{Anchor, MAX_PAGE, Moderation, Request, Response};
use confab_wire::event::{
    Attachment, EditContent, InvitePolicy, MessageContent, Permissions, Setting, Visibility,
};
use confab_wire::fed::Presence;
use confab_wire::{BlobId, EventId, RoomId, UserId};
use serde_json::{Map, Value, json};

use crate::render;

/// Why a browser request could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `bad_json`, `bad_request` or `unknown_request`.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal {
        code: "bad_request",
        message: message.into(),
    }
}

/// What the gateway does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer with the server time.
    Ping,
    /// Authenticate the socket with a token it holds.
    Authenticate {
        /// The access token's text.
        access_token: String,
    },
    /// Pass to the node; `shape` turns its response into the payload.
    Node(Request),
}

/// A parsed request: its id, its type and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The client's id.
    pub id: u64,
    /// The request type (for metrics and for shaping the reply).
    pub kind: &'static str,
    /// What to do.
    pub action: Action,
}

/// The request types this gateway speaks, for metrics labels.
pub const KINDS: &[&str] = &[
    "ping",
    "register",
    "login",
    "refresh",
    "authenticate",
    "logout",
    "logout_all",
    "get_profile",
    "set_profile",
    "search_users",
    "set_presence",
    "block",
    "list_rooms",
    "create_room",
    "public_rooms",
    "join_room",
    "leave_room",
    "invite",
    "change_settings",
    "archive_room",
    "room_info",
    "moderate",
    "subscribe",
    "unsubscribe",
    "history",
    "thread",
    "mark_read",
    "typing",
    "send",
    "edit",
    "redact",
    "react",
    "unreact",
    "pin",
    "unpin",
    "report",
    "search",
    "mentions",
    "edit_history",
    "notices",
    "dismiss_notice",
];

struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn opt(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn string(&self, name: &str) -> Result<String, Refusal> {
        match self.opt(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad(format!("`{name}` must be a string"))),
            None => Err(bad(format!("`{name}` is required"))),
        }
    }

    fn opt_string(&self, name: &str) -> Result<Option<String>, Refusal> {
        match self.opt(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("`{name}` must be a string"))),
        }
    }

    fn parse<T: FromStr>(&self, name: &str) -> Result<T, Refusal>
    where
        T::Err: std::fmt::Display,
    {
        let s = self.string(name)?;
        s.parse().map_err(|e| bad(format!("`{name}`: {e}")))
    }

    fn opt_parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, Refusal>
    where
        T::Err: std::fmt::Display,
    {
        match self.opt_string(name)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|e| bad(format!("`{name}`: {e}"))),
        }
    }

    fn boolean(&self, name: &str) -> Result<bool, Refusal> {
        match self.opt(name) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(format!("`{name}` must be true or false"))),
            None => Err(bad(format!("`{name}` is required"))),
        }
    }

    fn uint(&self, name: &str) -> Result<Option<u64>, Refusal> {
        match self.opt(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(format!("`{name}` must be a non-negative integer"))),
        }
    }

    fn limit(&self) -> Result<u16, Refusal> {
        Ok(self
            .uint("limit")?
            .map_or(0, |l| l.clamp(1, MAX_PAGE as u64) as u16))
    }

    fn users(&self, name: &str, max: usize) -> Result<Vec<UserId>, Refusal> {
        match self.opt(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => {
                if a.len() > max {
                    return Err(bad(format!("`{name}`: at most {max}")));
                }
                a.iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or_else(|| bad(format!("`{name}` must hold user ids")))?
                            .parse::<UserId>()
                            .map_err(|e| bad(format!("`{name}`: {e}")))
                    })
                    .collect()
            }
            Some(_) => Err(bad(format!("`{name}` must be an array"))),
        }
    }
}

fn settings(v: Option<&Value>) -> Result<Vec<Setting>, Refusal> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Value::Object(m) = v else {
        return Err(bad("`settings` must be an object"));
    };
    let f = Fields(m);
    let mut out = Vec::new();
    if let Some(n) = f.opt_string("name")? {
        out.push(Setting::Name(n));
    }
    if let Some(t) = f.opt_string("topic")? {
        out.push(Setting::Topic(t));
    }
    match f.opt_string("visibility")?.as_deref() {
        None => {}
        Some("public") => out.push(Setting::Visibility(Visibility::Public)),
        Some("private") => out.push(Setting::Visibility(Visibility::Private)),
        Some(_) => return Err(bad("`visibility` must be \"public\" or \"private\"")),
    }
    match f.opt_string("invites")?.as_deref() {
        None => {}
        Some("members") => out.push(Setting::Invites(InvitePolicy::Members)),
        Some("room.settings") => out.push(Setting::Invites(InvitePolicy::RoomSettings)),
        Some(_) => return Err(bad("`invites` must be \"members\" or \"room.settings\"")),
    }
    Ok(out)
}

fn attachments(v: Option<&Value>) -> Result<Vec<Attachment>, Refusal> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Value::Array(a) = v else {
        return Err(bad("`attachments` must be an array"));
    };
    if a.len() > confab_wire::event::MAX_ATTACHMENTS {
        return Err(bad("at most 10 attachments per message"));
    }
    a.iter()
        .map(|v| {
            let Value::Object(m) = v else {
                return Err(bad("an attachment must be an object"));
            };
            let f = Fields(m);
            // Size and type come from the node, not from here.
            Ok(Attachment {
                blob: f.parse::<BlobId>("blob")?,
                size: 0,
                mime: String::new(),
                name: f.string("name")?,
                dimensions: None,
            })
        })
        .collect()
}

fn moderation(v: Option<&Value>) -> Result<Moderation, Refusal> {
    let Some(Value::Object(m)) = v else {
        return Err(bad("`action` must be an object"));
    };
    let f = Fields(m);
    let reason = || f.opt_string("reason").map(Option::unwrap_or_default);
    Ok(match f.string("kind")?.as_str() {
        "mute" => Moderation::Mute {
            target: f.parse("target")?,
            until: f.uint("until")?.ok_or_else(|| bad("`until` is required"))?,
            reason: reason()?,
        },
        "unmute" => Moderation::Unmute {
            target: f.parse("target")?,
        },
        "kick" => Moderation::Kick {
            target: f.parse("target")?,
            reason: reason()?,
        },
        "ban" => Moderation::Ban {
            target: f.parse("target")?,
            reason: reason()?,
        },
        "unban" => Moderation::Unban {
            target: f.parse("target")?,
        },
        "define_role" => {
            let names = match f.opt("permissions") {
                Some(Value::Array(a)) => a,
                _ => return Err(bad("`permissions` must be an array of names")),
            };
            let mut p = Permissions::NONE;
            for n in names {
                let n = n.as_str().unwrap_or("");
                p = p.union(
                    Permissions::from_name(n)
                        .ok_or_else(|| bad(format!("unknown permission {n:?}")))?,
                );
            }
            Moderation::DefineRole {
                role: f.string("role")?,
                permissions: p,
            }
        }
        "grant_role" => Moderation::GrantRole {
            target: f.parse("target")?,
            role: f.string("role")?,
        },
        "revoke_role" => Moderation::RevokeRole {
            target: f.parse("target")?,
            role: f.string("role")?,
        },
        other => return Err(bad(format!("unknown moderation kind {other:?}"))),
    })
}

fn anchor(f: &Fields<'_>) -> Result<Anchor, Refusal> {
    let before: Option<EventId> = f.opt_parse("before")?;
    let after: Option<EventId> = f.opt_parse("after")?;
    let around: Option<EventId> = f.opt_parse("around")?;
    Ok(match (before, after, around) {
        (None, None, None) => Anchor::Latest,
        (Some(b), None, None) => Anchor::Before(b),
        (None, Some(a), None) => Anchor::After(a),
        (None, None, Some(a)) => Anchor::Around(a),
        _ => return Err(bad("give at most one of `before`, `after`, `around`")),
    })
}

/// Parses one text frame. The id is returned even when the rest fails, so
/// the error can name the request.
pub fn parse(text: &str) -> Result<Parsed, (Option<u64>, Refusal)> {
    let v: Value = serde_json::from_str(text).map_err(|_| {
        (
            None,
            Refusal {
                code: "bad_json",
                message: "expected a JSON object".into(),
            },
        )
    })?;
    let Value::Object(m) = v else {
        return Err((
            None,
            Refusal {
                code: "bad_json",
                message: "expected a JSON object".into(),
            },
        ));
    };
    let id = match m.get("id").and_then(Value::as_u64) {
        Some(id) if (1..(1u64 << 53)).contains(&id) => id,
        _ => return Err((None, bad("`id` must be an integer from 1 to 2^53-1"))),
    };
    let kind = match m.get("type").and_then(Value::as_str) {
        Some(t) => t,
        None => return Err((Some(id), bad("`type` is required"))),
    };
    let Some(kind) = KINDS.iter().copied().find(|k| *k == kind) else {
        return Err((
            Some(id),
            Refusal {
                code: "unknown_request",
                message: format!("unknown request type {kind:?}"),
            },
        ));
    };
    let f = Fields(&m);
    let node = |r: Request| Ok(Action::Node(r));
    let action: Result<Action, Refusal> = (|| match kind {
        "ping" => Ok(Action::Ping),
        "authenticate" => Ok(Action::Authenticate {
            access_token: f.string("access_token")?,
        }),
        "register" => node(Request::Register {
            username: f.string("username")?,
            password: f.string("password")?,
            invite_code: f.opt_string("invite_code")?,
            // Filled in by the socket, never taken from the browser.
            address: None,
        }),
        "login" => node(Request::Login {
            username: f.string("username")?,
            password: f.string("password")?,
            address: None,
        }),
        "refresh" => node(Request::Refresh {
            refresh_token: f.string("refresh_token")?,
        }),
        "logout" => node(Request::Logout {
            refresh_token: f.string("refresh_token")?,
        }),
        "logout_all" => node(Request::LogoutAll),
        "get_profile" => node(Request::GetProfile {
            user: f.parse("user")?,
        }),
        "set_profile" => node(Request::SetProfile {
            display_name: f.opt_string("display_name")?,
            status: f.opt_string("status")?,
            avatar: match m.get("avatar") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(Value::String(s)) => Some(Some(
                    s.parse::<BlobId>()
                        .map_err(|e| bad(format!("`avatar`: {e}")))?,
                )),
                Some(_) => return Err(bad("`avatar` must be a blob id or null")),
            },
        }),
        "search_users" => node(Request::SearchUsers {
            query: f.string("query")?,
            limit: f.limit()?,
        }),
        "set_presence" => node(Request::SetPresence {
            state: match f.string("presence")?.as_str() {
                "online" => Presence::Online,
                "away" => Presence::Away,
                "offline" => Presence::Offline,
                _ => return Err(bad("`presence` must be online, away or offline")),
            },
        }),
        "block" => node(Request::Block {
            user: f.parse("user")?,
            blocked: f.boolean("blocked")?,
        }),
        "list_rooms" => node(Request::ListRooms),
        "create_room" => node(Request::CreateRoom {
            settings: settings(m.get("settings"))?,
            direct_with: f.opt_parse("direct_with")?,
            invite: f.users("invite", 50)?,
        }),
        "public_rooms" => node(Request::PublicRooms {
            query: f.opt_string("query")?.unwrap_or_default(),
            limit: f.limit()?,
        }),
        "join_room" => node(Request::JoinRoom {
            room: f.parse("room")?,
        }),
        "leave_room" => node(Request::LeaveRoom {
            room: f.parse("room")?,
        }),
        "invite" => node(Request::Invite {
            room: f.parse("room")?,
            user: f.parse("user")?,
        }),
        "change_settings" => {
            let s = settings(m.get("settings"))?;
            if s.is_empty() {
                return Err(bad("`settings` must change at least one key"));
            }
            node(Request::ChangeSettings {
                room: f.parse("room")?,
                settings: s,
            })
        }
        "archive_room" => node(Request::ArchiveRoom {
            room: f.parse("room")?,
        }),
        "room_info" => node(Request::RoomInfo {
            room: f.parse("room")?,
        }),
        "moderate" => node(Request::Moderate {
            room: f.parse("room")?,
            action: moderation(m.get("action"))?,
        }),
        "subscribe" => node(Request::Subscribe {
            room: f.parse("room")?,
            after: f.opt_parse("since")?,
        }),
        "unsubscribe" => node(Request::Unsubscribe {
            room: f.parse("room")?,
        }),
        "history" => node(Request::History {
            room: f.parse("room")?,
            anchor: anchor(&f)?,
            limit: f.limit()?,
        }),
        "thread" => node(Request::Thread {
            room: f.parse("room")?,
            root: f.parse("root")?,
            anchor: anchor(&f)?,
            limit: f.limit()?,
        }),
        "mark_read" => node(Request::MarkRead {
            room: f.parse("room")?,
            event: f.parse("event")?,
        }),
        "typing" => node(Request::Typing {
            room: f.parse("room")?,
            active: f.boolean("typing")?,
        }),
        "send" => node(Request::Send {
            room: f.parse("room")?,
            idempotency_key: f.string("idempotency_key")?,
            content: MessageContent {
                body: f.opt_string("body")?.unwrap_or_default(),
                reply_to: f.opt_parse("reply_to")?,
                thread: f.opt_parse("thread_root")?,
                mentions: f.users("mentions", confab_wire::event::MAX_MENTIONS)?,
                attachments: attachments(m.get("attachments"))?,
            },
        }),
        "edit" => node(Request::Edit {
            room: f.parse("room")?,
            target: f.parse("target")?,
            content: EditContent {
                body: f.string("body")?,
                mentions: f.users("mentions", confab_wire::event::MAX_MENTIONS)?,
            },
        }),
        "redact" => node(Request::Redact {
            room: f.parse("room")?,
            target: f.parse("target")?,
            reason: f.opt_string("reason")?.unwrap_or_default(),
        }),
        "react" => node(Request::React {
            room: f.parse("room")?,
            target: f.parse("target")?,
            emoji: f.string("emoji")?,
        }),
        "unreact" => node(Request::Unreact {
            room: f.parse("room")?,
            target: f.parse("target")?,
            emoji: f.string("emoji")?,
        }),
        "pin" => node(Request::Pin {
            room: f.parse("room")?,
            target: f.parse("target")?,
        }),
        "unpin" => node(Request::Unpin {
            room: f.parse("room")?,
            target: f.parse("target")?,
        }),
        "report" => node(Request::Report {
            room: f.parse("room")?,
            event: f.parse("event")?,
            reason: f.string("reason")?,
        }),
        "search" => node(Request::Search {
            room: f.opt_parse::<RoomId>("room")?,
            query: f.string("query")?,
            limit: f.limit()?,
            before: f.opt_parse("before")?,
        }),
        "mentions" => node(Request::Mentions {
            before: f.opt_parse("before")?,
            limit: f.limit()?,
        }),
        "edit_history" => node(Request::EditHistory {
            room: f.parse("room")?,
            target: f.parse("target")?,
        }),
        "notices" => node(Request::Notices),
        "dismiss_notice" => node(Request::DismissNotice {
            notice: f.parse("notice")?,
        }),
        _ => Err(Refusal {
            code: "unknown_request",
            message: format!("unknown request type {kind:?}"),
        }),
    })();
    match action {
        Ok(action) => Ok(Parsed { id, kind, action }),
        Err(e) => Err((Some(id), e)),
    }
}

/// The fuzz entry point: any bytes (as the text they would be, lossily)
/// give a request or a refusal, and a refusal carries a known code.
pub fn fuzz_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err((_, r)) = parse(&text) {
        assert!(
            matches!(r.code, "bad_json" | "bad_request" | "unknown_request"),
            "unexpected code {}",
            r.code
        );
    }
}

/// The `ok` payload of a request of type `kind` answered with `r`.
pub fn shape(kind: &str, r: &Response) -> Value {
    match (kind, r) {
        (_, Response::Session(g)) => render::grant(g),
        ("create_room", Response::Event { id, .. }) => json!({ "room": RoomId(id.0).to_string() }),
        ("send", Response::Event { id, duplicate }) => {
            json!({ "event": id.to_string(), "duplicate": duplicate })
        }
        (_, Response::Event { id, .. }) => json!({ "event": id.to_string() }),
        (_, Response::Profile(p)) => render::profile(p),
        (_, Response::Users(u)) => {
            json!({ "users": u.iter().map(render::profile).collect::<Vec<_>>() })
        }
        (_, Response::Rooms(r)) => {
            json!({ "rooms": r.iter().map(render::summary).collect::<Vec<_>>() })
        }
        (_, Response::Room(d)) => render::detail(d),
        (_, Response::Page(p)) => render::page(p),
        (_, Response::Attachment(a)) => render::attachment(a),
        (_, Response::Edits(v)) => {
            json!({ "versions": v.iter().map(render::version).collect::<Vec<_>>() })
        }
        (_, Response::Notices(n)) => {
            json!({ "notices": n.iter().map(render::notice).collect::<Vec<_>>() })
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_send_is_read_whole() {
        let room = RoomId([4; 32]).to_string();
        let p = parse(&format!(
            r#"{{"id":6,"type":"send","room":"{room}","body":"Hi","idempotency_key":"k","unknown_field":1}}"#
        ))
        .unwrap();
        assert_eq!((p.id, p.kind), (6, "send"));
        let Action::Node(Request::Send {
            idempotency_key,
            content,
            ..
        }) = p.action
        else {
            panic!()
        };
        assert_eq!(
            (idempotency_key.as_str(), content.body.as_str()),
            ("k", "Hi")
        );
    }

    #[test]
    fn bad_input_gets_typed_errors_with_the_id_when_known() {
        for (text, id, code) in [
            ("not json", None, "bad_json"),
            ("[1,2]", None, "bad_json"),
            (r#"{"type":"ping"}"#, None, "bad_request"),
            (r#"{"id":0,"type":"ping"}"#, None, "bad_request"),
            (r#"{"id":3}"#, Some(3), "bad_request"),
            (r#"{"id":3,"type":"fly"}"#, Some(3), "unknown_request"),
            (r#"{"id":3,"type":"join_room"}"#, Some(3), "bad_request"),
            (
                r#"{"id":3,"type":"join_room","room":"general"}"#,
                Some(3),
                "bad_request",
            ),
            (
                r#"{"id":3,"type":"typing","room":"!x","typing":"yes"}"#,
                Some(3),
                "bad_request",
            ),
            (
                r#"{"id":3,"type":"upload_start"}"#,
                Some(3),
                "unknown_request",
            ),
        ] {
            let (got_id, e) = parse(text).unwrap_err();
            assert_eq!((got_id, e.code), (id, code), "{text}: {}", e.message);
        }
        let (_, e) = parse(r#"{"id":3,"type":"join_room","room":5}"#).unwrap_err();
        assert!(e.message.contains("`room`"), "{}", e.message);
    }

    #[test]
    fn anchors_and_moderation() {
        let ev = EventId([8; 32]).to_string();
        let room = RoomId([4; 32]).to_string();
        let p = parse(&format!(
            r#"{{"id":1,"type":"history","room":"{room}","around":"{ev}","limit":900}}"#
        ))
        .unwrap();
        assert!(matches!(
            p.action,
            Action::Node(Request::History {
                anchor: Anchor::Around(_),
                limit: 200,
                ..
            })
        ));
        let e = parse(&format!(
            r#"{{"id":1,"type":"history","room":"{room}","before":"{ev}","after":"{ev}"}}"#
        ))
        .unwrap_err();
        assert_eq!(e.1.code, "bad_request");
        let p = parse(&format!(
            r#"{{"id":2,"type":"moderate","room":"{room}","action":{{"kind":"define_role","role":"helper","permissions":["message.send","message.pin"]}}}}"#
        ))
        .unwrap();
        let Action::Node(Request::Moderate {
            action: Moderation::DefineRole { permissions, .. },
            ..
        }) = p.action
        else {
            panic!()
        };
        assert_eq!(permissions.names(), vec!["message.send", "message.pin"]);
    }
}
