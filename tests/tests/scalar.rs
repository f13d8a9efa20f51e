//! Properties of the number formats (bf16/f16, fixed point) and of the generic `Scalar`
//! algorithms, named after the invariants they check.

use half::{bf16, f16};
use margay::optim::LionConfig;
use margay::quant::{from_fixed, to_bf16, to_f16, to_fixed, Rounding, Scalar, I16F16, I8F24};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7363_616c),
        ..ProptestConfig::default()
    }
}

fn finite() -> impl Strategy<Value = f32> {
    prop_oneof![
        -200.0f32..200.0,
        -1e-3f32..1e-3,
        prop::num::f32::NORMAL | prop::num::f32::SUBNORMAL | prop::num::f32::ZERO,
    ]
}

fn modes(r: u32) -> [Rounding; 3] {
    [
        Rounding::NearestEven,
        Rounding::TowardZero,
        Rounding::Stochastic(r),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Nearest-even conversion equals `fixed`'s own `saturating_from_num`.
    #[test]
    fn fixed_nearest_equals_the_fixed_crate(x in finite()) {
        prop_assert_eq!(to_fixed::<I16F16>(x, Rounding::NearestEven), I16F16::saturating_from_num(x));
        prop_assert_eq!(to_fixed::<I8F24>(x, Rounding::NearestEven), I8F24::saturating_from_num(x));
    }

    /// In range, every mode round-trips within one ulp (nearest within half), toward zero
    /// never grows the magnitude; out of range, the value saturates.
    #[test]
    fn fixed_round_trips_within_one_ulp(x in finite(), r in any::<u32>()) {
        for mode in modes(r) {
            let q: I8F24 = to_fixed(x, mode);
            let back = from_fixed(q) as f64;
            let ulp = 2f64.powi(-24);
            if (x as f64).abs() < 127.0 {
                let err = (back - x as f64).abs();
                let bound = if mode == Rounding::NearestEven { ulp / 2.0 } else { ulp };
                prop_assert!(err <= bound, "{:?} {} -> {} err {}", mode, x, back, err);
                if mode == Rounding::TowardZero {
                    prop_assert!(back.abs() <= (x as f64).abs());
                }
            } else if x >= 128.0 {
                prop_assert_eq!(q, I8F24::MAX);
            } else if x < -128.0 {
                prop_assert_eq!(q, I8F24::MIN);
            }
        }
    }

    /// bf16/f16 nearest equals `half` inside the range; toward zero and stochastic pick one
    /// of the two neighbours; a finite input never becomes infinite.
    #[test]
    fn halves_pick_a_neighbour_and_saturate(x in finite(), r in any::<u32>()) {
        let n = to_bf16(x, Rounding::NearestEven);
        if bf16::from_f32(x).is_finite() {
            prop_assert_eq!(n.to_bits(), bf16::from_f32(x).to_bits());
        }
        let nh = to_f16(x, Rounding::NearestEven);
        if f16::from_f32(x).is_finite() {
            prop_assert_eq!(nh.to_bits(), f16::from_f32(x).to_bits());
        }
        let tz = to_bf16(x, Rounding::TowardZero).to_f32();
        let st = to_bf16(x, Rounding::Stochastic(r)).to_f32();
        prop_assert!(tz.abs() <= x.abs());
        prop_assert!(st == tz || st.abs() >= x.abs(), "{} -> {} (toward zero {})", x, st, tz);
        let tzh = to_f16(x, Rounding::TowardZero).to_f32();
        let sth = to_f16(x, Rounding::Stochastic(r)).to_f32();
        prop_assert!(tzh.abs() <= x.abs());
        prop_assert!(sth == tzh || sth.abs() >= x.abs() || tzh.abs() == 65504.0);
        for v in [n.to_f32(), tz, st, nh.to_f32(), tzh, sth] {
            prop_assert!(v.is_finite());
        }
    }

    /// Fixed-point multiplication is the exact product rounded to nearest (ties to even),
    /// saturated.
    #[test]
    fn fixed_times_rounds_to_nearest(a in any::<i32>(), b in -(1i32 << 20)..(1 << 20)) {
        let (x, y) = (I16F16::from_bits(a), I16F16::from_bits(b));
        let exact = a as i128 * b as i128; // in units of 2^-32
        let got = x.times(y).to_bits() as i128;
        let want = if exact >= (i32::MAX as i128) << 16 {
            i32::MAX as i128
        } else if exact < (i32::MIN as i128) << 16 {
            i32::MIN as i128
        } else {
            let fl = exact >> 16;
            let rem = exact - (fl << 16);
            fl + ((rem > 1 << 15) || (rem == 1 << 15 && fl & 1 == 1)) as i128
        };
        prop_assert_eq!(got, want);
    }
}

#[test]
fn stochastic_rounding_is_unbiased() {
    let mut rng = margay::math::SplitMix64::new(1);
    for x in [1.0f32 + 1.0 / 512.0, -3.3e-3, 12_345.678, 0.1] {
        let n = 20_000;
        let (mut sb, mut sh, mut sf) = (0f64, 0f64, 0f64);
        for _ in 0..n {
            let r = rng.next_u64() as u32;
            sb += to_bf16(x, Rounding::Stochastic(r)).to_f32() as f64;
            sh += to_f16(x, Rounding::Stochastic(r)).to_f32() as f64;
            sf += from_fixed(to_fixed::<I16F16>(x, Rounding::Stochastic(r))) as f64;
        }
        // Four standard errors of a two-point draw one ulp apart.
        let ulp_b = (x.abs() as f64) * 2f64.powi(-7);
        let ulp_h = (x.abs() as f64) * 2f64.powi(-10);
        for (mean, ulp, name) in [
            (sb / n as f64, ulp_b, "bf16"),
            (sh / n as f64, ulp_h, "f16"),
            (sf / n as f64, 2f64.powi(-16), "I16F16"),
        ] {
            let tol = 4.0 * ulp * 0.5 / (n as f64).sqrt() + 1e-12;
            assert!(
                (mean - x as f64).abs() <= tol,
                "{name} {x}: mean {mean}, tolerance {tol}"
            );
        }
    }
}

#[test]
fn special_values_follow_the_documented_rules() {
    for mode in modes(0x8000_0000) {
        assert_eq!(to_bf16(f32::MAX, mode), bf16::MAX);
        assert_eq!(to_bf16(f32::INFINITY, mode), bf16::INFINITY);
        assert!(to_bf16(f32::NAN, mode).is_nan());
        assert_eq!(to_f16(70_000.0, mode), f16::MAX);
        assert_eq!(to_f16(-70_000.0, mode), f16::MIN);
        assert_eq!(to_f16(f32::NEG_INFINITY, mode), f16::NEG_INFINITY);
        assert_eq!(to_fixed::<I16F16>(40_000.0, mode), I16F16::MAX);
        assert_eq!(to_fixed::<I16F16>(f32::INFINITY, mode), I16F16::MAX);
        assert_eq!(to_fixed::<I16F16>(f32::NEG_INFINITY, mode), I16F16::MIN);
        assert_eq!(to_fixed::<I8F24>(f32::NAN, mode), I8F24::ZERO);
    }
    // Saturating arithmetic instead of wrapping.
    assert_eq!(I16F16::MAX.plus(I16F16::ONE), I16F16::MAX);
    assert_eq!(I16F16::MIN.minus(I16F16::ONE), I16F16::MIN);
    assert_eq!(
        I8F24::from_f32(100.0).times(I8F24::from_f32(2.0)),
        I8F24::MAX
    );
    assert_eq!(I8F24::from_f32(-0.25).sign(), -I8F24::ONE);
    assert_eq!(I8F24::ZERO.sign(), I8F24::ZERO);
}

#[test]
fn lion_in_f32_through_scalar_is_bit_identical_to_lion() {
    let lion = LionConfig {
        weight_decay: 0.1,
        ..LionConfig::new(3e-3)
    }
    .build()
    .unwrap();
    let mut rng = margay::math::SplitMix64::new(5);
    let mut p: Vec<f32> = (0..257).map(|_| rng.next_f32() - 0.5).collect();
    let mut p2 = p.clone();
    let (mut m, mut m2) = (vec![0.0f32; 257], vec![0.0f32; 257]);
    for t in 1..=20 {
        let g: Vec<f32> = (0..257).map(|_| rng.next_f32() - 0.5).collect();
        lion.step(lion.at(t), &mut p, &g, &mut m).unwrap();
        lion.step_scalar(lion.at(t), &mut p2, &g, &mut m2).unwrap();
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&p), bits(&p2));
    assert_eq!(bits(&m), bits(&m2));
}

