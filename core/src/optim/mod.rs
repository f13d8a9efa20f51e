//! Optimizers, gradient clipping, Flooding, learning-rate schedules and parameter groups.
//!
//! | item | file | state per parameter |
//! |---|---|---|
//! | [`Lion`] | `lion.rs` | 1 moment (`m`) |
//! | [`Tiger`] | `tiger.rs` | 1 moment (`m`), accumulation included |
//! | [`AdamW`] | `adamw.rs` | 2 moments (`m`, `v`) |
//! | [`GlobalNormClip`] | `clip.rs` | none |
//! | [`Flooding`] | `flooding.rs` | none |
//!
//! Moments are stored as any [`Moment`] type: `f32` (4 bytes) or [`half::bf16`]
//! (2 bytes). The arithmetic is always f32.
//!
//! Every step takes a [`Step`]: the 1-based step index `t` (micro-step for Tiger with
//! accumulation) and the learning rate for that step, usually from
//! `optimizer.at(t)` or `optimizer.at_scheduled(t, &schedule)`.

mod adamw;
mod adax;
mod amos;
mod clip;
mod eg;
mod error;
mod flooding;
mod groups;
mod health;
mod lazy;
mod lion;
mod lowrank;
mod moment;
mod schedule;
mod sgdm;
mod step;
mod tiger;

pub use adamw::{AdamW, AdamWConfig};
pub use adax::{AdaX, AdaXCoefficients, AdaXConfig, WeightDecay};
pub use amos::AmosRule;
pub use clip::{ClipConfig, ClipForm, ClipReport, GlobalNormClip, NormAccumulator};
pub use eg::{EgStepSize, EgStepSizeConfig, ExpGrad, ExpGradConfig};
pub use error::{ConfigError, StepError};
pub use flooding::{Flooding, FloodingConfig};
pub use groups::ParamKind;
pub use health::GradHealth;
pub use lazy::Rows;
pub use lion::{Lion, LionConfig};
pub use lowrank::LowRank;
pub use moment::Moment;
pub use schedule::{Constant, InverseTime, PiecewiseLinear, Schedule, WarmupCosine};
pub use sgdm::{Sgdm, SgdmConfig};
pub use step::Step;
pub use tiger::{Guard, LrMode, Tiger, TigerConfig, TigerOutcome};

/// Checks that `params`, `grads` and every state buffer have one length.
#[inline]
pub(crate) fn check_lengths(params: usize, grads: usize, state: usize) -> Result<(), StepError> {
    if params == grads && params == state {
        Ok(())
    } else {
        Err(StepError::LengthMismatch {
            params,
            grads,
            state,
        })
    }
}
