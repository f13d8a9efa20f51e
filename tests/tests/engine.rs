//! The on-device engine (`margay::nn::engine`): composed models' gradients against finite
#![allow(clippy::needless_range_loop)] // index loops mirror the int8 layers' definitions
//! differences (f64), the digits model on the engine bit for bit against the hand-written
//! trainer it replaces, the memory plan against `size_of`, forward-only (zeroth-order)
//! steps, int8 layers against their float definition, and the blob's checks.

use margay::nn::engine::*;
use margay::nn::{BlobError, Dense, Num, Saturations};
use margay::optim::{DirectionSource, Outcome, SgdConfig, TensorSpec, TigerConfig, ZoConfig};
use margay::quant::{Scalar, I8F24};
use margay_host::digits as d;

/// The digits model on the engine replaced a hand-written trainer (`nn::LoraMlp` and its
/// `Trainer`, removed in the same change). Before the removal the two ran side by side, bit
/// for bit, through every sample; their fingerprints after the device run were
/// 0xa9ae479c (f32) and 0x734f8a3c (I8F24). The engine must keep giving exactly those.
#[test]
fn the_engine_reproduces_the_hand_written_digits_trainer() {
    let blob = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/model/digits.mgyb"
    ))
    .unwrap();
    let split = d::load(&d::data_path()).unwrap();
    let (stream, test) = (split.stream.mirrored(), split.test.mirrored());
    let (r32, _) = d::finetune::<f32>(&blob, &stream, &test);
    let (rq, _) = d::finetune::<I8F24>(&blob, &stream, &test);
    assert_eq!(r32.fingerprint, 0xa9ae_479c);
    assert_eq!(rq.fingerprint, 0x734f_8a3c);
    assert_eq!((r32.after, rq.after), (308, 302)); // 86.03% and 84.36% of 358
}

/// Forward-only fine-tuning of the digits model: both formats gain at least 15 points on the
/// mirrored sensor, the NaN batch is skipped once, and the I8F24 run saturates (the huge
/// reading) without faulting.
#[test]
fn the_digits_model_fine_tunes_forward_only() {
    let blob = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/model/digits.mgyb"
    ))
    .unwrap();
    let split = d::load(&d::data_path()).unwrap();
    let (stream, test) = (split.stream.mirrored(), split.test.mirrored());
    for r in [
        d::finetune_zo::<f32>(&blob, &stream, &test).0,
        d::finetune_zo::<I8F24>(&blob, &stream, &test).0,
    ] {
        assert!(r.after >= r.before + 15 * r.total / 100, "{r:?}");
        assert_eq!(r.stats.guarded, 1);
    }
}

// ---------------------------------------------------------------- gradients

/// Records every gradient the backward pass hands over (no step).
#[derive(Default)]
struct Record {
    grads: Vec<(TensorSpec, Vec<f64>)>,
}

impl Sink<f64> for Record {
    fn tensor(&mut self, spec: &TensorSpec, _: &mut [f64], grad: &mut dyn FnMut(&mut [f64])) {
        let mut g = vec![0.0; spec.len()];
        grad(&mut g);
        self.grads.push((*spec, g));
    }
}

/// `−ln softmax(z)[label]` in f64.
fn ce(z: &[f64], label: usize) -> f64 {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
    s.ln() + m - z[label]
}

fn fill<M: Train<f64>>(m: &mut M, seed: &mut u32) {
    m.tensors(&mut |_, p| {
        for v in p {
            *v = (margay::math::xorshift32(seed) >> 8) as f64 / 16_777_216.0 - 0.5;
        }
    });
}

