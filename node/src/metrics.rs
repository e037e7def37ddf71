//! The node's Prometheus metrics (prometheus-client), registered once and
//! updated where things happen.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
            "blobs_fetched",
            "Blobs fetched from peers and stored",
            self.blobs_fetched.clone(),
        );
    }
}

/// The text exposition of a registry.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}
