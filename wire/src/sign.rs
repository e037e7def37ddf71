//! Hashing, signing and verification of events.
//!
//! Every signature and hash is taken over `TAG || bytes` with a tag per
//! purpose, so bytes signed for one purpose (an event header) can never be
//! replayed as another (an access token, a TLS handshake).

use bincode::{Decode, Encode};
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::codec;
use crate::error::{Error, Result};
#[cfg(doc)]
use crate::event::IDEMPOTENCY_SINCE;
use crate::event::{Content, EventHeader, IdempotencyHash, MAX_CONTENT_LEN, MAX_HEADER_LEN};
use crate::ids::{BlobId, ContentHash, EventId, NodeId, PublicKey, RoomId};

/// Tag for event header signatures.
pub const EVENT_SIGNATURE_TAG: &[u8] = b"confab/v1 event\0";
/// Tag for event ids (the hash of the signed header bytes).
pub const EVENT_ID_TAG: &[u8] = b"confab/v1 event-id\0";
/// Tag for content hashes.
pub const CONTENT_HASH_TAG: &[u8] = b"confab/v1 content\0";
/// Tag for blob ids.
pub const BLOB_HASH_TAG: &[u8] = b"confab/v1 blob\0";
/// Tag for access tokens signed by a node for its gateways.
pub const ACCESS_TOKEN_TAG: &[u8] = b"confab/v1 access-token\0";

/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

fn tagged_hash(tag: &[u8], bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag);
    h.update(bytes);
    h.finalize().into()
}

/// The id of an event with these signed header bytes.
pub fn event_id(header_bytes: &[u8]) -> EventId {
    EventId(tagged_hash(EVENT_ID_TAG, header_bytes))
}

/// The hash of content bytes.
pub fn content_hash(content: &[u8]) -> ContentHash {
    ContentHash(tagged_hash(CONTENT_HASH_TAG, content))
}

/// Computes a blob's id over its bytes as they arrive.
#[derive(Clone, Debug)]
pub struct BlobHasher(Sha256);

impl Default for BlobHasher {
    fn default() -> Self {
        let mut h = Sha256::new();
        h.update(BLOB_HASH_TAG);
        BlobHasher(h)
    }
}

impl BlobHasher {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The id of everything added.
    pub fn finish(self) -> BlobId {
        BlobId(self.0.finalize().into())
    }

    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobId {
        let mut h = BlobHasher::default();
        h.update(bytes);
        h.finish()
    }
}

/// A node's secret signing key. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct NodeKey {
    key: SigningKey,
    id: NodeId,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({:?})", self.id)
    }
}

impl NodeKey {
    /// A key from its 32 secret bytes.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(secret);
        let id = PublicKey::from(key.verifying_key());
        NodeKey { key, id }
    }

    /// The 32 secret bytes, for persisting the key.
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The node id (public key).
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// The underlying signing key (for TLS certificates).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs `tag || bytes`.
    pub fn sign_tagged(&self, tag: &[u8], bytes: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut msg = Vec::with_capacity(tag.len() + bytes.len());
        msg.extend_from_slice(tag);
        msg.extend_from_slice(bytes);
        self.key.sign(&msg).to_bytes()
    }

    /// Signs an event. The header's `content_hash` is set from `content`;
    /// the header must name an author of this node.
    pub fn sign_event(&self, header: EventHeader, content: &Content) -> Result<VerifiedEvent> {
        self.sign_event_with(header, content, None)
    }

    /// [`NodeKey::sign_event`] for a message that carries `idempotency`
    /// (only in rooms of rules version 3 on: see [`IDEMPOTENCY_SINCE`]).
    pub fn sign_event_with(
        &self,
        mut header: EventHeader,
        content: &Content,
        idempotency: Option<IdempotencyHash>,
    ) -> Result<VerifiedEvent> {
        if header.author.node() != &self.id {
            return Err(Error::WrongSigner);
        }
        if content.class() != header.kind.content_class() {
            return Err(Error::invalid("content", "does not fit the event kind"));
        }
        content.validate()?;
        header.validate()?;
        let content_bytes = content.to_bytes_with(idempotency.as_ref())?;
        if content_bytes.len() > MAX_CONTENT_LEN {
            return Err(Error::invalid("content", "too large"));
        }
        header.content_hash = content_hash(&content_bytes);
        let header_bytes = codec::to_vec("event header", &header)?;
        if header_bytes.len() > MAX_HEADER_LEN {
            return Err(Error::invalid("header", "too large"));
        }
        let signature = self.sign_tagged(EVENT_SIGNATURE_TAG, &header_bytes);
        Ok(VerifiedEvent {
            id: event_id(&header_bytes),
            header,
            idempotency,
            signed: SignedEvent {
                header: header_bytes,
                signature,
                content: Some(content_bytes),
            },
        })
    }
}

