//! Pinned-key mutual TLS over real quinn endpoints on loopback: a peer is
//! accepted iff its certificate key is pinned, on both sides.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use confab_node::tls::{self, PinSet};
use confab_wire::fed::FED_ALPN;
use confab_wire::{NodeId, NodeKey};
use quinn::{Connection, ConnectionError, Endpoint, TransportErrorCode};

/// Only stops a broken handshake from hanging the test run; no assertion
/// depends on it.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret(&[n; 32])
}

fn pins(ids: &[NodeId]) -> PinSet {
    ids.iter().copied().collect()
}

fn server(key: &NodeKey, pins: PinSet) -> Endpoint {
    let config = tls::server_config(key, pins, &[FED_ALPN]).unwrap();
    Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn client(key: &NodeKey, pins: PinSet) -> Endpoint {
    let mut endpoint = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(tls::client_config(key, pins, &[FED_ALPN]).unwrap());
    endpoint
}

fn addr(endpoint: &Endpoint) -> SocketAddr {
    endpoint.local_addr().unwrap()
}

async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HANG_GUARD, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: hung for {HANG_GUARD:?}"),
    }
}

/// Accepts one connection attempt and returns its outcome.
async fn accept_one(endpoint: &Endpoint) -> Result<Connection, ConnectionError> {
    endpoint.accept().await.unwrap().await
}

/// Dials and returns why the connection failed. In TLS 1.3 the client's
/// handshake can complete before the server has judged the client's
/// certificate, so a rejection may arrive as a close just after "success".
async fn dial_expecting_failure(
    endpoint: &Endpoint,
    to: SocketAddr,
    name: &str,
) -> ConnectionError {
    match endpoint.connect(to, name).unwrap().await {
        Err(e) => e,
        Ok(conn) => conn.closed().await,
    }
}

fn assert_mentions_pinning(side: &str, err: &ConnectionError) {
    let text = err.to_string();
    println!("{side}: {text}");
    assert!(
        text.contains("not pinned") || text.contains("not the dialled node"),
        "{side} error does not say why: {text}"
    );
}

/// The refused side learns the TLS alert (handshake_failure, 40) in the
/// peer's CONNECTION_CLOSE; quinn also carries the refusing side's reason.
fn assert_handshake_refused(side: &str, err: &ConnectionError) {
    let text = err.to_string();
    println!("{side}: {text}");
    match err {
        ConnectionError::ConnectionClosed(close) => {
            assert_eq!(
                close.error_code,
                TransportErrorCode::crypto(40),
                "{side}: {text}"
            );
            assert_mentions_pinning(side, err);
        }
        other => panic!("{side}: expected the peer to refuse the handshake, got {other:?}"),
    }
}

#[tokio::test]
async fn mutually_pinned_nodes_connect_and_echo() {
    let (a, b) = (key(1), key(2));
    let server_a = server(&a, pins(&[b.node_id()]));
    let client_b = client(&b, pins(&[a.node_id()]));
    let to = addr(&server_a);

    let serve = async {
        let conn = accept_one(&server_a).await.unwrap();
        let peer = tls::peer_node_id(&conn);
        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        let data = recv.read_to_end(1024).await.unwrap();
        send.write_all(&data).await.unwrap();
        send.finish().unwrap();
        // Keep the connection until the client has read the echo and closes.
        conn.closed().await;
        peer
    };
    let dial = async {
        let conn = client_b
            .connect(to, &tls::server_name(&a.node_id()))
            .unwrap()
            .await
            .unwrap();
        let peer = tls::peer_node_id(&conn);
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(b"hello, pinned peer").await.unwrap();
        send.finish().unwrap();
        let echo = recv.read_to_end(1024).await.unwrap();
        conn.close(0u32.into(), b"done");
        (peer, echo)
    };
    let (server_saw, (client_saw, echo)) =
        guarded("echo", async { tokio::join!(serve, dial) }).await;

    assert_eq!(server_saw, Some(b.node_id()));
    assert_eq!(client_saw, Some(a.node_id()));
    assert_eq!(echo, b"hello, pinned peer");
    client_b.wait_idle().await;
}

#[tokio::test]
async fn unpinned_client_is_refused_on_both_sides() {
    let (a, b, c) = (key(1), key(2), key(3));
    // A pins only B; C trusts A, but A does not know C.
    let server_a = server(&a, pins(&[b.node_id()]));
    let client_c = client(&c, pins(&[a.node_id()]));
    let to = addr(&server_a);
    let name = tls::server_name(&a.node_id());

    let (server_err, client_err) = guarded("refusal", async {
        tokio::join!(
            accept_one(&server_a),
            dial_expecting_failure(&client_c, to, &name)
        )
    })
    .await;
    let server_err = server_err.expect_err("server accepted an unpinned client");

    assert_mentions_pinning("server A (refusing C)", &server_err);
    assert!(server_err.to_string().contains(&c.node_id().short()));
    assert_handshake_refused("client C (refused by A)", &client_err);
}

