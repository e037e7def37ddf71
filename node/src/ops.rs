//! The node's HTTP endpoint for operators: `/metrics` (Prometheus text
//! format from prometheus-client), `/health/live` and `/health/ready`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::error::{Error, Result};

/// What the endpoint serves.
#[derive(Clone, Debug)]
pub struct Ops {
    registries: Arc<RwLock<Vec<Arc<Registry>>>>,
    ready: Arc<AtomicBool>,
}

impl Ops {
    /// Serves `registry`; not ready until [`Ops::set_ready`].
    pub fn new(registry: Registry) -> Ops {
        Ops {
            registries: Arc::new(RwLock::new(vec![Arc::new(registry)])),
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Serves `registry` too (the in-process gateway's, whose metrics go
    /// here rather than on the chat's address).
    pub fn add(&self, registry: Arc<Registry>) {
        self.registries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(registry);
    }

    /// Ready: the store is open and the federation endpoint bound.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Binds `listen` and serves until `stop` resolves; returns the bound
    /// address at once.
    pub async fn serve(
        self,
        listen: SocketAddr,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::Io {
                path: listen.to_string().into(),
                source: e,
            })?;
        let addr = listener.local_addr().map_err(|e| Error::Io {
            path: listen.to_string().into(),
            source: e,
        })?;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/health/live", get(|| async { "ok\n" }))
            .route("/health/ready", get(ready))
            .with_state(self);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "the metrics endpoint failed");
            }
        });
        Ok(addr)
    }
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, confab_gateway::metrics::TEXT_FORMAT)],
        ops.registries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|r| crate::metrics::render(r))
            .collect::<String>(),
    )
}

async fn ready(State(ops): State<Ops>) -> impl IntoResponse {
    if ops.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{FederationMetrics, ReasonLabel};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn metrics_and_health_are_served() {
        let fed = FederationMetrics::default();
        let mut registry = Registry::default();
        fed.register(&mut registry);
        fed.events_rejected
            .get_or_create(&ReasonLabel {
                reason: "refused:bad_signature".into(),
            })
            .inc();
        let ops = Ops::new(registry);
        let addr = ops
            .clone()
            .serve("127.0.0.1:0".parse().unwrap(), std::future::pending())
            .await
            .unwrap();
        let m = get(addr, "/metrics").await;
        assert!(m.starts_with("HTTP/1.1 200"), "{m}");
        assert!(
            m.contains(
                "confab_federation_events_rejected_total{reason=\"refused:bad_signature\"} 1"
            ),
            "{m}"
        );
        assert!(get(addr, "/health/live").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/health/ready").await.starts_with("HTTP/1.1 503"));
        ops.set_ready(true);
        assert!(get(addr, "/health/ready").await.starts_with("HTTP/1.1 200"));
    }
}
