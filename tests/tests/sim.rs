//! Deterministic simulation of federation: N nodes with the real engine,
//! store and replication state machine, joined by a simulated network with
//! a virtual clock and seeded loss, delay, duplication, reordering and
//! partitions; nodes restart (in-memory state rebuilt from their store),
//! lose their store and rebuild from peers, and one node equivocates
//! (signs two events with one origin sequence and sends them to different
//! peers). A fault phase, then a heal phase until quiet: every node must
//! hold the identical room digest, and no honest node may have forked its
//! own chain (a rebuilt node must not post before catching up with it).
//!
//! A failing seed is printed and replays exactly:
//! `CONFAB_SIM_SEED=<seed> cargo test -p confab-tests --test sim`.
//! Seeds run by default: 500 (`CONFAB_SIM_SEEDS`); a longer soak:
//! `CONFAB_SIM_SEEDS=20000 cargo test --release -p confab-tests --test sim`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use confab_node::federation::sync::{self, PeerSync, Rooms};
use confab_node::rooms::NodeRooms;
use confab_node::rooms::Posted;
use confab_node::store::Store;
use confab_tests::{create_room_event, test_key, text};
use confab_wire::event::{Content, ReasonContent, Visibility};
use confab_wire::fed::EventBatch;
use confab_wire::{EventKind, FedMessage, NodeId, NodeKey, RoomId, UserId};

const T0: u64 = 1_700_000_000_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct SimNode {
    key: NodeKey,
    id: NodeId,
    rooms: NodeRooms,
    peers: BTreeMap<NodeId, PeerSync>,
    users: Vec<UserId>,
    /// Lost its store at some point (rebuilt from peers).
    wiped: bool,
}

/// Drops every connection of node `i` (both ends) and opens new ones, as
/// after a restart: queued frames to and from it are lost.
fn reconnect(
    nodes: &mut [SimNode],
    ids: &[NodeId],
    i: usize,
    now: u64,
    seed: u64,
    queue: &mut BTreeMap<(u64, u64), (usize, usize, FedMessage)>,
) {
    queue.retain(|_, (from, to, _)| *from != i && *to != i);
    for j in 0..nodes.len() {
        if j == i {
            continue;
        }
        let salt = seed ^ now ^ (i * 131 + j) as u64;
        let hello_i = sync::hello(ids[i], &format!("n{i}"));
        nodes[i]
            .peers
            .insert(ids[j], PeerSync::new(hello_i, ids[j], now, salt));
        let hello_j = sync::hello(ids[j], &format!("n{j}"));
        nodes[j]
            .peers
            .insert(ids[i], PeerSync::new(hello_j, ids[i], now, salt ^ 1));
    }
}

struct Faults {
    loss: u64,
    dup: u64,
    delay_max: u64,
    /// Links cut (unordered pairs of node indexes).
    cut: Vec<(usize, usize)>,
}

fn cut(f: &Faults, a: usize, b: usize) -> bool {
    f.cut
        .iter()
        .any(|&(x, y)| (x, y) == (a, b) || (x, y) == (b, a))
}

