//! Zeroth-order estimates (`margay::optim::Zo`): the statistical identities of SPSA with
//! Rademacher directions, one- vs two-sided agreement to first order in ε, the drift bound of
//! the in-place restore, the fused SGD step against the interface path, the distribution of
//! the counter-based directions, and the non-finite-loss rule. (Golden vectors: kind `zo` in
//! `tests/vectors/zo.json`, run by `tests/tests/vectors.rs`.)
//!
//! The statistical tests use fixed seeds, so they are deterministic; each bound is 4.5 standard
//! errors of the estimate (a correct implementation fails one with probability < 7e-6 per
//! fresh seed).

use margay::optim::{
    CounterZ, DirectionSource, Directions, Estimator, Explicit, LionConfig, Optimizer, Outcome,
    Perturbation, SgdConfig, Stage, TensorSpec, ZoConfig, ZoStatus,
};

const SIGMAS: f64 = 4.5;

/// f(θ) = ½ Σ aᵢ(θᵢ − cᵢ)², summed in f64 and rounded once.
fn quad<'a>(a: &'a [f32], c: &'a [f32]) -> impl Fn(&mut [&mut [f32]]) -> f32 + 'a {
    move |p: &mut [&mut [f32]]| {
        let mut s = 0.0f64;
        for ((&t, &a), &c) in p[0].iter().zip(a).zip(c) {
            let d = t as f64 - c as f64;
            s += 0.5 * a as f64 * d * d;
        }
        s as f32
    }
}

fn problem(d: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let a: Vec<f32> = (0..d).map(|i| 0.5 + (i % 5) as f32 * 0.25).collect();
    let c: Vec<f32> = (0..d).map(|i| ((i * 7 % 11) as f32 - 5.0) / 8.0).collect();
    let theta: Vec<f32> = (0..d).map(|i| ((i * 3 % 13) as f32 - 6.0) / 16.0).collect();
    (theta, a, c)
}

/// ĝ of `steps` independent two-sided Rademacher estimates (step t = seed of z), in f64.
fn estimates(d: usize, steps: u64, eps: f32) -> (Vec<Vec<f64>>, Vec<f64>) {
    let (mut theta, a, c) = problem(d);
    let g: Vec<f64> = (0..d)
        .map(|i| a[i] as f64 * (theta[i] as f64 - c[i] as f64))
        .collect();
    let zo = ZoConfig {
        directions: Directions::Rademacher,
        seed: 99,
        ..ZoConfig::new(eps)
    }
    .build()
    .unwrap();
    let f = quad(&a, &c);
    let mut out = Vec::new();
    let mut buf = vec![0.0f32; d];
    for t in 1..=steps {
        let z = zo.directions(t);
        let est = zo.estimate(&z, &mut [&mut theta[..]], &f);
        assert_eq!(est.status(), ZoStatus::Estimated);
        est.gradient(&z, 0, 0, &mut buf);
        out.push(buf.iter().map(|&x| x as f64).collect());
    }
    (out, g)
}

