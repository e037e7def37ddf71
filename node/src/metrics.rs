//! The node's Prometheus metrics (prometheus-client), registered once and
//! updated where things happen.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A reason label (`refused:bad_signature`, `rejected:muted`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The short stable code.
    pub reason: String,
}

/// A peer label (the node id's short form).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    /// The peer.
    pub peer: String,
}

/// Federation metrics. Cloning shares the counters.
#[derive(Clone, Debug, Default)]
pub struct FederationMetrics {
    /// Events from peers refused or rejected, by reason.
    pub events_rejected: Family<ReasonLabel, Counter>,
    /// Events from peers newly stored.
    pub events_accepted: Counter,
    /// 1 while connected to the peer, else 0.
    pub peer_connected: Family<PeerLabel, Gauge>,
    /// Times a peer was slowed down or disconnected for invalid events.
    pub peer_strikes: Family<PeerLabel, Counter>,
    /// Events sent to each peer.
    pub events_sent: Family<PeerLabel, Counter>,
    /// Connections to each peer that ended (closed, replaced by a newer
    /// one, or timed out): a flapping link shows here.
    pub disconnects: Family<PeerLabel, Counter>,
    /// Knocks taken from each peer: it had no connection and asked this
    /// node (its dialer) to redial.
    pub knocks: Family<PeerLabel, Counter>,
    /// Rooms in which an origin node was caught signing two events at one
    /// sequence, by that origin (each room counted once).
    pub equivocations: Family<PeerLabel, Counter>,
    /// Blobs fetched from peers.
    pub blobs_fetched: Counter,
}

impl FederationMetrics {
    /// Registers every metric under `confab_federation_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("confab_federation");
        r.register(
            "events_rejected",
            "Events from peers refused (bad signature, malformed, …) or rejected by room rules, by reason",
            self.events_rejected.clone(),
        );
        r.register(
            "events_accepted",
            "Events from peers newly stored",
            self.events_accepted.clone(),
        );
        r.register(
            "peer_connected",
            "1 while a connection to the peer is up",
            self.peer_connected.clone(),
        );
        r.register(
            "equivocations",
            "Rooms in which an origin node was caught signing two events at one sequence",
            self.equivocations.clone(),
        );
        r.register(
            "peer_strikes",
            "Times a peer was slowed down or disconnected for sending invalid events",
            self.peer_strikes.clone(),
        );
        r.register(
            "events_sent",
            "Events sent to the peer",
            self.events_sent.clone(),
        );
        r.register(
            "disconnects",
            "Connections to the peer that ended (closed, replaced or timed out)",
            self.disconnects.clone(),
        );
        r.register(
            "knocks",
            "Times a peer that had no connection asked this node to redial it",
            self.knocks.clone(),
        );
        r.register(
            "blobs_fetched",
            "Blobs fetched from peers and stored",
            self.blobs_fetched.clone(),
        );
    }
}

/// Storage metrics: group commit sizes and latencies. Cloning shares them.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// Writes made durable by one flush (the group commit's batch size).
    pub flush_batch: Histogram,
    /// Seconds one flush of the database takes.
    pub flush_seconds: Histogram,
    /// Seconds a writer waits until its write is durable.
    pub durable_wait_seconds: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            flush_batch: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            flush_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            durable_wait_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
        }
    }
}

impl StoreMetrics {
    /// Registers every metric under `confab_store_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("confab_store");
        r.register(
            "flush_batch",
            "Writes made durable by one flush (group commit batch size)",
            self.flush_batch.clone(),
        );
        r.register(
            "flush_seconds",
            "Time one flush of the database takes",
            self.flush_seconds.clone(),
        );
        r.register(
            "durable_wait_seconds",
            "Time a writer waits until its write is durable",
            self.durable_wait_seconds.clone(),
        );
    }
}

/// The node's own gauges, refreshed every few seconds. Cloning shares them.
#[derive(Clone, Debug, Default)]
pub struct NodeMetrics {
    /// Rooms held.
    pub rooms: Gauge,
    /// Rooms where the node is catching up with its own chain.
    pub rooms_catching_up: Gauge,
    /// Local accounts.
    pub users: Gauge,
    /// Gateways connected.
    pub gateways: Gauge,
    /// Browser sessions across the gateways.
    pub sessions: Gauge,
    /// Events of shared rooms a peer has not reported holding.
    pub peer_lag: Family<PeerLabel, Gauge>,
    /// Bytes the store takes on disk.
    pub storage_bytes: Gauge,
    /// Uploads in progress.
    pub uploads: Gauge,
}

impl NodeMetrics {
    /// Registers every metric under `confab_node_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("confab_node");
        r.register("rooms", "Rooms this node holds", self.rooms.clone());
        r.register(
            "rooms_catching_up",
            "Rooms where this node waits to hear its own latest events from peers before posting",
            self.rooms_catching_up.clone(),
        );
        r.register("users", "Local accounts", self.users.clone());
        r.register("gateways", "Gateways connected", self.gateways.clone());
        r.register(
            "sessions",
            "Browser sessions across the connected gateways",
            self.sessions.clone(),
        );
        r.register(
            "peer_lag_events",
            "Events of shared rooms this node holds that the peer has not reported holding",
            self.peer_lag.clone(),
        );
        r.register(
            "storage_bytes",
            "Bytes the store takes on disk",
            self.storage_bytes.clone(),
        );
        r.register("uploads", "Uploads in progress", self.uploads.clone());
    }
}

/// The text exposition of a registry, in the classic Prometheus format
/// (see [`confab_gateway::metrics::render`]).
pub fn render(registry: &Registry) -> String {
    confab_gateway::metrics::render(registry)
}
