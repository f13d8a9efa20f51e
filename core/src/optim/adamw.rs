//! AdamW with PyTorch semantics (Loshchilov & Hutter 2019; `torch.optim.AdamW`).
//!
//! Intuition: scale each coordinate's step by the inverse RMS of its recent gradients;
//! weight decay is applied to the weights directly ("decoupled"), not through the gradient.
//!
//! | config field | symbol | default | source |
//! |---|---|---|---|
//! | `lr` | γ | 1e-3 | PyTorch |
//! | `beta1` | β₁ | 0.9 | PyTorch |
//! | `beta2` | β₂ | 0.999 | PyTorch |
//! | `eps` | ε | 1e-8 | PyTorch (burn's 1e-5 differs; margay follows PyTorch) |
//! | `weight_decay` | λ | 1e-2 | PyTorch |
//!
//! Update at step t (1-based), in PyTorch's execution order:
//! ```text
//! θ ← θ·(1 − γ·λ)                       decay multiplied by the lr
//! m ← β₁·m + (1−β₁)·g
//! v ← β₂·v + (1−β₂)·g²
//! θ ← θ − (γ / (1−β₁ᵗ)) · m / ( sqrt(v) / sqrt(1−β₂ᵗ) + ε )     ε after the square root
//! ```
//! State: `m`, `v` (f32, or bf16 for `m`; keep `v` in f32, see [`super::Moment`]) and the
//! step index, which the caller passes in [`super::Step`]. The bias corrections are
//! computed in f32 (`libm::powf`). Its first step moves every weight with a non-zero
//! gradient by ≈ γ (exactly `γ·|g|/(|g| + ε)`).
//!
//! NaN: a NaN gradient propagates as in PyTorch: that parameter and both moments become NaN.
//!
//! ```
//! use margay::optim::AdamWConfig;
//! let adamw = AdamWConfig { weight_decay: 0.0, ..AdamWConfig::new(0.1) }.build().unwrap();
//! let (mut p, mut m, mut v) = ([1.0_f32], [0.0_f32], [0.0_f32]);
//! adamw.step_array(adamw.at(1), &mut p, &[4.0], &mut m, &mut v);
//! assert!((p[0] - 0.9).abs() < 1e-6);
//! ```

use super::error::{non_negative, positive, unit_beta, ConfigError, StepError};
use super::{check_lengths, Moment, Schedule, Step};
use crate::math::{powf, sqrt};
use crate::simd::AdamWConsts;

/// AdamW hyper-parameters (see the module docs for symbols and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate γ.
    pub lr: f32,
    /// First-moment decay β₁.
    pub beta1: f32,
    /// Second-moment decay β₂.
    pub beta2: f32,
    /// ε, added after the square root.
    pub eps: f32,
    /// Decoupled weight decay λ (multiplied by γ).
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self::new(1e-3)
    }
}

impl AdamWConfig {
    /// PyTorch's defaults with the given learning rate.
    pub const fn new(lr: f32) -> Self {
        AdamWConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }

    /// Validates: `lr, eps > 0` finite; `β₁, β₂ ∈ [0, 1)`; `λ >= 0` finite.
    pub fn build(self) -> Result<AdamW, ConfigError> {
        positive("lr", self.lr)?;
        unit_beta("beta1", self.beta1)?;
        unit_beta("beta2", self.beta2)?;
        positive("eps", self.eps)?;
        non_negative("weight_decay", self.weight_decay)?;
        Ok(AdamW { cfg: self })
    }
}

/// A validated AdamW optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamW {
    cfg: AdamWConfig,
}

impl AdamW {
    /// The validated configuration.
    pub const fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// Step `t` at the configured learning rate.
    pub const fn at(&self, t: u64) -> Step {
        Step::trusted(t, self.cfg.lr)
    }

    /// Step `t` at the configured learning rate times `schedule.factor(t)`.
    pub fn at_scheduled<S: Schedule>(&self, t: u64, schedule: &S) -> Step {
        Step::trusted(t, self.cfg.lr * schedule.factor(t))
    }

