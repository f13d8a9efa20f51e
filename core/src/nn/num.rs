//! The number formats the layers run in: `f32` (hosts, Cortex-M4F), `f64` (reference and
//! finite-difference checks on the host) and 32-bit fixed point ([`I8F24`], [`I16F16`]) for
//! cores without an FPU.
//!
//! Every layer is written once against [`Num`]. Dot products go through an accumulator:
//! floats add in order (so the same order gives the same bits on every target), fixed point
//! accumulates the exact products in `i128` and rounds **once** at the end, saturating at the
//! format's range; each saturation is counted in [`Saturations`].

use crate::quant::{Scalar, I16F16, I8F24};
use half::bf16;

/// How many values were clamped to a fixed-point format's range (always 0 for floats).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Saturations(pub u32);

impl Saturations {
    #[inline(always)]
    fn hit(&mut self) {
        self.0 = self.0.saturating_add(1);
    }
}

/// A number format for the `nn` layers (see the module docs).
pub trait Num: Scalar + Default + super::engine::Leaf + 'static {
    /// Dot-product accumulator.
    type Acc: Copy;
    /// Optimizer-state storage for parameters in this format (bf16 for f32: 2 bytes; the
    /// format itself otherwise).
    type Moment: Copy + Default + core::fmt::Debug + PartialEq;
    /// An empty accumulator.
    const ACC_ZERO: Self::Acc;
    /// A zero momentum.
    const MOMENT_ZERO: Self::Moment;
    /// `acc + a·b`.
    fn mac(acc: Self::Acc, a: Self, b: Self) -> Self::Acc;
    /// `acc + q·x` for an int8 weight `q` (its row scale is applied in [`Num::finish_i8`]).
    fn mac_i8(acc: Self::Acc, q: i8, x: Self) -> Self::Acc;
    /// A sum of [`Num::mac`] terms plus `bias`, in the format (saturating, counted).
    fn finish(acc: Self::Acc, bias: Self, sat: &mut Saturations) -> Self;
    /// A sum of [`Num::mac_i8`] terms times `scale`, plus `bias` (saturating, counted).
    fn finish_i8(acc: Self::Acc, scale: Self, bias: Self, sat: &mut Saturations) -> Self;
    /// `eˣ` for `x ≤ 0` (positive inputs are treated as 0); used by the softmax.
    fn exp_nonpos(self) -> Self;
    /// `self / d` for `d > 0`.
    fn div(self, d: Self) -> Self;
    /// A sensor reading in this format: `None` for NaN/±Inf; a reading outside the format's
    /// range saturates and is counted.
    fn from_reading(x: f32, sat: &mut Saturations) -> Option<Self>;
    /// The value's bit pattern (for fingerprints that compare runs bit for bit).
    fn word(self) -> u64;
    /// The slice itself when the format is f32 (what an optimizer's observe phase reads);
    /// `None` for the other formats, whose values are converted ([`Scalar::to_f32`]).
    fn as_f32(values: &[Self]) -> Option<&[f32]> {
        let _ = values;
        None
    }
}

impl Num for f32 {
    type Acc = f32;
    type Moment = bf16;
    const ACC_ZERO: f32 = 0.0;
    const MOMENT_ZERO: bf16 = bf16::ZERO;
    #[inline(always)]
    fn mac(acc: f32, a: f32, b: f32) -> f32 {
        acc + a * b
    }
    #[inline(always)]
    fn mac_i8(acc: f32, q: i8, x: f32) -> f32 {
        acc + q as f32 * x
    }
    #[inline(always)]
    fn finish(acc: f32, bias: f32, _: &mut Saturations) -> f32 {
        acc + bias
    }
    #[inline(always)]
    fn finish_i8(acc: f32, scale: f32, bias: f32, _: &mut Saturations) -> f32 {
        acc * scale + bias
    }
    #[inline]
    fn exp_nonpos(self) -> f32 {
        libm::expf(self.min(0.0))
    }
    #[inline(always)]
    fn div(self, d: f32) -> f32 {
        self / d
    }
    #[inline]
    fn from_reading(x: f32, _: &mut Saturations) -> Option<f32> {
        x.is_finite().then_some(x)
    }
    fn word(self) -> u64 {
        self.to_bits() as u64
    }
    fn as_f32(values: &[f32]) -> Option<&[f32]> {
        Some(values)
    }
}

