//! Exponentiated gradient for non-negative parameters, and the EG per-coordinate step-size
//! adaptation (kexue 8968; after Amid, Anil, Fifty, Warmuth 2022, arXiv 2202.00145).
//!
//! **Exponentiated gradient** ([`ExpGrad`]): gradient descent on `φ = ln θ` without the
//! `e^φ` factor of the chain rule, so a parameter that starts ≥ 0 stays ≥ 0 (mixture weights,
//! gains, scales):
//! ```text
//! θ ← θ ⊙ exp(−η·g)
//! ```
//! A negative (or NaN) parameter is an error and nothing is written. No state.
//!
//! **EG step sizes** ([`EgStepSize`], Su's simplified form of the paper's per-coordinate
//! gains): a gain ν per coordinate, `ν₀ = 1`, grows when consecutive gradients agree in sign
//! and shrinks when they alternate,
//! ```text
//! ν ← ν ⊙ exp(γ·g_{t−1} ⊙ g_t)            (ν_{t} = exp(γ·Σ g_{k−1}·g_k))
//! g ← ν ⊙ g                               handed to any base optimizer
//! ```
//! With plain SGD as the base this is Su's `θ ← θ − η·ν ⊙ g`. State: ν and g_{t−1} (two
//! tensors). The exponent is clamped to ±`max_exponent` per step so one outlier gradient
//! cannot overflow ν. The paper's global step-size scale and its use of the average gradient
//! were not found in any source margay could reach and are not implemented.
//!
//! ```
//! use margay::optim::{EgStepSizeConfig, ExpGradConfig};
//! let eg = ExpGradConfig::new(0.5).build().unwrap();
//! let mut w = [1.0_f32, 0.25];
//! eg.step(eg.at(1), &mut w, &[2.0, -2.0]).unwrap();
//! assert!((w[0] - (-1.0f32).exp()).abs() < 1e-6 && (w[1] - 0.25 * 1.0f32.exp()).abs() < 1e-6);
//! assert!(eg.step(eg.at(2), &mut [-1.0], &[0.0]).is_err());
//!
//! let adapt = EgStepSizeConfig::new(1.0).build().unwrap();
//! let (mut nu, mut prev) = ([1.0_f32], [0.0_f32]);
//! let mut g = [0.5_f32];
//! adapt.apply(&mut g, &mut nu, &mut prev).unwrap(); // first step: ν stays 1
//! let mut g = [0.5_f32];
//! adapt.apply(&mut g, &mut nu, &mut prev).unwrap(); // same sign: ν = e^0.25
//! assert!((nu[0] - 0.25f32.exp()).abs() < 1e-6 && (g[0] - 0.5 * nu[0]).abs() < 1e-6);
//! ```

use super::error::{positive, ConfigError, StepError};
use super::{check_lengths, Schedule, Step};
use crate::math::exp;

/// Exponentiated-gradient hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpGradConfig {
    /// Learning rate η.
    pub lr: f32,
}

impl ExpGradConfig {
    /// A config with learning rate `lr`.
    pub const fn new(lr: f32) -> Self {
        ExpGradConfig { lr }
    }

    /// Validates: `lr > 0` finite.
    pub fn build(self) -> Result<ExpGrad, ConfigError> {
        positive("lr", self.lr)?;
        Ok(ExpGrad { cfg: self })
    }
}

/// A validated exponentiated-gradient optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpGrad {
    cfg: ExpGradConfig,
}

impl ExpGrad {
    /// The validated configuration.
    pub const fn config(&self) -> &ExpGradConfig {
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

    /// `θ ← θ ⊙ exp(−η·g)`. Errors, with nothing written: lengths differ, or a parameter is
    /// negative or NaN.
    pub fn step(&self, s: Step, params: &mut [f32], grads: &[f32]) -> Result<(), StepError> {
        check_lengths(params.len(), grads.len(), params.len())?;
        non_negative_params(params)?;
        for (p, &g) in params.iter_mut().zip(grads) {
            // The exponent is capped so the factor stays finite (a zero weight stays 0,
            // never 0·∞); below −104 the factor is 0 anyway. A NaN gradient propagates.
            *p *= exp((-s.lr * g).min(88.0));
        }
        Ok(())
    }
}

/// `NegativeParameter` naming the first weight that is negative or NaN.
fn non_negative_params(params: &[f32]) -> Result<(), StepError> {
    match params.iter().position(|p| p.is_nan() || *p < 0.0) {
        Some(index) => Err(StepError::NegativeParameter { index }),
        None => Ok(()),
    }
}

/// EG step-size adaptation hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EgStepSizeConfig {
    /// γ, the meta learning rate.
    pub gamma: f32,
    /// Bound on `|γ·g_{t−1}·g_t|` per step.
    pub max_exponent: f32,
}

impl EgStepSizeConfig {
    /// A config with meta learning rate `gamma` and exponent bound 1.
    pub const fn new(gamma: f32) -> Self {
        EgStepSizeConfig {
            gamma,
            max_exponent: 1.0,
        }
    }

    /// Validates: `gamma > 0` and `max_exponent > 0`, both finite.
    pub fn build(self) -> Result<EgStepSize, ConfigError> {
        positive("gamma", self.gamma)?;
        positive("max_exponent", self.max_exponent)?;
        Ok(EgStepSize { cfg: self })
    }
}

/// A validated EG step-size adaptation; state `ν` (start at 1) and `g_{t−1}` (start at 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EgStepSize {
    cfg: EgStepSizeConfig,
}

