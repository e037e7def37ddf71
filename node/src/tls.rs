//! QUIC/TLS with pinned node keys (shared with the gateway and the CLI; see
//! [`confab_wire::endpoint::tls`]).

pub use confab_wire::endpoint::tls::*;