impl Num for f64 {
    type Acc = f64;
    type Moment = f64;
    const ACC_ZERO: f64 = 0.0;
    const MOMENT_ZERO: f64 = 0.0;
    #[inline(always)]
    fn mac(acc: f64, a: f64, b: f64) -> f64 {
        acc + a * b
    }
    #[inline(always)]
    fn mac_i8(acc: f64, q: i8, x: f64) -> f64 {
        acc + q as f64 * x
    }
    #[inline(always)]
    fn finish(acc: f64, bias: f64, _: &mut Saturations) -> f64 {
        acc + bias
    }
    #[inline(always)]
    fn finish_i8(acc: f64, scale: f64, bias: f64, _: &mut Saturations) -> f64 {
        acc * scale + bias
    }
    fn exp_nonpos(self) -> f64 {
        libm::exp(self.min(0.0))
    }
    fn div(self, d: f64) -> f64 {
        self / d
    }
    fn from_reading(x: f32, _: &mut Saturations) -> Option<f64> {
        x.is_finite().then_some(x as f64)
    }
    fn word(self) -> u64 {
        self.to_bits()
    }
}

/// log2(e) and ln(2) in Q30.
const LOG2E_Q30: i128 = 1_549_082_005;
const LN2_Q30: i64 = 744_261_118;
const ONE_Q30: i64 = 1 << 30;

/// Rounds `v / 2^sh` to nearest (ties up) for `sh ≥ 1`.
#[inline(always)]
fn round_shift(v: i128, sh: u32) -> i128 {
    (v + (1i128 << (sh - 1))) >> sh
}

/// Clamps to i32, counting a clamp.
#[inline(always)]
fn clamp_i32(v: i128, sat: &mut Saturations) -> i32 {
    if v > i32::MAX as i128 {
        sat.hit();
        i32::MAX
    } else if v < i32::MIN as i128 {
        sat.hit();
        i32::MIN
    } else {
        v as i32
    }
}

