//! Learning-rate schedules: a factor `f(t)` that multiplies an optimizer's base lr.
//!
//! | schedule | factor `f(t)` | source |
//! |---|---|---|
//! | [`Constant`] | `1` | |
//! | [`PiecewiseLinear`] | linear between `(step, factor)` points, held after the last; from `(0, 0)` unless a point at step 0 is given | Tiger's `piecewise_linear` (`bojone/tiger`) |
//! | [`WarmupCosine`] | `t/w` for `t < w`, then `final + (1−final)·(1+cos(π·p))/2` with `p = (t−w)/(T−w)`, then `final` | the common "linear warmup + cosine" |
//! | [`InverseTime`] | `1 / (1 + rate·t/steps)` | Keras `InverseTimeDecay`; kexue 9344's preferred decay |
//!
//! Schedules are validated when built; `factor` is finite and >= 0 for every `t`, so
//! `optimizer.at_scheduled(t, &s)` never needs a check.

use super::error::{non_negative, positive, ConfigError};

/// A learning-rate factor as a function of the 1-based step index.
pub trait Schedule {
    /// The factor at step `t`; finite and >= 0.
    fn factor(&self, t: u64) -> f32;
}

/// The factor 1 at every step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Constant;

impl Schedule for Constant {
    fn factor(&self, _t: u64) -> f32 {
        1.0
    }
}

/// Tiger's piecewise-linear schedule over `N` breakpoints `(step, factor)`.
///
/// Steps count micro-steps (with accumulation k, a warmup of 40 000 is 10 000 updates).
/// Unless the first point is at step 0, the curve starts from `(0, 0)`, as in
/// `tiger.py::piecewise_linear(from_zero=True)`.
///
/// ```
/// use margay::optim::{PiecewiseLinear, Schedule};
/// let s = PiecewiseLinear::new([(1000, 1.0), (10_000, 0.1)]).unwrap();
/// assert_eq!(s.factor(500), 0.5);
/// assert_eq!(s.factor(20_000), 0.1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PiecewiseLinear<const N: usize> {
    points: [(u64, f32); N],
}

impl<const N: usize> PiecewiseLinear<N> {
    /// Validates the points: steps strictly increasing, factors finite and >= 0.
    pub fn new(points: [(u64, f32); N]) -> Result<Self, ConfigError> {
        const {
            assert!(
                N > 0,
                "a piecewise-linear schedule needs at least one point"
            )
        };
        for (i, &(step, factor)) in points.iter().enumerate() {
            non_negative("points.factor", factor)?;
            if i > 0 && step <= points[i - 1].0 {
                return Err(ConfigError::NotIncreasing { field: "points" });
            }
        }
        Ok(PiecewiseLinear { points })
    }
}

impl<const N: usize> Schedule for PiecewiseLinear<N> {
    fn factor(&self, t: u64) -> f32 {
        let (mut s0, mut f0) = (0u64, 0.0f32);
        if self.points[0].0 == 0 {
            f0 = self.points[0].1;
        }
        for &(s1, f1) in &self.points {
            if t < s1 {
                let frac = (t - s0) as f32 / (s1 - s0) as f32;
                return f0 + (f1 - f0) * frac;
            }
            (s0, f0) = (s1, f1);
        }
        f0
    }
}

/// Linear warmup over `warmup` steps, then cosine decay to `final_factor` at `total`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosine {
    warmup: u64,
    total: u64,
    final_factor: f32,
}

impl WarmupCosine {
    /// `warmup <= total`, `total >= 1`, `final_factor` in `[0, 1]`.
    pub fn new(warmup: u64, total: u64, final_factor: f32) -> Result<Self, ConfigError> {
        if total == 0 {
            return Err(ConfigError::Zero { field: "total" });
        }
        if warmup > total {
            return Err(ConfigError::NotIncreasing {
                field: "warmup <= total",
            });
        }
        non_negative("final_factor", final_factor)?;
        if final_factor > 1.0 {
            return Err(ConfigError::OutsideOpenClosedUnit {
                field: "final_factor",
                value: final_factor,
            });
        }
        Ok(WarmupCosine {
            warmup,
            total,
            final_factor,
        })
    }
}

impl Schedule for WarmupCosine {
    fn factor(&self, t: u64) -> f32 {
        if t < self.warmup {
            return t as f32 / self.warmup as f32;
        }
        if t >= self.total {
            return self.final_factor;
        }
        let p = (t - self.warmup) as f32 / (self.total - self.warmup) as f32;
        let c = 0.5 * (1.0 + crate::math::cos(core::f32::consts::PI * p));
        self.final_factor + (1.0 - self.final_factor) * c
    }
}

/// Inverse-time decay `1 / (1 + rate·t/steps)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InverseTime {
    rate: f32,
    steps: f32,
}

impl InverseTime {
    /// `rate` finite and >= 0; `steps` finite and > 0.
    pub fn new(rate: f32, steps: f32) -> Result<Self, ConfigError> {
        Ok(InverseTime {
            rate: non_negative("rate", rate)?,
            steps: positive("steps", steps)?,
        })
    }
}

impl Schedule for InverseTime {
    fn factor(&self, t: u64) -> f32 {
        1.0 / (1.0 + self.rate * (t as f32 / self.steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piecewise_linear_starts_from_zero_and_holds_after_last_point() {
        let s = PiecewiseLinear::new([(100, 1.0), (200, 0.5)]).unwrap();
        assert_eq!(s.factor(0), 0.0);
        assert_eq!(s.factor(50), 0.5);
        assert_eq!(s.factor(100), 1.0);
        assert_eq!(s.factor(150), 0.75);
        assert_eq!(s.factor(10_000), 0.5);
    }

    #[test]
    fn piecewise_linear_with_point_at_zero_starts_there() {
        let s = PiecewiseLinear::new([(0, 1.0), (10, 0.0)]).unwrap();
        assert_eq!(s.factor(0), 1.0);
        assert_eq!(s.factor(5), 0.5);
    }

    #[test]
    fn piecewise_linear_rejects_unordered_and_negative_points() {
        assert!(PiecewiseLinear::new([(10, 1.0), (10, 0.5)]).is_err());
        assert!(PiecewiseLinear::new([(10, -1.0)]).is_err());
        assert!(PiecewiseLinear::new([(10, f32::NAN)]).is_err());
    }

    #[test]
    fn warmup_cosine_ramps_peaks_and_ends_at_final() {
        let s = WarmupCosine::new(10, 110, 0.1).unwrap();
        assert_eq!(s.factor(0), 0.0);
        assert_eq!(s.factor(5), 0.5);
        assert!((s.factor(10) - 1.0).abs() < 1e-6);
        assert!((s.factor(60) - 0.55).abs() < 1e-6);
        assert_eq!(s.factor(110), 0.1);
        assert_eq!(s.factor(1_000_000), 0.1);
        assert!(WarmupCosine::new(20, 10, 0.0).is_err());
        assert!(WarmupCosine::new(0, 10, 1.5).is_err());
    }

    #[test]
    fn inverse_time_halves_at_steps_over_rate() {
        let s = InverseTime::new(1.0, 1000.0).unwrap();
        assert_eq!(s.factor(0), 1.0);
        assert_eq!(s.factor(1000), 0.5);
        assert!(InverseTime::new(-1.0, 1.0).is_err());
        assert!(InverseTime::new(1.0, 0.0).is_err());
    }
}
