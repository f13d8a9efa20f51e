//! Lion: EvoLved Sign Momentum (Chen et al. 2023, arXiv 2302.06675; kexue 9473).
//!
//! Intuition: move every weight by the same amount `lr`, in the direction of the sign of an
//! interpolation between the momentum and the new gradient; the momentum itself is updated
//! afterwards with a different (slower) coefficient.
//!
//! | config field | symbol | default | source |
//! |---|---|---|---|
//! | `lr` | η | 1e-4 | automl `lion_pytorch.py`, lion-pytorch |
//! | `beta1` | β₁ | 0.9 | the program search; LMs used 0.95 |
//! | `beta2` | β₂ | 0.99 | LMs used 0.98 |
//! | `weight_decay` | λ | 0.0 | automl, lion-pytorch (optax uses 1e-3) |
//!
//! Update, in execution order (decoupled decay uses θ before the step):
//! ```text
//! c = β₁·m + (1−β₁)·g
//! θ ← θ·(1 − η·λ) − η·sign(c)        sign(0) = 0
//! m ← β₂·m + (1−β₂)·g                 after the step, with β₂
//! ```
//! State: `m`, one moment per parameter (f32 or bf16), starting at 0. No bias correction,
//! no ε. Couplings: decay is multiplied by the lr (as in PyTorch and optax); use an lr 3–10×
//! smaller and a λ 3–10× larger than AdamW's.
//!
//! NaN: a NaN gradient propagates as in PyTorch (`torch.sign(NaN) = NaN`): that parameter
//! and its moment become NaN. Use [`super::Tiger`] for a guard.
//!
//! ```
//! use margay::optim::LionConfig;
//! let lion = LionConfig::new(1e-3).build().unwrap();
//! let (mut p, mut m) = ([1.0_f32, -1.0], [0.0_f32; 2]);
//! lion.step_array(lion.at(1), &mut p, &[0.5, -0.5], &mut m);
//! assert_eq!(p, [0.999, -0.999]);
//! ```

use super::error::{non_negative, positive, unit_beta, ConfigError, StepError};
use super::{check_lengths, Moment, Schedule, Step};
use crate::math::sign;
use crate::quant::Scalar;

/// Lion hyper-parameters (see the module docs for symbols and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LionConfig {
    /// Learning rate η.
    pub lr: f32,
    /// Interpolation coefficient β₁ for the update direction.
    pub beta1: f32,
    /// Momentum decay β₂.
    pub beta2: f32,
    /// Decoupled weight decay λ (multiplied by lr).
    pub weight_decay: f32,
}

impl Default for LionConfig {
    fn default() -> Self {
        Self::new(1e-4)
    }
}

impl LionConfig {
    /// Defaults with the given learning rate.
    pub const fn new(lr: f32) -> Self {
        LionConfig {
            lr,
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 0.0,
        }
    }

    /// Validates: `lr > 0` finite, `β₁, β₂ ∈ [0, 1)`, `λ >= 0` finite.
    pub fn build(self) -> Result<Lion, ConfigError> {
        positive("lr", self.lr)?;
        unit_beta("beta1", self.beta1)?;
        unit_beta("beta2", self.beta2)?;
        non_negative("weight_decay", self.weight_decay)?;
        Ok(Lion { cfg: self })
    }
}

/// A validated Lion optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lion {
    cfg: LionConfig,
}

impl Lion {
    /// The validated configuration.
    pub const fn config(&self) -> &LionConfig {
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

    /// One Lion step on slices. A length mismatch returns an error and modifies nothing.
    #[inline(always)]
    pub fn step<M: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
    ) -> Result<(), StepError> {
        check_lengths(params.len(), grads.len(), m.len())?;
        crate::simd::vectorized(LionLoop(self, s, params, grads, m));
        Ok(())
    }

    /// One Lion step on arrays (lengths agree by construction).
    pub fn step_array<M: Moment, const N: usize>(
        &self,
        s: Step,
        params: &mut [f32; N],
        grads: &[f32; N],
        m: &mut [M; N],
    ) {
        crate::simd::vectorized(LionLoop(self, s, params, grads, m));
    }

    /// One Lion step in any [`Scalar`] format (f32, bf16/f16, or fixed point such as
    /// [`crate::quant::I8F24`] on an FPU-less core), with the same operation order as
    /// [`Lion::step`]: for `f32` the results are bit-identical to it. Hyper-parameters are
    /// converted once (nearest, saturating); in fixed point every operation saturates and
    /// is integer arithmetic, so the results are the same bits on every target. Pick a
    /// format whose step resolves `lr` (I8F24: 6e-8; I16F16: 1.5e-5). A length mismatch
    /// returns an error and modifies nothing.
    pub fn step_scalar<S: Scalar>(
        &self,
        s: Step,
        params: &mut [S],
        grads: &[S],
        m: &mut [S],
    ) -> Result<(), StepError> {
        check_lengths(params.len(), grads.len(), m.len())?;
        let LionConfig {
            beta1,
            beta2,
            weight_decay,
            ..
        } = self.cfg;
        let lr = S::from_f32(s.lr);
        let decay = S::from_f32(1.0 - s.lr * weight_decay);
        let (b1, b2) = (S::from_f32(beta1), S::from_f32(beta2));
        let (c1, c2) = (S::from_f32(1.0 - beta1), S::from_f32(1.0 - beta2));
        for ((p, &g), m) in params.iter_mut().zip(grads).zip(m.iter_mut()) {
            let mt = *m;
            let c = b1.times(mt).plus(c1.times(g));
            *p = p.times(decay).minus(lr.times(c.sign()));
            *m = b2.times(mt).plus(c2.times(g));
        }
        Ok(())
    }