/// Analytic gradients of a composed f64 model against central differences of its loss, for
/// every trainable value; and the sink's tensor order equals `tensors`' order.
fn check_model<M>(mut m: M, x: M::Input, label: usize, seed: u32)
where
    M: Train<f64>,
    M::Input: Cell<Scalar = f32>,
    M::Output: Cell<Scalar = f64>,
{
    let mut s = seed;
    fill(&mut m, &mut s);
    let sat = &mut Saturations::default();
    let mut out = M::Output::ZEROED;
    let mut loss = |m: &mut M| {
        m.forward(&x, &mut out, sat);
        ce(out.flat(), label)
    };
    let l0 = loss(&mut m);
    assert!(l0.is_finite());
    let mut y = M::Output::ZEROED;
    m.forward(&x, &mut y, &mut Saturations::default());
    let mut dz = M::Output::ZEROED;
    margay::nn::softmax_cross_entropy_slice(y.flat(), label, dz.flat_mut()).unwrap();
    let mut grads = M::GRADS;
    let mut rec = Record::default();
    m.backward(
        &x,
        &y,
        &dz,
        None,
        &mut grads,
        &mut rec,
        &mut Saturations::default(),
    );
    assert_eq!(rec.grads.len(), M::TENSORS);
    let mut specs = vec![];
    m.tensors(&mut |s, p| specs.push((*s, p.len())));
    assert_eq!(specs.len(), M::TENSORS);
    let total: usize = specs.iter().map(|s| s.1).sum();
    assert_eq!(total, M::PARAMS);
    let biggest = rec
        .grads
        .iter()
        .flat_map(|g| g.1.iter())
        .fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(
        biggest > 1e-3,
        "every gradient is ~0: the check would prove nothing"
    );
    let h = 1e-6;
    for (t, ((spec, g), (spec2, n))) in rec.grads.iter().zip(&specs).enumerate() {
        assert_eq!(spec, spec2, "tensor {t}");
        assert_eq!(g.len(), *n);
        for i in 0..*n {
            let nudge = |m: &mut M, by: f64| {
                let mut k = 0;
                m.tensors(&mut |_, p| {
                    if k == t {
                        p[i] += by;
                    }
                    k += 1;
                });
            };
            nudge(&mut m, h);
            let up = loss(&mut m);
            nudge(&mut m, -2.0 * h);
            let down = loss(&mut m);
            nudge(&mut m, h);
            let fd = (up - down) / (2.0 * h);
            let tol = 1e-6 * (1.0 + fd.abs().max(g[i].abs()));
            assert!(
                (fd - g[i]).abs() <= tol,
                "tensor {t} ({spec:?}) value {i}: analytic {} vs finite difference {fd}",
                g[i]
            );
        }
    }
}

fn readings<const C: usize, const L: usize>(seed: u32) -> [[f32; L]; C] {
    let mut s = seed;
    core::array::from_fn(|_| {
        core::array::from_fn(|_| (margay::math::xorshift32(&mut s) >> 8) as f32 / 4_194_304.0 - 2.0)
    })
}

/// A MobileNet-style 1-D block: conv, ReLU6, depthwise (bias-only), LoRA on a pointwise
/// conv, average pooling, global pooling, a frozen dense layer, ReLU, a trainable head.
macro_rules! conv_net {
    ($name:ident, $c:literal, $l:literal, $k:literal, $s:literal, $p:literal, $lc:literal, $ld:literal, $lp:literal) => {
        #[test]
        fn $name() {
            type Net = margay::Seq![
                Scale<f64, [[f32; $l]; $c]>,
                Full<Conv<f64, $c, 3, $k, $s, $p, $l, $lc>>,
                Relu6<[[f64; $lc]; 3]>,
                BiasOnly<Depthwise<f64, 3, 3, 2, 1, $lc, $ld>>,
                Lora<Pointwise<f64, 3, 4, $ld>, f64, 3, 4, 2, $ld>,
                AvgPool<f64, 4, $ld, $lp, 2, 1>,
                GlobalAvgPool<f64, 4, $lp>,
                Frozen<Dense<f64, 4, 4>>,
                Relu<[f64; 4]>,
                Full<Dense<f64, 4, 5>>,
            ];
            let net: Net = margay::seq!(
                Scale::new(0.5),
                Full(Conv::zeroed()),
                Relu6::new(),
                BiasOnly(Depthwise::zeroed()),
                Lora::new(Pointwise::zeroed(), [[0.0; 3]; 2]),
                AvgPool::new(),
                GlobalAvgPool::new(),
                Frozen(Dense::zeroed()),
                Relu::new(),
                Full(Dense::zeroed()),
            );
            // Frozen layers keep their (random) weights: fill them too.
            let mut net = net;
            let mut s = 99u32;
            let (_, rest) = net.parts_mut();
            let (_, rest) = rest.parts_mut();
            let (_, rest) = rest.parts_mut();
            let (dw, rest) = rest.parts_mut();
            for w in dw.0 .0.w.as_flattened_mut() {
                *w = (margay::math::xorshift32(&mut s) >> 8) as f64 / 16_777_216.0 - 0.5;
            }
            let (lora, rest) = rest.parts_mut();
            for w in lora.base.0.w.as_flattened_mut().as_flattened_mut() {
                *w = (margay::math::xorshift32(&mut s) >> 8) as f64 / 16_777_216.0 - 0.5;
            }
            let (_, rest) = rest.parts_mut();
            let (_, rest) = rest.parts_mut();
            let (frozen, _) = rest.parts_mut();
            for w in frozen.0.w.as_flattened_mut() {
                *w = (margay::math::xorshift32(&mut s) >> 8) as f64 / 16_777_216.0 - 0.5;
            }
            check_model(net, readings::<$c, $l>(7), 3, 11);
        }
    };
}

