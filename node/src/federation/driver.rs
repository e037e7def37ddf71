//! The thin I/O layer: one tokio task per quinn connection moves frames
//! between a bidirectional stream and a [`PeerSync`], and timers. All
//! replication decisions are the state machine's.
//!
//! One connection per pair of nodes: only the node with the smaller id
//! dials (the other accepts), so two nodes never hold two connections.
//! The dialer reconnects with capped exponential backoff and jitter. The
//! other side, when it has had no connection for a while (it restarted,
//! or its link died), knocks: it opens a connection and closes it at once
//! with [`KNOCK_CODE`]. Only the real peer can knock (TLS pins its key),
//! and a peer without a connection proves the dialer's one dead, so the
//! dialer closes it and redials at once instead of waiting out the idle
//! timeout.
//!
//! A peer's connection state is keyed by connection: a newer connection
//! replaces (and closes) an older one, and the end of the older one never
//! removes the newer.
//!
//! Ingest is a two-stage pipeline per connection: the signatures of an
//! event batch are checked on the blocking pool (on every core, and off
//! the rooms lock), while the batch before it is judged and stored; frames
//! are still acted on in the order they came.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_wire::fed::{Ephemeral, FED_ALPN, OriginHead, TraceId};
use confab_wire::{
    BlobId, FedMessage, FrameDecoder, NodeId, NodeKey, RoomId, SignedEvent, VerifiedEvent,
};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};

use super::blobs::{BlobFetch, ChunkOutcome};
use super::sync::{self, Effects, PeerSync, Penalty, Rooms};
use crate::error::{Error, Result};
use crate::local::now_ms;
use crate::metrics::{FederationMetrics, PeerLabel};
use crate::rooms::NodeRooms;
use crate::store::Store;
use crate::tls::{self, PinSet};

mod links;

/// Commands waiting for one connection task.
pub const PEER_QUEUE_DEPTH: usize = 4096;
/// First reconnect delay.
pub const BACKOFF_MIN_MS: u64 = 100;
/// Longest reconnect delay.
pub const BACKOFF_MAX_MS: u64 = 30_000;
/// Event batches being verified at once per connection (then reading waits).
pub const VERIFYING_MAX: usize = 4;
/// Subscribers that fall this far behind lose the oldest notices.
pub const NOTICE_CAPACITY: usize = 8192;
/// Blobs fetched at once.
pub const FETCHES_MAX: usize = 16;
/// How long one peer gets to deliver a blob before the next is asked.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest blob fetched from a peer (the default upload limit).
pub const DEFAULT_MAX_BLOB: u64 = 25 * 1024 * 1024;
/// Application close code of a knock ("I have no connection: redial me").
pub const KNOCK_CODE: u32 = 4;
/// How long the side that does not dial waits before knocking again while
/// it still has no connection (doubling, up to [`BACKOFF_MAX_MS`]).
pub const KNOCK_AGAIN: Duration = Duration::from_secs(1);
/// How often the rooms release events held for the future (and expire
/// parked ones).
pub const RELEASE_EVERY: Duration = Duration::from_secs(1);
/// A knock does not close a connection younger than this: it is the
/// dialer's redial, not yet seen by the knocker.
pub const KNOCK_GRACE: Duration = Duration::from_secs(2);

