//! Gradient transforms in front of any optimizer, without heap (optax's `chain`).
//!
//! A [`Transform`] rewrites a tensor's gradient in place before the optimizer sees it;
//! [`Chain`]`(transforms, optimizer)` is itself an [`Optimizer`], so generic code takes a
//! chain like any optimizer. Several transforms are a tuple `(a, b)` (itself a transform,
//! applied left to right). What is here:
//!
//! | transform | rewrites `g` to | observes? | state per tensor |
//! |---|---|---|---|
//! | [`GlobalNormClip`] | `coef · g`, coef from the global norm of every tensor | yes | 0 |
//! | [`EgStepSize`] | `ν ⊙ g`, `ν ← ν·exp(clamp(γ·g_{t−1}·g))` | no | `2·len`: `[ν | g_{t−1}]`, ν starts at 1 |
//! | [`Flooding`] | `sign(L − b) · g` (the round's loss) | no | 0 |
//!
//! Global-norm clipping needs every tensor's gradient before any is scaled: that is the
//! round's observe phase ([`Stage::observe`]), which a chain runs only when some stage
//! needs it ([`Stage::OBSERVES`]). An observing transform must be the first stage (it
//! sees the gradients as given); a chain that puts one later does not compile:
//! ```compile_fail
//! use margay::optim::{Chain, ClipConfig, ClipForm, EgStepSizeConfig, Stage, TigerConfig};
//! let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
//! let eg = EgStepSizeConfig::new(0.01).build().unwrap();
//! let late = Chain((eg, clip), TigerConfig::new(1e-3).build().unwrap());
//! let _ = late.begin(0.0); // error: an observing stage must be the chain's first stage
//! ```
//! Once the
//! global norm is known to be finite, every tensor's gradient is known finite, and the chain
//! hands that to the optimizer ([`Optimizer::apply_with_health`]): clip → Tiger reads each
//! gradient once in Tiger's step instead of twice.
//!
//! **Cautious masking** transforms the *update*, not the gradient (it compares the
//! optimizer's direction with `g`), so it is not a transform: it wraps the optimizer,
//! [`CautiousStep`], and sits after every transform, inside the optimizer's step.
//!
//! State layout of `Chain(t, o)` for one tensor: `[t's state | o's state]`, i.e.
//! `t.state_len(spec) + o.state_len(spec)` values; a tuple `(a, b)` lays out `[a | b]`.
//!
//! ```
//! use margay::optim::{Chain, ClipConfig, ClipForm, Optimizer, Stage, TensorSpec, TigerConfig};
//! let clip = ClipConfig::new(1.0, ClipForm::Min).build().unwrap();
//! let opt = Chain(clip, TigerConfig::new(1e-2).build().unwrap());
//! let (a, b) = (TensorSpec::vector(1), TensorSpec::vector(1));
//! let (mut pa, mut pb) = ([1.0_f32], [1.0_f32]);
//! let (mut ga, mut gb) = ([3.0_f32], [4.0_f32]); // global norm 5 → both scaled by 1/5
//! let (mut ma, mut mb) = ([0.0_f32], [0.0_f32]);
//! let mut round = opt.begin(0.0);
//! opt.observe(&mut round, &a, &ga);
//! opt.observe(&mut round, &b, &gb);
//! opt.finish(&mut round);
//! opt.update(&round, opt.at(1), &a, &mut pa, &mut ga, &mut ma).unwrap();
//! opt.update(&round, opt.at(1), &b, &mut pb, &mut gb, &mut mb).unwrap();
//! assert_eq!(round.0.report().norm, 5.0);
//! assert!((ga[0] - 0.6).abs() < 1e-6 && (gb[0] - 0.8).abs() < 1e-6);
//! ```

use super::interface::split_state;
use super::{
    ClipReport, EgStepSize, Flooding, GlobalNormClip, GradHealth, Moment, NormAccumulator,
    Optimizer, Outcome, Stage, Step, StepError, TensorSpec,
};

/// A gradient transform: rewrites one tensor's f32 gradient in place, with state in caller
/// memory in any [`Moment`] storage (see the module docs).
pub trait Transform {
    /// What the observe phase gathers over all tensors (`()` if nothing).
    type Round: Copy;
    /// The stage name used in errors.
    const NAME: &'static str;
    /// `true` when the transform needs every tensor observed before any is rewritten.
    const OBSERVES: bool = false;
    /// Stages (a tuple counts both).
    const STAGES: u8 = 1;

    /// State values this tensor needs (0 by default).
    fn state_len(&self, spec: &TensorSpec) -> usize {
        let _ = spec;
        0
    }

