//! SGD with momentum, gradient accumulation hidden in the momentum (kexue 8634).
//!
//! Intuition: averaging k micro-batch gradients in a separate buffer before a momentum step
//! is wasteful, because the momentum already is a running sum: decay it by β on the first
//! micro-step of each window, add `(1−β)/k · g` on every micro-step, and move the weights on
//! the last one. No gradient buffer; one state tensor, as Tiger.
//!
//! | config field | symbol | default | source |
//! |---|---|---|---|
//! | `lr` | η | 1e-2 | |
//! | `momentum` | β | 0.9 | PyTorch's usual momentum |
//! | `weight_decay` | λ | 0 | decoupled, multiplied by η |
//! | `accumulation` | k | 1 | |
//!
//! Micro-steps t = 1, 2, … (`χ(t) = 1` when `t ≡ 0 mod k`):
//! ```text
//! m ← b·m + (1−β)/k·g          b = β on the first micro-step of a window, else 1
//! if χ(t):  θ ← θ·(1 − η·λ) − η·m
//! ```
//! After a window, `m = β·m_prev + (1−β)·mean(g)`: exactly SGDM on the window's mean gradient.
//! With k = 1 this is PyTorch's `SGD(momentum=β, dampening=0)` with `lr = η·(1−β)` (margay's
//! momentum is an average, PyTorch's a sum; zero initial state gives the same first step).
//! Golden vectors check both against `torch.optim.SGD` on window means.
//!
//! State: `m` (f32 or bf16). NaN gradients propagate (no guard; use Tiger for one).
//!
//! ```
//! use margay::optim::SgdmConfig;
//! let sgdm = SgdmConfig { accumulation: 2, ..SgdmConfig::new(0.5) }.build().unwrap();
//! let (mut p, mut m) = ([1.0_f32], [0.0_f32]);
//! sgdm.step_array(sgdm.at(1), &mut p, &[2.0], &mut m); // m = 0.1·2/2
//! assert_eq!(p, [1.0]);
//! sgdm.step_array(sgdm.at(2), &mut p, &[4.0], &mut m); // m = 0.1 + 0.1·4/2 = 0.3
//! assert!((p[0] - (1.0 - 0.5 * 0.3)).abs() < 1e-6);
//! ```

use super::error::{non_negative, positive, unit_beta, ConfigError, StepError};
use super::{check_lengths, Moment, Schedule, Step};

/// SGDM hyper-parameters (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdmConfig {
    /// Learning rate η.
    pub lr: f32,
    /// Momentum β.
    pub momentum: f32,
    /// Decoupled weight decay λ (multiplied by η).
    pub weight_decay: f32,
    /// Micro-steps per update k (>= 1).
    pub accumulation: u32,
}

impl Default for SgdmConfig {
    fn default() -> Self {
        Self::new(1e-2)
    }
}

impl SgdmConfig {
    /// Defaults with the given learning rate.
    pub const fn new(lr: f32) -> Self {
        SgdmConfig {
            lr,
            momentum: 0.9,
            weight_decay: 0.0,
            accumulation: 1,
        }
    }

    /// Validates: `lr > 0` finite, `β ∈ [0, 1)`, `λ >= 0` finite, `k >= 1`.
    pub fn build(self) -> Result<Sgdm, ConfigError> {
        positive("lr", self.lr)?;
        unit_beta("momentum", self.momentum)?;
        non_negative("weight_decay", self.weight_decay)?;
        if self.accumulation == 0 {
            return Err(ConfigError::Zero {
                field: "accumulation",
            });
        }
        Ok(Sgdm {
            cfg: self,
            add: (1.0 - self.momentum) / self.accumulation as f32,
        })
    }
}

/// A validated SGDM optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgdm {
    cfg: SgdmConfig,
    add: f32,
}

impl Sgdm {
    /// The validated configuration.
    pub const fn config(&self) -> &SgdmConfig {
        &self.cfg
    }

    /// Micro-step `t` at the configured learning rate.
    pub const fn at(&self, t: u64) -> Step {
        Step::trusted(t, self.cfg.lr)
    }

