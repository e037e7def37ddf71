//! The gateway's metrics (prometheus-client): sockets, rooms followed and
//! subscriptions, messages in and out, request latency by type, limit
//! refusals and the node connection.
//!
//! Labels are bounded vocabularies of the code (request types, limit
//! names), never room ids, user ids or names: whoever can scrape the
//! metrics must not learn who talks where.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label: a request type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    /// The request type (`send`, `history`, …).
    pub r#type: String,
}

/// Label: what was limited.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    /// `requests`, `logins`, `connections`.
    pub limit: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

/// Every metric of one gateway; cloning shares them.
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    /// Open WebSockets.
    pub sockets: Gauge,
    /// Rooms some socket follows.
    pub rooms_followed: Gauge,
    /// Room subscriptions over all sockets.
    pub subscriptions: Gauge,
    /// Messages browsers sent (`send` requests).
    pub messages_in: Counter,
    /// Room events delivered to sockets.
    pub messages_out: Counter,
    /// Request latency, seconds, by type.
    pub request_seconds: Family<TypeLabel, Histogram, fn() -> Histogram>,
    /// Requests refused by a limit.
    pub limited: Family<LimitLabel, Counter>,
    /// 1 while the node connection is up.
    pub node_up: Gauge,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        GatewayMetrics {
            sockets: Gauge::default(),
            rooms_followed: Gauge::default(),
            subscriptions: Gauge::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            limited: Family::default(),
            node_up: Gauge::default(),
        }
    }
}

impl GatewayMetrics {
    /// Registers every metric under `confab_gateway_`.
    pub fn registry(&self) -> Arc<Registry> {
        let mut r = Registry::with_prefix("confab_gateway");
        r.register("sockets", "Open WebSockets", self.sockets.clone());
        r.register(
            "rooms_followed",
            "Rooms some socket follows",
            self.rooms_followed.clone(),
        );
        r.register(
            "subscriptions",
            "Room subscriptions over all sockets",
            self.subscriptions.clone(),
        );
        r.register(
            "messages_in",
            "Messages sent by browsers",
            self.messages_in.clone(),
        );
        r.register(
            "messages_out",
            "Room events delivered to sockets",
            self.messages_out.clone(),
        );
        r.register(
            "request_seconds",
            "Request latency by request type",
            self.request_seconds.clone(),
        );
        r.register(
            "limited",
            "Requests and connections refused by a limit",
            self.limited.clone(),
        );
        r.register(
            "node_up",
            "Whether the connection to the node is up",
            self.node_up.clone(),
        );
        Arc::new(r)
    }

    /// Counts a refusal by a limit.
    pub fn limited(&self, what: &str) {
        self.limited
            .get_or_create(&LimitLabel {
                limit: what.to_string(),
            })
            .inc();
    }
}

/// The content type of [`render`]'s output.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry in the classic Prometheus text format (0.0.4), which every
/// Prometheus scrapes and `promtool check metrics` reads.
pub fn render(registry: &Registry) -> String {
    let mut open = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut open, registry);
    classic_text(&open)
}

/// OpenMetrics text (what prometheus-client writes) as classic text: a
/// counter's HELP and TYPE name its `_total` samples, and there are no
/// `# UNIT` or `# EOF` lines.
pub fn classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some(h) = help.replace(rest) {
                push_line(&mut out, &format!("# HELP {h}"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = if kind == "counter" && !name.ends_with("_total") {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                push_line(&mut out, &format!("# HELP {name} {text}"));
            }
            push_line(&mut out, &format!("# TYPE {name} {kind}"));
            continue;
        }
        if let Some(h) = help.take() {
            push_line(&mut out, &format!("# HELP {h}"));
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        push_line(&mut out, line);
    }
    if let Some(h) = help {
        push_line(&mut out, &format!("# HELP {h}"));
    }
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

#[cfg(test)]
mod classic_tests {
    use super::classic_text;

    #[test]
    fn counters_are_named_by_their_samples() {
        let open = "# HELP x_events Events.\n# TYPE x_events counter\nx_events_total 3\n\
                    # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n# EOF\n";
        assert_eq!(
            classic_text(open),
            "# HELP x_events_total Events.\n# TYPE x_events_total counter\nx_events_total 3\n\
             # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n"
        );
    }
}
