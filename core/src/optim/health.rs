//! What a pass over the gradients learned about NaN and ±Inf, so that a later pass need not
//! look again.
//!
//! Tiger's guard must know whether *any* gradient is bad before it changes *any* weight, so
//! [`super::Tiger::step`] reads the gradients twice: a scan, then the update. A training loop
//! that already makes a pass over the gradients (the global norm for clipping or logging,
//! [`super::NormAccumulator`]) can record their health there and hand it to
//! [`super::Tiger::step_with_health`], which then moves the bytes of a Lion step and no more.

use crate::math::{any_non_finite, sum_sq_with};

/// Whether a set of gradients holds NaN or ±Inf. Combine tensors with [`GradHealth::merge`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GradHealth {
    nan: bool,
    inf: bool,
}

impl GradHealth {
    /// No NaN, no Inf (also the health of no gradients at all).
    pub const FINITE: GradHealth = GradHealth {
        nan: false,
        inf: false,
    };

    /// One pass over `grads` (branch-free, vectorized).
    pub fn scan(grads: &[f32]) -> Self {
        crate::simd::vectorized(Scan(grads))
    }

    #[inline(always)]
    pub(crate) fn scan_inline(grads: &[f32]) -> Self {
        // Common case first: one test per element (exponent all ones ⇔ NaN or Inf), then
        // tell NaN from Inf only when something was found.
        if !any_non_finite(grads) {
            return GradHealth::FINITE;
        }
        let mut flags = Flags::default();
        for &g in grads {
            flags.see(g);
        }
        flags.health()
    }

    /// The health of two sets of gradients together.
    pub const fn merge(self, other: GradHealth) -> Self {
        GradHealth {
            nan: self.nan || other.nan,
            inf: self.inf || other.inf,
        }
    }

    /// `true` when some gradient is NaN.
    pub const fn has_nan(self) -> bool {
        self.nan
    }

    /// `true` when some gradient is ±Inf.
    pub const fn has_inf(self) -> bool {
        self.inf
    }

    /// `true` when every gradient is finite.
    pub const fn is_finite(self) -> bool {
        !self.nan && !self.inf
    }
}

/// [`crate::math::sum_sq`] (same lanes, same order, same bits) and [`GradHealth::scan`] in
/// one pass.
pub(crate) fn sum_sq_and_health(xs: &[f32]) -> (f32, GradHealth) {
    crate::simd::vectorized(NormPass(xs))
}

struct Scan<'a>(&'a [f32]);

impl crate::simd::Kernel for Scan<'_> {
    type Out = GradHealth;
    #[inline(always)]
    fn run(self) -> GradHealth {
        GradHealth::scan_inline(self.0)
    }
}

struct NormPass<'a>(&'a [f32]);

impl crate::simd::Kernel for NormPass<'_> {
    type Out = (f32, GradHealth);
    #[inline(always)]
    fn run(self) -> (f32, GradHealth) {
        let mut flags = Flags::default();
        let ss = sum_sq_with(self.0, |x| flags.see(x));
        (ss, flags.health())
    }
}

/// NaN / Inf seen so far, as integer ORs (branch-free, so the loops vectorize).
#[derive(Default)]
struct Flags {
    nan: u32,
    inf: u32,
}

impl Flags {
    #[inline(always)]
    fn see(&mut self, x: f32) {
        let a = x.to_bits() & 0x7fff_ffff;
        self.nan |= (a > 0x7f80_0000) as u32;
        self.inf |= (a == 0x7f80_0000) as u32;
    }

    #[inline(always)]
    fn health(&self) -> GradHealth {
        GradHealth {
            nan: self.nan != 0,
            inf: self.inf != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_tells_nan_from_inf() {
        assert_eq!(GradHealth::scan(&[1.0, -2.0, 0.0]), GradHealth::FINITE);
        let inf = GradHealth::scan(&[1.0, f32::NEG_INFINITY]);
        assert!(inf.has_inf() && !inf.has_nan() && !inf.is_finite());
        let nan = GradHealth::scan(&[f32::NAN, 1.0]);
        assert!(nan.has_nan() && !nan.is_finite());
        assert!(GradHealth::FINITE.merge(inf).has_inf());
        assert!(inf.merge(nan).has_nan());
    }

    #[test]
    fn fused_norm_pass_gives_the_bits_of_sum_sq() {
        let xs: std::vec::Vec<f32> = (0..1003)
            .map(|i| ((i * 31) % 97) as f32 / 7.0 - 6.0)
            .collect();
        let (ss, h) = sum_sq_and_health(&xs);
        assert_eq!(ss.to_bits(), crate::math::sum_sq(&xs).to_bits());
        assert!(h.is_finite());
        let mut bad = xs.clone();
        bad[1001] = f32::INFINITY;
        assert!(sum_sq_and_health(&bad).1.has_inf());
    }
}
