//! The HTTP server: our own accept loop over hyper, because the bounds on
//! connections live here (`[http]` in `gateway.toml`):
//!
//! - **connections in all** (`max_connections`) and **per address**
//!   (`max_connections_per_address`; trusted proxies excepted, their
//!   clients are counted by the sockets they open): over either, a new
//!   connection is closed at once, so the server never runs out of file
//!   descriptors and one address cannot crowd out the rest;
//! - **header read timeout** (`header_read_timeout_secs`): a connection
//!   that does not finish a request's headers in time, or idles that long
//!   between requests, is closed: a silent or slow client costs one slot
//!   for a bounded time.
//!
//! A connection's slot is held as long as anything of it lives, an
//! upgraded WebSocket included: every request carries the slot
//! ([`ConnSlot`]) in its extensions, and the WebSocket task keeps it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

use crate::State;

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

#[derive(Debug, Default)]
struct Shared {
    counts: Mutex<Counts>,
    /// Woken when the last connection goes.
    idle: tokio::sync::Notify,
}

impl Shared {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One open connection's place in the counts; freed when dropped.
#[derive(Debug)]
pub struct ConnSlot {
    shared: Arc<Shared>,
    addr: Option<IpAddr>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut c = self.shared.counts();
        c.total -= 1;
        if let Some(a) = self.addr
            && let Some(n) = c.by_address.get_mut(&a)
        {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&a);
            }
        }
        if c.total == 0 {
            self.shared.idle.notify_waiters();
        }
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    Total,
    Address,
}

fn admit(
    shared: &Arc<Shared>,
    peer: IpAddr,
    counted: bool,
    total_max: usize,
    per_address_max: usize,
) -> Result<ConnSlot, Full> {
    let mut c = shared.counts();
    if c.total >= total_max {
        return Err(Full::Total);
    }
    if counted && c.by_address.get(&peer).copied().unwrap_or(0) >= per_address_max {
        return Err(Full::Address);
    }
    c.total += 1;
    if counted {
        *c.by_address.entry(peer).or_default() += 1;
    }
    Ok(ConnSlot {
        shared: shared.clone(),
        addr: counted.then_some(peer),
    })
}

/// Serves `app` on `listener` until `stop` resolves; then connections
/// finish the requests they are serving and close, and this returns once
/// the last one (WebSockets included, which close themselves on the
/// gateway's stop) is gone.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    state: Arc<State>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let http = &state.config.http;
    let total_max = http.max_connections as usize;
    let per_address_max = http.max_connections_per_address as usize;
    let header_timeout = Duration::from_secs(u64::from(http.header_read_timeout_secs));
    let shared = Arc::new(Shared::default());
    let (closing, _) = tokio::sync::watch::channel(false);
    tokio::pin!(stop);
    let mut logged: HashMap<IpAddr, std::time::Instant> = HashMap::new();
    loop {
        let (tcp, remote) = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment
                    // rather than spin; the bounds above keep this rare.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let peer = remote.ip();
        let counted = !state.config.http.trusted_proxies.trusts(peer);
        let slot = match admit(&shared, peer, counted, total_max, per_address_max) {
            Ok(s) => s,
            Err(full) => {
                let what = match full {
                    Full::Total => "connections",
                    Full::Address => "connections_per_address",
                };
                state.metrics.limited(what);
                let now = std::time::Instant::now();
                if logged.len() > 10_000 {
                    logged.clear();
                }
                let due = logged
                    .get(&peer)
                    .is_none_or(|t| now.duration_since(*t) > Duration::from_secs(3600));
                if due {
                    logged.insert(peer, now);
                    tracing::warn!(%peer, limit = what, "connection refused by a limit (logged once an hour per address)");
                }
                drop(tcp);
                continue;
            }
        };
        // A chat writes many small frames: Nagle's algorithm would hold
        // each behind the previous one's ACK (tens of ms on quiet sockets).
        let _ = tcp.set_nodelay(true);
        let slot = Arc::new(slot);
        let app = app.clone();
        let mut closing = closing.subscribe();
        tokio::spawn(async move {
            let conn_slot = slot.clone();
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let mut req = req.map(Body::new);
                req.extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                req.extensions_mut().insert(conn_slot.clone());
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.oneshot(req).await.into_response_infallible()) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let conn = builder
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::trace!(error = %e, "connection ended");
                    }
                }
                () = async { let _ = closing.wait_for(|c| *c).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
        });
    }
    closing.send_replace(true);
    loop {
        let idle = shared.idle.notified();
        if shared.counts().total == 0 {
            return;
        }
        idle.await;
    }
}

trait IntoResponseInfallible {
    fn into_response_infallible(self) -> axum::response::Response;
}

impl IntoResponseInfallible for Result<axum::response::Response, Infallible> {
    fn into_response_infallible(self) -> axum::response::Response {
        match self {
            Ok(r) => r,
            Err(e) => match e {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_in_all_and_per_address() {
        let counts = Arc::new(Shared::default());
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let s1 = admit(&counts, a, true, 3, 2).ok();
        let s2 = admit(&counts, a, true, 3, 2).ok();
        assert!(s1.is_some() && s2.is_some());
        assert_eq!(admit(&counts, a, true, 3, 2).err(), Some(Full::Address));
        let s3 = admit(&counts, b, true, 3, 2).ok();
        assert!(s3.is_some());
        assert_eq!(admit(&counts, b, true, 3, 2).err(), Some(Full::Total));
        drop(s1);
        // A freed slot is free again, for the same address.
        assert!(admit(&counts, a, true, 3, 2).is_ok());
        // A trusted proxy is not counted per address.
        drop((s2, s3));
        let p: Vec<_> = (0..3)
            .map(|_| admit(&counts, a, false, 3, 1).ok())
            .collect();
        assert!(p.iter().all(Option::is_some));
    }
}
