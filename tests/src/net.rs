//! A federated node on loopback for integration tests, and a hang-guarded
//! wait for a condition.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use confab_node::federation::driver::Federation;
use confab_node::local::now_ms;
use confab_node::rooms::NodeRooms;
use confab_node::store::{Room, Store};
use confab_node::tls::PinSet;
use confab_wire::event::Content;
use confab_wire::{EventId, EventKind, NodeKey, RoomId, UserId};

/// A node with a temporary store, federating on 127.0.0.1.
#[derive(Debug)]
pub struct TestNode {
    /// Its key.
    pub key: NodeKey,
    /// Its rooms (shared with its federation).
    pub rooms: Arc<Mutex<NodeRooms>>,
    /// Its federation endpoint.
    pub fed: Federation,
}

impl TestNode {
    /// Starts a node with `key` that accepts the `pins`.
    pub fn start(key: &NodeKey, pins: PinSet) -> anyhow::Result<TestNode> {
        Self::start_on(key, pins, Store::temporary()?)
    }

    /// Starts a node with `key` on `store` (a restart, or a rebuild on an
    /// empty store marked recovering).
    pub fn start_on(key: &NodeKey, pins: PinSet, store: Store) -> anyhow::Result<TestNode> {
        let rooms = Arc::new(Mutex::new(NodeRooms::open(store, key.node_id())?));
        let name = format!("n{}", key.node_id().short());
        let fed = Federation::start(
            key.clone(),
            &name,
            "127.0.0.1:0".parse()?,
            pins,
            rooms.clone(),
        )?;
        Ok(TestNode {
            key: key.clone(),
            rooms,
            fed,
        })
    }

    /// The rooms, locked.
    pub fn rooms(&self) -> MutexGuard<'_, NodeRooms> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Posts as a local user and publishes the event to the peers.
    pub fn post(
        &self,
        author: &UserId,
        room: &RoomId,
        kind: EventKind,
        content: Content,
    ) -> anyhow::Result<EventId> {
        let ev = self
            .rooms()
            .post(&self.key, author, room, kind, &content, now_ms(), None)?
            .into_event()?;
        self.rooms().store().wait_durable()?;
        self.fed.publish(*room, ev.signed(), None);
        Ok(ev.id())
    }

    /// Plays a node that signs whatever its users ask, judged or not (an
    /// older or a modified node): the event is signed without asking the
    /// rules and taken through the ingest path, as a peer's event would
    /// be, then published. Production posts only through `post`.
    pub fn post_unjudged(
        &self,
        author: &UserId,
        room: &RoomId,
        kind: EventKind,
        content: Content,
    ) -> anyhow::Result<EventId> {
        use confab_node::federation::sync::Rooms;
        let header = {
            let rooms = self.rooms();
            let r = rooms
                .room(room)
                .ok_or_else(|| anyhow::anyhow!("room not held"))?;
            r.engine().next_header(author.clone(), kind, now_ms())
        };
        let ev = self.key.sign_event(header, &content)?;
        let id = ev.id();
        let signed = ev.signed().clone();
        let own = self.key.node_id();
        let got = self.rooms().receive(now_ms(), &own, room, vec![Ok(ev)]);
        self.rooms().store().wait_durable()?;
        anyhow::ensure!(
            got.accepted.iter().any(|e| e.id() == id),
            "the event was not stored"
        );
        self.fed.publish(*room, &signed, None);
        Ok(id)
    }

    /// The room's digest and event count, if the room is held.
    pub fn digest(&self, room: &RoomId) -> Option<([u8; 32], u64)> {
        self.rooms()
            .room(room)
            .map(|r| (r.engine().digest(), r.engine().len()))
    }

    /// True if the room is held and `f` holds for it.
    pub fn has(&self, room: &RoomId, f: impl Fn(&Room) -> bool) -> bool {
        self.rooms().room(room).is_some_and(f)
    }
}

/// Waits until `f` holds, panicking after a minute: a guard against hangs,
/// not an assertion about speed.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `n` nodes (test keys `first..first+n`) that pin and dial each
/// other on loopback.
pub fn mesh(first: u8, n: u8) -> anyhow::Result<Vec<TestNode>> {
    let keys: Vec<NodeKey> = (first..first + n).map(crate::test_key).collect();
    let ids: Vec<_> = keys.iter().map(NodeKey::node_id).collect();
    let nodes = keys
        .iter()
        .map(|key| {
            let pins: PinSet = ids
                .iter()
                .filter(|p| **p != key.node_id())
                .copied()
                .collect();
            TestNode::start(key, pins)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for a in &nodes {
        for b in &nodes {
            a.fed.connect(b.key.node_id(), b.fed.local_addr()?);
        }
    }
    Ok(nodes)
}

/// A private room created on `nodes[0]` by `@owner` (whose node key is
/// test key `seed`), with `@user` of every other node invited and joined.
/// Returns the room and its users (the owner first).
pub async fn shared_room(nodes: &[TestNode], seed: u8) -> anyhow::Result<(RoomId, Vec<UserId>)> {
    use confab_wire::event::{ReasonContent, Visibility};
    let owner = UserId::new(nodes[0].key.node_id(), "owner")?;
    let create = crate::create_room_event(seed, "owner", "shared", Visibility::Private, now_ms())?;
    anyhow::ensure!(
        create.header().author == owner,
        "seed is not nodes[0]'s key"
    );
    let room = create.room();
    nodes[0].rooms().create_room(&create)?;
    let mut users = vec![owner.clone()];
    for n in &nodes[1..] {
        let u = UserId::new(n.key.node_id(), "user")?;
        nodes[0].post(
            &owner,
            &room,
            EventKind::Invite { target: u.clone() },
            Content::Reason(ReasonContent::default()),
        )?;
        users.push(u);
    }
    for (n, u) in nodes.iter().zip(&users).skip(1) {
        eventually("the invite arrives", || {
            n.has(&room, |r| {
                r.engine().state().membership(u) == confab_node::engine::Membership::Invited
            }) && n.rooms().may_post(&room)
        })
        .await;
        n.post(u, &room, EventKind::Join, Content::Empty)?;
    }
    eventually("everyone has joined everywhere", || {
        nodes.iter().all(|n| {
            n.has(&room, |r| {
                users.iter().all(|u| r.engine().state().is_joined(u))
            })
        })
    })
    .await;
    Ok((room, users))
}

/// Waits until every node holds the room with one digest.
pub async fn converged(nodes: &[TestNode], room: &RoomId) {
    eventually("every node holds the same room digest", || {
        let d: Vec<_> = nodes.iter().map(|n| n.digest(room)).collect();
        d.iter().all(|x| x.is_some() && *x == d[0])
    })
    .await;
}
