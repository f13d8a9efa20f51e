//! `margay::nn`: gradients against finite differences (f64), the LoRA projection identity,
//! the model blob's checks, the digits run (fixed point within its bound of f32, fresh blob)
//! and Tiger's fixed-point step.

use margay::nn::engine::{ModelBlob, Train};
use margay::nn::{relu, relu_backward, softmax_cross_entropy, BlobError, Dense, Lora, Saturations};
use margay::optim::{Outcome, TigerConfig};
use margay::quant::{Scalar, I8F24};
use margay_host::digits as d;
use proptest::prelude::*;

const I: usize = 5;
const H: usize = 4;
const O: usize = 3;
const R: usize = 2;

/// The loss of `x → ReLU(W₁x + b₁ + A(Bx)) → W₂h + b₂ → CE(label)` in f64.
struct Net {
    l1: Dense<f64, I, H>,
    lora: Lora<f64, I, H, R>,
    l2: Dense<f64, H, O>,
}

impl Net {
    /// The hidden layer before ReLU: `W₁x + b₁ + A(Bx)`.
    fn pre_activation(&self, x: &[f64; I]) -> [f64; H] {
        let sat = &mut Saturations::default();
        let mut h = [0.0; H];
        self.l1.forward(x, &mut h, sat);
        let mut u = [0.0; R];
        self.lora.down(x, &mut u, sat);
        self.lora.up_add(&u, &mut h, sat);
        h
    }

    /// The hidden activations (after ReLU) and the logits.
    fn forward(&self, x: &[f64; I]) -> ([f64; H], [f64; O]) {
        let mut h = self.pre_activation(x);
        relu(&mut h);
        let mut z = [0.0; O];
        self.l2.forward(&h, &mut z, &mut Saturations::default());
        (h, z)
    }

    fn loss(&self, x: &[f64; I], label: usize) -> f64 {
        let (_, z) = self.forward(x);
        let mut dz = [0.0; O];
        -softmax_cross_entropy(&z, label, &mut dz)
            .unwrap()
            .p_label
            .ln()
    }

    /// Analytic gradients: (W₁, b₁, A, B, W₂, b₂, x) flattened in that order.
    fn grads(&self, x: &[f64; I], label: usize) -> Vec<f64> {
        let sat = &mut Saturations::default();
        let (h, z) = self.forward(x);
        let mut dz = [0.0; O];
        softmax_cross_entropy(&z, label, &mut dz).unwrap();
        let mut dh = [0.0; H];
        self.l2.backward_input(&dz, &mut dh, sat);
        relu_backward(&h, &mut dh);
        let (mut gw1, mut gw2) = ([[0.0; I]; H], [[0.0; H]; O]);
        Dense::weight_grad(&dh, x, &mut gw1);
        Dense::weight_grad(&dz, &h, &mut gw2);
        let (mut ga, mut gb) = ([[0.0; R]; H], [[0.0; I]; R]);
        self.lora.grads(&dh, x, &mut ga, &mut gb, sat);
        let mut dx = [0.0; I];
        self.l1.backward_input(&dh, &mut dx, sat);
        // dx also flows through the adapter: x's gradient via Bᵀ(Aᵀdh).
        let mut du = [0.0; R];
        self.lora.back_down(&dh, &mut du, sat);
        for (i, dx) in dx.iter_mut().enumerate() {
            *dx += (0..R).map(|j| self.lora.b[j][i] * du[j]).sum::<f64>();
        }
        [
            gw1.as_flattened(),
            &dh,
            ga.as_flattened(),
            gb.as_flattened(),
            gw2.as_flattened(),
            &dz,
            &dx,
        ]
        .concat()
    }

    fn params_mut(&mut self) -> Vec<&mut f64> {
        let mut v: Vec<&mut f64> = Vec::new();
        v.extend(self.l1.w.as_flattened_mut());
        v.extend(&mut self.l1.b);
        v.extend(self.lora.a.as_flattened_mut());
        v.extend(self.lora.b.as_flattened_mut());
        v.extend(self.l2.w.as_flattened_mut());
        v.extend(&mut self.l2.b);
        v
    }
}

fn net_from(v: &[f64]) -> Net {
    let mut n = Net {
        l1: Dense::zeroed(),
        lora: Lora {
            a: [[0.0; R]; H],
            b: [[0.0; I]; R],
        },
        l2: Dense::zeroed(),
    };
    for (p, &x) in n.params_mut().into_iter().zip(v) {
        *p = x;
    }
    n
}

const NPARAMS: usize = I * H + H + H * R + R * I + H * O + O;