// (c, l, k, s, p, conv out, depthwise out (k 3, s 2, p 1), pool out (k 2, s 1))
conv_net!(conv_net_grads_c2_l12_k3_s1_p1, 2, 12, 3, 1, 1, 12, 6, 5);
conv_net!(conv_net_grads_c1_l16_k5_s2_p2, 1, 16, 5, 2, 2, 8, 4, 3);
conv_net!(conv_net_grads_c3_l9_k2_s1_p0, 3, 9, 2, 1, 0, 8, 4, 3);

#[test]
fn lora_dense_and_bias_only_dense_grads() {
    type Net = margay::Seq![
        Scale<f64, [f32; 6]>,
        BiasOnly<Dense<f64, 6, 5>>,
        Relu<[f64; 5]>,
        Lora<Dense<f64, 5, 4>, f64, 5, 4, 2>,
        Relu<[f64; 4]>,
        Full<Dense<f64, 4, 3>>,
    ];
    let mut net: Net = margay::seq!(
        Scale::new(1.0),
        BiasOnly(Dense::zeroed()),
        Relu::new(),
        Lora::new(Dense::zeroed(), [[0.0; 5]; 2]),
        Relu::new(),
        Full(Dense::zeroed()),
    );
    let mut s = 5u32;
    let (_, rest) = net.parts_mut();
    let (bias_only, rest) = rest.parts_mut();
    for w in bias_only.0.w.as_flattened_mut() {
        *w = (margay::math::xorshift32(&mut s) >> 8) as f64 / 16_777_216.0 - 0.5;
    }
    let (_, rest) = rest.parts_mut();
    let (lora, _) = rest.parts_mut();
    for w in lora.base.w.as_flattened_mut() {
        *w = (margay::math::xorshift32(&mut s) >> 8) as f64 / 16_777_216.0 - 0.5;
    }
    check_model(net, [0.3, -0.7, 1.1, 0.2, -0.4, 0.9], 1, 3);
}

// ---------------------------------------------------------------- memory plan

#[test]
fn the_plan_is_the_trainers_ram() {
    type B = d::DigitsBackprop<'static, f32>;
    type Z = d::DigitsZo<'static, f32>;
    let (b, z) = (B::PLAN, Z::PLAN);
    // Every buffer is a field: size_of is the plan plus the step counter and the counters.
    let counters = 8 + core::mem::size_of::<margay::nn::TrainStats>();
    assert_eq!(b.input, 0);
    for (plan, size) in [
        (b, core::mem::size_of::<B>()),
        (z, core::mem::size_of::<Z>()),
    ] {
        assert!(size >= plan.total() + counters, "{plan:?} vs {size}");
        assert!(
            size <= plan.total() + counters + 16,
            "{plan:?} vs {size} (padding)"
        );
    }
    type M = d::DigitsModel<'static, f32>;
    let params = d::PARAMS * 4;
    assert_eq!(b.params, params);
    assert_eq!(<M as Train<f32>>::PARAMS, d::PARAMS);
    // The model is its parameters, the frozen layer's scales and biases and a borrowed slice
    // (int8 weights stay in flash), and three link activations (64 + 32 + 32 values).
    // (The frozen layer's biases train: they are in `params`.)
    let frozen = d::HID * 4 + 2 * core::mem::size_of::<usize>();
    let links = (d::IN + d::HID + d::HID) * 4;
    let lora_u = d::RANK * 4;
    let scale = 4;
    let sum = params + frozen + links + lora_u + scale;
    assert!(b.model >= sum && b.model < sum + 8, "{} vs {sum}", b.model);
    // Forward-only needs no backward buffers and one output, nothing else differs.
    assert_eq!(z.backward, 0);
    assert_eq!(b.total() + z.input - z.total(), b.backward + b.output / 2);
    assert_eq!(z.input, d::IN * 4);
    assert!(b.backward > 0);
}

// ---------------------------------------------------------------- zeroth order

fn small_net() -> margay::Seq![
       Scale<f32, [f32; 6]>,
       Full<Dense<f32, 6, 5>>,
       Relu<[f32; 5]>,
       Full<Dense<f32, 5, 3>>,
   ] {
    let mut net = margay::seq!(
        Scale::new(1.0),
        Full(Dense::zeroed()),
        Relu::new(),
        Full(Dense::zeroed())
    );
    let mut s = 17u32;
    net.tensors(&mut |_, p| {
        for v in p {
            *v = ((margay::math::xorshift32(&mut s) >> 8) as f32 / 16_777_216.0 - 0.5) * 0.8;
        }
    });
    net
}

fn weights<T: Num, M: Train<T>>(m: &mut M) -> Vec<f32> {
    let mut v = vec![];
    m.tensors(&mut |_, p| v.extend(p.iter().map(|x| x.to_f32())));
    v
}