    /// One AdamW step on slices. A length mismatch returns an error and modifies nothing.
    pub fn step<M: Moment, V: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
        v: &mut [V],
    ) -> Result<(), StepError> {
        check_lengths(params.len(), grads.len(), m.len())?;
        check_lengths(params.len(), grads.len(), v.len())?;
        self.kernel(s, params, grads, m, v);
        Ok(())
    }

    /// One AdamW step on arrays (lengths agree by construction).
    pub fn step_array<M: Moment, V: Moment, const N: usize>(
        &self,
        s: Step,
        params: &mut [f32; N],
        grads: &[f32; N],
        m: &mut [M; N],
        v: &mut [V; N],
    ) {
        self.kernel(s, params, grads, m, v);
    }

    fn kernel<M: Moment, V: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
        v: &mut [V],
    ) {
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
            ..
        } = self.cfg;
        let lr = s.lr;
        // f32 exponent: exact for t <= 2^24; beyond that β^t has long been 0 in f32.
        let t = s.t as f32;
        let bias1 = 1.0 - powf(beta1, t);
        let k = AdamWConsts {
            beta1,
            c1: 1.0 - beta1,
            beta2,
            c2: 1.0 - beta2,
            bias2_sqrt: sqrt(1.0 - powf(beta2, t)),
            eps,
            step_size: lr / bias1,
            decay: 1.0 - lr * weight_decay,
        };
        apply(&k, params, grads, m, v);
    }
}

/// One AdamW update with the step's scalars `k` (also used by [`super::AdamWAccum`], whose
/// moment factors vary within a window): f32 moments take the explicit AVX2 loop where the
/// CPU has it (the same operations), others the scalar definition.
pub(super) fn apply<M: Moment, V: Moment>(
    k: &AdamWConsts,
    params: &mut [f32],
    grads: &[f32],
    m: &mut [M],
    v: &mut [V],
) {
    if let (Some(m32), Some(v32)) = (M::as_f32_mut(m), V::as_f32_mut(v)) {
        if crate::simd::adamw_f32(params, grads, m32, v32, k) {
            return;
        }
    }
    let rows = params
        .iter_mut()
        .zip(grads)
        .zip(m.iter_mut().zip(v.iter_mut()));
    for ((p, &g), (m, v)) in rows {
        let (mt, vt) = k.scalar(p, g, m.load(), v.load());
        *m = M::store(mt);
        *v = V::store(vt);
    }
}

// AdamW through the interface: state `[m | gap | v]` (`2·len` values plus
// `moment_gap(len)`, 0 below 16,384 values); one storage type (mixed storage is the direct
// `AdamW::step`).
super::interface::moment_optimizer!(
    AdamW,
    "adamw",
    moments: 2,
    lr: |o| o.cfg.lr,
    accumulation: |_| 1,
    updates: |_, _| true
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adamw_rejects_bad_hyper_parameters() {
        assert!(AdamWConfig::new(-1.0).build().is_err());
        assert!(AdamWConfig {
            eps: 0.0,
            ..AdamWConfig::new(1e-3)
        }
        .build()
        .is_err());
        assert!(AdamWConfig {
            eps: -1e-8,
            ..AdamWConfig::new(1e-3)
        }
        .build()
        .is_err());
        assert!(AdamWConfig {
            beta2: 1.0,
            ..AdamWConfig::new(1e-3)
        }
        .build()
        .is_err());
        assert!(AdamWConfig {
            beta1: f32::NAN,
            ..AdamWConfig::new(1e-3)
        }
        .build()
        .is_err());
    }

    #[test]
    fn adamw_mismatched_second_moment_modifies_nothing() {
        let a = AdamWConfig::new(1e-3).build().unwrap();
        let mut p = [1.0f32; 2];
        let mut m = [0.0f32; 2];
        let mut v = [0.0f32; 1];
        assert!(a
            .step(a.at(1), &mut p, &[1.0, 1.0], &mut m, &mut v)
            .is_err());
        assert_eq!((p, m, v), ([1.0; 2], [0.0; 2], [0.0; 1]));
    }

    #[test]
    fn adamw_nan_gradient_propagates_like_pytorch() {
        let a = AdamWConfig::new(1e-3).build().unwrap();
        let (mut p, mut m, mut v) = ([1.0f32, 1.0], [0.0f32; 2], [0.0f32; 2]);
        a.step_array(a.at(1), &mut p, &[f32::NAN, 1.0], &mut m, &mut v);
        assert!(p[0].is_nan() && m[0].is_nan() && v[0].is_nan());
        assert!(p[1].is_finite());
    }
}
