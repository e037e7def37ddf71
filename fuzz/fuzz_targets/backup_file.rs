//! Fuzz target `backup_file`: see `confab_wire::fuzzing::backup_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    confab_wire::fuzzing::backup_file(data);
});