proptest! {
    /// Every analytic gradient (weights, biases, LoRA factors, input) equals a central
    /// difference in f64 within 1e-6 (the difference's own error is ~1e-9 at step 1e-5;
    /// samples where a ReLU input is within 1e-3 of its kink are skipped: there the loss
    /// is not differentiable).
    #[test]
    fn gradients_match_finite_differences(
        params in prop::collection::vec(-1.0f64..1.0, NPARAMS),
        x in prop::array::uniform5(-1.0f64..1.0),
        label in 0usize..O,
    ) {
        let net = net_from(&params);
        prop_assume!(net.pre_activation(&x).iter().all(|v| v.abs() > 1e-3));
        let g = net.grads(&x, label);
        let eps = 1e-5;
        for k in 0..NPARAMS + I {
            let f = |delta: f64| {
                let (mut p, mut xx) = (params.clone(), x);
                if k < NPARAMS { p[k] += delta } else { xx[k - NPARAMS] += delta }
                net_from(&p).loss(&xx, label)
            };
            let fd = (f(eps) - f(-eps)) / (2.0 * eps);
            prop_assert!((fd - g[k]).abs() <= 1e-6 * (1.0 + fd.abs()), "param {k}: fd {fd} analytic {}", g[k]);
        }
    }

    /// LoRA §10: the factored gradients equal the projection of the full ∂L/∂W = dy ⊗ x.
    #[test]
    fn lora_grads_equal_projection_of_full_gradient(
        params in prop::collection::vec(-1.0f64..1.0, H * R + R * I),
        dy in prop::array::uniform4(-1.0f64..1.0),
        x in prop::array::uniform5(-1.0f64..1.0),
    ) {
        let mut lora = Lora::<f64, I, H, R> { a: [[0.0; R]; H], b: [[0.0; I]; R] };
        for (p, &v) in lora.a.as_flattened_mut().iter_mut().chain(lora.b.as_flattened_mut()).zip(&params) {
            *p = v;
        }
        let sat = &mut Saturations::default();
        let (mut ga, mut gb) = ([[0.0; R]; H], [[0.0; I]; R]);
        lora.grads(&dy, &x, &mut ga, &mut gb, sat);
        let mut g = [[0.0; I]; H];
        Dense::<f64, I, H>::weight_grad(&dy, &x, &mut g);
        let (mut pa, mut pb) = ([[0.0; R]; H], [[0.0; I]; R]);
        lora.project(&g, &mut pa, &mut pb, sat);
        for (a, b) in ga.as_flattened().iter().chain(gb.as_flattened()).zip(pa.as_flattened().iter().chain(pb.as_flattened())) {
            prop_assert!((a - b).abs() <= 1e-12, "{a} vs {b}");
        }
    }
}

#[test]
fn softmax_cross_entropy_rejects_a_bad_label_and_writes_nothing() {
    let mut dz = [7.0f32; 3];
    let e = softmax_cross_entropy(&[1.0f32, 2.0, 3.0], 3, &mut dz).unwrap_err();
    assert_eq!(e.to_string(), "label 3 is outside 0..3");
    assert_eq!(dz, [7.0; 3]);
}

fn blob() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/model/digits.mgyb"
    ))
    .unwrap()
}

#[test]
fn blob_checks_reject_corruption_with_errors_that_say_why() {
    type M<'a> = d::DigitsModel<'a, f32>;
    let good = blob();
    assert!(ModelBlob::check::<M>(&good).is_ok());
    // Every single flipped bit anywhere is caught (checksum, or an earlier header check).
    for at in (0..good.len()).step_by(7) {
        let mut b = good.clone();
        b[at] ^= 0x04;
        assert!(ModelBlob::check::<M>(&b).is_err(), "flip at {at} accepted");
    }
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(ModelBlob::check::<M>(&b), Err(BlobError::Magic));
    let mut b = good.clone();
    b[4] = 1;
    assert_eq!(
        ModelBlob::check::<M>(&b),
        Err(BlobError::Version { found: 1 })
    );
    assert!(ModelBlob::check::<M>(&good[..good.len() - 1]).is_err());
    // Another rank is another architecture: the LoRA record (index 2) says so.
    type Rank4<'a> = margay::Seq![
        margay::nn::engine::Scale<f32, [f32; 64]>,
        margay::nn::engine::Lora<margay::nn::engine::Int8Dense<'a, f32, 64, 32>, f32, 64, 32, 4>,
        margay::nn::engine::Relu<[f32; 32]>,
        margay::nn::engine::Full<Dense<f32, 32, 10>>,
    ];
    assert!(matches!(
        ModelBlob::check::<Rank4>(&good),
        Err(BlobError::Layer { index: 2, .. })
    ));
    let mut b = good.clone();
    b[100] ^= 1;
    let e = ModelBlob::check::<M>(&b).unwrap_err();
    assert!(matches!(e, BlobError::Checksum { .. }));
    assert!(e.to_string().contains("margay digits pretrain"), "{e}");
    // A NaN weight with a valid checksum is still refused.
    let mut head = Dense::<f32, 32, 10>::zeroed();
    head.b[3] = f32::NAN;
    let out = d::engine_blob(&[0u8; 64 * 32], &[0.1; 32], &[0.0; 32], &head);
    assert!(matches!(
        ModelBlob::check::<M>(&out),
        Err(BlobError::NonFinite { .. })
    ));
    // The host reader names the file.
    let path = std::env::temp_dir().join("margay-bad.mgyb");
    d::write_atomic(&path, &b).unwrap();
    let e = d::read_blob(&path).unwrap_err();
    assert!(
        e.contains("margay-bad.mgyb") && e.contains("checksum"),
        "{e}"
    );
}

