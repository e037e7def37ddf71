//! `confab-node`: a Confab node.
//!
//! The node's identity is a [`confab_wire::NodeKey`] kept in its data
//! directory ([`identity::NodeIdentity`]); its QUIC/TLS certificate is made
//! from that same key, and peers and gateways are accepted by pinned key
//! ([`tls::PinSet`], [`tls::server_config`], [`tls::client_config`],
//! [`tls::peer_node_id`]). What to listen on, whom to pin and which limits
//! apply come from a TOML file ([`config::NodeConfig`]). Failures an
//! operator must see are one [`Error`] type.
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod engine;
pub mod error;
pub mod federation;
pub mod identity;
pub mod local;
pub mod metrics;
pub mod ops;
pub mod rooms;
pub mod runner;
pub mod service;
pub mod store;
pub mod tls;
pub mod verify;

pub use error::{Error, Result};
