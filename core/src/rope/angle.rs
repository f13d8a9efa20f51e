//! Angles kept exact at any position: pos·θ reduced modulo one turn in integer arithmetic,
//! then a small sin/cos kernel.
//!
//! **Why.** The usual f32 path (Hugging Face, ggml) forms `pos · θ` in f32 and loses about
//! `pos · 2⁻²⁴` radians: ≈3.6e-3 rad at position 131,071 and ≈3e-2 rad near 2²⁰. margay
//! stores each frequency as a **64-bit fixed-point fraction of a turn per position**,
//! `step = round(frac(θ/2π) · 2⁶⁴)` (θ computed in f64). Because positions are integers,
//! `pos · step` with wrapping `u64` arithmetic *is* the angle modulo one turn, exact up to
//! the `2⁻⁶⁴`-turn representation of θ (≤ 2⁻³³ turns at |pos| ≤ 2³¹). The top 32 bits
//! (rounded) give the angle in units of 2π/2³², i.e. within 1.5e-9 rad, at every position.
//!
//! [`sin_cos_turns`] then reduces to the nearest quarter turn with integer ops (exact) and
//! evaluates odd/even polynomials on [−π/4, π/4] in f32.
//!
//! **Bound** (asserted by `sin_cos_turns_error_bound` over a dense sweep and the quadrant
//! edges): `|sin − sin_f64| ≤ 1.3e-7` and `|cos − cos_f64| ≤ 1.3e-7` for every `u32` turn,
//! i.e. about 2 ulp of 1. Every operation is plain IEEE f32 (no FMA contraction, no libm),
//! so x86, Cortex-M4F and the soft-float Cortex-M0 give the same bits.

/// `frac(θ / 2π) · 2⁶⁴`, rounded: the angle advanced per position, in 2⁻⁶⁴ turns.
/// Works for any finite θ ≥ 0 (and wraps large θ, which is exact for integer positions).
///
/// θ/2π is formed in double-double (1/2π split in two f64s, the product's rounding error
/// recovered with an FMA), so the step is within ~1 unit of 2⁻⁶⁴ turns of the f64 θ:
/// a plain f64 division would be off by ~1e-16 relative, i.e. 2e-7 rad at position 2³¹.
pub fn step_of(inv_freq: f64) -> u64 {
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    const INV_TAU_HI: f64 = 0.159_154_943_091_895_35;
    const INV_TAU_LO: f64 = -9.839_338_337_591_243e-18;
    let hi = inv_freq * INV_TAU_HI;
    let lo = libm::fma(inv_freq, INV_TAU_HI, -hi) + inv_freq * INV_TAU_LO;
    let frac = hi - libm::floor(hi); // exact
                                     // frac·2⁶⁴ is exact (a power-of-two scale); round it, then add the small correction.
    let main = libm::round(frac * TWO_64);
    let main = if main >= TWO_64 { 0 } else { main as u64 }; // frac rounded up to a turn
    let corr = libm::round(lo * TWO_64) as i64;
    main.wrapping_add(corr as u64)
}

/// The angle of `pos · θ` modulo one turn, in units of 2π/2³² (rounded to nearest).
#[inline(always)]
pub fn turns_at(pos: i32, step: u64) -> u32 {
    // Two's complement: a negative position wraps to the same angle modulo 2⁶⁴ turns-units.
    let full = (pos as i64 as u64).wrapping_mul(step);
    (full.wrapping_add(1 << 31) >> 32) as u32
}

/// [`turns_at`] with the step split in 32-bit halves (`hi`, `lo`): only 32×32-bit products,
/// so loops over pairs vectorize (AVX2 has no 64-bit multiply) and Cortex-M needs one UMULL.
/// Equal to [`turns_at`] for every input (tested).
#[inline(always)]
pub fn turns_at_split(pos: i32, hi: u32, lo: u32) -> u32 {
    let p = pos as u32;
    let prod = p as u64 * lo as u64;
    // Top 32 bits of p·(hi·2³² + lo) + 2³¹ (mod 2⁶⁴).
    let t = p
        .wrapping_mul(hi)
        .wrapping_add((prod >> 32) as u32)
        .wrapping_add((prod as u32) >> 31);
    // For pos < 0, p = pos + 2³² instead of pos + 2⁶⁴: the product is 2³²·step too large,
    // i.e. `lo` too large in the top half (the low half is unaffected).
    t.wrapping_sub(lo & ((pos >> 31) as u32))
}

// Polynomial coefficients, least squares on Chebyshev nodes of [−π/4, π/4] (relative
// weighting), rounded to f32: sin x ≈ x + x³(S1 + x²(S2 + x²·S3)),
// cos x ≈ 1 − x²/2 + x⁴(C1 + x²(C2 + x²·C3)).
const S1: f32 = -0.166_666_54;
const S2: f32 = 0.008_332_148;
const S3: f32 = -0.000_195_139_32;
const C1: f32 = 0.041_666_646;
const C2: f32 = -0.001_388_734_2;
const C3: f32 = 0.000_024_435_853;

