//! Engine tests: one per auth rule (both ways), ordering and sanction
//! semantics, and the convergence property.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};

use confab_wire::event::{
    Content, CreateRoom, EditContent, InvitePolicy, MessageContent, ReasonContent, Setting,
    Visibility,
};
use confab_wire::{EventKind, NodeKey, Permissions, UserId, VerifiedEvent};

use super::*;

const T0: u64 = 1_700_000_000_000;

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret(&[n; 32])
}

fn user(n: u8, name: &str) -> UserId {
    UserId::new(key(n).node_id(), name).unwrap()
}

fn content_for(kind: &EventKind) -> Content {
    match kind {
        EventKind::Message => Content::Message(MessageContent {
            body: "hello".into(),
            ..Default::default()
        }),
        EventKind::Edit { .. } => Content::Edit(EditContent {
            body: "edited".into(),
            mentions: vec![],
        }),
        k if k.content_class() == confab_wire::event::ContentClass::Reason => {
            Content::Reason(ReasonContent::default())
        }
        _ => Content::Empty,
    }
}

/// One node's replica of a room, posting as its users.
struct Replica {
    key: NodeKey,
    engine: RoomEngine,
    log: Vec<VerifiedEvent>,
}

fn create_room(n: u8, creator: &str, visibility: Visibility, direct: bool) -> Replica {
    create_room_of_version(
        n,
        creator,
        visibility,
        direct,
        confab_wire::event::ROOM_VERSION,
    )
}

fn create_room_of_version(
    n: u8,
    creator: &str,
    visibility: Visibility,
    direct: bool,
    version: u16,
) -> Replica {
    let k = key(n);
    let mut create = CreateRoom::named("general", visibility, direct);
    create.version = version;
    let header = EventHeader::create(user(n, creator), create, T0);
    let ev = k.sign_event(header, &Content::Empty).unwrap();
    Replica {
        engine: RoomEngine::new(&ev).unwrap(),
        key: k,
        log: vec![ev],
    }
}

impl Replica {
    fn join_replica(&self, n: u8) -> Replica {
        let mut r = Replica {
            key: key(n),
            engine: RoomEngine::new(&self.log[0]).unwrap(),
            log: vec![self.log[0].clone()],
        };
        r.sync_from(self);
        r
    }

    fn sign(&self, author: &UserId, kind: EventKind, ts: u64) -> VerifiedEvent {
        let content = content_for(&kind);
        let header = self.engine.next_header(author.clone(), kind, ts);
        self.key.sign_event(header, &content).unwrap()
    }

    /// Posts as `author` (a user of this replica's node) and returns the verdict.
    fn post_at(&mut self, author: &UserId, kind: EventKind, ts: u64) -> (EventId, Verdict) {
        let ev = self.sign(author, kind, ts);
        let id = ev.id();
        let v = self.deliver(&ev, ts);
        (id, v)
    }

    fn post(&mut self, author: &UserId, kind: EventKind) -> (EventId, Verdict) {
        let ts = T0 + 1000 * self.log.len() as u64;
        self.post_at(author, kind, ts)
    }

