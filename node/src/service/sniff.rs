//! What a file is, judged by its bytes, never by its name: uploads are
//! typed by their content, and executables are refused.

/// The verdict on an upload's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// An allowed type, with the media type and, for images, the size.
    Allowed {
        /// The media type.
        mime: &'static str,
        /// Width and height of an image, when the header tells.
        dimensions: Option<(u32, u32)>,
    },
    /// A type that is refused (programs and scripts browsers might run).
    Refused {
        /// What it looked like.
        what: &'static str,
    },
}

/// Image types shown inline (the rest are downloads).
pub const INLINE_IMAGES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u32)
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?) as u32)
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(s[0] as u32 | (s[1] as u32) << 8 | (s[2] as u32) << 16)
}

fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 9 < b.len() {
        if b[i] != 0xff {
            return None;
        }
        let marker = b[i + 1];
        let len = be16(b, i + 2)? as usize;
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            let h = be16(b, i + 5)?;
            let w = be16(b, i + 7)?;
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

fn webp_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    match b.get(12..16)? {
        b"VP8 " => Some((le16(b, 26)? & 0x3fff, le16(b, 28)? & 0x3fff)),
        b"VP8L" => {
            let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        b"VP8X" => Some((le24(b, 24)? + 1, le24(b, 27)? + 1)),
        _ => None,
    }
}

fn looks_like_text(b: &[u8]) -> bool {
    let sample = &b[..b.len().min(8192)];
    // Cut at a char boundary: a multi-byte character may straddle the end.
    let valid = match std::str::from_utf8(sample) {
        Ok(_) => true,
        Err(e) => e.valid_up_to() + 4 > sample.len() && e.error_len().is_none(),
    };
    valid
        && !sample
            .iter()
            .any(|&c| c < 0x09 || (0x0e..0x20).contains(&c) && c != 0x1b)
}

/// Judges a file by its first bytes (a few KiB suffice).
pub fn sniff(b: &[u8]) -> Sniffed {
    let allowed = |mime| Sniffed::Allowed {
        mime,
        dimensions: None,
    };
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        let dimensions = be32(b, 16).zip(be32(b, 20));
        return Sniffed::Allowed {
            mime: "image/png",
            dimensions,
        };
    }
    if b.starts_with(&[0xff, 0xd8, 0xff]) {
        return Sniffed::Allowed {
            mime: "image/jpeg",
            dimensions: jpeg_dimensions(b),
        };
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Sniffed::Allowed {
            mime: "image/gif",
            dimensions: le16(b, 6).zip(le16(b, 8)),
        };
    }
    if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        return Sniffed::Allowed {
            mime: "image/webp",
            dimensions: webp_dimensions(b),
        };
    }
    // Programs: refused whatever the name says.
    if b.starts_with(b"MZ") {
        return Sniffed::Refused {
            what: "a Windows program",
        };
    }
    if b.starts_with(b"\x7fELF") {
        return Sniffed::Refused {
            what: "a Linux program",
        };
    }
    if [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
        [0xca, 0xfe, 0xba, 0xbe],
    ]
    .iter()
    .any(|m| b.starts_with(m))
    {
        return Sniffed::Refused {
            what: "a macOS program",
        };
    }
    if b.starts_with(b"#!") {
        return Sniffed::Refused { what: "a script" };
    }
    if b.starts_with(b"%PDF-") {
        return allowed("application/pdf");
    }
    if b.starts_with(b"PK\x03\x04") || b.starts_with(b"PK\x05\x06") {
        return allowed("application/zip");
    }
    if b.starts_with(&[0x1f, 0x8b]) {
        return allowed("application/gzip");
    }
    if b.starts_with(b"OggS") {
        return allowed("audio/ogg");
    }
    if b.starts_with(b"ID3") || b.starts_with(&[0xff, 0xfb]) {
        return allowed("audio/mpeg");
    }
    if b.get(4..8) == Some(b"ftyp") {
        return allowed("video/mp4");
    }
    if b.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        return allowed("video/webm");
    }
    if looks_like_text(b) {
        // Served as plain text (with nosniff), so markup in it never runs.
        return allowed("text/plain");
    }
    allowed("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_with_their_sizes() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(
            sniff(&png),
            Sniffed::Allowed {
                mime: "image/png",
                dimensions: Some((640, 480))
            }
        );
        let gif = b"GIF89a\x20\x03\x58\x02rest";
        assert_eq!(
            sniff(gif),
            Sniffed::Allowed {
                mime: "image/gif",
                dimensions: Some((800, 600))
            }
        );
        // SOI, APP0 (len 16), SOF0 with height 2, width 3.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0, 16];
        jpeg.extend_from_slice(&[0; 14]);
        jpeg.extend_from_slice(&[0xff, 0xc0, 0, 17, 8, 0, 2, 0, 3, 3, 0, 0, 0]);
        assert_eq!(
            sniff(&jpeg),
            Sniffed::Allowed {
                mime: "image/jpeg",
                dimensions: Some((3, 2))
            }
        );
    }

    #[test]
    fn programs_are_refused_whatever_their_name() {
        for b in [
            &b"MZ\x90\0\x03"[..],
            b"\x7fELF\x02\x01",
            b"#!/bin/sh\nrm -rf /",
            &[0xcf, 0xfa, 0xed, 0xfe, 7],
        ] {
            assert!(matches!(sniff(b), Sniffed::Refused { .. }), "{b:?}");
        }
    }

    #[test]
    fn text_and_unknown_bytes() {
        assert_eq!(
            sniff("héllo <script>alert(1)</script>\n".as_bytes()),
            Sniffed::Allowed {
                mime: "text/plain",
                dimensions: None
            }
        );
        assert_eq!(
            sniff(&[0, 1, 2, 3, 250]),
            Sniffed::Allowed {
                mime: "application/octet-stream",
                dimensions: None
            }
        );
        // Truncated headers never panic.
        let webp = b"RIFF\0\0\0\0WEBPVP8X\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let jpeg = [0xff, 0xd8, 0xff, 0xc0, 0xff];
        for n in 0..40 {
            let _ = sniff(&webp[..n.min(webp.len())]);
            let _ = sniff(&jpeg[..n.min(jpeg.len())]);
        }
    }
}
