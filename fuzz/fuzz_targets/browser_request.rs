//! Fuzz target `browser_request`: a WebSocket text frame from a browser to
//! the gateway's request parser (`confab_gateway::requests::parse`), which
//! must answer every input with a request or a typed refusal.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    confab_gateway::requests::fuzz_parse(data);
});
