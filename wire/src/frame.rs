//! Framing: `u32` big-endian length, a type byte, a bincode body.
//!
//! The length counts the type byte and the body. [`FrameDecoder`] is fed
//! arbitrary chunks of a byte stream and yields whole frames; it checks a
//! declared length against its maximum as soon as the four length bytes are
//! in, before buffering or allocating for the body.

use crate::error::{Error, Result};

/// The largest frame either protocol allows (type byte and body).
pub const MAX_FRAME_LEN: usize = 1 << 20;
/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// One frame: a message type byte and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The message type.
    pub tag: u8,
    /// The bincode body.
    pub body: Vec<u8>,
}

impl Frame {
    /// Bytes this frame takes on the wire.
    pub fn encoded_len(&self) -> usize {
        LEN_PREFIX + 1 + self.body.len()
    }

    /// Appends the frame's wire bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = 1 + self.body.len();
        if len > MAX_FRAME_LEN {
            return Err(Error::FrameTooLarge {
                len,
                max: MAX_FRAME_LEN,
            });
        }
        out.reserve(self.encoded_len());
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.push(self.tag);
        out.extend_from_slice(&self.body);
        Ok(())
    }
}

/// Writes a frame whose body is produced by `write_body`, without an
/// intermediate buffer.
pub(crate) fn encode_with(
    tag: u8,
    out: &mut Vec<u8>,
    write_body: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, tag]);
    if let Err(e) = write_body(out) {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - start - LEN_PREFIX;
    if len > MAX_FRAME_LEN {
        out.truncate(start);
        return Err(Error::FrameTooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    out[start..start + LEN_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Incremental frame decoder.
///
/// Call [`push`](Self::push) with whatever bytes arrived, then
/// [`next_frame`](Self::next_frame) until it returns `Ok(None)` ("need more
/// bytes", an expected condition, not an error). After an error the stream
/// is out of sync and the decoder keeps returning that error: close the
/// connection. At end of stream call [`finish`](Self::finish) to learn
/// whether it ended inside a frame.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max: usize,
    failed: Option<Error>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max: max.min(MAX_FRAME_LEN),
            failed: None,
        }
    }

    /// Adds bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        // Reclaim consumed space before growing.
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// How many more bytes the frame in progress needs (0 if a frame is
    /// ready, or unknown before the length prefix has arrived: then 4 minus
    /// what is buffered).
    pub fn wanted(&self) -> usize {
        let avail = &self.buf[self.start..];
        if avail.len() < LEN_PREFIX {
            return LEN_PREFIX - avail.len();
        }
        let len = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        (LEN_PREFIX + len).saturating_sub(avail.len())
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let avail = &self.buf[self.start..];
        if avail.len() < LEN_PREFIX {
            return Ok(None);
        }
        let len = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len == 0 {
            return Err(self.fail(Error::EmptyFrame));
        }
        if len > self.max {
            return Err(self.fail(Error::FrameTooLarge { len, max: self.max }));
        }
        if avail.len() < LEN_PREFIX + len {
            return Ok(None);
        }
        let tag = avail[LEN_PREFIX];
        let body = avail[LEN_PREFIX + 1..LEN_PREFIX + len].to_vec();
        self.start += LEN_PREFIX + len;
        Ok(Some(Frame { tag, body }))
    }

    /// At end of stream: an error if a frame was cut off.
    pub fn finish(&self) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.buffered() {
            0 => Ok(()),
            buffered => Err(Error::TruncatedFrame { buffered }),
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some(e.clone());
        self.buf = Vec::new();
        self.start = 0;
        e
    }
}

/// Declares a protocol's message enum: one variant per frame type byte,
/// each carrying a bincode payload, with encode/decode to frames.
macro_rules! protocol_messages {
    (
        $(#[$doc:meta])*
        $name:ident, $protocol:literal {
            $( $(#[$vdoc:meta])* $variant:ident($payload:ty) = $tag:literal, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant($payload), )*
        }

        impl $name {
            /// Every type byte of this protocol, in order.
            pub const TAGS: &'static [u8] = &[$($tag),*];

            /// This message's frame type byte.
            pub fn tag(&self) -> u8 {
                match self { $( $name::$variant(_) => $tag, )* }
            }

            /// This message's name, for logs and metrics.
            pub fn name(&self) -> &'static str {
                match self { $( $name::$variant(_) => stringify!($variant), )* }
            }

            /// Appends the message, framed, to `out`.
            pub fn encode(&self, out: &mut Vec<u8>) -> $crate::error::Result<()> {
                self.validate()?;
                let tag = self.tag();
                $crate::frame::encode_with(tag, out, |out| match self {
                    $( $name::$variant(p) => $crate::codec::append(stringify!($variant), p, out), )*
                })
            }

            /// The message, framed, as a new buffer.
            pub fn to_frame_bytes(&self) -> $crate::error::Result<Vec<u8>> {
                let mut out = Vec::new();
                self.encode(&mut out)?;
                Ok(out)
            }

            /// Decodes a frame. An unknown type byte gives
            /// [`Error::UnknownMessageType`]: the stream is still in sync.
            pub fn decode(frame: &$crate::frame::Frame) -> $crate::error::Result<Self> {
                let msg = match frame.tag {
                    $( $tag => $name::$variant($crate::codec::from_slice(stringify!($variant), &frame.body)?), )*
                    tag => return Err($crate::error::Error::UnknownMessageType { protocol: $protocol, tag }),
                };
                msg.validate()?;
                Ok(msg)
            }
        }
    };
}
pub(crate) use protocol_messages;

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Frame {
            tag,
            body: body.to_vec(),
        }
        .encode(&mut out)
        .unwrap();
        out
    }

    #[test]
    fn yields_frames_fed_byte_by_byte() {
        let mut stream = frame_bytes(1, b"hello");
        stream.extend(frame_bytes(2, b""));
        stream.extend(frame_bytes(3, &[9; 300]));
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        d.finish().unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].body, b"hello");
        assert_eq!(got[1].tag, 2);
        assert_eq!(got[2].body.len(), 300);
    }

    #[test]
    fn oversized_length_is_refused_before_the_body_arrives() {
        let mut d = FrameDecoder::new(1024);
        d.push(&(1025u32).to_be_bytes());
        assert_eq!(
            d.next_frame(),
            Err(Error::FrameTooLarge {
                len: 1025,
                max: 1024
            })
        );
        // The decoder stays failed and holds nothing.
        d.push(&[0; 100]);
        assert_eq!(d.buffered(), 0);
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn zero_length_and_truncation_are_errors() {
        let mut d = FrameDecoder::default();
        d.push(&[0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(Error::EmptyFrame));

        let mut d = FrameDecoder::default();
        d.push(&frame_bytes(1, b"abc")[..6]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.finish(), Err(Error::TruncatedFrame { buffered: 6 }));
    }

    #[test]
    fn encoding_refuses_oversized_frames() {
        let f = Frame {
            tag: 1,
            body: vec![0; MAX_FRAME_LEN],
        };
        assert!(matches!(
            f.encode(&mut Vec::new()),
            Err(Error::FrameTooLarge { .. })
        ));
    }
}