/// The committed blob is what pretraining produces now (deterministic): never stale.
#[test]
fn committed_blob_is_fresh() {
    let split = d::load(&d::data_path()).unwrap();
    let p = d::pretrain(&split, |_, _| {});
    assert_eq!(
        p.blob,
        blob(),
        "run `cargo run --release -p margay-host -- digits pretrain`"
    );
    assert!(p.int8_test >= 0.95, "int8 base accuracy {}", p.int8_test);
}

/// The device run on the host: both formats beat the base by the README's 30-point margin,
/// and the fixed-point run stays within its documented bound of the f32 run.
#[test]
fn fixed_point_run_stays_within_its_bound_of_f32() {
    let split = d::load(&d::data_path()).unwrap();
    let bytes = blob();
    let (stream, test) = (split.stream.mirrored(), split.test.mirrored());
    let (r32, mut t32) = d::finetune::<f32>(&bytes, &stream, &test);
    let (rq, mut tq) = d::finetune::<I8F24>(&bytes, &stream, &test);
    for r in [r32, rq] {
        assert_eq!(r.before, rq.before);
        assert!(r.after >= r.before + 30 * r.total / 100, "{r:?}");
        assert_eq!((r.stats.guarded, r.stats.updates), (1, 358));
    }
    assert_eq!(r32.stats.saturated, 0);
    assert!(
        rq.stats.saturated > 0,
        "the huge reading must saturate in I8F24"
    );
    // Bound 1, accuracy: within 3 points. Bound 2, weights: Tiger moves each weight by at
    // most η(1 + λ|θ|) per update in either run, so |Δθ| ≤ 2·η·updates·(1 + λ·max|θ|).
    let gap = (r32.after as f64 - rq.after as f64).abs() / r32.total as f64;
    assert!(gap <= 0.03, "accuracy gap {gap}");
    let (worst, big) = d::weight_gap(&mut t32.model, &mut tq.model);
    let t = d::device_tiger();
    let bound = 2.0 * t.lr * 358.0 * (1.0 + t.weight_decay * big);
    assert!(worst <= bound, "max |Δw| {worst} > bound {bound}");
    assert!(worst <= 0.5, "max |Δw| {worst}: the README states 0.45");
}

#[test]
fn trainer_guards_non_finite_readings_and_rejects_bad_labels() {
    let bytes = blob();
    let tiger = d::device_tiger().build().unwrap();
    let mut tr = d::load_backprop::<I8F24>(&bytes).unwrap();
    let before = d::trained_values(&mut tr.model);
    assert!(tr.train(&tiger, &[0.0; 64], 10).is_err());
    assert_eq!(
        d::trained_values(&mut tr.model),
        before,
        "a bad label changes nothing"
    );
    assert_eq!(tr.stats.samples, 0);
    assert_eq!(
        tr.train(&tiger, &[f32::INFINITY; 64], 1),
        Ok(Outcome::Guarded)
    );
    // Tiger's guard: every weight shrinks by nan_shrink (0.99), the head's first included.
    let shrunk = tr.model.rest().rest().rest().0.w[0][0];
    assert_eq!(
        shrunk,
        I8F24::from_f32(before[0]).times(I8F24::from_f32(0.99))
    );
    assert_eq!(tr.stats.guarded, 1);
    // A reading far beyond ±128 saturates, is counted, and training goes on.
    tr.train(&tiger, &[1e6; 64], 1).unwrap();
    assert!(tr.stats.saturated > 0);
    let mut f = d::load_backprop::<f32>(&bytes).unwrap();
    assert_eq!(f.train(&tiger, &[f32::NAN; 64], 1), Ok(Outcome::Guarded));
}