fn toy_batch() -> (Vec<[f32; 6]>, Vec<u8>) {
    let mut s = 3u32;
    let mut xs = vec![];
    let mut ys = vec![];
    for _ in 0..8 {
        let x: [f32; 6] = core::array::from_fn(|_| {
            (margay::math::xorshift32(&mut s) >> 8) as f32 / 8_388_608.0 - 1.0
        });
        ys.push(((x[0] + x[1] > 0.0) as u8) + ((x[2] > 0.5) as u8));
        xs.push(x);
    }
    (xs, ys)
}

#[test]
fn a_zo_step_is_the_directional_derivative_along_z() {
    // With SGD (lr 1, no momentum) the update is −ĝ = −p·z: p must be the loss's
    // directional derivative g·z, with g from the backward pass.
    let (xs, ys) = toy_batch();
    let zo = ZoConfig {
        eps: 1e-3,
        seed: 42,
        ..ZoConfig::default()
    }
    .build()
    .unwrap();
    let sgd = SgdConfig::new(1.0).build().unwrap();
    // g: the mean backprop gradient of the batch, via SGD lr 1 steps from the same start
    // reverted each time (SGD without momentum: Δθ = −g).
    let mut g = vec![0.0f64; 53];
    for (x, &y) in xs.iter().zip(&ys) {
        let mut b = Box::new(Backprop::<_, f32, 30, 0>::new(small_net()));
        let w0 = weights(&mut b.model);
        b.train(&sgd, x, y as usize).unwrap();
        for (g, (a, b)) in g.iter_mut().zip(w0.iter().zip(weights(&mut b.model))) {
            *g += (a - b) as f64 / xs.len() as f64;
        }
    }
    let mut z = Box::new(ZoTrainer::<_, f32, 30, 0>::new(small_net()));
    let w0 = weights(&mut z.model);
    let r = z.step(&zo, &sgd, &xs, &ys).unwrap();
    assert_eq!(r.outcome, Outcome::Updated);
    let w1 = weights(&mut z.model);
    // z of step 1, tensor by tensor in the model's tensor order.
    let dirs = zo.directions(1);
    let mut zs = vec![];
    let mut sizes = vec![];
    z.model.tensors(&mut |s, _| sizes.push(s.len()));
    for (t, &n) in sizes.iter().enumerate() {
        let mut buf = vec![0.0f32; n];
        dirs.fill(0, t as u32, 0, &mut buf);
        zs.extend(buf);
    }
    let gz: f64 = g.iter().zip(&zs).map(|(g, &z)| g * z as f64).sum();
    // Δθ = −p·z for every value: read p off the largest |z|.
    let k = (0..zs.len())
        .max_by(|&a, &b| zs[a].abs().total_cmp(&zs[b].abs()))
        .unwrap();
    let p = -(w1[k] - w0[k]) as f64 / zs[k] as f64;
    assert!(
        (p - gz).abs() <= 1e-2 * (1.0 + gz.abs()),
        "p {p} vs g·z {gz}"
    );
    for i in 0..zs.len() {
        let want = w0[i] as f64 - p * zs[i] as f64;
        assert!((w1[i] as f64 - want).abs() < 1e-5, "value {i}");
    }
}

#[test]
fn zo_skips_non_finite_readings_and_restores_exactly_in_fixed_point() {
    type Net = margay::Seq![
        Scale<I8F24, [f32; 6]>,
        Full<Dense<I8F24, 6, 5>>,
        Relu<[I8F24; 5]>,
        Full<Dense<I8F24, 5, 3>>,
    ];
    let mut net: Net = margay::seq!(
        Scale::new(I8F24::ONE),
        Full(Dense::zeroed()),
        Relu::new(),
        Full(Dense::zeroed())
    );
    let src = weights(&mut small_net());
    let mut k = 0;
    net.tensors(&mut |_, p| {
        for v in p {
            *v = I8F24::from_f32(src[k]);
            k += 1;
        }
    });
    let lion = margay::optim::LionConfig::new(1e-3).build().unwrap();
    let zo = ZoConfig::default().build().unwrap();
    let mut z = Box::new(ZoTrainer::<_, I8F24, 30, 53>::new(net));
    let w0 = weights(&mut z.model);
    let (mut xs, ys) = toy_batch();
    xs[3][2] = f32::NAN;
    let r = z.step(&zo, &lion, &xs, &ys).unwrap();
    assert_eq!(r.outcome, Outcome::Skipped);
    assert_eq!(z.stats.guarded, 1);
    assert_eq!(weights(&mut z.model), w0);
    // A reading beyond I8F24's range saturates and is counted, never faults.
    xs[3][2] = 1e6;
    let r = z.step(&zo, &lion, &xs, &ys).unwrap();
    assert_eq!(r.status, margay::optim::ZoStatus::Estimated);
    assert!(z.stats.saturated > 0);
    // Bad input is an error and changes nothing.
    let w1 = weights(&mut z.model);
    assert!(matches!(
        z.step(&zo, &lion, &xs, &[0, 1]),
        Err(margay::nn::NnError::Batch { .. })
    ));
    let mut bad = ys.clone();
    bad[0] = 3;
    assert!(matches!(
        z.step(&zo, &lion, &xs, &bad),
        Err(margay::nn::NnError::Label {
            label: 3,
            classes: 3
        })
    ));
    assert_eq!(weights(&mut z.model), w1);
}