    fn deliver(&mut self, ev: &VerifiedEvent, now: u64) -> Verdict {
        match self.engine.submit(ev, now).unwrap() {
            Admission::Applied { verdict, .. } => {
                self.log.push(ev.clone());
                verdict
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Receives every event of `other` it lacks, in `other`'s log order
    /// (which is causal).
    fn sync_from(&mut self, other: &Replica) {
        for ev in &other.log {
            if !self.engine.contains(&ev.id()) {
                self.deliver(ev, u64::MAX / 2);
            }
        }
    }

    fn verdict(&self, id: &EventId) -> Verdict {
        self.engine.verdict(id).unwrap().clone()
    }
}

fn accepted(v: &Verdict) {
    assert_eq!(*v, Verdict::Accepted);
}

fn rejected(v: &Verdict, r: Rejection) {
    assert_eq!(*v, Verdict::Rejected(r));
}

#[test]
fn members_post_and_strangers_cannot() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let bob = user(1, "bob");
    accepted(&a.post(&alice, EventKind::Message).1);
    rejected(&a.post(&bob, EventKind::Message).1, Rejection::NotMember);
    accepted(&a.post(&bob, EventKind::Join).1);
    accepted(&a.post(&bob, EventKind::Message).1);
    rejected(&a.post(&bob, EventKind::Join).1, Rejection::AlreadyMember);
    accepted(&a.post(&bob, EventKind::Leave).1);
    rejected(&a.post(&bob, EventKind::Message).1, Rejection::NotMember);
}

#[test]
fn private_rooms_need_an_invitation() {
    let mut a = create_room(1, "alice", Visibility::Private, false);
    let alice = user(1, "alice");
    let bob = user(1, "bob");
    rejected(&a.post(&bob, EventKind::Join).1, Rejection::NotInvited);
    accepted(
        &a.post(
            &alice,
            EventKind::Invite {
                target: bob.clone(),
            },
        )
        .1,
    );
    rejected(
        &a.post(
            &alice,
            EventKind::Invite {
                target: bob.clone(),
            },
        )
        .1,
        Rejection::AlreadyMember,
    );
    accepted(&a.post(&bob, EventKind::Join).1);
}

fn invite(target: &UserId) -> EventKind {
    EventKind::Invite {
        target: target.clone(),
    }
}

#[test]
fn inviting_into_a_private_room_follows_the_rooms_rules_version() {
    let alice = user(1, "alice");
    let bob = user(1, "bob");
    let puppet = user(2, "puppet");
    let invites = |p| EventKind::Settings(vec![Setting::Invites(p)]);
    // Version 1: any member who may post invites, and the setting does not exist.
    let mut v1 = create_room_of_version(1, "alice", Visibility::Private, false, 1);
    accepted(&v1.post(&alice, invite(&bob)).1);
    accepted(&v1.post(&bob, EventKind::Join).1);
    accepted(&v1.post(&bob, invite(&puppet)).1);
    rejected(
        &v1.post(&alice, invites(InvitePolicy::Members)).1,
        Rejection::UnsupportedSetting,
    );
    // Version 2: a plain member needs `room.settings` ...
    let mut v2 = create_room_of_version(1, "alice", Visibility::Private, false, 2);
    accepted(&v2.post(&alice, invite(&bob)).1);
    accepted(&v2.post(&bob, EventKind::Join).1);
    rejected(
        &v2.post(&bob, invite(&puppet)).1,
        Rejection::Forbidden {
            needs: Permissions::ROOM_SETTINGS,
        },
    );
    // ... and the setting is for those who hold it ...
    rejected(
        &v2.post(&bob, invites(InvitePolicy::Members)).1,
        Rejection::Forbidden {
            needs: Permissions::ROOM_SETTINGS,
        },
    );
    // ... until the room lets members invite.
    accepted(&v2.post(&alice, invites(InvitePolicy::Members)).1);
    accepted(&v2.post(&bob, invite(&puppet)).1);
    accepted(&v2.post(&alice, invites(InvitePolicy::RoomSettings)).1);
    rejected(
        &v2.post(&bob, invite(&user(2, "another"))).1,
        Rejection::Forbidden {
            needs: Permissions::ROOM_SETTINGS,
        },
    );
    // A public room needs no invitation, so members may invite to it.
    let mut public = create_room_of_version(1, "alice", Visibility::Public, false, 2);
    accepted(&public.post(&bob, EventKind::Join).1);
    accepted(&public.post(&bob, invite(&puppet)).1);
    // The setting is part of the state both replicas fold.
    let mut late = v2.join_replica(2);
    late.sync_from(&v2);
    assert_eq!(late.engine.digest(), v2.engine.digest());
    assert_eq!(
        late.engine.state().rules.invites,
        InvitePolicy::RoomSettings
    );
}

#[test]
fn a_room_of_an_unknown_rules_version_is_refused() {
    let k = key(1);
    for version in [0, confab_wire::event::ROOM_VERSION + 1] {
        let mut create = CreateRoom::named("general", Visibility::Public, false);
        create.version = version;
        let header = EventHeader::create(user(1, "alice"), create, T0);
        assert!(
            k.sign_event(header, &Content::Empty).is_err(),
            "version {version}"
        );
    }
}

#[test]
fn only_rooms_of_rules_version_3_take_messages_with_an_idempotency_hash() {
    let alice = user(1, "alice");
    let hash = confab_wire::event::IdempotencyHash::of(&alice, "k");
    for version in 1..=confab_wire::event::ROOM_VERSION {
        let mut r = create_room_of_version(1, "alice", Visibility::Public, false, version);
        let header = r
            .engine
            .next_header(alice.clone(), EventKind::Message, T0 + 1);
        let ev = r
            .key
            .sign_event_with(header, &content_for(&EventKind::Message), Some(hash))
            .unwrap();
        let admitted = r.engine.submit(&ev, T0 + 1);
        if version >= confab_wire::event::IDEMPOTENCY_SINCE {
            assert!(
                matches!(admitted, Ok(Admission::Applied { .. })),
                "version {version}: {admitted:?}"
            );
        } else {
            // Refused, not stored: a node of that version cannot decode it.
            assert_eq!(
                admitted,
                Err(Refusal::NotInRulesVersion("idempotency hash in messages")),
                "version {version}"
            );
            assert!(!r.engine.contains(&ev.id()));
        }
    }
}

#[test]
fn a_direct_room_holds_two_people() {
    let mut a = create_room(1, "alice", Visibility::Private, true);
    let alice = user(1, "alice");
    accepted(
        &a.post(
            &alice,
            EventKind::Invite {
                target: user(2, "bob"),
            },
        )
        .1,
    );
    rejected(
        &a.post(
            &alice,
            EventKind::Invite {
                target: user(3, "carol"),
            },
        )
        .1,
        Rejection::DirectRoomFull,
    );
    rejected(
        &a.post(
            &alice,
            EventKind::Settings(vec![Setting::Visibility(Visibility::Public)]),
        )
        .1,
        Rejection::DirectRoomPrivate,
    );
}

#[test]
fn a_muted_user_is_refused_until_the_mute_ends() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let bob = user(1, "bob");
    a.post_at(&bob, EventKind::Join, T0 + 10);
    let cutoff = a.engine.cutoff_for(&bob);
    let until = T0 + 60_000;
    accepted(
        &a.post_at(
            &alice,
            EventKind::Mute {
                target: bob.clone(),
                cutoff,
                until,
            },
            T0 + 20,
        )
        .1,
    );
    rejected(
        &a.post_at(&bob, EventKind::Message, T0 + 30).1,
        Rejection::Muted { until },
    );
    rejected(
        &a.post_at(&bob, EventKind::Message, until - 1).1,
        Rejection::Muted { until },
    );
    // Judged by the event's own timestamp: at the end of the mute it passes.
    accepted(&a.post_at(&bob, EventKind::Message, until).1);
    // Unmute needs the mute to be in force.
    rejected(
        &a.post_at(
            &alice,
            EventKind::Unmute {
                target: bob.clone(),
            },
            until + 1,
        )
        .1,
        Rejection::TargetState(auth::Expected::Muted),
    );
}

#[test]
fn unmute_ends_a_mute_early_and_needs_the_permission() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let bob = user(1, "bob");
    let carol = user(1, "carol");
    a.post(&bob, EventKind::Join);
    a.post(&carol, EventKind::Join);
    let cutoff = a.engine.cutoff_for(&bob);
    accepted(
        &a.post(
            &alice,
            EventKind::Mute {
                target: bob.clone(),
                cutoff,
                until: u64::MAX >> 12,
            },
        )
        .1,
    );
    rejected(
        &a.post(
            &carol,
            EventKind::Unmute {
                target: bob.clone(),
            },
        )
        .1,
        Rejection::Forbidden {
            needs: Permissions::USER_MUTE,
        },
    );
    accepted(
        &a.post(
            &alice,
            EventKind::Unmute {
                target: bob.clone(),
            },
        )
        .1,
    );
    accepted(&a.post(&bob, EventKind::Message).1);
}

