//! Tests of the client service without sockets: requests in, replies and
//! pushes out of a gateway's queue.
#![allow(clippy::unwrap_used)]

use super::*;
use confab_wire::client::{AccessToken, Anchor, Moderation, SessionGrant};
use confab_wire::event::{MessageContent, Setting, Visibility};

struct Fixture {
    svc: ClientService,
    gw: GatewayId,
    rx: mpsc::Receiver<ClientMessage>,
    next: u64,
}

impl Fixture {
    fn new() -> Fixture {
        let key = NodeKey::from_secret(&[9; 32]);
        let store = Store::temporary().unwrap();
        let rooms = Arc::new(Mutex::new(NodeRooms::open(store, key.node_id()).unwrap()));
        let svc = ClientService::new(
            key,
            "test",
            rooms,
            ServiceSettings {
                registration: Registration::Open,
                max_upload_bytes: 1 << 20,
                messages_per_minute: 1000,
                welcome_bot: false,
                sign_in_failures_per_address: 20,
            },
            None,
        )
        .unwrap();
        let (gw, rx) = svc.attach("test");
        Fixture {
            svc,
            gw,
            rx,
            next: 0,
        }
    }

    /// Sends a request and returns its reply; pushes before it are kept.
    fn call(
        &mut self,
        session: u64,
        auth: Option<&AccessToken>,
        body: Request,
    ) -> (Result<Response, ClientError>, Vec<Push>) {
        self.next += 1;
        self.svc.handle(
            self.gw,
            ClientRequest {
                id: self.next,
                session: SessionId(session),
                trace: TraceId(self.next as u128),
                auth: auth.cloned(),
                body,
            },
        );
        let mut pushes = Vec::new();
        loop {
            match self.rx.try_recv().unwrap() {
                ClientMessage::Reply(r) if r.id == self.next => return (r.result, pushes),
                ClientMessage::Push(p) => pushes.push(p),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn ok(&mut self, session: u64, auth: Option<&AccessToken>, body: Request) -> Response {
        let (r, _) = self.call(session, auth, body);
        r.unwrap()
    }

    fn register(&mut self, session: u64, name: &str) -> SessionGrant {
        match self.ok(
            session,
            None,
            Request::Register {
                username: name.into(),
                password: "correct horse".into(),
                invite_code: None,
                address: None,
            },
        ) {
            Response::Session(g) => g,
            other => panic!("{other:?}"),
        }
    }

    fn room(&mut self, session: u64, t: &AccessToken, name: &str, vis: Visibility) -> RoomId {
        match self.ok(
            session,
            Some(t),
            Request::CreateRoom {
                settings: vec![Setting::Name(name.into()), Setting::Visibility(vis)],
                direct_with: None,
                invite: vec![],
            },
        ) {
            Response::Event { id, .. } => RoomId(id.0),
            other => panic!("{other:?}"),
        }
    }

    fn send(
        &mut self,
        session: u64,
        t: &AccessToken,
        room: RoomId,
        body: &str,
        key: &str,
    ) -> (EventId, bool) {
        match self.ok(
            session,
            Some(t),
            Request::Send {
                room,
                idempotency_key: key.into(),
                content: MessageContent {
                    body: body.into(),
                    ..Default::default()
                },
            },
        ) {
            Response::Event { id, duplicate } => (id, duplicate),
            other => panic!("{other:?}"),
        }
    }
}

fn body_of(item: &TimelineItem) -> Option<String> {
    let h: confab_wire::EventHeader =
        confab_wire::codec::from_slice("h", &item.event.header).unwrap();
    match Content::decode_for(&h.kind, item.event.content.as_deref()?).ok()? {
        Content::Message(m) => Some(m.body),
        _ => None,
    }
}

#[test]
fn rooms_messages_and_idempotent_sends() {
    let mut f = Fixture::new();
    let alice = f.register(1, "alice").access_token;
    let bob = f.register(2, "bob").access_token;
    let room = f.room(1, &alice, "general", Visibility::Public);
    // Bob finds it in the directory and joins; it shows in his list.
    match f.ok(
        2,
        Some(&bob),
        Request::PublicRooms {
            query: "gen".into(),
            limit: 10,
        },
    ) {
        Response::Rooms(r) => assert_eq!(r[0].room, room),
        other => panic!("{other:?}"),
    }
    f.ok(2, Some(&bob), Request::JoinRoom { room });
    f.ok(2, Some(&bob), Request::JoinRoom { room }); // idempotent
    f.ok(2, Some(&bob), Request::Subscribe { room, after: None });
    let (a1, dup) = f.send(1, &alice, room, "hello **bob**", "k1");
    assert!(!dup);
    // A resend with the same key is the same message, posted once.
    let (again, dup) = f.send(1, &alice, room, "hello **bob**", "k1");
    assert!(dup);
    assert_eq!(again, a1);
    let page = match f.ok(
        2,
        Some(&bob),
        Request::History {
            room,
            anchor: Anchor::Latest,
            limit: 50,
        },
    ) {
        Response::Page(p) => p,
        other => panic!("{other:?}"),
    };
    let bodies: Vec<_> = page.items.iter().filter_map(body_of).collect();
    assert_eq!(bodies, vec!["hello **bob**".to_string()]);
    assert!(!page.more_before);
    // Bob's list counts it unread until he reads it.
    let unread = |f: &mut Fixture| match f.ok(2, Some(&bob), Request::ListRooms) {
        Response::Rooms(r) => r[0].unread,
        other => panic!("{other:?}"),
    };
    assert_eq!(unread(&mut f), 1);
    f.ok(2, Some(&bob), Request::MarkRead { room, event: a1 });
    assert_eq!(unread(&mut f), 0);
}

#[test]
fn subscribers_get_pushes_and_resume_without_loss() {
    let mut f = Fixture::new();
    let alice = f.register(1, "alice").access_token;
    let bob = f.register(2, "bob").access_token;
    let room = f.room(1, &alice, "general", Visibility::Public);
    f.ok(2, Some(&bob), Request::JoinRoom { room });
    f.ok(2, Some(&bob), Request::Subscribe { room, after: None });
    let (seen, _) = f.send(1, &alice, room, "one", "k1");
    // The event reached the subscribed session's gateway before the reply.
    let (_, pushes) = f.call(
        1,
        Some(&alice),
        Request::Send {
            room,
            idempotency_key: "k2".into(),
            content: MessageContent {
                body: "two".into(),
                ..Default::default()
            },
        },
    );
    assert!(pushes.iter().any(
        |p| matches!(p, Push::RoomEvent { item, .. } if body_of(item).as_deref() == Some("two"))
    ));
    // Bob's socket drops; a reaction and a third message happen meanwhile.
    f.ok(2, None, Request::EndSession);
    f.ok(
        1,
        Some(&alice),
        Request::React {
            room,
            target: seen,
            emoji: "👍".into(),
        },
    );
    f.send(1, &alice, room, "three", "k3");
    // He resumes after the last event he saw: everything since, in order,
    // and the message the reaction changed, with the reaction.
    let (r, pushes) = f.call(
        3,
        Some(&bob),
        Request::Subscribe {
            room,
            after: Some(seen),
        },
    );
    r.unwrap();
    let items: Vec<&TimelineItem> = pushes
        .iter()
        .filter_map(|p| match p {
            Push::RoomEvent { item, .. } => Some(item),
            _ => None,
        })
        .collect();
    let bodies: Vec<Option<String>> = items.iter().map(|i| body_of(i)).collect();
    assert!(bodies.contains(&Some("two".into())), "{bodies:?}");
    assert!(bodies.contains(&Some("three".into())), "{bodies:?}");
    assert!(
        items
            .iter()
            .any(|i| i.event.id() == seen && i.reactions.len() == 1)
    );
    // An unknown position is refused so the client reloads.
    let (r, _) = f.call(
        3,
        Some(&bob),
        Request::Subscribe {
            room,
            after: Some(EventId([3; 32])),
        },
    );
    assert_eq!(r.unwrap_err().code, ErrorCode::NotFound);
}

#[test]
fn refusals_are_typed_and_store_nothing() {
    let mut f = Fixture::new();
    let alice = f.register(1, "alice").access_token;
    let bob = f.register(2, "bob").access_token;
    let room = f.room(1, &alice, "secret", Visibility::Private);
    let (r, _) = f.call(2, Some(&bob), Request::JoinRoom { room });
    assert_eq!(r.unwrap_err().code, ErrorCode::Forbidden);
    let len = |f: &Fixture| f.svc.rooms().room(&room).unwrap().engine().len();
    let before = len(&f);
    let (r, _) = f.call(
        2,
        Some(&bob),
        Request::Send {
            room,
            idempotency_key: "x".into(),
            content: MessageContent {
                body: "let me in".into(),
                ..Default::default()
            },
        },
    );
    assert_eq!(r.unwrap_err().code, ErrorCode::Forbidden);
    assert_eq!(len(&f), before, "a refused event is not stored");
    // Invited, Bob joins; muted, his sends say until when.
    f.ok(
        1,
        Some(&alice),
        Request::Invite {
            room,
            user: UserId::new(f.svc.node_id(), "bob").unwrap(),
        },
    );
    f.ok(2, Some(&bob), Request::JoinRoom { room });
    let until = now_ms() + 3_600_000;
    f.ok(
        1,
        Some(&alice),
        Request::Moderate {
            room,
            action: Moderation::Mute {
                target: UserId::new(f.svc.node_id(), "bob").unwrap(),
                until,
                reason: "cool off".into(),
            },
        },
    );
    let (r, _) = f.call(
        2,
        Some(&bob),
        Request::Send {
            room,
            idempotency_key: "y".into(),
            content: MessageContent {
                body: "hey".into(),
                ..Default::default()
            },
        },
    );
    let e = r.unwrap_err();
    assert_eq!((e.code, e.until), (ErrorCode::Muted, Some(until)));
    // No token: unauthenticated.
    let (r, _) = f.call(9, None, Request::ListRooms);
    assert_eq!(r.unwrap_err().code, ErrorCode::Unauthenticated);
}

#[test]
fn message_rate_is_limited_per_user() {
    let mut f = Fixture::new();
    let mut s = f.svc.settings();
    s.messages_per_minute = 3;
    f.svc.set_settings(s);
    // The settings push reaches the gateway.
    assert!(matches!(
        f.rx.try_recv(),
        Ok(ClientMessage::Push(Push::Settings(_)))
    ));
    let alice = f.register(1, "alice").access_token;
    let room = f.room(1, &alice, "general", Visibility::Public);
    for i in 0..3 {
        f.send(1, &alice, room, "m", &format!("k{i}"));
    }
    let (r, _) = f.call(
        1,
        Some(&alice),
        Request::Send {
            room,
            idempotency_key: "k9".into(),
            content: MessageContent {
                body: "m".into(),
                ..Default::default()
            },
        },
    );
    let e = r.unwrap_err();
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert!(
        e.retry_after_ms.is_some_and(|ms| ms > 0 && ms <= 20_000),
        "{e:?}"
    );
}

#[test]
fn logout_everywhere_revokes_other_sessions() {
    let mut f = Fixture::new();
    let g1 = f.register(1, "alice");
    let (r, _) = f.call(
        2,
        None,
        Request::Login {
            username: "alice".into(),
            password: "correct horse".into(),
            address: None,
        },
    );
    let g2 = match r.unwrap() {
        Response::Session(g) => g,
        other => panic!("{other:?}"),
    };
    let (r, pushes) = f.call(1, Some(&g1.access_token), Request::LogoutAll);
    r.unwrap();
    assert!(
        pushes
            .iter()
            .any(|p| matches!(p, Push::Revoked { family: None, .. }))
    );
    let (r, _) = f.call(2, Some(&g2.access_token), Request::ListRooms);
    assert_eq!(r.unwrap_err().code, ErrorCode::Unauthenticated);
}

/// Two sockets sending one key at once: the check and the post are one
/// step, so exactly one of them posts and both answer with its event.
#[test]
fn one_key_sent_on_two_sockets_at_once_posts_once() {
    let mut f = Fixture::new();
    let grant = f.register(1, "alice");
    let room = f.room(1, &grant.access_token, "general", Visibility::Public);
    let user = grant.user;
    for i in 0..100 {
        let key = format!("k{i}");
        let start = Arc::new(std::sync::Barrier::new(2));
        let sends: Vec<_> = (0..2)
            .map(|_| {
                let (svc, user, key, start) =
                    (f.svc.clone(), user.clone(), key.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let content = MessageContent {
                        body: format!("message {key}"),
                        ..Default::default()
                    };
                    svc.send_message(&user, &room, &key, content, TraceId(0))
                })
            })
            .collect();
        let answers: Vec<(EventId, bool)> = sends
            .into_iter()
            .map(|t| match t.join().unwrap().unwrap() {
                Response::Event { id, duplicate } => (id, duplicate),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(answers[0].0, answers[1].0, "pair {i} posted twice");
        assert_eq!(
            answers.iter().filter(|(_, dup)| !dup).count(),
            1,
            "pair {i}: exactly one send posts"
        );
    }
    let page = match f.ok(
        1,
        Some(&grant.access_token),
        Request::History {
            room,
            anchor: Anchor::Latest,
            limit: 200,
        },
    ) {
        Response::Page(p) => p,
        other => panic!("{other:?}"),
    };
    let messages = page.items.iter().filter(|i| body_of(i).is_some()).count();
    assert_eq!(messages, 100);
}

/// A backup whose reader stops reading holds nothing the node needs:
/// posting goes on while the backup waits to hand over its first piece.
#[test]
fn a_stalled_backup_pauses_no_post() {
    use confab_wire::admin::{AdminCommand, AdminOutput, AdminRequest};
    let mut f = Fixture::new();
    let alice = f.register(1, "alice").access_token;
    let room = f.room(1, &alice, "general", Visibility::Public);
    f.send(1, &alice, room, "before the backup", "k0");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("node.key");
    std::fs::write(&key_file, b"key").unwrap();
    let admin = super::admin::AdminService::new(f.svc.clone(), key_file);
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let backup = std::thread::spawn(move || {
        let mut chunks = 0usize;
        let mut reply = |r: confab_wire::admin::AdminReply| {
            if let Ok(AdminOutput::BackupChunk(_)) = r.result {
                if chunks == 0 {
                    let _ = started_tx.send(());
                    // The reader stalls here until the test lets it go.
                    let _ = release_rx.recv();
                }
                chunks += 1;
            }
            true
        };
        admin.handle(
            &super::admin::Actor("test".into()),
            AdminRequest {
                id: 1,
                trace: TraceId(1),
                act_as: None,
                command: AdminCommand::BackupCreate,
            },
            &mut reply,
        );
        chunks
    });
    started.recv().unwrap();
    // Posts, sign-ups and new rooms go on while the backup is stalled.
    let (_, dup) = f.send(1, &alice, room, "during the backup", "k1");
    assert!(!dup);
    let bob = f.register(2, "bob").access_token;
    f.room(2, &bob, "another", Visibility::Public);
    release.send(()).unwrap();
    assert!(backup.join().unwrap() > 0);
}