/// `(sin, cos)` of `t · 2π/2³²`. Branch-free, so loops over it vectorize.
#[inline(always)]
pub fn sin_cos_turns(t: u32) -> (f32, f32) {
    // Nearest quarter turn q and the remainder r in [−2²⁹, 2²⁹): both exact.
    let q = t.wrapping_add(1 << 29) >> 30;
    let r = t.wrapping_sub(q << 30) as i32;
    let x = r as f32 * (core::f32::consts::TAU / 4_294_967_296.0);
    let x2 = x * x;
    let s = x + x * x2 * (S1 + x2 * (S2 + x2 * S3));
    let c = 1.0 - 0.5 * x2 + x2 * x2 * (C1 + x2 * (C2 + x2 * C3));
    // sin(qπ/2 + x), cos(qπ/2 + x): odd q swaps sin and cos; the signs follow the quadrant.
    let (sv, cv) = if q & 1 == 1 { (c, s) } else { (s, c) };
    let sin_neg = (q & 2) << 30; // q = 2, 3
    let cos_neg = (q.wrapping_add(1) & 2) << 30; // q = 1, 2
    (
        f32::from_bits(sv.to_bits() ^ sin_neg),
        f32::from_bits(cv.to_bits() ^ cos_neg),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::f64::consts::TAU;

    fn exact(t: u32) -> (f64, f64) {
        let a = t as f64 * (TAU / 4_294_967_296.0);
        (libm::sin(a), libm::cos(a))
    }

    #[test]
    fn sin_cos_turns_error_bound() {
        let mut worst = (0.0_f64, 0.0_f64);
        let mut check = |t: u32| {
            let (s, c) = sin_cos_turns(t);
            let (es, ec) = exact(t);
            worst.0 = worst.0.max((s as f64 - es).abs());
            worst.1 = worst.1.max((c as f64 - ec).abs());
        };
        // Dense sweep (every 997th turn-unit, ~4.3 M points) plus the octant edges.
        let mut t = 0_u32;
        loop {
            check(t);
            match t.checked_add(997) {
                Some(n) => t = n,
                None => break,
            }
        }
        for k in 0..8_u32 {
            let edge = k.wrapping_mul(1 << 29);
            for d in 0..64_u32 {
                check(edge.wrapping_add(d));
                check(edge.wrapping_sub(d));
            }
        }
        assert!(worst.0 <= 1.3e-7 && worst.1 <= 1.3e-7, "{worst:?}");
        // Two-sided: the bound is not loose by more than 4x.
        assert!(worst.0.max(worst.1) > 3e-8, "{worst:?}");
    }

    #[test]
    fn split_turns_equal_the_u64_turns() {
        let mut rng = crate::math::SplitMix64::new(77);
        let edge = [0, 1, -1, 7, -7, i32::MAX, i32::MIN, 1 << 20, -(1 << 20)];
        for k in 0..200_000 {
            let step = if k % 3 == 0 {
                rng.next_u64() >> (k % 61)
            } else {
                rng.next_u64()
            };
            let pos = if k < edge.len() {
                edge[k]
            } else {
                rng.next_u64() as i32 >> (k % 31)
            };
            let (hi, lo) = ((step >> 32) as u32, step as u32);
            assert_eq!(
                turns_at_split(pos, hi, lo),
                turns_at(pos, step),
                "pos {pos} step {step:#x}"
            );
        }
    }

    #[test]
    fn quarter_turns_are_exact() {
        assert_eq!(sin_cos_turns(0), (0.0, 1.0));
        assert_eq!(sin_cos_turns(1 << 30), (1.0, -0.0));
        assert_eq!(sin_cos_turns(2 << 30), (-0.0, -1.0));
        assert_eq!(sin_cos_turns(3 << 30), (-1.0, 0.0));
    }

    #[test]
    fn turns_wrap_exactly_for_negative_positions() {
        let step = step_of(0.123_456_789);
        for p in [1, 7, 4095, 131_071, 1_048_575] {
            let fwd = turns_at(p, step);
            let back = turns_at(-p, step);
            // −pos·θ ≡ −(pos·θ) modulo a turn (within the rounding of the top bits).
            assert!(fwd.wrapping_add(back) <= 1 || fwd.wrapping_add(back) == u32::MAX);
        }
    }

    #[test]
    fn angle_error_at_long_positions_is_below_2e_9_rad() {
        // θ = 1/10000^(2i/128) for a few i; compare with f64 (pos·θ mod 2π) computed with the
        // exact product (pos < 2²¹ and θ's 53 bits: the product needs 74 bits, so split θ).
        for i in [0_u32, 1, 17, 63] {
            let theta = 1.0 / libm::pow(10_000.0, 2.0 * i as f64 / 128.0);
            let step = step_of(theta);
            for pos in [4095_i32, 131_071, 1_048_575] {
                let hi = (theta * 4096.0).floor() / 4096.0; // 12 fractional bits: pos·hi exact
                let lo = theta - hi;
                let a = libm::fmod(pos as f64 * hi, TAU) + pos as f64 * lo;
                let want = libm::fmod(a, TAU) / TAU; // turns in [0, 1)
                let got = turns_at(pos, step) as f64 / 4_294_967_296.0;
                let mut d = (got - want).abs();
                d = d.min(1.0 - d);
                assert!(d * TAU < 2e-9, "i {i} pos {pos}: {} rad", d * TAU);
            }
        }
    }
}
