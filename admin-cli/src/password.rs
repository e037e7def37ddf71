//! Passwords for `user create` and `user reset-password`: read from
//! standard input (`--password-stdin`), or generated here and shown once.
//!
//! A password never goes on the command line, where other users could read
//! it in the process list and the shell would keep it in its history.

use std::io::{BufRead, Read as _};

use crate::error::{Failure, Result};

/// Characters of a generated password: letters and digits without the
/// look-alikes `0 O o 1 l I`, so it can be read out or copied by hand.
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Length of a generated password (56^20: about 116 bits).
pub(crate) const GENERATED_LEN: usize = 20;
/// Longest password read from standard input.
const STDIN_MAX_BYTES: usize = 1024;

/// A new random password of [`GENERATED_LEN`] characters.
pub(crate) fn generate() -> Result<String> {
    let mut out = String::with_capacity(GENERATED_LEN);
    // The largest multiple of the alphabet's size that fits a byte: bytes
    // at or above it are redrawn, so every character is equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    let mut buf = [0u8; 64];
    while out.len() < GENERATED_LEN {
        getrandom::getrandom(&mut buf)
            .map_err(|e| Failure::internal(format!("no randomness for a password: {e}")))?;
        for &b in &buf {
            if usize::from(b) < limit && out.len() < GENERATED_LEN {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// The first line of `input`, without its line ending.
pub(crate) fn read_line(mut input: impl BufRead) -> Result<String> {
    let mut line = String::new();
    (&mut input)
        .take(STDIN_MAX_BYTES as u64 + 2)
        .read_line(&mut line)
        .map_err(|e| {
            Failure::usage(format!("cannot read the password from standard input: {e}"))
        })?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if password.is_empty() {
        return Err(Failure::usage(
            "--password-stdin read an empty password: pipe the password in, like \
             `printf '%s\\n' \"$PW\" | confabctl user create bob --password-stdin`",
        ));
    }
    if password.len() > STDIN_MAX_BYTES {
        return Err(Failure::usage(format!(
            "the password from standard input is longer than {STDIN_MAX_BYTES} bytes"
        )));
    }
    Ok(password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.chars().count(), GENERATED_LEN);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn stdin_passwords_lose_their_line_ending() {
        assert_eq!(read_line(&b"s3cret pass\n"[..]).unwrap(), "s3cret pass");
        assert_eq!(read_line(&b"s3cret\r\nignored\n"[..]).unwrap(), "s3cret");
        assert_eq!(read_line(&b"no newline"[..]).unwrap(), "no newline");
        assert!(read_line(&b"\n"[..]).unwrap_err().message.contains("empty"));
        assert!(read_line(&b""[..]).is_err());
        let long = vec![b'x'; 5000];
        assert!(read_line(&long[..]).unwrap_err().message.contains("longer"));
    }
}