fn run(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let n = 3 + rng.below(5) as usize; // 3 to 7 nodes
    let mut nodes: Vec<SimNode> = (0..n)
        .map(|i| {
            let key = test_key(i as u8 + 1);
            let id = key.node_id();
            SimNode {
                users: (0..2)
                    .map(|u| UserId::new(id, &format!("u{u}")).unwrap())
                    .collect(),
                key,
                id,
                rooms: NodeRooms::open(Store::volatile().unwrap(), id).unwrap(),
                peers: BTreeMap::new(),
                wiped: false,
            }
        })
        .collect();
    let ids: Vec<NodeId> = nodes.iter().map(|x| x.id).collect();
    for (i, node) in nodes.iter_mut().enumerate() {
        for (j, peer) in ids.iter().enumerate() {
            if i != j {
                let hello = sync::hello(node.id, &format!("n{i}"));
                node.peers.insert(
                    *peer,
                    PeerSync::new(hello, *peer, T0, seed ^ (i * 31 + j) as u64),
                );
            }
        }
    }
    // Node 0's owner creates a public room and invites one user per node.
    let owner = UserId::new(ids[0], "owner").unwrap();
    let create = create_room_event(1, "owner", "sim", Visibility::Public, T0).unwrap();
    let room: RoomId = create.room();
    nodes[0].rooms.create_room(&create).unwrap();
    for i in 1..n {
        let target = nodes[i].users[0].clone();
        let key = nodes[0].key.clone();
        nodes[0]
            .rooms
            .post(
                &key,
                &owner,
                &room,
                EventKind::Invite { target },
                &Content::Reason(ReasonContent::default()),
                T0,
                None,
            )
            .and_then(|p| p.into_event())
            .unwrap();
    }

    let mut now = T0;
    let mut queue: BTreeMap<(u64, u64), (usize, usize, FedMessage)> = BTreeMap::new();
    let mut seq = 0u64;
    let fault_end = T0 + 30_000;
    let heal_end = fault_end + 40_000;
    let mut faults = Faults {
        loss: rng.below(20),
        dup: rng.below(10),
        delay_max: 1 + rng.below(200),
        cut: vec![],
    };
    let mut next_action = T0 + 10;
    let mut next_partition = T0 + rng.below(10_000);
    let mut next_restart = T0 + 2_000 + rng.below(15_000);
    let mut last_poster: Option<usize> = None;
    // One node may equivocate; it is not held to the no-fork rule.
    let byzantine = rng.chance(50).then(|| rng.below(n as u64) as usize);
    loop {
        let healing = now >= fault_end;
        if healing {
            faults = Faults {
                loss: 0,
                dup: 0,
                delay_max: 5,
                cut: vec![],
            };
        }
        // Transmit what every state machine has to send.
        for (i, node) in nodes.iter_mut().enumerate() {
            for (p, sync) in node.peers.iter_mut() {
                let j = ids.iter().position(|x| x == p).unwrap();
                while let Some(msg) = sync.poll_transmit() {
                    if cut(&faults, i, j) || rng.chance(faults.loss) {
                        continue;
                    }
                    let copies = if rng.chance(faults.dup) { 2 } else { 1 };
                    for _ in 0..copies {
                        let at = now + 1 + rng.below(faults.delay_max);
                        seq += 1;
                        queue.insert((at, seq), (i, j, msg.clone()));
                    }
                }
            }
        }
        // The next thing to happen: a delivery, a timer or an action.
        let next_msg = queue.keys().next().map(|k| k.0);
        let next_timer = nodes
            .iter()
            .flat_map(|x| x.peers.values().filter_map(PeerSync::poll_timeout))
            .min();
        let actions_on = now < fault_end;
        let mut t = [
            next_msg,
            next_timer,
            actions_on.then_some(next_action),
            actions_on.then_some(next_partition),
            actions_on.then_some(next_restart),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap();
        if t >= heal_end {
            break;
        }
        t = t.max(now);
        now = t;
        if next_msg == Some(now) {
            let (&k, _) = queue.iter().next().unwrap();
            let (from, to, msg) = queue.remove(&k).unwrap();
            let node = &mut nodes[to];
            let sync = node.peers.get_mut(&ids[from]).unwrap();
            let effects = sync.handle_message(now, msg, &mut node.rooms);
            for (r, ev) in effects.accepted {
                for (p, s) in node.peers.iter_mut() {
                    if *p != ids[from] {
                        s.push(r, ev.clone(), None);
                    }
                }
            }
            continue;
        }
        if next_timer == Some(now) {
            for node in nodes.iter_mut() {
                for s in node.peers.values_mut() {
                    s.handle_timeout(now, &node.rooms);
                }
            }
            continue;
        }
        if actions_on && next_partition == now {
            faults.cut.clear();
            if rng.chance(50) {
                // Isolate one node, or cut one link.
                let a = rng.below(n as u64) as usize;
                if rng.chance(50) {
                    for b in 0..n {
                        if b != a {
                            faults.cut.push((a, b));
                        }
                    }
                } else {
                    faults.cut.push((a, (a + 1) % n));
                }
            }
            next_partition = now + 1_000 + rng.below(8_000);
            continue;
        }
        if actions_on && next_restart == now {
            next_restart = now + 3_000 + rng.below(12_000);
            // Often the node that just posted: its newest events may have
            // reached only some peers, the hard case for a rebuild.
            let i = match last_poster {
                Some(p) if rng.chance(60) => p,
                _ => rng.below(n as u64) as usize,
            };
            // A lost disk loses what no peer holds yet; the simulation
            // wipes a node only once its own chain is held elsewhere.
            let replicated = nodes[i].rooms.room(&room).is_some_and(|r| {
                let mine = r.engine().origin_tip(&ids[i]).map_or(0, |t| t.0);
                (0..n).any(|j| {
                    j != i
                        && nodes[j].rooms.room(&room).is_some_and(|o| {
                            o.engine().origin_tip(&ids[i]).map_or(0, |t| t.0) >= mine
                        })
                })
            });
            if replicated && rng.chance(30) {
                // The disk is lost, the key kept: rebuild from peers.
                let store = Store::volatile().unwrap();
                store.set_recovering(true).unwrap();
                nodes[i].rooms = NodeRooms::open(store, ids[i]).unwrap();
                nodes[i].wiped = true;
            } else {
                let store = nodes[i].rooms.store().clone();
                nodes[i].rooms = NodeRooms::open(store, ids[i]).unwrap();
            }
            reconnect(&mut nodes, &ids, i, now, seed, &mut queue);
            continue;
        }
        if actions_on && next_action == now {
            next_action = now + 20 + rng.below(300);
            let i = rng.below(n as u64) as usize;
            let user = nodes[i].users[rng.below(2) as usize].clone();
            if Some(i) == byzantine && rng.chance(10) {
                // Two events with one origin sequence, to two peers.
                let Some(r) = nodes[i].rooms.room(&room) else {
                    continue;
                };
                let header = r
                    .engine()
                    .next_header(user.clone(), EventKind::Message, now);
                let key = nodes[i].key.clone();
                let a = key.sign_event(header.clone(), &text("fork a")).unwrap();
                let b = key.sign_event(header, &text("fork b")).unwrap();
                for (k, ev) in [a, b].into_iter().enumerate() {
                    let j = (i + 1 + k) % n;
                    if j == i {
                        continue;
                    }
                    let batch = EventBatch {
                        room,
                        trace: None,
                        events: vec![ev.into_signed()],
                    };
                    seq += 1;
                    queue.insert(
                        (now + 1 + rng.below(faults.delay_max), seq),
                        (i, j, FedMessage::Events(batch)),
                    );
                }
                continue;
            }
            let node = &mut nodes[i];
            let Some(r) = node.rooms.room(&room) else {
                continue;
            };
            let state = r.engine().state();
            let member = state.is_joined(&user);
            let others: Vec<UserId> = state.joined().filter(|u| **u != user).cloned().collect();
            let kind = if !member {
                EventKind::Join
            } else if !others.is_empty() && rng.chance(8) {
                let target = others[rng.below(others.len() as u64) as usize].clone();
                let cutoff = r.engine().cutoff_for(&target);
                match rng.below(3) {
                    0 => EventKind::Mute {
                        target,
                        cutoff,
                        until: now + rng.below(10_000) + 1,
                    },
                    1 => EventKind::RoleGrant {
                        target,
                        role: "moderator".into(),
                    },
                    _ => EventKind::RoleRevoke {
                        target,
                        role: "moderator".into(),
                        cutoff,
                    },
                }
            } else {
                EventKind::Message
            };
            // Node 0's owner hands out roles sometimes, so sanctions can stand.
            let (author, kind) = if i == 0 && rng.chance(20) && !others.is_empty() {
                let target = others[rng.below(others.len() as u64) as usize].clone();
                (
                    owner.clone(),
                    EventKind::RoleGrant {
                        target,
                        role: "admin".into(),
                    },
                )
            } else {
                (user, kind)
            };
            let content = match &kind {
                EventKind::Message => text(&format!("hello from {i} at {now}")),
                k if k.content_class() == confab_wire::event::ContentClass::Reason => {
                    Content::Reason(ReasonContent::default())
                }
                _ => Content::Empty,
            };
            let key = node.key.clone();
            if let Ok(Posted::Event(ev)) = node
                .rooms
                .post(&key, &author, &room, kind, &content, now, None)
            {
                last_poster = Some(i);
                if rng.chance(5) {
                    // Restart right after posting, before pushes go out.
                    next_restart = now;
                }
                for s in node.peers.values_mut() {
                    s.push(room, ev.signed().clone(), None);
                }
            }
        }
    }
    // Every node holds the room, and all digests agree.
    let digests: Vec<Option<[u8; 32]>> = nodes
        .iter()
        .map(|x| x.rooms.room(&room).map(|r| r.engine().digest()))
        .collect();
    let counts: Vec<Option<u64>> = nodes
        .iter()
        .map(|x| x.rooms.room(&room).map(|r| r.engine().len()))
        .collect();
    if std::env::var_os("CONFAB_SIM_DEBUG").is_some() {
        for (i, x) in nodes.iter().enumerate() {
            let v: Vec<String> = x
                .rooms
                .vector(&room)
                .iter()
                .map(|o| {
                    let j = ids.iter().position(|y| *y == o.origin).unwrap();
                    format!("{j}:{}:{}", o.seq, &o.head.to_string()[..6])
                })
                .collect();
            let forks = x.rooms.room(&room).map(|r| r.engine().forks().clone());
            eprintln!(
                "node {i} vector {v:?} forks {forks:?} may_post {}",
                x.rooms.may_post(&room)
            );
        }
        let all: Vec<std::collections::BTreeSet<confab_wire::EventId>> = nodes
            .iter()
            .map(|x| {
                x.rooms
                    .events_after(&room, &[], 100_000, usize::MAX)
                    .into_iter()
                    .map(|e| e.verify().unwrap().id())
                    .collect()
            })
            .collect();
        eprintln!("byzantine {byzantine:?}");
        for (i, set) in all.iter().enumerate() {
            for id in set.difference(&all[0]) {
                let ev = x_event(&nodes[i], id);
                eprintln!("node {i} has extra {id}: {ev}");
            }
            for id in all[0].difference(set) {
                eprintln!("node {i} lacks {id}: {}", x_event(&nodes[0], id));
            }
        }
        for (i, x) in nodes.iter().enumerate() {
            for (p, s) in &x.peers {
                let j = ids.iter().position(|y| y == p).unwrap();
                eprintln!(
                    "node {i} -> {j}: ready {} closed {:?}",
                    s.is_ready(),
                    s.closed()
                );
            }
        }
    }
    assert!(
        digests.iter().all(|d| d.is_some() && *d == digests[0]),
        "seed {seed}: nodes diverged after healing ({n} nodes, event counts {counts:?}); \
         replay with CONFAB_SIM_SEED={seed}"
    );
    assert!(
        counts[0].unwrap() > n as u64,
        "seed {seed}: nothing happened"
    );
    if std::env::var_os("CONFAB_SIM_DEBUG").is_some() {
        let wiped: Vec<usize> = (0..n).filter(|&i| nodes[i].wiped).collect();
        let forks = nodes[0].rooms.room(&room).map(|r| r.engine().forks().len());
        eprintln!(
            "seed {seed}: {n} nodes, {:?} events, wiped {wiped:?}, byzantine {byzantine:?}, forked origins {forks:?}",
            counts[0]
        );
    }
    // Only the equivocating node's chain may fork: a rebuilt node must not
    // have reused a sequence number of its own.
    let forks = nodes[0].rooms.room(&room).unwrap().engine().forks().clone();
    for (origin, at) in &forks {
        let i = ids.iter().position(|x| x == origin).unwrap();
        assert!(
            Some(i) == byzantine,
            "seed {seed}: honest node {i} (wiped: {}) forked its chain at {at}; \
             replay with CONFAB_SIM_SEED={seed}",
            nodes[i].wiped
        );
    }
}

fn x_event(node: &SimNode, id: &confab_wire::EventId) -> String {
    match node.rooms.store().event(id).unwrap() {
        Some(e) => {
            let v = e.signed.verify().unwrap();
            let h = v.header();
            format!(
                "author {} seq {} depth {} kind {:?} verdict {:?} prev {:?}",
                h.author,
                h.origin_seq,
                h.depth,
                h.kind,
                node.rooms
                    .room(&v.room())
                    .and_then(|r| r.engine().verdict(id)),
                h.prev
            )
        }
        None => "not stored".into(),
    }
}

#[test]
fn nodes_converge_through_faults() {
    if let Ok(s) = std::env::var("CONFAB_SIM_SEED") {
        run(s.parse().unwrap());
        return;
    }
    let seeds: u64 = std::env::var("CONFAB_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    // Seeds are independent: run them on every core.
    let next = AtomicU64::new(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed > seeds {
                        return;
                    }
                    run(seed);
                }
            });
        }
    });
}