#[test]
fn zo_perturbation_restores_exactly_in_fixed_point() {
    // Two-sided SPSA runs θ + d, θ − 2d, θ + d with d rounded once: fixed point ends where it
    // started. Here the output ignores the trainable layer (a frozen zero layer follows it),
    // so f₊ = f₋, ĝ = 0 and Lion (no decay) moves nothing: any drift of the restore would
    // show in the weights.
    type Net = margay::Seq![
        Scale<I8F24, [f32; 4]>,
        Full<Dense<I8F24, 4, 3>>,
        Relu<[I8F24; 3]>,
        Frozen<Dense<I8F24, 3, 2>>,
    ];
    let mut net: Net = margay::seq!(
        Scale::new(I8F24::ONE),
        Full(Dense::zeroed()),
        Relu::new(),
        Frozen(Dense::zeroed())
    );
    let mut s = 1u32;
    net.tensors(&mut |_, p| {
        for v in p {
            *v = I8F24::from_f32(
                (margay::math::xorshift32(&mut s) >> 8) as f32 / 16_777_216.0 - 0.5,
            );
        }
    });
    let lion = margay::optim::LionConfig::new(1e-3).build().unwrap();
    let zo = ZoConfig {
        samples: 3,
        ..ZoConfig::default()
    }
    .build()
    .unwrap();
    let mut z = Box::new(ZoTrainer::<_, I8F24, 12, 15>::new(net));
    let w0 = weights(&mut z.model);
    for _ in 0..5 {
        let r = z
            .step(&zo, &lion, &[[0.5, -1.0, 2.0, 0.25]; 2], &[0, 1])
            .unwrap();
        assert_eq!(r.status, margay::optim::ZoStatus::Estimated);
    }
    assert_eq!(weights(&mut z.model), w0);
}

#[test]
fn zo_training_lowers_the_loss_of_a_toy_task() {
    let (xs, ys) = toy_batch();
    let zo = ZoConfig {
        samples: 4,
        ..ZoConfig::default()
    }
    .build()
    .unwrap();
    let sgd = SgdConfig::new(0.05).build().unwrap();
    let mut z = Box::new(ZoTrainer::<_, f32, 30, 0>::new(small_net()));
    let first = z.step(&zo, &sgd, &xs, &ys).unwrap().loss;
    let mut last = first;
    for _ in 0..400 {
        last = z.step(&zo, &sgd, &xs, &ys).unwrap().loss;
    }
    assert!(last < 0.7 * first, "loss {first} → {last}");
    assert_eq!(z.stats.updates, 401);
}

// ---------------------------------------------------------------- int8 layers

