//! Properties of the quantizers (FSQ, int8), named after the invariants they check.

use margay::math::TANH_FAST_MAX_ERROR;
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
        fast in any::<bool>(),
    ) {
        let variant = if sym { FsqVariant::Symmetric } else { FsqVariant::Standard };
        let tanh = if fast { Tanh::Fast } else { Tanh::Accurate };
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
        let acc = FsqConfig::new([l]).build().unwrap();
        let fast = FsqConfig { tanh: Tanh::Fast, ..FsqConfig::new([l]) }.build().unwrap();
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

#[test]
fn fsq_fast_and_accurate_differ_only_near_ties_on_a_dense_sweep() {
    // 2·10⁶ points of [-6, 6] for L = 5 and L = 8: every disagreement must sit within the
    // fast tanh's bound of a rounding tie (the property above, exhaustively on a grid).
    for l in [5u32, 8] {
        let acc = FsqConfig::new([l]).build().unwrap();
        let fast = FsqConfig {
            tanh: Tanh::Fast,
            ..FsqConfig::new([l])
        }
        .build()
        .unwrap();
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
        for tanh in [Tanh::Accurate, Tanh::Fast] {
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