impl EgStepSize {
    /// The validated configuration.
    pub const fn config(&self) -> &EgStepSizeConfig {
        &self.cfg
    }

    /// Updates `ν ← ν·exp(clamp(γ·prev·g))`, stores `g` in `prev`, and scales `g ← ν·g` in
    /// place for the base optimizer. A length mismatch is an error and writes nothing.
    /// `ν` and `g_{t−1}` may be stored in bf16 (any [`super::Moment`]); the arithmetic is f32.
    pub fn apply<M: super::Moment>(
        &self,
        grads: &mut [f32],
        nu: &mut [M],
        prev: &mut [M],
    ) -> Result<(), StepError> {
        check_lengths(grads.len(), nu.len(), prev.len())?;
        let (gamma, cap) = (self.cfg.gamma, self.cfg.max_exponent);
        for ((g, n), p) in grads.iter_mut().zip(nu.iter_mut()).zip(prev.iter_mut()) {
            // Non-finite gradients leave ν and the stored gradient as they were (and reach
            // the base optimizer, whose own rule applies).
            if g.is_finite() {
                *n = M::store(n.load() * exp((gamma * p.load() * *g).clamp(-cap, cap)));
                *p = M::store(*g);
            }
            *g *= n.load();
        }
        Ok(())
    }
}

/// ExpGrad's names and lengths for the [`super::Optimizer`] interface.
impl super::Stage for ExpGrad {
    type Round = ();
    const NAME: &'static str = "exp-grad";
    fn lr(&self) -> f32 {
        self.cfg.lr
    }
    fn state_len(&self, _: &super::TensorSpec) -> usize {
        0
    }
    fn begin(&self, _loss: f32) {}
}
/// Exponentiated gradient through the interface: no state.
impl<M: super::Moment> super::Optimizer<M> for ExpGrad {
    fn check_params(&self, params: &[f32]) -> Result<(), StepError> {
        non_negative_params(params)
    }
    #[inline]
    fn apply(
        &self,
        _: &(),
        s: Step,
        _: &super::TensorSpec,
        params: &mut [f32],
        grads: &mut [f32],
        _: &mut [M],
    ) -> Result<super::Outcome, StepError> {
        self.step(s, params, grads)?;
        Ok(super::Outcome::Updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eg_rejects_bad_configs_and_negative_parameters() {
        assert!(ExpGradConfig::new(0.0).build().is_err());
        assert!(EgStepSizeConfig::new(f32::NAN).build().is_err());
        let eg = ExpGradConfig::new(0.1).build().unwrap();
        let mut w = [0.5f32, -0.1, 0.2];
        assert_eq!(
            eg.step(eg.at(1), &mut w, &[1.0; 3]),
            Err(StepError::NegativeParameter { index: 1 })
        );
        assert_eq!(w, [0.5, -0.1, 0.2]);
        assert!(eg.step(eg.at(1), &mut [f32::NAN], &[1.0]).is_err());
    }

    /// Non-negative parameters stay non-negative under any finite gradients, and zero stays
    /// zero (a multiplicative update).
    #[test]
    fn eg_keeps_parameters_non_negative() {
        let eg = ExpGradConfig::new(1.0).build().unwrap();
        let mut w = [0.0f32, 1e-30, 3.0, 1.0];
        for t in 1..200u64 {
            let g = [1.0, -5.0, 50.0 * (t as f32).sin(), -80.0];
            eg.step(eg.at(t), &mut w, &g).unwrap();
            assert!(w.iter().all(|x| *x >= 0.0), "{w:?}");
        }
        assert_eq!(w[0], 0.0);
        // A huge negative gradient cannot turn a zero weight into 0·∞ = NaN.
        let mut z = [0.0f32, 1.0];
        eg.step(eg.at(1), &mut z, &[-1e30, -1e30]).unwrap();
        assert_eq!(z[0], 0.0);
        assert!(z[1].is_finite());
    }

    /// EG on the probability simplex's classic use: mixture weights drift toward the
    /// coordinate with the lowest loss.
    #[test]
    fn eg_favours_the_coordinate_with_the_smallest_gradient() {
        let eg = ExpGradConfig::new(0.1).build().unwrap();
        let mut w = [1.0f32; 3];
        for t in 1..50 {
            eg.step(eg.at(t), &mut w, &[0.3, 0.1, 0.2]).unwrap();
        }
        assert!(w[1] > w[2] && w[2] > w[0]);
    }

    #[test]
    fn step_sizes_grow_on_agreement_and_shrink_on_alternation() {
        let a = EgStepSizeConfig::new(0.5).build().unwrap();
        let (mut nu, mut prev) = ([1.0f32; 2], [0.0f32; 2]);
        for t in 0..10 {
            let s = if t % 2 == 0 { 1.0 } else { -1.0 };
            let mut g = [1.0f32, s];
            a.apply(&mut g, &mut nu, &mut prev).unwrap();
        }
        assert!(nu[0] > 1.0 && nu[1] < 1.0, "{nu:?}");
        // The clamp bounds one step's change.
        let (mut nu, mut prev) = ([1.0f32], [1e6f32]);
        a.apply(&mut [1e6], &mut nu, &mut prev).unwrap();
        assert!((nu[0] - 1.0f32.exp()).abs() < 1e-5);
        // NaN and ±Inf leave the state alone.
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let (mut nu, mut prev) = ([2.0f32], [0.5f32]);
            a.apply(&mut [bad], &mut nu, &mut prev).unwrap();
            assert_eq!((nu, prev), ([2.0], [0.5]));
        }
    }
}