    /// Refuses a tensor the transform cannot take (a `StageRefused` naming it).
    fn check(&self, spec: &TensorSpec) -> Result<(), StepError> {
        let _ = spec;
        Ok(())
    }

    /// Sets a tensor's state to its start value (zero by default).
    fn init<M: Moment>(&self, spec: &TensorSpec, state: &mut [M]) {
        let _ = spec;
        state.fill(M::default());
    }

    /// Starts a round; `loss` is the loss of these gradients (Flooding reads it).
    fn begin(&self, loss: f32) -> Self::Round;

    /// Observe phase (see [`Stage::observe`]).
    fn observe(&self, round: &mut Self::Round, spec: &TensorSpec, grads: &[f32]) {
        let _ = (round, spec, grads);
    }

    /// Ends the observe phase.
    fn finish(&self, round: &mut Self::Round) {
        let _ = round;
    }

    /// Rewrites `grads` (lengths already checked by the chain). `health` is what is known of
    /// the incoming gradient's NaN/Inf; returns what is known of the outgoing one.
    fn apply<M: Moment>(
        &self,
        round: &Self::Round,
        spec: &TensorSpec,
        grads: &mut [f32],
        state: &mut [M],
        health: Option<GradHealth>,
    ) -> Option<GradHealth>;
}

/// Transforms `.0` (one transform, or a tuple of them) in front of the optimizer `.1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chain<T, O>(pub T, pub O);

/// `(the first n values, the rest)` of a chain's state, `n` clamped to its length (the
/// lengths were checked by `update`; a direct call with a short state never panics).
#[inline(always)]
fn split_first<M>(state: &mut [M], n: usize) -> (&mut [M], &mut [M]) {
    let n = n.min(state.len());
    state.split_at_mut(n)
}

/// Prefixes an error from a later stage with the position of the stages before it.
fn shifted(e: StepError, by: u8) -> StepError {
    match e {
        StepError::StageRefused {
            stage,
            index,
            reason,
        } => StepError::StageRefused {
            stage,
            index: index.saturating_add(by),
            reason,
        },
        e => e,
    }
}

/// Compile-time check that a later stage does not observe: it would see gradients as
/// given, not as the stages before it rewrote them.
struct LaterOptimizer<O>(core::marker::PhantomData<O>);
impl<O: Stage> LaterOptimizer<O> {
    const DOES_NOT_OBSERVE: () = assert!(
        !O::OBSERVES,
        "an observing stage (global-norm clipping) must be the chain's first stage"
    );
}

/// [`LaterOptimizer`] for the second transform of a tuple.
struct LaterTransform<B>(core::marker::PhantomData<B>);
impl<B: Transform> LaterTransform<B> {
    const DOES_NOT_OBSERVE: () = assert!(
        !B::OBSERVES,
        "an observing stage (global-norm clipping) must be the chain's first stage"
    );
}

impl<T: Transform, O: Stage> Stage for Chain<T, O> {
    type Round = (T::Round, O::Round);
    const NAME: &'static str = O::NAME;
    const OBSERVES: bool = T::OBSERVES || O::OBSERVES;
    const STAGES: u8 = T::STAGES + O::STAGES;

    fn lr(&self) -> f32 {
        self.1.lr()
    }

    fn state_len(&self, spec: &TensorSpec) -> usize {
        self.0
            .state_len(spec)
            .saturating_add(self.1.state_len(spec))
    }

    fn check(&self, spec: &TensorSpec) -> Result<(), StepError> {
        self.0.check(spec)?;
        self.1.check(spec).map_err(|e| shifted(e, T::STAGES))
    }

    fn begin(&self, loss: f32) -> Self::Round {
        let () = LaterOptimizer::<O>::DOES_NOT_OBSERVE;
        (self.0.begin(loss), self.1.begin(loss))
    }

    fn observe(&self, round: &mut Self::Round, spec: &TensorSpec, grads: &[f32]) {
        self.0.observe(&mut round.0, spec, grads);
        self.1.observe(&mut round.1, spec, grads);
    }

    fn finish(&self, round: &mut Self::Round) {
        self.0.finish(&mut round.0);
        self.1.finish(&mut round.1);
    }

    fn accumulation(&self) -> u32 {
        self.1.accumulation()
    }
}

impl<M: Moment, T: Transform, O: Optimizer<M>> Optimizer<M> for Chain<T, O> {
    fn init(&self, spec: &TensorSpec, state: &mut [M]) {
        let (a, b) = split_first(state, self.0.state_len(spec));
        self.0.init(spec, a);
        self.1.init(spec, b);
    }

