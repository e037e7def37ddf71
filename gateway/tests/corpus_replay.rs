//! Replays the fuzz corpus of `browser_request` through the parser, so CI
//! covers it without a fuzzer, and throws random and mangled frames at it.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use proptest::prelude::*;

#[test]
fn browser_request_corpus() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join("browser_request")) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| confab_gateway::requests::fuzz_parse(&data));
            assert!(result.is_ok(), "{} panicked", path.display());
            count += 1;
        }
    }
    assert!(count > 0, "no corpus for browser_request");
}

proptest! {
    #[test]
    fn any_bytes_get_a_typed_answer(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        confab_gateway::requests::fuzz_parse(&data);
    }

    #[test]
    fn mangled_requests_get_a_typed_answer(cut in 0usize..200, flip in 0usize..200, byte in any::<u8>()) {
        let room = "!tuuo6smcumphqfzwwtq7k34oqebnhvi5gn5o3trmmfadecvqtgwq";
        let good = format!(
            r#"{{"id":6,"type":"send","room":"{room}","body":"hi","idempotency_key":"k","attachments":[{{"blob":"&6zrzq3jhuk3i3gud75s6rzya5tkkmdcxewblntn7jqnrvt45at7q","name":"a"}}]}}"#
        );
        let mut b = good.into_bytes();
        let flip = flip % b.len();
        b[flip] = byte;
        b.truncate(b.len().min(cut.max(1) * 2));
        confab_gateway::requests::fuzz_parse(&b);
    }
}
