//! SGD with PyTorch `torch.optim.SGD` semantics (coupled weight decay, dampening 0, no
//! Nesterov): the base rule of zeroth-order training (MeZO's `θ ← θ − η·(ĝ + λθ)` is this
//! rule with μ = 0).
//!
//! | config field | symbol | default | source |
//! |---|---|---|---|
//! | `lr` | η | 1e-3 | PyTorch |
//! | `momentum` | μ | 0 | PyTorch |
//! | `weight_decay` | λ | 0 | PyTorch (coupled: added to the gradient) |
//!
//! Step, in execution order:
//! ```text
//! d = g + λ·θ
//! m ← μ·m + d          (only when μ > 0; m starts at 0, so m = d at step 1 as in PyTorch)
//! θ ← θ − η·m          (θ ← θ − η·d when μ = 0)
//! ```
//! State: `m` (one value per parameter) when μ > 0, none when μ = 0. NaN gradients propagate.
//! [`SgdMomentum`](super::Sgdm) is margay's averaged form with accumulation; this one is the
//! sum form PyTorch users port from.
//!
//! ```
//! use margay::optim::SgdConfig;
//! let sgd = SgdConfig { weight_decay: 0.5, ..SgdConfig::new(0.1) }.build().unwrap();
//! let mut p = [2.0_f32];
//! sgd.step::<f32>(sgd.at(1), &mut p, &[1.0], &mut []).unwrap(); // d = 1 + 0.5·2 = 2
//! assert_eq!(p, [2.0 - 0.1 * 2.0]);
//! ```

use super::error::{non_negative, positive, unit_beta, ConfigError, StepError};
use super::{Moment, Outcome, Stage, Step, TensorSpec};

/// SGD hyper-parameters (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate η.
    pub lr: f32,
    /// Momentum μ (0 = none, no state).
    pub momentum: f32,
    /// Coupled weight decay λ (added to the gradient).
    pub weight_decay: f32,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self::new(1e-3)
    }
}

impl SgdConfig {
    /// Defaults (no momentum, no decay) with the given learning rate.
    pub const fn new(lr: f32) -> Self {
        SgdConfig {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
        }
    }

    /// Validates: `lr > 0` finite, `μ ∈ [0, 1)`, `λ >= 0` finite.
    pub fn build(self) -> Result<Sgd, ConfigError> {
        positive("lr", self.lr)?;
        unit_beta("momentum", self.momentum)?;
        non_negative("weight_decay", self.weight_decay)?;
        Ok(Sgd { cfg: self })
    }
}

/// A validated SGD optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    cfg: SgdConfig,
}

impl Sgd {
    /// The validated configuration.
    pub const fn config(&self) -> &SgdConfig {
        &self.cfg
    }

    /// Step `t` at the configured learning rate.
    pub const fn at(&self, t: u64) -> Step {
        Step::trusted(t, self.cfg.lr)
    }

    /// Momentum values per parameter: 1 when μ > 0, else 0.
    pub fn momentum_len(&self, n: usize) -> usize {
        if self.cfg.momentum > 0.0 {
            n
        } else {
            0
        }
    }

    /// One step on slices; `m` holds [`Sgd::momentum_len`] values. A length mismatch returns
    /// an error and modifies nothing.
    pub fn step<M: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
    ) -> Result<(), StepError> {
        let n = params.len();
        if grads.len() != n {
            return Err(StepError::LengthMismatch {
                params: n,
                grads: grads.len(),
                state: m.len(),
            });
        }
        if m.len() != self.momentum_len(n) {
            return Err(StepError::StateLength {
                expected: self.momentum_len(n),
                got: m.len(),
            });
        }
        self.kernel(s, params, grads, m);
        Ok(())
    }

    /// The element rule on one value: returns the new parameter and momentum (the reference
    /// every loop here, and the zeroth-order fused step, is tested against).
    #[inline(always)]
    pub fn scalar(&self, lr: f32, p: f32, g: f32, m: f32) -> (f32, f32) {
        let d = g + self.cfg.weight_decay * p;
        if self.cfg.momentum > 0.0 {
            let mt = self.cfg.momentum * m + d;
            (p - lr * mt, mt)
        } else {
            (p - lr * d, m)
        }
    }

    pub(crate) fn kernel<M: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
    ) {
        let lr = s.lr;
        if self.cfg.momentum > 0.0 {
            for ((p, &g), m) in params.iter_mut().zip(grads).zip(m.iter_mut()) {
                let (pn, mn) = self.scalar(lr, *p, g, m.load());
                *p = pn;
                *m = M::store(mn);
            }
        } else {
            for (p, &g) in params.iter_mut().zip(grads) {
                *p = self.scalar(lr, *p, g, 0.0).0;
            }
        }
    }
}

impl Stage for Sgd {
    type Round = ();
    const NAME: &'static str = "sgd";
    fn lr(&self) -> f32 {
        self.cfg.lr
    }
    fn state_len(&self, spec: &TensorSpec) -> usize {
        self.momentum_len(spec.len())
    }
    fn begin(&self, _loss: f32) {}
}

impl<M: Moment> super::Optimizer<M> for Sgd {
    fn apply(
        &self,
        _: &(),
        s: Step,
        _: &TensorSpec,
        params: &mut [f32],
        grads: &mut [f32],
        state: &mut [M],
    ) -> Result<Outcome, StepError> {
        self.step(s, params, grads, state)?;
        Ok(Outcome::Updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_sums_like_pytorch() {
        let sgd = SgdConfig {
            momentum: 0.5,
            ..SgdConfig::new(0.1)
        }
        .build()
        .unwrap();
        let (mut p, mut m) = ([1.0f32], [0.0f32]);
        sgd.step(sgd.at(1), &mut p, &[2.0], &mut m).unwrap();
        assert_eq!((p[0], m[0]), (1.0 - 0.1 * 2.0, 2.0));
        sgd.step(sgd.at(2), &mut p, &[2.0], &mut m).unwrap();
        assert_eq!(m[0], 0.5 * 2.0 + 2.0);
    }

    #[test]
    fn bad_config_and_lengths_are_refused() {
        assert!(SgdConfig::new(0.0).build().is_err());
        assert!(SgdConfig {
            momentum: 1.0,
            ..SgdConfig::new(0.1)
        }
        .build()
        .is_err());
        let sgd = SgdConfig::new(0.1).build().unwrap();
        let mut p = [1.0f32; 2];
        assert!(sgd.step::<f32>(sgd.at(1), &mut p, &[1.0], &mut []).is_err());
        assert!(sgd
            .step(sgd.at(1), &mut p, &[1.0; 2], &mut [0.0f32; 2])
            .is_err());
        assert_eq!(p, [1.0; 2]);
    }
}
