//! Number formats below f32: bf16/f16 (crate `half`) and 32-bit fixed point (crate `fixed`,
//! Q formats such as [`I16F16`] and [`I8F24`]), with conversions that name their rounding,
//! and the [`Scalar`] trait through which one algorithm runs in f32 on a Cortex-M4F and in
//! fixed point on a Cortex-M0 (no FPU: every fixed-point operation is integer arithmetic,
//! so it gives the same bits on every target).
//!
//! Conversion rules, for every format:
//! - The rounding is an explicit [`Rounding`]: to nearest with ties to even, toward zero,
//!   or stochastic (rounds away from zero with probability equal to the distance from the
//!   toward-zero value in ulps, from caller-supplied random bits: unbiased in expectation).
//! - **Saturation instead of wrap or overflow**: a finite input beyond the format's range
//!   becomes its largest finite value of that sign (`half`'s `from_f32` would give ±Inf,
//!   and fixed-point `as` casts would wrap).
//! - ±Inf stays ±Inf in bf16/f16 and saturates to MIN/MAX in fixed point. NaN stays NaN in
//!   bf16/f16 and becomes 0 in fixed point, which has no NaN (check first with
//!   [`crate::math::any_non_finite`] where a NaN must not pass silently).
//!
//! Fixed-point arithmetic through [`Scalar`] saturates, and its multiplication rounds to
//! nearest with ties to even (`fixed`'s own `*` rounds toward −∞, a bias of half an ulp per
//! product that accumulates in an optimizer's momentum).
//!
//! ```
//! use margay::quant::{to_bf16, to_fixed, Rounding, I16F16, Scalar};
//! assert_eq!(to_bf16(1.0 + 1.0 / 256.0, Rounding::NearestEven).to_f32(), 1.0); // a tie: even
//! assert_eq!(to_bf16(f32::MAX, Rounding::NearestEven).to_f32(), half::bf16::MAX.to_f32());
//! let x: I16F16 = to_fixed(40_000.0, Rounding::NearestEven);
//! assert_eq!(x, I16F16::MAX); // saturates instead of wrapping
//! let half = I16F16::from_f32(0.5);
//! assert_eq!(half.times(I16F16::from_f32(3.0)).to_f32(), 1.5);
//! ```

use half::{bf16, f16};

/// 32-bit fixed point with 16 fractional bits: range ±32768, step 2⁻¹⁶ ≈ 1.5e-5.
pub type I16F16 = fixed::types::I16F16;
/// 32-bit fixed point with 24 fractional bits: range ±128, step 2⁻²⁴ ≈ 6e-8 (learning
/// rates and momenta of unit-scale weights).
pub type I8F24 = fixed::types::I8F24;

/// How a conversion rounds a value that falls between two representable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rounding {
    /// To the nearest, ties to even (IEEE default; `half`'s and `fixed`'s `from_num`).
    NearestEven,
    /// Toward zero (truncation).
    TowardZero,
    /// Away from zero with probability `(|x| − |lo|)/ulp` where `lo` is the toward-zero
    /// value; the 24 high bits of the `u32` are the uniform random draw.
    Stochastic(u32),
}

/// Rounds `y` (already scaled so that the target's step is 1 near `y`, i.e. `y` is in
/// units of the step) to an integer-valued f32 by `mode`.
#[inline(always)]
fn round_units(y: f32, mode: Rounding) -> f32 {
    match mode {
        Rounding::NearestEven => libm::rintf(y),
        Rounding::TowardZero => libm::truncf(y),
        Rounding::Stochastic(r) => {
            let lo = libm::truncf(y);
            let frac = (y - lo).abs();
            if unit_draw(r) < frac {
                lo + if y < 0.0 { -1.0 } else { 1.0 }
            } else {
                lo
            }
        }
    }
}

