//! The optimizer interface (`margay::optim::Optimizer`), its chains and transforms: every
//! optimizer through the interface gives the bits of its direct call; chains give the bits
//! of the stages called one after the other by hand; bad buffers and refused tensors are
//! errors that modify nothing, naming the stage.

use half::bf16;
use margay::optim::{
    AdaXConfig, AdafactorConfig, AdamWAccumConfig, AdamWConfig, Cautious, CautiousStep, Chain,
    ClipConfig, ClipForm, EgStepSizeConfig, ExpGradConfig, FloodingConfig, GlobalNormClip, Grouped,
    LionConfig, LrMode, Moment, Optimizer, Outcome, ParamKind, SgdmConfig, Stage, StepError,
    TensorSpec, TigerConfig,
};
use margay::quant::{Scalar, I8F24};
use proptest::prelude::*;

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn mbits<M: Moment>(x: &[M]) -> Vec<u32> {
    x.iter().map(|v| v.load().to_bits()).collect()
}

/// `steps` rounds of `opt` on one vector through the interface; returns params and state.
fn via_interface<M: Moment, O: Optimizer<M>>(
    opt: &O,
    p0: &[f32],
    grads: &[Vec<f32>],
) -> (Vec<f32>, Vec<M>) {
    let spec = TensorSpec::vector(p0.len());
    let mut p = p0.to_vec();
    let mut state = vec![M::default(); opt.state_len(&spec)];
    opt.init(&spec, &mut state);
    for (t, g) in grads.iter().enumerate() {
        let mut g = g.clone();
        let mut round = opt.begin(0.0);
        opt.observe(&mut round, &spec, &g);
        opt.finish(&mut round);
        opt.update(
            &round,
            opt.at(t as u64 + 1),
            &spec,
            &mut p,
            &mut g,
            &mut state,
        )
        .unwrap();
    }
    (p, state)
}

