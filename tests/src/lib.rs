//! Shared helpers for Confab's integration tests.
#![warn(missing_docs, unreachable_pub)]
