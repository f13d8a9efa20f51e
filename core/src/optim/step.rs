//! The per-step context every optimizer step takes.

use super::error::{non_negative, ConfigError};

/// The 1-based step index and the learning rate of one optimizer step.
///
/// `t` counts micro-steps for Tiger with accumulation and steps for AdamW's bias
/// correction; Lion ignores it. Build one with [`Step::new`] or from an optimizer
/// (`optimizer.at(t)`, `optimizer.at_scheduled(t, &schedule)`), which cannot fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub(crate) t: u64,
    pub(crate) lr: f32,
}

impl Step {
    /// A step at index `t` (0 is treated as 1) with learning rate `lr`, which must be
    /// finite and >= 0.
    pub fn new(t: u64, lr: f32) -> Result<Self, ConfigError> {
        Ok(Step {
            t: if t == 0 { 1 } else { t },
            lr: non_negative("lr", lr)?,
        })
    }

    /// Builds a step from an already validated learning rate (no check).
    pub(crate) const fn trusted(t: u64, lr: f32) -> Self {
        Step {
            t: if t == 0 { 1 } else { t },
            lr,
        }
    }

    /// The step index (>= 1).
    pub const fn t(&self) -> u64 {
        self.t
    }

    /// The learning rate of this step.
    pub const fn lr(&self) -> f32 {
        self.lr
    }
}
