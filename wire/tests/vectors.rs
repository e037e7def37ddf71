//! Known-answer vectors: the exact bytes of signed events and of a frame of
//! every message type. A change that alters the encoding fails here loudly.
//! If the change is intended, it is a protocol change: bump the protocol
//! version, then regenerate with `CONFAB_BLESS=1 cargo test -p confab-wire --test vectors`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use confab_wire::client::*;
use confab_wire::event::{EditContent, IdempotencyHash, MessageContent, Setting};
use confab_wire::fed::*;
use confab_wire::{
    ClientMessage, Content, EventId, EventKind, FedMessage, Permissions, RoomId, codec,
};

fn check(name: &str, bytes: &[u8]) {
    compare(name, "hex", &hex::encode(bytes));
}

fn check_text(name: &str, text: &str) {
    compare(name, "txt", text);
}

fn compare(name: &str, ext: &str, hex: &str) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/vectors/{name}.{ext}"));
    if std::env::var_os("CONFAB_BLESS").is_some() {
        std::fs::write(&path, format!("{hex}\n")).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing vector {}: {e}", path.display()));
    assert_eq!(
        hex,
        expected.trim(),
        "\nENCODING CHANGED for vector `{name}` ({}).\nThis breaks compatibility with every \
         deployed node. If intended, bump the protocol version and rerun with CONFAB_BLESS=1.\n",
        path.display()
    );
}

#[test]
fn signed_events_and_ids() {
    let create = common::create_event();
    let message = common::message_event();
    check_text("node_id", &common::key().node_id().to_string());
    check(
        "create_event",
        &codec::to_vec("e", create.signed()).unwrap(),
    );
    check_text("create_event_id", &create.id().to_string());
    check(
        "message_event",
        &codec::to_vec("e", message.signed()).unwrap(),
    );
    check_text("message_event_id", &message.id().to_string());
    let v2 = common::create_event_of(2);
    check("create_event_v2", &codec::to_vec("e", v2.signed()).unwrap());
    let v3 = common::create_event_of(3);
    check("create_event_v3", &codec::to_vec("e", v3.signed()).unwrap());
    let tagged = common::message_event_v3();
    check(
        "message_event_v3",
        &codec::to_vec("e", tagged.signed()).unwrap(),
    );
    // The hash is the message's last 16 bytes; without it the bytes are
    // a message of versions 1 and 2.
    let bytes = tagged.signed().content.clone().unwrap();
    let hash = IdempotencyHash::of(&common::alice(), "k-1");
    assert_eq!(tagged.idempotency(), Some(&hash));
    assert_eq!(&bytes[bytes.len() - 16..], &hash.0);
    let plain = Content::decode_for(&EventKind::Message, &bytes[..bytes.len() - 16]).unwrap();
    assert_eq!(
        Content::decode_for(&EventKind::Message, &bytes).unwrap(),
        plain
    );
    assert!(Content::decode_for(&EventKind::Message, &bytes[..bytes.len() - 1]).is_err());
    // The vectors verify, and the ids are the hashes of the header bytes.
    for ev in [&create, &message, &v2, &v3, &tagged] {
        let again = ev.signed().clone().verify().unwrap();
        assert_eq!(again.id(), ev.id());
    }
    // A redacted message keeps its id and still verifies.
    let mut redacted = message.clone();
    redacted.redact();
    let again = redacted.into_signed().verify().unwrap();
    assert_eq!(again.id(), message.id());
    assert!(again.is_redacted());
}

fn fed_samples() -> Vec<FedMessage> {
    let create = common::create_event();
    let message = common::message_event();
    let room = create.room();
    let node = common::key().node_id();
    vec![
        FedMessage::Hello(Hello {
            version_min: 1,
            version_max: FED_PROTOCOL_VERSION,
            node,
            name: "acme".into(),
            capabilities: 0,
        }),
        FedMessage::Events(EventBatch {
            room,
            trace: Some(TraceId(0x0123_4567_89ab_cdef)),
            events: vec![create.signed().clone(), message.signed().clone()],
        }),
        FedMessage::VersionVector(VersionVector {
            room,
            origins: vec![OriginHead {
                origin: node,
                seq: 2,
                head: message.id(),
                forked_at: 0,
                forks: 0,
            }],
        }),
        FedMessage::Want(Want {
            room,
            since: vec![OriginSince {
                origin: node,
                after_seq: 1,
            }],
            limit: 500,
        }),
        FedMessage::GetEvents(GetEvents {
            room,
            ids: vec![create.id(), message.id()],
        }),
        FedMessage::BlobRequest(BlobRequest {
            blob: confab_wire::BlobId([9; 32]),
            offset: 0,
        }),
        FedMessage::BlobChunk(BlobChunk {
            blob: confab_wire::BlobId([9; 32]),
            offset: 0,
            total: 4,
            data: vec![1, 2, 3, 4],
        }),
        FedMessage::Ephemeral(Ephemeral {
            room: Some(room),
            user: common::alice(),
            signal: Signal::Typing(true),
        }),
        FedMessage::Error(FedError {
            code: FedErrorCode::UnsupportedVersion,
            message: "version 1 only".into(),
        }),
        FedMessage::Ping(42),
        FedMessage::Pong(42),
    ]
}

