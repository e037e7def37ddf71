//! A federated node on loopback for integration tests, and a hang-guarded
//! wait for a condition.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use confab_node::federation::driver::Federation;
use confab_node::federation::replica::NodeRooms;
use confab_node::local::now_ms;
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
        let rooms = Arc::new(Mutex::new(NodeRooms::open(
            Store::temporary()?,
            key.node_id(),
        )?));
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
            .post(&self.key, author, room, kind, &content, now_ms())?;
        self.fed.publish(*room, ev.signed());
        Ok(ev.id())
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
