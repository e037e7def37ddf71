//! Fuzz target `verify_event`: see `confab_wire::fuzzing::event`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    confab_wire::fuzzing::event(data);
});
