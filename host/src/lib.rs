//! margay on the host: drivers around the `no_std` core.
//!
//! For now this crate holds the demo that the `margay` tool runs: the core optimizers
//! minimising two classic test functions. The burn-backed trainer joins it later.

pub mod demo;
pub mod digits;