#[test]
fn nobody_grants_more_than_they_hold() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let mo = user(1, "mo");
    let bob = user(1, "bob");
    a.post(&mo, EventKind::Join);
    a.post(&bob, EventKind::Join);
    accepted(
        &a.post(
            &alice,
            EventKind::RoleGrant {
                target: mo.clone(),
                role: "moderator".into(),
            },
        )
        .1,
    );
    // A moderator lacks role.manage.
    rejected(
        &a.post(
            &mo,
            EventKind::RoleGrant {
                target: bob.clone(),
                role: "admin".into(),
            },
        )
        .1,
        Rejection::Forbidden {
            needs: Permissions::ROLE_MANAGE,
        },
    );
    // Give mo role.manage but not the rest of admin: still cannot grant admin.
    accepted(
        &a.post(
            &alice,
            EventKind::RoleDefine {
                role: "manager".into(),
                permissions: Permissions::ROLE_MANAGE.union(Permissions::MESSAGE_SEND),
            },
        )
        .1,
    );
    accepted(
        &a.post(
            &alice,
            EventKind::RoleGrant {
                target: mo.clone(),
                role: "manager".into(),
            },
        )
        .1,
    );
    rejected(
        &a.post(
            &mo,
            EventKind::RoleGrant {
                target: bob.clone(),
                role: "admin".into(),
            },
        )
        .1,
        Rejection::ExceedsOwnPermissions,
    );
    // Nor define a role beyond their own permissions.
    rejected(
        &a.post(
            &mo,
            EventKind::RoleDefine {
                role: "super".into(),
                permissions: Permissions::ALL,
            },
        )
        .1,
        Rejection::ExceedsOwnPermissions,
    );
    // But can grant what they hold.
    accepted(
        &a.post(
            &mo,
            EventKind::RoleGrant {
                target: bob.clone(),
                role: "moderator".into(),
            },
        )
        .1,
    );
    // Unknown roles and the owner role are refused.
    rejected(
        &a.post(
            &alice,
            EventKind::RoleGrant {
                target: bob.clone(),
                role: "nope".into(),
            },
        )
        .1,
        Rejection::UnknownRole,
    );
    rejected(
        &a.post(
            &alice,
            EventKind::RoleGrant {
                target: bob.clone(),
                role: "owner".into(),
            },
        )
        .1,
        Rejection::FixedRole,
    );
}

#[test]
fn the_creator_cannot_be_demoted_or_sanctioned() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let eve = user(1, "eve");
    a.post(&eve, EventKind::Join);
    a.post(
        &alice,
        EventKind::RoleGrant {
            target: eve.clone(),
            role: "admin".into(),
        },
    );
    let cutoff = a.engine.cutoff_for(&alice);
    for kind in [
        EventKind::Ban {
            target: alice.clone(),
            cutoff,
        },
        EventKind::Kick {
            target: alice.clone(),
            cutoff,
        },
        EventKind::Mute {
            target: alice.clone(),
            cutoff,
            until: u64::MAX >> 12,
        },
        EventKind::RoleRevoke {
            target: alice.clone(),
            role: "owner".into(),
            cutoff,
        },
    ] {
        rejected(&a.post(&eve, kind).1, Rejection::CreatorProtected);
    }
    accepted(&a.post(&alice, EventKind::Message).1);
}

