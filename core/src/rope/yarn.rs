//! YaRN (Peng et al. 2023; Hugging Face `yarn`, ggml `rope_yarn`).
//!
//! Pairs that turn many times over the training context extrapolate (keep θᵢ), pairs that
//! turn less than once interpolate (θᵢ / s), and a linear ramp blends the ones between:
//!
//! | field | symbol | default |
//! |---|---|---|
//! | `factor` | s | required |
//! | `original_max_position_embeddings` | L₀ | required |
//! | `beta_fast` | β_fast (rotations where the ramp starts) | 32 |
//! | `beta_slow` | β_slow (rotations where it ends) | 1 |
//! | `truncate` | floor/ceil the ramp ends | `true` (newer Hugging Face; ggml always) |
//! | `mscale`, `mscale_all_dim` | DeepSeek's attention-factor pair | `None` |
//! | `attention_factor` | explicit override | `None` |
//!
//! 1. corr(ρ) = r·ln(L₀/(2πρ)) / (2·ln base); low = corr(β_fast), high = corr(β_slow),
//!    floored/ceiled when `truncate`, clamped to [0, r − 1] (Hugging Face clamps to r − 1,
//!    not r/2 − 1).
//! 2. rampᵢ = clamp((i − low)/(high − low), 0, 1), with high += 0.001 when high = low.
//! 3. θ′ᵢ = (θᵢ/s)·rampᵢ + θᵢ·(1 − rampᵢ).
//! 4. attention factor = `attention_factor`, else mscale(s, mscale)/mscale(s, mscale_all_dim)
//!    when both are set, else mscale(s, 1), where mscale(s, m) = 0.1·m·ln s + 1 (1 if s ≤ 1).
//!
//! Example: r = 128, base 10⁴, L₀ = 4096, s = 4 gives low = 20, high = 46 (untruncated
//! 20.94 and 45.03) and an attention factor of 1.1386.

use super::freq::{default_inv_freq, positive};
use super::RopeError;

/// YaRN's parameters, named as Hugging Face's `rope_scaling` names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Yarn {
    /// s > 0.
    pub factor: f64,
    /// L₀ > 0 (Hugging Face falls back to `max_position_embeddings` when absent).
    pub original_max_position_embeddings: u32,
    /// β_fast > β_slow.
    pub beta_fast: f64,
    /// β_slow > 0.
    pub beta_slow: f64,
    /// Floor/ceil the ramp ends (changes them by up to 1: golden files record it).
    pub truncate: bool,
    /// DeepSeek's numerator mscale (used only with `mscale_all_dim`).
    pub mscale: Option<f64>,
    /// DeepSeek's denominator mscale.
    pub mscale_all_dim: Option<f64>,
    /// Explicit attention factor (overrides the mscale rule).
    pub attention_factor: Option<f64>,
}

impl Yarn {
    /// Defaults: β_fast 32, β_slow 1, `truncate` on, no mscale, no override.
    pub const fn new(factor: f64, original_max_position_embeddings: u32) -> Self {
        Yarn {
            factor,
            original_max_position_embeddings,
            beta_fast: 32.0,
            beta_slow: 1.0,
            truncate: true,
            mscale: None,
            mscale_all_dim: None,
            attention_factor: None,
        }
    }

    pub(super) fn ramp(&self, base: f64, rotary_dim: usize) -> Result<Ramp, RopeError> {
        let s = positive(self.factor, "factor")?;
        if self.original_max_position_embeddings == 0 {
            return Err(RopeError::BadParam {
                name: "original_max_position_embeddings",
            });
        }
        let slow = positive(self.beta_slow, "beta_slow")?;
        let fast = positive(self.beta_fast, "beta_fast")?;
        if fast <= slow {
            return Err(RopeError::BadParam { name: "beta_fast" });
        }
        let r = rotary_dim as f64;
        let l0 = self.original_max_position_embeddings as f64;
        let corr =
            |rot: f64| r * libm::log(l0 / (rot * core::f64::consts::TAU)) / (2.0 * libm::log(base));
        let (mut low, mut high) = (corr(fast), corr(slow));
        if self.truncate {
            low = libm::floor(low);
            high = libm::ceil(high);
        }
        let low = low.max(0.0);
        let mut high = high.min(r - 1.0);
        if high == low {
            high += 0.001;
        }
        let mscale = |m: f64| {
            if s <= 1.0 {
                1.0
            } else {
                0.1 * m * libm::log(s) + 1.0
            }
        };
        let attention_factor = match (self.attention_factor, self.mscale, self.mscale_all_dim) {
            (Some(a), _, _) => positive(a, "attention_factor")?,
            (None, Some(m), Some(md)) if m != 0.0 && md != 0.0 => {
                let m = positive(m, "mscale")?;
                let md = positive(md, "mscale_all_dim")?;
                mscale(m) / mscale(md)
            }
            _ => mscale(1.0),
        };
        Ok(Ramp {
            factor: s,
            low,
            high,
            attention_factor,
        })
    }
}

/// The resolved ramp.
pub(super) struct Ramp {
    factor: f64,
    low: f64,
    high: f64,
    pub(super) attention_factor: f64,
}

impl Ramp {
    /// θ′ᵢ = (θᵢ/s)·rampᵢ + θᵢ·(1 − rampᵢ).
    pub(super) fn inv_freq(&self, base: f64, i: usize, rotary_dim: usize) -> f64 {
        let theta = default_inv_freq(base, i, rotary_dim);
        let ramp = ((i as f64 - self.low) / (self.high - self.low)).clamp(0.0, 1.0);
        (theta / self.factor) * ramp + theta * (1.0 - ramp)
    }
}