    #[inline]
    fn apply(
        &self,
        round: &Self::Round,
        s: Step,
        spec: &TensorSpec,
        params: &mut [f32],
        grads: &mut [f32],
        state: &mut [M],
    ) -> Result<Outcome, StepError> {
        run(self, round, s, spec, None, params, grads, state)
    }

    #[inline]
    fn apply_with_health(
        &self,
        round: &Self::Round,
        s: Step,
        spec: &TensorSpec,
        health: GradHealth,
        params: &mut [f32],
        grads: &mut [f32],
        state: &mut [M],
    ) -> Result<Outcome, StepError> {
        run(self, round, s, spec, Some(health), params, grads, state)
    }

    fn check_params(&self, params: &[f32]) -> Result<(), StepError> {
        self.1.check_params(params)
    }

    fn skip(&self, s: Step, spec: &TensorSpec, params: &mut [f32], state: &mut [M]) -> Outcome {
        self.1.skip(
            s,
            spec,
            params,
            split_first(state, self.0.state_len(spec)).1,
        )
    }
}

/// One tensor through a chain: the transforms, then the optimizer (told the gradient's
/// health when a transform knows it).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run<M: Moment, T: Transform, O: Optimizer<M>>(
    chain: &Chain<T, O>,
    round: &(T::Round, O::Round),
    s: Step,
    spec: &TensorSpec,
    health: Option<GradHealth>,
    params: &mut [f32],
    grads: &mut [f32],
    state: &mut [M],
) -> Result<Outcome, StepError> {
    // A data error of the optimizer comes before any transform rewrites anything.
    chain.1.check_params(params)?;
    let (ts, os) = split_state(state, chain.0.state_len(spec))?;
    match chain.0.apply(&round.0, spec, grads, ts, health) {
        Some(h) => chain
            .1
            .apply_with_health(&round.1, s, spec, h, params, grads, os),
        None => chain.1.apply(&round.1, s, spec, params, grads, os),
    }
}

/// Two transforms applied left to right; state `[a | b]`.
impl<A: Transform, B: Transform> Transform for (A, B) {
    type Round = (A::Round, B::Round);
    const NAME: &'static str = A::NAME;
    const OBSERVES: bool = A::OBSERVES || B::OBSERVES;
    const STAGES: u8 = A::STAGES + B::STAGES;

    fn state_len(&self, spec: &TensorSpec) -> usize {
        self.0
            .state_len(spec)
            .saturating_add(self.1.state_len(spec))
    }

    fn check(&self, spec: &TensorSpec) -> Result<(), StepError> {
        self.0.check(spec)?;
        self.1.check(spec).map_err(|e| shifted(e, A::STAGES))
    }

    fn init<M: Moment>(&self, spec: &TensorSpec, state: &mut [M]) {
        let (a, b) = split_first(state, self.0.state_len(spec));
        self.0.init(spec, a);
        self.1.init(spec, b);
    }

    fn begin(&self, loss: f32) -> Self::Round {
        let () = LaterTransform::<B>::DOES_NOT_OBSERVE;
        (self.0.begin(loss), self.1.begin(loss))
    }

    fn observe(&self, round: &mut Self::Round, spec: &TensorSpec, grads: &[f32]) {
        self.0.observe(&mut round.0, spec, grads);
        self.1.observe(&mut round.1, spec, grads);
    }

    fn finish(&self, round: &mut Self::Round) {
        self.0.finish(&mut round.0);
        self.1.finish(&mut round.1);
    }

    fn apply<M: Moment>(
        &self,
        round: &Self::Round,
        spec: &TensorSpec,
        grads: &mut [f32],
        state: &mut [M],
        health: Option<GradHealth>,
    ) -> Option<GradHealth> {
        let (a, b) = split_first(state, self.0.state_len(spec));
        let h = self.0.apply(&round.0, spec, grads, a, health);
        self.1.apply(&round.1, spec, grads, b, h)
    }
}

/// What global-norm clipping learns in a round's observe phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClipRound {
    acc: NormAccumulator,
    coef: f32,
    /// `finish` ran: the norm covers the observed tensors and `coef` is set.
    finished: bool,
}

impl ClipRound {
    /// The global norm and the coefficient applied to every gradient (valid after
    /// `finish`).
    pub fn report(&self) -> ClipReport {
        ClipReport {
            norm: self.acc.norm(),
            coef: self.coef,
        }
    }
}

/// Global-norm clipping as a chain's first stage (see [`GlobalNormClip`] for the forms and
/// the non-finite rule: a non-finite norm leaves every gradient as it is).
impl Transform for GlobalNormClip {
    type Round = ClipRound;
    const NAME: &'static str = "clip";
    const OBSERVES: bool = true;

    fn begin(&self, _loss: f32) -> ClipRound {
        ClipRound {
            acc: NormAccumulator::new(),
            coef: 1.0,
            finished: false,
        }
    }

