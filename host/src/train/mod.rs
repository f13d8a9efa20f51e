//! The burn trainer (feature `train`): a RoPE transformer on tinyshakespeare with margay's
//! optimizers (Tiger, Lion, AdamW, Adafactor, SGDM, AdaX). Every burn-facing type lives in this module tree, because burn's
//! API changes between minor versions (pinned `=0.21.0`).

pub mod backend;
pub mod checkpoint;
pub mod data;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub mod fused;
pub mod generic;
pub mod model;
pub mod optim;
pub mod plot;
pub mod run;

/// The pinned burn this trainer is written against (for tests and downstream code).
pub use burn;
