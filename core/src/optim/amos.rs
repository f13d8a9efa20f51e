//! Amos-derived rules for sign optimizers (kexue 9344, after Tian & Parikh 2022,
//! arXiv 2210.11693): learning rate and weight decay from a parameter's init scale, and the
//! inverse-time schedule they share.
//!
//! With the update `θ ← θ − (α·u + ρ·θ)` and the target "each step changes θ by about α₀ of
//! its expected scale ‖ε₀‖ = √k·σ" (k elements, init standard deviation σ):
//! ```text
//! α = α₀·‖ε₀‖/‖u‖                 sign updates (‖u‖ = √k):    α = α₀·σ
//! ρ = α₀²/(2q)  ⇒ λ = ρ/α          sign updates, q = 1:        λ = α₀/(2σ)
//! decay(t) = 1/(1 + 2·α₀·p₀·t)     (inverse time; α and ρ share it)
//! ```
//! σ: the init standard deviation of a kernel; 0.5 for zero-init biases and for norm gains
//! (init 1), as the paper and Su take it. α₀ is the relative change per step, about 1e-3
//! (up to 1e-2 on easy tasks).
//!
//! [`AmosRule::lion`] and [`AmosRule::tiger`] turn these into per-group configs (Tiger with
//! `LrMode::Absolute`, since the scale is now explicit); [`AmosRule::schedule`] gives the
//! decay as an [`InverseTime`] to pass to `at_scheduled`.
//!
//! ```
//! use margay::optim::{AmosRule, ParamKind};
//! let amos = AmosRule::new(1e-3).unwrap();
//! let sigma = AmosRule::sigma(ParamKind::Weight, 0.02);
//! let lion = amos.lion(sigma).unwrap();
//! assert!((lion.config().lr - 2e-5).abs() < 1e-10);            // α₀·σ
//! assert!((lion.config().weight_decay - 0.025).abs() < 1e-7);   // α₀/(2σ)
//! assert_eq!(AmosRule::sigma(ParamKind::NormGain, 0.02), 0.5);
//! ```

use super::error::{positive, ConfigError};
use super::{InverseTime, Lion, LionConfig, LrMode, ParamKind, Tiger, TigerConfig};

/// The Amos-derived rule: α₀, the relative change per step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmosRule {
    alpha0: f32,
}

impl AmosRule {
    /// `alpha0 > 0` finite.
    pub fn new(alpha0: f32) -> Result<Self, ConfigError> {
        Ok(AmosRule {
            alpha0: positive("alpha0", alpha0)?,
        })
    }

    /// α₀.
    pub const fn alpha0(&self) -> f32 {
        self.alpha0
    }

    /// The scale σ of a parameter of this kind: `init_std` for kernels and embeddings, 0.5
    /// for biases and norm gains.
    pub fn sigma(kind: ParamKind, init_std: f32) -> f32 {
        match kind {
            ParamKind::Weight | ParamKind::Head | ParamKind::Embedding { .. } => init_std,
            ParamKind::Bias | ParamKind::NormGain => 0.5,
        }
    }

    /// Learning rate of a sign update for scale σ: `α₀·σ`.
    pub fn sign_lr(&self, sigma: f32) -> Result<f32, ConfigError> {
        Ok(self.alpha0 * positive("sigma", sigma)?)
    }

    /// Weight decay of a sign update for scale σ (`q = 1`): `α₀/(2σ)`.
    pub fn sign_weight_decay(&self, sigma: f32) -> Result<f32, ConfigError> {
        Ok(self.alpha0 / (2.0 * positive("sigma", sigma)?))
    }

    /// Lion for a group of scale σ (β's at Lion's defaults).
    pub fn lion(&self, sigma: f32) -> Result<Lion, ConfigError> {
        LionConfig {
            weight_decay: self.sign_weight_decay(sigma)?,
            ..LionConfig::new(self.sign_lr(sigma)?)
        }
        .build()
    }

    /// Tiger for a group of scale σ, from `base` (β, k, guard kept): `LrMode::Absolute`,
    /// `lr_scale` 1, lr and decay from the rule.
    pub fn tiger(&self, sigma: f32, base: TigerConfig) -> Result<Tiger, ConfigError> {
        TigerConfig {
            lr: self.sign_lr(sigma)?,
            weight_decay: self.sign_weight_decay(sigma)?,
            lr_mode: LrMode::Absolute,
            lr_scale: 1.0,
            ..base
        }
        .build()
    }

    /// The shared decay `1/(1 + 2·α₀·p₀·t)` (`p₀ > 0`, the initial convergence rate; Su's
    /// "inverse-time" case).
    pub fn schedule(&self, p0: f32) -> Result<InverseTime, ConfigError> {
        InverseTime::new(2.0 * self.alpha0 * positive("p0", p0)?, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Schedule;

    #[test]
    fn bad_inputs_are_config_errors() {
        assert!(AmosRule::new(0.0).is_err());
        let a = AmosRule::new(1e-3).unwrap();
        assert!(a.sign_lr(0.0).is_err());
        assert!(a.sign_weight_decay(f32::NAN).is_err());
        assert!(a.schedule(-1.0).is_err());
    }

    /// A sign step of the rule's lr moves a tensor of scale σ by α₀ of its expected norm.
    #[test]
    fn one_sign_step_changes_theta_by_alpha0_of_its_scale() {
        let a = AmosRule::new(2e-3).unwrap();
        let sigma = 0.05f32;
        let lion = LionConfig {
            weight_decay: 0.0,
            ..LionConfig::new(a.sign_lr(sigma).unwrap())
        }
        .build()
        .unwrap();
        let k = 64usize;
        let mut p: [f32; 64] = core::array::from_fn(|i| if i % 2 == 0 { sigma } else { -sigma });
        let before = p;
        let g: [f32; 64] = core::array::from_fn(|i| (i as f32 - 31.5) * 0.01);
        let mut m = [0.0f32; 64];
        lion.step_array(lion.at(1), &mut p, &g, &mut m);
        let change: f32 = p
            .iter()
            .zip(&before)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>();
        let scale = (k as f32).sqrt() * sigma;
        assert!((change.sqrt() / scale - 2e-3).abs() < 1e-6);
    }

    #[test]
    fn schedule_is_inverse_time() {
        let a = AmosRule::new(1e-3).unwrap();
        let s = a.schedule(0.5).unwrap();
        for t in [0u64, 1, 100, 10_000] {
            let want = 1.0 / (1.0 + 2.0 * 1e-3 * 0.5 * t as f32);
            assert!((s.factor(t) - want).abs() < 1e-6);
        }
        let tiger = a.tiger(0.5, TigerConfig::new(1.0)).unwrap();
        assert_eq!(tiger.config().lr_mode, LrMode::Absolute);
        assert!((tiger.config().weight_decay - 1e-3).abs() < 1e-9);
    }
}
