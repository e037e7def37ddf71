//! Fuzz target `admin_message`: see `confab_wire::fuzzing::admin_message_bytes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    confab_wire::fuzzing::admin_message_bytes(data);
});
