//! Symmetric per-row int8 (TFLite / CMSIS-NN weights): quantization, int8·int8 → int32 dot
//! products and requantization by a Q31 multiplier and a shift.
//!
//! ```text
//! scale_r = max_j |w_rj| / 127        q_rj = clamp(round(w_rj / scale_r), −127, 127)   (ties away from zero)
//! w ≈ q · scale_r                      a row of zeros has scale 0 and q = 0 (no division)
//! ```
//! −128 is never produced (the weight range is symmetric, as TFLite requires). The division
//! (not TFLite's multiplication by the f32 reciprocal) follows the golden vectors' reference.
//!
//! Requantization (`acc · M` for a real multiplier `M = m·2^e`, `m ∈ [0.5, 1)`): the Q31
//! multiplier `round(m·2³¹)` and the shift `e`, applied as gemmlowp / TFLite's reference
//! `MultiplyByQuantizedMultiplier`: a left shift for `e > 0`, the saturating rounding doubling
//! high multiplication (ties upward), then a rounding right shift for `e < 0` with ties away
//! from zero (`arm_nn_requantize`'s "mid point away from zero"). The result is within 1 of
//! `acc·M` (tested).
//!
//! ```
//! use margay::quant::{quantize_rows, dot_i8};
//! let w = [0.5_f32, -0.25, 0.0, 0.0];
//! let (mut q, mut scales) = ([0i8; 4], [0.0_f32; 2]);
//! quantize_rows(&w, 2, &mut q, &mut scales).unwrap();
//! assert_eq!(q, [127, -64, 0, 0]); // -63.5 rounds away from zero; the zero row stays 0
//! assert_eq!(scales[1], 0.0);
//! assert_eq!(dot_i8(&q[..2], &[1, 2]), Ok(127 - 128));
//! ```

use super::{check_finite, QuantError};
use crate::math::round_ties_away;

/// Quantizes a row-major matrix of `cols` columns (`w.len() = rows·cols`, `q.len() = w.len()`,
/// `scales.len() = rows`). A length mismatch or a NaN/±Inf weight is an error and nothing is
/// written.
pub fn quantize_rows(
    w: &[f32],
    cols: usize,
    q: &mut [i8],
    scales: &mut [f32],
) -> Result<(), QuantError> {
    if cols == 0 || w.len() != cols * scales.len() {
        return Err(QuantError::LengthMismatch {
            expected: cols * scales.len(),
            got: w.len(),
        });
    }
    if q.len() != w.len() {
        return Err(QuantError::LengthMismatch {
            expected: w.len(),
            got: q.len(),
        });
    }
    check_finite(w)?;
    for ((row, qr), scale) in w
        .chunks_exact(cols)
        .zip(q.chunks_exact_mut(cols))
        .zip(scales.iter_mut())
    {
        let max = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        *scale = max / 127.0;
        for (x, y) in row.iter().zip(qr.iter_mut()) {
            *y = if *scale == 0.0 {
                0
            } else {
                round_ties_away(x / *scale).clamp(-127.0, 127.0) as i8
            };
        }
    }
    Ok(())
}

/// `Σ aᵢ·bᵢ` in i32 (exact: up to 2¹⁷ elements cannot overflow, 127² · 2¹⁷ < 2³¹). A length
/// mismatch is an error.
pub fn dot_i8(a: &[i8], b: &[i8]) -> Result<i32, QuantError> {
    if a.len() != b.len() {
        return Err(QuantError::LengthMismatch {
            expected: a.len(),
            got: b.len(),
        });
    }
    Ok(dot(a, b))
}

/// [`dot_i8`] on arrays (lengths agree by construction).
pub fn dot_i8_array<const N: usize>(a: &[i8; N], b: &[i8; N]) -> i32 {
    dot(a, b)
}

#[inline(always)]
fn dot(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .fold(0i32, |s, (&x, &y)| s.wrapping_add(x as i32 * y as i32))
}

/// A real multiplier as a Q31 fixed-point multiplier and a power-of-two shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Requantize {
    /// `round(m·2³¹)` with `m ∈ [0.5, 1)`; 0 for a zero multiplier.
    pub multiplier: i32,
    /// `e` of `M = m·2^e` (positive: left shift).
    pub shift: i32,
}