proptest! {
    /// Tiger's scalar step in f32 is bit-identical to its f32 step (all modes, k = 2).
    #[test]
    fn tiger_step_scalar_f32_equals_step(
        p in prop::collection::vec(-2.0f32..2.0, 8),
        g in prop::collection::vec(prop::collection::vec(-1.0f32..1.0, 8), 4),
        rms in any::<bool>(),
    ) {
        let lr_mode = if rms { margay::optim::LrMode::Rms } else { margay::optim::LrMode::Absolute };
        let t = TigerConfig { accumulation: 2, lr_mode, ..TigerConfig::new(1e-2) }.build().unwrap();
        let (mut p1, mut m1, mut p2, mut m2) = (p.clone(), vec![0.0f32; 8], p.clone(), vec![0.0f32; 8]);
        for (i, g) in g.iter().enumerate() {
            let s = t.at(i as u64 + 1);
            prop_assert_eq!(t.step(s, &mut p1, g, &mut m1), t.step_scalar(s, &mut p2, g, &mut m2));
        }
        prop_assert_eq!(p1.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), p2.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }

    /// In I8F24, Tiger's scalar step stays within a few units of the f32 step per update.
    #[test]
    fn tiger_step_scalar_fixed_tracks_f32(
        p in prop::collection::vec(-2.0f32..2.0, 8),
        g in prop::collection::vec(-1.0f32..1.0, 8),
    ) {
        let t = TigerConfig::new(1e-2).build().unwrap();
        let (mut pf, mut mf) = (p.clone(), vec![0.0f32; 8]);
        let mut pq: Vec<I8F24> = p.iter().map(|&x| I8F24::from_f32(x)).collect();
        let gq: Vec<I8F24> = g.iter().map(|&x| I8F24::from_f32(x)).collect();
        let mut mq = vec![I8F24::ZERO; 8];
        t.step(t.at(1), &mut pf, &g, &mut mf).unwrap();
        t.step_scalar(t.at(1), &mut pq, &gq, &mut mq).unwrap();
        for (a, b) in pf.iter().zip(&pq) {
            prop_assert!((a - b.to_f32()).abs() <= 4.0 / 16_777_216.0 + 1e-7 * a.abs(), "{a} vs {}", b.to_f32());
        }
    }
}

/// The trainer takes any optimizer of the interface: Lion, AdamW and clip → Tiger each lift
/// the mirrored-sensor accuracy by at least the firmware's 30-point margin (host, f32, bf16
/// state); their state fits the host trainer's capacity, and a too-small capacity is an error
/// that changes nothing.
#[test]
fn the_trainer_fine_tunes_with_other_optimizers() {
    let split = d::load(&d::data_path()).unwrap();
    let bytes = blob();
    let (stream, test) = (split.stream.mirrored(), split.test.mirrored());
    for (name, r) in d::other_optimizers(&bytes, &stream, &test) {
        assert!(
            r.after >= r.before + 30 * r.total / 100,
            "{name}: {} -> {} of {}",
            r.before,
            r.after,
            r.total
        );
        assert_eq!(r.stats.guarded, 1, "{name}: the NaN glitch is skipped once");
    }
    let adamw = margay::optim::AdamWConfig::new(1e-3).build().unwrap();
    type Small<'a> = margay::nn::engine::Backprop<d::DigitsModel<'a, f32>, f32, 512, { d::PARAMS }>;
    let mut small = Box::new(Small::new(d::digits_model()));
    ModelBlob::load(&mut small.model, &bytes).unwrap();
    let before = d::trained_values(&mut small.model);
    assert_eq!(
        small.train(&adamw, &[1.0; 64], 3),
        Err(margay::nn::NnError::State {
            needed: 2 * d::PARAMS,
            capacity: d::PARAMS
        })
    );
    assert_eq!(d::trained_values(&mut small.model), before);
    assert_eq!(small.stats.samples, 0);
    // Exponentiated gradient refuses the LoRA adapter's negative weights before anything is
    // written (the step counter and the counters included).
    let eg = margay::optim::ExpGradConfig::new(1e-2).build().unwrap();
    let mut tr = d::load_backprop::<f32>(&bytes).unwrap();
    let before = d::trained_values(&mut tr.model);
    assert!(matches!(
        tr.train(&eg, &[1.0; 64], 3),
        Err(margay::nn::NnError::Step(
            margay::optim::StepError::NegativeParameter { .. }
        ))
    ));
    assert_eq!(
        (d::trained_values(&mut tr.model), tr.stats.samples),
        (before, 0)
    );
    assert_eq!(<d::DigitsModel<f32> as Train<f32>>::TENSORS, 5);
}

#[test]
fn tiger_fixed_rms_is_an_integer_square_root() {
    let xs = [I8F24::from_f32(3.0), I8F24::from_f32(-4.0)];
    // √((9 + 16)/2) = 3.5355339…, rounded down to a unit of 2⁻²⁴.
    let got = I8F24::rms(&xs).to_num::<f64>();
    assert!(
        got <= 12.5f64.sqrt() && 12.5f64.sqrt() - got < 2f64.powi(-24),
        "{got}"
    );
    assert_eq!(I8F24::rms(&[I8F24::MIN; 4]), I8F24::MAX);
    assert_eq!(I8F24::rms(&[]), I8F24::ZERO);
}