/// Rademacher, two-sided, quadratic: E‖ĝ‖² = d‖g‖² and tr Cov(ĝ) = (d−1)‖g‖², and E ĝ = g.
/// With ĝ = (zᵀg)z: ‖ĝ‖² = d(zᵀg)², Var[(zᵀg)²] = 2‖g‖⁴ − 2Σgᵢ⁴.
#[test]
fn rademacher_spsa_second_moment_and_covariance_trace() {
    let (d, n) = (24usize, 20_000u64);
    let (gh, g) = estimates(d, n, 1e-2);
    let g2: f64 = g.iter().map(|x| x * x).sum();
    let g4: f64 = g.iter().map(|x| x.powi(4)).sum();
    let df = d as f64;
    let nf = n as f64;
    let se = (df * df * (2.0 * g2 * g2 - 2.0 * g4) / nf).sqrt();

    let norms: Vec<f64> = gh.iter().map(|v| v.iter().map(|x| x * x).sum()).collect();
    let mean_norm = norms.iter().sum::<f64>() / nf;
    assert!(
        (mean_norm - df * g2).abs() <= SIGMAS * se,
        "E‖ĝ‖² = {mean_norm}, d‖g‖² = {}, se {se}",
        df * g2
    );

    let mean: Vec<f64> = (0..d)
        .map(|i| gh.iter().map(|v| v[i]).sum::<f64>() / nf)
        .collect();
    let trace: f64 = gh
        .iter()
        .map(|v| {
            v.iter()
                .zip(&mean)
                .map(|(x, m)| (x - m).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (nf - 1.0);
    assert!(
        (trace - (df - 1.0) * g2).abs() <= SIGMAS * se,
        "tr Cov = {trace}, (d−1)‖g‖² = {}, se {se}",
        (df - 1.0) * g2
    );

    // Unbiased: Var(ĝᵢ) = ‖g‖² − gᵢ² for Rademacher.
    for i in 0..d {
        let se_i = ((g2 - g[i] * g[i]) / nf).sqrt();
        assert!(
            (mean[i] - g[i]).abs() <= SIGMAS * se_i,
            "E ĝ[{i}] = {}, g = {}",
            mean[i],
            g[i]
        );
    }
}

/// On a quadratic, one-sided − two-sided = (ε/2)·zᵀAz exactly in real arithmetic; on a
/// quartic the gap is O(ε): halving ε halves it.
#[test]
fn one_and_two_sided_agree_to_first_order_in_eps() {
    let d = 16;
    let (theta0, a, c) = problem(d);
    let z = CounterZ::new(5, 1, Directions::Gaussian);
    let mut zv = vec![0.0f32; d];
    z.fill(0, 0, 0, &mut zv);
    let zaz: f64 = zv
        .iter()
        .zip(&a)
        .map(|(&z, &a)| a as f64 * (z as f64).powi(2))
        .sum();
    let pg = |eps: f32, p: Perturbation, f: &dyn Fn(&mut [&mut [f32]]) -> f32| {
        let zo = ZoConfig {
            perturbation: p,
            seed: 5,
            ..ZoConfig::new(eps)
        }
        .build()
        .unwrap();
        let mut theta = theta0.clone();
        let est = zo.estimate(&zo.directions(1), &mut [&mut theta[..]], f);
        est.projected()[0] as f64
    };
    let f = quad(&a, &c);
    for eps in [4e-2f32, 2e-2, 1e-2] {
        let gap = pg(eps, Perturbation::OneSided, &f) - pg(eps, Perturbation::TwoSided, &f);
        let want = eps as f64 / 2.0 * zaz;
        assert!(
            (gap - want).abs() <= 0.02 * want,
            "ε {eps}: gap {gap}, (ε/2)zᵀAz {want}"
        );
    }
    let quartic = |p: &mut [&mut [f32]]| {
        p[0].iter()
            .map(|&t| {
                let t = t as f64;
                t.powi(4) + t
            })
            .sum::<f64>() as f32
    };
    let g1 =
        pg(4e-2, Perturbation::OneSided, &quartic) - pg(4e-2, Perturbation::TwoSided, &quartic);
    let g2 =
        pg(2e-2, Perturbation::OneSided, &quartic) - pg(2e-2, Perturbation::TwoSided, &quartic);
    let ratio = g1 / g2;
    assert!(
        (1.8..2.2).contains(&ratio),
        "gap ratio {ratio} (first order: 2)"
    );
}

/// The in-place restore leaves |θ' − θ| ≤ Σⱼ 2⁻²²·(|θ| + 2ε|zⱼ|) (module docs), at every
/// magnitude, for both perturbations and both distributions.
#[test]
fn restore_drift_stays_within_the_documented_bound() {
    let d = 300;
    let mut worst = 0.0f64;
    for (k, scale) in [1e-3f32, 1.0, 37.0, 1e4].into_iter().enumerate() {
        for dirs in [Directions::Gaussian, Directions::Rademacher] {
            for p in [Perturbation::TwoSided, Perturbation::OneSided] {
                let zo = ZoConfig {
                    eps: 1e-3 * scale.max(1.0),
                    samples: 4,
                    directions: dirs,
                    perturbation: p,
                    seed: k as u64,
                    ..ZoConfig::default()
                }
                .build()
                .unwrap();
                let theta0: Vec<f32> = (0..d)
                    .map(|i| scale * (((i * 2_654_435_761usize) % 1000) as f32 / 500.0 - 1.0))
                    .collect();
                let mut theta = theta0.clone();
                let z = zo.directions(3);
                let est = zo.estimate(&z, &mut [&mut theta[..]], |p| p[0][0]);
                assert_eq!(est.status(), ZoStatus::Estimated);
                for i in 0..d {
                    let bound: f64 = (0..4)
                        .map(|j| {
                            2f64.powi(-22)
                                * (theta0[i].abs() as f64
                                    + 2.0 * zo.config().eps as f64 * z.at(j, 0, i).abs() as f64)
                        })
                        .sum();
                    let drift = (theta[i] as f64 - theta0[i] as f64).abs();
                    assert!(
                        drift <= bound,
                        "θ {} drift {drift} bound {bound}",
                        theta0[i]
                    );
                    if bound > 0.0 {
                        worst = worst.max(drift / bound);
                    }
                }
            }
        }
    }
    // Not vacuous: the restore does drift, by a visible fraction of the bound.
    assert!(worst > 0.01, "worst drift/bound {worst}");
}

/// The fused step (no gradient buffer) gives the bits of ĝ materialised and fed to
/// `Sgd` through the optimizer interface; and ĝ feeds any optimizer (Lion here).
#[test]
fn fused_sgd_step_equals_the_interface_path_bit_for_bit() {
    let d = 200; // more than three chunks, with a remainder
    let (theta0, a, c) = problem(d);
    for (mom, est_kind, q) in [
        (0.0, Estimator::Projected, 1u32),
        (0.9, Estimator::Projected, 3),
        (0.0, Estimator::Sign, 2),
    ] {
        let zo = ZoConfig {
            samples: q,
            estimator: est_kind,
            ..ZoConfig::new(1e-3)
        }
        .build()
        .unwrap();
        let sgd = SgdConfig {
            momentum: mom,
            weight_decay: 0.01,
            ..SgdConfig::new(2e-3)
        }
        .build()
        .unwrap();
        let spec = TensorSpec::vector(d);
        let (mut fused, mut via) = (theta0.clone(), theta0.clone());
        let mut m1 = vec![0.0f32; sgd.momentum_len(d)];
        let mut m2 = vec![0.0f32; sgd.state_len(&spec)];
        let mut grads = vec![0.0f32; d];
        let f = quad(&a, &c);
        for t in 1..=10 {
            let z = zo.directions(t);
            let e1 = zo.estimate(&z, &mut [&mut fused[..]], &f);
            let e2 = zo.estimate(&z, &mut [&mut via[..]], &f);
            assert_eq!(e1, e2);
            assert_eq!(
                e1.sgd_step(&z, &sgd, sgd.at(t), 0, &mut fused, &mut m1),
                Ok(Outcome::Updated)
            );
            let r = e2.update(
                &z,
                &sgd,
                &(),
                sgd.at(t),
                &spec,
                0,
                &mut via,
                &mut grads,
                &mut m2,
            );
            assert_eq!(r, Ok(Outcome::Updated));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fused), bits(&via), "momentum {mom}, step {t}");
        }
        assert!(f(&mut [&mut fused[..]]) < f(&mut [&mut theta0.clone()[..]]));
    }
    // Any optimizer: ZO into Lion through the interface.
    let lion = LionConfig::new(1e-3).build().unwrap();
    let zo = ZoConfig::new(1e-3).build().unwrap();
    let spec = TensorSpec::vector(d);
    let mut theta = theta0.clone();
    let mut state = vec![0.0f32; Stage::state_len(&lion, &spec)];
    let mut grads = vec![0.0f32; d];
    let z = zo.directions(1);
    let est = zo.estimate(&z, &mut [&mut theta[..]], quad(&a, &c));
    let r = est.update(
        &z,
        &lion,
        &(),
        lion.at(1),
        &spec,
        0,
        &mut theta,
        &mut grads,
        &mut state,
    );
    assert_eq!(r, Ok(Outcome::Updated));
    assert!(theta
        .iter()
        .zip(&theta0)
        .all(|(a, b)| (a - b).abs() > 0.9e-3));
    // Wrong state length: an error, nothing modified.
    let before = theta.clone();
    let mut short = vec![0.0f32; 3];
    let r = Optimizer::<f32>::update(
        &lion,
        &(),
        lion.at(2),
        &spec,
        &mut theta,
        &mut grads,
        &mut short,
    );
    assert!(r.is_err());
    assert!(est
        .update(
            &z,
            &lion,
            &(),
            lion.at(2),
            &spec,
            0,
            &mut theta,
            &mut grads,
            &mut short
        )
        .is_err());
    assert_eq!(theta, before);
}

/// Several tensors: each gets its own stream, the loss sees all of them perturbed.
#[test]
fn multi_tensor_estimates_use_one_stream_per_tensor() {
    let zo = ZoConfig {
        directions: Directions::Rademacher,
        ..ZoConfig::new(0.5)
    }
    .build()
    .unwrap();
    let (mut a, mut b) = (vec![0.0f32; 70], vec![0.0f32; 5]);
    let z = zo.directions(1);
    let mut seen = Vec::new();
    let est = zo.estimate(&z, &mut [&mut a[..], &mut b[..]], |p| {
        seen.push((p[0].to_vec(), p[1].to_vec()));
        0.0
    });
    assert_eq!(est.status(), ZoStatus::Estimated);
    let (pa, pb) = &seen[0];
    for (i, &v) in pa.iter().enumerate() {
        assert_eq!(v, 0.5 * z.at(0, 0, i));
    }
    for (i, &v) in pb.iter().enumerate() {
        assert_eq!(v, 0.5 * z.at(0, 1, i));
    }
    assert_ne!(&pa[..5], &pb[..]);
    assert!(a.iter().chain(&b).all(|&x| x == 0.0));
}

/// Rademacher values are exactly ±1 and balanced; Gaussian values have mean 0, variance 1
/// and kurtosis 3 (each within 4.5 standard errors); nothing repeats across blocks.
#[test]
fn counter_directions_have_the_stated_distributions() {
    let n = 200_000usize;
    let mut v = vec![0.0f32; n];
    CounterZ::new(11, 4, Directions::Rademacher).fill(0, 0, 0, &mut v);
    assert!(v.iter().all(|&x| x == 1.0 || x == -1.0));
    let s: f64 = v.iter().map(|&x| x as f64).sum();
    assert!(s.abs() <= SIGMAS * (n as f64).sqrt(), "Σz = {s}");
    assert_ne!(v[..64], v[64..128]);

    CounterZ::new(11, 4, Directions::Gaussian).fill(1, 2, 0, &mut v);
    let nf = n as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / nf;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / nf;
    let m4 = v.iter().map(|&x| (x as f64).powi(4)).sum::<f64>() / nf;
    assert!(mean.abs() <= SIGMAS / nf.sqrt(), "mean {mean}");
    assert!((var - 1.0).abs() <= SIGMAS * (2.0 / nf).sqrt(), "var {var}");
    assert!((m4 - 3.0).abs() <= SIGMAS * (96.0 / nf).sqrt(), "E z⁴ {m4}");
    assert!(v.iter().all(|x| x.is_finite() && x.abs() < 6.5));
}

/// A NaN or infinite loss: the step is skipped, θ restored, and the outcome says so; the
/// one-sided base loss is checked before anything is perturbed.
#[test]
fn non_finite_losses_skip_the_step() {
    let theta0: Vec<f32> = (0..40).map(|i| i as f32 / 10.0 - 2.0).collect();
    let sgd = SgdConfig::new(0.1).build().unwrap();
    for p in [Perturbation::TwoSided, Perturbation::OneSided] {
        for bad_call in 1..=3 {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let zo = ZoConfig {
                    perturbation: p,
                    samples: 2,
                    ..ZoConfig::new(1e-2)
                }
                .build()
                .unwrap();
                let mut theta = theta0.clone();
                let mut calls = 0;
                let z = zo.directions(1);
                let est = zo.estimate(&z, &mut [&mut theta[..]], |_| {
                    calls += 1;
                    if calls == bad_call {
                        bad
                    } else {
                        1.0
                    }
                });
                let ZoStatus::NonFiniteLoss { sample } = est.status() else {
                    panic!("{p:?} call {bad_call}: {:?}", est.status());
                };
                let expected_sample = match (p, bad_call) {
                    (Perturbation::TwoSided, c) => (c - 1) / 2,
                    (Perturbation::OneSided, 1) => 0,
                    (Perturbation::OneSided, c) => c - 2,
                };
                assert_eq!(sample, expected_sample as u32);
                assert!(est.coefficients().is_empty());
                for (i, (&t, &t0)) in theta.iter().zip(&theta0).enumerate() {
                    let bound = 2.0 * 2f32.powi(-22) * (t0.abs() + 2e-2 * 8.0);
                    assert!((t - t0).abs() <= bound, "[{i}] {t} vs {t0}");
                }
                let before = theta.clone();
                assert_eq!(
                    est.sgd_step::<_, f32>(&z, &sgd, sgd.at(1), 0, &mut theta, &mut []),
                    Ok(Outcome::Skipped)
                );
                assert_eq!(theta, before);
            }
        }
    }
}

/// Explicit directions reproduce what the counter gives, and a malformed layout is an error.
#[test]
fn explicit_directions_match_the_counter_and_check_their_layout() {
    let zo = ZoConfig {
        samples: 2,
        ..ZoConfig::new(1e-3)
    }
    .build()
    .unwrap();
    let z = zo.directions(7);
    let d = 33;
    let zs: Vec<Vec<f32>> = (0..2)
        .map(|j| (0..d).map(|i| z.at(j, 0, i)).collect())
        .collect();
    let views: Vec<&[f32]> = zs.iter().map(|v| v.as_slice()).collect();
    let ex = Explicit::new(&views, 1).unwrap();
    let (t0, a, c) = problem(d);
    let (mut p1, mut p2) = (t0.clone(), t0.clone());
    let e1 = zo.estimate(&z, &mut [&mut p1[..]], quad(&a, &c));
    let e2 = zo.estimate(&ex, &mut [&mut p2[..]], quad(&a, &c));
    assert_eq!(e1, e2);
    assert_eq!(p1, p2);
    assert!(Explicit::new(&views, 0).is_err());
    assert!(Explicit::new(&views[..1], 2).is_err());
}