/// What a connection task is asked to do.
#[derive(Debug)]
enum Command {
    Push(RoomId, SignedEvent, Option<TraceId>),
    Ephemeral(Ephemeral),
    RequestBlob(BlobId),
    Close(&'static str),
}

#[derive(Debug)]
struct Fetching {
    fetch: BlobFetch,
    from: NodeId,
    waiters: Vec<oneshot::Sender<std::result::Result<(), String>>>,
}

/// The live connection to a peer.
#[derive(Debug)]
struct Link {
    /// The connection's id, unique among this endpoint's connections.
    id: usize,
    conn: quinn::Connection,
    opened: Instant,
    commands: mpsc::Sender<Command>,
}

/// The loop that keeps a connection to one peer: dialling or knocking.
#[derive(Debug)]
struct Dialer {
    /// The peer's address (a new one replaces the old).
    addr: watch::Sender<SocketAddr>,
    /// Woken when the peer knocks: redial now.
    knocked: Arc<Notify>,
}

#[derive(Debug)]
struct Shared {
    key: NodeKey,
    name: String,
    rooms: Arc<Mutex<NodeRooms>>,
    store: Store,
    metrics: FederationMetrics,
    peers: Mutex<HashMap<NodeId, Link>>,
    /// Woken whenever a peer's link ends.
    link_lost: Notify,
    /// Each peer node's standing for invalid events, across connections.
    penalties: Mutex<HashMap<NodeId, Penalty>>,
    /// Turns true once on shutdown; every task watches it.
    stopping: watch::Sender<bool>,
    events: broadcast::Sender<(RoomId, SignedEvent, Option<TraceId>)>,
    ephemeral: broadcast::Sender<Ephemeral>,
    fetches: Mutex<HashMap<BlobId, Fetching>>,
    max_blob: AtomicU64,
    /// Each room's vector as each peer last reported it.
    views: Mutex<HashMap<(NodeId, RoomId), Vec<OriginHead>>>,
    /// Peers refused for now (connections closed, redials skipped).
    blocked: Mutex<std::collections::HashSet<NodeId>>,
    /// The keys the endpoint accepts (shared with its TLS configs).
    pins: PinSet,
    /// Each peer's dial (or knock) loop, one per peer.
    dialers: Mutex<HashMap<NodeId, Dialer>>,
}

/// A node's federation: its endpoint, its peers' connection tasks, and the
/// rooms they replicate.
#[derive(Debug, Clone)]
pub struct Federation {
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
}

/// An inbound frame waiting its turn: event batches wait for their
/// signatures to be checked.
#[derive(Debug)]
enum Inbound {
    Message(FedMessage),
    Events(RoomId, Option<TraceId>),
}

type Verification = tokio::task::JoinHandle<Vec<confab_wire::Result<VerifiedEvent>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Federation {
    /// Binds the endpoint and starts accepting pinned peers.
    pub fn start(
        key: NodeKey,
        name: &str,
        listen: SocketAddr,
        pins: PinSet,
        rooms: Arc<Mutex<NodeRooms>>,
    ) -> Result<Federation> {
        let pins_kept = pins.clone();
        let server = tls::server_config(&key, pins.clone(), &[FED_ALPN])?;
        let mut endpoint = quinn::Endpoint::server(server, listen).map_err(|e| Error::Io {
            path: listen.to_string().into(),
            source: e,
        })?;
        endpoint.set_default_client_config(tls::client_config(&key, pins, &[FED_ALPN])?);
        let (store, metrics) = {
            let r = lock(&rooms);
            (r.store().clone(), r.metrics().clone())
        };
        let fed = Federation {
            shared: Arc::new(Shared {
                key,
                name: name.to_string(),
                rooms,
                store,
                metrics,
                peers: Mutex::new(HashMap::new()),
                link_lost: Notify::new(),
                penalties: Mutex::new(HashMap::new()),
                stopping: watch::channel(false).0,
                events: broadcast::channel(NOTICE_CAPACITY).0,
                ephemeral: broadcast::channel(NOTICE_CAPACITY).0,
                fetches: Mutex::new(HashMap::new()),
                max_blob: AtomicU64::new(DEFAULT_MAX_BLOB),
                blocked: Mutex::new(std::collections::HashSet::new()),
                views: Mutex::new(HashMap::new()),
                pins: pins_kept,
                dialers: Mutex::new(HashMap::new()),
            }),
            endpoint,
        };
        let accepting = fed.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.endpoint.accept().await {
                let f = accepting.clone();
                tokio::spawn(async move {
                    match incoming.await {
                        Ok(conn) => {
                            if let Some(peer) = tls::peer_node_id(&conn) {
                                match conn.accept_bi().await {
                                    Ok((send, recv)) => f.serve(peer, conn, send, recv).await,
                                    Err(quinn::ConnectionError::ApplicationClosed(c))
                                        if c.error_code == KNOCK_CODE.into() =>
                                    {
                                        f.on_knock(peer)
                                    }
                                    Err(e) => tracing::debug!(error = %e, "peer opened no stream"),
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "federation handshake failed"),
                    }
                });
            }
        });
        let releasing = fed.clone();
        tokio::spawn(async move { releasing.release_held().await });
        Ok(fed)
    }

    /// Admits events held for the future once their time comes, and
    /// forwards them as if they had just arrived; drops parked events
    /// whose ancestors never came.
    async fn release_held(&self) {
        let mut stopping = self.shared.stopping.subscribe();
        let mut tick = tokio::time::interval(RELEASE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.changed() => return,
            }
            let released = {
                let mut rooms = lock(&self.shared.rooms);
                rooms.expire_parked(now_ms());
                rooms.release_due(now_ms())
            };
            let released = match released {
                Ok(r) if r.is_empty() => continue,
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "releasing held events failed");
                    continue;
                }
            };
            let store = self.shared.store.clone();
            match tokio::task::spawn_blocking(move || store.wait_logged()).await {
                Ok(Ok(())) => self.forward(None, released, None),
                // Not durable: not forwarded; anti-entropy offers them later.
                Ok(Err(e)) => tracing::error!(error = %e, "storing held events failed"),
                Err(e) => tracing::error!(error = %e, "storing held events failed"),
            }
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.endpoint.local_addr().map_err(|e| Error::Io {
            path: "federation endpoint".into(),
            source: e,
        })
    }

    /// Sets the largest blob fetched from peers.
    pub fn set_max_blob(&self, bytes: u64) {
        self.shared.max_blob.store(bytes, Ordering::Relaxed);
    }

    /// Events accepted from peers (durable), as they come. A subscriber
    /// that lags loses the oldest (and reads them from the store).
    pub fn subscribe(&self) -> broadcast::Receiver<(RoomId, SignedEvent, Option<TraceId>)> {
        self.shared.events.subscribe()
    }

    /// Ephemeral signals from peers, already checked (the user is of the
    /// sending peer and in the room).
    pub fn subscribe_ephemeral(&self) -> broadcast::Receiver<Ephemeral> {
        self.shared.ephemeral.subscribe()
    }

    /// Refuses `peer` until [`Federation::unblock`]: its connection is
    /// closed and neither side's dials are taken (operators removing a
    /// peer; tests cutting the network).
    pub fn block(&self, peer: NodeId) {
        lock(&self.shared.blocked).insert(peer);
        for s in self.senders(&[peer]) {
            let _ = s.try_send(Command::Close("blocked by this node"));
        }
    }

    /// Takes `peer` again.
    pub fn unblock(&self, peer: &NodeId) {
        lock(&self.shared.blocked).remove(peer);
    }

    /// Accepts `peer`'s key from now on (a peer added at run time).
    pub fn pin(&self, peer: NodeId) {
        self.shared.pins.insert(peer);
    }

    /// No longer accepts `peer`'s key (a removed peer).
    pub fn unpin(&self, peer: &NodeId) {
        self.shared.pins.remove(peer);
    }

    fn is_blocked(&self, peer: &NodeId) -> bool {
        lock(&self.shared.blocked).contains(peer)
    }

    /// The room's version vector as `peer` last reported it (what it
    /// holds; compare with this node's for replication lag).
    pub fn peer_view(&self, peer: &NodeId, room: &RoomId) -> Option<Vec<OriginHead>> {
        lock(&self.shared.views).get(&(*peer, *room)).cloned()
    }

    /// Events of the room this node holds and `peer` has not reported
    /// holding (by origin sequence); `None` before its first report.
    pub fn lag(&self, peer: &NodeId, room: &RoomId) -> Option<u64> {
        let theirs = self.peer_view(peer, room)?;
        let mine = lock(&self.shared.rooms).vector(room);
        Some(
            mine.iter()
                .map(|m| {
                    let t = theirs
                        .iter()
                        .find(|t| t.origin == m.origin)
                        .map_or(0, |t| t.seq);
                    m.seq.saturating_sub(t)
                })
                .sum(),
        )
    }

    /// Peers connected now.
    pub fn connected(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = lock(&self.shared.peers).keys().copied().collect();
        v.sort();
        v
    }

    fn senders(&self, to: &[NodeId]) -> Vec<mpsc::Sender<Command>> {
        let peers = lock(&self.shared.peers);
        to.iter()
            .filter_map(|p| peers.get(p).map(|l| l.commands.clone()))
            .collect()
    }

    /// Sends a new local event to the connected peers that take part in
    /// the room. Call without holding the rooms lock.
    /// `trace` follows the event to the peers' logs.
    pub fn publish(&self, room: RoomId, event: &SignedEvent, trace: Option<TraceId>) {
        let to = lock(&self.shared.rooms).room_peers(&room);
        if let Some(t) = trace {
            tracing::debug!(trace = %t, %room, event = %event.id(), peers = to.len(), "event to peers");
        }
        for p in self.senders(&to) {
            // A full queue drops the push; anti-entropy delivers it later.
            let _ = p.try_send(Command::Push(room, event.clone(), trace));
        }
    }

    /// Sends an event to one connected peer, whether or not it takes part
    /// in the room (re-sending by hand; tests that play an over-sharing
    /// peer). The peer decides what to keep.
    pub fn push_to(&self, peer: NodeId, room: RoomId, event: SignedEvent) {
        for p in self.senders(&[peer]) {
            let _ = p.try_send(Command::Push(room, event.clone(), None));
        }
    }

    /// Sends an ephemeral signal of a local user to the peers in its room
    /// (presence: to every connected peer). Dropped where queues are full.
    pub fn send_ephemeral(&self, e: Ephemeral) {
        let to = match &e.room {
            Some(room) => lock(&self.shared.rooms).room_peers(room),
            None => self.connected(),
        };
        for p in self.senders(&to) {
            let _ = p.try_send(Command::Ephemeral(e.clone()));
        }
    }

    /// Makes sure the blob is in the store, fetching it from the first of
    /// `sources` (connected peers, in order) that delivers it whole with
    /// the right hash.
    pub async fn fetch_blob(&self, blob: BlobId, sources: &[NodeId]) -> Result<()> {
        if self.shared.store.blob_size(&blob)?.is_some() {
            return Ok(());
        }
        let mut last = String::from("no connected peer holds it");
        for peer in sources {
            let Some(sender) = self.senders(&[*peer]).pop() else {
                continue;
            };
            let (tx, rx) = oneshot::channel();
            let start = {
                let mut fetches = lock(&self.shared.fetches);
                if let Some(f) = fetches.get_mut(&blob) {
                    f.waiters.push(tx);
                    false
                } else if fetches.len() >= FETCHES_MAX {
                    return Err(Error::Refused {
                        reason: "too many blobs are being fetched; try again shortly".into(),
                    });
                } else {
                    let max = self.shared.max_blob.load(Ordering::Relaxed);
                    fetches.insert(
                        blob,
                        Fetching {
                            fetch: BlobFetch::new(blob, max),
                            from: *peer,
                            waiters: vec![tx],
                        },
                    );
                    true
                }
            };
            if start && sender.send(Command::RequestBlob(blob)).await.is_err() {
                self.finish_fetch(&blob, Err("the peer went away".into()));
                continue;
            }
            match tokio::time::timeout(FETCH_TIMEOUT, rx).await {
                Ok(Ok(Ok(()))) => return Ok(()),
                Ok(Ok(Err(reason))) => last = reason,
                Ok(Err(_)) => last = "the fetch was dropped".into(),
                Err(_) => {
                    last = format!("{} did not deliver it in time", peer.short());
                    self.finish_fetch(&blob, Err(last.clone()));
                }
            }
            if self.shared.store.blob_size(&blob)?.is_some() {
                return Ok(());
            }
        }
        Err(Error::Refused {
            reason: format!("cannot fetch blob {blob}: {last}"),
        })
    }

    fn finish_fetch(&self, blob: &BlobId, result: std::result::Result<(), String>) {
        if let Some(f) = lock(&self.shared.fetches).remove(blob) {
            for w in f.waiters {
                let _ = w.send(result.clone());
            }
        }
    }

    /// Stops: closes every connection with a reason, ends every task and
    /// waits until the endpoint is idle (its port is then free again).
    pub async fn shutdown(&self) {
        self.shared.stopping.send_replace(true);
        self.endpoint.close(0u32.into(), b"shutting down");
        self.endpoint.wait_idle().await;
    }

    /// Closes every connection without waiting.
    pub fn close(&self) {
        self.shared.stopping.send_replace(true);
        self.endpoint.close(0u32.into(), b"shutting down");
    }

    async fn serve(
        &self,
        peer: NodeId,
        conn: quinn::Connection,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) {
        if self.is_blocked(&peer) {
            conn.close(3u32.into(), b"blocked");
            return;
        }
        let (tx, mut commands) = mpsc::channel(PEER_QUEUE_DEPTH);
        let id = conn.stable_id();
        let replaced = lock(&self.shared.peers).insert(
            peer,
            Link {
                id,
                conn: conn.clone(),
                opened: Instant::now(),
                commands: tx,
            },
        );
        if let Some(old) = replaced {
            // The peer made a new connection: the old one is dead to it.
            old.conn
                .close(5u32.into(), b"replaced by a newer connection");
        }
        let label = PeerLabel {
            peer: peer.short().to_string(),
        };
        self.shared
            .metrics
            .peer_connected
            .get_or_create(&label)
            .set(1);
        let seed = now_ms() ^ u64::from_le_bytes(peer.as_bytes()[..8].try_into().unwrap_or([7; 8]));
        let mut machine = PeerSync::new(
            sync::hello(self.shared.key.node_id(), &self.shared.name),
            peer,
            now_ms(),
            seed,
        );
        if let Some(p) = lock(&self.shared.penalties).get(&peer) {
            machine.resume(*p, now_ms());
        }
        let mut decoder = FrameDecoder::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut inbound: VecDeque<Inbound> = VecDeque::new();
        let mut verifying: VecDeque<Verification> = VecDeque::new();
        let mut verified: VecDeque<Vec<confab_wire::Result<VerifiedEvent>>> = VecDeque::new();
        let mut strikes = machine.strikes();
        let mut stopping = self.shared.stopping.subscribe();
        tracing::info!(peer = %peer.short(), remote = %conn.remote_address(), "peer connected");
        'conn: loop {
            // Act on what is ready, in order.
            while let Some(Inbound::Message(_)) = inbound.front() {
                if let Some(Inbound::Message(msg)) = inbound.pop_front() {
                    self.on_message(&peer, &mut machine, msg);
                }
            }
            if machine.strikes() > strikes {
                strikes = machine.strikes();
                lock(&self.shared.penalties).insert(peer, machine.penalty());
                self.shared.metrics.peer_strikes.get_or_create(&label).inc();
                tracing::warn!(peer = %peer.short(), strikes, "peer sends invalid events; slowing it down");
            }
            // Write whatever the machine has to say.
            let mut out = Vec::new();
            while let Some(msg) = machine.poll_transmit() {
                if let FedMessage::Events(b) = &msg {
                    self.shared
                        .metrics
                        .events_sent
                        .get_or_create(&label)
                        .inc_by(b.events.len() as u64);
                }
                if let Err(e) = msg.encode(&mut out) {
                    tracing::warn!(error = %e, "dropping an unencodable frame");
                }
            }
            if !out.is_empty() && send.write_all(&out).await.is_err() {
                break;
            }
            if let Some(reason) = machine.closed() {
                tracing::warn!(peer = %peer.short(), reason, "closing connection");
                conn.close(1u32.into(), reason.as_bytes());
                break;
            }
            let now = now_ms();
            let paused = machine.paused_until(now);
            let deadline = [machine.poll_timeout(), paused]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + 60_000);
            let sleep = Duration::from_millis(deadline.saturating_sub(now));
            let may_read = paused.is_none() && verifying.len() + verified.len() < VERIFYING_MAX;
            tokio::select! {
                read = recv.read(&mut buf), if may_read => {
                    let n = match read {
                        Ok(Some(n)) => n,
                        _ => break,
                    };
                    decoder.push(&buf[..n]);
                    loop {
                        match decoder.next_frame() {
                            Ok(Some(frame)) => match FedMessage::decode(&frame) {
                                Ok(FedMessage::Events(batch)) => {
                                    let events = batch.events;
                                    verifying.push_back(tokio::task::spawn_blocking(move || {
                                        sync::verify_batch(events)
                                    }));
                                    inbound.push_back(Inbound::Events(batch.room, batch.trace));
                                }
                                Ok(msg) => inbound.push_back(Inbound::Message(msg)),
                                Err(e) => tracing::debug!(peer = %peer.short(), error = %e, "skipping a frame"),
                            },
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(peer = %peer.short(), error = %e, "bad framing; closing");
                                conn.close(2u32.into(), b"bad framing");
                                break 'conn;
                            }
                        }
                    }
                }
                result = async {
                    match verifying.front_mut() {
                        Some(h) => h.await,
                        None => std::future::pending().await,
                    }
                }, if !verifying.is_empty() => {
                    verifying.pop_front();
                    // A panicked check drops the batch; anti-entropy resends it.
                    verified.push_back(result.unwrap_or_default());
                }
                Some(cmd) = commands.recv() => match cmd {
                    Command::Push(room, ev, trace) => machine.push(room, ev, trace),
                    Command::Ephemeral(e) => machine.send_ephemeral(e),
                    Command::RequestBlob(blob) => machine.request_blob(blob, 0),
                    Command::Close(reason) => {
                        conn.close(3u32.into(), reason.as_bytes());
                        break;
                    }
                },
                _ = tokio::time::sleep(sleep) => {
                    let rooms = lock(&self.shared.rooms);
                    machine.handle_timeout(now_ms(), &*rooms);
                }
                _ = stopping.changed() => break,
            }
            // Batches whose signatures are checked, in order.
            while matches!(inbound.front(), Some(Inbound::Events(..))) && !verified.is_empty() {
                let (Some(Inbound::Events(room, trace)), Some(results)) =
                    (inbound.pop_front(), verified.pop_front())
                else {
                    break;
                };
                let mut effects = {
                    let mut rooms = lock(&self.shared.rooms);
                    machine.handle_events(now_ms(), room, results, &mut *rooms)
                };
                effects.trace = trace;
                // Durable before it is announced or passed on, waited for
                // off the rooms lock and off the async workers.
                if !effects.accepted.is_empty() {
                    let store = self.shared.store.clone();
                    let durable = tokio::task::spawn_blocking(move || store.wait_logged()).await;
                    if !matches!(durable, Ok(Ok(()))) {
                        // Anti-entropy offers them again.
                        tracing::error!(peer = %peer.short(), "storing events from a peer failed");
                        effects.accepted.clear();
                    }
                }
                self.act(&peer, &mut machine, effects);
                while let Some(Inbound::Message(_)) = inbound.front() {
                    if let Some(Inbound::Message(msg)) = inbound.pop_front() {
                        self.on_message(&peer, &mut machine, msg);
                    }
                }
            }
        }
        let ours = {
            let mut peers = lock(&self.shared.peers);
            let ours = peers.get(&peer).is_some_and(|l| l.id == id);
            if ours {
                peers.remove(&peer);
            }
            ours
        };
        self.shared.metrics.disconnects.get_or_create(&label).inc();
        if ours {
            self.shared
                .metrics
                .peer_connected
                .get_or_create(&label)
                .set(0);
            self.shared.link_lost.notify_waiters();
        }
        // Fetches from this peer fail now rather than at their timeout.
        let failed: Vec<BlobId> = lock(&self.shared.fetches)
            .iter()
            .filter(|(_, f)| f.from == peer)
            .map(|(b, _)| *b)
            .collect();
        for b in failed {
            self.finish_fetch(&b, Err("the peer disconnected".into()));
        }
        tracing::info!(peer = %peer.short(), "peer disconnected");
    }

    /// A frame other than events (those take the verification pipeline
    /// and are made durable before they are acted on).
    fn on_message(&self, peer: &NodeId, machine: &mut PeerSync, msg: FedMessage) {
        if let FedMessage::VersionVector(v) = &msg {
            lock(&self.shared.views).insert((*peer, v.room), v.origins.clone());
        }
        let effects = {
            let mut rooms = lock(&self.shared.rooms);
            machine.handle_message(now_ms(), msg, &mut *rooms)
        };
        self.act(peer, machine, effects);
    }

    /// Counts and announces events newly stored from peers, and pushes
    /// them to the room's other connected peers (not back to `from`).
    fn forward(
        &self,
        from: Option<&NodeId>,
        accepted: Vec<(RoomId, SignedEvent)>,
        trace: Option<TraceId>,
    ) {
        self.shared
            .metrics
            .events_accepted
            .inc_by(accepted.len() as u64);
        let mut by_room: HashMap<RoomId, Vec<NodeId>> = HashMap::new();
        {
            let rooms = lock(&self.shared.rooms);
            for (room, _) in &accepted {
                by_room
                    .entry(*room)
                    .or_insert_with(|| rooms.room_peers(room));
            }
        }
        for (room, ev) in accepted {
            let to: Vec<NodeId> = by_room
                .get(&room)
                .map(|v| v.iter().filter(|p| Some(*p) != from).copied().collect())
                .unwrap_or_default();
            for p in self.senders(&to) {
                let _ = p.try_send(Command::Push(room, ev.clone(), trace));
            }
            let _ = self.shared.events.send((room, ev, trace));
        }
    }

    /// Acts on a frame's effects: forwards accepted events, announces
    /// them and the peer's signals, and moves blob fetches along.
    fn act(&self, from: &NodeId, machine: &mut PeerSync, effects: Effects) {
        if !effects.accepted.is_empty() {
            if let Some(t) = effects.trace {
                tracing::debug!(trace = %t, peer = %from.short(), events = effects.accepted.len(), "events accepted from a peer");
            }
            self.forward(Some(from), effects.accepted, effects.trace);
        }
        for e in effects.ephemeral {
            let _ = self.shared.ephemeral.send(e);
        }
        for blob in effects.blobs_missing {
            let ours = lock(&self.shared.fetches)
                .get(&blob)
                .is_some_and(|f| f.from == *from);
            if ours {
                self.finish_fetch(&blob, Err(format!("{} does not hold it", from.short())));
            }
        }
        for chunk in effects.blob_chunks {
            let outcome = {
                let mut fetches = lock(&self.shared.fetches);
                match fetches.get_mut(&chunk.blob) {
                    Some(f) if f.from == *from => f.fetch.on_chunk(&chunk),
                    _ => None,
                }
            };
            match outcome {
                None => {}
                Some(ChunkOutcome::Next(offset)) => machine.request_blob(chunk.blob, offset),
                Some(ChunkOutcome::Done(bytes)) => {
                    let stored = self
                        .shared
                        .store
                        .put_blob(&bytes)
                        .and_then(|_| self.shared.store.wait_durable());
                    match stored {
                        Ok(()) => {
                            self.shared.metrics.blobs_fetched.inc();
                            self.finish_fetch(&chunk.blob, Ok(()));
                        }
                        Err(e) => self.finish_fetch(&chunk.blob, Err(e.to_string())),
                    }
                }
                Some(ChunkOutcome::Failed(why)) => {
                    tracing::warn!(peer = %from.short(), blob = %chunk.blob, why, "blob fetch failed");
                    self.finish_fetch(&chunk.blob, Err(format!("{}: {why}", from.short())));
                }
            }
        }
    }
}
