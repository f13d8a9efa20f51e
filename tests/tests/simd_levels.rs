//! Every dispatch level gives the bits of the baseline build: the same calls run with
//! `margay::simd::set_max_level` at `Baseline`, `Avx2` and `Avx512` (each capped to what this
//! CPU has) and their outputs are compared bit for bit. One test function, because the cap
//! is process-wide: this file is its own test process, so nothing else runs beside it.

use margay::math::SplitMix64;
use margay::optim::{
    AdamWConfig, ClipConfig, ClipForm, DirectionSource, Directions, GlobalNormClip, LionConfig,
    SgdConfig, TigerConfig, ZoConfig,
};
use margay::quant::{FsqConfig, Tanh};
use margay::rope::{Direction, Layout, Positions, RopeConfig};
use margay::simd::{level, set_max_level, Level};

fn data(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n).map(|_| 4.0 * rng.next_f32() - 2.0).collect()
}

fn bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// Every dispatched call once, its outputs as bits.
fn run_all() -> Vec<Vec<u32>> {
    let mut rng = SplitMix64::new(0x51d0);
    let mut out = Vec::new();
    // Optimizers (lengths that leave a remainder after the vector body).
    for n in [1usize, 15, 1003] {
        let g = data(&mut rng, n);
        let p0 = data(&mut rng, n);
        let m0 = data(&mut rng, n);
        let v0: Vec<f32> = data(&mut rng, n).iter().map(|v| v.abs()).collect();
        let lion = LionConfig::new(1e-3).build().unwrap();
        let (mut p, mut m) = (p0.clone(), m0.clone());
        lion.step(lion.at(1), &mut p, &g, &mut m).unwrap();
        out.extend([bits(&p), bits(&m)]);
        let tiger = TigerConfig::new(1e-3).build().unwrap();
        let (mut p, mut m) = (p0.clone(), m0.clone());
        tiger.step(tiger.at(1), &mut p, &g, &mut m).unwrap();
        out.extend([bits(&p), bits(&m)]);
        let adamw = AdamWConfig::new(1e-3).build().unwrap();
        let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
        adamw.step(adamw.at(2), &mut p, &g, &mut m, &mut v).unwrap();
        out.extend([bits(&p), bits(&m), bits(&v)]);
        let clip = ClipConfig::new(0.5, ClipForm::Min).build().unwrap();
        let mut gc = g.clone();
        clip.apply(&mut [&mut gc[..]]);
        out.push(bits(&gc));
        out.push(vec![GlobalNormClip::global_norm(&[&g[..]]).to_bits()]);
    }
    // FSQ rows in blocks of 8 (fast tanh is the vectorized path) and a tail.
    let mut fsq = FsqConfig::new([8u32, 5, 5, 5]);
    fsq.tanh = Tanh::Fast;
    let fsq = fsq.build().unwrap();
    let z = data(&mut rng, 4 * 21);
    let mut idx = vec![0u32; 21];
    fsq.encode_rows(&z, &mut idx).unwrap();
    out.push(idx);
    // RoPE: every batched shape, both layouts and directions, full and partial rotation,
    // pair counts that leave a remainder after 16 lanes, 1 to 9 heads.
    for (d, r) in [(128usize, 128usize), (64, 48), (38, 34), (10, 6)] {
        for layout in [Layout::HalfSplit, Layout::Interleaved] {
            let rope = RopeConfig::new(d)
                .rotary_dim(r)
                .layout(layout)
                .build::<64>()
                .unwrap();
            for (heads, seq) in [(1usize, 3usize), (5, 40), (9, 7)] {
                let x = data(&mut rng, heads * seq * d);
                for dir in [Direction::Forward, Direction::Backward] {
                    let from = Positions::From(-5);
                    let mut y = x.clone();
                    rope.apply_heads(&mut y, heads, from, dir).unwrap();
                    out.push(bits(&y));
                    let mut y = x.clone();
                    let mut scratch = vec![0.0f32; rope.heads_scratch_len(6)];
                    rope.apply_heads_in(&mut y, heads, from, dir, &mut scratch)
                        .unwrap();
                    out.push(bits(&y));
                    let list: Vec<i32> = (0..seq as i32).map(|t| 3 * t - 7).collect();
                    let mut y = x.clone();
                    rope.apply_tokens(&mut y, heads, Positions::List(&list), dir)
                        .unwrap();
                    out.push(bits(&y));
                    let mut y = x.clone();
                    rope.apply_rows(&mut y, Positions::From(100_000), dir)
                        .unwrap();
                    out.push(bits(&y));
                }
            }
        }
    }
    // Zeroth-order: counter directions of both kinds and a fused step (the same z on every
    // level, the same bits of the step).
    for kind in [Directions::Rademacher, Directions::Gaussian] {
        let zo = ZoConfig {
            directions: kind,
            samples: 2,
            seed: 3,
            ..ZoConfig::new(1e-3)
        }
        .build()
        .unwrap();
        let z = zo.directions(9);
        let mut zs = vec![0.0f32; 1003];
        z.fill(1, 2, 5, &mut zs);
        out.push(bits(&zs));
        let mut p = data(&mut rng, 1003);
        let est = zo.estimate(&z, &mut [&mut p[..]], |p| p[0].iter().map(|x| x * x).sum());
        let sgd = SgdConfig::new(0.01).build().unwrap();
        est.sgd_step::<_, f32>(&z, &sgd, sgd.at(1), 0, &mut p, &mut [])
            .unwrap();
        out.push(bits(&p));
    }
    out
}

#[test]
fn every_level_gives_the_baseline_bits() {
    let have = level(); // no cap yet: the CPU's highest
    set_max_level(Level::Baseline);
    assert_eq!(level(), Level::Baseline);
    let want = run_all();
    for cap in [Level::Avx2, Level::Avx512] {
        set_max_level(cap);
        assert_eq!(
            level(),
            cap.min(have),
            "the cap and the CPU decide the level"
        );
        let got = run_all();
        assert_eq!(got.len(), want.len());
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(g == w, "output {k} differs at {cap:?} from the baseline");
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let expect = if has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq")
        {
            Level::Avx512
        } else if has!("avx2") {
            Level::Avx2
        } else {
            Level::Baseline
        };
        assert_eq!(have, expect, "detection agrees with std's");
    }
}