fn rand_f32(s: &mut u32) -> f32 {
    (margay::math::xorshift32(s) >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0
}

fn rand_i8(s: &mut u32) -> i8 {
    (margay::math::xorshift32(s) >> 24) as u8 as i8
}

/// The per-row scales `quantize_rows` gives.
fn row_scales(w: &[f32], cols: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let (mut q, mut s) = (vec![0i8; w.len()], vec![0.0f32; rows]);
    margay::quant::quantize_rows(w, cols, &mut q, &mut s).unwrap();
    s
}

/// The exact result of requantizing `acc` by `in_scale·w_scale/out_scale`, rounded, plus the
/// zero point, clamped: the int8 layer must be within 1 of it.
fn reference(acc: i64, m: f64, p: &QParams) -> i64 {
    ((acc as f64 * m).round() as i64 + p.out_zp as i64).clamp(p.act_min as i64, p.act_max as i64)
}

#[test]
fn qdense_requantizes_within_one_of_the_exact_product() {
    let mut s = 9u32;
    let w: [[f32; 24]; 7] = core::array::from_fn(|_| core::array::from_fn(|_| rand_f32(&mut s)));
    let b: [f32; 7] = core::array::from_fn(|_| rand_f32(&mut s));
    let (si, so) = (0.05f32, 0.08f32);
    for p in [QParams::linear(3, -5), QParams::relu(-2, -20)] {
        let mut q = vec![0u8; 24 * 7];
        let mut l = QDense::<24, 7>::from_float(&w, &b, si, so, p, &mut q).unwrap();
        let scales = row_scales(w.as_flattened(), 24);
        for trial in 0..50 {
            let x: [i8; 24] = core::array::from_fn(|_| rand_i8(&mut s));
            let mut y = [0i8; 7];
            l.forward(&x, &mut y, &mut Saturations::default());
            for o in 0..7 {
                let mut acc = l.bias[o] as i64;
                for i in 0..24 {
                    acc += (x[i] as i64 - p.in_zp as i64) * l.q[o * 24 + i] as i8 as i64;
                }
                let m = si as f64 * scales[o] as f64 / so as f64;
                let want = reference(acc, m, &p);
                assert!(
                    (y[o] as i64 - want).abs() <= 1,
                    "trial {trial} out {o}: {} vs {want}",
                    y[o]
                );
                // …and near the float layer it quantizes (weights within half a step each).
                let real: f64 = (0..24)
                    .map(|i| (x[i] as f64 - p.in_zp as f64) * si as f64 * w[o][i] as f64)
                    .sum::<f64>()
                    + b[o] as f64;
                let float = (real / so as f64).round() as i64 + p.out_zp as i64;
                let bound = 2.0 + 24.0 * 128.0 * si as f64 * scales[o] as f64 / 2.0 / so as f64;
                let float = float.clamp(p.act_min as i64, p.act_max as i64);
                assert!(((y[o] as i64 - float).abs() as f64) <= bound);
            }
        }
    }
}

#[test]
fn qconv_and_qdepthwise_requantize_within_one_with_zero_point_padding() {
    let mut s = 21u32;
    let w: [[[f32; 3]; 2]; 4] = core::array::from_fn(|_| {
        core::array::from_fn(|_| core::array::from_fn(|_| rand_f32(&mut s)))
    });
    let b: [f32; 4] = core::array::from_fn(|_| rand_f32(&mut s));
    let dw: [[f32; 3]; 4] = core::array::from_fn(|_| core::array::from_fn(|_| rand_f32(&mut s)));
    let p = QParams::relu(4, -10);
    let (si, so) = (0.04f32, 0.06f32);
    let mut q = vec![0u8; 24];
    let mut conv = QConv1d::<2, 4, 3, 2, 1, 9, 5>::from_float(&w, &b, si, so, p, &mut q).unwrap();
    let mut qd = vec![0u8; 12];
    let mut dep =
        QDepthwise1d::<4, 3, 1, 1, 5, 5>::from_float(&dw, &b, so, so, p, &mut qd).unwrap();
    let cs = row_scales(w.as_flattened().as_flattened(), 6);
    let ds = row_scales(dw.as_flattened(), 3);
    for _ in 0..40 {
        let x: [[i8; 9]; 2] = core::array::from_fn(|_| core::array::from_fn(|_| rand_i8(&mut s)));
        let mut y = [[0i8; 5]; 4];
        conv.forward(&x, &mut y, &mut Saturations::default());
        for o in 0..4 {
            for t in 0..5 {
                let mut acc = conv.bias[o] as i64;
                for c in 0..2 {
                    for k in 0..3 {
                        let i = (t * 2 + k) as i64 - 1;
                        if (0..9).contains(&i) {
                            acc += (x[c][i as usize] as i64 - p.in_zp as i64)
                                * conv.q[(o * 2 + c) * 3 + k] as i8 as i64;
                        }
                    }
                }
                let want = reference(acc, si as f64 * cs[o] as f64 / so as f64, &p);
                assert!((y[o][t] as i64 - want).abs() <= 1);
            }
        }
        let mut z = [[0i8; 5]; 4];
        dep.forward(&y, &mut z, &mut Saturations::default());
        for c in 0..4 {
            for t in 0..5 {
                let mut acc = dep.bias[c] as i64;
                for k in 0..3 {
                    let i = t as i64 + k as i64 - 1;
                    if (0..5).contains(&i) {
                        acc += (y[c][i as usize] as i64 - p.in_zp as i64)
                            * dep.q[c * 3 + k] as i8 as i64;
                    }
                }
                let want = reference(acc, so as f64 * ds[c] as f64 / so as f64, &p);
                assert!((z[c][t] as i64 - want).abs() <= 1);
            }
        }
    }
}

#[test]
fn qinput_and_dequantize_round_and_saturate() {
    let mut qi = QInput::<[f32; 5]>::new(0.5, 10);
    let mut y = [0i8; 5];
    let mut sat = Saturations::default();
    qi.forward(&[0.0, 0.25, -0.75, 100.0, -100.0], &mut y, &mut sat);
    assert_eq!(y, [10, 11, 8, 127, -128]); // 0.5 and −1.5 round away from zero
    assert_eq!(sat.0, 2);
    let mut dq = Dequantize::<f32, [i8; 5]>::new(0.5, 10);
    let mut f = [0.0f32; 5];
    dq.forward(&y, &mut f, &mut sat);
    assert_eq!(f, [0.0, 0.5, -1.0, 58.5, -69.0]);
}

/// An int8 prefix (quantize, conv + ReLU, depthwise + ReLU, dequantize) in front of a float
/// suffix (bias-only pointwise, global pooling, trainable head).
type Hybrid<'a> = margay::Seq![
    Prefix<margay::Seq![
        QInput<[[f32; 16]; 2]>,
        QConv1d<'a, 2, 4, 3, 1, 1, 16, 16>,
        QDepthwise1d<'a, 4, 3, 2, 1, 16, 8>,
        Dequantize<f32, [[i8; 8]; 4]>,
    ]>,
    BiasOnly<Pointwise<f32, 4, 6, 8>>,
    Relu<[[f32; 8]; 6]>,
    GlobalAvgPool<f32, 6, 8>,
    Full<Dense<f32, 6, 3>>,
];