/// `Num` for a 32-bit fixed-point type with `$f` fractional bits (1 ≤ f ≤ 30).
macro_rules! fixed_num {
    ($t:ty, $f:expr) => {
        impl Num for $t {
            /// Exact sum of products in units of 2^-2F (`mac`) or 2^-F (`mac_i8`).
            type Acc = i128;
            type Moment = $t;
            const ACC_ZERO: i128 = 0;
            const MOMENT_ZERO: $t = <$t>::ZERO;
            #[inline(always)]
            fn mac(acc: i128, a: $t, b: $t) -> i128 {
                acc + (a.to_bits() as i64 * b.to_bits() as i64) as i128
            }
            #[inline(always)]
            fn mac_i8(acc: i128, q: i8, x: $t) -> i128 {
                acc + (q as i64 * x.to_bits() as i64) as i128
            }
            #[inline]
            fn finish(acc: i128, bias: $t, sat: &mut Saturations) -> $t {
                let v = round_shift(acc, $f) + bias.to_bits() as i128;
                <$t>::from_bits(clamp_i32(v, sat))
            }
            #[inline]
            fn finish_i8(acc: i128, scale: $t, bias: $t, sat: &mut Saturations) -> $t {
                Self::finish(acc * scale.to_bits() as i128, bias, sat)
            }
            fn exp_nonpos(self) -> $t {
                let x = self.to_bits().min(0) as i128;
                // y = x·log2(e) in Q30 (≤ 0) = n + f with integer n ≤ 0 and f ∈ [0, 1).
                let y = (x * LOG2E_Q30) >> $f;
                let n = (y >> 30) as i64;
                let f = (y - ((n as i128) << 30)) as i64;
                let sh = 30 - $f - n; // 2^f in Q30 → the format, times 2^n
                if sh > 62 {
                    return <$t>::from_bits(0);
                }
                // 2^f = e^t with t = f·ln 2 < 0.7: Taylor series to degree 10 (error < 2e-9).
                let t = (f * LN2_Q30) >> 30;
                let mut p = ONE_Q30;
                let mut k = 10;
                while k > 0 {
                    p = ONE_Q30 + ((p * t) >> 30) / k;
                    k -= 1;
                }
                <$t>::from_bits(round_shift(p as i128, sh as u32) as i32)
            }
            #[inline]
            fn div(self, d: $t) -> $t {
                let d = (d.to_bits() as i64).max(1);
                let q = ((self.to_bits() as i64) << $f) / d;
                <$t>::from_bits(q.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
            }
            fn from_reading(x: f32, sat: &mut Saturations) -> Option<$t> {
                if !x.is_finite() {
                    return None;
                }
                let v = <$t>::from_f32(x);
                if v == <$t>::MAX || v == <$t>::MIN {
                    sat.hit();
                }
                Some(v)
            }
            fn word(self) -> u64 {
                self.to_bits() as u32 as u64
            }
        }
    };
}
fixed_num!(I8F24, 24);
fixed_num!(I16F16, 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_exp_matches_libm() {
        let mut worst = 0.0f64;
        let mut x = 0.0f64;
        while x > -20.0 {
            let got = I8F24::from_f32(x as f32).exp_nonpos().to_f32() as f64;
            let want = libm::exp(I8F24::from_f32(x as f32).to_f32() as f64);
            worst = worst.max((got - want).abs());
            x -= 0.0137;
        }
        // One unit of I8F24 is 6e-8: the series and the final rounding stay within 2 units.
        assert!(worst <= 2.0 * 2f64.powi(-24), "worst {worst:e}");
        assert_eq!(I8F24::ZERO.exp_nonpos(), I8F24::ONE);
        assert_eq!(I8F24::MIN.exp_nonpos(), I8F24::ZERO);
    }

    #[test]
    fn fixed_accumulates_exactly_and_saturates_once() {
        let mut sat = Saturations::default();
        let a = I8F24::from_f32(100.0);
        let mut acc = I8F24::ACC_ZERO;
        for _ in 0..4 {
            acc = I8F24::mac(acc, a, a); // 40,000: far beyond I8F24's ±128
        }
        acc = I8F24::mac(acc, a, I8F24::from_f32(-4.0 * 100.0 / 127.99)); // back near 40,000 − 312
        assert_eq!(I8F24::finish(acc, I8F24::ZERO, &mut sat), I8F24::MAX);
        assert_eq!(sat, Saturations(1));
        // The exact sum comes back into range without any intermediate clamp.
        let (mut acc, b) = (I8F24::ACC_ZERO, I8F24::from_f32(0.5));
        acc = I8F24::mac(acc, a, a);
        acc = I8F24::mac(acc, I8F24::from_f32(-100.0), a);
        acc = I8F24::mac(acc, b, b);
        assert_eq!(I8F24::finish(acc, I8F24::ZERO, &mut sat).to_f32(), 0.25);
        assert_eq!(sat, Saturations(1));
    }

    #[test]
    fn readings_reject_non_finite_and_count_saturation() {
        let mut sat = Saturations::default();
        assert_eq!(I8F24::from_reading(f32::NAN, &mut sat), None);
        assert_eq!(f32::from_reading(f32::INFINITY, &mut sat), None);
        assert_eq!(I8F24::from_reading(1e6, &mut sat), Some(I8F24::MAX));
        assert_eq!(sat, Saturations(1));
        assert_eq!(f32::from_reading(0.5, &mut sat), Some(0.5));
    }
}
