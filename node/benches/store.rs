//! Engine and store benchmarks (issue: room engine and durable storage).
//!
//! Run: `cargo bench -p confab-node --bench store`
//! Scale with `CONFAB_BENCH_EVENTS` (default 1,000,000 for the big room).
//! Prints a markdown table for BENCHMARKS.md. Every rate is reported beside
//! the raw single-core `verify_strict` rate measured in the same run, since
//! the machine is shared and noisy.

use std::time::{Duration, Instant};

use confab_node::engine::{Admission, RoomEngine};
use confab_node::store::Store;
use confab_node::verify::{Verifier, verify_all};
use confab_wire::client::Anchor;
use confab_wire::event::{Content, CreateRoom, MessageContent, Visibility};
use confab_wire::{EventHeader, EventId, EventKind, NodeKey, SignedEvent, UserId, VerifiedEvent};

const T0: u64 = 1_700_000_000_000;

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret(&[n; 32])
}

fn user(n: u8, name: &str) -> UserId {
    UserId::new(key(n).node_id(), name).expect("valid user")
}

/// A 200-byte message body.
fn body(i: usize) -> String {
    let mut s = format!("message {i}: ");
    while s.len() < 200 {
        s.push_str("lorem ipsum dolor sit amet ");
    }
    s.truncate(200);
    s
}

fn create(n: u8) -> VerifiedEvent {
    let h = EventHeader::create(
        user(n, "owner"),
        CreateRoom::named("bench", Visibility::Public, false),
        T0,
    );
    key(n).sign_event(h, &Content::Empty).expect("sign")
}

