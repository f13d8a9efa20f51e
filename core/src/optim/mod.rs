//! Optimizers, gradient transforms (clipping, EG step sizes, Flooding), learning-rate
//! schedules and parameter groups, behind one interface.
//!
//! | item | file | state per parameter |
//! |---|---|---|
//! | [`Lion`] | `lion.rs` | 1 moment (`m`) |
//! | [`Tiger`] | `tiger.rs` | 1 moment (`m`), accumulation included |
//! | [`AdamW`] | `adamw.rs` | 2 moments (`m`, `v`) |
//! | [`AdaX`] | `adax.rs` | 2 moments |
//! | [`Adafactor`] | `adafactor.rs` | rows + cols per matrix |
//! | [`Sgdm`], [`AdamWAccum`] | `sgdm.rs`, `adamw_accum.rs` | 1 / 2 moments, accumulation included |
//! | [`ExpGrad`] | `eg.rs` | none |
//! | [`GlobalNormClip`] | `clip.rs` | none |
//! | [`EgStepSize`] | `eg.rs` | 2 (`ν`, `g₋₁`) |
//! | [`Flooding`] | `flooding.rs` | none |
//! | [`Muon`] | `muon.rs` | 1 momentum matrix (+ Newton–Schulz scratch) |
//! | [`MuonWithAux`] | `muon_aux.rs` | Muon's on hidden matrices, the auxiliary's elsewhere |
//! | [`Sgd`] | `sgd.rs` | 1 moment when μ > 0, else none |
//! | [`Zo`] (zeroth-order estimate) | `zo.rs` | none: z regenerated from a counter |
//!
//! **The interface** (`interface.rs`, `chain.rs`): every optimizer implements [`Stage`] and
//! [`Optimizer`] (per tensor, described by a [`TensorSpec`], state in caller memory), and
//! [`Chain`] puts [`Transform`]s in front of any of them. Generic code uses only these.
//!
//! Moments are stored as any [`Moment`] type: `f32` (4 bytes) or [`half::bf16`]
//! (2 bytes). The arithmetic is always f32.
//!
//! Every step takes a [`Step`]: the 1-based step index `t` (micro-step for Tiger with
//! accumulation) and the learning rate for that step, usually from
//! `optimizer.at(t)` or `optimizer.at_scheduled(t, &schedule)`.

mod adafactor;
mod adamw;
mod adamw_accum;
mod adax;
mod amos;
mod chain;
mod clip;
mod eg;
mod error;
mod flooding;
mod groups;
mod health;
mod interface;
mod lazy;
mod lion;
mod lowrank;
mod moment;
mod muon;
mod muon_aux;
mod schedule;
mod sgd;
mod sgdm;
mod step;
mod tiger;
mod zo;

pub use adafactor::{Adafactor, AdafactorConfig};
pub use adamw::{AdamW, AdamWConfig};
pub use adamw_accum::{AdamWAccum, AdamWAccumConfig};
pub use adax::{AdaX, AdaXCoefficients, AdaXConfig, WeightDecay};
pub use amos::AmosRule;
pub use chain::{CautiousStep, Chain, ClipRound, Transform};
pub use clip::{ClipConfig, ClipForm, ClipReport, GlobalNormClip, NormAccumulator};
pub use eg::{EgStepSize, EgStepSizeConfig, ExpGrad, ExpGradConfig};
pub use error::{ConfigError, StepError};
pub use flooding::{Flooding, FloodingConfig};
pub use groups::{Grouped, ParamKind};
pub use health::GradHealth;
pub use interface::{check_buffers, moment_gap, Optimizer, Outcome, Shape, Stage, TensorSpec};
pub use lazy::Rows;
pub use lion::{Lion, LionConfig};
pub use lowrank::LowRank;
pub use moment::Moment;
pub use muon::{ns_scratch_len, AdjustLr, Muon, MuonConfig};
pub use muon_aux::MuonWithAux;
pub use schedule::{Constant, InverseTime, PiecewiseLinear, Schedule, WarmupCosine};
pub use sgd::{Sgd, SgdConfig};
pub use sgdm::{Sgdm, SgdmConfig};
pub use step::Step;
pub use tiger::{Guard, LrMode, Tiger, TigerConfig, TigerOutcome};
pub use zo::{
    CounterZ, DirectionSource, Directions, Estimator, Explicit, Perturbation, Zo, ZoConfig,
    ZoEstimate, ZoStatus, MAX_SAMPLES,
};

/// Checks that `params`, `grads` and every state buffer have one length.
/// Cautious masking's normaliser: `1 / max(mean(scale), 1e-5)` over `(update, gradient)`
/// pairs, where `scale = 1` when `update·g > 0`, else `factor`.
pub(crate) fn cautious_scale(pairs: impl Iterator<Item = (f32, f32)>, factor: f32) -> f32 {
    // Counts, not an f32 running sum: a sum of ones stops growing at 2^24 elements.
    let (mut agree, mut n) = (0usize, 0usize);
    for (u, g) in pairs {
        agree += usize::from(u * g > 0.0);
        n += 1;
    }
    let mean = (agree as f64 + factor as f64 * (n - agree) as f64) / n.max(1) as f64;
    (1.0 / mean.max(1e-5)) as f32
}

/// One coordinate's cautious weight: `(1 or factor) · scale`.
#[inline(always)]
pub(crate) fn cautious_weight(u: f32, g: f32, factor: f32, scale: f32) -> f32 {
    (if u * g > 0.0 { 1.0 } else { factor }) * scale
}

/// Cautious masking (Liang et al. 2024, arXiv 2411.16085; lion-pytorch `cautious_lion.py`)
/// for [`Lion::step_cautious`] and [`Tiger::step_cautious`]: coordinates whose update
/// disagrees in sign with the gradient are scaled by `factor` (0 freezes them), and every
/// scale is divided by the mean scale (at least 1e-5), so the update's size is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cautious {
    factor: f32,
}

impl Cautious {
    /// `factor ∈ [0, 1)` (1 would be the plain step).
    pub fn new(factor: f32) -> Result<Self, ConfigError> {
        Ok(Cautious {
            factor: error::unit_beta("cautious_factor", factor)?,
        })
    }

    /// The factor on disagreeing coordinates.
    pub const fn factor(&self) -> f32 {
        self.factor
    }
}

/// The accumulation window rule (kexue 8634) shared by Tiger, SGDM and AdamW with hidden
/// accumulation: micro-step `t` (1-based) decays a moment by `beta` on the first micro-step
/// of each window of `k`, by 1 on the others.
#[inline(always)]
pub(crate) fn window_decay(t: u64, k: u32, beta: f32) -> f32 {
    // k = 1 first: a 64-bit remainder is a library call on a Cortex-M.
    if k == 1 || (t - 1).is_multiple_of(k as u64) {
        beta
    } else {
        1.0
    }
}

/// `true` when micro-step `t` closes its window of `k` (the parameters move).
#[inline(always)]
pub(crate) const fn is_window_end(t: u64, k: u32) -> bool {
    k == 1 || t.is_multiple_of(k as u64)
}

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

/// One buffer of `got` elements where `expected` are needed (reported as grads and state).
#[inline]
pub(crate) fn check_len(expected: usize, got: usize) -> Result<(), StepError> {
    check_lengths(expected, got, got)
}