const fn hybrid<'a>() -> Hybrid<'a> {
    margay::seq!(
        Prefix(margay::seq!(
            QInput::new(1.0, 0),
            QConv1d::empty(),
            QDepthwise1d::empty(),
            Dequantize::new(1.0, 0)
        )),
        BiasOnly(Pointwise::zeroed()),
        Relu::new(),
        GlobalAvgPool::new(),
        Full(Dense::zeroed()),
    )
}

fn hybrid_blob() -> Vec<u8> {
    let mut s = 77u32;
    let (si, sm, so) = (0.05f32, 0.04f32, 0.05f32);
    let w: [[[f32; 3]; 2]; 4] = core::array::from_fn(|_| {
        core::array::from_fn(|_| core::array::from_fn(|_| rand_f32(&mut s)))
    });
    let b: [f32; 4] = core::array::from_fn(|_| rand_f32(&mut s) * 0.1);
    let dw: [[f32; 3]; 4] = core::array::from_fn(|_| core::array::from_fn(|_| rand_f32(&mut s)));
    let (mut q1, mut q2) = (vec![0u8; 24], vec![0u8; 12]);
    let conv = QConv1d::from_float(&w, &b, si, sm, QParams::relu(0, -128), &mut q1).unwrap();
    let dep =
        QDepthwise1d::from_float(&dw, &b, sm, so, QParams::relu(-128, -128), &mut q2).unwrap();
    let mut m = hybrid();
    let (prefix, rest) = m.parts_mut();
    let (qin, p) = prefix.0.parts_mut();
    *qin = QInput::new(si, 0);
    let (c, p) = p.parts_mut();
    *c = conv;
    let (d, dq) = p.parts_mut();
    *d = dep;
    *dq = Dequantize::new(so, -128);
    let (pw, rest) = rest.parts_mut();
    for v in pw.0 .0.w.as_flattened_mut().as_flattened_mut() {
        *v = rand_f32(&mut s);
    }
    let head = &mut rest.parts_mut().1.parts_mut().1 .0;
    for v in head.w.as_flattened_mut() {
        *v = rand_f32(&mut s);
    }
    let mut blob = vec![0u8; ModelBlob::len::<Hybrid>()];
    ModelBlob::encode(&m, &mut blob).unwrap();
    blob
}

fn hybrid_data() -> (Vec<[[f32; 16]; 2]>, Vec<u8>) {
    let mut s = 5u32;
    let (mut xs, mut ys) = (vec![], vec![]);
    for i in 0..64 {
        let label = (i % 3) as u8;
        let x: [[f32; 16]; 2] = core::array::from_fn(|c| {
            core::array::from_fn(|t| {
                let wave = ((t as f32) * (0.4 + 0.5 * label as f32) + c as f32).sin() * 3.0;
                wave + rand_f32(&mut s) * 0.5
            })
        });
        xs.push(x);
        ys.push(label);
    }
    (xs, ys)
}

