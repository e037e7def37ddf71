//! The node's long-term key file (see [`confab_wire::endpoint::keyfile`]).

pub use confab_wire::endpoint::keyfile::NodeIdentity;
