//! Replication benchmarks over real quinn endpoints on loopback.
//!
//! Run: `cargo bench -p confab-node --bench federation`
//! Knobs: `CONFAB_BENCH_RATE` (events/s for the latency run, default
//! 1000), `CONFAB_BENCH_SECS` (its length, default 10),
//! `CONFAB_BENCH_CATCHUP` (events recorded while the peer is away,
//! default 100,000).
//!
//! Measures, in one run, beside ceilings measured in the same run (the
//! machine is shared and noisy):
//! - replication latency, durable on A → durable on B, at a steady rate
//!   (ceiling: a UDP round trip on loopback between two threads);
//! - catch-up: B offline while A records N messages; time from B's start
//!   to B holding A's digest, and the ingest rate that gives (ceiling: the
//!   raw single-core `verify_strict` rate);
//! - memory of a node whose one peer is stuck (never reads) while it
//!   records N messages;
//! - honest traffic under a flood of parked events (`flood`): a local
//!   post's acknowledgement and another room's replication, against the
//!   same run without the flood (knobs `CONFAB_BENCH_FLOOD_SAMPLES`,
//!   `CONFAB_BENCH_FLOOD_ORPHANS`).
//!
//! Every store is on a real disk: `CONFAB_BENCH_DIR`, or `target/bench-tmp`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_node::federation::driver::Federation;
use confab_node::rooms::NodeRooms;
use confab_node::store::Store;
use confab_node::tls;
use confab_wire::event::{Content, CreateRoom, MessageContent, ReasonContent, Visibility};
use confab_wire::fed::FED_ALPN;
use confab_wire::{EventHeader, EventId, EventKind, FedMessage, NodeKey, RoomId, UserId};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> u64 {
    confab_node::local::now_ms()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn body(i: usize) -> Content {
    let mut s = format!("message {i}: ");
    while s.len() < 200 {
        s.push_str("lorem ipsum dolor sit amet ");
    }
    s.truncate(200);
    Content::Message(MessageContent {
        body: s,
        ..Default::default()
    })
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Node {
    key: NodeKey,
    rooms: Arc<Mutex<NodeRooms>>,
    fed: Federation,
}

fn start(key: &NodeKey, store: Store, pins: &[&NodeKey]) -> Node {
    let rooms = Arc::new(Mutex::new(
        NodeRooms::open(store, key.node_id()).expect("open rooms"),
    ));
    let pins = pins.iter().map(|k| k.node_id()).collect();
    let fed = Federation::start(
        key.clone(),
        "bench",
        "127.0.0.1:0".parse().expect("addr"),
        pins,
        rooms.clone(),
    )
    .expect("federation");
    Node {
        key: key.clone(),
        rooms,
        fed,
    }
}

fn link(a: &Node, b: &Node) {
    a.fed
        .connect(b.key.node_id(), b.fed.local_addr().expect("addr"));
    b.fed
        .connect(a.key.node_id(), a.fed.local_addr().expect("addr"));
}

impl Node {
    fn post(&self, author: &UserId, room: &RoomId, kind: EventKind, content: Content) -> EventId {
        let (ev, store) = {
            let mut rooms = self.rooms.lock().expect("lock");
            let posted = rooms.post(&self.key, author, room, kind, &content, now_ms(), None);
            (
                posted.and_then(|p| p.into_event()).expect("post"),
                rooms.store().clone(),
            )
        };
        // As the node acknowledges a post: once the log is durable.
        store.wait_logged().expect("durable");
        self.fed.publish(*room, ev.signed(), None);
        ev.id()
    }

    /// Events held in the room (cheap: polled while waiting).
    fn len(&self, room: &RoomId) -> Option<u64> {
        self.rooms
            .lock()
            .expect("lock")
            .room(room)
            .map(|r| r.engine().len())
    }

    /// The digest walks the whole room: compute it once, not in a loop.
    fn digest(&self, room: &RoomId) -> Option<([u8; 32], u64)> {
        self.rooms
            .lock()
            .expect("lock")
            .room(room)
            .map(|r| (r.engine().digest(), r.engine().len()))
    }
}

/// A room on `a` owned by its `owner`, with `guest` of each of `others`
/// invited.
fn room_on(a: &Node, others: &[&NodeKey]) -> (RoomId, UserId) {
    let owner = UserId::new(a.key.node_id(), "owner").expect("user");
    let create = a
        .key
        .sign_event(
            EventHeader::create(
                owner.clone(),
                CreateRoom::named("bench", Visibility::Private, false),
                now_ms(),
            ),
            &Content::Empty,
        )
        .expect("sign");
    let room = create.room();
    a.rooms
        .lock()
        .expect("lock")
        .create_room(&create)
        .expect("create");
    for k in others {
        a.post(
            &owner,
            &room,
            EventKind::Invite {
                target: UserId::new(k.node_id(), "guest").expect("user"),
            },
            Content::Reason(ReasonContent::default()),
        );
    }
    (room, owner)
}

/// Records `n` messages on a store directly, committing in groups (setup,
/// not measured).
fn fill(store: &Store, key: &NodeKey, owner: &UserId, room: &RoomId, n: usize) {
    let mut r = store.open_room(room).expect("open").expect("room");
    for i in 0..n {
        let h = r
            .engine()
            .next_header(owner.clone(), EventKind::Message, now_ms());
        let ev = key.sign_event(h, &body(i)).expect("sign");
        r.submit(&ev, now_ms()).expect("store").expect("admitted");
        if i % 512 == 511 {
            r.commit().expect("commit");
        }
    }
    r.commit().expect("commit");
    store.wait_durable().expect("flush");
}

async fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !f() {
        assert!(Instant::now() < deadline, "gave up: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Raw single-core `verify_strict` rate (events/s).
fn verify_rate() -> f64 {
    let key = NodeKey::from_secret(&[9; 32]);
    let owner = UserId::new(key.node_id(), "owner").expect("user");
    let create = key
        .sign_event(
            EventHeader::create(
                owner.clone(),
                CreateRoom::named("v", Visibility::Public, false),
                1,
            ),
            &Content::Empty,
        )
        .expect("sign");
    let mut engine = confab_node::engine::RoomEngine::new(&create).expect("engine");
    let mut evs = Vec::new();
    for i in 0..5000 {
        let h = engine.next_header(owner.clone(), EventKind::Message, 2 + i as u64);
        let ev = key.sign_event(h, &body(i)).expect("sign");
        let _ = engine.submit(&ev, 0);
        evs.push(ev.into_signed());
    }
    let t = Instant::now();
    for e in evs.iter().cloned() {
        e.verify().expect("valid");
    }
    evs.len() as f64 / t.elapsed().as_secs_f64()
}

/// Median and p99 of a UDP round trip on loopback between two threads (µs).
fn loopback_rtt() -> (f64, f64) {
    let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b_addr = b.local_addr().expect("addr");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..5000 {
            let (n, from) = b.recv_from(&mut buf).expect("recv");
            b.send_to(&buf[..n], from).expect("send");
        }
    });
    let mut rtts = Vec::with_capacity(5000);
    let mut buf = [0u8; 64];
    for i in 0..5000u32 {
        let t = Instant::now();
        a.send_to(&i.to_le_bytes(), b_addr).expect("send");
        a.recv_from(&mut buf).expect("recv");
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let _ = echo.join();
    rtts.sort_by(f64::total_cmp);
    (pct(&rtts, 0.5), pct(&rtts, 0.99))
}

async fn latency(rate: u64, secs: u64) -> (f64, f64, f64, usize) {
    let (ka, kb) = (
        NodeKey::from_secret(&[1; 32]),
        NodeKey::from_secret(&[2; 32]),
    );
    let a = start(&ka, disk_store(), &[&kb]);
    let b = start(&kb, disk_store(), &[&ka]);
    link(&a, &b);
    let (room, owner) = room_on(&a, &[&kb]);
    wait("b holds the room", || b.len(&room).is_some()).await;
    let sent: Arc<Mutex<HashMap<EventId, Instant>>> = Arc::default();
    let mut arrivals = b.fed.subscribe();
    let got: Arc<Mutex<Vec<(EventId, Instant)>>> = Arc::default();
    let collector = {
        let got = got.clone();
        tokio::spawn(async move {
            while let Ok((_, ev, _)) = arrivals.recv().await {
                let at = Instant::now();
                if let Ok(v) = ev.verify() {
                    got.lock().expect("lock").push((v.id(), at));
                }
            }
        })
    };
    let total = (rate * secs) as usize;
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        tick.tick().await;
        let id = a.post(&owner, &room, EventKind::Message, body(i));
        sent.lock().expect("lock").insert(id, Instant::now());
    }
    let target = a.len(&room);
    wait("b holds everything", || b.len(&room) == target).await;
    assert_eq!(a.digest(&room), b.digest(&room), "b converged");
    collector.abort();
    let mut lat: Vec<f64> = {
        let sent = sent.lock().expect("lock");
        got.lock()
            .expect("lock")
            .iter()
            .filter_map(|(id, at)| {
                let t0 = sent.get(id)?;
                Some(at.saturating_duration_since(*t0).as_secs_f64() * 1e3)
            })
            .collect()
    };
    // The first second warms caches and connections.
    let skip = (rate as usize).min(lat.len() / 2);
    let mut lat = lat.split_off(skip);
    lat.sort_by(f64::total_cmp);
    let achieved = total as f64 / secs as f64;
    a.fed.shutdown().await;
    b.fed.shutdown().await;
    (pct(&lat, 0.5), pct(&lat, 0.99), achieved, lat.len())
}

async fn catch_up(n: usize) -> (f64, f64) {
    let (ka, kb) = (
        NodeKey::from_secret(&[3; 32]),
        NodeKey::from_secret(&[4; 32]),
    );
    let a = start(&ka, disk_store(), &[&kb]);
    let b = start(&kb, disk_store(), &[&ka]);
    link(&a, &b);
    let (room, owner) = room_on(&a, &[&kb]);
    wait("b holds the room", || b.len(&room).is_some()).await;
    // B goes away (its store stays); A records n messages.
    b.fed.shutdown().await;
    let b_store = b.rooms.lock().expect("lock").store().clone();
    drop(b);
    let a_store = a.rooms.lock().expect("lock").store().clone();
    // Written under A's rooms: reopen them afterwards so A sees them.
    fill(&a_store, &ka, &owner, &room, n);
    *a.rooms.lock().expect("lock") = NodeRooms::open(a_store, ka.node_id()).expect("reopen");
    let target = a.len(&room);
    let t = Instant::now();
    let b = start(&kb, b_store, &[&ka]);
    link(&a, &b);
    wait("b caught up", || b.len(&room) == target).await;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(a.digest(&room), b.digest(&room), "b converged");
    a.fed.shutdown().await;
    b.fed.shutdown().await;
    (secs, n as f64 / secs)
}

/// A peer that completes the handshake, says hello, then never reads.
async fn stuck_peer(key: &NodeKey, a: &Node) -> quinn::Connection {
    let pins = [a.key.node_id()].into_iter().collect();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    ep.set_default_client_config(tls::client_config(key, pins, &[FED_ALPN]).expect("tls"));
    let conn = ep
        .connect(
            a.fed.local_addr().expect("addr"),
            &tls::server_name(&a.key.node_id()),
        )
        .expect("connect")
        .await
        .expect("handshake");
    let (mut send, _recv) = conn.open_bi().await.expect("stream");
    let mut hello = Vec::new();
    FedMessage::Hello(confab_node::federation::sync::hello(key.node_id(), "stuck"))
        .encode(&mut hello)
        .expect("encode");
    send.write_all(&hello).await.expect("hello");
    // Keep the stream open and never read: `_recv` lives in the task.
    tokio::spawn(async move {
        let _keep = (send, _recv);
        std::future::pending::<()>().await;
    });
    conn
}

/// Orphans for `room` signed by `key`'s user: each names a parent that
/// never comes, so the receiving node parks it (as a rogue peer's flood).
fn orphans(key: &NodeKey, room: RoomId, n: usize) -> Vec<confab_wire::SignedEvent> {
    let author = UserId::new(key.node_id(), "mallory").expect("user");
    (0..n)
        .map(|i| {
            let mut missing = [0xeeu8; 32];
            missing[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let header = EventHeader {
                room: Some(room),
                author: author.clone(),
                kind: EventKind::Message,
                prev: vec![EventId(missing)],
                depth: 10 + i as u64,
                origin_seq: 10 + i as u64,
                origin_prev: Some(EventId(missing)),
                ts: now_ms(),
                content_hash: confab_wire::ContentHash([0; 32]),
            };
            key.sign_event(header, &body(i))
                .expect("sign")
                .into_signed()
        })
        .collect()
}

/// Honest traffic under a flood of parked events: A's acknowledgement of
/// a local post in a room of its own, and B→A replication of another room,
/// sampled one after the other, while a pinned rogue peer streams orphans
/// into the shared room (or, for the baseline, does not). Returns p50 and
/// p99 in ms: (post, replication), and how many orphans A took in.
async fn flood(samples: usize, orphans_n: usize, with_flood: bool) -> ([f64; 4], u64) {
    let (ka, kb, kr) = (
        NodeKey::from_secret(&[7; 32]),
        NodeKey::from_secret(&[8; 32]),
        NodeKey::from_secret(&[10; 32]),
    );
    let a = start(&ka, disk_store(), &[&kb, &kr]);
    let b = start(&kb, disk_store(), &[&ka]);
    link(&a, &b);
    // The flood goes into one room b shares with a; the honest messages
    // come in another.
    let (shared, _) = room_on(&b, &[&ka]);
    let (other, b_owner) = room_on(&b, &[&ka]);
    wait("a holds b's rooms", || {
        a.len(&shared).is_some() && a.len(&other).is_some()
    })
    .await;
    let (own, a_owner) = room_on(&a, &[]);
    let flood_task = if with_flood {
        let batches = orphans(&kr, shared, orphans_n);
        let mut out = Vec::new();
        FedMessage::Hello(confab_node::federation::sync::hello(kr.node_id(), "flood"))
            .encode(&mut out)
            .expect("encode");
        for chunk in batches.chunks(64) {
            FedMessage::Events(confab_wire::fed::EventBatch {
                room: shared,
                trace: None,
                events: chunk.to_vec(),
            })
            .encode(&mut out)
            .expect("encode");
        }
        let pins = [a.key.node_id()].into_iter().collect();
        let mut ep =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
        ep.set_default_client_config(tls::client_config(&kr, pins, &[FED_ALPN]).expect("tls"));
        let conn = ep
            .connect(
                a.fed.local_addr().expect("addr"),
                &tls::server_name(&a.key.node_id()),
            )
            .expect("connect")
            .await
            .expect("handshake");
        let (mut send, recv) = conn.open_bi().await.expect("stream");
        Some(tokio::spawn(async move {
            let _ = send.write_all(&out).await;
            let _keep = (send, recv, conn, ep);
            std::future::pending::<()>().await;
        }))
    } else {
        None
    };
    let mut arrivals = a.fed.subscribe();
    let (mut posts, mut repl) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let t = Instant::now();
        a.post(&a_owner, &own, EventKind::Message, body(i));
        posts.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let id = b.post(&b_owner, &other, EventKind::Message, body(i));
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let got = tokio::time::timeout(Duration::from_secs(1), arrivals.recv()).await;
            if let Ok(Ok((_, ev, _))) = got
                && ev.verify().is_ok_and(|v| v.id() == id)
            {
                break;
            }
            assert!(Instant::now() < deadline, "gave up: b's message at a");
        }
        repl.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let parked = a.rooms.lock().expect("lock").parked_bytes() as u64;
    if let Some(t) = flood_task {
        t.abort();
    }
    posts.sort_by(f64::total_cmp);
    repl.sort_by(f64::total_cmp);
    a.fed.shutdown().await;
    b.fed.shutdown().await;
    (
        [
            pct(&posts, 0.5),
            pct(&posts, 0.99),
            pct(&repl, 0.5),
            pct(&repl, 0.99),
        ],
        parked,
    )
}

/// Records `n` messages on a node whose one peer is stuck (or, for the
/// control, absent); RSS before, at peak, after (KiB).
async fn stuck(n: usize, with_peer: bool) -> (u64, u64, u64) {
    let (ka, kc) = (
        NodeKey::from_secret(&[5; 32]),
        NodeKey::from_secret(&[6; 32]),
    );
    let a = start(&ka, disk_store(), &[&kc]);
    let (room, owner) = room_on(&a, &[&kc]);
    let _conn = if with_peer {
        let c = stuck_peer(&kc, &a).await;
        wait("a sees the stuck peer", || a.fed.connected().len() == 1).await;
        Some(c)
    } else {
        None
    };
    let before = rss_kib();
    let mut peak = before;
    for i in 0..n {
        a.post(&owner, &room, EventKind::Message, body(i));
        if i % 1000 == 0 {
            peak = peak.max(rss_kib());
            tokio::task::yield_now().await;
        }
    }
    let after = rss_kib();
    a.fed.shutdown().await;
    (before, peak.max(after), after)
}

/// Data directories of the run's stores, removed when it ends.
static SCRATCH: Mutex<Vec<tempfile::TempDir>> = Mutex::new(Vec::new());

/// A store on a real disk (`CONFAB_BENCH_DIR`, or `target/bench-tmp`):
/// never a temporary store, whose files sit in shared memory and are never
/// synced, so its flushes would cost nothing.
fn disk_store() -> Store {
    let parent = std::env::var_os("CONFAB_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
                })
                .join("bench-tmp")
        });
    std::fs::create_dir_all(&parent).expect("the bench's scratch directory");
    let dir = tempfile::tempdir_in(&parent).expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    SCRATCH.lock().expect("scratch").push(dir);
    store
}

