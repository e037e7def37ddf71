//! QUIC/TLS with pinned node keys instead of certificate authorities.
//!
//! Every endpoint presents one self-signed certificate made (with rcgen) from
//! its node key, so the certificate's public key *is* its [`NodeId`]. Both
//! sides present one ([`server_config`] requires a client certificate) and
//! both accept the other iff the certificate's ed25519 key is in a [`PinSet`]:
//! no CA, no names, no expiry, like Syncthing device ids or WireGuard keys.
//! The TLS 1.3 `CertificateVerify` signature is still checked, so a peer must
//! hold the secret key, not just replay a certificate.
//!
//! Only TLS 1.3 with rustls' *ring* provider is used (quinn is built with
//! ring; the process-default provider is never consulted). Session
//! resumption is off on both sides, because a resumed session skips the
//! certificate and with it the pin check.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::{NodeId, NodeKey, PublicKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::{EndpointError as Error, Result};

/// How often an idle connection sends a keep-alive, so NATs and the peer's
/// idle timer see traffic (one small packet a second per connection).
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// A connection with no traffic for this long (six missed keep-alives) is
/// closed: a peer that crashed is seen gone within seconds, and the
/// dialer redials.
pub const IDLE_TIMEOUT_MS: u32 = 6_000;
/// Suffix of the TLS server name derived from a node id (see [`server_name`]).
/// `.invalid` is reserved (RFC 2606), so it can never be a real DNS name.
pub const SERVER_NAME_SUFFIX: &str = ".confab.invalid";

/// DER of an ed25519 SubjectPublicKeyInfo (RFC 8410) up to the key:
/// SEQUENCE(42) { SEQUENCE(5) { OID 1.3.101.112 }, BIT STRING(33) with 0
/// unused bits }, followed by the 32 key bytes. The encoding is fixed, so
/// comparing bytes is a complete and strict check.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The set of node keys this endpoint accepts, shared by every config made
/// from it and changeable at run time (the peer table changes while
/// endpoints are live). Cloning shares the set.
#[derive(Clone, Default)]
pub struct PinSet {
    inner: Arc<RwLock<HashSet<NodeId>>>,
}

impl PinSet {
    /// An empty set: accepts no one until keys are inserted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pins `id`; returns whether it was new.
    pub fn insert(&self, id: NodeId) -> bool {
        self.write().insert(id)
    }

    /// Unpins `id`; returns whether it was pinned. Live connections are not
    /// closed: the caller decides that.
    pub fn remove(&self, id: &NodeId) -> bool {
        self.write().remove(id)
    }

    /// Whether `id` is pinned.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.read().contains(id)
    }

    /// Number of pinned keys.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no key is pinned.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The pinned keys, in no particular order.
    pub fn to_vec(&self) -> Vec<NodeId> {
        self.read().iter().copied().collect()
    }

    // A panic while holding the lock cannot leave a `HashSet` half-updated
    // in a way that matters here, so a poisoned lock is still used.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<NodeId>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<NodeId>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl FromIterator<NodeId> for PinSet {
    fn from_iter<I: IntoIterator<Item = NodeId>>(iter: I) -> Self {
        PinSet {
            inner: Arc::new(RwLock::new(iter.into_iter().collect())),
        }
    }
}

impl std::fmt::Debug for PinSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.read().iter()).finish()
    }
}

/// The TLS server name to dial `id` with. A client config from
/// [`client_config`] then accepts only that exact key (if pinned), not any
/// pinned key that happens to answer at the address.
pub fn server_name(id: &NodeId) -> String {
    format!("{id}{SERVER_NAME_SUFFIX}")
}

/// The node's self-signed certificate and its private key (PKCS#8), both
/// from `key`: the certificate's SubjectPublicKeyInfo is `key.node_id()`.
pub fn node_certificate(
    key: &NodeKey,
) -> Result<(CertificateDer<'static>, PrivatePkcs8KeyDer<'static>)> {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let cert_err = |reason: String| Error::Certificate { reason };
    let pkcs8 = key
        .signing_key()
        .to_pkcs8_der()
        .map_err(|e| cert_err(format!("PKCS#8 encoding: {e}")))?;
    let pkcs8 = PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
        .map_err(|e| cert_err(format!("key pair: {e}")))?;
    let id = key.node_id();
    let mut params = rcgen::CertificateParams::new(vec![server_name(&id)])
        .map_err(|e| cert_err(format!("parameters: {e}")))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, id.to_string());
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| cert_err(format!("signing: {e}")))?;
    Ok((cert.der().clone(), pkcs8))
}