/// The uniform draw in `[0, 1)` of [`Rounding::Stochastic`]: the 24 high bits of `r`.
#[inline(always)]
fn unit_draw(r: u32) -> f32 {
    (r >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A 16-bit float format: the neighbour toward zero and away from zero of an f32.
trait HalfFormat: Copy {
    const MAX: f32;
    fn nearest(x: f32) -> Self;
    fn to(self) -> f32;
    fn bits(self) -> u16;
    fn from_bits(b: u16) -> Self;
    fn nan() -> Self;
}

fn to_half<H: HalfFormat>(x: f32, mode: Rounding) -> H {
    if x.is_nan() {
        return H::nan();
    }
    if x.is_infinite() {
        return H::nearest(x);
    }
    // Nearest, then step one ulp toward zero if that rounded away (a sign-magnitude format:
    // the magnitude's bits decrease by one). Saturate a finite x at the largest finite value.
    let n = H::nearest(x);
    let away = n.to().abs() > x.abs();
    let toward = if away { H::from_bits(n.bits() - 1) } else { n };
    let out = match mode {
        Rounding::NearestEven => n,
        Rounding::TowardZero => toward,
        Rounding::Stochastic(r) => {
            let lo = toward.to();
            if lo.abs() == x.abs() {
                toward
            } else {
                // The neighbour away from zero is one ulp up in magnitude.
                let hi = H::from_bits(toward.bits() + 1).to();
                let frac = (x - lo) / (hi - lo);
                if unit_draw(r) < frac {
                    H::from_bits(toward.bits() + 1)
                } else {
                    toward
                }
            }
        }
    };
    if out.to().is_infinite() {
        H::nearest(if x > 0.0 { H::MAX } else { -H::MAX })
    } else {
        out
    }
}

/// f32 → bf16 with an explicit rounding; finite inputs saturate at ±`bf16::MAX`.
pub fn to_bf16(x: f32, mode: Rounding) -> bf16 {
    to_half(x, mode)
}

/// f32 → f16 with an explicit rounding; finite inputs saturate at ±65504.
pub fn to_f16(x: f32, mode: Rounding) -> f16 {
    to_half(x, mode)
}

/// A 32-bit fixed-point format usable as a [`Scalar`]: `fixed`'s `FixedI32<Frac>` for any
/// number of fractional bits.
pub trait Fixed32: Copy {
    /// Fractional bits.
    const FRAC: u32;
    /// From raw bits.
    fn from_raw(bits: i32) -> Self;
    /// Raw bits.
    fn raw(self) -> i32;
}

impl<Frac: fixed::types::extra::LeEqU32> Fixed32 for fixed::FixedI32<Frac> {
    const FRAC: u32 = Frac::U32;
    fn from_raw(bits: i32) -> Self {
        Self::from_bits(bits)
    }
    fn raw(self) -> i32 {
        self.to_bits()
    }
}

/// f32 → fixed point with an explicit rounding; saturating; NaN → 0.
pub fn to_fixed<F: Fixed32>(x: f32, mode: Rounding) -> F {
    if x.is_nan() {
        return F::from_raw(0);
    }
    // Scaling by 2^FRAC is exact (or overflows to ±Inf, which saturates below); `as`
    // saturates and the rounding makes the value integral first.
    let y = x * libm::ldexpf(1.0, F::FRAC as i32);
    F::from_raw(round_units(y, mode) as i32)
}

/// Fixed point → f32 (nearest, ties to even, when the value has more than 24 significant
/// bits).
pub fn from_fixed<F: Fixed32>(x: F) -> f32 {
    x.raw() as f32 * libm::ldexpf(1.0, -(F::FRAC as i32))
}

/// The arithmetic an algorithm needs, in a format-independent way. For f32 these are the
/// IEEE operations; for fixed point they saturate and `times` rounds to nearest (ties to
/// even); for bf16/f16 each operation is computed in f32 and rounded to nearest.
pub trait Scalar: Copy + PartialOrd + core::fmt::Debug {
    /// 0.
    const ZERO: Self;
    /// 1 (saturated where the format cannot hold it, e.g. a Q0.31 format).
    const ONE: Self;
    /// From f32: nearest with ties to even, saturating (see the module docs).
    fn from_f32(x: f32) -> Self;
    /// To f32.
    fn to_f32(self) -> f32;
    /// `self + o`.
    fn plus(self, o: Self) -> Self;
    /// `self − o`.
    fn minus(self, o: Self) -> Self;
    /// `self · o`.
    fn times(self, o: Self) -> Self;
    /// −1, 0 or +1 as `torch.sign` (0 for ±0; NaN for a float NaN).
    fn sign(self) -> Self;
    /// `false` for NaN and ±Inf; fixed point is always finite.
    #[inline(always)]
    fn is_finite(self) -> bool {
        true
    }
    /// Root mean square of `xs` (0 for an empty slice). Floats: in f32 as
    /// [`crate::math::rms`]; fixed point: exact integer sum of squares and an integer square
    /// root (rounded down), no float operation.
    fn rms(xs: &[Self]) -> Self {
        let mut sum = 0.0f32;
        for &x in xs {
            let x = x.to_f32();
            sum += x * x;
        }
        Self::from_f32(crate::math::sqrt(sum / xs.len().max(1) as f32))
    }
}

/// f64: for reference computations and finite-difference checks on the host (the
/// learning rate and coefficients arrive as f32 and widen exactly).
impl Scalar for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        x as f64
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn plus(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn minus(self, o: Self) -> Self {
        self - o
    }
    #[inline(always)]
    fn times(self, o: Self) -> Self {
        self * o
    }
    #[inline(always)]
    fn sign(self) -> Self {
        if self > 0.0 {
            1.0
        } else if self < 0.0 {
            -1.0
        } else {
            self * 0.0 // ±0 → 0, NaN → NaN
        }
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    fn rms(xs: &[Self]) -> Self {
        let sum: f64 = xs.iter().map(|x| x * x).sum();
        libm::sqrt(sum / xs.len().max(1) as f64)
    }
}

impl Scalar for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn plus(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn minus(self, o: Self) -> Self {
        self - o
    }
    #[inline(always)]
    fn times(self, o: Self) -> Self {
        self * o
    }
    #[inline(always)]
    fn sign(self) -> Self {
        crate::math::sign(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn rms(xs: &[Self]) -> Self {
        crate::math::rms(xs)
    }
}

/// [`HalfFormat`] and [`Scalar`] for one of `half`'s types.
macro_rules! half_format {
    ($t:ty) => {
        impl HalfFormat for $t {
            const MAX: f32 = <$t>::MAX.to_f32_const();
            fn nearest(x: f32) -> Self {
                <$t>::from_f32(x)
            }
            fn to(self) -> f32 {
                <$t>::to_f32(self)
            }
            fn bits(self) -> u16 {
                self.to_bits()
            }
            fn from_bits(b: u16) -> Self {
                <$t>::from_bits(b)
            }
            fn nan() -> Self {
                <$t>::NAN
            }
        }

        impl Scalar for $t {
            const ZERO: Self = <$t>::ZERO;
            const ONE: Self = <$t>::ONE;
            #[inline]
            fn from_f32(x: f32) -> Self {
                to_half(x, Rounding::NearestEven)
            }
            #[inline]
            fn to_f32(self) -> f32 {
                <$t>::to_f32(self)
            }
            #[inline]
            fn plus(self, o: Self) -> Self {
                <$t>::from_f32(self.to_f32() + o.to_f32())
            }
            #[inline]
            fn minus(self, o: Self) -> Self {
                <$t>::from_f32(self.to_f32() - o.to_f32())
            }
            #[inline]
            fn times(self, o: Self) -> Self {
                <$t>::from_f32(self.to_f32() * o.to_f32())
            }
            #[inline]
            fn sign(self) -> Self {
                <$t>::from_f32(crate::math::sign(self.to_f32()))
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}
half_format!(bf16);
half_format!(f16);

impl<Frac: fixed::types::extra::LeEqU32> Scalar for fixed::FixedI32<Frac> {
    const ZERO: Self = Self::ZERO;
    const ONE: Self = Self::from_bits(if Frac::U32 >= 31 {
        i32::MAX
    } else {
        1 << Frac::U32
    });
    #[inline]
    fn from_f32(x: f32) -> Self {
        to_fixed(x, Rounding::NearestEven)
    }
    #[inline]
    fn to_f32(self) -> f32 {
        from_fixed(self)
    }
    #[inline]
    fn plus(self, o: Self) -> Self {
        self.saturating_add(o)
    }
    #[inline]
    fn minus(self, o: Self) -> Self {
        self.saturating_sub(o)
    }
    #[inline]
    fn times(self, o: Self) -> Self {
        let f = Frac::U32;
        let p = self.to_bits() as i64 * o.to_bits() as i64;
        let q = if f == 0 {
            p
        } else {
            // Nearest, ties to even: floor(p / 2^f) plus one when the remainder exceeds half,
            // or equals half and the floor is odd.
            let fl = p >> f;
            let rem = p - (fl << f);
            let half = 1i64 << (f - 1);
            fl + (rem > half || (rem == half && fl & 1 == 1)) as i64
        };
        Self::from_bits(q.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
    }
    fn rms(xs: &[Self]) -> Self {
        let sum: u128 = xs
            .iter()
            .map(|x| (x.to_bits() as i64 * x.to_bits() as i64) as u128)
            .sum();
        let mean = sum / xs.len().max(1) as u128;
        // Bit-by-bit integer square root; the root of a mean of squares of i32 fits in 31 bits.
        let (mut root, mut bit) = (0u128, 1u128 << 31);
        while bit > 0 {
            let trial = root | bit;
            if trial * trial <= mean {
                root = trial;
            }
            bit >>= 1;
        }
        Self::from_bits(root.min(i32::MAX as u128) as i32)
    }
    #[inline]
    fn sign(self) -> Self {
        let one = <Self as Scalar>::ONE.to_bits();
        Self::from_bits(match self.to_bits().signum() {
            0 => 0,
            1 => one,
            _ => -one,
        })
    }
}
