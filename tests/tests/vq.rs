//! Properties of VQ (nearest code, EMA codebook, dead codes, initialisation) and LFQ (index,
//! entropy bounds and gradient), named after the invariants they check.

use margay::math::SplitMix64;
use margay::quant::{kmeans_pp, LfqConfig, QuantError, Reservoir, VqConfig, VqState};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7671_0001),
        ..ProptestConfig::default()
    }
}

/// Values on a coarse grid so that distance ties happen often.
fn grid() -> impl Strategy<Value = f32> {
    (-4i32..=4).prop_map(|v| v as f32 * 0.5)
}

fn dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

proptest! {
    #![proptest_config(config())]

    /// The chosen code is at least as near as every other, and strictly nearer than every
    /// code before it (the first index wins ties).
    #[test]
    fn vq_output_is_the_nearest_code_first_index_on_ties(
        cb in prop::array::uniform8(prop::array::uniform3(grid())),
        z in prop::array::uniform3(grid()),
    ) {
        let vq = VqConfig::new().build::<8, 3>().unwrap();
        let (code, k) = vq.quantize(&cb, &z);
        prop_assert_eq!(code, cb[k as usize]);
        let dk = dist(&z, &cb[k as usize]);
        for (j, e) in cb.iter().enumerate() {
            let dj = dist(&z, e);
            prop_assert!(dk <= dj);
            if j < k as usize {
                prop_assert!(dj > dk, "code {} ties with {} but comes first", j, k);
            }
        }
    }

    /// After one batch from empty statistics, each used code is the mean of its rows up to
    /// the Laplace factor N/Ñ_k (computed here in f64), and an unused code is 0 (Sonnet).
    #[test]
    fn vq_ema_first_batch_is_the_smoothed_mean(
        rows in prop::collection::vec(prop::array::uniform2(-3.0f32..3.0), 1..40),
        decay in 0.5f32..0.999,
    ) {
        let vq = VqConfig { decay, ..VqConfig::new() }.build::<4, 2>().unwrap();
        let mut state = VqState::new([[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]]);
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let mut idx = vec![0u32; rows.len()];
        vq.encode_rows(&state.codebook, &flat, &mut idx).unwrap();
        let stats = state.update(&vq, &flat, &idx, &mut SplitMix64::new(1)).unwrap();
        prop_assert_eq!(stats.rows, rows.len() as u32);
        let n = rows.len() as f64;
        let eps = 1e-5f64;
        for k in 0..4 {
            let mine: Vec<&[f32; 2]> = rows.iter().zip(&idx).filter(|(_, &i)| i == k as u32).map(|(r, _)| r).collect();
            let nk = mine.len() as f64;
            let smoothed = (nk + eps) / (n + 4.0 * eps) * n;
            for j in 0..2 {
                let sum: f64 = mine.iter().map(|r| r[j] as f64).sum();
                let want = sum / smoothed;
                let got = state.codebook[k][j] as f64;
                prop_assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "code {} ch {}: {} vs {}", k, j, got, want);
            }
            prop_assert!((state.count(&vq, k) as f64 - nk).abs() < 1e-4 * (1.0 + nk));
        }
    }
}

#[test]
fn vq_ema_converges_to_the_cluster_means() {
    let vq = VqConfig {
        decay: 0.9,
        ..VqConfig::new()
    }
    .build::<3, 2>()
    .unwrap();
    let centres = [[-1.0f32, 0.0], [1.0, 0.0], [0.0, 2.0]];
    let mut state = VqState::new([[-0.5, 0.1], [0.4, -0.3], [0.2, 1.0]]);
    let mut rng = SplitMix64::new(3);
    let mut last = None;
    for _ in 0..300 {
        let mut flat = Vec::new();
        for c in centres.iter().cycle().take(30) {
            for &x in c {
                flat.push(x + (rng.next_f32() - 0.5) * 0.2);
            }
        }
        let mut idx = vec![0u32; 30];
        vq.encode_rows(&state.codebook, &flat, &mut idx).unwrap();
        last = Some(state.update(&vq, &flat, &idx, &mut rng).unwrap());
    }
    for (e, c) in state.codebook.iter().zip(&centres) {
        assert!(dist(e, c) < 0.03 * 0.03, "{e:?} vs {c:?}");
    }
    // Every code equally used: perplexity K.
    assert!((last.unwrap().perplexity - 3.0).abs() < 1e-4);
}

