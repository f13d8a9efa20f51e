//! Properties of the quantizers (FSQ, int8), named after the invariants they check.

use margay::math::{order_key, TANH_FAST_MAX_ERROR};
use margay::quant::{levels, quantize_rows, Fsq, FsqConfig, FsqVariant, Tanh};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6673_7121),
        ..ProptestConfig::default()
    }
}

fn check_round_trips<const D: usize>(set: [u32; D]) {
    for variant in [FsqVariant::Standard, FsqVariant::Symmetric] {
        let fsq = FsqConfig {
            variant,
            ..FsqConfig::new(set)
        }
        .build()
        .unwrap();
        for idx in 0..fsq.codebook_size() {
            let k = fsq.levels_of_index(idx).unwrap();
            assert_eq!(fsq.index_of_levels(&k), idx, "{set:?}");
            let codes = fsq.decode(idx).unwrap();
            // Quantization is idempotent on codes: a code snaps to itself.
            assert_eq!(fsq.snap_levels(&codes), k, "{set:?} {idx}");
        }
    }
}

#[test]
fn every_index_round_trips_for_every_recommended_level_set() {
    check_round_trips(levels::L2_8);
    check_round_trips(levels::L2_10);
    check_round_trips(levels::L2_12);
    check_round_trips(levels::L2_14);
    check_round_trips(levels::L2_16);
}

fn code_range(l: u32, variant: FsqVariant) -> (f32, f32) {
    match variant {
        FsqVariant::Standard if l.is_multiple_of(2) => (-1.0, 1.0 - 2.0 / l as f32),
        _ => (-1.0, 1.0),
    }
}

fn any_z() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -6.0f32..6.0,
        1 => any::<f32>(),
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fsq_codes_lie_in_the_documented_range_and_indices_in_the_codebook(
        z in prop::array::uniform4(any_z()),
        sym in any::<bool>(),
        mode in 0usize..3,
    ) {
        let variant = variant_of(sym);
        let tanh = [Tanh::Accurate, Tanh::Fast, Tanh::Thresholds][mode];
        let fsq = FsqConfig { variant, tanh, ..FsqConfig::new(levels::L2_10) }.build().unwrap();
        let (codes, idx) = fsq.quantize(&z);
        prop_assert!(idx < fsq.codebook_size());
        for (c, &l) in codes.iter().zip(&levels::L2_10) {
            let (lo, hi) = code_range(l, variant);
            prop_assert!(*c >= lo && *c <= hi, "{c} outside [{lo}, {hi}]");
        }
        prop_assert_eq!(fsq.decode(idx).unwrap(), codes);
    }

    #[test]
    fn fsq_quantize_is_idempotent_on_its_codes(z in prop::array::uniform3(any_z())) {
        let fsq: Fsq<3> = FsqConfig::new(levels::L2_8).build().unwrap();
        let k = fsq.quantize_levels(&z);
        let codes = fsq.codes_of_levels(&k);
        prop_assert_eq!(fsq.snap_levels(&codes), k);
    }

    #[test]
    fn fsq_fast_tanh_changes_a_code_only_within_its_bound_of_a_tie(z in -6.0f32..6.0, l in 3u32..17) {
        let acc = one_channel(l, FsqVariant::Standard, Tanh::Accurate);
        let fast = one_channel(l, FsqVariant::Standard, Tanh::Fast);
        if acc.quantize_levels(&[z]) != fast.quantize_levels(&[z]) {
            let b = acc.bound(0, z);
            let to_tie = ((b - b.floor()) - 0.5).abs();
            let half_l = (l - 1) as f32 * 1.001 / 2.0;
            // the tanh error scaled by half_l, plus a few ulp of b for the products
            let bound = half_l * (TANH_FAST_MAX_ERROR + 2.0 * f32::EPSILON) + 4.0 * f32::EPSILON * b.abs().max(1.0);
            prop_assert!(to_tie <= bound, "z {z}: b {b} is {to_tie} from a tie (bound {bound})");
        }
    }

    #[test]
    fn fsq_thresholds_change_a_code_only_within_a_few_ulp_of_a_tie(
        z in -6.0f32..6.0,
        l in 3u32..17,
        sym in any::<bool>(),
    ) {
        let variant = variant_of(sym);
        let acc = one_channel(l, variant, Tanh::Accurate);
        let thr = one_channel(l, variant, Tanh::Thresholds);
        if acc.quantize_levels(&[z]) != thr.quantize_levels(&[z]) {
            let to_tie = exact_distance_to_tie(l, variant, z);
            prop_assert!(to_tie <= f32_pipeline_error(l), "L {l} z {z}: {to_tie} from a tie");
        }
    }

    #[test]
    fn fsq_thresholds_level_is_the_exact_bound_rounded(
        z in -6.0f32..6.0,
        l in 3u32..17,
        sym in any::<bool>(),
    ) {
        let variant = variant_of(sym);
        let thr = one_channel(l, variant, Tanh::Thresholds);
        let k = thr.quantize_levels(&[z])[0];
        // Wherever the f64 bound is clearly off a rounding point, its rounding is the level.
        if exact_distance_to_tie(l, variant, z) > 1e-9 {
            prop_assert_eq!(k, exact_level(l, variant, z), "L {} z {}", l, z);
        }
    }

    #[test]
    fn int8_dequantized_error_is_at_most_half_a_step(
        w in prop::collection::vec(-3.0f32..3.0, 12),
    ) {
        let (mut q, mut s) = ([0i8; 12], [0.0f32; 3]);
        quantize_rows(&w, 4, &mut q, &mut s).unwrap();
        for r in 0..3 {
            for c in 0..4 {
                let x = w[r * 4 + c];
                let y = q[r * 4 + c] as f32 * s[r];
                prop_assert!((x - y).abs() <= 0.5 * s[r] * (1.0 + 1e-5) + 1e-12, "{x} vs {y}");
                prop_assert!(q[r * 4 + c] != -128);
            }
        }
    }
}