impl Requantize {
    /// From a real multiplier `M >= 0` (finite; 0 gives a zero output). A negative or
    /// non-finite `M`, or one above 2³⁰, is an error (`None`).
    pub fn new(real: f64) -> Option<Self> {
        if !real.is_finite() || real < 0.0 || real > (1u64 << 30) as f64 {
            return None;
        }
        if real == 0.0 {
            return Some(Requantize {
                multiplier: 0,
                shift: 0,
            });
        }
        let (m, e) = libm::frexp(real);
        let mut q = libm::round(m * (1u64 << 31) as f64) as i64;
        let mut shift = e;
        if q == 1i64 << 31 {
            q /= 2;
            shift += 1;
        }
        if shift < -31 {
            // Below one part in 2³¹ of an accumulator: the output is 0 (or ±1 at the extreme).
            return Some(Requantize {
                multiplier: 0,
                shift: 0,
            });
        }
        Some(Requantize {
            multiplier: q as i32,
            shift,
        })
    }

    /// `acc · M`, rounded as described in the module docs, saturated to the i32 range.
    pub fn apply(&self, acc: i32) -> i32 {
        let left = if self.shift > 0 { self.shift } else { 0 };
        let right = if self.shift > 0 { 0 } else { -self.shift };
        let x = (acc as i64) << left;
        let x = x.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        rounding_shift_right(doubling_high_mul(x, self.multiplier), right)
    }
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`.
fn doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge = if ab >= 0 {
        1i64 << 30
    } else {
        1 - (1i64 << 30)
    };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: ties away from zero.
fn rounding_shift_right(x: i32, exponent: i32) -> i32 {
    if exponent == 0 {
        return x;
    }
    let mask = (1i64 << exponent) - 1;
    let remainder = x as i64 & mask;
    let threshold = (mask >> 1) + (x < 0) as i64;
    ((x as i64 >> exponent) + (remainder > threshold) as i64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_rejects_mismatch_and_non_finite_writing_nothing() {
        let mut q = [5i8; 4];
        let mut s = [9.0f32; 2];
        assert!(quantize_rows(&[1.0; 4], 3, &mut q, &mut s).is_err());
        assert_eq!(
            quantize_rows(&[1.0, f32::NAN, 0.0, 0.0], 2, &mut q, &mut s),
            Err(QuantError::NonFinite { at: 1 })
        );
        assert_eq!((q, s), ([5; 4], [9.0; 2]));
        assert!(dot_i8(&[1, 2], &[1]).is_err());
    }

    #[test]
    fn int8_never_produces_minus_128_and_ties_go_away_from_zero() {
        let w = [-1.0f32, 1.0, 0.5 / 127.0 * 1.0, -1.5 / 127.0];
        let (mut q, mut s) = ([0i8; 4], [0.0f32; 1]);
        quantize_rows(&w, 4, &mut q, &mut s).unwrap();
        assert_eq!(q[0], -127);
        assert_eq!(q[1], 127);
        assert_eq!(q[2], 1); // 0.5 -> 1
        assert_eq!(q[3], -2); // -1.5 -> -2
    }

    #[test]
    fn requantize_is_within_one_of_the_real_product() {
        for &m in &[0.0003, 0.0123, 0.25, 0.5, 0.75, 0.999_999, 1.0, 3.7, 1234.5] {
            let r = Requantize::new(m).unwrap();
            for acc in [
                -1_000_000i32,
                -12_345,
                -7,
                -1,
                0,
                1,
                3,
                999,
                54_321,
                2_000_000,
            ] {
                let exact = acc as f64 * m;
                let got = r.apply(acc) as f64;
                if exact.abs() < i32::MAX as f64 {
                    assert!((got - exact).abs() <= 1.0, "{m} * {acc}: {got} vs {exact}");
                }
            }
        }
        // The shift rounds ties away from zero: ±0.5 -> ±1.
        let quarter = Requantize::new(0.25).unwrap();
        assert_eq!((quarter.apply(2), quarter.apply(-2)), (1, -1));
        // The doubling high multiplication rounds ties upward (gemmlowp): ±1.5 -> 2, -1.
        let half = Requantize::new(0.5).unwrap();
        assert_eq!((half.apply(3), half.apply(-3)), (2, -1));
        assert!(Requantize::new(-1.0).is_none());
        assert!(Requantize::new(f64::NAN).is_none());
    }
}