/// A linear room: one origin, each event on the previous. Signed on every
/// core (signing is not what is measured).
fn linear_room(n: usize) -> Vec<VerifiedEvent> {
    let c = create(1);
    let room = c.room();
    let owner = user(1, "owner");
    // Headers are cheap and sequential; signatures are spread over threads.
    let mut headers = Vec::with_capacity(n);
    let mut prev = c.id();
    let mut first_ids = Vec::new();
    // Ids depend on signatures? No: the id is the hash of the header bytes,
    // so the chain of ids can be computed before signing.
    for i in 0..n {
        let content = Content::Message(MessageContent {
            body: body(i),
            ..Default::default()
        });
        let content_bytes = content.to_bytes().expect("content");
        let h = EventHeader {
            room: Some(room),
            author: owner.clone(),
            kind: EventKind::Message,
            prev: vec![prev],
            depth: 1 + i as u64,
            origin_seq: 2 + i as u64,
            origin_prev: Some(prev),
            ts: T0 + i as u64,
            content_hash: confab_wire::sign::content_hash(&content_bytes),
        };
        let bytes = confab_wire::codec::to_vec("h", &h).expect("encode");
        prev = confab_wire::sign::event_id(&bytes);
        if i < 2 {
            first_ids.push(prev);
        }
        headers.push((h, content));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = n.div_ceil(threads).max(1);
    let mut out = vec![c];
    std::thread::scope(|s| {
        let hs: Vec<_> = headers
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let k = key(1);
                    part.iter()
                        .map(|(h, c)| k.sign_event(h.clone(), c).expect("sign"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in hs {
            out.extend(h.join().expect("signer"));
        }
    });
    out
}

/// A branchy room: four origins writing concurrently on stale views.
fn branchy_room(n: usize) -> Vec<VerifiedEvent> {
    let c = create(1);
    let mut replicas: Vec<RoomEngine> =
        (0..4).map(|_| RoomEngine::new(&c).expect("room")).collect();
    let mut all = vec![c.clone()];
    let mut logs: Vec<Vec<VerifiedEvent>> = vec![Vec::new(); 4];
    for (r, eng) in replicas.iter_mut().enumerate() {
        let u = user(r as u8 + 1, "u");
        let h = eng.next_header(u, EventKind::Join, T0);
        let ev = key(r as u8 + 1)
            .sign_event(h, &Content::Empty)
            .expect("sign");
        eng.submit(&ev, u64::MAX / 2).expect("join");
        logs[r].push(ev.clone());
        all.push(ev);
    }
    // synced[r][f]: how much of replica f's log replica r has read.
    let mut synced = [[0usize; 4]; 4];
    for i in 0..n {
        let r = i % 4;
        // Every 8 events, each replica catches up with another.
        if i % 8 == 7 {
            let from = (r + 1) % 4;
            let start = synced[r][from];
            let src: Vec<VerifiedEvent> = logs[from][start..].to_vec();
            synced[r][from] = logs[from].len();
            for ev in &src {
                if !replicas[r].contains(&ev.id()) {
                    let _ = replicas[r].submit(ev, u64::MAX / 2);
                    logs[r].push(ev.clone());
                }
            }
        }
        let u = user(r as u8 + 1, "u");
        let content = Content::Message(MessageContent {
            body: body(i),
            ..Default::default()
        });
        let h = replicas[r].next_header(u, EventKind::Message, T0 + i as u64);
        let ev = key(r as u8 + 1).sign_event(h, &content).expect("sign");
        let _ = replicas[r].submit(&ev, u64::MAX / 2);
        logs[r].push(ev.clone());
        all.push(ev);
    }
    all.sort_by_key(|e| (e.header().depth, e.id()));
    all
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn raw_verify_rate(sample: &[VerifiedEvent]) -> f64 {
    let n = sample.len().min(20_000);
    let mut best = 0f64;
    for _ in 0..3 {
        let t = Instant::now();
        for e in &sample[..n] {
            let s = e.signed();
            let msg = [confab_wire::sign::EVENT_SIGNATURE_TAG, &s.header].concat();
            let sig = ed25519_dalek::Signature::from_bytes(&s.signature);
            e.origin()
                .verifying_key()
                .verify_strict(&msg, &sig)
                .expect("valid");
        }
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    best
}

fn apply_rate(events: &[VerifiedEvent]) -> f64 {
    let t = Instant::now();
    let mut eng = RoomEngine::new(&events[0]).expect("room");
    for e in &events[1..] {
        match eng.submit(e, u64::MAX / 2) {
            Ok(Admission::Applied { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    (events.len() - 1) as f64 / t.elapsed().as_secs_f64()
}

/// Ingest as a node takes events from a peer: a verifier thread checks
/// batch k+1 while this thread judges, writes and flushes batch k.
fn ingest(store: &Store, events: &[VerifiedEvent]) -> f64 {
    let signed: Vec<SignedEvent> = events[1..].iter().map(|e| e.signed().clone()).collect();
    let mut room = store.create_room(&events[0]).expect("room");
    store.wait_durable().expect("flush");
    let t = Instant::now();
    let verifier = Verifier::start(2);
    let mut batches = signed.chunks(256).map(<[_]>::to_vec);
    let mut in_flight = 0;
    for b in batches.by_ref().take(2) {
        verifier.push(b);
        in_flight += 1;
    }
    let mut store_time = Duration::ZERO;
    while in_flight > 0 {
        let verified = verifier.next().expect("verifier");
        in_flight -= 1;
        if let Some(b) = batches.next() {
            verifier.push(b);
            in_flight += 1;
        }
        let t0 = Instant::now();
        for v in verified {
            let v = v.expect("valid");
            room.submit(&v, u64::MAX / 2)
                .expect("store")
                .expect("admitted");
        }
        room.commit().expect("commit");
        // As the node acknowledges a peer's batch: once the log is durable.
        store.wait_logged().expect("flush");
        store_time += t0.elapsed();
    }
    let total = t.elapsed();
    eprintln!(
        "per event: {:.1} µs in all, of which judge + write + flush {:.1} µs",
        total.as_secs_f64() * 1e6 / signed.len() as f64,
        store_time.as_secs_f64() * 1e6 / signed.len() as f64
    );
    signed.len() as f64 / total.as_secs_f64()
}

/// sled's own cost per key in this run: batches of 256 inserts and a flush,
/// random 33-byte keys with 800-byte values (like event records) and
/// sequential 41-byte keys with empty values (like index entries).
fn sled_floor() -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::Config::new()
        .path(dir.path())
        .flush_every_ms(None)
        .mode(sled::Mode::HighThroughput)
        .open()
        .expect("sled");
    let t = db.open_tree("floor").expect("tree");
    let n = 50_000u64;
    let run = |keyf: &dyn Fn(u64) -> Vec<u8>, value: &[u8]| {
        let start = Instant::now();
        for chunk in 0..n / 256 {
            let mut b = sled::Batch::default();
            for i in 0..256 {
                b.insert(keyf(chunk * 256 + i), value);
            }
            t.apply_batch(b).expect("batch");
            db.flush().expect("flush");
        }
        start.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let random = run(
        &|i| {
            let mut k = vec![b'E'];
            k.extend_from_slice(&confab_wire::sign::content_hash(&i.to_be_bytes()).0);
            k
        },
        &[7u8; 800],
    );
    let sequential = run(
        &|i| {
            let mut k = vec![b'O'];
            k.extend_from_slice(&[1u8; 32]);
            k.extend_from_slice(&i.to_be_bytes());
            k
        },
        &[],
    );
    (random, sequential)
}

/// A backup of a store holding `n` events, against the ceiling of
/// reading every tree once in the same run.
fn backup_bench(n: usize) {
    use std::io::Write;
    eprintln!("preparing {n} linear events…");
    let linear = linear_room(n);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db")).expect("store");
    ingest(&store, &linear);
    store.wait_durable().expect("flush");
    let mut scans = Vec::new();
    let mut writes = Vec::new();
    let mut verifies = Vec::new();
    let mut size = 0u64;
    for round in 0..5 {
        let t = Instant::now();
        let bytes = store.scan_all_bytes().expect("scan");
        scans.push(t.elapsed());
        let path = dir.path().join(format!("b{round}"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
        let header = confab_wire::backup::BackupHeader {
            node: key(1).node_id(),
            name: "bench".into(),
            created: T0,
            software: "bench".into(),
        };
        let t = Instant::now();
        store
            .write_backup(&header, b"key", |piece| {
                file.write_all(&piece).map_err(|e| confab_node::Error::Io {
                    path: path.clone(),
                    source: e,
                })
            })
            .expect("backup");
        file.flush().expect("flush");
        writes.push(t.elapsed());
        size = std::fs::metadata(&path).expect("size").len();
        let t = Instant::now();
        let data = std::fs::read(&path).expect("read");
        let items = confab_wire::backup::read_all(&data).expect("verifies");
        verifies.push(t.elapsed());
        assert!(items.len() as u64 > n as u64);
        let _ = bytes;
    }
    for v in [&mut scans, &mut writes, &mut verifies] {
        v.sort();
    }
    let med = |v: &[Duration]| v[v.len() / 2].as_secs_f64() * 1e3;
    println!(
        "| measure ({n}-event room, {:.1} MB backup, median of 5) | value | vs scanning every tree |",
        size as f64 / 1e6
    );
    println!("|---|---|---|");
    println!(
        "| scan of every tree (the ceiling) | {:.0} ms | 1.00 |",
        med(&scans)
    );
    println!(
        "| `write_backup` to a file (the time posts wait) | {:.0} ms | {:.2} |",
        med(&writes),
        med(&writes) / med(&scans)
    );
    println!(
        "| read and verify the file (`backup verify`) | {:.0} ms | {:.2} |",
        med(&verifies),
        med(&verifies) / med(&scans)
    );
}

fn main() {
    let big: usize = std::env::var("CONFAB_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let small = 100_000.min(big);
    if std::env::var_os("CONFAB_BENCH_SLED_ONLY").is_some() {
        let (random, sequential) = sled_floor();
        println!("sled: random {random:.1} µs/key, sequential {sequential:.1} µs/key");
        return;
    }
    if std::env::var_os("CONFAB_BENCH_BACKUP_ONLY").is_some() {
        backup_bench(small);
        return;
    }
    if std::env::var_os("CONFAB_BENCH_INGEST_ONLY").is_some() {
        let linear = linear_room(small);
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("ingest")).expect("store");
        let rate = ingest(&store, &linear);
        println!("ingest {rate:.0} events/s");
        return;
    }
    eprintln!("preparing {small} linear events…");
    let linear = linear_room(small);
    let raw = raw_verify_rate(&linear[1..]);
    println!("| measure | value | vs raw verify_strict ({raw:.0}/s, 1 core) |");
    println!("|---|---|---|");
    println!("| raw `verify_strict`, one core | {raw:.0} events/s | 1.00 |");
    let (random, sequential) = sled_floor();
    println!(
        "| sled alone: insert + flush, random 33-byte key, 800-byte value (batches of 256) | {random:.1} µs/key | |"
    );
    println!(
        "| sled alone: insert + flush, sequential 41-byte key, empty value | {sequential:.1} µs/key | |"
    );

    {
        let sample: Vec<SignedEvent> = linear[1..5001.min(linear.len())]
            .iter()
            .map(|e| e.signed().clone())
            .collect();
        let t = Instant::now();
        for e in sample.clone() {
            e.verify().expect("valid");
        }
        let serial = sample.len() as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for part in sample.chunks(256) {
            for r in verify_all(part.to_vec()) {
                r.expect("valid");
            }
        }
        let parallel = sample.len() as f64 / t.elapsed().as_secs_f64();
        println!(
            "| full event verification (decode, checks, hash, signature), one core | {serial:.0} events/s | {:.2} |",
            serial / raw
        );
        println!(
            "| full event verification, all cores (`verify_all`, batches of 256) | {parallel:.0} events/s | {:.2} |",
            parallel / raw
        );
    }
    let rate = apply_rate(&linear);
    println!(
        "| engine apply, linear room ({small} events) | {rate:.0} events/s | {:.1} |",
        rate / raw
    );
    eprintln!("preparing {small} branchy events…");
    let branchy = branchy_room(small);
    let rate = apply_rate(&branchy);
    println!(
        "| engine apply, branchy room (4 origins, {} events) | {rate:.0} events/s | {:.1} |",
        branchy.len() - 1,
        rate / raw
    );

    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(&dir.path().join("ingest")).expect("store");
        let raw = (raw_verify_rate(&linear[1..]) + raw) / 2.0;
        let rate = ingest(&store, &linear);
        let (flushes, served) = store.flusher().stats();
        println!(
            "| store ingest: verify (pipelined thread) + judge + write + durable flush, batches of 256 | {rate:.0} events/s | **{:.2}** |",
            rate / raw
        );
        let _ = (flushes, served);
    }

    eprintln!("preparing the {big}-event room…");
    let huge = if big == small {
        linear
    } else {
        linear_room(big)
    };
    let path = dir.path().join("big");
    let ids: Vec<EventId> = huge.iter().map(|e| e.id()).collect();
    {
        let store = Store::open(&path).expect("store");
        let t = Instant::now();
        let raw = raw_verify_rate(&huge[1..]);
        let rate = ingest(&store, &huge);
        eprintln!(
            "ingested {big} events in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        println!(
            "| store ingest, {big}-event room | {rate:.0} events/s | {:.2} |",
            rate / raw
        );
        let room = huge[0].room();
        // History pages of 50 at random anchors.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut ids_only = Vec::new();
        let mut with_events = Vec::new();
        for _ in 0..5_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let anchor = ids[1 + (seed as usize % (ids.len() - 1))];
            let t = Instant::now();
            let page = store.page(&room, Anchor::Before(anchor), 50).expect("page");
            ids_only.push(t.elapsed());
            let t = Instant::now();
            let page2 = store.page(&room, Anchor::Before(anchor), 50).expect("page");
            for id in &page2 {
                store.event(id).expect("read").expect("present");
            }
            with_events.push(t.elapsed());
            assert!(page.len() <= 50);
        }
        ids_only.sort();
        with_events.sort();
        println!(
            "| history page of 50 (ids), {big}-event room | p50 {:.3} ms, p99 {:.3} ms | |",
            percentile(&ids_only, 0.5).as_secs_f64() * 1e3,
            percentile(&ids_only, 0.99).as_secs_f64() * 1e3
        );
        println!(
            "| history page of 50 with the events' bytes | p50 {:.3} ms, p99 {:.3} ms | |",
            percentile(&with_events, 0.5).as_secs_f64() * 1e3,
            percentile(&with_events, 0.99).as_secs_f64() * 1e3
        );
        let bytes = store.size_on_disk().expect("size");
        println!(
            "| disk per stored 200-byte message ({big} events, sled and the event log) | {:.0} bytes | |",
            bytes as f64 / big as f64
        );
    }
    // Cold open: open the store and the room, ready to accept an event.
    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let store = Store::open(&path).expect("store");
        let room = store
            .open_room(&huge[0].room())
            .expect("open")
            .expect("room");
        assert_eq!(room.engine().len(), big as u64 + 1);
        opens.push(t.elapsed());
    }
    opens.sort();
    println!(
        "| cold open, {big}-event room: store + room ready (median of 5) | {:.0} ms | |",
        opens[2].as_secs_f64() * 1e3
    );
}