/// The node id in a certificate: its SubjectPublicKeyInfo must be an ed25519
/// key that is a valid [`PublicKey`]. `None` for anything else, including
/// bytes that are not a certificate at all (never panics).
pub fn node_id_from_cert(cert: &CertificateDer<'_>) -> Option<NodeId> {
    // webpki's parser walks tbsCertificate to the SPKI and is hardened
    // against hostile input; the SPKI itself has a fixed encoding.
    let parsed = rustls::server::ParsedCertificate::try_from(cert).ok()?;
    node_id_from_spki(parsed.subject_public_key_info().as_ref())
}

fn node_id_from_spki(spki: &[u8]) -> Option<NodeId> {
    let key = spki.strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    let key: &[u8; 32] = key.try_into().ok()?;
    PublicKey::from_bytes(key).ok()
}

/// The authenticated node id of the peer of `conn`, from the certificate it
/// presented in the handshake (which the verifier already checked against
/// the pins). `None` before the handshake completes.
pub fn peer_node_id(conn: &quinn::Connection) -> Option<NodeId> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    node_id_from_cert(certs.first()?)
}

/// Streams a peer may open on a connection: every protocol here (the
/// federation, the gateway link, the admin link) is one bidirectional
/// stream, opened by the client. QUIC's default of 100 let one connection
/// hold about 250 MB of stream buffers.
pub const STREAMS_MAX: u32 = 1;
/// Bytes a peer may send ahead of what is read, per stream and per
/// connection: one largest frame ([`crate::frame::MAX_FRAME_LEN`]) and
/// room for the next, so memory per connection is bounded by it.
pub const RECEIVE_WINDOW: u32 = 2 * 1024 * 1024;

/// Transport settings shared by every protocol (see [`KEEP_ALIVE_INTERVAL`],
/// [`IDLE_TIMEOUT_MS`], [`STREAMS_MAX`], [`RECEIVE_WINDOW`]).
pub fn transport_config() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
        .max_idle_timeout(Some(quinn::VarInt::from_u32(IDLE_TIMEOUT_MS).into()))
        .max_concurrent_bidi_streams(STREAMS_MAX.into())
        .max_concurrent_uni_streams(0u32.into())
        .stream_receive_window(RECEIVE_WINDOW.into())
        .receive_window(RECEIVE_WINDOW.into());
    transport
}

/// A QUIC server config presenting `key`'s certificate, offering `alpn`, and
/// requiring every client to present a certificate whose key is in `pins`.
pub fn server_config(key: &NodeKey, pins: PinSet, alpn: &[&[u8]]) -> Result<quinn::ServerConfig> {
    let provider = ring_provider();
    let verifier = Arc::new(PinnedPeerVerifier::new(pins, &provider));
    let (cert, private) = node_certificate(key)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], PrivateKeyDer::Pkcs8(private))?;
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // No resumption: a resumed session would skip the pin check.
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| Error::QuicCrypto {
            reason: e.to_string(),
        })?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport_config()));
    Ok(server)
}

/// A QUIC client config presenting `key`'s certificate, offering `alpn`, and
/// accepting a server only if its key is in `pins` (and, when dialled with
/// [`server_name`], equals the named id).
pub fn client_config(key: &NodeKey, pins: PinSet, alpn: &[&[u8]]) -> Result<quinn::ClientConfig> {
    let provider = ring_provider();
    let verifier = Arc::new(PinnedPeerVerifier::new(pins, &provider));
    let (cert, private) = node_certificate(key)?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![cert], PrivateKeyDer::Pkcs8(private))?;
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tls.resumption = rustls::client::Resumption::disabled();
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| Error::QuicCrypto {
            reason: e.to_string(),
        })?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(Arc::new(transport_config()));
    Ok(client)
}

fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts a peer iff it presents exactly one certificate whose ed25519 key
/// is pinned; used as both the server's and the client's verifier.
#[derive(Debug)]
struct PinnedPeerVerifier {
    pins: PinSet,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedPeerVerifier {
    fn new(pins: PinSet, provider: &CryptoProvider) -> Self {
        PinnedPeerVerifier {
            pins,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    /// `expected` is the id the dialler named, if it named one.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        expected: Option<NodeId>,
    ) -> std::result::Result<NodeId, rustls::Error> {
        // A Confab peer is its key; a chain would mean someone is trying
        // to make us reason about issuers.
        if !intermediates.is_empty() {
            return Err(rustls::Error::General(format!(
                "peer sent {} extra certificates; a Confab peer presents exactly one",
                intermediates.len()
            )));
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)
            .map_err(|_| CertificateError::BadEncoding)?;
        let spki = parsed.subject_public_key_info();
        let id = node_id_from_spki(spki.as_ref()).ok_or_else(|| {
            rustls::Error::General("peer certificate does not carry a valid ed25519 key".into())
        })?;
        if let Some(expected) = expected {
            if id != expected {
                return Err(rustls::Error::General(format!(
                    "peer key {} is not the dialled node {}",
                    id.short(),
                    expected.short()
                )));
            }
        }
        if !self.pins.contains(&id) {
            return Err(rustls::Error::General(format!(
                "peer key {} is not pinned",
                id.short()
            )));
        }
        Ok(id)
    }

    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

/// The node id named by a server name made with [`server_name`], if it is one.
fn named_node(name: &ServerName<'_>) -> Option<NodeId> {
    match name {
        ServerName::DnsName(dns) => dns.as_ref().strip_suffix(SERVER_NAME_SUFFIX)?.parse().ok(),
        _ => None,
    }
}

impl ServerCertVerifier for PinnedPeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, named_node(server_name))?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable with a TLS 1.3-only config; refuse rather than trust.
        Err(rustls::Error::General("TLS 1.2 is not supported".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // Node keys are ed25519, so that is the only signature we accept.
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for PinnedPeerVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, None)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not supported".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> NodeKey {
        NodeKey::from_secret(&[n; 32])
    }

    #[test]
    fn certificate_carries_the_node_key() {
        let k = key(1);
        let (cert, _) = node_certificate(&k).unwrap();
        assert_eq!(node_id_from_cert(&cert), Some(k.node_id()));
    }

    #[test]
    fn garbage_certificates_give_none() {
        let (cert, _) = node_certificate(&key(2)).unwrap();
        let der = cert.as_ref();
        assert_eq!(node_id_from_cert(&CertificateDer::from(Vec::new())), None);
        // Every truncation, and a flipped byte at every position, must not
        // panic; a flip inside the key may still parse as another valid key.
        for len in 0..der.len() {
            let cut = CertificateDer::from(der[..len].to_vec());
            assert_eq!(node_id_from_cert(&cut), None, "truncated to {len}");
        }
        for i in 0..der.len() {
            let mut flipped = der.to_vec();
            flipped[i] ^= 0xff;
            let _ = node_id_from_cert(&CertificateDer::from(flipped));
        }
    }

    #[test]
    fn non_ed25519_certificate_gives_none() {
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x.confab.invalid".into()])
            .unwrap()
            .self_signed(&other)
            .unwrap();
        assert_eq!(node_id_from_cert(cert.der()), None);
    }

    #[test]
    fn verifier_checks_pins_chain_and_dialled_name() {
        let (a, b) = (key(3), key(4));
        let (cert_a, _) = node_certificate(&a).unwrap();
        let (cert_b, _) = node_certificate(&b).unwrap();
        let pins: PinSet = [a.node_id()].into_iter().collect();
        let v = PinnedPeerVerifier::new(pins.clone(), &rustls::crypto::ring::default_provider());
        assert_eq!(v.check(&cert_a, &[], None).unwrap(), a.node_id());
        assert_eq!(
            v.check(&cert_a, &[], Some(a.node_id())).unwrap(),
            a.node_id()
        );

        let err = v.check(&cert_b, &[], None).unwrap_err().to_string();
        assert!(
            err.contains("not pinned") && err.contains(&b.node_id().short()),
            "{err}"
        );
        let err = v
            .check(&cert_a, &[], Some(b.node_id()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not the dialled node"), "{err}");
        let err = v
            .check(&cert_a, std::slice::from_ref(&cert_b), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly one"), "{err}");

        // Pins change at run time and every verifier sharing the set sees it.
        pins.insert(b.node_id());
        assert!(v.check(&cert_b, &[], None).is_ok());
        pins.remove(&a.node_id());
        assert!(v.check(&cert_a, &[], None).is_err());
    }

    #[test]
    fn server_name_round_trips() {
        let id = key(5).node_id();
        let name = ServerName::try_from(server_name(&id)).unwrap();
        assert_eq!(named_node(&name), Some(id));
        let other = ServerName::try_from("localhost").unwrap();
        assert_eq!(named_node(&other), None);
    }

    #[test]
    fn configs_build_with_ring_only() {
        let k = key(6);
        server_config(&k, PinSet::new(), &[crate::fed::FED_ALPN]).unwrap();
        client_config(&k, PinSet::new(), &[crate::client::CLIENT_ALPN]).unwrap();
    }
}
