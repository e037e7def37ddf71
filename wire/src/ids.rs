//! Identifiers: node keys, users, rooms, events and blobs, with textual forms
//! that parse and print round-trip.
//!
//! | id        | text                          | bytes                           |
//! |-----------|-------------------------------|---------------------------------|
//! | `NodeId`  | `b32` (52 chars)              | ed25519 public key              |
//! | `UserId`  | `@localpart:b32`              | node id + localpart             |
//! | `EventId` | `$b32`                        | hash of the signed header bytes |
//! | `RoomId`  | `!b32`                        | id of the room's create event   |
//! | `BlobId`  | `&b32`                        | hash of the blob's bytes        |
//!
//! `b32` is RFC 4648 base32, lowercase, unpadded.

use std::fmt;
use std::str::FromStr;

use bincode::de::Decoder;
use bincode::error::DecodeError;
use bincode::{Decode, Encode};

use crate::error::{Error, Result};

const B32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Characters of base32 text for 32 bytes.
const B32_LEN_32: usize = 52;

fn b32_encode(bytes: &[u8; 32], out: &mut String) {
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(B32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(B32[((acc << (5 - bits)) & 31) as usize] as char);
    }
}

fn b32_decode(kind: &'static str, text: &str) -> Result<[u8; 32]> {
    let bad = |reason| Error::InvalidId {
        kind,
        input: text.chars().take(80).collect(),
        reason,
    };
    if text.len() != B32_LEN_32 {
        return Err(bad("expected 52 base32 characters (a-z, 2-7)"));
    }
    let mut out = [0u8; 32];
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for c in text.bytes() {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return Err(bad("expected 52 base32 characters (a-z, 2-7)")),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[n] = (acc >> bits) as u8;
            n += 1;
        }
        acc &= (1 << bits) - 1;
    }
    // 52 chars carry 260 bits; the 4 spare bits must be zero, or two texts
    // would name one id.
    if acc != 0 {
        return Err(bad("non-canonical final character"));
    }
    Ok(out)
}

/// Most proven-valid keys remembered per thread (then it starts over).
const VALID_KEYS_MAX: usize = 4096;

thread_local! {
    static VALID_KEYS: std::cell::RefCell<std::collections::HashSet<[u8; 32]>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// A validated ed25519 public key: a point on the curve that is not of small
/// order (such keys would let one signature verify for many messages).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode)]
pub struct PublicKey([u8; 32]);

/// A node is addressed by its public key (crypto: [`PublicKey`]; addressing: `NodeId`).
pub type NodeId = PublicKey;

impl PublicKey {
    /// Length of a public key in bytes.
    pub const LENGTH: usize = 32;

    /// Checks that `bytes` are a usable key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        // Every decoded user id carries a key, and the check costs a point
        // decompression (as much as a signature check): remember the keys
        // this thread has proven valid. There are few distinct node ids.
        if VALID_KEYS.with(|k| k.borrow().contains(bytes)) {
            return Ok(PublicKey(*bytes));
        }
        let vk = ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| Error::InvalidKey {
            reason: "not a point on the curve",
        })?;
        if vk.is_weak() {
            return Err(Error::InvalidKey {
                reason: "small-order point",
            });
        }
        VALID_KEYS.with(|k| {
            let mut k = k.borrow_mut();
            if k.len() >= VALID_KEYS_MAX {
                k.clear();
            }
            k.insert(*bytes);
        });
        Ok(PublicKey(*bytes))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The decompressed key for signature checks.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        // Construction already proved the bytes decompress.
        ed25519_dalek::VerifyingKey::from_bytes(&self.0)
            .unwrap_or_else(|_| unreachable!("PublicKey is validated on construction"))
    }

    /// A short prefix of the text form, for logs.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(10);
        s
    }
}

impl From<ed25519_dalek::VerifyingKey> for PublicKey {
    fn from(vk: ed25519_dalek::VerifyingKey) -> Self {
        PublicKey(vk.to_bytes())
    }
}

impl<C> Decode<C> for PublicKey {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let bytes = <[u8; 32]>::decode(decoder)?;
        PublicKey::from_bytes(&bytes).map_err(|_| DecodeError::Other("invalid public key"))
    }
}
bincode::impl_borrow_decode!(PublicKey);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(B32_LEN_32);
        b32_encode(&self.0, &mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bytes = b32_decode("node id", s)?;
        PublicKey::from_bytes(&bytes).map_err(|e| Error::InvalidId {
            kind: "node id",
            input: s.chars().take(80).collect(),
            reason: match e {
                Error::InvalidKey { reason } => reason,
                _ => "invalid key",
            },
        })
    }
}

macro_rules! hash_id {
    ($(#[$doc:meta])* $name:ident, $sigil:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The id's bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The id's text without its sigil (for URLs).
            pub fn to_b32(&self) -> String {
                let mut s = String::with_capacity(B32_LEN_32);
                b32_encode(&self.0, &mut s);
                s
            }

            /// Parses the text without its sigil.
            pub fn from_b32(s: &str) -> Result<Self> {
                b32_decode($kind, s).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut s = String::with_capacity(B32_LEN_32 + 1);
                s.push($sigil);
                b32_encode(&self.0, &mut s);
                f.write_str(&s)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let s = self.to_string();
                f.write_str(&s[..12])
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s.strip_prefix($sigil) {
                    Some(rest) => Self::from_b32(rest),
                    None => Err(Error::InvalidId {
                        kind: $kind,
                        input: s.chars().take(80).collect(),
                        reason: concat!("must start with '", $sigil, "'"),
                    }),
                }
            }
        }
    };
}