#[tokio::test]
async fn unpinned_server_is_refused_by_the_dialler() {
    let (a, b, c) = (key(1), key(2), key(3));
    // B would accept A, but A pins only C, so A must not accept B's key.
    let server_b = server(&b, pins(&[a.node_id()]));
    let client_a = client(&a, pins(&[c.node_id()]));
    let to = addr(&server_b);

    let (server_err, client_err) = guarded("refusal", async {
        tokio::join!(
            accept_one(&server_b),
            dial_expecting_failure(&client_a, to, "peer.confab.invalid")
        )
    })
    .await;
    let server_err = server_err.expect_err("B saw a completed handshake");

    assert_mentions_pinning("client A (refusing B)", &client_err);
    assert!(client_err.to_string().contains(&b.node_id().short()));
    assert_handshake_refused("server B (refused by A)", &server_err);
}

#[tokio::test]
async fn pinned_server_answering_for_another_node_is_refused() {
    let (a, b, c) = (key(1), key(2), key(3));
    // A pins both B and C but dials C's name at B's address.
    let server_b = server(&b, pins(&[a.node_id()]));
    let client_a = client(&a, pins(&[b.node_id(), c.node_id()]));
    let to = addr(&server_b);
    let name = tls::server_name(&c.node_id());

    let (server_err, client_err) = guarded("refusal", async {
        tokio::join!(
            accept_one(&server_b),
            dial_expecting_failure(&client_a, to, &name)
        )
    })
    .await;

    assert_mentions_pinning("client A (dialled C, got B)", &client_err);
    assert_handshake_refused("server B", &server_err.unwrap_err());
}

#[tokio::test]
async fn pins_added_at_run_time_take_effect() {
    let (a, b) = (key(1), key(2));
    let a_pins = PinSet::new();
    let server_a = server(&a, a_pins.clone());
    let client_b = client(&b, pins(&[a.node_id()]));
    let to = addr(&server_a);
    let name = tls::server_name(&a.node_id());

    let (refused, _) = guarded("before pinning", async {
        tokio::join!(
            accept_one(&server_a),
            dial_expecting_failure(&client_b, to, &name)
        )
    })
    .await;
    assert_mentions_pinning("server A before pinning B", &refused.unwrap_err());

    // The same endpoint and config accept B once the peer table pins it.
    a_pins.insert(b.node_id());
    let (accepted, dialled) = guarded("after pinning", async {
        tokio::join!(accept_one(&server_a), async {
            client_b.connect(to, &name).unwrap().await
        })
    })
    .await;
    let accepted = accepted.unwrap();
    assert_eq!(tls::peer_node_id(&accepted), Some(b.node_id()));
    dialled.unwrap().close(0u32.into(), b"done");
}

/// A client that presents B's certificate (public, so anyone may have it)
/// but signs the handshake with C's key: the pin matches, the signature must
/// not.
#[tokio::test]
async fn replayed_certificate_without_the_secret_is_refused() {
    use std::sync::Arc;

    use rustls::client::ResolvesClientCert;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::sign::CertifiedKey;
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// Presents one fixed (certificate, key) pair, consistent or not.
    #[derive(Debug)]
    struct Present(Arc<CertifiedKey>);
    impl ResolvesClientCert for Present {
        fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
        fn has_certs(&self) -> bool {
            true
        }
    }

    /// The impostor does not care whom it reaches.
    #[derive(Debug)]
    struct AnyServer(Arc<CryptoProvider>);
    impl ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("TLS 1.2".into()))
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algs = &self.0.signature_verification_algorithms;
            rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let (a, b, c) = (key(1), key(2), key(3));
    let server_a = server(&a, pins(&[b.node_id()]));
    let to = addr(&server_a);

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (cert_b, _) = tls::node_certificate(&b).unwrap();
    let (_, secret_c) = tls::node_certificate(&c).unwrap();
    let signer_c = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(secret_c))
        .unwrap();
    let impostor = Arc::new(CertifiedKey::new(vec![cert_b], signer_c));
    let mut tls_config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_client_cert_resolver(Arc::new(Present(impostor)));
    tls_config.alpn_protocols = vec![FED_ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls_config).unwrap();
    let mut client_c = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    client_c.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));

    let (server_err, client_err) = guarded("impostor", async {
        tokio::join!(
            accept_one(&server_a),
            dial_expecting_failure(&client_c, to, "a.confab.invalid")
        )
    })
    .await;
    let server_err = server_err.expect_err("server accepted a replayed certificate");
    println!("server A (refusing impostor): {server_err}");
    println!("impostor: {client_err}");
    assert!(
        matches!(server_err, ConnectionError::TransportError(_)),
        "{server_err:?}"
    );
    assert!(
        server_err.to_string().contains("BadSignature"),
        "server must refuse on the signature: {server_err}"
    );
    assert!(
        matches!(client_err, ConnectionError::ConnectionClosed(_)),
        "{client_err:?}"
    );
}
