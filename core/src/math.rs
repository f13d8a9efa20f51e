//! Float helpers that `core` lacks on stable Rust, in one place.
//!
//! Accurate functions come from [`libm`]; each helper says why it exists.

/// Three-way sign as `torch.sign`: `+1` for `x > 0`, `-1` for `x < 0`, `0` for `±0`,
/// NaN for NaN.
///
/// Why: Rust's `f32::signum(0.0)` is `1.0`, while every reference framework
/// (`torch.sign`, `jnp.sign`) returns `0` for a zero. A zero momentum must not move a
/// weight. NaN propagates, so a poisoned state shows up in the parameters instead of
/// silently freezing them. Written branch-free so that the optimizer loops vectorize.
#[inline(always)]
pub fn sign(x: f32) -> f32 {
    let pos = if x > 0.0 { 1.0 } else { 0.0 };
    let neg = if x < 0.0 { 1.0 } else { 0.0 };
    if x.is_nan() {
        x
    } else {
        pos - neg
    }
}

/// `true` when `x` is NaN or ±Inf, from the bits (vectorizes as an integer compare).
#[inline(always)]
pub fn is_non_finite(x: f32) -> bool {
    (x.to_bits() & 0x7fff_ffff) >= 0x7f80_0000
}

/// `true` when any element of `xs` is NaN or ±Inf.
///
/// One pass, branch-free inner loop (an integer OR-reduction) so it runs at memory speed; on
/// Cortex-M4F whole blocks of 16 go through an assembly loop (one `VMLA` per element).
#[inline(always)]
pub fn any_non_finite(xs: &[f32]) -> bool {
    let (found, done) = crate::simd::any_non_finite_f32(xs);
    let mut acc = found as u32;
    for &x in &xs[done..] {
        acc |= is_non_finite(x) as u32;
    }
    acc != 0
}

/// An `i32` key that orders non-NaN floats as the floats order them: `a < b` ⇔
/// `order_key(a) < order_key(b)`, except that −0 sorts just below +0 (their keys are −1
/// and 0). Negative floats have their 31 low bits flipped.
///
/// Why: a float comparison by integer instructions, exact, and a few instructions on a
/// Cortex-M0 with no FPU where a soft-float compare is a library call (FSQ's threshold
/// encoder compares every latent this way).
#[inline(always)]
pub fn order_key(x: f32) -> i32 {
    let b = x.to_bits() as i32;
    b ^ ((b >> 31) & 0x7fff_ffff)
}

/// `true` when any element of `xs` is NaN (Inf passes).
pub fn any_nan(xs: &[f32]) -> bool {
    let mut acc = 0u32;
    for &x in xs {
        acc |= ((x.to_bits() & 0x7fff_ffff) > 0x7f80_0000) as u32;
    }
    acc != 0
}

/// Square root (libm; IEEE correctly rounded).
#[inline(always)]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// `x^y` in f32 (libm).
#[inline(always)]
pub fn powf(x: f32, y: f32) -> f32 {
    libm::powf(x, y)
}

/// Cosine in f32 (libm).
#[inline(always)]
pub fn cos(x: f32) -> f32 {
    libm::cosf(x)
}

/// Hyperbolic tangent in f32 (libm; accurate to about 1 ulp).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}

/// Inverse hyperbolic tangent in f32 (libm).
#[inline(always)]
pub fn atanh(x: f32) -> f32 {
    libm::atanhf(x)
}

/// The largest absolute error of [`tanh_fast`] against the correctly rounded `tanh`, over all
/// finite f32 inputs: 2.5e-7 (about 2 ulp of 1.0). Tested two-sided over a dense sweep (the
/// measured maximum must lie within [`TANH_FAST_MAX_ERROR`]/4 of the bound, so the bound is
/// neither broken nor loose).
pub const TANH_FAST_MAX_ERROR: f32 = 2.5e-7;

