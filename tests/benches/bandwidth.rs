//! `cargo bench -p margay-tests --bench bandwidth [-- SIZES...]`
//!
//! Optimizer steps on one thread, in ns/parameter and as a ratio to an in-place kernel that
//! moves the same bytes (read p, g, m; write p, m: `p += g; m -= g`), all measured in the
//! same run. "known health" is Tiger given the NaN/Inf verdict of a pass the caller makes
//! anyway (the global norm for clipping, timed on its own as "norm pass"). The kernels are interleaved round by round and each figure is the median over
//! rounds, so drift in the machine's load hits every kernel alike. Sizes are in millions of
//! parameters (default 1 16 64).
//!
//! The "(interface)" rows run the same steps through `margay::optim::Optimizer::update` (what
//! generic code calls), and "clip → tiger (chain)" a `Chain(clip, tiger)` round (observe,
//! finish, update) against the same two passes called by hand ("norm pass + tiger, known
//! health"); `scripts/bench-interface.sh` takes the median ratio of three runs.

use half::bf16;
use margay::optim::{
    AdamWConfig, Chain, ClipConfig, ClipForm, GradHealth, LionConfig, NormAccumulator, Optimizer,
    Stage, TensorSpec, TigerConfig,
};
use margay_tests::timing::{bench_data, median};
use std::hint::black_box;
use std::time::Instant;

/// The reference: moves the bytes of a Lion/Tiger step with trivial arithmetic.
#[inline(never)]
fn copy_kernel(p: &mut [f32], g: &[f32], m: &mut [f32]) {
    for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
        *p += g;
        *m -= g;
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1, 16, 64]
    } else {
        sizes
    };
    let tiger = TigerConfig::new(1e-3).build().unwrap();
    let lion = LionConfig::new(1e-4).build().unwrap();
    let adamw = AdamWConfig::new(1e-3).build().unwrap();
    // A threshold no gradient here reaches: the chain's clip only observes (coef = 1).
    let clip = ClipConfig::new(f32::MAX, ClipForm::Min).build().unwrap();
    let chain = Chain(clip, tiger);
    println!("dispatch level: {:?}", margay::simd::level());
    println!("one thread; median of interleaved rounds; ratio = copy-kernel time / step time (higher is better)");
    println!(
        "{:>6} {:<32} {:>10} {:>8}",
        "params", "kernel", "ns/param", "vs copy"
    );
    for &mi in &sizes {
        let n = mi << 20;
        let g = bench_data(n);
        let mut p: Vec<f32> = g.iter().map(|x| 0.5 * x).collect();
        let mut m = vec![0.01f32; n];
        let mut v = vec![0.01f32; n];
        let mut mb = vec![bf16::from_f32(0.01); n];
        let mut g = g;
        let spec = TensorSpec::vector(n);
        // AdamW's interface state is [m | gap | v] in one buffer.
        let mut mv = vec![0.01f32; 2 * n + margay::optim::moment_gap(n)];
        // What a training loop's clipping pass reports; measured separately below.
        let health: GradHealth = {
            let mut acc = NormAccumulator::new();
            acc.add(&g);
            acc.health()
        };
        let names = [
            "copy (p,g,m -> p,m)",
            "lion f32",
            "tiger f32",
            "tiger f32, known health",
            "tiger bf16",
            "adamw f32",
            "norm pass (clip)",
            "lion f32 (interface)",
            "tiger f32 (interface)",
            "tiger bf16 (interface)",
            "adamw f32 (interface)",
            "norm pass + tiger, known health",
            "clip → tiger (chain)",
        ];
        let mut times = vec![Vec::new(); names.len()];
        let rounds = if mi >= 64 {
            7
        } else if mi >= 16 {
            11
        } else {
            41
        };
        for r in 0..rounds + 1 {
            for (k, t) in times.iter_mut().enumerate() {
                let start = Instant::now();
                match k {
                    0 => copy_kernel(&mut p, &g, &mut m),
                    1 => lion.step(lion.at(1), &mut p, &g, &mut m).unwrap(),
                    2 => drop(tiger.step(tiger.at(1), &mut p, &g, &mut m).unwrap()),
                    3 => drop(
                        tiger
                            .step_with_health(tiger.at(1), health, &mut p, &g, &mut m)
                            .unwrap(),
                    ),
                    4 => drop(tiger.step(tiger.at(1), &mut p, &g, &mut mb).unwrap()),
                    5 => adamw.step(adamw.at(1), &mut p, &g, &mut m, &mut v).unwrap(),
                    6 => {
                        let mut acc = NormAccumulator::new();
                        acc.add(&g);
                        black_box(acc.norm());
                    }
                    7 => drop(lion.update(&(), lion.at(1), &spec, &mut p, &mut g, &mut m)),
                    8 => drop(tiger.update(&(), tiger.at(1), &spec, &mut p, &mut g, &mut m)),
                    9 => drop(tiger.update(&(), tiger.at(1), &spec, &mut p, &mut g, &mut mb)),
                    10 => drop(adamw.update(&(), adamw.at(1), &spec, &mut p, &mut g, &mut mv)),
                    11 => {
                        let mut acc = NormAccumulator::new();
                        acc.add(&g);
                        black_box(acc.norm());
                        let h = acc.health();
                        let _ =
                            black_box(tiger.step_with_health(tiger.at(1), h, &mut p, &g, &mut m));
                    }
                    _ => {
                        let mut round = chain.begin(0.0);
                        chain.observe(&mut round, &spec, &g);
                        chain.finish(&mut round);
                        let _ = black_box(chain.update(
                            &round,
                            chain.at(1),
                            &spec,
                            &mut p,
                            &mut g,
                            &mut m,
                        ));
                    }
                }
                let ns = start.elapsed().as_nanos() as f64 / n as f64;
                if r > 0 {
                    t.push(ns); // round 0 warms pages and caches
                }
                black_box((&p, &m));
            }
        }
        let meds: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
        for (name, &ns) in names.iter().zip(&meds) {
            println!("{:>5}M {:<32} {:>10.3} {:>8.2}", mi, name, ns, meds[0] / ns);
        }
    }
}
