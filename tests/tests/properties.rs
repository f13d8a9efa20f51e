//! Properties of the optimizers, each test named after the invariant it checks.

use half::bf16;
use margay::optim::{AdamWConfig, LionConfig, Moment, Step, TigerConfig, TigerOutcome};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    // A fixed seed keeps CI deterministic; failures persist nowhere (no files in CI).
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6d61_7267_6179),
        ..ProptestConfig::default()
    }
}

fn vec_pair(n: std::ops::Range<usize>) -> impl Strategy<Value = (Vec<f32>, Vec<f32>, Vec<f32>)> {
    n.prop_flat_map(|n| {
        (
            prop::collection::vec(-4.0f32..4.0, n),
            prop::collection::vec(-4.0f32..4.0, n),
            prop::collection::vec(-1.0f32..1.0, n),
        )
    })
}

fn ulp(x: f32) -> f32 {
    let a = x.abs().max(f32::MIN_POSITIVE);
    f32::from_bits(a.to_bits() + 1) - a
}

/// Checks Δθ = −η·(s + λ·θ) for some s ∈ {−1, 0, 1}, within the rounding of one step.
fn moved_by_lr_sign(before: &[f32], after: &[f32], eta: f32, wd: f32) -> Result<(), TestCaseError> {
    for (i, (&p0, &p1)) in before.iter().zip(after).enumerate() {
        let delta = p1 as f64 - p0 as f64;
        let ok = [-1.0f64, 0.0, 1.0].iter().any(|&s| {
            let want = -(eta as f64) * (s + wd as f64 * p0 as f64);
            (delta - want).abs() <= 4.0 * (ulp(p0) as f64 + ulp(eta) as f64)
        });
        prop_assert!(
            ok,
            "element {i}: {p0} -> {p1} is not a step of lr={eta} (wd={wd})"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lion_moves_every_weight_by_exactly_lr_times_sign_plus_decay_or_zero(
        (p, g, m0) in vec_pair(1..64), lr in 1e-4f32..1e-1, wd in 0.0f32..0.5,
        b1 in 0.0f32..0.999, b2 in 0.0f32..0.999,
    ) {
        let lion = LionConfig { beta1: b1, beta2: b2, weight_decay: wd, ..LionConfig::new(lr) }.build().unwrap();
        let mut q = p.clone();
        let mut m = m0.clone();
        lion.step(lion.at(1), &mut q, &g, &mut m).unwrap();
        moved_by_lr_sign(&p, &q, lr, wd)?;
    }

    #[test]
    fn tiger_moves_every_weight_by_exactly_lr_times_sign_plus_decay_or_zero(
        (p, g, m0) in vec_pair(1..64), lr in 1e-4f32..1e-1, wd in 0.0f32..0.5, beta in 0.0f32..0.999,
    ) {
        let tiger = TigerConfig { beta, weight_decay: wd, ..TigerConfig::new(lr) }.build().unwrap();
        let mut q = p.clone();
        let mut m = m0.clone();
        tiger.step(tiger.at(1), &mut q, &g, &mut m).unwrap();
        moved_by_lr_sign(&p, &q, lr, wd)?;
    }

    #[test]
    fn tiger_equals_lion_with_beta1_equal_beta2(
        (p, g, m0) in vec_pair(1..64), lr in 1e-4f32..1e-1, wd in 0.0f32..0.5, beta in 0.0f32..0.999,
        steps in 1u64..6,
    ) {
        let tiger = TigerConfig { beta, weight_decay: wd, ..TigerConfig::new(lr) }.build().unwrap();
        let lion = LionConfig { beta1: beta, beta2: beta, weight_decay: wd, ..LionConfig::new(lr) }.build().unwrap();
        let (mut pt, mut mt) = (p.clone(), m0.clone());
        let (mut pl, mut ml) = (p.clone(), m0.clone());
        for t in 1..=steps {
            let gt: Vec<f32> = g.iter().map(|x| x * (t as f32).sin()).collect();
            tiger.step(tiger.at(t), &mut pt, &gt, &mut mt).unwrap();
            lion.step(lion.at(t), &mut pl, &gt, &mut ml).unwrap();
        }
        prop_assert_eq!(bits(&pt), bits(&pl));
        prop_assert_eq!(bits(&mt), bits(&ml));
    }

    #[test]
    fn tiger_accumulation_with_k1_equals_the_plain_rule(
        (p, g, m0) in vec_pair(1..64), lr in 1e-4f32..1e-1, wd in 0.0f32..0.5, beta in 0.0f32..0.999,
    ) {
        let tiger = TigerConfig { beta, weight_decay: wd, accumulation: 1, ..TigerConfig::new(lr) }.build().unwrap();
        let (mut q, mut m) = (p.clone(), m0.clone());
        prop_assert_eq!(tiger.step(tiger.at(1), &mut q, &g, &mut m).unwrap(), TigerOutcome::Updated);
        // The published rule without accumulation, written out here.
        for i in 0..p.len() {
            let mi = beta * m0[i] + (1.0 - beta) * g[i];
            let s = if mi > 0.0 { 1.0 } else if mi < 0.0 { -1.0 } else { 0.0 };
            prop_assert_eq!(m[i].to_bits(), mi.to_bits());
            prop_assert_eq!(q[i].to_bits(), (p[i] * (1.0 - lr * wd) - lr * s).to_bits());
        }
    }

    #[test]
    fn tiger_k_identical_micro_gradients_equal_one_step_with_that_gradient(
        (p, g, m0) in vec_pair(1..64), lr in 1e-4f32..1e-1, wd in 0.0f32..0.5,
        beta in 0.5f32..0.99, k in 2u32..8,
    ) {
        let one = TigerConfig { beta, weight_decay: wd, ..TigerConfig::new(lr) }.build().unwrap();
        let acc = TigerConfig { beta, weight_decay: wd, accumulation: k, ..TigerConfig::new(lr) }.build().unwrap();
        let (mut p1, mut m1) = (p.clone(), m0.clone());
        one.step(one.at(1), &mut p1, &g, &mut m1).unwrap();
        let (mut pk, mut mk) = (p.clone(), m0.clone());
        for t in 1..=k as u64 {
            let out = acc.step(acc.at(t), &mut pk, &g, &mut mk).unwrap();
            let want = if t == k as u64 { TigerOutcome::Updated } else { TigerOutcome::Accumulated };
            prop_assert_eq!(out, want);
            if t < k as u64 { prop_assert_eq!(bits(&pk), bits(&p)); }
        }
        for i in 0..p.len() {
            // m agrees up to rounding of k additions; where it is far from 0 the sign agrees,
            // so θ agrees to the rounding of one step.
            let tol = 4.0 * k as f32 * f32::EPSILON * (m0[i].abs() + g[i].abs());
            prop_assert!((m1[i] - mk[i]).abs() <= tol, "m[{}]: {} vs {}", i, m1[i], mk[i]);
            if m1[i].abs() > 2.0 * tol {
                prop_assert!((p1[i] - pk[i]).abs() <= 2.0 * ulp(p1[i]), "p[{}]: {} vs {}", i, p1[i], pk[i]);
            }
        }
    }

    #[test]
    fn tiger_nan_guard_keeps_momentum_and_shrinks_toward_the_centre(
        (p, g, m0) in vec_pair(1..64), at in any::<prop::sample::Index>(),
        s in 0.5f32..1.0, c in -1.0f32..1.0, k in 1u32..4, t in 1u64..9,
    ) {
        let tiger = TigerConfig { nan_shrink: s, nan_center: c, accumulation: k, ..TigerConfig::new(1e-2) }.build().unwrap();
        let mut g = g;
        g[at.index(p.len())] = f32::NAN;
        let (mut q, mut m) = (p.clone(), m0.clone());
        prop_assert_eq!(tiger.step(tiger.at(t), &mut q, &g, &mut m).unwrap(), TigerOutcome::Guarded);
        prop_assert_eq!(bits(&m), bits(&m0));
        for i in 0..p.len() {
            prop_assert_eq!(q[i].to_bits(), ((p[i] - c) * s + c).to_bits());
        }
    }

    #[test]
    fn adamw_first_step_has_magnitude_lr(
        (p, g, _m) in vec_pair(1..64), lr in 1e-4f32..1e-1,
    ) {
        let a = AdamWConfig { weight_decay: 0.0, ..AdamWConfig::new(lr) }.build().unwrap();
        let (mut q, mut m, mut v) = (p.clone(), vec![0.0f32; p.len()], vec![0.0f32; p.len()]);
        a.step(a.at(1), &mut q, &g, &mut m, &mut v).unwrap();
        for i in 0..p.len() {
            let moved = (q[i] as f64 - p[i] as f64).abs();
            let want = lr as f64 * (g[i].abs() as f64 / (g[i].abs() as f64 + 1e-8));
            prop_assert!((moved - want).abs() <= 1e-5 * lr as f64 + 4.0 * ulp(p[i]) as f64,
                "element {}: moved {} want {}", i, moved, want);
        }
    }

    #[test]
    fn slices_and_arrays_give_identical_results(
        p in prop::array::uniform16(-4.0f32..4.0), g in prop::array::uniform16(-4.0f32..4.0),
        lr in 1e-4f32..1e-1, t in 1u64..20,
    ) {
        let lion = LionConfig { weight_decay: 0.1, ..LionConfig::new(lr) }.build().unwrap();
        let tiger = TigerConfig { accumulation: 2, ..TigerConfig::new(lr) }.build().unwrap();
        let adamw = AdamWConfig::new(lr).build().unwrap();
        let m0 = [0.25f32; 16];
        let (mut pa, mut ma) = (p, m0);
        let (mut ps, mut ms) = (p.to_vec(), m0.to_vec());
        lion.step_array(lion.at(t), &mut pa, &g, &mut ma);
        lion.step(lion.at(t), &mut ps, &g, &mut ms).unwrap();
        tiger.step_array(tiger.at(t), &mut pa, &g, &mut ma).unwrap();
        tiger.step(tiger.at(t), &mut ps, &g, &mut ms).unwrap();
        let (mut va, mut vs) = ([0.5f32; 16], vec![0.5f32; 16]);
        adamw.step_array(adamw.at(t), &mut pa, &g, &mut ma, &mut va);
        adamw.step(adamw.at(t), &mut ps, &g, &mut ms, &mut vs).unwrap();
        prop_assert_eq!(bits(&pa), bits(&ps));
        prop_assert_eq!(bits(&ma), bits(&ms));
        prop_assert_eq!(bits(&va), bits(&vs));
    }

    #[test]
    fn bf16_momentum_stays_within_its_rounding_bound_of_f32_momentum(
        (p, g, _m) in vec_pair(1..64), beta in 0.5f32..0.99, steps in 1u64..200,
    ) {
        // bf16 keeps 8 significant bits: each store has relative error <= 2^-8 (unit roundoff),
        // and the EMA contracts errors by β, so
        // |m_bf16 − m_f32| <= 2^-8 · max|m| / (1 − β) (plus f32 rounding).
        let tiger = TigerConfig { beta, ..TigerConfig::new(1e-3) }.build().unwrap();
        let n = p.len();
        let (mut pf, mut mf) = (p.clone(), vec![0.0f32; n]);
        let (mut pb, mut mb) = (p.clone(), vec![bf16::ZERO; n]);
        let mut max_m = vec![0.0f32; n];
        for t in 1..=steps {
            let gt: Vec<f32> = g.iter().enumerate().map(|(i, x)| x * ((t as f32) * 0.7 + i as f32).cos()).collect();
            tiger.step(tiger.at(t), &mut pf, &gt, &mut mf).unwrap();
            tiger.step(tiger.at(t), &mut pb, &gt, &mut mb).unwrap();
            for i in 0..n {
                max_m[i] = max_m[i].max(mf[i].abs()).max(mb[i].load().abs());
                let bound = (2f32.powi(-8) / (1.0 - beta)) * max_m[i] * 1.01 + 1e-30;
                let d = (mb[i].load() - mf[i]).abs();
                prop_assert!(d <= bound, "t={} i={}: |{} - {}| = {} > {}", t, i, mb[i].load(), mf[i], d, bound);
            }
        }
    }

    #[test]
    fn steps_are_deterministic(
        (p, g, m0) in vec_pair(1..64), lr in 1e-4f32..1e-1, t in 1u64..50,
    ) {
        let tiger = TigerConfig { accumulation: 3, lr_mode: margay::optim::LrMode::Rms, ..TigerConfig::new(lr) }.build().unwrap();
        let adamw = AdamWConfig::new(lr).build().unwrap();
        let run = || {
            let (mut q, mut m, mut v) = (p.clone(), m0.clone(), vec![0.1f32; p.len()]);
            tiger.step(tiger.at(t), &mut q, &g, &mut m).unwrap();
            adamw.step(Step::new(t, lr).unwrap(), &mut q, &g, &mut m, &mut v).unwrap();
            (bits(&q), bits(&m), bits(&v))
        };
        prop_assert_eq!(run(), run());
    }
}

fn bits<M: Moment>(xs: &[M]) -> Vec<u32> {
    xs.iter().map(|x| x.load().to_bits()).collect()
}

/// The official AdaX-W recursion in f64 (unnormalised v, `lr·√bc·m/(√v + ε)`), for the
/// stable-form property below.
fn adaxw_official_f64(
    c: &margay::optim::AdaXConfig,
    p: &mut [f64],
    m: &mut [f64],
    v: &mut [f64],
    g: &[f32],
    t: u64,
) {
    let (b1, b2) = (c.beta1 as f64, c.beta2 as f64);
    let bc = (1.0 + b2).powi(t as i32) - 1.0;
    let step = c.lr as f64 * bc.sqrt();
    for i in 0..p.len() {
        let gi = g[i] as f64;
        p[i] -= p[i] * c.lr as f64 * c.weight_decay as f64;
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = (1.0 + b2) * v[i] + b2 * gi * gi;
        p[i] -= step * m[i] / (v[i].sqrt() + c.eps as f64);
    }
}

proptest! {
    #![proptest_config(config())]

    /// AdaX's stable form (normalised v̂, ε/√bc) is the official recursion rearranged: over
    /// random gradients and β₂, margay's f32 steps stay within f32 rounding of the official
    /// f64 ones.
    #[test]
    fn adax_stable_form_tracks_the_official_recursion(
        (p0, g, _) in vec_pair(1..8),
        beta2 in 1e-5f32..0.1,
        steps in 1u64..40,
    ) {
        let c = margay::optim::AdaXConfig { beta2, ..margay::optim::AdaXConfig::new(1e-2) };
        let a = c.build().unwrap();
        let n = p0.len();
        let (mut p, mut m, mut v) = (p0.clone(), vec![0f32; n], vec![0f32; n]);
        let (mut pe, mut me, mut ve) = (
            p0.iter().map(|&x| x as f64).collect::<Vec<_>>(),
            vec![0f64; n],
            vec![0f64; n],
        );
        for t in 1..=steps {
            // Vary the gradient from step to step, deterministically.
            let gt: Vec<f32> = g.iter().map(|&x| x * (1.0 + 0.25 * ((t % 5) as f32 - 2.0))).collect();
            a.step(a.at(t), &mut p, &gt, &mut m, &mut v).unwrap();
            adaxw_official_f64(&c, &mut pe, &mut me, &mut ve, &gt, t);
        }
        for (x, e) in p.iter().zip(&pe) {
            prop_assert!((*x as f64 - e).abs() <= 1e-5 + 1e-5 * e.abs(), "{x} vs {e}");
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// SGDM's hidden accumulation: a window of k micro-steps leaves the same weights and
    /// momentum as one k = 1 step on the window's mean gradient (to rounding).
    #[test]
    fn sgdm_window_equals_a_step_on_the_mean_gradient(
        (p0, g, h) in vec_pair(1..8),
        k in 1u32..6,
        momentum in 0.0f32..0.99,
    ) {
        let acc = margay::optim::SgdmConfig { accumulation: k, momentum, weight_decay: 0.05, ..margay::optim::SgdmConfig::new(0.1) }.build().unwrap();
        let one = margay::optim::SgdmConfig { momentum, weight_decay: 0.05, ..margay::optim::SgdmConfig::new(0.1) }.build().unwrap();
        let n = p0.len();
        let (mut p, mut m) = (p0.clone(), vec![0f32; n]);
        let (mut q, mut mq) = (p0.clone(), vec![0f32; n]);
        for w in 0..3u64 {
            let micro: Vec<Vec<f32>> = (0..k)
                .map(|i| g.iter().zip(&h).map(|(a, b)| a + b * (i as f32 - w as f32)).collect())
                .collect();
            for (i, gi) in micro.iter().enumerate() {
                acc.step(acc.at(w * k as u64 + i as u64 + 1), &mut p, gi, &mut m).unwrap();
            }
            let mean: Vec<f32> = (0..n)
                .map(|j| micro.iter().map(|gi| gi[j] as f64).sum::<f64>() as f32 / k as f32)
                .collect();
            one.step(one.at(w + 1), &mut q, &mean, &mut mq).unwrap();
        }
        for i in 0..n {
            prop_assert!((p[i] - q[i]).abs() <= 1e-5 * (1.0 + q[i].abs()), "{} vs {}", p[i], q[i]);
            prop_assert!((m[i] - mq[i]).abs() <= 1e-5 * (1.0 + mq[i].abs()), "{} vs {}", m[i], mq[i]);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Cautious Tiger with k = 1 is cautious Lion with β₁ = β₂ = β, bit for bit (Lion's
    /// cautious step is checked against lion-pytorch's `cautious_lion.py` in `cautious.json`);
    /// and a factor of 0 freezes every coordinate whose update disagrees with its gradient.
    #[test]
    fn cautious_tiger_k1_is_cautious_lion_with_equal_betas(
        (p0, g, m0) in vec_pair(1..12),
        factor in 0.0f32..0.99,
        beta in 0.5f32..0.99,
    ) {
        let k = margay::optim::Cautious::new(factor).unwrap();
        let tiger = TigerConfig { beta, weight_decay: 0.1, ..TigerConfig::new(1e-2) }.build().unwrap();
        let lion = LionConfig { beta1: beta, beta2: beta, weight_decay: 0.1, ..LionConfig::new(1e-2) }.build().unwrap();
        let (mut p1, mut m1) = (p0.clone(), m0.clone());
        let (mut p2, mut m2) = (p0.clone(), m0.clone());
        tiger.step_cautious(tiger.at(1), &mut p1, &g, &mut m1, k).unwrap();
        lion.step_cautious(lion.at(1), &mut p2, &g, &mut m2, k).unwrap();
        prop_assert_eq!(p1.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), p2.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        prop_assert_eq!(m1.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), m2.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        // Factor 0: a disagreeing coordinate only decays.
        let freeze = margay::optim::Cautious::new(0.0).unwrap();
        let (mut p3, mut m3) = (p0.clone(), m0.clone());
        lion.step_cautious(lion.at(1), &mut p3, &g, &mut m3, freeze).unwrap();
        for i in 0..p0.len() {
            let c = beta * m0[i] + (1.0 - beta) * g[i];
            if c * g[i] <= 0.0 {
                prop_assert_eq!(p3[i], p0[i] * (1.0 - 1e-2 * 0.1));
            }
        }
    }
}