fn grads_strategy(n: usize) -> impl Strategy<Value = (Vec<f32>, Vec<Vec<f32>>)> {
    (
        prop::collection::vec(-2.0f32..2.0, n),
        prop::collection::vec(prop::collection::vec(-3.0f32..3.0, n), 1..6),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Lion, Tiger (every lr mode, k = 1 and 3), SGDM and exponentiated gradient through the
    /// interface give their direct steps' bits, f32 and bf16 state.
    #[test]
    fn one_moment_optimizers_equal_their_direct_steps((p0, gs) in grads_strategy(12)) {
        let lion = LionConfig { weight_decay: 0.1, ..LionConfig::new(1e-2) }.build().unwrap();
        let (p, m) = via_interface::<bf16, _>(&lion, &p0, &gs);
        let (mut q, mut mq) = (p0.clone(), vec![bf16::ZERO; 12]);
        for (t, g) in gs.iter().enumerate() {
            lion.step(lion.at(t as u64 + 1), &mut q, g, &mut mq).unwrap();
        }
        prop_assert_eq!(bits(&p), bits(&q));
        prop_assert_eq!(mbits(&m), mbits(&mq));

        for mode in [LrMode::Absolute, LrMode::Rms, LrMode::RmsPerRow { cols: 4 }, LrMode::InvSqrtDim { dim: 9 }] {
            for k in [1, 3] {
                let tiger = TigerConfig { lr_mode: mode, accumulation: k, ..TigerConfig::new(1e-2) }
                    .build()
                    .unwrap();
                let (p, m) = via_interface::<f32, _>(&tiger, &p0, &gs);
                let (mut q, mut mq) = (p0.clone(), vec![0.0f32; 12]);
                for (t, g) in gs.iter().enumerate() {
                    tiger.step(tiger.at(t as u64 + 1), &mut q, g, &mut mq).unwrap();
                }
                prop_assert_eq!(bits(&p), bits(&q), "{:?} k={}", mode, k);
                prop_assert_eq!(bits(&m), bits(&mq));
            }
        }

        let sgdm = SgdmConfig { accumulation: 2, ..SgdmConfig::new(1e-2) }.build().unwrap();
        let (p, m) = via_interface::<f32, _>(&sgdm, &p0, &gs);
        let (mut q, mut mq) = (p0.clone(), vec![0.0f32; 12]);
        for (t, g) in gs.iter().enumerate() {
            sgdm.step(sgdm.at(t as u64 + 1), &mut q, g, &mut mq).unwrap();
        }
        prop_assert_eq!(bits(&p), bits(&q));
        prop_assert_eq!(bits(&m), bits(&mq));

        let eg = ExpGradConfig::new(0.1).build().unwrap();
        let pos: Vec<f32> = p0.iter().map(|x| x.abs()).collect();
        let (p, _) = via_interface::<f32, _>(&eg, &pos, &gs);
        let mut q = pos.clone();
        for (t, g) in gs.iter().enumerate() {
            eg.step(eg.at(t as u64 + 1), &mut q, g).unwrap();
        }
        prop_assert_eq!(bits(&p), bits(&q));
    }

    /// AdamW, AdaX and AdamW with hidden accumulation through the interface (state `[m | v]`)
    /// give their direct steps' bits.
    #[test]
    fn two_moment_optimizers_equal_their_direct_steps((p0, gs) in grads_strategy(10)) {
        fn check<O: Optimizer<f32>>(
            opt: &O,
            p0: &[f32],
            gs: &[Vec<f32>],
            direct: impl Fn(u64, &mut [f32], &[f32], &mut [f32], &mut [f32]),
        ) -> Result<(), TestCaseError> {
            let (p, state) = via_interface::<f32, _>(opt, p0, gs);
            let n = p0.len();
            let (mut q, mut m, mut v) = (p0.to_vec(), vec![0.0f32; n], vec![0.0f32; n]);
            for (t, g) in gs.iter().enumerate() {
                direct(t as u64 + 1, &mut q, g, &mut m, &mut v);
            }
            prop_assert_eq!(bits(&p), bits(&q));
            prop_assert_eq!(bits(&state[..n]), bits(&m));
            prop_assert_eq!(bits(&state[n..]), bits(&v));
            Ok(())
        }
        let adamw = AdamWConfig::new(1e-2).build().unwrap();
        check(&adamw, &p0, &gs, |t, q, g, m, v| adamw.step(adamw.at(t), q, g, m, v).unwrap())?;
        let adax = AdaXConfig::new(1e-2).build().unwrap();
        check(&adax, &p0, &gs, |t, q, g, m, v| adax.step(adax.at(t), q, g, m, v).unwrap())?;
        let acc = AdamWAccumConfig { accumulation: 2, ..AdamWAccumConfig::new(AdamWConfig::new(1e-2)) }
            .build()
            .unwrap();
        check(&acc, &p0, &gs, |t, q, g, m, v| acc.step(acc.at(t), q, g, m, v).unwrap())?;
    }

    /// Adafactor through the interface: a matrix keeps `[R | C]`, a vector `V̂`; same bits
    /// as `step_matrix` / `step_vector`.
    #[test]
    fn adafactor_equals_its_direct_steps((p0, gs) in grads_strategy(12)) {
        let af = AdafactorConfig { weight_decay: 0.1, ..AdafactorConfig::new(1e-2) }.build().unwrap();
        let spec = TensorSpec::matrix(3, 4);
        prop_assert_eq!(Stage::state_len(&af, &spec), 7);
        let (mut p, mut st) = (p0.clone(), vec![0.0f32; 7]);
        let (mut q, mut r, mut c) = (p0.clone(), [0.0f32; 3], [0.0f32; 4]);
        for (t, g) in gs.iter().enumerate() {
            let s = af.at(t as u64 + 1);
            af.update(&(), s, &spec, &mut p, &mut g.clone(), &mut st).unwrap();
            af.step_matrix(s, &mut q, g, 3, 4, &mut r, &mut c).unwrap();
        }
        prop_assert_eq!(bits(&p), bits(&q));
        prop_assert_eq!(bits(&st[..3]), bits(&r));
        prop_assert_eq!(bits(&st[3..]), bits(&c));
        let (p, st) = via_interface::<f32, _>(&af, &p0, &gs);
        let (mut q, mut v) = (p0.clone(), vec![0.0f32; 12]);
        for (t, g) in gs.iter().enumerate() {
            af.step_vector(af.at(t as u64 + 1), &mut q, g, &mut v).unwrap();
        }
        prop_assert_eq!(bits(&p), bits(&q));
        prop_assert_eq!(bits(&st), bits(&v));
    }

    /// Clip → Tiger over two tensors equals `GlobalNormClip::apply` then `Tiger::step`, and
    /// clip → (EG step sizes) → Lion equals the stages called by hand; a bf16 chain too.
    #[test]
    fn chains_equal_their_stages_called_by_hand(
        (p0, gs) in grads_strategy(8),
        scale in prop::sample::select(vec![0.01f32, 1.0, 100.0]),
    ) {
        let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
        let tiger = TigerConfig::new(1e-2).build().unwrap();
        let chain = Chain(clip, tiger);
        let (a, b) = (TensorSpec::vector(5), TensorSpec::vector(3));
        let (mut pa, mut pb) = (p0[..5].to_vec(), p0[5..].to_vec());
        let (mut ma, mut mb) = (vec![bf16::ZERO; 5], vec![bf16::ZERO; 3]);
        let (mut qa, mut qb) = (pa.clone(), pb.clone());
        let (mut na, mut nb) = (ma.clone(), mb.clone());
        for (t, g) in gs.iter().enumerate() {
            let g: Vec<f32> = g.iter().map(|x| x * scale).collect();
            let (mut ga, mut gb) = (g[..5].to_vec(), g[5..].to_vec());
            let mut round = chain.begin(0.0);
            chain.observe(&mut round, &a, &ga);
            chain.observe(&mut round, &b, &gb);
            chain.finish(&mut round);
            let s = chain.at(t as u64 + 1);
            chain.update(&round, s, &a, &mut pa, &mut ga, &mut ma).unwrap();
            chain.update(&round, s, &b, &mut pb, &mut gb, &mut mb).unwrap();
            let (mut ha, mut hb) = (g[..5].to_vec(), g[5..].to_vec());
            let report = clip.apply(&mut [&mut ha[..], &mut hb[..]]);
            prop_assert_eq!(report, round.0.report());
            tiger.step(s, &mut qa, &ha, &mut na).unwrap();
            tiger.step(s, &mut qb, &hb, &mut nb).unwrap();
        }
        prop_assert_eq!(bits(&pa), bits(&qa));
        prop_assert_eq!(bits(&pb), bits(&qb));
        prop_assert_eq!(mbits(&ma), mbits(&na));
        prop_assert_eq!(mbits(&mb), mbits(&nb));

        let eg = EgStepSizeConfig::new(0.05).build().unwrap();
        let lion = LionConfig::new(1e-2).build().unwrap();
        let chain = Chain((clip, eg), lion);
        let spec = TensorSpec::vector(8);
        prop_assert_eq!(chain.state_len(&spec), 3 * 8);
        let (p, st) = via_interface::<f32, _>(&chain, &p0, &gs);
        let (mut q, mut nu, mut prev, mut m) = (p0.clone(), vec![1.0f32; 8], vec![0.0f32; 8], vec![0.0f32; 8]);
        for (t, g) in gs.iter().enumerate() {
            let mut h = g.clone();
            clip.apply(&mut [&mut h[..]]);
            eg.apply(&mut h, &mut nu, &mut prev).unwrap();
            lion.step(lion.at(t as u64 + 1), &mut q, &h, &mut m).unwrap();
        }
        prop_assert_eq!(bits(&p), bits(&q));
        prop_assert_eq!(bits(&st[..8]), bits(&nu));
        prop_assert_eq!(bits(&st[8..16]), bits(&prev));
        prop_assert_eq!(bits(&st[16..]), bits(&m));
    }
}

/// Flooding's sign as a transform: the round's loss decides ascent or descent.
#[test]
fn flooding_in_a_chain_flips_the_gradient_below_the_level() {
    let flood = FloodingConfig { level: 0.5 }.build().unwrap();
    let lion = LionConfig::new(0.1).build().unwrap();
    let chain = Chain(flood, lion);
    let spec = TensorSpec::vector(2);
    for (loss, expect) in [
        (0.25f32, [0.1f32, -0.1]),
        (1.0, [-0.1, 0.1]),
        (0.5, [0.0, 0.0]),
    ] {
        let (mut p, mut m) = ([0.0f32; 2], [0.0f32; 2]);
        let round = chain.begin(loss);
        chain
            .update(&round, chain.at(1), &spec, &mut p, &mut [1.0, -1.0], &mut m)
            .unwrap();
        assert_eq!(p, expect, "loss {loss}");
    }
}

/// Parameter groups behind the interface pick each tensor's preset by its kind (the same
/// bits as the preset's optimizer called directly), and keep each group's lr ratio under a
/// schedule.
#[test]
fn grouped_steps_each_kind_with_its_preset() {
    let base = TigerConfig::new(1e-2);
    let groups = Grouped::build(4, |k| base.preset(k).build()).unwrap();
    let kinds = [
        ParamKind::Weight,
        ParamKind::Bias,
        ParamKind::NormGain,
        ParamKind::Embedding { cols: 4 },
    ];
    let g0 = [0.3f32, -0.2, 0.0, 0.5, 0.1, -0.4, 0.2, 0.2];
    for kind in kinds {
        let spec = TensorSpec::vector(8).with_kind(kind);
        let direct = base.preset(kind).build().unwrap();
        let (mut p, mut m) = ([0.5f32; 8], [0.0f32; 8]);
        let (mut q, mut n) = ([0.5f32; 8], [0.0f32; 8]);
        for t in 1..4 {
            let s = groups.at(t);
            groups
                .update(&(), s, &spec, &mut p, &mut g0.clone(), &mut m)
                .unwrap();
            direct.step(direct.at(t), &mut q, &g0, &mut n).unwrap();
        }
        assert_eq!(bits(&p), bits(&q), "{kind:?}");
    }
    // An embedding whose rows differ from the group's is refused, nothing written.
    let spec = TensorSpec::vector(8).with_kind(ParamKind::Embedding { cols: 2 });
    let (mut p, mut m) = ([0.5f32; 8], [0.0f32; 8]);
    let err = groups
        .update(&(), groups.at(1), &spec, &mut p, &mut g0.clone(), &mut m)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StepError::StageRefused {
                stage: "tiger",
                index: 0,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(p, [0.5; 8]);
}

/// Tiger in I8F24 through the interface: `step_scalar`'s bits, and `skip` is the guard.
#[test]
fn fixed_point_tiger_through_the_interface_is_step_scalar() {
    let tiger = TigerConfig {
        accumulation: 2,
        ..TigerConfig::new(1e-2)
    }
    .build()
    .unwrap();
    let spec = TensorSpec::vector(3);
    let q = I8F24::from_f32;
    let (mut p, mut m) = ([q(0.5), q(-0.25), q(0.0)], [I8F24::ZERO; 3]);
    let (mut p2, mut m2) = (p, m);
    for t in 1..6 {
        let g = [q(0.1 * t as f32), q(-0.3), q(0.05)];
        let o = tiger
            .update(&(), tiger.at(t), &spec, &mut p, &mut g.clone(), &mut m)
            .unwrap();
        let d = tiger
            .step_scalar(tiger.at(t), &mut p2, &g, &mut m2)
            .unwrap();
        assert_eq!(o, d.into());
        assert_eq!((p, m), (p2, m2));
    }
    assert_eq!(Stage::accumulation(&tiger), 2);
    let o = Optimizer::<I8F24, I8F24>::skip(&tiger, tiger.at(6), &spec, &mut p, &mut m);
    assert_eq!(o, Outcome::Guarded);
    tiger.shrink_scalar(&mut p2);
    assert_eq!(p, p2);
}

/// A state buffer too short or too long, for a lone optimizer and for every stage of a
/// chain, is `StateLength` and nothing is written; params/grads of the wrong length are
/// `LengthMismatch`.
#[test]
fn wrong_buffer_lengths_are_errors_that_modify_nothing() {
    let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
    let eg = EgStepSizeConfig::new(0.05).build().unwrap();
    let adamw = AdamWConfig::new(1e-2).build().unwrap();
    let chain = Chain((clip, eg), adamw);
    let spec = TensorSpec::vector(4);
    for len in [0usize, 7, 11, 12 + 1, 16 - 1, 16 + 1] {
        let mut p = [1.0f32; 4];
        let mut g = [0.5f32; 4];
        let mut st = vec![0.25f32; len];
        let err = chain.update(
            &chain.begin(0.0),
            chain.at(1),
            &spec,
            &mut p,
            &mut g,
            &mut st,
        );
        assert_eq!(
            err,
            Err(StepError::StateLength {
                expected: 16,
                got: len
            })
        );
        assert_eq!((p, g), ([1.0; 4], [0.5; 4]));
        assert!(st.iter().all(|&x| x == 0.25));
    }
    for len in [3usize, 9] {
        let err = adamw.update(
            &(),
            adamw.at(1),
            &spec,
            &mut [1.0; 4],
            &mut [0.5; 4],
            &mut vec![0.0f32; len],
        );
        assert_eq!(
            err,
            Err(StepError::StateLength {
                expected: 8,
                got: len
            })
        );
    }
    let err = adamw.update(
        &(),
        adamw.at(1),
        &spec,
        &mut [1.0; 3],
        &mut [0.5; 4],
        &mut [0.0f32; 8],
    );
    assert!(matches!(
        err,
        Err(StepError::LengthMismatch {
            params: 3,
            grads: 4,
            ..
        })
    ));
}

/// A stage that cannot take the tensor is named, with its position in the chain.
#[test]
fn a_refused_tensor_names_the_stage() {
    let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
    let eg = EgStepSizeConfig::new(0.05).build().unwrap();
    let af = AdafactorConfig::new(1e-2).build().unwrap();
    let zero = TensorSpec::matrix(0, 3);
    let err = Chain(clip, af)
        .update(
            &Chain(clip, af).begin(0.0),
            af.at(1),
            &zero,
            &mut [],
            &mut [],
            &mut [0.0; 3],
        )
        .unwrap_err();
    assert_eq!(
        err,
        StepError::StageRefused {
            stage: "adafactor",
            index: 1,
            reason: "a tensor with a zero dimension has no second moment"
        }
    );
    let tiger = TigerConfig {
        lr_mode: LrMode::RmsPerRow { cols: 3 },
        ..TigerConfig::new(1e-2)
    }
    .build()
    .unwrap();
    let chain = Chain((clip, eg), tiger);
    let spec = TensorSpec::vector(4);
    let (mut p, mut st) = ([1.0f32; 4], [0.5f32; 12]);
    let err = chain
        .update(
            &chain.begin(0.0),
            chain.at(1),
            &spec,
            &mut p,
            &mut [0.1; 4],
            &mut st,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StepError::StageRefused {
                stage: "tiger",
                index: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("stage 2 (`tiger`)"), "{err}");
    assert_eq!((p, st), ([1.0; 4], [0.5; 12]));
}

/// The optimizers' own bad-input rules hold through the interface: Lion's NaN propagates as
/// in PyTorch, Tiger's guard shrinks and keeps the momentum (also behind clipping, whose
/// non-finite norm leaves the gradients alone), exponentiated gradient refuses a negative
/// weight, cautious masking keeps its factor's meaning.
#[test]
fn each_optimizers_bad_input_rule_holds_through_the_interface() {
    let spec = TensorSpec::vector(2);
    let lion = LionConfig::new(1e-2).build().unwrap();
    let (mut p, mut m) = ([1.0f32, 2.0], [0.0f32; 2]);
    lion.update(&(), lion.at(1), &spec, &mut p, &mut [f32::NAN, 1.0], &mut m)
        .unwrap();
    assert!(p[0].is_nan() && m[0].is_nan() && p[1] == 2.0 - 1e-2);

    let tiger = TigerConfig::new(1e-2).build().unwrap();
    let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
    for bad in [f32::NAN, f32::INFINITY] {
        let (mut p, mut m) = ([1.0f32, 2.0], [0.25f32; 2]);
        let o = tiger
            .update(&(), tiger.at(1), &spec, &mut p, &mut [bad, 1.0], &mut m)
            .unwrap();
        assert_eq!(o, Outcome::Guarded);
        assert_eq!((p, m), ([0.99, 1.98], [0.25; 2]));
        let chain = Chain(clip, tiger);
        let (mut p, mut m) = ([1.0f32, 2.0], [0.25f32; 2]);
        let mut g = [bad, 1.0];
        let mut round = chain.begin(0.0);
        chain.observe(&mut round, &spec, &g);
        chain.finish(&mut round);
        let o = chain
            .update(&round, chain.at(1), &spec, &mut p, &mut g, &mut m)
            .unwrap();
        assert_eq!(o, Outcome::Guarded);
        assert_eq!((p, m), ([0.99, 1.98], [0.25; 2]));
        assert_eq!(round.0.report().coef, 1.0);
    }

    let eg = ExpGradConfig::new(0.1).build().unwrap();
    let mut w = [0.5f32, -0.1];
    let err = Optimizer::<f32>::update(&eg, &(), eg.at(1), &spec, &mut w, &mut [1.0; 2], &mut []);
    assert_eq!(err, Err(StepError::NegativeParameter { index: 1 }));
    assert_eq!(w, [0.5, -0.1]);

    // Cautious with factor 0 freezes the disagreeing coordinate, as `step_cautious` does.
    let k = Cautious::new(0.0).unwrap();
    let cl = CautiousStep(lion, k);
    let (mut p, mut m) = ([0.0f32; 2], [1.0f32, 1.0]);
    let (mut q, mut n) = (p, m);
    cl.update(&(), cl.at(1), &spec, &mut p, &mut [-5.0, 1.0], &mut m)
        .unwrap();
    lion.step_cautious(lion.at(1), &mut q, &[-5.0, 1.0], &mut n, k)
        .unwrap();
    assert_eq!((bits(&p), bits(&m)), (bits(&q), bits(&n)));
    assert_eq!(p[0], 0.0);
}

/// Only an observing stage needs the observe phase, and `accumulation` comes from the
/// optimizer at the end of the chain.
#[test]
fn chains_report_what_generic_code_needs() {
    let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
    let eg = EgStepSizeConfig::new(0.05).build().unwrap();
    let tiger = TigerConfig {
        accumulation: 4,
        ..TigerConfig::new(1e-2)
    }
    .build()
    .unwrap();
    fn observes<O: Optimizer>(_: &O) -> bool {
        O::OBSERVES
    }
    assert!(!observes(&tiger));
    assert!(observes(&Chain(clip, tiger)));
    assert!(!observes(&Chain(eg, tiger)));
    assert!(observes(&Chain((clip, eg), tiger)));
    assert_eq!(Chain((clip, eg), tiger).accumulation(), 4);
    assert_eq!(
        <Chain<(GlobalNormClip, margay::optim::EgStepSize), margay::optim::Tiger> as Stage>::STAGES,
        3
    );
}

/// Large tensors keep a gap between AdamW's moments (`moment_gap`): 0 below 16,384 values
/// and away from multiples of 16,384, 512 near them; the step through the interface still
/// equals the direct step on separate buffers, and the gap is never written.
#[test]
fn two_moment_layout_leaves_its_gap_alone() {
    use margay::optim::moment_gap;
    assert_eq!(moment_gap(255), 0);
    assert_eq!(moment_gap(16_383), 0);
    assert_eq!(moment_gap(16_384), 512);
    assert_eq!(moment_gap(16_384 + 300), 0);
    assert_eq!(moment_gap(3 * 16_384 - 10), 512);
    for n in [16_384usize, 20_000, 32_768 + 100] {
        let r = (n + moment_gap(n)) % 16_384;
        assert!(
            (256..=16_384 - 256).contains(&r),
            "n {n}: distance {r} mod 16384"
        );
    }
    let n = 16_384;
    let adamw = AdamWConfig::new(1e-2).build().unwrap();
    let spec = TensorSpec::vector(n);
    assert_eq!(adamw.state_len(&spec), 2 * n + 512);
    let p0: Vec<f32> = (0..n).map(|i| (i % 97) as f32 / 97.0 - 0.5).collect();
    let g: Vec<f32> = (0..n).map(|i| (i % 13) as f32 / 13.0 - 0.4).collect();
    let (mut p, mut st) = (p0.clone(), vec![0.0f32; 2 * n + 512]);
    st[n..n + 512].fill(7.0);
    let (mut q, mut m, mut v) = (p0, vec![0.0f32; n], vec![0.0f32; n]);
    for t in 1..4 {
        adamw
            .update(&(), adamw.at(t), &spec, &mut p, &mut g.clone(), &mut st)
            .unwrap();
        adamw.step(adamw.at(t), &mut q, &g, &mut m, &mut v).unwrap();
    }
    assert_eq!(bits(&p), bits(&q));
    assert_eq!(bits(&st[..n]), bits(&m));
    assert_eq!(bits(&st[n + 512..]), bits(&v));
    assert!(st[n..n + 512].iter().all(|&x| x == 7.0));
}

/// NaN and ±Inf gradients follow each optimizer's own rule through the interface: the same
/// bits as the direct step (NaN positions included) for AdamW, AdaX, AdamW with hidden
/// accumulation, SGDM and Adafactor.
#[test]
fn non_finite_gradients_follow_each_rule_through_the_interface() {
    let p0 = vec![0.5f32, -0.25, 1.0, 0.0, 2.0, -1.0];
    let gs = vec![
        vec![0.1f32, f32::NAN, -0.2, 0.3, f32::INFINITY, 0.0],
        vec![0.2f32, 0.1, f32::NEG_INFINITY, -0.1, 0.1, f32::NAN],
    ];
    let n = p0.len();
    fn same(a: &[f32], b: &[f32]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }
    let adamw = AdamWConfig::new(1e-2).build().unwrap();
    let adax = AdaXConfig::new(1e-2).build().unwrap();
    let acc = AdamWAccumConfig {
        accumulation: 2,
        ..AdamWAccumConfig::new(AdamWConfig::new(1e-2))
    }
    .build()
    .unwrap();
    let (pa, _) = via_interface::<f32, _>(&adamw, &p0, &gs);
    let (px, _) = via_interface::<f32, _>(&adax, &p0, &gs);
    let (pc, _) = via_interface::<f32, _>(&acc, &p0, &gs);
    let mut q = [p0.clone(), p0.clone(), p0.clone()];
    let mut mv = [
        vec![0.0f32; 2 * n],
        vec![0.0f32; 2 * n],
        vec![0.0f32; 2 * n],
    ];
    for (t, g) in gs.iter().enumerate() {
        let t = t as u64 + 1;
        let [m0, m1, m2] = &mut mv;
        let (a, b) = m0.split_at_mut(n);
        adamw.step(adamw.at(t), &mut q[0], g, a, b).unwrap();
        let (a, b) = m1.split_at_mut(n);
        adax.step(adax.at(t), &mut q[1], g, a, b).unwrap();
        let (a, b) = m2.split_at_mut(n);
        acc.step(acc.at(t), &mut q[2], g, a, b).unwrap();
    }
    assert!(same(&pa, &q[0]) && pa[1].is_nan(), "adamw {pa:?}");
    assert!(same(&px, &q[1]), "adax {px:?}");
    assert!(same(&pc, &q[2]), "adamw-accum {pc:?}");

    let sgdm = SgdmConfig::new(1e-2).build().unwrap();
    let (ps, _) = via_interface::<f32, _>(&sgdm, &p0, &gs);
    let (mut q, mut m) = (p0.clone(), vec![0.0f32; n]);
    for (t, g) in gs.iter().enumerate() {
        sgdm.step(sgdm.at(t as u64 + 1), &mut q, g, &mut m).unwrap();
    }
    assert!(same(&ps, &q) && ps[1].is_nan(), "sgdm {ps:?}");

    let af = AdafactorConfig::new(1e-2).build().unwrap();
    let (pf, _) = via_interface::<f32, _>(&af, &p0, &gs);
    let (mut q, mut v) = (p0.clone(), vec![0.0f32; n]);
    for (t, g) in gs.iter().enumerate() {
        af.step_vector(af.at(t as u64 + 1), &mut q, g, &mut v)
            .unwrap();
    }
    assert!(same(&pf, &q), "adafactor {pf:?}");
}

/// An optimizer's data error in a chain (exponentiated gradient and a negative weight) comes
/// before any transform runs: gradients, transform state and parameters are untouched.
#[test]
fn a_chain_refuses_bad_parameters_before_any_transform_runs() {
    let eg_sizes = EgStepSizeConfig::new(0.05).build().unwrap();
    let chain = Chain(eg_sizes, ExpGradConfig::new(0.1).build().unwrap());
    let spec = TensorSpec::vector(2);
    let (mut p, mut g, mut st) = ([0.5f32, -0.1], [1.0f32, 2.0], [1.5f32, 1.5, 0.5, 0.5]);
    let err = chain.update(
        &chain.begin(0.0),
        chain.at(1),
        &spec,
        &mut p,
        &mut g,
        &mut st,
    );
    assert_eq!(err, Err(StepError::NegativeParameter { index: 1 }));
    assert_eq!((p, g, st), ([0.5, -0.1], [1.0, 2.0], [1.5, 1.5, 0.5, 0.5]));
}

/// Clipping only vouches for the gradients' health after a finished observe phase: a round
/// used without it leaves Tiger to scan for itself, so the guard still fires.
#[test]
fn clip_without_an_observe_phase_does_not_vouch_for_the_gradients() {
    let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
    let chain = Chain(clip, TigerConfig::new(1e-2).build().unwrap());
    let spec = TensorSpec::vector(2);
    let (mut p, mut m) = ([1.0f32, 2.0], [0.25f32; 2]);
    let round = chain.begin(0.0); // no observe, no finish
    let o = chain
        .update(
            &round,
            chain.at(1),
            &spec,
            &mut p,
            &mut [f32::NAN, 1.0],
            &mut m,
        )
        .unwrap();
    assert_eq!(o, Outcome::Guarded);
    assert_eq!((p, m), ([0.99, 1.98], [0.25; 2]));
}

/// A per-row lr mode whose row length disagrees with the tensor's columns is refused.
#[test]
fn tiger_refuses_rows_that_disagree_with_the_tensor() {
    let tiger = TigerConfig {
        lr_mode: LrMode::RmsPerRow { cols: 3 },
        ..TigerConfig::new(1e-2)
    }
    .build()
    .unwrap();
    let (mut p, mut m) = ([1.0f32; 12], [0.0f32; 12]);
    for spec in [
        TensorSpec::matrix(2, 6),
        TensorSpec::vector(12).with_kind(ParamKind::Embedding { cols: 4 }),
    ] {
        let err = tiger.update(&(), tiger.at(1), &spec, &mut p, &mut [0.1; 12], &mut m);
        assert!(
            matches!(err, Err(StepError::StageRefused { stage: "tiger", .. })),
            "{err:?}"
        );
    }
    assert_eq!(p, [1.0; 12]);
    tiger
        .update(
            &(),
            tiger.at(1),
            &TensorSpec::matrix(4, 3),
            &mut p,
            &mut [0.1; 12],
            &mut m,
        )
        .unwrap();
}
