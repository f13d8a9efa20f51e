//! AdaX and AdaX-W (Li, Zhang, Wang, Luo 2020, arXiv 2004.09740; kexue 7387;
//! `switchablenorms/AdaX/AdaX.py`).
//!
//! Intuition: Adam's second moment forgets old gradients at rate β₂; AdaX's *grows*
//! (`v ← (1+β₂)·v + β₂·g²`, "exponential long-term memory"), and the bias correction
//! `(1+β₂)ᵗ − 1` turns it into a weighted mean whose decay β̂ₜ rises to 1, so the effective
//! learning rate settles instead of oscillating. No bias correction on the first moment.
//!
//! | config field | symbol | default | source |
//! |---|---|---|---|
//! | `lr` | α | 5e-3 (AdaX-W), 1.5e-3 (AdaX, [`AdaXConfig::l2`]) | official code |
//! | `beta1` | β₁ | 0.9 | official code |
//! | `beta2` | β₂ | 1e-4 | official code |
//! | `eps` | ε | 1e-12 | official code |
//! | `weight_decay` | λ | 5e-2 decoupled (AdaX-W), 5e-4 as L2 (AdaX) | official code |
//! | `decay` | | [`WeightDecay::Decoupled`] | AdaX-W "yields the best results" (README) |
//!
//! The official update, step t (1-based), with `bc = (1+β₂)ᵗ − 1`:
//! ```text
//! g ← g + λ·θ                                    (AdaX, L2 decay only)
//! θ ← θ − α·λ·θ                                  (AdaX-W, decoupled decay only)
//! m ← β₁·m + (1−β₁)·g
//! v ← (1+β₂)·v + β₂·g²
//! θ ← θ − α·√bc · m / (√v + ε)
//! ```
//! **The stable form margay runs.** `(1+β₂)ᵗ` overflows f32 after about 887,000 steps
//! (t·ln(1+β₂) > 88.7), and v with it. margay stores the normalised `v̂ = v / bc` instead,
//! with the equivalent recursion `v̂ ← β̂ₜ·v̂ + (1−β̂ₜ)·g²`, where
//! `1 − β̂ₜ = β₂/bc = β₂·e⁻ˣ/(1 − e⁻ˣ)`, `x = t·ln(1+β₂)` (computed in f64 once per step),
//! and the step `θ ← θ − α · m / (√v̂ + ε/√bc)`, which is the official step rearranged
//! (`ε/√bc = ε·√(e⁻ˣ/(1 − e⁻ˣ))` tends to 0 instead of overflowing). Every quantity stays
//! finite at any t. Golden vectors from the official code (run in float64) check the
//! first steps; a test runs past 887,000 steps. In f32, v̂ stops moving once the new
//! weight falls below its resolution (around t ≈ 75,000 for β₂ = 1e-4); all later
//! gradients together would have carried a weight of about 6e-4 in the mean.
//!
//! State: `m` and `v̂` per parameter (f32; `m` may be bf16) and the step index, which the
//! caller passes in [`super::Step`]. NaN gradients propagate as in the official code.
//!
//! ```
//! use margay::optim::AdaXConfig;
//! let adax = AdaXConfig { weight_decay: 0.0, ..AdaXConfig::new(0.1) }.build().unwrap();
//! let (mut p, mut m, mut v) = ([1.0_f32], [0.0_f32], [0.0_f32]);
//! adax.step_array(adax.at(1), &mut p, &[4.0], &mut m, &mut v);
//! // t = 1: v̂ = g², m = 0.1·g, so the step is α·0.1·g/|g| = 0.01.
//! assert!((p[0] - 0.99).abs() < 1e-6);
//! ```

use super::error::{finite, non_negative, positive, unit_beta, ConfigError, StepError};
use super::{check_lengths, Moment, Schedule, Step};
use crate::math::sqrt;

/// How AdaX applies weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WeightDecay {
    /// AdaX-W: `θ ← θ·(1 − α·λ)` before the step.
    Decoupled,
    /// AdaX: `g ← g + λ·θ` (an L2 penalty through the gradient).
    L2,
}