#[test]
fn a_moderator_cannot_sanction_an_admin() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let mo = user(1, "mo");
    let ad = user(1, "ad");
    a.post(&mo, EventKind::Join);
    a.post(&ad, EventKind::Join);
    a.post(
        &alice,
        EventKind::RoleGrant {
            target: mo.clone(),
            role: "moderator".into(),
        },
    );
    a.post(
        &alice,
        EventKind::RoleGrant {
            target: ad.clone(),
            role: "admin".into(),
        },
    );
    let cutoff = a.engine.cutoff_for(&ad);
    rejected(
        &a.post(
            &mo,
            EventKind::Kick {
                target: ad.clone(),
                cutoff,
            },
        )
        .1,
        Rejection::Outranked,
    );
    rejected(
        &a.post(
            &mo,
            EventKind::Ban {
                target: ad.clone(),
                cutoff,
            },
        )
        .1,
        Rejection::Forbidden {
            needs: Permissions::USER_BAN,
        },
    );
    accepted(
        &a.post(
            &ad,
            EventKind::Kick {
                target: mo.clone(),
                cutoff: a.engine.cutoff_for(&mo),
            },
        )
        .1,
    );
}

#[test]
fn pins_need_the_permission_and_stop_at_three() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let bob = user(1, "bob");
    a.post(&bob, EventKind::Join);
    let msgs: Vec<EventId> = (0..4).map(|_| a.post(&bob, EventKind::Message).0).collect();
    rejected(
        &a.post(&bob, EventKind::Pin { target: msgs[0] }).1,
        Rejection::Forbidden {
            needs: Permissions::MESSAGE_PIN,
        },
    );
    for m in &msgs[..3] {
        accepted(&a.post(&alice, EventKind::Pin { target: *m }).1);
    }
    rejected(
        &a.post(&alice, EventKind::Pin { target: msgs[3] }).1,
        Rejection::TooManyPins,
    );
    rejected(
        &a.post(&alice, EventKind::Pin { target: msgs[0] }).1,
        Rejection::AlreadyPinned,
    );
    accepted(&a.post(&alice, EventKind::Unpin { target: msgs[0] }).1);
    rejected(
        &a.post(&alice, EventKind::Unpin { target: msgs[0] }).1,
        Rejection::NotPinned,
    );
    accepted(&a.post(&alice, EventKind::Pin { target: msgs[3] }).1);
    assert_eq!(a.engine.state().pins, vec![msgs[1], msgs[2], msgs[3]]);
}

#[test]
fn edits_are_the_authors_and_redactions_need_authorship_or_permission() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let bob = user(1, "bob");
    let carol = user(1, "carol");
    a.post(&bob, EventKind::Join);
    a.post(&carol, EventKind::Join);
    let (m, _) = a.post(&bob, EventKind::Message);
    rejected(
        &a.post(&carol, EventKind::Edit { target: m }).1,
        Rejection::NotAuthor,
    );
    accepted(&a.post(&bob, EventKind::Edit { target: m }).1);
    rejected(
        &a.post(&carol, EventKind::Redact { target: m }).1,
        Rejection::Forbidden {
            needs: Permissions::MESSAGE_DELETE,
        },
    );
    accepted(&a.post(&alice, EventKind::Redact { target: m }).1);
    rejected(
        &a.post(&bob, EventKind::Redact { target: m }).1,
        Rejection::Redacted,
    );
    rejected(
        &a.post(&bob, EventKind::Edit { target: m }).1,
        Rejection::Redacted,
    );
    rejected(
        &a.post(
            &carol,
            EventKind::React {
                target: m,
                emoji: "👍".into(),
            },
        )
        .1,
        Rejection::Redacted,
    );
    // An author may delete their own message.
    let (m2, _) = a.post(&carol, EventKind::Message);
    accepted(&a.post(&carol, EventKind::Redact { target: m2 }).1);
    // Targets must be accepted messages.
    let (join, _) = a.post(&user(1, "dan"), EventKind::Join);
    rejected(
        &a.post(&alice, EventKind::Pin { target: join }).1,
        Rejection::BadTarget,
    );
}

#[test]
fn one_reaction_per_user_per_emoji() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let (m, _) = a.post(&alice, EventKind::Message);
    let thumbs = || EventKind::React {
        target: m,
        emoji: "👍".into(),
    };
    accepted(&a.post(&alice, thumbs()).1);
    rejected(&a.post(&alice, thumbs()).1, Rejection::AlreadyReacted);
    accepted(
        &a.post(
            &alice,
            EventKind::React {
                target: m,
                emoji: "🎉".into(),
            },
        )
        .1,
    );
    accepted(
        &a.post(
            &alice,
            EventKind::Unreact {
                target: m,
                emoji: "👍".into(),
            },
        )
        .1,
    );
    rejected(
        &a.post(
            &alice,
            EventKind::Unreact {
                target: m,
                emoji: "👍".into(),
            },
        )
        .1,
        Rejection::NotReacted,
    );
    accepted(&a.post(&alice, thumbs()).1);
}