/// A one-channel quantizer of `l` levels.
fn one_channel(l: u32, variant: FsqVariant, tanh: Tanh) -> Fsq<1> {
    FsqConfig {
        variant,
        tanh,
        ..FsqConfig::new([l])
    }
    .build()
    .unwrap()
}

/// The variant a property's `sym` flag picks.
fn variant_of(sym: bool) -> FsqVariant {
    if sym {
        FsqVariant::Symmetric
    } else {
        FsqVariant::Standard
    }
}

/// The bound of channel 0 in f64 from the quantizer's own f32 constants (half_l, offset and
/// shift are recomputed exactly as `build` does), before rounding: `b` (standard) or
/// `(L−1)(tanh z + 1)/2 + ½` (symmetric, whose level is its floor).
fn exact_bound(l: u32, variant: FsqVariant, z: f32) -> f64 {
    let z = if z.is_nan() { 0.0 } else { z as f64 };
    match variant {
        FsqVariant::Standard => {
            let half_l = ((l as f32 - 1.0) * 1.001f32 / 2.0) as f64;
            let offset = if l.is_multiple_of(2) { 0.5f32 } else { 0.0 };
            let shift = margay::math::atanh(offset / half_l as f32) as f64;
            (z + shift).tanh() * half_l - offset as f64
        }
        FsqVariant::Symmetric => (l - 1) as f64 * (z.tanh() + 1.0) / 2.0 + 0.5,
    }
}

/// The level of the exact bound (ties cannot occur in this range of `z`, see `fsq.rs`).
fn exact_level(l: u32, variant: FsqVariant, z: f32) -> u32 {
    let b = exact_bound(l, variant, z);
    let k = match variant {
        FsqVariant::Standard => b.round_ties_even() as i64 + (l / 2) as i64,
        FsqVariant::Symmetric => b.floor() as i64,
    };
    k.clamp(0, l as i64 - 1) as u32
}

/// How far the exact bound is from the nearest rounding point.
fn exact_distance_to_tie(l: u32, variant: FsqVariant, z: f32) -> f64 {
    let b = exact_bound(l, variant, z);
    match variant {
        FsqVariant::Standard => ((b - b.floor()) - 0.5).abs(),
        FsqVariant::Symmetric => (b - b.round()).abs(),
    }
}

/// What the f32 pipeline of [`Tanh::Accurate`] can be off by in `b`: the sum `z + shift`
/// (½ ulp, times `half_l·sech²` ≤ `half_l·0.45/|z+shift|`·|z+shift|), libm's tanh (1 ulp),
/// the product and the offset (½ ulp of `b` each): under `4ε·half_l`; twice that is asserted.
fn f32_pipeline_error(l: u32) -> f64 {
    8.0 * f32::EPSILON as f64 * ((l - 1) as f64 / 2.0).max(1.0)
}

