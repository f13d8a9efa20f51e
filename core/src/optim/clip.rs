//! Gradient clipping by the global L2 norm over several tensors, in both forms of
//! kexue 7469 (after Zhang et al., ICLR 2020).
//!
//! | form | coefficient applied to every gradient | source |
//! |---|---|---|
//! | [`ClipForm::Min`] | `min(1, γ / (‖g‖ + 1e-6))` | PyTorch `clip_grad_norm_` |
//! | [`ClipForm::Smooth`] | `γ / (‖g‖ + γ)` | kexue 7469 clip-2; the optimal GD step under (L0, L1)-smoothness |
//!
//! `‖g‖` is the global norm: the L2 norm of the concatenation of every tensor, i.e. the norm
//! of the per-tensor norms. It is computed without allocation as a sum of squares in a fixed
//! order ([`crate::math::sum_sq`]), so it is the same on every target. Because the norm must
//! be known before any gradient is scaled, clipping is a two-pass operation: on a device that
//! streams layers, feed each tensor to a [`NormAccumulator`] first, then scale with
//! [`GlobalNormClip::coefficient`].
//!
//! Non-finite norm: PyTorch (with `error_if_nonfinite=False`) multiplies every gradient by
//! the NaN coefficient. margay leaves the gradients untouched and reports the non-finite
//! norm with `coef = 1`, so nothing is lost and the optimizer's own NaN rule (Tiger's guard)
//! still sees the bad values.
//!
//! ```
//! use margay::optim::{ClipConfig, ClipForm};
//! let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
//! let (mut a, mut b) = ([3.0_f32], [4.0_f32]);
//! let report = clip.apply(&mut [&mut a[..], &mut b[..]]);
//! assert_eq!(report.norm, 5.0);
//! assert!((a[0] - 0.6).abs() < 1e-6 && (b[0] - 0.8).abs() < 1e-6);
//! ```

use super::error::{positive, ConfigError};
use super::health::{sum_sq_and_health, GradHealth};
use crate::math::sqrt;

/// Which clipping coefficient to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClipForm {
    /// PyTorch's `min(1, γ/(‖g‖ + 1e-6))`.
    Min,
    /// The smooth `γ/(‖g‖ + γ)`.
    Smooth,
}

/// Clipping hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipConfig {
    /// The threshold γ (PyTorch's `max_norm`); 1.0 is the near-universal default (kexue 10657).
    pub max_norm: f32,
    /// Which coefficient.
    pub form: ClipForm,
}

impl ClipConfig {
    /// A config with threshold `max_norm` and the given form.
    pub const fn new(max_norm: f32, form: ClipForm) -> Self {
        ClipConfig { max_norm, form }
    }

    /// Validates: `max_norm` finite and > 0.
    pub fn build(self) -> Result<GlobalNormClip, ConfigError> {
        positive("max_norm", self.max_norm)?;
        Ok(GlobalNormClip { cfg: self })
    }
}

/// What a clip did.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClipReport {
    /// The global norm before clipping (NaN or Inf if a gradient was).
    pub norm: f32,
    /// The coefficient every gradient was multiplied by (1 when the norm is not finite).
    pub coef: f32,
}

/// Accumulates the global norm over tensors fed one at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NormAccumulator {
    sum_sq: f32,
    health: GradHealth,
}

impl NormAccumulator {
    /// An empty accumulator.
    pub const fn new() -> Self {
        NormAccumulator {
            sum_sq: 0.0,
            health: GradHealth::FINITE,
        }
    }
    /// Adds one tensor's squares, noting NaN and Inf on the way (same pass).
    pub fn add(&mut self, grads: &[f32]) {
        let (ss, health) = sum_sq_and_health(grads);
        self.sum_sq += ss;
        self.health = self.health.merge(health);
    }
    /// NaN/Inf seen in the tensors added so far: hand it to
    /// [`super::Tiger::step_with_health`] to spare Tiger its own scan.
    pub fn health(&self) -> GradHealth {
        self.health
    }
    /// The global L2 norm so far.
    pub fn norm(&self) -> f32 {
        sqrt(self.sum_sq)
    }
}

/// A validated global-norm clip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlobalNormClip {
    cfg: ClipConfig,
}

impl GlobalNormClip {
    /// The global L2 norm of several tensors.
    pub fn global_norm(grads: &[&[f32]]) -> f32 {
        let mut acc = NormAccumulator::new();
        for g in grads {
            acc.add(g);
        }
        acc.norm()
    }

    /// The coefficient for a given global norm (1 when the norm is not finite).
    pub fn coefficient(&self, norm: f32) -> f32 {
        if !norm.is_finite() {
            return 1.0;
        }
        let gamma = self.cfg.max_norm;
        match self.cfg.form {
            ClipForm::Min => {
                let c = gamma / (norm + 1e-6);
                if c < 1.0 {
                    c
                } else {
                    1.0
                }
            }
            ClipForm::Smooth => gamma / (norm + gamma),
        }
    }

    /// Clips every tensor in place by the global norm and reports what it did.
    pub fn apply(&self, grads: &mut [&mut [f32]]) -> ClipReport {
        let mut acc = NormAccumulator::new();
        for g in grads.iter() {
            acc.add(g);
        }
        let norm = acc.norm();
        let coef = self.coefficient(norm);
        if coef != 1.0 {
            for g in grads.iter_mut() {
                scale(g, coef);
            }
        }
        ClipReport { norm, coef }
    }
}

/// `g ← coef·g`.
pub(crate) fn scale(g: &mut [f32], coef: f32) {
    for x in g.iter_mut() {
        *x *= coef;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_min_leaves_small_gradients_unchanged() {
        let clip = ClipConfig::new(10.0, ClipForm::Min).build().unwrap();
        let mut a = [3.0f32, 4.0];
        let r = clip.apply(&mut [&mut a[..]]);
        assert_eq!((r.norm, r.coef), (5.0, 1.0));
        assert_eq!(a, [3.0, 4.0]);
    }

    #[test]
    fn clip_smooth_always_shrinks() {
        let clip = ClipConfig::new(5.0, ClipForm::Smooth).build().unwrap();
        let mut a = [3.0f32, 4.0];
        let r = clip.apply(&mut [&mut a[..]]);
        assert_eq!(r.coef, 0.5);
        assert_eq!(a, [1.5, 2.0]);
    }

    #[test]
    fn clip_with_non_finite_norm_loses_nothing() {
        let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
        let mut a = [3.0f32, f32::NAN];
        let mut b = [100.0f32];
        let r = clip.apply(&mut [&mut a[..], &mut b[..]]);
        assert!(r.norm.is_nan());
        assert_eq!(r.coef, 1.0);
        assert_eq!(a[0], 3.0);
        assert_eq!(b, [100.0]);
    }

    #[test]
    fn clip_rejects_bad_threshold() {
        for g in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(ClipConfig::new(g, ClipForm::Min).build().is_err());
        }
    }

    #[test]
    fn smooth_form_lies_between_half_and_full_min_form() {
        // ½·min{1, γ/‖g‖} <= γ/(‖g‖+γ) <= min{1, γ/‖g‖}  (kexue 7469)
        let gamma = 2.0f32;
        for i in 1..200 {
            let n = i as f32 * 0.05;
            let min = if gamma / n < 1.0 { gamma / n } else { 1.0 };
            let smooth = gamma / (n + gamma);
            assert!(0.5 * min <= smooth * (1.0 + 1e-6) && smooth <= min * (1.0 + 1e-6));
        }
    }
}
