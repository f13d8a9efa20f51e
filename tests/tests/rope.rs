//! Properties of RoPE (norm, relativity, inverse, transpose, layouts, tables, partial
//! rotation, 2D/3D), the frequency scalings' defining facts, bad input, accuracy at long
//! positions and the attention scales.

use margay::math::SplitMix64;
use margay::rope::{
    frequencies, grad_max_alpha_mean_field, grad_max_scale, log_n_inference_factor, log_n_scale,
    standard_scale, AxialConfig, Direction, Layout, Llama3, LongRope, Positions, RopeConfig,
    RopeError, RopeTable, Scaling, Yarn,
};
use margay_tests::rope_accuracy::{measure, POSITIONS};
use proptest::prelude::*;

const CAP: usize = 64;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7270_0001),
        ..ProptestConfig::default()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn norm(a: &[f32]) -> f64 {
    dot(a, a).sqrt()
}

/// A `[heads, seq, d]` tensor rotated one row at a time by `Rope::apply` (row k of each head
/// at position `start + k`): the reference of the batched paths.
fn each_row<const C: usize>(
    rope: &margay::rope::Rope<C>,
    x: &[f32],
    seq: usize,
    start: i32,
    dir: Direction,
) -> Vec<f32> {
    let mut y = x.to_vec();
    for (i, row) in y.chunks_exact_mut(rope.head_dim()).enumerate() {
        rope.apply(row, start + (i % seq) as i32, dir).unwrap();
    }
    y
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![Just(Layout::Interleaved), Just(Layout::HalfSplit)]
}

/// (head_dim, rotary_dim, x): even rotary_dim ≤ head_dim ≤ 64.
fn head() -> impl Strategy<Value = (usize, usize, Vec<f32>)> {
    (1usize..=32, 0usize..=8).prop_flat_map(|(pairs, extra)| {
        let d = 2 * pairs + extra;
        (
            Just(d),
            Just(2 * pairs),
            prop::collection::vec(-4.0f32..4.0, d),
        )
    })
}