fn main() {
    // `all` (default), or one part in a fresh process: `latency`,
    // `catchup`, `stuck`, `control` (stuck without the peer: what the
    // recording alone costs in memory).
    let part = std::env::var("CONFAB_BENCH_PART").unwrap_or_else(|_| "all".into());
    let on = |p: &str| part == "all" || part == p;
    let rate = env("CONFAB_BENCH_RATE", 1000);
    let secs = env("CONFAB_BENCH_SECS", 10);
    let n = env("CONFAB_BENCH_CATCHUP", 100_000) as usize;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!("# federation benchmark ({cores} cores)\n");
    let vr = verify_rate();
    let (rtt50, rtt99) = loopback_rtt();
    println!(
        "ceilings: verify_strict {vr:.0} events/s on one core; UDP loopback round trip p50 {rtt50:.1} µs, p99 {rtt99:.1} µs\n"
    );
    if on("latency") {
        let (p50, p99, achieved, samples) = rt.block_on(latency(rate, secs));
        println!(
            "latency A→B at {achieved:.0} events/s ({samples} samples after 1 s warm-up): p50 {p50:.3} ms, p99 {p99:.3} ms \
         (p50 = {:.1}× a loopback round trip)",
            p50 * 1000.0 / rtt50
        );
    }
    if on("catchup") {
        let (secs_c, rate_c) = rt.block_on(catch_up(n));
        println!(
            "catch-up of {n} messages: {secs_c:.2} s, ingest {rate_c:.0} events/s = {:.2}× single-core verify_strict",
            rate_c / vr
        );
    }
    if on("flood") {
        let samples = env("CONFAB_BENCH_FLOOD_SAMPLES", 300) as usize;
        let orphans_n = env("CONFAB_BENCH_FLOOD_ORPHANS", 40_000) as usize;
        let (quiet, _) = rt.block_on(flood(samples, orphans_n, false));
        let (loud, parked) = rt.block_on(flood(samples, orphans_n, true));
        println!(
            "under a flood of {orphans_n} parked events ({} KiB parked at the end), {samples} samples each:\n  \
             local post acknowledged: p50 {:.2} ms, p99 {:.2} ms (unloaded p50 {:.2} ms, p99 {:.2} ms: {:.2}×, {:.2}×)\n  \
             another room's message B→A: p50 {:.2} ms, p99 {:.2} ms (unloaded p50 {:.2} ms, p99 {:.2} ms: {:.2}×, {:.2}×)",
            parked / 1024,
            loud[0],
            loud[1],
            quiet[0],
            quiet[1],
            loud[0] / quiet[0],
            loud[1] / quiet[1],
            loud[2],
            loud[3],
            quiet[2],
            quiet[3],
            loud[2] / quiet[2],
            loud[3] / quiet[3],
        );
    }
    for (p, with_peer) in [("stuck", true), ("control", false)] {
        if part == p || (part == "all" && with_peer) {
            let (before, peak, after) = rt.block_on(stuck(n, with_peer));
            println!(
                "{} while recording {n} messages: RSS {} MiB before, {} MiB peak, {} MiB after (+{} MiB)",
                if with_peer {
                    "one stuck peer"
                } else {
                    "no peer (control)"
                },
                before / 1024,
                peak / 1024,
                after / 1024,
                peak.saturating_sub(before) / 1024
            );
        }
    }
    drop(rt);
    SCRATCH.lock().expect("scratch").clear();
}
