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
/// One pass, branch-free inner loop (an integer OR-reduction) so it runs at memory speed.
pub fn any_non_finite(xs: &[f32]) -> bool {
    let mut acc = 0u32;
    for &x in xs {
        acc |= is_non_finite(x) as u32;
    }
    acc != 0
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

/// Sum of squares of `xs` in a fixed order: eight interleaved f32 lanes, combined
/// pairwise at the end.
///
/// Why this order: eight independent accumulators vectorize on x86 and keep the error of a
/// long sum near `√n·ε` instead of `n·ε`; the order is part of the definition, so the
/// result is bit-identical on every target.
pub fn sum_sq(xs: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            lanes[i] += c[i] * c[i];
        }
    }
    for (i, &x) in chunks.remainder().iter().enumerate() {
        lanes[i] += x * x;
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
    fn sum_sq_matches_f64_sum_closely() {
        let xs: std::vec::Vec<f32> = (0..1001)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let exact: f64 = xs.iter().map(|&x| (x as f64) * (x as f64)).sum();
        let got = sum_sq(&xs) as f64;
        assert!((got - exact).abs() <= 1e-5 * exact, "{got} vs {exact}");
    }
}