/// AdaX hyper-parameters (see the module docs for symbols and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaXConfig {
    /// Learning rate α.
    pub lr: f32,
    /// First-moment decay β₁.
    pub beta1: f32,
    /// Second-moment growth β₂ (> 0).
    pub beta2: f32,
    /// ε, added after the square root (of the unnormalised v, as the official code).
    pub eps: f32,
    /// Weight decay λ.
    pub weight_decay: f32,
    /// Decoupled (AdaX-W) or L2 (AdaX).
    pub decay: WeightDecay,
}

impl Default for AdaXConfig {
    fn default() -> Self {
        Self::new(5e-3)
    }
}

impl AdaXConfig {
    /// AdaX-W's defaults with the given learning rate.
    pub const fn new(lr: f32) -> Self {
        AdaXConfig {
            lr,
            beta1: 0.9,
            beta2: 1e-4,
            eps: 1e-12,
            weight_decay: 5e-2,
            decay: WeightDecay::Decoupled,
        }
    }

    /// AdaX's defaults (L2 decay 5e-4) with the given learning rate.
    pub const fn l2(lr: f32) -> Self {
        AdaXConfig {
            weight_decay: 5e-4,
            decay: WeightDecay::L2,
            ..Self::new(lr)
        }
    }

    /// Validates: `lr > 0` finite; `β₁ ∈ [0, 1)`; `β₂ ∈ (0, 1)`; `ε, λ >= 0` finite.
    pub fn build(self) -> Result<AdaX, ConfigError> {
        positive("lr", self.lr)?;
        unit_beta("beta1", self.beta1)?;
        unit_beta("beta2", self.beta2)?;
        positive("beta2", self.beta2)?;
        non_negative("eps", self.eps)?;
        finite("eps", self.eps)?;
        non_negative("weight_decay", self.weight_decay)?;
        Ok(AdaX {
            cfg: self,
            log1p_beta2: libm::log1p(self.beta2 as f64),
        })
    }
}

/// A validated AdaX optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaX {
    cfg: AdaXConfig,
    /// ln(1 + β₂) in f64.
    log1p_beta2: f64,
}

/// Per-step coefficients of the stable form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaXCoefficients {
    /// `1 − β̂ₜ = β₂ / ((1+β₂)ᵗ − 1)`: weight of g² in v̂.
    pub new_weight: f32,
    /// `ε / √((1+β₂)ᵗ − 1)`: ε in the units of √v̂.
    pub eps_hat: f32,
}

impl AdaX {
    /// The validated configuration.
    pub const fn config(&self) -> &AdaXConfig {
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

    /// The coefficients of step `t`, finite for every t ≥ 1 (f64 inside).
    pub fn coefficients(&self, t: u64) -> AdaXCoefficients {
        let x = t.max(1) as f64 * self.log1p_beta2;
        // e^{-x}/(1 - e^{-x}) = 1/((1+β₂)^t − 1), without forming (1+β₂)^t.
        let r = libm::exp(-x) / -libm::expm1(-x);
        AdaXCoefficients {
            new_weight: (self.cfg.beta2 as f64 * r).min(1.0) as f32,
            eps_hat: (self.cfg.eps as f64 * libm::sqrt(r)) as f32,
        }
    }

    /// One AdaX step on slices (`v` holds the normalised v̂). A length mismatch returns an
    /// error and modifies nothing.
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

    /// One AdaX step on arrays (lengths agree by construction).
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
        let AdaXConfig {
            beta1,
            weight_decay,
            decay,
            ..
        } = self.cfg;
        let k = self.coefficients(s.t);
        let (c1, keep) = (1.0 - beta1, 1.0 - k.new_weight);
        let lr = s.lr;
        let (l2, shrink) = match decay {
            WeightDecay::L2 => (weight_decay, 1.0),
            WeightDecay::Decoupled => (0.0, 1.0 - lr * weight_decay),
        };
        let rows = params
            .iter_mut()
            .zip(grads)
            .zip(m.iter_mut().zip(v.iter_mut()));
        for ((p, &g), (m, v)) in rows {
            let g = g + l2 * *p;
            let mt = beta1 * m.load() + c1 * g;
            let vt = keep * v.load() + k.new_weight * (g * g);
            *m = M::store(mt);
            *v = V::store(vt);
            *p = *p * shrink - lr * (mt / (sqrt(vt) + k.eps_hat));
        }
    }
}