#[test]
fn an_archived_room_is_read_only() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let bob = user(1, "bob");
    a.post(&bob, EventKind::Join);
    rejected(
        &a.post(&bob, EventKind::Archive).1,
        Rejection::Forbidden {
            needs: Permissions::ROOM_SETTINGS,
        },
    );
    accepted(&a.post(&alice, EventKind::Archive).1);
    rejected(&a.post(&alice, EventKind::Message).1, Rejection::Archived);
    accepted(&a.post(&bob, EventKind::Leave).1);
}

#[test]
fn bans_keep_people_out_until_unbanned() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let bob = user(1, "bob");
    a.post(&bob, EventKind::Join);
    let cutoff = a.engine.cutoff_for(&bob);
    accepted(
        &a.post(
            &alice,
            EventKind::Ban {
                target: bob.clone(),
                cutoff,
            },
        )
        .1,
    );
    rejected(&a.post(&bob, EventKind::Join).1, Rejection::Banned);
    rejected(&a.post(&bob, EventKind::Message).1, Rejection::Banned);
    accepted(
        &a.post(
            &alice,
            EventKind::Unban {
                target: bob.clone(),
            },
        )
        .1,
    );
    accepted(&a.post(&bob, EventKind::Join).1);
    accepted(&a.post(&bob, EventKind::Message).1);
}

#[test]
fn a_kicked_member_may_rejoin_a_public_room() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let bob = user(1, "bob");
    a.post(&bob, EventKind::Join);
    let cutoff = a.engine.cutoff_for(&bob);
    accepted(
        &a.post(
            &alice,
            EventKind::Kick {
                target: bob.clone(),
                cutoff,
            },
        )
        .1,
    );
    rejected(&a.post(&bob, EventKind::Message).1, Rejection::NotMember);
    accepted(&a.post(&bob, EventKind::Join).1);
    accepted(&a.post(&bob, EventKind::Message).1);
}

#[test]
fn structural_errors_are_refused() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let (m, _) = a.post(&alice, EventKind::Message);
    // Unknown parent.
    let mut h = a.engine.next_header(alice.clone(), EventKind::Message, T0);
    h.prev = vec![EventId([1; 32])];
    let ev = a
        .key
        .sign_event(h, &content_for(&EventKind::Message))
        .unwrap();
    assert_eq!(
        a.engine.submit(&ev, T0),
        Err(Refusal::MissingParents(vec![EventId([1; 32])]))
    );
    // Wrong depth.
    let mut h = a.engine.next_header(alice.clone(), EventKind::Message, T0);
    h.depth += 1;
    let ev = a
        .key
        .sign_event(h, &content_for(&EventKind::Message))
        .unwrap();
    assert!(matches!(
        a.engine.submit(&ev, T0),
        Err(Refusal::BadDepth { .. })
    ));
    // Skipping a sequence number.
    let mut h = a.engine.next_header(alice.clone(), EventKind::Message, T0);
    h.origin_seq += 1;
    let ev = a
        .key
        .sign_event(h, &content_for(&EventKind::Message))
        .unwrap();
    assert!(matches!(
        a.engine.submit(&ev, T0),
        Err(Refusal::BrokenChain(_))
    ));
    // Another room's event.
    let b = create_room(2, "zed", Visibility::Public, false);
    assert!(matches!(
        a.engine.submit(&b.log[0], T0),
        Err(Refusal::WrongRoom(_))
    ));
    assert!(a.engine.contains(&m));
}

#[test]
fn events_from_the_future_are_held_until_their_time() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let ts = T0 + 3_600_000;
    let ev = a.sign(&alice, EventKind::Message, ts);
    let now = T0;
    assert_eq!(
        a.engine.submit(&ev, now).unwrap(),
        Admission::Held {
            until: ts - MAX_FUTURE_SKEW_MS
        }
    );
    assert!(!a.engine.contains(&ev.id()));
    assert!(a.engine.release_due(now).is_empty());
    let due = a.engine.release_due(ts - MAX_FUTURE_SKEW_MS);
    assert_eq!(due.len(), 1);
    assert!(matches!(
        a.engine.submit(&due[0], ts - MAX_FUTURE_SKEW_MS).unwrap(),
        Admission::Applied {
            verdict: Verdict::Accepted,
            ..
        }
    ));
}