/// Fast hyperbolic tangent: `(E − 1)/(E + 1)` with `E = 2^(2|x|·log₂e)` from a degree-5
/// polynomial for `2^f` (f ∈ [0, 1), relative error below 1.8e-7) and the exponent put in by
/// bits; `±1` for `|x| >= 9` (where tanh rounds to 1 anyway). Absolute error at most
/// [`TANH_FAST_MAX_ERROR`]; NaN gives NaN. About 15 float operations and one division, no
/// table, no branch in the common path (libm's `tanhf` costs several times more, and on a
/// Cortex-M4F much more).
// The constants are the f32 values of the fit, written with the digits that produced them.
#[allow(clippy::excessive_precision)]
#[inline(always)]
pub fn tanh_fast(x: f32) -> f32 {
    const TWO_LOG2_E: f32 = 2.885_390_08;
    // 2^f on [0, 1]: least-squares-like fit at Chebyshev nodes (see the module tests).
    const C: [f32; 6] = [
        0.999_999_88,
        0.693_154_5,
        0.240_141_82,
        0.055_860_337,
        0.008_949_591,
        0.001_893_754,
    ];
    let a = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    let a = if a < 9.0 { a } else { 9.0 };
    let t = a * TWO_LOG2_E;
    // floor(t) for t in [0, 26]: round to nearest through the significand, then step down
    // where that rounded up (no float-to-int `as`, whose saturation does not vectorize).
    let mut n = round_to_i32_small(t);
    n -= ((n as f32) > t) as i32;
    let f = t - n as f32;
    let p = ((((C[5] * f + C[4]) * f + C[3]) * f + C[2]) * f + C[1]) * f + C[0];
    let e = p * f32::from_bits(((n + 127) as u32) << 23);
    let r = (e - 1.0) / (e + 1.0);
    let r = if r > 0.0 { r } else { 0.0 }; // p(0) is 1 − 1.2e-7: keep tanh(±0) = ±0
    let r = f32::from_bits(r.to_bits() | (x.to_bits() & 0x8000_0000));
    if x.is_nan() {
        x
    } else {
        r
    }
}

/// Rounds to the nearest integer, ties to even, for `|x| < 2²²` (the FSQ range): adding and
/// subtracting 1.5·2²³ leaves the integer part in the significand under the default rounding
/// mode. Branch-free; NaN gives NaN.
#[inline(always)]
pub fn round_ties_even_small(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    (x + MAGIC) - MAGIC
}

/// [`round_ties_even_small`] as an `i32`, read from the significand's bits (for `|x| < 2²²`;
/// NaN is not allowed): unlike an `as` cast, this vectorizes.
#[inline(always)]
pub fn round_to_i32_small(x: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    ((x + MAGIC).to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32)
}

/// Rounds to the nearest integer, ties away from zero (C's `round`, TFLite's `std::round`).
#[inline(always)]
pub fn round_ties_away(x: f32) -> f32 {
    libm::roundf(x)
}

/// Sum of squares of `xs` in a fixed order: eight interleaved f32 lanes, combined
/// pairwise at the end.
///
/// Why this order: eight independent accumulators vectorize on x86 and keep the error of a
/// long sum near `√n·ε` instead of `n·ε`; the order is part of the definition, so the
/// result is bit-identical on every target.
pub fn sum_sq(xs: &[f32]) -> f32 {
    sum_sq_with(xs, |_| {})
}

/// [`sum_sq`], also handing every element to `each` in the same pass (the one definition of
/// the summation order; the gradient-health pass uses it).
#[inline(always)]
pub(crate) fn sum_sq_with(xs: &[f32], mut each: impl FnMut(f32)) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            lanes[i] += c[i] * c[i];
            each(c[i]);
        }
    }
    for (i, &x) in chunks.remainder().iter().enumerate() {
        lanes[i] += x * x;
        each(x);
    }
    let a = (lanes[0] + lanes[4]) + (lanes[2] + lanes[6]);
    let b = (lanes[1] + lanes[5]) + (lanes[3] + lanes[7]);
    a + b
}

/// Root mean square `sqrt(mean(x²))` of `xs`, with [`sum_sq`]'s order; `0` for an empty slice.
pub fn rms(xs: &[f32]) -> f32 {
    if xs.is_empty() {
        return 0.0;
    }
    sqrt(sum_sq(xs) / xs.len() as f32)
}

/// Exponential `eˣ` (libm).
#[inline]
pub fn exp(x: f32) -> f32 {
    libm::expf(x)
}

/// Natural logarithm (libm).
#[inline]
pub fn ln(x: f32) -> f32 {
    libm::logf(x)
}

