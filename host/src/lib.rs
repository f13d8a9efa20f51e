//! margay on the host: drivers around the `no_std` core.
//!
//! - [`demo`]: the core optimizers on two classic test functions;
//! - [`digits`]: pretraining and replaying the on-device fine-tuning demo;
//! - `train` (feature `train`, on by default): the burn trainer, a RoPE transformer on
//!   tinyshakespeare with margay's Tiger, Lion and AdamW.

pub mod demo;
pub mod digits;
pub mod files;
#[cfg(feature = "train")]
pub mod train;
