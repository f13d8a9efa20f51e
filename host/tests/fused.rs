//! The fused CubeCL sign step (feature `wgpu`; CI runs it on Mesa's lavapipe) against the
//! core's Lion and Tiger and against the composed ops, on identical inputs; and a short
//! training run on wgpu against the same run on flex.
//!
//! `cargo test --release -p margay-host --features wgpu --test fused`

#![cfg(feature = "wgpu")]

use margay::math::SplitMix64;
use margay::optim::{LionConfig, TigerConfig};
use margay_host::train::burn::backend::{Autodiff, Flex, Wgpu};
use margay_host::train::burn::optim::SimpleOptimizer;
use margay_host::train::burn::tensor::backend::Backend;
use margay_host::train::burn::tensor::{Tensor, TensorData};
use margay_host::train::data::Source;
use margay_host::train::optim::{composed_sign_step, Lion, SignConsts, SignStepBackend, Tiger};
use margay_host::train::run::{self, OptimKind, RunOptions, TrainConfig};

fn rand_vec(rng: &mut SplitMix64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

fn t<B: Backend>(v: &[f32]) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
}

fn vals<B: Backend>(x: Tensor<B, 1>) -> Vec<f32> {
    x.into_data().into_vec::<f32>().unwrap()
}

/// Largest difference in units of the last place of the expected value.
fn max_ulps(a: &[f32], b: &[f32]) -> u32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()) {
                0
            } else {
                (x.to_bits() as i64 - y.to_bits() as i64).unsigned_abs() as u32
            }
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn fused_kernel_equals_the_composed_ops_and_the_guard() {
    let n = 10_007; // not a multiple of any workgroup size
    let mut rng = SplitMix64::new(5);
    let (p, g, m) = (
        rand_vec(&mut rng, n, 1.0),
        rand_vec(&mut rng, n, 0.1),
        rand_vec(&mut rng, n, 0.1),
    );
    let k = SignConsts {
        b1: 0.9,
        c1: 0.1,
        b2: 0.99,
        c2: 0.01,
        wd: 0.1,
        shrink: 0.99,
        center: 1.0,
    };
    for bad in [0.0f32, 1.0] {
        let aux = [3e-3f32, bad];
        let (pf, mf) =
            <Wgpu as SignStepBackend>::sign_step(t::<Wgpu>(&p), t(&g), t(&m), t(&aux), k);
        let (pc, mc) = composed_sign_step(t::<Flex>(&p), t(&g), t(&m), t(&aux), k);
        let (pf, mf, pc, mc) = (vals(pf), vals(mf), vals(pc), vals(mc));
        // A compiler may contract a·b + c into one fused multiply-add: 1 ulp.
        assert!(
            max_ulps(&mf, &mc) <= 1,
            "momentum: {} ulp",
            max_ulps(&mf, &mc)
        );
        assert!(
            max_ulps(&pf, &pc) <= 1,
            "parameters: {} ulp (bad = {bad})",
            max_ulps(&pf, &pc)
        );
        if bad != 0.0 {
            assert_eq!(mf, m, "the guard leaves the momentum alone");
        }
    }
}

/// Lion and Tiger (k = 2, a NaN gradient on micro-step 3) through burn's optimizer API on
/// wgpu, against the core's steps.
#[test]
fn fused_lion_and_tiger_match_the_core() {
    let n = 4096;
    let mut rng = SplitMix64::new(9);
    let p0 = rand_vec(&mut rng, n, 1.0);
    let mut grads: Vec<Vec<f32>> = (0..6).map(|_| rand_vec(&mut rng, n, 0.1)).collect();
    grads[2][17] = f32::NAN;
    let lr = 1e-3f32;

    let lion_cfg = LionConfig {
        weight_decay: 0.3,
        ..LionConfig::new(lr)
    };
    let lion = Lion::new(lion_cfg).unwrap();
    let tiger_cfg = TigerConfig {
        accumulation: 2,
        ..TigerConfig::new(lr)
    };
    let tiger = Tiger::new(tiger_cfg).unwrap();

    // Lion on clean gradients, a matrix (weight decay applies to rank >= 2).
    let m2 = |v: &[f32]| t::<Wgpu>(v).reshape([64, 64]);
    let (mut p, mut st) = (m2(&p0), None);
    let (mut cp, mut cm) = (p0.clone(), vec![0f32; n]);
    let core = lion_cfg.build().unwrap();
    for (i, g) in grads.iter().enumerate().filter(|(i, _)| *i != 2) {
        let (np, ns) = SimpleOptimizer::<Wgpu>::step(&lion, lr as f64, p, m2(g), st);
        (p, st) = (np, ns);
        core.step(core.at(i as u64 + 1), &mut cp, g, &mut cm)
            .unwrap();
    }
    let got = p.into_data().into_vec::<f32>().unwrap();
    eprintln!("fused Lion vs core: {} ulp", max_ulps(&got, &cp));
    assert!(
        max_ulps(&got, &cp) <= 2,
        "Lion: {} ulp",
        max_ulps(&got, &cp)
    );

    // Tiger on a rank-1 tensor (η = lr/2, guard centre 1).
    let (mut p, mut st) = (t::<Wgpu>(&p0), None);
    let (mut cp, mut cm) = (p0.clone(), vec![0f32; n]);
    let core = *tiger.core(1);
    for (i, g) in grads.iter().enumerate() {
        let (np, ns) = SimpleOptimizer::<Wgpu>::step(&tiger, lr as f64, p, t(g), st);
        (p, st) = (np, ns);
        core.step(core.at(i as u64 + 1), &mut cp, g, &mut cm)
            .unwrap();
    }
    let got = vals(p);
    assert!(
        max_ulps(&got, &cp) <= 2,
        "Tiger: {} ulp",
        max_ulps(&got, &cp)
    );
}

/// The trainer end to end on wgpu: the same tiny run as on flex, losses within 1e-3
/// (matrix products round differently on the two back ends).
#[test]
fn a_tiny_run_on_wgpu_tracks_the_same_run_on_flex() {
    let cfg = TrainConfig {
        optimizer: OptimKind::Tiger,
        steps: 6,
        eval_interval: 6,
        ..TrainConfig::preset("tiny").unwrap()
    };
    let opts = |name: &str| RunOptions {
        out: std::env::temp_dir().join(format!("margay-fused-{}-{name}", std::process::id())),
        resume: false,
        data: Source::Shipped,
        progress: false,
        fault_nan_step: None,
        stop_after: None,
    };
    let a = run::train::<Autodiff<Flex>>(&cfg, &opts("flex"), &Default::default()).unwrap();
    let b = run::train::<Autodiff<Wgpu>>(&cfg, &opts("wgpu"), &Default::default()).unwrap();
    for ((s, x), (_, y)) in a.meta.train_loss.iter().zip(&b.meta.train_loss) {
        assert!((x - y).abs() < 1e-3, "step {s}: flex {x} vs wgpu {y}");
    }
}