#[test]
fn events_held_for_the_future_are_bounded() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let now = T0;
    let far = a.sign(&alice, EventKind::Message, now + HOLD_HORIZON_MS + 1);
    assert_eq!(a.engine.submit(&far, now), Err(Refusal::TooFarAhead));
    // Siblings dated ahead (one origin sequence, different times) fill the
    // room's allowance, then are refused.
    let body = "x".repeat(confab_wire::event::MAX_BODY_LEN);
    let mut held = 0usize;
    let mut bytes = 0usize;
    for i in 0.. {
        let header = a
            .engine
            .next_header(alice.clone(), EventKind::Message, now + 60_000 + i);
        let content = Content::Message(MessageContent {
            body: body.clone(),
            ..Default::default()
        });
        let ev = a.key.sign_event(header, &content).unwrap();
        match a.engine.submit(&ev, now) {
            Ok(Admission::Held { .. }) => {
                held += 1;
                bytes += ev.signed().wire_len();
            }
            Err(Refusal::HeldFull) => break,
            other => panic!("unexpected {other:?}"),
        }
        assert!(bytes <= HELD_BYTES_MAX);
    }
    assert_eq!(a.engine.held(), held);
    assert!(bytes + 17 * 1024 > HELD_BYTES_MAX, "refused early: {bytes}");
    // Released when due, the allowance is free again.
    let due = a.engine.release_due(now + 60_000 + held as u64);
    assert_eq!(due.len(), held);
    assert_eq!(a.engine.held(), 0);
    let again = a
        .engine
        .next_header(alice.clone(), EventKind::Message, now + 60_000);
    let ev = a
        .key
        .sign_event(again, &content_for(&EventKind::Message))
        .unwrap();
    assert!(matches!(
        a.engine.submit(&ev, now),
        Ok(Admission::Held { .. })
    ));
}

/// Node 2's user is banned on node 1; node 2, knowing it, writes new events
/// that point at parents from before the ban so they sort before it. Every
/// one is rejected, on both nodes.
#[test]
fn a_banned_users_node_cannot_escape_by_backdating() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let mut b = a.join_replica(2);
    let bob = user(2, "bob");
    b.post(&bob, EventKind::Join);
    a.post(
        &alice,
        EventKind::RoleGrant {
            target: bob.clone(),
            role: "admin".into(),
        },
    );
    // Bob is an admin on both sides; remember the heads before the ban.
    b.sync_from(&a);
    a.sync_from(&b);
    let old_heads: Vec<EventId> = a.engine.heads().iter().copied().collect();
    // Alice talks a while, then bans bob: the ban is deep in the DAG.
    for _ in 0..5 {
        a.post(&alice, EventKind::Message);
    }
    let cutoff = a.engine.cutoff_for(&bob);
    let (ban, v) = a.post(
        &alice,
        EventKind::Ban {
            target: bob.clone(),
            cutoff,
        },
    );
    accepted(&v);
    b.sync_from(&a);
    assert_eq!(b.engine.state().membership(&bob), Membership::Banned);
    // Bob's node, knowing of the ban, forges a chain of "old" events that
    // grows from the heads of before the ban, so every one sorts before it.
    let mut forged: Vec<VerifiedEvent> = Vec::new();
    for kind in [
        EventKind::Message,
        EventKind::RoleRevoke {
            target: alice.clone(),
            role: "admin".into(),
            cutoff: 99,
        },
        EventKind::Ban {
            target: alice.clone(),
            cutoff: 99,
        },
    ] {
        let mut h = b.engine.next_header(bob.clone(), kind.clone(), T0);
        h.prev = match forged.last() {
            Some(prev) => vec![prev.id()],
            None => old_heads.clone(),
        };
        h.depth = 1 + h
            .prev
            .iter()
            .map(|id| b.engine.meta(id).unwrap().depth)
            .max()
            .unwrap();
        let ev = b.key.sign_event(h, &content_for(&kind)).unwrap();
        assert!(
            ev.header().depth < b.engine.meta(&ban).unwrap().depth,
            "sorts before the ban"
        );
        b.deliver(&ev, u64::MAX / 2);
        forged.push(ev);
    }
    a.sync_from(&b);
    for ev in &forged {
        assert_eq!(a.verdict(&ev.id()), Verdict::Rejected(Rejection::Banned));
        assert_eq!(b.verdict(&ev.id()), Verdict::Rejected(Rejection::Banned));
    }
    assert_eq!(a.verdict(&ban), Verdict::Accepted);
    assert_eq!(a.engine.digest(), b.engine.digest());
    assert_eq!(a.engine.state().membership(&bob), Membership::Banned);
}

/// Two admins on two nodes demote each other at the same time. Whatever the
/// delivery order, every node reaches one outcome, and exactly one of the
/// two revocations stands.
#[test]
fn two_admins_demoting_each_other_reach_one_outcome() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let (ann, ben) = (user(1, "ann"), user(2, "ben"));
    a.post(&ann, EventKind::Join);
    let mut b = a.join_replica(2);
    b.post(&ben, EventKind::Join);
    a.sync_from(&b);
    a.post(
        &alice,
        EventKind::RoleGrant {
            target: ann.clone(),
            role: "admin".into(),
        },
    );
    a.post(
        &alice,
        EventKind::RoleGrant {
            target: ben.clone(),
            role: "admin".into(),
        },
    );
    b.sync_from(&a);
    // Concurrently:
    let c1 = a.engine.cutoff_for(&ben);
    let (r1, v1) = a.post(
        &ann,
        EventKind::RoleRevoke {
            target: ben.clone(),
            role: "admin".into(),
            cutoff: c1,
        },
    );
    let c2 = b.engine.cutoff_for(&ann);
    let (r2, v2) = b.post(
        &ben,
        EventKind::RoleRevoke {
            target: ann.clone(),
            role: "admin".into(),
            cutoff: c2,
        },
    );
    accepted(&v1);
    accepted(&v2);
    a.sync_from(&b);
    b.sync_from(&a);
    assert_eq!(a.engine.digest(), b.engine.digest());
    let stands: Vec<bool> = [r1, r2]
        .iter()
        .map(|r| a.verdict(r).is_accepted())
        .collect();
    assert_eq!(stands.iter().filter(|s| **s).count(), 1, "{stands:?}");
    // The later-sorting revocation stands.
    let later = if a.engine.meta(&r1).unwrap().position() > a.engine.meta(&r2).unwrap().position() {
        r1
    } else {
        r2
    };
    assert!(a.verdict(&later).is_accepted());
}

