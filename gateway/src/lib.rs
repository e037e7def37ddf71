//! `confab-gateway`: serves browsers for one node.
//!
//! A gateway is a client of one node over the client protocol (QUIC, ALPN
//! `confab-client/1`), authenticated by its own key pinned in the node's
//! config. Its settings (where to listen, which node to pin, per-connection
//! limits) are a TOML file loaded into [`config::GatewayConfig`]; failures an
//! operator must see are one [`Error`] type.
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod error;

pub use error::{Error, Result};