    fn observe(&self, round: &mut ClipRound, _: &TensorSpec, grads: &[f32]) {
        round.acc.add(grads);
    }

    fn finish(&self, round: &mut ClipRound) {
        round.coef = self.coefficient(round.acc.norm());
        round.finished = true;
    }

    #[inline]
    fn apply<M: Moment>(
        &self,
        round: &ClipRound,
        _: &TensorSpec,
        grads: &mut [f32],
        _: &mut [M],
        health: Option<GradHealth>,
    ) -> Option<GradHealth> {
        if round.coef != 1.0 {
            super::clip::scale(grads, round.coef);
        }
        // A finite global norm means every observed tensor was finite, and coef ≤ 1 keeps it
        // so. Without a finished observe phase nothing is known: the optimizer checks itself.
        if round.finished && round.acc.health().is_finite() {
            Some(GradHealth::FINITE)
        } else {
            health
        }
    }
}

/// EG step sizes (Su's simplified form, see [`EgStepSize`]); state `[ν | g_{t−1}]`.
impl Transform for EgStepSize {
    type Round = ();
    const NAME: &'static str = "eg-step-size";

    fn state_len(&self, spec: &TensorSpec) -> usize {
        spec.len().saturating_mul(2)
    }

    fn init<M: Moment>(&self, spec: &TensorSpec, state: &mut [M]) {
        let n = spec.len().min(state.len());
        let (nu, prev) = state.split_at_mut(n);
        nu.fill(M::store(1.0));
        prev.fill(M::default());
    }

    fn begin(&self, _loss: f32) {}

    fn apply<M: Moment>(
        &self,
        _: &(),
        spec: &TensorSpec,
        grads: &mut [f32],
        state: &mut [M],
        _: Option<GradHealth>,
    ) -> Option<GradHealth> {
        let n = spec.len().min(state.len());
        let (nu, prev) = state.split_at_mut(n);
        // Lengths were checked by the chain; a wrong call changes nothing and says nothing
        // is known of the gradient's health.
        let _ = EgStepSize::apply(self, grads, nu, prev);
        None
    }
}

/// Flooding's sign: the gradient times `sign(L − b)` for the round's loss `L`.
impl Transform for Flooding {
    type Round = f32;
    const NAME: &'static str = "flooding";

    fn begin(&self, loss: f32) -> f32 {
        self.grad_scale(loss)
    }

    fn apply<M: Moment>(
        &self,
        scale: &f32,
        _: &TensorSpec,
        grads: &mut [f32],
        _: &mut [M],
        health: Option<GradHealth>,
    ) -> Option<GradHealth> {
        if *scale != 1.0 {
            super::clip::scale(grads, *scale);
        }
        // ±1 keeps NaN/Inf where they were; 0 or a NaN loss changes them.
        if *scale == 1.0 || *scale == -1.0 {
            health
        } else {
            None
        }
    }
}

/// Cautious masking around Lion or Tiger ([`super::Lion::step_cautious`],
/// [`super::Tiger::step_cautious`]): it changes the optimizer's update, so it wraps the
/// optimizer instead of standing in front of it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CautiousStep<O>(pub O, pub super::Cautious);

macro_rules! cautious {
    ($opt:ty, $name:literal, $outcome:expr) => {
        impl Stage for CautiousStep<$opt> {
            type Round = ();
            const NAME: &'static str = $name;
            fn lr(&self) -> f32 {
                self.0.lr()
            }
            fn state_len(&self, spec: &TensorSpec) -> usize {
                self.0.state_len(spec)
            }
            fn check(&self, spec: &TensorSpec) -> Result<(), StepError> {
                Stage::check(&self.0, spec)
            }
            fn begin(&self, _loss: f32) {}
            fn accumulation(&self) -> u32 {
                self.0.accumulation()
            }
        }

        impl<M: Moment> Optimizer<M> for CautiousStep<$opt> {
            fn apply(
                &self,
                _: &(),
                s: Step,
                _: &TensorSpec,
                params: &mut [f32],
                grads: &mut [f32],
                m: &mut [M],
            ) -> Result<Outcome, StepError> {
                self.0
                    .step_cautious(s, params, grads, m, self.1)
                    .map($outcome)
            }
            fn skip(&self, s: Step, spec: &TensorSpec, params: &mut [f32], m: &mut [M]) -> Outcome {
                Optimizer::<M>::skip(&self.0, s, spec, params, m)
            }
        }
    };
}

cautious!(super::Lion, "lion-cautious", |()| Outcome::Updated);
cautious!(super::Tiger, "tiger-cautious", Outcome::from);