/// An origin that signs two events with one sequence number: both are
/// rejected wherever both are known, whatever the order.
#[test]
fn an_equivocating_origin_is_rejected_everywhere() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let mut b = a.join_replica(2);
    let bob = user(2, "bob");
    b.post(&bob, EventKind::Join);
    a.sync_from(&b);
    let fork1 = b.sign(&bob, EventKind::Message, T0 + 5);
    let mut fork2 = b.sign(&bob, EventKind::Message, T0 + 6);
    assert_eq!(fork1.header().origin_seq, fork2.header().origin_seq);
    let mut a2 = a.join_replica(3);
    a.deliver(&fork1, u64::MAX / 2);
    assert!(a.verdict(&fork1.id()).is_accepted());
    a.deliver(&fork2, u64::MAX / 2);
    a2.deliver(&fork2, u64::MAX / 2);
    a2.deliver(&fork1, u64::MAX / 2);
    for r in [&a, &a2] {
        for f in [&fork1, &fork2] {
            assert!(matches!(
                r.verdict(&f.id()),
                Verdict::Rejected(Rejection::Equivocation { .. })
            ));
        }
        assert!(r.engine.forks().contains_key(bob.node()));
    }
    assert_eq!(a.engine.digest(), a2.engine.digest());
    fork2 = fork1;
    let _ = fork2;
}

/// A late event that sorts before the tip makes the engine re-fold, and an
/// earlier acceptance flips.
#[test]
fn a_late_event_reorders_history_and_flips_an_acceptance() {
    let mut a = create_room(1, "alice", Visibility::Public, false);
    let alice = user(1, "alice");
    let mut b = a.join_replica(2);
    let bob = user(2, "bob");
    b.post(&bob, EventKind::Join);
    a.sync_from(&b);
    b.sync_from(&a);
    // Alice mutes bob (at a low depth); bob, not yet knowing, posts a long
    // chain whose messages are past the mute's cutoff.
    let cutoff = a.engine.cutoff_for(&bob);
    let (mute, _) = a.post(
        &alice,
        EventKind::Mute {
            target: bob.clone(),
            cutoff,
            until: u64::MAX >> 12,
        },
    );
    let (m1, v) = b.post(&bob, EventKind::Message);
    accepted(&v);
    let before = b.engine.digest();
    b.sync_from(&a);
    // The mute sorts before or after m1; either way m1 is now rejected.
    assert_eq!(
        b.verdict(&m1),
        Verdict::Rejected(Rejection::Muted {
            until: u64::MAX >> 12
        })
    );
    assert_ne!(before, b.engine.digest());
    assert!(b.verdict(&mute).is_accepted());
    a.sync_from(&b);
    assert_eq!(a.engine.digest(), b.engine.digest());
}