    /// Micro-step `t` at the configured learning rate times `schedule.factor(t)`.
    pub fn at_scheduled<S: Schedule>(&self, t: u64, schedule: &S) -> Step {
        Step::trusted(t, self.cfg.lr * schedule.factor(t))
    }

    /// `true` when micro-step `t` updates the parameters (`t ≡ 0 mod k`).
    pub const fn is_update_step(&self, t: u64) -> bool {
        super::is_window_end(t, self.cfg.accumulation)
    }

    /// One micro-step on slices. A length mismatch returns an error and modifies nothing.
    pub fn step<M: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
    ) -> Result<(), StepError> {
        check_lengths(params.len(), grads.len(), m.len())?;
        self.kernel(s, params, grads, m);
        Ok(())
    }

    /// One micro-step on arrays (lengths agree by construction).
    pub fn step_array<M: Moment, const N: usize>(
        &self,
        s: Step,
        params: &mut [f32; N],
        grads: &[f32; N],
        m: &mut [M; N],
    ) {
        self.kernel(s, params, grads, m);
    }

    fn kernel<M: Moment>(&self, s: Step, params: &mut [f32], grads: &[f32], m: &mut [M]) {
        let b = super::window_decay(s.t, self.cfg.accumulation, self.cfg.momentum);
        let a = self.add;
        if !self.is_update_step(s.t) {
            for (m, &g) in m.iter_mut().zip(grads) {
                *m = M::store(b * m.load() + a * g);
            }
            return;
        }
        let eta = s.lr;
        let decay = 1.0 - eta * self.cfg.weight_decay;
        for ((p, &g), m) in params.iter_mut().zip(grads).zip(m.iter_mut()) {
            let mt = b * m.load() + a * g;
            *m = M::store(mt);
            *p = *p * decay - eta * mt;
        }
    }
}

// SGDM through the interface: state `m` (`len` values).
super::interface::moment_optimizer!(
    Sgdm,
    "sgdm",
    moments: 1,
    lr: |o| o.cfg.lr,
    accumulation: |o| o.cfg.accumulation,
    updates: |o, t| o.is_update_step(t)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgdm_rejects_bad_hyper_parameters() {
        let ok = SgdmConfig::new(1e-2);
        for bad in [
            SgdmConfig { lr: 0.0, ..ok },
            SgdmConfig {
                momentum: 1.0,
                ..ok
            },
            SgdmConfig {
                weight_decay: f32::NAN,
                ..ok
            },
            SgdmConfig {
                accumulation: 0,
                ..ok
            },
        ] {
            assert!(bad.build().is_err(), "{bad:?}");
        }
    }

    /// k micro-steps of hidden accumulation equal one step on the mean gradient.
    #[test]
    fn a_window_equals_one_step_on_the_mean_gradient() {
        let acc = SgdmConfig {
            accumulation: 4,
            weight_decay: 0.1,
            ..SgdmConfig::new(0.05)
        }
        .build()
        .unwrap();
        let one = SgdmConfig {
            weight_decay: 0.1,
            ..SgdmConfig::new(0.05)
        }
        .build()
        .unwrap();
        let grads = [[0.5f32, -1.0], [0.25, 2.0], [-0.5, 1.0], [1.0, -2.0]];
        let (mut p, mut m) = ([1.0f32, -1.0], [0.0f32; 2]);
        let (mut q, mut n) = ([1.0f32, -1.0], [0.0f32; 2]);
        for round in 0..3u64 {
            for (i, g) in grads.iter().enumerate() {
                acc.step_array(acc.at(round * 4 + i as u64 + 1), &mut p, g, &mut m);
            }
            let mean = [0.3125f32, 0.0];
            one.step_array(one.at(round + 1), &mut q, &mean, &mut n);
            for i in 0..2 {
                assert!((p[i] - q[i]).abs() < 1e-6 && (m[i] - n[i]).abs() < 1e-6);
            }
        }
    }
}
