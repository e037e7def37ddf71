//! Keeping one link per peer: the dialer's redial loop with backoff, and
//! the other side's knocks (see the module above for why).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use confab_wire::NodeId;
use tokio::sync::{Notify, watch};

use super::{
    BACKOFF_MAX_MS, BACKOFF_MIN_MS, Dialer, Federation, KNOCK_AGAIN, KNOCK_CODE, KNOCK_GRACE, lock,
};
use crate::metrics::PeerLabel;
use crate::tls;

impl Federation {
    /// Keeps a connection to `peer` at `addr`: dials it if this node's id
    /// is the smaller, else knocks whenever there is no connection.
    pub fn connect(&self, peer: NodeId, addr: SocketAddr) {
        let (target, knocked) = {
            let mut dialers = lock(&self.shared.dialers);
            if let Some(d) = dialers.get(&peer) {
                // Already kept: the next attempt goes to the new address.
                d.addr.send_replace(addr);
                return;
            }
            let (tx, rx) = watch::channel(addr);
            let knocked = Arc::new(Notify::new());
            dialers.insert(
                peer,
                Dialer {
                    addr: tx,
                    knocked: knocked.clone(),
                },
            );
            (rx, knocked)
        };
        let f = self.clone();
        if self.shared.key.node_id() < peer {
            tokio::spawn(async move { f.dial(peer, target, knocked).await });
        } else {
            tokio::spawn(async move { f.knock_when_unlinked(peer, target).await });
        }
    }

    async fn dial(
        &self,
        peer: NodeId,
        mut target: watch::Receiver<SocketAddr>,
        knocked: Arc<Notify>,
    ) {
        let mut stopping = self.shared.stopping.subscribe();
        let mut backoff = BACKOFF_MIN_MS;
        let mut jitter = u64::from_le_bytes(peer.as_bytes()[..8].try_into().unwrap_or([1; 8])) | 1;
        loop {
            let dialed = async {
                if self.is_blocked(&peer) {
                    return Err("peer is blocked".to_string());
                }
                let addr = *target.borrow_and_update();
                let conn = self.handshake(peer, addr).await?;
                let (send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((conn, send, recv))
            }
            .await;
            match dialed {
                Ok((conn, send, recv)) => {
                    backoff = BACKOFF_MIN_MS;
                    self.serve(peer, conn, send, recv).await;
                }
                Err(e) => tracing::debug!(peer = %peer.short(), error = %e, "dial failed"),
            }
            jitter ^= jitter << 13;
            jitter ^= jitter >> 7;
            jitter ^= jitter << 17;
            let wait = backoff / 2 + jitter % (backoff / 2 + 1);
            if *stopping.borrow() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                // A new address is tried at once, and so is a knocking peer.
                Ok(()) = target.changed() => backoff = BACKOFF_MIN_MS,
                () = knocked.notified() => backoff = BACKOFF_MIN_MS,
                _ = stopping.changed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX_MS);
        }
    }

    /// The side that does not dial: while it has no connection to `peer`,
    /// knocks (at once, then less and less often).
    async fn knock_when_unlinked(&self, peer: NodeId, mut target: watch::Receiver<SocketAddr>) {
        let mut stopping = self.shared.stopping.subscribe();
        let mut wait = KNOCK_AGAIN;
        loop {
            if *stopping.borrow() {
                return;
            }
            let lost = self.shared.link_lost.notified();
            tokio::pin!(lost);
            lost.as_mut().enable();
            if self.is_linked(&peer) {
                tokio::select! {
                    () = &mut lost => wait = KNOCK_AGAIN,
                    _ = stopping.changed() => return,
                }
                continue;
            }
            if !self.is_blocked(&peer) {
                let addr = *target.borrow_and_update();
                match self.knock(peer, addr).await {
                    Ok(()) => tracing::debug!(peer = %peer.short(), "knocked: no connection"),
                    Err(e) => tracing::debug!(peer = %peer.short(), error = %e, "knock failed"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                Ok(()) = target.changed() => {}
                _ = stopping.changed() => return,
            }
            wait = (wait * 2).min(Duration::from_millis(BACKOFF_MAX_MS));
        }
    }

    async fn knock(&self, peer: NodeId, addr: SocketAddr) -> std::result::Result<(), String> {
        let conn = self.handshake(peer, addr).await?;
        conn.close(KNOCK_CODE.into(), b"no connection here; redial");
        Ok(())
    }

    /// A connection to `peer` at `addr`, once its TLS handshake is done.
    async fn handshake(
        &self,
        peer: NodeId,
        addr: SocketAddr,
    ) -> std::result::Result<quinn::Connection, String> {
        self.endpoint
            .connect(addr, &tls::server_name(&peer))
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())
    }

    /// A peer knocked: it has no connection to this node, so the one this
    /// node holds (unless just made) is dead; close it and redial now.
    pub(super) fn on_knock(&self, peer: NodeId) {
        if self.shared.key.node_id() >= peer || self.is_blocked(&peer) {
            return;
        }
        self.shared
            .metrics
            .knocks
            .get_or_create(&PeerLabel {
                peer: peer.short().to_string(),
            })
            .inc();
        if let Some(link) = lock(&self.shared.peers).get(&peer)
            && link.opened.elapsed() >= KNOCK_GRACE
        {
            tracing::info!(peer = %peer.short(), "peer knocked: its connection is gone; redialling");
            link.conn.close(6u32.into(), b"you knocked; redialling");
        }
        if let Some(d) = lock(&self.shared.dialers).get(&peer) {
            d.knocked.notify_one();
        }
    }

    /// Connections open on the endpoint: links, dials and knocks under way,
    /// and closed ones still draining.
    pub fn open_connections(&self) -> usize {
        self.endpoint.open_connections()
    }

    pub(super) fn is_linked(&self, peer: &NodeId) -> bool {
        lock(&self.shared.peers).contains_key(peer)
    }
}
