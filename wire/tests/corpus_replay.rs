//! Replays every fuzz corpus and regression file through the same entry
//! points the fuzz targets use, so CI covers them without a fuzzer.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let dir = root.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(result.is_ok(), "{} panicked", path.display());
            count += 1;
        }
    }
    assert!(count > 0, "no corpus for fuzz target {target}");
}

#[test]
fn decode_frame_corpus() {
    replay("decode_frame", confab_wire::fuzzing::frames);
}

#[test]
fn fed_message_corpus() {
    replay("fed_message", confab_wire::fuzzing::fed_message_bytes);
}

#[test]
fn client_message_corpus() {
    replay("client_message", confab_wire::fuzzing::client_message_bytes);
}

#[test]
fn verify_event_corpus() {
    replay("verify_event", confab_wire::fuzzing::event);
}

#[test]
fn admin_message_corpus() {
    replay("admin_message", confab_wire::fuzzing::admin_message_bytes);
}

#[test]
fn backup_file_corpus() {
    replay("backup_file", confab_wire::fuzzing::backup_file);
}