fn client_samples() -> Vec<ClientMessage> {
    let message = common::message_event();
    let room: RoomId = common::create_event().room();
    let token = AccessToken::issue(
        &common::key(),
        TokenClaims {
            user: common::alice(),
            family: 7,
            issued: 1_700_000_000_000,
            expires: 1_700_000_900_000,
        },
    )
    .unwrap();
    vec![
        ClientMessage::Hello(ClientHello {
            version_min: 1,
            version_max: CLIENT_PROTOCOL_VERSION,
            name: "gw1".into(),
        }),
        ClientMessage::Welcome(NodeWelcome {
            version: 1,
            node: common::key().node_id(),
            name: "acme".into(),
            settings: NodeSettings {
                registration: Registration::Invite,
                max_upload_bytes: 25 << 20,
            },
        }),
        ClientMessage::Request(ClientRequest {
            id: 1,
            session: SessionId(3),
            trace: confab_wire::fed::TraceId(5),
            auth: Some(token),
            body: Request::Send {
                room,
                idempotency_key: "k-1".into(),
                content: MessageContent {
                    body: "hi".into(),
                    ..Default::default()
                },
            },
        }),
        ClientMessage::Request(ClientRequest {
            id: 2,
            session: SessionId(3),
            trace: confab_wire::fed::TraceId(6),
            auth: None,
            body: Request::Edit {
                room,
                target: message.id(),
                content: EditContent {
                    body: "hello".into(),
                    mentions: vec![],
                },
            },
        }),
        ClientMessage::Request(ClientRequest {
            id: 3,
            session: SessionId(3),
            trace: confab_wire::fed::TraceId(7),
            auth: None,
            body: Request::Moderate {
                room,
                action: Moderation::DefineRole {
                    role: "helper".into(),
                    permissions: Permissions::MESSAGE_PIN.union(Permissions::MESSAGE_SEND),
                },
            },
        }),
        ClientMessage::Reply(Reply {
            id: 1,
            session: SessionId(3),
            result: Ok(Response::Event {
                id: message.id(),
                duplicate: false,
            }),
        }),
        ClientMessage::Reply(Reply {
            id: 2,
            session: SessionId(3),
            result: Err(ClientError {
                code: ErrorCode::Muted,
                message: "muted until 12:00".into(),
                until: Some(1_767_225_600_000),
                retry_after_ms: None,
            }),
        }),
        ClientMessage::Push(Push::RoomEvent {
            room,
            item: TimelineItem {
                event: message.signed().clone(),
                rejected: false,
                edited_body: None,
                redacted: None,
                reactions: vec![ReactionCount {
                    emoji: "👍".into(),
                    users: vec![common::alice()],
                }],
                thread: Some((2, 1_700_000_001_000)),
            },
            trace: None,
        }),
        ClientMessage::Push(Push::Revoked {
            user: common::alice(),
            family: None,
        }),
        ClientMessage::Request(ClientRequest {
            id: 4,
            session: SessionId(1),
            trace: confab_wire::fed::TraceId(0),
            auth: None,
            body: Request::ChangeSettings {
                room,
                settings: vec![Setting::Topic("new".into())],
            },
        }),
        ClientMessage::Ping(1),
        ClientMessage::Pong(1),
        ClientMessage::Push(Push::Presence {
            presence: Ephemeral {
                room: None,
                user: common::alice(),
                signal: Signal::Presence {
                    state: Presence::Away,
                    last_active: 1_700_000_000_000,
                },
            },
            audience: vec![common::alice()],
        }),
    ]
}

#[test]
fn a_frame_of_every_federation_message() {
    let samples = fed_samples();
    let tags: Vec<u8> = samples.iter().map(FedMessage::tag).collect();
    assert_eq!(tags, FedMessage::TAGS, "every message type has a vector");
    for msg in samples {
        let bytes = msg.to_frame_bytes().unwrap();
        check(&format!("fed_{}", msg.name().to_lowercase()), &bytes);
        let mut d = confab_wire::FrameDecoder::default();
        d.push(&bytes);
        let frame = d.next_frame().unwrap().unwrap();
        assert_eq!(frame.encoded_len(), bytes.len());
        assert_eq!(FedMessage::decode(&frame).unwrap(), msg);
    }
}

#[test]
fn a_frame_of_every_client_message() {
    let samples = client_samples();
    let mut seen: Vec<u8> = samples.iter().map(ClientMessage::tag).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, ClientMessage::TAGS, "every message type has a vector");
    for (i, msg) in samples.into_iter().enumerate() {
        let bytes = msg.to_frame_bytes().unwrap();
        check(
            &format!("client_{i:02}_{}", msg.name().to_lowercase()),
            &bytes,
        );
        let mut d = confab_wire::FrameDecoder::default();
        d.push(&bytes);
        let frame = d.next_frame().unwrap().unwrap();
        assert_eq!(confab_wire::decode_client_frame(&frame).unwrap(), msg);
    }
}

#[test]
fn unknown_types_and_requests_are_typed_errors() {
    let frame = confab_wire::Frame {
        tag: 0x7f,
        body: vec![1, 2, 3],
    };
    assert!(matches!(
        FedMessage::decode(&frame),
        Err(confab_wire::Error::UnknownMessageType { tag: 0x7f, .. })
    ));
    // A request from a newer gateway: the envelope decodes, the body's
    // variant is unknown. The node learns the id and can answer it.
    let mut body =
        codec::to_vec("x", &(99u64, SessionId(4), TraceId(0), None::<AccessToken>)).unwrap();
    body.extend(codec::to_vec("x", &250u32).unwrap());
    let frame = confab_wire::Frame { tag: 0x43, body };
    match confab_wire::decode_client_frame(&frame) {
        Err(confab_wire::Error::BadRequestBody { id: 99, .. }) => {}
        other => panic!("expected BadRequestBody, got {other:?}"),
    }
    assert_eq!(request_session(&frame), Some(SessionId(4)));
    // The event id of the vector is stable in text form too.
    let id: EventId = common::message_event().id().to_string().parse().unwrap();
    assert_eq!(id, common::message_event().id());
}