hash_id!(
    /// An event's id: the hash of its signed header bytes.
    EventId, '$', "event id"
);
hash_id!(
    /// A room's id: the id of its create event.
    RoomId, '!', "room id"
);
hash_id!(
    /// A blob's id: the hash of its bytes.
    BlobId, '&', "blob id"
);
hash_id!(
    /// The hash of an event's content.
    ContentHash, '#', "content hash"
);

impl From<EventId> for RoomId {
    fn from(id: EventId) -> Self {
        RoomId(id.0)
    }
}

/// Longest localpart, in bytes.
pub const MAX_LOCALPART_LEN: usize = 32;

/// A user: the node that speaks for them and their name on that node.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Encode)]
pub struct UserId {
    node: NodeId,
    localpart: String,
}

fn check_localpart(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > MAX_LOCALPART_LEN {
        return Err("localpart must be 1 to 32 characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("localpart may hold only a-z, 0-9, '.', '_' and '-'");
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("localpart must start with a letter or digit");
    }
    Ok(())
}

impl UserId {
    /// Makes a user id, checking the localpart.
    pub fn new(node: NodeId, localpart: &str) -> Result<Self> {
        check_localpart(localpart).map_err(|reason| Error::InvalidId {
            kind: "user id",
            input: localpart.chars().take(80).collect(),
            reason,
        })?;
        Ok(UserId {
            node,
            localpart: localpart.to_owned(),
        })
    }

    /// The node that speaks for this user.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The user's name on their node.
    pub fn localpart(&self) -> &str {
        &self.localpart
    }

    /// Checks a localpart (for forms that ask for a new user name).
    pub fn validate_localpart(s: &str) -> Result<()> {
        check_localpart(s).map_err(|reason| Error::InvalidId {
            kind: "user name",
            input: s.chars().take(80).collect(),
            reason,
        })
    }
}

impl<C> Decode<C> for UserId {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let node = NodeId::decode(decoder)?;
        let localpart = String::decode(decoder)?;
        check_localpart(&localpart).map_err(DecodeError::Other)?;
        Ok(UserId { node, localpart })
    }
}
bincode::impl_borrow_decode!(UserId);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}:{}", self.localpart, self.node)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}:{}", self.localpart, self.node.short())
    }
}

impl FromStr for UserId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidId {
            kind: "user id",
            input: s.chars().take(80).collect(),
            reason,
        };
        let rest = s
            .strip_prefix('@')
            .ok_or_else(|| bad("must start with '@'"))?;
        let (local, node) = rest
            .split_once(':')
            .ok_or_else(|| bad("expected @localpart:node"))?;
        check_localpart(local).map_err(bad)?;
        let node: NodeId = node.parse()?;
        Ok(UserId {
            node,
            localpart: local.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> NodeId {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .into()
    }

    #[test]
    fn ids_round_trip_through_text() {
        let n = key(1);
        assert_eq!(n.to_string().parse::<NodeId>().unwrap(), n);
        let u = UserId::new(n, "alice.b-2_x").unwrap();
        assert_eq!(u.to_string().parse::<UserId>().unwrap(), u);
        let e = EventId([7; 32]);
        assert_eq!(e.to_string().parse::<EventId>().unwrap(), e);
        let r = RoomId([0xff; 32]);
        assert_eq!(r.to_string().parse::<RoomId>().unwrap(), r);
        let b = BlobId([0; 32]);
        assert_eq!(b.to_string().parse::<BlobId>().unwrap(), b);
        assert_eq!(BlobId::from_b32(&b.to_b32()).unwrap(), b);
    }

    #[test]
    fn bad_text_gives_clear_errors() {
        let e = "$abc".parse::<EventId>().unwrap_err().to_string();
        assert!(e.contains("52 base32"), "{e}");
        let e = "!".parse::<EventId>().unwrap_err().to_string();
        assert!(e.contains("must start with '$'"), "{e}");
        let e = "alice".parse::<UserId>().unwrap_err().to_string();
        assert!(e.contains("'@'"), "{e}");
        let n = key(2);
        let e = format!("@Alice:{n}")
            .parse::<UserId>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("a-z"), "{e}");
        let e = format!("@:{n}").parse::<UserId>().unwrap_err().to_string();
        assert!(e.contains("1 to 32"), "{e}");
        // The spare bits of the last character must be zero.
        let mut t = EventId([0; 32]).to_string();
        t.pop();
        t.push('b');
        assert!(t.parse::<EventId>().is_err());
        // A small-order point is not a node id.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        assert!(PublicKey::from_bytes(&ident).is_err());
    }

    #[test]
    fn base32_matches_rfc4648() {
        // RFC 4648 test vector "foobar" → "MZXW6YTBOI", extended to 32 bytes by zeros.
        let mut b = [0u8; 32];
        b[..6].copy_from_slice(b"foobar");
        let mut s = String::new();
        b32_encode(&b, &mut s);
        assert!(s.starts_with("mzxw6ytboi"), "{s}");
        assert_eq!(b32_decode("x", &s).unwrap(), b);
    }
}