// AdaX through the interface: state `[m | gap | v]` (see `moment_gap`).
super::interface::moment_optimizer!(
    AdaX,
    "adax",
    moments: 2,
    lr: |o| o.cfg.lr,
    accumulation: |_| 1,
    updates: |_, _| true
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adax_rejects_bad_hyper_parameters() {
        let ok = AdaXConfig::new(1e-3);
        assert!(ok.build().is_ok());
        for bad in [
            AdaXConfig { lr: 0.0, ..ok },
            AdaXConfig { lr: f32::NAN, ..ok },
            AdaXConfig { beta1: 1.0, ..ok },
            AdaXConfig { beta2: 0.0, ..ok },
            AdaXConfig { beta2: 1.0, ..ok },
            AdaXConfig { eps: -1.0, ..ok },
            AdaXConfig {
                eps: f32::INFINITY,
                ..ok
            },
            AdaXConfig {
                weight_decay: -0.1,
                ..ok
            },
        ] {
            assert!(bad.build().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn first_coefficient_is_one_and_they_decay_like_the_closed_form() {
        let a = AdaXConfig::new(1e-3).build().unwrap();
        assert_eq!(a.coefficients(1).new_weight, 1.0);
        for t in [2u64, 10, 1000, 100_000] {
            let bc = (1.0f64 + 1e-4f32 as f64).powf(t as f64) - 1.0;
            let want = 1e-4f32 as f64 / bc;
            let got = a.coefficients(t).new_weight as f64;
            assert!(
                (got - want).abs() <= 1e-6 * want,
                "t = {t}: {got} vs {want}"
            );
        }
    }

    /// Past the step where `(1+β₂)ᵗ` overflows f32 (≈ 887,000), everything stays finite and
    /// the normalised second moment is the mean of g² it should be.
    #[test]
    fn runs_past_the_f32_overflow_of_the_official_form() {
        assert!((1.0f32 + 1e-4).powf(900_000.0).is_infinite());
        let a = AdaXConfig {
            weight_decay: 0.0,
            ..AdaXConfig::new(1e-6)
        }
        .build()
        .unwrap();
        let (mut p, mut m, mut v) = ([0.5f32, -2.0], [0.0f32; 2], [0.0f32; 2]);
        for t in 1..=1_000_000u64 {
            let g = if t % 2 == 0 { [0.3, -1.0] } else { [0.1, -3.0] };
            a.step_array(a.at(t), &mut p, &g, &mut m, &mut v);
        }
        assert!(p.iter().chain(&m).chain(&v).all(|x| x.is_finite()));
        // v̂ is a long-memory mean of g²: between the two values, near their average.
        assert!((v[0] - 0.05).abs() < 0.01, "{v:?}");
        assert!((v[1] - 5.0).abs() < 1.0, "{v:?}");
        let k = a.coefficients(1_000_000);
        assert!(k.new_weight >= 0.0 && k.new_weight < 1e-6 && k.eps_hat.is_finite());
    }

    #[test]
    fn length_mismatch_is_an_error_and_writes_nothing() {
        let a = AdaXConfig::new(1e-3).build().unwrap();
        let (mut p, mut m, mut v) = ([1.0f32; 3], [0.0f32; 3], [0.0f32; 2]);
        assert!(a.step(a.at(1), &mut p, &[1.0; 3], &mut m, &mut v).is_err());
        assert_eq!(p, [1.0; 3]);
    }
}