/// Verifies `signature` over `tag || bytes` by `key`, strictly (no
/// malleable or small-order signatures).
pub fn verify_tagged(
    key: &PublicKey,
    tag: &[u8],
    bytes: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<()> {
    verify_with(&key.verifying_key(), tag, bytes, signature)
}

fn verify_with(
    key: &ed25519_dalek::VerifyingKey,
    tag: &[u8],
    bytes: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<()> {
    let mut msg = Vec::with_capacity(tag.len() + bytes.len());
    msg.extend_from_slice(tag);
    msg.extend_from_slice(bytes);
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(&msg, &sig)
        .map_err(|_| Error::BadSignature)
}

/// Decompressed public keys, so that verifying many events of one origin
/// decompresses its key once (a fifth of the cost of a verification).
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: std::collections::HashMap<PublicKey, ed25519_dalek::VerifyingKey>,
}

impl KeyCache {
    /// Most keys kept; the cache starts over when full.
    pub const CAPACITY: usize = 4096;

    /// The decompressed key.
    pub fn get(&mut self, key: &PublicKey) -> ed25519_dalek::VerifyingKey {
        if let Some(k) = self.keys.get(key) {
            return *k;
        }
        if self.keys.len() >= Self::CAPACITY {
            self.keys.clear();
        }
        let vk = key.verifying_key();
        self.keys.insert(*key, vk);
        vk
    }
}

/// An event as it travels: the exact signed header bytes, the signature, and
/// the content (absent once redacted).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedEvent {
    /// The canonical encoding of the [`EventHeader`], exactly as signed.
    pub header: Vec<u8>,
    /// The origin's signature over `EVENT_SIGNATURE_TAG || header`.
    pub signature: [u8; SIGNATURE_LEN],
    /// The content bytes, or `None` if dropped by a redaction.
    pub content: Option<Vec<u8>>,
}

impl SignedEvent {
    /// Checks everything that needs no room state: sizes, canonical header
    /// encoding, header rules, content hash and shape, and the origin's
    /// signature. Cheap checks run first; the signature last.
    pub fn verify(self) -> Result<VerifiedEvent> {
        self.verify_cached(&mut KeyCache::default())
    }

    /// [`SignedEvent::verify`], with the origin's key from `cache`.
    pub fn verify_cached(self, cache: &mut KeyCache) -> Result<VerifiedEvent> {
        let (header, idempotency) = self.check()?;
        let key = cache.get(header.author.node());
        verify_with(&key, EVENT_SIGNATURE_TAG, &self.header, &self.signature)?;
        Ok(VerifiedEvent {
            id: event_id(&self.header),
            header,
            idempotency,
            signed: self,
        })
    }

    /// Every check of [`SignedEvent::verify`] except the signature.
    pub fn check_without_signature(&self) -> Result<EventHeader> {
        Ok(self.check()?.0)
    }

    fn check(&self) -> Result<(EventHeader, Option<IdempotencyHash>)> {
        if self.header.len() > MAX_HEADER_LEN {
            return Err(Error::invalid("header", "too large"));
        }
        let header: EventHeader = codec::from_slice("event header", &self.header)?;
        // Bincode accepts some non-minimal encodings; insisting on the
        // canonical form keeps "one header, one id".
        if codec::to_vec("event header", &header)? != self.header {
            return Err(Error::NonCanonical);
        }
        header.validate()?;
        if let Some(content) = &self.content {
            if content.len() > MAX_CONTENT_LEN {
                return Err(Error::invalid("content", "too large"));
            }
            if content_hash(content) != header.content_hash {
                return Err(Error::ContentMismatch);
            }
            let (_, idempotency) = Content::decode_with_idempotency(&header.kind, content)?;
            return Ok((header, idempotency));
        }
        Ok((header, None))
    }

    /// The header, decoded without any check: for bytes that were verified
    /// before (a node's stored events).
    pub fn decode_header(&self) -> Result<EventHeader> {
        codec::from_slice("event header", &self.header)
    }

    /// The id, computed from the header bytes (no verification).
    pub fn id(&self) -> EventId {
        event_id(&self.header)
    }

    /// Bytes of the event on the wire (for budgets).
    pub fn wire_len(&self) -> usize {
        self.header.len() + SIGNATURE_LEN + self.content.as_ref().map_or(0, Vec::len)
    }
}

/// An event whose signature, id, header rules and content hash have been
/// checked. It keeps the exact bytes it was verified from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEvent {
    id: EventId,
    header: EventHeader,
    /// What a message's content ends with, if anything (read at checking).
    idempotency: Option<IdempotencyHash>,
    signed: SignedEvent,
}

impl VerifiedEvent {
    /// The event's id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The decoded header.
    pub fn header(&self) -> &EventHeader {
        &self.header
    }

    /// The room it belongs to.
    pub fn room(&self) -> RoomId {
        self.header.room_id(&self.id)
    }

    /// The exact bytes it was verified from.
    pub fn signed(&self) -> &SignedEvent {
        &self.signed
    }

    /// Gives up the verified bytes.
    pub fn into_signed(self) -> SignedEvent {
        self.signed
    }

    /// The idempotency hash a message carries (rules version 3 on).
    pub fn idempotency(&self) -> Option<&IdempotencyHash> {
        self.idempotency.as_ref()
    }

    /// The origin (signing node).
    pub fn origin(&self) -> &NodeId {
        self.header.author.node()
    }

    /// The typed content, or `None` if it was dropped.
    pub fn content(&self) -> Option<Content> {
        let bytes = self.signed.content.as_ref()?;
        // Verified at construction; a failure here would be a bug, and
        // treating it as dropped content is the safe reading.
        Content::decode_for(&self.header.kind, bytes).ok()
    }

    /// True once the content has been dropped.
    pub fn is_redacted(&self) -> bool {
        self.signed.content.is_none()
    }

    /// Drops the content (after a redaction); the header still verifies.
    pub fn redact(&mut self) {
        self.signed.content = None;
    }

    /// Rebuilds a verified event from bytes this node verified before (read
    /// back from its own store). Checks everything but the signature, which
    /// was checked when the event was first accepted.
    pub fn from_trusted_store(signed: SignedEvent) -> Result<VerifiedEvent> {
        let (header, idempotency) = signed.check()?;
        Ok(VerifiedEvent {
            id: event_id(&signed.header),
            header,
            idempotency,
            signed,
        })
    }
}