/// At every threshold of every recommended level set (both variants), the level steps up
/// exactly there: `level(T) = j + 1`, `level(T⁻) = j` for the f32 `T⁻` just below, and the
/// exact bound confirms both with room to spare (so the f64 rounding chose the right f32).
#[test]
fn fsq_thresholds_step_exactly_at_the_exact_rounding_points() {
    fn check<const D: usize>(set: [u32; D]) {
        for variant in [FsqVariant::Standard, FsqVariant::Symmetric] {
            let thr = FsqConfig {
                variant,
                tanh: Tanh::Thresholds,
                ..FsqConfig::new(set)
            }
            .build()
            .unwrap();
            for (c, &l) in set.iter().enumerate() {
                let one = one_channel(l, variant, Tanh::Thresholds);
                // Walk z upwards from −10 to 10: the level rises by one at each threshold.
                let (mut steps, mut ties) = (0, 0);
                let mut z = -10.0f32;
                let mut prev = one.quantize_levels(&[z])[0];
                assert_eq!(prev, 0);
                // Find each step by bisection over the f32 order between level changes.
                while prev < l - 1 {
                    let (mut lo, mut hi) = (z, 10.0f32);
                    while lo.next_up() < hi {
                        let mid = f32::from_bits(midpoint_bits(lo, hi));
                        if one.quantize_levels(&[mid])[0] > prev {
                            hi = mid;
                        } else {
                            lo = mid;
                        }
                    }
                    let k = one.quantize_levels(&[hi])[0];
                    assert_eq!(
                        k,
                        prev + 1,
                        "{set:?} {variant:?} L {l}: skipped a level at {hi}"
                    );
                    // Where f64 resolves the side of the rounding point (all but the tie
                    // where the tanh is 0, which the thresholds hit exactly by construction),
                    // it agrees on both sides of the step.
                    let mut unresolved = 0;
                    for (x, want) in [(hi, k), (lo, prev)] {
                        if exact_distance_to_tie(l, variant, x) > 1e-12 {
                            assert_eq!(exact_level(l, variant, x), want, "L {l} at {x}");
                        } else {
                            unresolved += 1;
                        }
                    }
                    ties += (unresolved > 0) as u32;
                    // The multi-channel quantizer agrees with the one-channel one.
                    let mut v = [0.0f32; D];
                    v[c] = hi;
                    assert_eq!(thr.quantize_levels(&v)[c], k);
                    prev = k;
                    z = hi;
                    steps += 1;
                }
                assert_eq!(steps, l - 1);
                assert!(
                    ties <= 1,
                    "{set:?} {variant:?} L {l}: {ties} unresolved steps"
                );
            }
        }
    }
    check(levels::L2_8);
    check(levels::L2_10);
    check(levels::L2_12);
    check(levels::L2_14);
    check(levels::L2_16);
    check([3, 4, 16]);
}

/// The f32 halfway between two floats in the order of the floats (through their order keys;
/// `order_key` is its own inverse on the bits).
fn midpoint_bits(lo: f32, hi: f32) -> u32 {
    let (a, b) = (order_key(lo) as i64, order_key(hi) as i64);
    let m = (a + (b - a) / 2) as i32;
    order_key(f32::from_bits(m as u32)) as u32
}

#[test]
fn fsq_thresholds_refuse_more_levels_than_they_store() {
    use margay::quant::{QuantError, MAX_THRESHOLD_LEVELS};
    let cfg = |l| FsqConfig {
        tanh: Tanh::Thresholds,
        ..FsqConfig::new([5, l])
    };
    assert!(cfg(MAX_THRESHOLD_LEVELS).build().is_ok());
    let err = cfg(MAX_THRESHOLD_LEVELS + 1).build().unwrap_err();
    assert_eq!(
        err,
        QuantError::TooManyLevels {
            channel: 1,
            level: 17,
            max: 16
        }
    );
    assert!(err.to_string().contains("Tanh::Fast"), "{err}");
}

/// The golden vectors (vector-quantize-pytorch) pass in every tanh mode, not only the
/// accurate one the conformance runner uses.
#[test]
fn fsq_golden_vectors_pass_in_every_mode() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/fsq.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    fn run<const D: usize>(case: &serde_json::Value, tanh: Tanh) -> usize {
        let mut levels = [0u32; D];
        for (l, x) in levels.iter_mut().zip(case["levels"].as_array().unwrap()) {
            *l = x.as_u64().unwrap() as u32;
        }
        let fsq = FsqConfig {
            tanh,
            ..FsqConfig::new(levels)
        }
        .build()
        .unwrap();
        let rows = case["z"].as_array().unwrap();
        for (r, row) in rows.iter().enumerate() {
            let mut z = [0.0f32; D];
            for (x, y) in z.iter_mut().zip(row.as_array().unwrap()) {
                *x = y.as_f64().unwrap() as f32;
            }
            let (codes, idx) = fsq.quantize(&z);
            assert_eq!(
                idx as u64,
                case["indices"][r].as_u64().unwrap(),
                "{tanh:?} row {r}"
            );
            for (c, want) in codes.iter().zip(case["codes"][r].as_array().unwrap()) {
                assert!((*c as f64 - want.as_f64().unwrap()).abs() <= 1e-6);
            }
        }
        rows.len()
    }
    let mut n = 0;
    for case in v["cases"].as_array().unwrap() {
        for tanh in [Tanh::Accurate, Tanh::Fast, Tanh::Thresholds] {
            n += match case["levels"].as_array().unwrap().len() {
                1 => run::<1>(case, tanh),
                3 => run::<3>(case, tanh),
                4 => run::<4>(case, tanh),
                5 => run::<5>(case, tanh),
                d => panic!("{d} channels"),
            };
        }
    }
    assert_eq!(n, 3 * 6 * 99);
}