/// One step of Marsaglia's xorshift32 (shifts 13, 17, 5): the next value, also left in
/// `state`. 32-bit only, so it is cheap on a Cortex-M0; a zero state stays zero, so seed it
/// non-zero. Not cryptographic.
#[inline]
pub fn xorshift32(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny, seedable, deterministic generator for
/// codebook initialisation and dead-code restarts. Not cryptographic. The same seed gives
/// the same sequence on every target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from a seed (any value, 0 included).
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The internal state: `SplitMix64::new(g.state())` continues exactly where `g` is
    /// (what a checkpoint stores to resume a run bit-exactly).
    pub const fn state(&self) -> u64 {
        self.state
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 24 random bits (every value exactly representable).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform in `[0, n)`: multiply-shift for `n ≤ 2³²` (bias below 2⁻³²·n), modulo above.
    /// Returns 0 for `n = 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 << 32 {
            ((self.next_u64() >> 32) * n) >> 32
        } else {
            self.next_u64() % n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_of_zero_is_zero_unlike_signum() {
        assert_eq!(sign(0.0), 0.0);
        assert_eq!(sign(-0.0), 0.0);
        assert_eq!(0.0f32.signum(), 1.0);
    }

    #[test]
    fn sign_of_nan_is_nan_like_torch() {
        assert!(sign(f32::NAN).is_nan());
    }

    #[test]
    fn sign_of_subnormals_and_infinities_is_unit() {
        assert_eq!(sign(f32::from_bits(1)), 1.0);
        assert_eq!(sign(-f32::from_bits(1)), -1.0);
        assert_eq!(sign(f32::INFINITY), 1.0);
        assert_eq!(sign(f32::NEG_INFINITY), -1.0);
    }

    #[test]
    fn non_finite_detection_matches_std() {
        for x in [
            0.0,
            -0.0,
            1.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
        ] {
            assert!(!is_non_finite(x));
        }
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
            assert!(is_non_finite(x));
        }
        assert!(any_non_finite(&[1.0, 2.0, f32::INFINITY]));
        assert!(!any_nan(&[1.0, 2.0, f32::INFINITY]));
        assert!(any_nan(&[1.0, f32::NAN]));
    }

    #[test]
    fn tanh_fast_error_bound_holds_and_is_tight() {
        // Dense two-sided sweep: every 97th f32 bit pattern from 0 to 10.0 and negatives.
        let mut worst = 0.0f32;
        let mut bits = 0u32;
        while bits <= 10.0f32.to_bits() {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let exact = libm::tanh(x as f64);
                let err = ((tanh_fast(x) as f64) - exact).abs() as f32;
                assert!(err <= TANH_FAST_MAX_ERROR, "x = {x}: error {err}");
                worst = worst.max(err);
            }
            bits += 97;
        }
        std::println!("tanh_fast: worst absolute error {worst:e}");
        assert!(
            worst > TANH_FAST_MAX_ERROR / 4.0,
            "bound is loose: worst {worst}"
        );
        for x in [20.0, 1e30, f32::INFINITY] {
            assert_eq!(tanh_fast(x), 1.0);
            assert_eq!(tanh_fast(-x), -1.0);
        }
        assert!(tanh_fast(f32::NAN).is_nan());
        assert_eq!(tanh_fast(0.0), 0.0);
    }

    #[test]
    fn round_ties_even_small_matches_the_definition() {
        for (x, r) in [
            (0.5, 0.0),
            (1.5, 2.0),
            (2.5, 2.0),
            (-0.5, -0.0),
            (-1.5, -2.0),
            (2.4, 2.0),
            (-3.6, -4.0),
        ] {
            assert_eq!(round_ties_even_small(x), r, "{x}");
        }
        assert_eq!(round_ties_away(2.5), 3.0);
        assert_eq!(round_ties_away(-2.5), -3.0);
    }

    #[test]
    fn sum_sq_matches_f64_sum_closely() {
        let xs: std::vec::Vec<f32> = (0..1001)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let exact: f64 = xs.iter().map(|&x| (x as f64) * (x as f64)).sum();
        let got = sum_sq(&xs) as f64;
        assert!((got - exact).abs() <= 1e-5 * exact, "{got} vs {exact}");
    }
}