fn pos() -> impl Strategy<Value = i32> {
    prop_oneof![
        0i32..64,
        -5000i32..5000,
        (1i32 << 20) - 16..(1 << 20),
        i32::MIN / 2..i32::MAX / 2
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rope_preserves_norm((d, r, x) in head(), lay in layout(), p in pos()) {
        let rope = RopeConfig::new(d).rotary_dim(r).layout(lay).build::<CAP>().unwrap();
        let mut y = x.clone();
        rope.apply(&mut y, p, Direction::Forward).unwrap();
        let (a, b) = (norm(&x), norm(&y));
        prop_assert!((a - b).abs() <= 4e-7 * a + 1e-30, "{a} vs {b}");
    }

    /// ⟨R_m q, R_n k⟩ = ⟨R_{m+t} q, R_{n+t} k⟩ = ⟨q, R_{n−m} k⟩, at any shift t (exact angles
    /// keep this true at positions near 2³⁰).
    #[test]
    fn scores_depend_only_on_the_offset(
        (d, r, q) in head(), lay in layout(), m in pos(), dn in -100_000i32..100_000,
        t in pos(), seed in any::<u64>(),
    ) {
        let rope = RopeConfig::new(d).rotary_dim(r).layout(lay).build::<CAP>().unwrap();
        let mut rng = SplitMix64::new(seed);
        let k: Vec<f32> = (0..d).map(|_| rng.next_f32() * 8.0 - 4.0).collect();
        let n = m.saturating_add(dn);
        let (m2, n2) = (m.wrapping_add(t), n.wrapping_add(t));
        let score = |pq: i32, pk: i32| {
            let (mut a, mut b) = (q.clone(), k.clone());
            rope.apply(&mut a, pq, Direction::Forward).unwrap();
            rope.apply(&mut b, pk, Direction::Forward).unwrap();
            dot(&a, &b)
        };
        let base = score(m, n);
        let scale = norm(&q) * norm(&k);
        prop_assert!((base - score(m2, n2)).abs() <= 1e-6 * scale + 1e-30);
        prop_assert!((base - score(0, n.wrapping_sub(m))).abs() <= 1e-6 * scale + 1e-30);
    }

    #[test]
    fn backward_restores_x_without_attention_factor((d, r, x) in head(), lay in layout(), p in pos()) {
        let rope = RopeConfig::new(d).rotary_dim(r).layout(lay).build::<CAP>().unwrap();
        let mut y = x.clone();
        rope.apply(&mut y, p, Direction::Forward).unwrap();
        rope.apply(&mut y, p, Direction::Backward).unwrap();
        for (a, b) in x.iter().zip(&y) {
            prop_assert!((a - b).abs() <= 1e-6 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }

    /// ⟨A·R x, y⟩ = ⟨x, A·Rᵀ y⟩ with YaRN's attention factor A ≠ 1: Backward is the VJP.
    #[test]
    fn backward_is_the_transpose_with_attention_factor(
        (d, r, x) in head(), lay in layout(), p in pos(), seed in any::<u64>(),
    ) {
        prop_assume!(r >= 4);
        let rope = RopeConfig::new(d).rotary_dim(r).layout(lay)
            .scaling(Scaling::Yarn(Yarn::new(16.0, 2048))).build::<CAP>().unwrap();
        prop_assert!(rope.attention_factor() > 1.27);
        let mut rng = SplitMix64::new(seed);
        let yv: Vec<f32> = (0..d).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let (mut rx, mut rty) = (x.clone(), yv.clone());
        rope.apply(&mut rx, p, Direction::Forward).unwrap();
        rope.apply(&mut rty, p, Direction::Backward).unwrap();
        let (a, b) = (dot(&rx, &yv), dot(&x, &rty));
        prop_assert!((a - b).abs() <= 2e-6 * norm(&x) * norm(&yv) + 1e-30, "{a} vs {b}");
    }

    /// Interleaved on x equals half-split on the permuted x (pair (2i, 2i+1) ↔ (i, i + r/2)),
    /// bit for bit.
    #[test]
    fn layouts_agree_up_to_the_fixed_permutation((d, r, x) in head(), p in pos()) {
        let inter = RopeConfig::new(d).rotary_dim(r).layout(Layout::Interleaved).build::<CAP>().unwrap();
        let half = RopeConfig::new(d).rotary_dim(r).layout(Layout::HalfSplit).build::<CAP>().unwrap();
        let h = r / 2;
        let perm = |v: &[f32]| {
            let mut out = v.to_vec();
            for i in 0..h {
                out[i] = v[2 * i];
                out[i + h] = v[2 * i + 1];
            }
            out
        };
        let mut a = x.clone();
        inter.apply(&mut a, p, Direction::Forward).unwrap();
        let mut b = perm(&x);
        half.apply(&mut b, p, Direction::Forward).unwrap();
        prop_assert_eq!(perm(&a), b);
    }

    #[test]
    fn partial_rotation_leaves_the_tail_untouched((d, r, x) in head(), lay in layout(), p in pos()) {
        let rope = RopeConfig::new(d).rotary_dim(r).layout(lay).build::<CAP>().unwrap();
        let mut y = x.clone();
        rope.apply(&mut y, p, Direction::Forward).unwrap();
        prop_assert_eq!(&y[r..], &x[r..]);
    }

    /// Table, on-the-fly rows, [heads, seq, d] blocks and [seq, heads, d] tokens: same bits.
    /// Up to 10 heads: the [heads, seq, d] paths go four heads at a time and the first four
    /// compute the cos/sin rows that the later groups (and a partial last one) reuse.
    #[test]
    fn every_path_gives_the_same_bits(
        (d, r, _x) in head(), lay in layout(), start in -40i32..40, seed in any::<u64>(),
        heads in 1usize..11, seq in 1usize..20,
    ) {
        let cfg = RopeConfig::new(d).rotary_dim(r).layout(lay)
            .scaling(Scaling::Linear { factor: 2.0 });
        let rope = cfg.build::<CAP>().unwrap();
        let mut rng = SplitMix64::new(seed);
        let x: Vec<f32> = (0..heads * seq * d).map(|_| rng.next_f32() - 0.5).collect();
        // Reference: each row alone, on the fly.
        let each_row = |dir| each_row(&rope, &x, seq, start, dir);
        let want = each_row(Direction::Forward);
        let mut heads_path = x.clone();
        rope.apply_heads(&mut heads_path, heads, Positions::From(start), Direction::Forward).unwrap();
        prop_assert_eq!(&heads_path, &want);
        // And back: the transpose of each row's rotation.
        let mut back = x.clone();
        rope.apply_heads(&mut back, heads, Positions::From(start), Direction::Backward).unwrap();
        prop_assert_eq!(&back, &each_row(Direction::Backward));
        // The caller's scratch, blocks of 1 to 7 positions (and an odd float left over).
        let block = 1 + (seed % 7) as usize;
        let mut scratch = vec![0.0f32; rope.heads_scratch_len(block) + (seed % 2) as usize];
        let mut scratch_path = x.clone();
        rope.apply_heads_in(&mut scratch_path, heads, Positions::From(start), Direction::Forward,
            &mut scratch).unwrap();
        prop_assert_eq!(&scratch_path, &want);
        // The prefetch distance (0 = off, up to past the end of the tensor) is a speed knob only.
        let hinted = cfg
            .prefetch(if seed % 7 == 0 { usize::MAX } else { (seed % 5000) as usize })
            .build::<CAP>().unwrap();
        let mut hinted_path = x.clone();
        hinted.apply_heads(&mut hinted_path, heads, Positions::From(start), Direction::Forward)
            .unwrap();
        prop_assert_eq!(&hinted_path, &want);
        let table = RopeTable::<20, CAP>::new(&rope, start).unwrap();
        let mut table_path = x.clone();
        for (i, row) in table_path.chunks_exact_mut(d).enumerate() {
            table.apply(row, start + (i % seq) as i32, Direction::Forward).unwrap();
        }
        prop_assert_eq!(&table_path, &want);
        // [seq, heads, d]: transpose, rotate by token, transpose back.
        let mut thd = vec![0.0f32; x.len()];
        for h in 0..heads { for t in 0..seq {
            thd[(t * heads + h) * d..][..d].copy_from_slice(&x[(h * seq + t) * d..][..d]);
        } }
        let list: Vec<i32> = (0..seq as i32).map(|t| start + t).collect();
        rope.apply_tokens(&mut thd, heads, Positions::List(&list), Direction::Forward).unwrap();
        for h in 0..heads { for t in 0..seq {
            prop_assert_eq!(&thd[(t * heads + h) * d..][..d], &want[(h * seq + t) * d..][..d]);
        } }
    }

    /// R_{x₁,y₁}ᵀ R_{x₂,y₂} = R_{x₂−x₁, y₂−y₁}: shifting both patches by (a, b) keeps scores.
    #[test]
    fn rope2d_is_relative_in_both_axes(
        pairs in 1usize..16, seed in any::<u64>(),
        p1 in prop::array::uniform2(-300i32..300), p2 in prop::array::uniform2(-300i32..300),
        shift in prop::array::uniform2(-100_000i32..100_000),
    ) {
        let d = 4 * pairs;
        let rope = AxialConfig::two_d(d).build::<CAP>().unwrap();
        let mut rng = SplitMix64::new(seed);
        let q: Vec<f32> = (0..d).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let k: Vec<f32> = (0..d).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let score = |a: [i32; 2], b: [i32; 2]| {
            let (mut x, mut y) = (q.clone(), k.clone());
            rope.apply(&mut x, a, Direction::Forward).unwrap();
            rope.apply(&mut y, b, Direction::Forward).unwrap();
            dot(&x, &y)
        };
        let s = score(p1, p2);
        let tol = 1e-6 * norm(&q) * norm(&k);
        let add = |p: [i32; 2], dx: i32, dy: i32| [p[0] + dx, p[1] + dy];
        prop_assert!((s - score(add(p1, shift[0], 0), add(p2, shift[0], 0))).abs() <= tol);
        prop_assert!((s - score(add(p1, 0, shift[1]), add(p2, 0, shift[1]))).abs() <= tol);
        prop_assert!((s - score([0, 0], [p2[0] - p1[0], p2[1] - p1[1]])).abs() <= tol);
    }
}

#[test]
fn rope2d_is_one_d_rope_on_each_half() {
    let d = 32;
    let axial = AxialConfig::two_d(d).base(100.0).build::<CAP>().unwrap();
    let half = RopeConfig::new(d / 2).base(100.0).build::<CAP>().unwrap();
    let x: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut a = x.clone();
    axial.apply(&mut a, [5, -9], Direction::Forward).unwrap();
    let mut b = x.clone();
    half.apply(&mut b[..d / 2], 5, Direction::Forward).unwrap();
    half.apply(&mut b[d / 2..], -9, Direction::Forward).unwrap();
    assert_eq!(a, b);
}

#[test]
fn rope3d_sections_rotate_by_t_y_x_and_leave_the_rest() {
    let d = 40;
    let rope = AxialConfig::new(d, [8, 12, 12]).build::<CAP>().unwrap();
    let x: Vec<f32> = (0..d).map(|i| 1.0 + i as f32 * 0.01).collect();
    let mut a = x.clone();
    rope.apply(&mut a, [3, 4, 5], Direction::Forward).unwrap();
    assert_eq!(&a[32..], &x[32..]);
    for (sec, (start, len, p)) in [(0, 8, 3), (8, 12, 4), (20, 12, 5)].into_iter().enumerate() {
        let one = RopeConfig::new(len).build::<CAP>().unwrap();
        let mut b = x[start..start + len].to_vec();
        one.apply(&mut b, p, Direction::Forward).unwrap();
        assert_eq!(&a[start..start + len], &b[..], "section {sec}");
    }
}

// ---- frequency scalings: their defining facts ----

fn inv(r: usize, base: f64, s: Scaling) -> Vec<f64> {
    frequencies::<CAP>(r, base, &s).unwrap().inv_freq.to_vec()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs()
}

#[test]
fn linear_divides_every_frequency_by_the_factor() {
    let d = inv(64, 1e4, Scaling::Default);
    let l = inv(64, 1e4, Scaling::Linear { factor: 4.0 });
    assert!(d.iter().zip(&l).all(|(a, b)| close(a / 4.0, *b)));
}

#[test]
fn ntk_keeps_the_fastest_pair_and_divides_the_slowest_by_the_factor() {
    let d = inv(128, 1e4, Scaling::Default);
    let n = inv(128, 1e4, Scaling::Ntk { factor: 8.0 });
    assert!(close(n[0], 1.0));
    assert!(close(n[63], d[63] / 8.0));
    // The reference's example: base 10,000 → 82,685 (θ₁ = base′^(−2/128)).
    let base = n[1].powf(-64.0);
    assert!((base - 82_685.0).abs() < 1.0, "{base}");
}

#[test]
fn dynamic_ntk_is_unchanged_up_to_the_training_length_and_static_at_kappa() {
    let d = inv(64, 1e4, Scaling::Default);
    for seq_len in [0, 100, 2048] {
        let s = Scaling::Dynamic {
            factor: 2.0,
            max_position_embeddings: 2048,
            seq_len,
        };
        assert_eq!(inv(64, 1e4, s), d);
    }
    // ℓ = 2·L₀, s = 2: κ = 2·2 − 1 = 3, the static NTK base for factor 3.
    let dy = inv(
        64,
        1e4,
        Scaling::Dynamic {
            factor: 2.0,
            max_position_embeddings: 2048,
            seq_len: 4096,
        },
    );
    let st = inv(64, 1e4, Scaling::Ntk { factor: 3.0 });
    assert!(dy.iter().zip(&st).all(|(a, b)| close(*a, *b)));
}

#[test]
fn yarn_extrapolates_below_low_interpolates_above_high_and_ramps_between() {
    let d = inv(128, 1e4, Scaling::Default);
    let f = frequencies::<CAP>(128, 1e4, &Scaling::Yarn(Yarn::new(4.0, 4096))).unwrap();
    assert!(close(f.attention_factor, 0.1 * 4.0f64.ln() + 1.0));
    assert!((f.attention_factor - 1.1386).abs() < 1e-4);
    // low = 20, high = 46 (reference example).
    for (i, (&th, &got)) in d.iter().zip(f.inv_freq.iter()).enumerate() {
        let ramp = ((i as f64 - 20.0) / 26.0).clamp(0.0, 1.0);
        assert!(close(got, th / 4.0 * ramp + th * (1.0 - ramp)), "pair {i}");
    }
    // Untruncated ends (20.94, 45.03) move pair 21 off the truncated value.
    let mut y = Yarn::new(4.0, 4096);
    y.truncate = false;
    let u = inv(128, 1e4, Scaling::Yarn(y));
    assert!(close(u[20], d[20]) && !close(u[21], f.inv_freq[21]));
    // DeepSeek's mscale pair and the explicit override.
    let mut y = Yarn::new(40.0, 4096);
    y.mscale = Some(0.707);
    y.mscale_all_dim = Some(0.707);
    assert_eq!(
        frequencies::<CAP>(128, 1e4, &Scaling::Yarn(y))
            .unwrap()
            .attention_factor,
        1.0
    );
    y.attention_factor = Some(0.5);
    assert_eq!(
        frequencies::<CAP>(128, 1e4, &Scaling::Yarn(y))
            .unwrap()
            .attention_factor,
        0.5
    );
}

#[test]
fn llama3_splits_128_dims_29_kept_6_blended_29_divided() {
    let d = inv(128, 5e5, Scaling::Default);
    let l = inv(128, 5e5, Scaling::Llama3(Llama3::LLAMA_3_1));
    let kept = d.iter().zip(&l).filter(|(a, b)| a == b).count();
    let divided = d
        .iter()
        .zip(&l)
        .filter(|(a, b)| close(*a / 8.0, **b))
        .count();
    assert_eq!((kept, 64 - kept - divided, divided), (29, 6, 29));
}

#[test]
fn longrope_picks_factors_by_length_and_defaults_its_attention_factor() {
    let short: Vec<f64> = (0..8).map(|i| 1.0 + i as f64 * 0.1).collect();
    let long: Vec<f64> = (0..8).map(|i| 2.0 + i as f64).collect();
    let d = inv(16, 1e4, Scaling::Default);
    let lr = |seq_len| LongRope {
        short_factor: &short,
        long_factor: &long,
        original_max_position_embeddings: 4096,
        max_position_embeddings: 131_072,
        seq_len,
        attention_factor: None,
    };
    let s = frequencies::<CAP>(16, 1e4, &Scaling::LongRope(lr(4096))).unwrap();
    let l = frequencies::<CAP>(16, 1e4, &Scaling::LongRope(lr(4097))).unwrap();
    for i in 0..8 {
        assert!(close(s.inv_freq[i], d[i] / short[i]) && close(l.inv_freq[i], d[i] / long[i]));
    }
    let want = (1.0 + 32.0f64.ln() / 4096.0f64.ln()).sqrt();
    assert!(close(s.attention_factor, want));
    let pp = frequencies::<CAP>(
        16,
        1e4,
        &Scaling::PerPair {
            factors: &long,
            attention_factor: 1.5,
        },
    )
    .unwrap();
    assert!(close(pp.inv_freq[3], d[3] / long[3]) && pp.attention_factor == 1.5);
}

// ---- bad input: an error, and nothing written ----

#[test]
fn bad_configs_are_refused_at_build() {
    let b = |c: RopeConfig| c.build::<CAP>().err();
    assert_eq!(
        b(RopeConfig::new(8).rotary_dim(5)),
        Some(RopeError::OddRotaryDim { rotary_dim: 5 })
    );
    assert_eq!(
        b(RopeConfig::new(8).rotary_dim(0)),
        Some(RopeError::OddRotaryDim { rotary_dim: 0 })
    );
    assert_eq!(
        b(RopeConfig::new(8).rotary_dim(10)),
        Some(RopeError::RotaryDimTooLarge {
            rotary_dim: 10,
            head_dim: 8
        })
    );
    assert_eq!(
        b(RopeConfig::new(256)),
        Some(RopeError::Capacity {
            pairs: 128,
            capacity: CAP
        })
    );
    for base in [1.0, 0.5, -2.0, f64::NAN, f64::INFINITY] {
        assert_eq!(b(RopeConfig::new(8).base(base)), Some(RopeError::BadBase));
    }
    let s = |sc: Scaling| b(RopeConfig::new(8).scaling(sc));
    for factor in [0.0, -1.0, f64::NAN] {
        assert_eq!(
            s(Scaling::Linear { factor }),
            Some(RopeError::BadParam { name: "factor" })
        );
        assert_eq!(
            s(Scaling::Ntk { factor }),
            Some(RopeError::BadParam { name: "factor" })
        );
        assert_eq!(
            s(Scaling::Yarn(Yarn::new(factor, 4096))),
            Some(RopeError::BadParam { name: "factor" })
        );
    }
    assert_eq!(
        b(RopeConfig::new(2).scaling(Scaling::Ntk { factor: 2.0 })),
        Some(RopeError::BadParam { name: "rotary_dim" })
    );
    let mut y = Yarn::new(4.0, 4096);
    y.beta_fast = 0.5;
    assert_eq!(
        s(Scaling::Yarn(y)),
        Some(RopeError::BadParam { name: "beta_fast" })
    );
    let mut l = Llama3::LLAMA_3_1;
    l.high_freq_factor = 1.0;
    assert_eq!(
        s(Scaling::Llama3(l)),
        Some(RopeError::BadParam {
            name: "high_freq_factor"
        })
    );
    assert_eq!(
        s(Scaling::PerPair {
            factors: &[1.0; 3],
            attention_factor: 1.0
        }),
        Some(RopeError::LengthMismatch {
            expected: 4,
            got: 3
        })
    );
    assert_eq!(
        s(Scaling::PerPair {
            factors: &[1.0, 0.0, 1.0, 1.0],
            attention_factor: 1.0
        }),
        Some(RopeError::BadParam { name: "factors" })
    );
    assert_eq!(
        AxialConfig::new(8, [4, 6]).build::<CAP>().err(),
        Some(RopeError::RotaryDimTooLarge {
            rotary_dim: 10,
            head_dim: 8
        })
    );
    assert_eq!(
        AxialConfig::new(8, [3, 4]).build::<CAP>().err(),
        Some(RopeError::OddRotaryDim { rotary_dim: 3 })
    );
}

#[test]
fn bad_calls_are_errors_and_write_nothing() {
    let rope = RopeConfig::new(8).build::<CAP>().unwrap();
    let orig: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let mut x = orig.clone();
    assert_eq!(
        rope.apply(&mut x[..7], 3, Direction::Forward),
        Err(RopeError::LengthMismatch {
            expected: 8,
            got: 7
        })
    );
    assert!(rope
        .apply_rows(&mut x[..20], Positions::From(0), Direction::Forward)
        .is_err());
    assert_eq!(
        rope.apply_rows(&mut x, Positions::List(&[1, 2]), Direction::Forward),
        Err(RopeError::LengthMismatch {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        rope.apply_rows(&mut x, Positions::From(i32::MAX - 1), Direction::Forward),
        Err(RopeError::PositionOverflow)
    );
    assert!(rope
        .apply_heads(&mut x, 5, Positions::From(0), Direction::Forward)
        .is_err());
    // A scratch shorter than one position's cos and sin.
    let mut small = vec![0.0f32; rope.heads_scratch_len(1) - 1];
    assert_eq!(
        rope.apply_heads_in(
            &mut x,
            1,
            Positions::From(0),
            Direction::Forward,
            &mut small
        ),
        Err(RopeError::LengthMismatch {
            expected: rope.heads_scratch_len(1),
            got: rope.heads_scratch_len(1) - 1
        })
    );
    let table = RopeTable::<4, CAP>::new(&rope, 10).unwrap();
    assert_eq!(
        table.apply(&mut x[..8], 14, Direction::Forward),
        Err(RopeError::PositionOutOfTable {
            position: 14,
            first: 10,
            rows: 4
        })
    );
    assert!(table.apply(&mut x[..8], 9, Direction::Forward).is_err());
    // One bad position in a list: no row is written, not even the good ones before it.
    assert!(table
        .apply_rows(&mut x, Positions::List(&[10, 11, 99]), Direction::Forward)
        .is_err());
    assert_eq!(x, orig);
    assert!(RopeTable::<4, 2>::new(&rope, 0).is_err()); // 4 pairs do not fit P = 2
    assert_eq!(
        RopeTable::<4, CAP>::new(&rope, i32::MAX - 2).err(),
        Some(RopeError::PositionOverflow)
    );
    let mut c = [0.0f32; 3];
    let mut s = [0.0f32; 4];
    assert!(rope.cos_sin(0, &mut c, &mut s).is_err());
}

// ---- accuracy at long positions ----

/// margay's cos/sin stay within the kernel's bound (1.3e-7) at every position, and beat the
/// f32 `pos·θ` path of Hugging Face from position 4,095 on (at tiny positions both are a few
/// ulp: HF's libm cos is ≤ 0.5 ulp on an exact angle).
#[test]
fn long_positions_keep_the_short_position_error() {
    for base in [1e4, 5e5] {
        for row in measure(128, base, &POSITIONS) {
            assert!(row.margay <= 1.3e-7, "{row:?}");
            assert!(row.margay_output <= 4e-7, "{row:?}");
            if row.position >= 4095 {
                assert!(row.margay < row.hf_f32 / 100.0, "{row:?}");
            }
        }
    }
}

// ---- attention scales ----

#[test]
fn log_n_scale_is_standard_at_512_and_grows_with_n() {
    for d in [16, 64, 128] {
        let s = standard_scale(d).unwrap();
        assert!((log_n_scale(512, d).unwrap() - s).abs() <= 1e-7 * s);
        assert!(log_n_scale(4096, d).unwrap() > s && log_n_scale(64, d).unwrap() < s);
    }
    assert_eq!(log_n_scale(1, 64).unwrap(), 0.0);
    assert_eq!(log_n_inference_factor(100, 512).unwrap(), 1.0);
    assert!((log_n_inference_factor(4096, 512).unwrap() - 4.0 / 3.0).abs() < 1e-6);
    assert!(
        standard_scale(0).is_err() && log_n_scale(0, 8).is_err() && grad_max_scale(1, 8).is_err()
    );
}

#[test]
fn grad_max_fit_tracks_the_mean_field_optimum() {
    for (n, tol) in [
        (64, 0.11),
        (128, 0.11),
        (512, 0.05),
        (4096, 0.05),
        (1 << 20, 0.05),
    ] {
        let exact = grad_max_alpha_mean_field(n).unwrap();
        let fit = grad_max_scale(n, 1).unwrap() as f64;
        assert!(
            (fit / exact - 1.0).abs() <= tol,
            "n {n}: fit {fit} vs {exact}"
        );
        // It is a maximum of α(1 − e^{α²}/n).
        let g = |a: f64| a * (1.0 - (a * a).exp() / n as f64);
        assert!(g(exact) >= g(exact * 0.99) && g(exact) >= g(exact * 1.01));
    }
    assert!((grad_max_scale(512, 1).unwrap() - 2.098).abs() < 1e-3);
}

/// The pitfall documented in `scale.rs`: without the mean-field step, E[α(1 − Σp²)] for
/// s ~ N(0, 1) peaks at more than twice 0.84·√(ln n).
#[test]
fn exact_softmax_objective_peaks_far_beyond_the_fit() {
    let mut rng = SplitMix64::new(9812);
    for n in [64usize, 512] {
        let trials: Vec<Vec<f64>> = (0..64)
            .map(|_| {
                (0..n)
                    .map(|_| {
                        // Box–Muller.
                        let (u, v) = (rng.next_f32() as f64 + 1e-12, rng.next_f32() as f64);
                        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
                    })
                    .collect()
            })
            .collect();
        let objective = |a: f64| {
            trials
                .iter()
                .map(|s| {
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = s.iter().map(|x| (a * (x - m)).exp()).collect();
                    let z: f64 = e.iter().sum();
                    a * (1.0 - e.iter().map(|p| (p / z) * (p / z)).sum::<f64>())
                })
                .sum::<f64>()
                / trials.len() as f64
        };
        let fit = grad_max_scale(n, 1).unwrap() as f64;
        assert!(objective(2.0 * fit) > objective(fit), "n {n}");
    }
}

/// More pairs than the stack scratch holds for one position (`SCRATCH` floats each of cos and
/// sin): `apply_heads` falls back to per-row cos/sin, the same bits, instead of failing.
#[test]
fn apply_heads_handles_heads_wider_than_its_scratch() {
    use margay::rope::SCRATCH;
    const CAP: usize = SCRATCH + 4;
    let d = 2 * (SCRATCH + 1);
    let rope = RopeConfig::new(d).build::<CAP>().unwrap();
    let (heads, seq) = (2, 3);
    let mut rng = SplitMix64::new(5);
    let x: Vec<f32> = (0..heads * seq * d).map(|_| rng.next_f32() - 0.5).collect();
    let want = each_row(&rope, &x, seq, 7, Direction::Forward);
    let mut got = x.clone();
    rope.apply_heads(&mut got, heads, Positions::From(7), Direction::Forward)
        .unwrap();
    assert_eq!(got, want);
}
