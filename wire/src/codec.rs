//! The one bincode configuration every Confab structure is encoded with, and
//! total decode helpers around it.

use bincode::config::{Configuration, LittleEndian, Varint};
use bincode::{Decode, Encode};

use crate::error::{Error, Result};

/// Most bytes a single decode may claim (allocations included). A frame is at
/// most [`crate::frame::MAX_FRAME_LEN`]; this leaves room for the in-memory
/// size of its structures while still bounding what hostile input can cost.
pub const DECODE_LIMIT: usize = 4 << 20;

type Config = Configuration<LittleEndian, Varint, bincode::config::Limit<DECODE_LIMIT>>;

/// Little-endian, variable-length integers, a hard allocation limit.
pub(crate) const fn config() -> Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// Encodes `value` with the protocol's configuration.
pub fn to_vec<T: Encode>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    bincode::encode_to_vec(value, config()).map_err(|e| Error::Encode {
        what,
        detail: e.to_string(),
    })
}

/// Appends the encoding of `value` to `out`.
pub(crate) fn append<T: Encode>(what: &'static str, value: &T, out: &mut Vec<u8>) -> Result<()> {
    bincode::encode_into_std_write(value, out, config())
        .map(drop)
        .map_err(|e| Error::Encode {
            what,
            detail: e.to_string(),
        })
}

/// Decodes a whole `T` from `bytes`; trailing bytes are an error.
pub fn from_slice<T: Decode<()>>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let (value, used) = from_prefix(what, bytes)?;
    if used != bytes.len() {
        return Err(Error::TrailingBytes {
            what,
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

/// Decodes a `T` from the front of `bytes`, returning it and the bytes used.
pub(crate) fn from_prefix<T: Decode<()>>(what: &'static str, bytes: &[u8]) -> Result<(T, usize)> {
    bincode::decode_from_slice(bytes, config()).map_err(|e| Error::Malformed {
        what,
        detail: e.to_string(),
    })
}
