//! Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay
//! test, so CI exercises every corpus file through the same code the fuzzer
//! runs. Each function takes arbitrary bytes and panics only when an
//! invariant breaks (that is a finding).

use crate::admin::decode_admin_frame;
use crate::backup::{BackupReader, read_all};
use crate::client::decode_client_frame;
use crate::codec;
use crate::fed::FedMessage;
use crate::frame::{Frame, FrameDecoder};
use crate::sign::SignedEvent;

/// Feeds `data` to a frame decoder in chunks whose sizes come from the data
/// itself, decodes every frame as both protocols, and checks that a message
/// that decodes re-encodes to a frame that decodes to the same message.
pub fn frames(data: &[u8]) {
    let Some((&chunk_seed, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk_seed % 64) + 1;
    let mut decoder = FrameDecoder::default();
    let mut consumed = 0;
    for piece in stream.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    consumed += frame.encoded_len();
                    message(&frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    assert!(
        consumed <= stream.len(),
        "decoder yielded more than it was fed"
    );
    assert_eq!(consumed + decoder.buffered(), stream.len());
}

/// Decodes one frame (first byte: type; rest: body) as a federation and as a
/// client message.
pub fn message_bytes(data: &[u8]) {
    fed_message_bytes(data);
    client_message_bytes(data);
}

/// Decodes one frame (first byte: type; rest: body) as a federation message.
pub fn fed_message_bytes(data: &[u8]) {
    if let Some(frame) = split_frame(data) {
        fed_message(&frame);
    }
}

/// Decodes one frame (first byte: type; rest: body) as a client message.
pub fn client_message_bytes(data: &[u8]) {
    if let Some(frame) = split_frame(data) {
        client_message(&frame);
    }
}

fn split_frame(data: &[u8]) -> Option<Frame> {
    let (&tag, body) = data.split_first()?;
    Some(Frame {
        tag,
        body: body.to_vec(),
    })
}

fn message(frame: &Frame) {
    fed_message(frame);
    client_message(frame);
}

fn fed_message(frame: &Frame) {
    if let Ok(msg) = FedMessage::decode(frame) {
        let bytes = msg.to_frame_bytes().expect("a decoded message re-encodes");
        let mut d = FrameDecoder::default();
        d.push(&bytes);
        let again = d.next_frame().expect("own frame").expect("whole frame");
        assert_eq!(FedMessage::decode(&again).as_ref(), Ok(&msg));
        if let FedMessage::Events(batch) = msg {
            for e in batch.events {
                let _ = e.verify();
            }
        }
    }
}

fn client_message(frame: &Frame) {
    if let Ok(msg) = decode_client_frame(frame) {
        let bytes = msg.to_frame_bytes().expect("a decoded message re-encodes");
        let mut d = FrameDecoder::default();
        d.push(&bytes);
        let again = d.next_frame().expect("own frame").expect("whole frame");
        assert_eq!(decode_client_frame(&again).as_ref(), Ok(&msg));
    }
}

/// Decodes a [`SignedEvent`] and verifies it; a verified event must keep the
/// exact bytes it came from and its id must be the hash of its header bytes.
pub fn event(data: &[u8]) {
    let Ok(signed) = codec::from_slice::<SignedEvent>("event", data) else {
        return;
    };
    let original = signed.clone();
    let Ok(verified) = signed.verify() else {
        return;
    };
    assert_eq!(verified.signed(), &original);
    assert_eq!(verified.id(), crate::sign::event_id(&original.header));
    // A redacted copy still verifies.
    let mut redacted = original;
    redacted.content = None;
    assert!(
        redacted.verify().is_ok(),
        "dropping content broke verification"
    );
}

/// Decodes one frame (first byte: type; rest: body) as an admin message;
/// one that decodes re-encodes to a frame that decodes to the same.
pub fn admin_message_bytes(data: &[u8]) {
    let Some(frame) = split_frame(data) else {
        return;
    };
    if let Ok(msg) = decode_admin_frame(&frame) {
        let bytes = msg.to_frame_bytes().expect("a decoded message re-encodes");
        let mut d = FrameDecoder::default();
        d.push(&bytes);
        let again = d.next_frame().expect("own frame").expect("whole frame");
        assert_eq!(decode_admin_frame(&again).as_ref(), Ok(&msg));
    }
}

/// Reads a backup file (after one byte that sets the chunk size) in chunks
/// and whole: both readings agree, item for item, on success and failure.
pub fn backup_file(data: &[u8]) {
    let Some((&chunk_seed, file)) = data.split_first() else {
        return;
    };
    let whole = read_all(file);
    let chunk = usize::from(chunk_seed) + 1;
    let mut r = BackupReader::default();
    let mut items = Vec::new();
    let mut failed = false;
    'feed: for piece in file.chunks(chunk) {
        r.push(piece);
        loop {
            match r.next_item() {
                Ok(Some(i)) => items.push(i),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break 'feed;
                }
            }
        }
    }
    if !failed && r.finish().is_err() {
        failed = true;
    }
    match whole {
        Ok(all) => {
            assert!(!failed, "a file that reads whole failed in chunks");
            assert_eq!(all, items);
        }
        Err(_) => assert!(failed, "a file that fails whole read in chunks"),
    }
}