    /// One Lion step with **cautious masking** (lion-pytorch's `cautious_lion.py`, Liang et
    /// al. 2024; see [`super::Cautious`]): coordinates whose update `sign(c)` disagrees in
    /// sign with the gradient are scaled by the factor (0: frozen), and every scale is
    /// divided by the mean scale. A scalar loop. A length mismatch is an error and nothing
    /// is modified.
    pub fn step_cautious<M: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
        cautious: super::Cautious,
    ) -> Result<(), StepError> {
        check_lengths(params.len(), grads.len(), m.len())?;
        let cautious_factor = cautious.factor();
        let LionConfig {
            beta1,
            beta2,
            weight_decay,
            ..
        } = self.cfg;
        let (c1, c2) = (1.0 - beta1, 1.0 - beta2);
        let scale = super::cautious_scale(
            grads
                .iter()
                .zip(m.iter())
                .map(|(&g, m)| (sign(beta1 * m.load() + c1 * g), g)),
            cautious_factor,
        );
        let lr = s.lr;
        let decay = 1.0 - lr * weight_decay;
        for ((p, &g), m) in params.iter_mut().zip(grads).zip(m.iter_mut()) {
            let mt = m.load();
            let u = sign(beta1 * mt + c1 * g);
            *p = *p * decay - lr * (u * super::cautious_weight(u, g, cautious_factor, scale));
            *m = M::store(beta2 * mt + c2 * g);
        }
        Ok(())
    }

    #[inline(always)]
    fn kernel<M: Moment>(&self, s: Step, params: &mut [f32], grads: &[f32], m: &mut [M]) {
        let LionConfig {
            beta1,
            beta2,
            weight_decay,
            ..
        } = self.cfg;
        let lr = s.lr;
        let decay = 1.0 - lr * weight_decay;
        let (c1, c2) = (1.0 - beta1, 1.0 - beta2);
        for ((p, &g), m) in params.iter_mut().zip(grads).zip(m.iter_mut()) {
            let mt = m.load();
            let c = beta1 * mt + c1 * g;
            *p = *p * decay - lr * sign(c);
            *m = M::store(beta2 * mt + c2 * g);
        }
    }
}

/// One Lion step as a [`crate::simd::Kernel`].
struct LionLoop<'a, M>(&'a Lion, Step, &'a mut [f32], &'a [f32], &'a mut [M]);

impl<M: Moment> crate::simd::Kernel for LionLoop<'_, M> {
    type Out = ();
    #[inline(always)]
    fn run(self) {
        self.0.kernel(self.1, self.2, self.3, self.4)
    }
}

// Lion through the interface: state `m` (`len` values), any `Moment` storage.
super::interface::moment_optimizer!(
    Lion,
    "lion",
    moments: 1,
    lr: |o| o.cfg.lr,
    accumulation: |_| 1,
    updates: |_, _| true
);

/// Lion in a fixed-point or f64 format ([`Lion::step_scalar`]) through the interface.
macro_rules! lion_scalar {
    ($($t:ty),*) => {$(
impl super::Optimizer<$t, $t> for Lion {
    #[inline]
    fn apply(
        &self,
        _: &(),
        s: Step,
        _: &super::TensorSpec,
        params: &mut [$t],
        grads: &mut [$t],
        state: &mut [$t],
    ) -> Result<super::Outcome, StepError> {
        self.step_scalar(s, params, grads, state)?;
        Ok(super::Outcome::Updated)
    }
}
    )*};
}
lion_scalar!(f64, crate::quant::I8F24, crate::quant::I16F16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lion_rejects_bad_hyper_parameters() {
        for lr in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(LionConfig::new(lr).build().is_err());
        }
        for b in [-0.1, 1.0, f32::NAN] {
            assert!(LionConfig {
                beta1: b,
                ..LionConfig::new(1e-3)
            }
            .build()
            .is_err());
            assert!(LionConfig {
                beta2: b,
                ..LionConfig::new(1e-3)
            }
            .build()
            .is_err());
        }
        assert!(LionConfig {
            weight_decay: -1.0,
            ..LionConfig::new(1e-3)
        }
        .build()
        .is_err());
    }

    #[test]
    fn lion_mismatched_slices_modify_nothing() {
        let lion = LionConfig::new(1e-2).build().unwrap();
        let mut p = [1.0f32, 2.0];
        let mut m = [0.5f32; 3];
        let err = lion
            .step(lion.at(1), &mut p, &[1.0, 1.0], &mut m)
            .unwrap_err();
        assert!(matches!(
            err,
            StepError::LengthMismatch {
                params: 2,
                grads: 2,
                state: 3
            }
        ));
        assert_eq!(p, [1.0, 2.0]);
        assert_eq!(m, [0.5; 3]);
    }

    #[test]
    fn lion_nan_gradient_propagates_like_pytorch() {
        let lion = LionConfig::new(1e-2).build().unwrap();
        let mut p = [1.0f32, 2.0];
        let mut m = [0.0f32; 2];
        lion.step_array(lion.at(1), &mut p, &[f32::NAN, 1.0], &mut m);
        assert!(p[0].is_nan() && m[0].is_nan());
        assert_eq!(p[1], 2.0 - 1e-2);
    }

    #[test]
    fn lion_uses_old_momentum_with_beta1_then_updates_with_beta2() {
        // m = 1, g = -5: c = 0.9 - 0.5 = 0.4 > 0 so θ decreases; m = 0.99 - 0.05 = 0.94.
        let lion = LionConfig::new(0.1).build().unwrap();
        let (mut p, mut m) = ([0.0f32], [1.0f32]);
        lion.step_array(lion.at(1), &mut p, &[-5.0], &mut m);
        assert_eq!(p, [-0.1]);
        assert!((m[0] - 0.94).abs() < 1e-6);
    }
}
