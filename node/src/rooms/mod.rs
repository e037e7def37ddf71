//! The node's rooms and the one way to post in them. (The rooms' owner,
//! `NodeRooms`, moves here from `federation::replica` next.)

pub mod post;

pub use post::{Posted, post};