#[test]
fn an_int8_prefix_runs_frozen_and_the_float_suffix_trains() {
    let blob = hybrid_blob();
    let mut tr = Box::new(Backprop::<Hybrid, f32, 24, 80>::new(hybrid()));
    ModelBlob::load(&mut tr.model, &blob).unwrap();
    // Gradients stop at the prefix: bias-only pointwise (6) and the head (18 + 3).
    assert_eq!(<Hybrid as Train<f32>>::PARAMS, 6 + 18 + 3);
    assert_eq!(<Hybrid as Train<f32>>::TENSORS, 3);
    let prefix_q = {
        let (p, _) = tr.model.parts_mut();
        (
            p.0.rest().first().q.to_vec(),
            p.0.rest().rest().first().q.to_vec(),
        )
    };
    let (xs, ys) = hybrid_data();
    let tiger = TigerConfig {
        accumulation: 4,
        ..TigerConfig::new(2e-2)
    }
    .build()
    .unwrap();
    let mut sat = Saturations::default();
    let correct = |tr: &mut Backprop<Hybrid, f32, 24, 80>, sat: &mut Saturations| {
        xs.iter()
            .zip(&ys)
            .filter(|(x, &y)| tr.predict(x, sat) == Some(y as usize))
            .count()
    };
    let before = correct(&mut tr, &mut sat);
    for _ in 0..30 {
        for (x, &y) in xs.iter().zip(&ys) {
            tr.train(&tiger, x, y as usize).unwrap();
        }
    }
    let after = correct(&mut tr, &mut sat);
    assert!(after >= before + 10, "{before} → {after} of 64");
    let (p, _) = tr.model.parts_mut();
    assert_eq!(p.0.rest().first().q, &prefix_q.0[..]);
    assert_eq!(p.0.rest().rest().first().q, &prefix_q.1[..]);
}

// ---------------------------------------------------------------- blob

#[test]
fn a_blob_round_trips_and_another_architecture_is_refused_naming_the_layer() {
    let blob: &'static [u8] = hybrid_blob().leak();
    let mut a = Box::new(Backprop::<Hybrid<'static>, f32, 24, 80>::new(hybrid()));
    ModelBlob::load(&mut a.model, blob).unwrap();
    // Written back, the same bytes.
    let mut again = vec![0u8; blob.len()];
    ModelBlob::encode(&a.model, &mut again).unwrap();
    assert_eq!(again, blob);

    let before = a.fingerprint();
    let refuse = |bytes: &[u8], a: &mut Backprop<Hybrid<'static>, f32, 24, 80>| {
        let bytes: &'static [u8] = bytes.to_vec().leak();
        let e = ModelBlob::load(&mut a.model, bytes).unwrap_err();
        assert_eq!(a.fingerprint(), before, "a refused blob changed the model");
        e
    };
    // The digits blob is another architecture: the first record already differs.
    let digits = d::engine_blob(
        &[0u8; d::HID * d::IN],
        &[0.0; d::HID],
        &[0.0; d::HID],
        &Dense::zeroed(),
    );
    match refuse(&digits, &mut a) {
        BlobError::Layers {
            found: 5,
            expected: 8,
        } => {}
        e => panic!("{e:?}"),
    }
    // Same count, another order or shape: named by index.
    type Other<'a> = margay::Seq![
        Prefix<margay::Seq![
            QInput<[[f32; 16]; 2]>,
            QConv1d<'a, 2, 4, 3, 1, 1, 16, 16>,
            QDepthwise1d<'a, 4, 3, 2, 1, 16, 8>,
            Dequantize<f32, [[i8; 8]; 4]>,
        ]>,
        BiasOnly<Pointwise<f32, 4, 6, 8>>,
        Relu6<[[f32; 8]; 6]>,
        GlobalAvgPool<f32, 6, 8>,
        Full<Dense<f32, 6, 3>>,
    ];
    let e = ModelBlob::check::<Other>(blob).unwrap_err();
    match e {
        BlobError::Layer {
            index: 5,
            found,
            expected,
        } => {
            assert_eq!(found.kind, LayerKind::Relu);
            assert_eq!(expected.kind, LayerKind::Relu6);
        }
        e => panic!("{e:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("layer 5") && msg.contains("Relu") && msg.contains("Relu6"),
        "{msg}"
    );
    // Corruption, truncation, version, NaN (checksum fixed up so the float check is reached).
    let mut bad = blob.to_vec();
    bad[40] ^= 1;
    assert!(matches!(refuse(&bad, &mut a), BlobError::Checksum { .. }));
    assert!(matches!(
        refuse(&blob[..blob.len() - 9], &mut a),
        BlobError::Checksum { .. } | BlobError::Length { .. }
    ));
    let mut bad = blob.to_vec();
    bad[4] = 1;
    assert!(matches!(
        refuse(&bad, &mut a),
        BlobError::Version { found: 1 }
    ));
    let mut bad = blob.to_vec();
    bad[0] = b'X';
    assert!(matches!(refuse(&bad, &mut a), BlobError::Magic));
    // The last record is the head: its last float is the last bias.
    let mut bad = blob.to_vec();
    let end = bad.len() - 4;
    bad[end - 4..end].copy_from_slice(&f32::NAN.to_le_bytes());
    let sum = margay::nn::fnv1a32(&bad[..end]);
    bad[end..].copy_from_slice(&sum.to_le_bytes());
    assert!(matches!(refuse(&bad, &mut a), BlobError::NonFinite { offset } if offset == end - 4));
    assert!(matches!(
        refuse(&[1, 2, 3], &mut a),
        BlobError::Length { .. }
    ));
}
