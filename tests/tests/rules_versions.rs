//! Rules versions over real federation: two nodes judge a room of each
//! version alike, so a rules change never splits a federation.
#![allow(clippy::unwrap_used)]

use confab_node::engine::{Membership, Rejection, Verdict};
use confab_tests::net::{TestNode, converged, eventually, mesh};
use confab_tests::{create_room_of_version, text};
use confab_wire::event::{Content, InvitePolicy, ReasonContent, Setting, Visibility};
use confab_wire::{EventId, EventKind, Permissions, RoomId, UserId};

/// A private room of rules `version` on `nodes[0]`, with `@bee` of
/// `nodes[1]` invited and joined; then `@bee` invites a sock puppet of its
/// own node, who joins and posts. Returns the room and the puppet's events.
async fn puppet_in(nodes: &[TestNode], seed: u8, version: u16) -> (RoomId, UserId, [EventId; 3]) {
    let owner = UserId::new(nodes[0].key.node_id(), "owner").unwrap();
    let bee = UserId::new(nodes[1].key.node_id(), "bee").unwrap();
    let puppet = UserId::new(nodes[1].key.node_id(), "puppet").unwrap();
    let now = confab_node::local::now_ms();
    let create =
        create_room_of_version(seed, "owner", "ops", Visibility::Private, now, version).unwrap();
    let room = create.room();
    nodes[0].rooms().create_room(&create).unwrap();
    let reason = || Content::Reason(ReasonContent::default());
    nodes[0]
        .post(
            &owner,
            &room,
            EventKind::Invite {
                target: bee.clone(),
            },
            reason(),
        )
        .unwrap();
    eventually("the invite reaches bee's node", || {
        nodes[1].has(&room, |r| {
            r.engine().state().membership(&bee) == Membership::Invited
        }) && nodes[1].rooms().may_post(&room)
    })
    .await;
    nodes[1]
        .post(&bee, &room, EventKind::Join, Content::Empty)
        .unwrap();
    // Bee's node signs whatever bee asks (an honest node would not sign
    // what its rules reject); both nodes judge it.
    let invite = nodes[1]
        .post_unjudged(
            &bee,
            &room,
            EventKind::Invite {
                target: puppet.clone(),
            },
            reason(),
        )
        .unwrap();
    let join = nodes[1]
        .post_unjudged(&puppet, &room, EventKind::Join, Content::Empty)
        .unwrap();
    let message = nodes[1]
        .post_unjudged(
            &puppet,
            &room,
            EventKind::Message,
            text("trust me, I am from IT"),
        )
        .unwrap();
    converged(nodes, &room).await;
    (room, puppet, [invite, join, message])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_judge_invitations_by_each_rooms_rules_version() {
    let nodes = mesh(41, 2).unwrap();
    // Version 1, today's rooms: a plain member's invitation stands.
    let (v1, puppet, events) = puppet_in(&nodes, 41, 1).await;
    for n in &nodes {
        assert!(n.has(&v1, |r| {
            events
                .iter()
                .all(|e| r.engine().verdict(e) == Some(Verdict::Accepted))
                && r.engine().state().is_joined(&puppet)
        }));
    }
    // Version 2: it needs `room.settings`, so the puppet stays out.
    let (v2, puppet, [invite, join, message]) = puppet_in(&nodes, 41, 2).await;
    for n in &nodes {
        assert!(n.has(&v2, |r| {
            let e = r.engine();
            e.verdict(&invite)
                == Some(Verdict::Rejected(Rejection::Forbidden {
                    needs: Permissions::ROOM_SETTINGS,
                }))
                && e.verdict(&join) == Some(Verdict::Rejected(Rejection::NotInvited))
                && e.verdict(&message) == Some(Verdict::Rejected(Rejection::NotMember))
                && e.state().membership(&puppet) == Membership::Left
                && e.state().rules.version == 2
        }));
    }
    // The owner lets members invite; both nodes then accept bee's invitation.
    let owner = UserId::new(nodes[0].key.node_id(), "owner").unwrap();
    let bee = UserId::new(nodes[1].key.node_id(), "bee").unwrap();
    nodes[0]
        .post(
            &owner,
            &v2,
            EventKind::Settings(vec![Setting::Invites(InvitePolicy::Members)]),
            Content::Empty,
        )
        .unwrap();
    eventually("bee's node sees the setting", || {
        nodes[1].has(&v2, |r| {
            r.engine().state().rules.invites == InvitePolicy::Members
        })
    })
    .await;
    let again = nodes[1]
        .post(
            &bee,
            &v2,
            EventKind::Invite {
                target: puppet.clone(),
            },
            Content::Reason(ReasonContent::default()),
        )
        .unwrap();
    converged(&nodes, &v2).await;
    for n in &nodes {
        assert!(n.has(&v2, |r| {
            r.engine().verdict(&again) == Some(Verdict::Accepted)
                && r.engine().state().membership(&puppet) == Membership::Invited
        }));
    }
    for n in &nodes {
        n.fed.close();
    }
}