/// A tiny seeded generator (no dependency, reproducible from its seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Random rooms: several origins with several users each post concurrently
/// (messages, edits, redactions, reactions, role changes, mutes, bans,
/// pins), syncing now and then. Returns every event in a causal order.
pub(crate) fn random_room(seed: u64, origins: u8, steps: usize) -> Vec<VerifiedEvent> {
    let mut rng = Rng(seed | 1);
    let owner = user(1, "owner");
    let mut replicas = vec![create_room(1, "owner", Visibility::Public, false)];
    for n in 2..=origins {
        let r = replicas[0].join_replica(n);
        replicas.push(r);
    }
    let users: Vec<Vec<UserId>> = (1..=origins)
        .map(|n| (0..2).map(|i| user(n, &format!("u{i}"))).collect())
        .collect();
    for step in 0..steps {
        let r = rng.below(replicas.len());
        let me = users[r][rng.below(2)].clone();
        let me = if r == 0 && rng.chance(30) {
            owner.clone()
        } else {
            me
        };
        let all_users: Vec<&UserId> = users.iter().flatten().collect();
        let other = all_users[rng.below(all_users.len())].clone();
        let eng = &replicas[r].engine;
        let messages: Vec<EventId> = eng
            .history()
            .ordered_ids()
            .filter(|id| matches!(eng.meta(id).unwrap().kind, EventKind::Message))
            .collect();
        let target = (!messages.is_empty()).then(|| messages[rng.below(messages.len())]);
        let ts = T0 + step as u64 * 1000;
        let cutoff = eng.cutoff_for(&other);
        let kind = match (rng.below(16), target) {
            (0, _) => EventKind::Join,
            (1, _) if rng.chance(30) => EventKind::Leave,
            (2, _) => EventKind::RoleGrant {
                target: other.clone(),
                role: ["admin", "moderator"][rng.below(2)].into(),
            },
            (3, _) => EventKind::RoleRevoke {
                target: other.clone(),
                role: ["admin", "moderator"][rng.below(2)].into(),
                cutoff,
            },
            (4, _) => EventKind::Mute {
                target: other.clone(),
                cutoff,
                until: ts + 1000 * rng.below(20) as u64,
            },
            (5, _) if rng.chance(40) => EventKind::Ban {
                target: other.clone(),
                cutoff,
            },
            (6, _) => EventKind::Unban {
                target: other.clone(),
            },
            (7, _) => EventKind::Kick {
                target: other.clone(),
                cutoff,
            },
            (8, Some(t)) => EventKind::Edit { target: t },
            (9, Some(t)) => EventKind::Redact { target: t },
            (10, Some(t)) => EventKind::React {
                target: t,
                emoji: ["👍", "🎉"][rng.below(2)].into(),
            },
            (11, Some(t)) => EventKind::Unreact {
                target: t,
                emoji: "👍".into(),
            },
            (12, Some(t)) => EventKind::Pin { target: t },
            (13, _) => EventKind::Unmute {
                target: other.clone(),
            },
            _ => EventKind::Message,
        };
        replicas[r].post_at(&me, kind, ts);
        // Sync now and then, partially.
        if rng.chance(35) {
            let from = rng.below(replicas.len());
            let to = rng.below(replicas.len());
            if from != to {
                let src = replicas[from].log.clone();
                let take = rng.below(src.len() + 1);
                let dst = &mut replicas[to];
                for ev in &src[..take] {
                    if !dst.engine.contains(&ev.id()) {
                        dst.deliver(ev, u64::MAX / 2);
                    }
                }
            }
        }
    }
    // Everything, in a causal order.
    let mut all: Vec<VerifiedEvent> = Vec::new();
    let mut seen = HashSet::new();
    for r in &replicas {
        for ev in &r.log {
            if seen.insert(ev.id()) {
                all.push(ev.clone());
            }
        }
    }
    all.sort_by_key(|e| (e.header().depth, e.id()));
    all
}

/// Delivers `events` to a fresh engine in a random causal order.
pub(crate) fn deliver_shuffled(events: &[VerifiedEvent], seed: u64) -> RoomEngine {
    let mut rng = Rng(seed | 1);
    let mut engine = RoomEngine::new(&events[0]).unwrap();
    let mut pending: Vec<&VerifiedEvent> = events[1..].iter().collect();
    while !pending.is_empty() {
        let ready: Vec<usize> = (0..pending.len())
            .filter(|i| {
                let h = pending[*i].header();
                h.prev
                    .iter()
                    .chain(h.origin_prev.iter())
                    .all(|p| engine.contains(p))
            })
            .collect();
        let pick = ready[rng.below(ready.len())];
        let ev = pending.swap_remove(pick);
        engine.submit(ev, u64::MAX / 2).unwrap();
    }
    engine
}

#[test]
fn random_rooms_converge_whatever_the_delivery_order() {
    for seed in 1..=40u64 {
        let events = random_room(seed, 3, 60);
        let reference = deliver_shuffled(&events, seed * 7919);
        let mut digests = BTreeMap::new();
        for order in 0..4u64 {
            let mut e = deliver_shuffled(&events, seed * 104_729 + order);
            let d = e.digest();
            digests.insert(order, d);
            assert_eq!(
                d,
                reference.digest(),
                "seed {seed} order {order}: replicas diverged (replay with this seed)"
            );
            // The incremental result equals a fold from scratch.
            let changed = e.refold_all();
            assert!(
                changed.is_empty(),
                "seed {seed}: refold changed {changed:?}"
            );
            assert_eq!(e.digest(), d);
        }
    }
}

/// Two different first events of one origin are a fork too, not a refusal:
/// refusing the second would leave nodes holding different sets for good.
#[test]
fn two_first_events_of_an_origin_are_an_equivocation() {
    let a = create_room(1, "alice", Visibility::Public, false);
    let b = a.join_replica(2);
    let bob = user(2, "bob");
    let j1 = b.sign(&bob, EventKind::Join, T0 + 1);
    let j2 = b.sign(&bob, EventKind::Join, T0 + 2);
    assert_eq!(j1.header().origin_seq, 1);
    assert_eq!(j2.header().origin_seq, 1);
    let mut x = a.join_replica(3);
    let mut y = a.join_replica(3);
    x.deliver(&j1, u64::MAX / 2);
    x.deliver(&j2, u64::MAX / 2);
    y.deliver(&j2, u64::MAX / 2);
    y.deliver(&j1, u64::MAX / 2);
    for r in [&x, &y] {
        for j in [&j1, &j2] {
            assert_eq!(
                r.verdict(&j.id()),
                Verdict::Rejected(Rejection::Equivocation { seq: 1 })
            );
        }
    }
    assert_eq!(x.engine.digest(), y.engine.digest());
}
