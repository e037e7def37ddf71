//! The client service: what the node does for its gateways' browser
//! sessions (the requests of [`confab_wire::client`]), independent of the
//! transport that carries them.

pub mod accounts;