#[test]
fn vq_dead_codes_are_restarted_from_batch_rows() {
    let vq = VqConfig {
        dead_threshold: 0.5,
        ..VqConfig::new()
    }
    .build::<3, 2>()
    .unwrap();
    let mut state = VqState::new([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0]]);
    let rows = [0.1f32, 0.0, 0.9, 1.0, 0.0, 0.1, 1.1, 1.0];
    let mut idx = [0u32; 4];
    vq.encode_rows(&state.codebook, &rows, &mut idx).unwrap();
    assert!(!idx.contains(&2));
    let stats = state
        .update(&vq, &rows, &idx, &mut SplitMix64::new(9))
        .unwrap();
    assert_eq!((stats.dead, stats.restarted), (1, 1));
    let restarted = state.codebook[2];
    assert!(
        rows.chunks_exact(2).any(|r| r == restarted),
        "{restarted:?} is not a batch row"
    );
    // With the threshold off (the default), the unused code becomes 0, as in Sonnet.
    let vq0 = VqConfig::new().build::<3, 2>().unwrap();
    let mut state0 = VqState::new([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0]]);
    let stats0 = state0
        .update(&vq0, &rows, &idx, &mut SplitMix64::new(9))
        .unwrap();
    assert_eq!((stats0.dead, stats0.restarted), (0, 0));
    assert_eq!(state0.codebook[2], [0.0, 0.0]);
}

#[test]
fn vq_bad_input_is_an_error_and_changes_nothing() {
    let vq = VqConfig::new().build::<2, 2>().unwrap();
    let mut state = VqState::new([[0.0, 0.0], [1.0, 1.0]]);
    let mut rng = SplitMix64::new(0);
    state
        .update(&vq, &[0.5, 0.5, 1.0, 1.0], &[0, 1], &mut rng)
        .unwrap();
    let before = state.clone();
    assert_eq!(
        state.update(&vq, &[0.5, f32::NAN], &[0], &mut rng),
        Err(QuantError::NonFinite { at: 1 })
    );
    assert_eq!(
        state.update(&vq, &[0.5, 0.5], &[2], &mut rng),
        Err(QuantError::IndexOutOfRange { index: 2, size: 2 })
    );
    assert_eq!(
        state.update(&vq, &[0.5, 0.5, 1.0], &[0], &mut rng),
        Err(QuantError::LengthMismatch {
            expected: 2,
            got: 3
        })
    );
    assert_eq!(state, before);
    // NaN rows are encoded to code 0, never out of range.
    assert_eq!(vq.nearest(&state.codebook, &[f32::NAN, 0.0]).0, 0);
    assert_eq!(vq.nearest(&state.codebook, &[f32::INFINITY, 0.0]).0, 0);
    let mut cb = state.codebook;
    assert_eq!(
        kmeans_pp(&mut cb, &[1.0, f32::INFINITY], &mut rng),
        Err(QuantError::NonFinite { at: 1 })
    );
    assert_eq!(
        kmeans_pp(&mut cb, &[], &mut rng),
        Err(QuantError::LengthMismatch {
            expected: 2,
            got: 0
        })
    );
    assert_eq!(cb, state.codebook);
}

#[test]
fn vq_backward_is_ste_plus_the_commitment_gradient() {
    let vq = VqConfig::new().build::<2, 2>().unwrap();
    let cb = [[0.0f32, 0.0], [1.0, 1.0]];
    let z = [0.2f32, -0.1, 0.7, 1.4];
    let idx = [0u32, 1];
    let g_out = [0.5f32, -1.0, 2.0, 0.25];
    let mut g = [0.0f32; 4];
    vq.backward(&cb, &z, &idx, &g_out, &mut g).unwrap();
    // Finite differences of the commitment loss (indices held fixed).
    for i in 0..4 {
        let h = 1e-3f32;
        let (mut zp, mut zm) = (z, z);
        zp[i] += h;
        zm[i] -= h;
        let lp = vq.loss(&cb, &zp, &idx).unwrap().commitment;
        let lm = vq.loss(&cb, &zm, &idx).unwrap().commitment;
        let fd = (lp - lm) / (2.0 * h);
        assert!(
            (g[i] - g_out[i] - fd).abs() < 1e-3,
            "{i}: {} vs {fd}",
            g[i] - g_out[i]
        );
    }
    let mut gc = [[0.0f32; 2]; 2];
    vq.codebook_grad(&cb, &z, &idx, &mut gc).unwrap();
    assert!((gc[1][0] - 2.0 * (1.0 - 0.7) / 4.0).abs() < 1e-7);
}

