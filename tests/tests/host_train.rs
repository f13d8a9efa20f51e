//! The burn trainer against the core: RoPE tables and rotation, the Tiger / Lion / AdamW
//! steps on identical inputs (flex), bit-exact resume, checkpoints refusing the wrong model
//! or optimizer, the NaN rule, and config validation.

use margay::math::SplitMix64;
use margay::optim::{moment_gap, AdamWConfig, LionConfig, LrMode, TigerConfig};
use margay::rope::Direction;
use margay_host::train::burn::backend::{Autodiff, Flex};
use margay_host::train::burn::optim::SimpleOptimizer;
use margay_host::train::burn::tensor::{Tensor, TensorData};
use margay_host::train::data::Source;
use margay_host::train::generic::Core;
use margay_host::train::model::{ModelConfig, RopeCache, RopeScaling};
use margay_host::train::optim::{Lion, Tiger};
use margay_host::train::run::{self, OptimKind, RunOptions, TrainConfig};

type B = Flex;
type AD = Autodiff<Flex>;

fn rand_vec(rng: &mut SplitMix64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
        .collect()
}

fn tensor<const D: usize>(v: &[f32], shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().into_vec::<f32>().unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn rope_cache_rotates_exactly_like_the_core() {
    for (rotary, scaling) in [
        (None, RopeScaling::None),
        (
            Some(8),
            RopeScaling::Yarn {
                factor: 4.0,
                original: 16,
            },
        ),
        (Some(12), RopeScaling::Ntk { factor: 2.0 }),
        (None, RopeScaling::Linear { factor: 2.0 }),
        (
            None,
            RopeScaling::Llama3 {
                factor: 8.0,
                original: 8,
            },
        ),
    ] {
        let cfg = ModelConfig {
            vocab: 10,
            n_layer: 1,
            n_head: 2,
            n_embd: 32,
            block_size: 24,
            rope_base: 10_000.0,
            rotary_dim: rotary,
            rope_scaling: scaling,
            positions: Default::default(),
        };
        let (b, h, t, hd) = (2, 2, 24, 16);
        let mut rng = SplitMix64::new(3);
        let x = rand_vec(&mut rng, b * h * t * hd, 2.0);
        let cache = RopeCache::<B>::new(&cfg, t, &Default::default()).unwrap();
        let got = values(cache.apply(tensor(&x, [b, h, t, hd])));
        let rope = cfg.rope().unwrap();
        let mut want = x.clone();
        for (row, v) in want.chunks_mut(hd).enumerate() {
            rope.apply(v, (row % t) as i32, Direction::Forward).unwrap();
        }
        assert_eq!(bits(&got), bits(&want), "rotary {rotary:?} {scaling:?}");
    }
}

/// Runs `steps` burn optimizer steps on one tensor; returns the parameters after each.
fn burn_steps<O: SimpleOptimizer<B>, const D: usize>(
    opt: &O,
    shape: [usize; D],
    p0: &[f32],
    grads: &[Vec<f32>],
    lrs: &[f32],
) -> Vec<Vec<f32>> {
    let mut p = tensor(p0, shape);
    let mut state = None;
    let mut out = Vec::new();
    for (g, &lr) in grads.iter().zip(lrs) {
        let (np, ns) = opt.step(lr as f64, p, tensor(g, shape), state);
        p = np;
        state = ns;
        out.push(values(p.clone()));
    }
    out
}

fn inputs(n: usize, steps: usize, seed: u64) -> (Vec<f32>, Vec<Vec<f32>>, Vec<f32>) {
    let mut rng = SplitMix64::new(seed);
    let p = rand_vec(&mut rng, n, 1.0);
    let g = (0..steps).map(|_| rand_vec(&mut rng, n, 0.1)).collect();
    let lrs = (0..steps).map(|i| 1e-3 * (1.0 + i as f32 * 0.25)).collect();
    (p, g, lrs)
}

#[test]
fn adamw_matches_the_core_bit_for_bit() {
    let cfg = AdamWConfig {
        weight_decay: 0.1,
        beta2: 0.99,
        ..AdamWConfig::new(1e-3)
    };
    let (p0, grads, lrs) = inputs(96, 6, 11);
    // The generic adapter in its weight group (a matrix: decay on).
    let opt = Core::new(|decay| {
        AdamWConfig {
            weight_decay: if decay { cfg.weight_decay } else { 0.0 },
            ..cfg
        }
        .build()
    })
    .unwrap();
    let got = burn_steps(&opt, [8, 12], &p0, &grads, &lrs);
    let mut p = p0.clone();
    let (mut m, mut v) = (vec![0f32; 96], vec![0f32; 96]);
    for (t, (g, &lr)) in grads.iter().zip(&lrs).enumerate() {
        let core = AdamWConfig { lr, ..cfg }.build().unwrap();
        core.step(core.at(t as u64 + 1), &mut p, g, &mut m, &mut v)
            .unwrap();
        assert_eq!(bits(&got[t]), bits(&p), "step {}", t + 1);
    }
}

/// SGDM and AdaX through the generic adapter equal their core steps bit for bit.
#[test]
fn sgdm_and_adax_match_the_core_bit_for_bit() {
    use margay::optim::{AdaXConfig, SgdmConfig};
    let (p0, grads, lrs) = inputs(96, 6, 13);
    let sgdm = SgdmConfig::new(1e-2);
    let got = burn_steps(
        &Core::new(|_| sgdm.build()).unwrap(),
        [8, 12],
        &p0,
        &grads,
        &lrs,
    );
    let (mut p, mut m) = (p0.clone(), vec![0f32; 96]);
    for (t, (g, &lr)) in grads.iter().zip(&lrs).enumerate() {
        let core = SgdmConfig { lr, ..sgdm }.build().unwrap();
        core.step(core.at(t as u64 + 1), &mut p, g, &mut m).unwrap();
        assert_eq!(bits(&got[t]), bits(&p), "sgdm step {}", t + 1);
    }
    let adax = AdaXConfig::new(1e-2);
    let got = burn_steps(
        &Core::new(|_| adax.build()).unwrap(),
        [96],
        &p0,
        &grads,
        &lrs,
    );
    let (mut p, mut m, mut v) = (p0.clone(), vec![0f32; 96], vec![0f32; 96]);
    for (t, (g, &lr)) in grads.iter().zip(&lrs).enumerate() {
        let core = AdaXConfig { lr, ..adax }.build().unwrap();
        core.step(core.at(t as u64 + 1), &mut p, g, &mut m, &mut v)
            .unwrap();
        assert_eq!(bits(&got[t]), bits(&p), "adax step {}", t + 1);
    }
}

#[test]
fn lion_matches_the_core_bit_for_bit() {
    let cfg = LionConfig {
        weight_decay: 0.5,
        ..LionConfig::new(1e-4)
    };
    let (p0, grads, lrs) = inputs(64, 6, 12);
    let got = burn_steps(&Lion::new(cfg).unwrap(), [8, 8], &p0, &grads, &lrs);
    let mut p = p0.clone();
    let mut m = vec![0f32; 64];
    for (t, (g, &lr)) in grads.iter().zip(&lrs).enumerate() {
        let core = LionConfig { lr, ..cfg }.build().unwrap();
        core.step(core.at(t as u64 + 1), &mut p, g, &mut m).unwrap();
        assert_eq!(bits(&got[t]), bits(&p), "step {}", t + 1);
    }
}

/// Tiger on a vector (Absolute mode: bit-exact) and on a matrix (η = α·RMS(θ): the RMS is a
/// tensor reduction whose summation order differs, so within 2 ulp of η per step), with
/// accumulation k = 2 and a NaN gradient on micro-step 4 (the guard).
#[test]
fn tiger_matches_the_core_with_accumulation_and_the_guard() {
    let cfg = TigerConfig {
        accumulation: 2,
        weight_decay: 0.1,
        ..TigerConfig::new(1e-3)
    };
    let opt = Tiger::new(cfg).unwrap();
    for rank in [1usize, 2] {
        let (p0, mut grads, lrs) = inputs(64, 8, 13 + rank as u64);
        grads[3][5] = f32::NAN;
        let got = if rank == 1 {
            burn_steps(&opt, [64], &p0, &grads, &lrs)
        } else {
            burn_steps(&opt, [8, 8], &p0, &grads, &lrs)
        };
        let core = *opt.core(rank);
        assert_eq!(
            core.config().lr_mode,
            if rank == 1 {
                LrMode::Absolute
            } else {
                LrMode::Rms
            }
        );
        let mut p = p0.clone();
        let mut m = vec![0f32; 64];
        for (t, (g, &lr)) in grads.iter().zip(&lrs).enumerate() {
            let c = TigerConfig {
                lr,
                ..*core.config()
            }
            .build()
            .unwrap();
            c.step(c.at(t as u64 + 1), &mut p, g, &mut m).unwrap();
            if rank == 1 {
                assert_eq!(bits(&got[t]), bits(&p), "rank 1, micro-step {}", t + 1);
            } else {
                for (a, b) in got[t].iter().zip(&p) {
                    // η differs by at most a couple of ulp: |Δθ| ≤ 4·ε·η·(1 + λ|θ|) per update.
                    assert!(
                        (a - b).abs() <= 4.0 * f32::EPSILON * 2e-3 * 4.0,
                        "{a} vs {b}, micro-step {}",
                        t + 1
                    );
                }
            }
        }
    }
}

fn tiny(optimizer: OptimKind) -> TrainConfig {
    TrainConfig {
        optimizer,
        lr: match optimizer {
            OptimKind::Adamw | OptimKind::Adafactor | OptimKind::Adax => 1e-2,
            OptimKind::Sgdm => 0.3,
            OptimKind::Lion | OptimKind::Tiger => 2e-3,
            OptimKind::Muon => 1e-2,
            OptimKind::ZoSgd => 2e-3,
        },
        min_lr: 1e-4,
        ..TrainConfig::preset("tiny").unwrap()
    }
}

fn opts(out: &std::path::Path) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        resume: false,
        data: Source::Shipped,
        progress: false,
        fault_nan_step: None,
        stop_after: None,
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("margay-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn resume_continues_bit_exactly_for_every_optimizer() {
    for kind in [
        OptimKind::Tiger,
        OptimKind::Lion,
        OptimKind::Adamw,
        OptimKind::Adafactor,
        OptimKind::Sgdm,
        OptimKind::Adax,
        OptimKind::Muon,
        OptimKind::ZoSgd,
    ] {
        let cfg = TrainConfig {
            accumulation: if kind == OptimKind::Tiger { 2 } else { 1 },
            ..tiny(kind)
        };
        let (a, b) = (
            tmp(&format!("straight-{kind:?}")),
            tmp(&format!("split-{kind:?}")),
        );
        let straight = run::train::<AD>(&cfg, &opts(&a), &Default::default()).unwrap();
        let first = run::train::<AD>(
            &cfg,
            &RunOptions {
                stop_after: Some(4),
                ..opts(&b)
            },
            &Default::default(),
        )
        .unwrap();
        assert_eq!(first.meta.step, 4);
        let resumed = run::train::<AD>(
            &cfg,
            &RunOptions {
                resume: true,
                ..opts(&b)
            },
            &Default::default(),
        )
        .unwrap();
        assert_eq!(
            straight.meta.train_loss, resumed.meta.train_loss,
            "{kind:?}"
        );
        assert_eq!(straight.meta.val_loss, resumed.meta.val_loss, "{kind:?}");
        let (_, ma) = run::load_model::<AD>(&straight.checkpoint, &Default::default()).unwrap();
        let (_, mb) = run::load_model::<AD>(&resumed.checkpoint, &Default::default()).unwrap();
        let (pa, pb) = (run::flat_params(&ma), run::flat_params(&mb));
        assert!(!pa.is_empty());
        for (x, y) in pa.iter().zip(&pb) {
            assert_eq!(bits(x), bits(y), "{kind:?}: parameters differ after resume");
        }
        // The loss went down on this tiny run.
        let l = &straight.meta.val_loss;
        assert!(l.last().unwrap().1 < l[0].1, "{kind:?}: {l:?}");
    }
}

#[test]
fn a_checkpoint_for_another_model_or_optimizer_is_refused_and_kept() {
    let out = tmp("refuse");
    let cfg = tiny(OptimKind::Tiger);
    run::train::<AD>(&cfg, &opts(&out), &Default::default()).unwrap();
    let ckpt = run::checkpoint_path(&out);
    let before = std::fs::read(&ckpt).unwrap();
    let resume = RunOptions {
        resume: true,
        ..opts(&out)
    };
    let wider = TrainConfig {
        n_embd: 32,
        ..cfg.clone()
    };
    let e = run::train::<AD>(&wider, &resume, &Default::default()).unwrap_err();
    assert!(
        e.contains("ckpt.safetensors") && e.contains("written for model"),
        "{e}"
    );
    let other = TrainConfig {
        optimizer: OptimKind::Lion,
        ..cfg.clone()
    };
    let e = run::train::<AD>(&other, &resume, &Default::default()).unwrap_err();
    assert!(
        e.contains("tiger optimizer state") && e.contains("--optimizer tiger"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "the checkpoint was touched"
    );
    // Missing and damaged files name the file and the fix.
    let e = run::train::<AD>(
        &cfg,
        &RunOptions {
            resume: true,
            ..opts(&tmp("none"))
        },
        &Default::default(),
    )
    .unwrap_err();
    assert!(
        e.contains("ckpt.safetensors") && e.contains("without --resume"),
        "{e}"
    );
    let junk = tmp("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(run::checkpoint_path(&junk), b"not a checkpoint").unwrap();
    let e = run::train::<AD>(
        &cfg,
        &RunOptions {
            resume: true,
            ..opts(&junk)
        },
        &Default::default(),
    )
    .unwrap_err();
    assert!(e.contains("not a safetensors checkpoint"), "{e}");
}

#[test]
fn nan_loss_stops_adamw_cleanly_and_tiger_guards() {
    let out = tmp("nan-adamw");
    let cfg = tiny(OptimKind::Adamw);
    let e = run::train::<AD>(
        &cfg,
        &RunOptions {
            fault_nan_step: Some(6),
            ..opts(&out)
        },
        &Default::default(),
    )
    .unwrap_err();
    assert!(
        e.contains("step 6") && e.contains("last good checkpoint (step 4)"),
        "{e}"
    );
    let (meta, model) =
        run::load_model::<AD>(&run::checkpoint_path(&out), &Default::default()).unwrap();
    assert_eq!(meta.step, 4);
    assert!(run::flat_params(&model)
        .iter()
        .flatten()
        .all(|x| x.is_finite()));

    let out = tmp("nan-tiger");
    let r = run::train::<AD>(
        &tiny(OptimKind::Tiger),
        &RunOptions {
            fault_nan_step: Some(6),
            ..opts(&out)
        },
        &Default::default(),
    )
    .unwrap();
    assert_eq!((r.meta.step, r.meta.guarded), (12, 1));
    assert!(r.meta.val_loss.iter().all(|v| v.1.is_finite()));

    // ZO-SGD: a non-finite loss skips the step (weights restored), the run goes on.
    let out = tmp("nan-zo");
    let r = run::train::<AD>(
        &tiny(OptimKind::ZoSgd),
        &RunOptions {
            fault_nan_step: Some(6),
            ..opts(&out)
        },
        &Default::default(),
    )
    .unwrap();
    assert_eq!((r.meta.step, r.meta.guarded), (12, 1));
    assert!(r.meta.train_loss[5].1.is_nan());
    assert!(r.meta.val_loss.iter().all(|v| v.1.is_finite()));
}

/// zo-sgd estimates from one batch per step: accumulation is refused when the config is built;
/// Muon refuses a model whose learned positions have a hidden matrix's shape (it finds the
/// embeddings by shape), naming the fix.
#[test]
fn zo_accumulation_and_ambiguous_muon_shapes_are_refused() {
    let zo = TrainConfig {
        accumulation: 2,
        ..tiny(OptimKind::ZoSgd)
    };
    assert!(zo.validate().unwrap_err().contains("accumulation"));
    let base = tiny(OptimKind::Muon);
    let cfg = TrainConfig {
        positions: margay_host::train::model::Positions::Learned,
        block_size: base.n_embd,
        ..base
    };
    let out = tmp("muon-shapes");
    let e = run::train::<AD>(&cfg, &opts(&out), &Default::default()).unwrap_err();
    assert!(e.contains("block_size") && e.contains("n_embd"), "{e}");
    assert!(!out.exists());
}

/// `--optimizer muon` sends the tied embedding/head and the vectors to AdamW (2 moments) and
/// the hidden matrices to Muon (momentum + Newton–Schulz scratch).
#[test]
fn muon_routes_the_embedding_and_vectors_to_adamw() {
    let cfg = tiny(OptimKind::Muon);
    let (vocab, d) = (65, cfg.n_embd);
    let core = cfg.core_muon(vocab, d).unwrap();
    assert_eq!(
        core.state_len(&[vocab, d]),
        2 * vocab * d + moment_gap(vocab * d)
    );
    assert_eq!(core.state_len(&[d]), 2 * d);
    let n = d * 3 * d;
    assert_eq!(
        core.state_len(&[d, 3 * d]),
        2 * n + margay::optim::ns_scratch_len(d, 3 * d)
    );
}

#[test]
fn bad_hyper_parameters_are_refused_when_the_config_is_built() {
    let ok = tiny(OptimKind::Tiger);
    assert!(ok.validate().is_ok());
    let bad = [
        TrainConfig {
            lr: -1.0,
            ..ok.clone()
        },
        TrainConfig {
            beta1: Some(1.5),
            ..ok.clone()
        },
        TrainConfig {
            n_embd: 15,
            ..ok.clone()
        },
        TrainConfig {
            rotary_dim: Some(3),
            ..ok.clone()
        },
        TrainConfig {
            warmup: 100,
            ..ok.clone()
        },
        TrainConfig {
            min_lr: 1.0,
            ..ok.clone()
        },
        TrainConfig {
            grad_clip: f32::NAN,
            ..ok.clone()
        },
        TrainConfig {
            batch_size: 0,
            ..ok.clone()
        },
        TrainConfig {
            accumulation: 0,
            ..ok.clone()
        },
        TrainConfig {
            optimizer: OptimKind::ZoSgd,
            zo_eps: Some(0.0),
            ..ok.clone()
        },
        TrainConfig {
            optimizer: OptimKind::ZoSgd,
            zo_eps: Some(f32::NAN),
            ..ok.clone()
        },
        TrainConfig {
            optimizer: OptimKind::Muon,
            lr: 0.0,
            ..ok.clone()
        },
    ];
    for c in bad {
        assert!(c.validate().is_err(), "{c:?}");
    }
    assert!(TrainConfig::preset("huge")
        .unwrap_err()
        .contains("nanogpt-cpu"));
    let dir = tmp("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("c.json");
    std::fs::write(&f, "{\"lr\": 0.001, \"n_layrs\": 3}").unwrap();
    let e = TrainConfig::from_file(&f).unwrap_err();
    assert!(e.contains("c.json") && e.contains("n_layrs"), "{e}");
    assert!(RopeScaling::parse("yarn:4").unwrap_err().contains("L0"));
}

/// Adafactor through burn's generic adapter (flex) against the core on a matrix and a
/// vector: the core's step runs on the tensor's values, so bit for bit.
#[test]
fn adafactor_matches_the_core_bit_for_bit() {
    use margay::optim::AdafactorConfig;
    let cfg = AdafactorConfig {
        weight_decay: 0.1,
        ..AdafactorConfig::new(2e-2)
    };
    // Decay in both groups, so the matrix and the vector both follow `cfg`.
    let opt = Core::new(|_| cfg.build()).unwrap();
    let core = cfg.build().unwrap();
    let (rows, cols) = (6, 5);
    let (p0, grads, lrs) = inputs(rows * cols, 6, 21);
    let got = burn_steps(&opt, [rows, cols], &p0, &grads, &lrs);
    let (mut p, mut r, mut c) = (p0.clone(), vec![0f32; rows], vec![0f32; cols]);
    for (t, (g, &lr)) in grads.iter().zip(&lrs).enumerate() {
        let s = margay::optim::Step::new(t as u64 + 1, lr).unwrap();
        core.step_matrix(s, &mut p, g, rows, cols, &mut r, &mut c)
            .unwrap();
        assert_eq!(bits(&got[t]), bits(&p), "matrix step {}", t + 1);
    }
    let got = burn_steps(&opt, [rows * cols], &p0, &grads, &lrs);
    let (mut p, mut v) = (p0.clone(), vec![0f32; rows * cols]);
    for (t, (g, &lr)) in grads.iter().zip(&lrs).enumerate() {
        let s = margay::optim::Step::new(t as u64 + 1, lr).unwrap();
        core.step_vector(s, &mut p, g, &mut v).unwrap();
        assert_eq!(bits(&got[t]), bits(&p), "vector step {}", t + 1);
    }
}