#[test]
fn lion_in_i8f24_tracks_f32_lion() {
    // 200 steps: each fixed-point step rounds a few times at 2^-24, so the drift stays far
    // below one learning-rate step unless a momentum sits within rounding of 0, where the
    // two formats may take opposite signs (counted, and bounded by a few lr per weight).
    let lion = LionConfig {
        weight_decay: 0.1,
        ..LionConfig::new(1e-3)
    }
    .build()
    .unwrap();
    let n = 64;
    let mut rng = margay::math::SplitMix64::new(8);
    let mut p: Vec<f32> = (0..n).map(|_| rng.next_f32() - 0.5).collect();
    let mut q: Vec<I8F24> = p.iter().map(|&x| I8F24::from_f32(x)).collect();
    let (mut m, mut mq) = (vec![0.0f32; n], vec![I8F24::ZERO; n]);
    for t in 1..=200 {
        let g: Vec<f32> = (0..n).map(|_| (rng.next_f32() - 0.5) * 0.1).collect();
        let gq: Vec<I8F24> = g.iter().map(|&x| I8F24::from_f32(x)).collect();
        lion.step(lion.at(t), &mut p, &g, &mut m).unwrap();
        lion.step_scalar(lion.at(t), &mut q, &gq, &mut mq).unwrap();
    }
    let worst = p
        .iter()
        .zip(&q)
        .map(|(a, b)| (a - b.to_f32()).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "worst drift {worst}");
    let mut bad = vec![I8F24::ZERO; 3];
    assert!(lion
        .step_scalar(
            lion.at(1),
            &mut bad,
            &[I8F24::ZERO; 2],
            &mut [I8F24::ZERO; 3]
        )
        .is_err());
}
