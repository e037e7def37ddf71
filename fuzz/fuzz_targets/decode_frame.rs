//! Fuzz target `decode_frame`: see `confab_wire::fuzzing::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    confab_wire::fuzzing::frames(data);
});