/// Around every rounding point of L = 3…16 (both variants), all 8,193 floats nearest to it:
/// the accurate f32 pipeline and the thresholds disagree only where the exact bound is within
/// the f32 pipeline's error of the rounding point.
#[test]
fn fsq_accurate_and_thresholds_differ_only_within_a_few_ulp_of_each_tie() {
    let mut disagreements = 0;
    let mut worst = 0.0f64;
    for variant in [FsqVariant::Standard, FsqVariant::Symmetric] {
        for l in 3u32..=16 {
            let acc = one_channel(l, variant, Tanh::Accurate);
            let thr = one_channel(l, variant, Tanh::Thresholds);
            // The rounding points in z, from the f64 bound, by bisection.
            for j in 1..l {
                let (mut lo, mut hi) = (-10.0f64, 10.0f64);
                for _ in 0..200 {
                    let mid = (lo + hi) / 2.0;
                    if exact_level(l, variant, mid as f32) >= j
                        && exact_bound(l, variant, mid as f32).is_finite()
                    {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                let mut z = (hi as f32).next_down();
                for _ in 0..4096 {
                    z = z.next_down();
                }
                for _ in 0..8193 {
                    if acc.quantize_levels(&[z]) != thr.quantize_levels(&[z]) {
                        let d = exact_distance_to_tie(l, variant, z);
                        assert!(d <= f32_pipeline_error(l), "{variant:?} L {l} z {z}: {d}");
                        disagreements += 1;
                        worst = worst.max(d / f32::EPSILON as f64);
                    }
                    z = z.next_up();
                }
            }
        }
    }
    println!("{disagreements} disagreements, farthest {worst:.2} ε from a tie");
    // The f32 pipeline does round differently from the exact bound somewhere.
    assert!(disagreements > 0);
}

#[test]
fn fsq_fast_and_accurate_differ_only_near_ties_on_a_dense_sweep() {
    // 2·10⁶ points of [-6, 6] for L = 5 and L = 8: every disagreement must sit within the
    // fast tanh's bound of a rounding tie (the property above, exhaustively on a grid).
    for l in [5u32, 8] {
        let acc = one_channel(l, FsqVariant::Standard, Tanh::Accurate);
        let fast = one_channel(l, FsqVariant::Standard, Tanh::Fast);
        let half_l = (l - 1) as f32 * 1.001 / 2.0;
        let n = 2_000_000;
        for i in 0..=n {
            let z = -6.0 + 12.0 * i as f32 / n as f32;
            if acc.quantize_levels(&[z]) != fast.quantize_levels(&[z]) {
                let b = acc.bound(0, z);
                let to_tie = ((b - b.floor()) - 0.5).abs();
                let bound = half_l * (TANH_FAST_MAX_ERROR + 2.0 * f32::EPSILON)
                    + 4.0 * f32::EPSILON * b.abs().max(1.0);
                assert!(
                    to_tie <= bound,
                    "L {l}, z {z}: b {b} is {to_tie} from a tie"
                );
            }
        }
    }
}

/// The blocked (8-row, vectorized) `encode_rows` gives the same index as `encode` on every
/// row, for both variants and both tanh paths, at lengths that leave a remainder.
#[test]
fn fsq_encode_rows_equals_row_by_row_encode() {
    let mut rng = margay::math::SplitMix64::new(21);
    for variant in [FsqVariant::Standard, FsqVariant::Symmetric] {
        for tanh in [Tanh::Accurate, Tanh::Fast, Tanh::Thresholds] {
            let fsq = FsqConfig {
                variant,
                tanh,
                ..FsqConfig::new([8, 5, 5, 5])
            }
            .build()
            .unwrap();
            for rows in [0usize, 1, 7, 8, 9, 61, 200] {
                let z: Vec<f32> = (0..rows * 4)
                    .map(|i| match i % 37 {
                        5 => f32::NAN,
                        11 => f32::INFINITY,
                        17 => f32::NEG_INFINITY,
                        _ => (rng.next_f32() - 0.5) * 8.0,
                    })
                    .collect();
                let mut idx = vec![0u32; rows];
                fsq.encode_rows(&z, &mut idx).unwrap();
                for (r, &i) in idx.iter().enumerate() {
                    let v: [f32; 4] = z[r * 4..r * 4 + 4].try_into().unwrap();
                    assert_eq!(i, fsq.encode(&v), "{variant:?} {tanh:?} row {r}");
                }
            }
        }
    }
}