#[test]
fn reservoir_fills_in_order_then_samples_uniformly() {
    let mut cb = [[9.0f32; 1]; 4];
    let mut res = Reservoir::new();
    let mut rng = SplitMix64::new(5);
    for x in 0..3 {
        res.offer(&mut cb, &[x as f32], &mut rng).unwrap();
    }
    assert_eq!(cb, [[0.0], [1.0], [2.0], [9.0]]);
    assert!(res.offer(&mut cb, &[f32::NAN], &mut rng).is_err());
    assert_eq!(res.seen(), 3);
    // Over many streams of 20 rows, every row lands in the codebook about 4/20 of the time.
    let mut hits = [0u32; 20];
    for seed in 0..4000 {
        let mut cb = [[0.0f32; 1]; 4];
        let mut res = Reservoir::new();
        let mut rng = SplitMix64::new(seed);
        for x in 0..20 {
            res.offer(&mut cb, &[x as f32], &mut rng).unwrap();
        }
        for c in cb {
            hits[c[0] as usize] += 1;
        }
    }
    for (x, &h) in hits.iter().enumerate() {
        // Expected 800, standard deviation about 25: ±150 is six sigma.
        assert!((650..=950).contains(&h), "row {x}: {h} hits");
    }
}

#[test]
fn kmeans_pp_seeds_one_code_per_separated_cluster() {
    // 100 apart with ±0.05 noise: an uncovered cluster holds all but ~10⁻⁶ of the D² mass.
    let centres = [[0.0f32, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]];
    let mut flat = Vec::new();
    let mut rng = SplitMix64::new(11);
    for _ in 0..25 {
        for c in &centres {
            for &x in c {
                flat.push(x + (rng.next_f32() - 0.5) * 0.1);
            }
        }
    }
    for seed in 0..50 {
        let mut cb = [[0.0f32; 2]; 4];
        kmeans_pp(&mut cb, &flat, &mut SplitMix64::new(seed)).unwrap();
        for c in &centres {
            assert!(
                cb.iter().any(|e| dist(e, c) < 1.0),
                "seed {seed}: no code near {c:?}: {cb:?}"
            );
        }
    }
    // Fewer distinct rows than codes: still fills every code, with rows.
    let mut cb = [[5.0f32; 2]; 4];
    kmeans_pp(&mut cb, &[1.0, 1.0, 1.0, 1.0], &mut SplitMix64::new(0)).unwrap();
    assert_eq!(cb, [[1.0, 1.0]; 4]);
}

#[test]
fn lfq_every_index_round_trips() {
    let lfq = LfqConfig::new().build::<12>().unwrap();
    for idx in 0..4096u32 {
        let codes = lfq.decode(idx).unwrap();
        assert_eq!(lfq.quantize(&codes), (codes, idx));
    }
}

proptest! {
    #![proptest_config(config())]

    /// Both entropies lie in [0, D·ln 2] (the clamp only lowers them), and the entropy
    /// gradient matches central finite differences of `aux`.
    #[test]
    fn lfq_entropies_are_bounded_and_the_gradient_matches_finite_differences(
        z in prop::collection::vec(-0.05f32..0.05, 4 * 6),
        gamma in 0.0f32..2.0,
    ) {
        let lfq = LfqConfig { inv_temperature: 10.0, diversity_gamma: gamma, ..LfqConfig::new() }
            .build::<4>()
            .unwrap();
        let mut scratch = [0.0f32; 16];
        let e = lfq.entropy(&z, &mut scratch).unwrap();
        let top = 4.0 * std::f32::consts::LN_2 + 1e-5;
        prop_assert!((0.0..=top).contains(&e.per_sample), "{:?}", e);
        prop_assert!((0.0..=top).contains(&e.codebook), "{:?}", e);
        let mut g = vec![0.0f32; z.len()];
        lfq.entropy_grad(&z, &mut scratch, &mut g).unwrap();
        for i in 0..z.len() {
            let h = 1e-3f32;
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[i] += h;
            zm[i] -= h;
            let fd = (lfq.entropy(&zp, &mut scratch).unwrap().aux
                - lfq.entropy(&zm, &mut scratch).unwrap().aux)
                / (2.0 * h);
            prop_assert!((g[i] - fd).abs() < 5e-3 * (1.0 + fd.abs()), "{}: {} vs {}", i, g[i], fd);
        }
    }
}
