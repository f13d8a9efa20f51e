//! The one optimizer interface generic code uses: [`Optimizer`] (optax's `init` / `update`,
//! per tensor, state in caller memory) and what a tensor tells it ([`TensorSpec`]).
//!
//! Every margay optimizer implements [`Optimizer`]; [`super::Chain`] puts gradient
//! [`super::Transform`]s (global-norm clipping, EG step sizes, Flooding's sign) in front of
//! any of them and is an [`Optimizer`] itself. Code written against the trait (the on-device
//! trainer, the shared convergence table, the burn host's adapter, the firmware's golden
//! cases) takes any of them.
//!
//! One update of a model, in order (a round):
//! ```text
//! round = opt.begin(loss)                       the loss only matters to Flooding
//! if Optimizer::OBSERVES:                       e.g. global-norm clipping in a chain
//!     for each tensor: opt.observe(&mut round, spec, grads)
//!     opt.finish(&mut round)
//! for each tensor:     opt.update(&round, step, spec, params, grads, state)
//! ```
//! State: `opt.state_len(spec)` values of type `M` per tensor (f32, or bf16 for the moments:
//! any [`super::Moment`]; a fixed-point type for the fixed-point steps), laid out by the
//! optimizer and zeroed (or set to its start value) by [`Optimizer::init`]. All of a tensor's
//! state shares one type: AdamW with `m` in bf16 and `v` in f32 is the direct
//! [`super::AdamW::step`]. The gradient slice is `&mut`: a chain's transforms rewrite it in
//! place (a plain optimizer leaves it as it was).
//!
//! What runs inside is each optimizer's own step (its SIMD dispatch, its M4F loop): the
//! interface adds the length checks of one call, nothing per parameter.
//!
//! Two traits: [`Stage`] is what does not depend on the state's storage type (names,
//! lengths, the round), [`Optimizer`]`<M, P>` the step for state of type `M` and parameters
//! of type `P`. Writing a new optimizer: implement [`Stage`] (its name, [`Stage::lr`],
//! [`Stage::state_len`], [`Stage::begin`]) and [`Optimizer::apply`]; [`Optimizer::update`]
//! does the checks before calling `apply`.
//!
//! ```
//! use margay::optim::{Optimizer, Outcome, Stage, Step, StepError, TensorSpec};
//!
//! /// Plain SGD: θ ← θ − η·g (no state).
//! struct Sgd { lr: f32 }
//!
//! impl Stage for Sgd {
//!     type Round = ();
//!     const NAME: &'static str = "sgd";
//!     fn lr(&self) -> f32 { self.lr }
//!     fn state_len(&self, _: &TensorSpec) -> usize { 0 }
//!     fn begin(&self, _loss: f32) {}
//! }
//!
//! impl Optimizer for Sgd {
//!     fn apply(&self, _: &(), s: Step, _: &TensorSpec, params: &mut [f32], grads: &mut [f32],
//!              _: &mut [f32]) -> Result<Outcome, StepError> {
//!         for (p, g) in params.iter_mut().zip(grads.iter()) { *p -= s.lr() * g; }
//!         Ok(Outcome::Updated)
//!     }
//! }
//!
//! let sgd = Sgd { lr: 0.5 };
//! let spec = TensorSpec::vector(2);
//! let mut p = [1.0_f32, 2.0];
//! sgd.update(&(), sgd.at(1), &spec, &mut p, &mut [1.0, -1.0], &mut []).unwrap();
//! assert_eq!(p, [0.5, 2.5]);
//! ```

use super::{GradHealth, ParamKind, Schedule, Step, StepError, TigerOutcome};

/// A tensor's shape as the optimizer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Shape {
    /// A vector of `len` values (biases, gains; Adafactor keeps an unfactored moment).
    Vector(usize),
    /// A row-major `rows × cols` matrix (Adafactor factors its second moment).
    Matrix {
        /// Rows.
        rows: usize,
        /// Columns (the row length).
        cols: usize,
    },
}

/// What an optimizer needs to know about one parameter tensor: its shape and its role
/// (the parameter group, see [`super::Grouped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TensorSpec {
    /// The shape.
    pub shape: Shape,
    /// The role in the model.
    pub kind: ParamKind,
}

impl TensorSpec {
    /// A vector of `len` values, kind [`ParamKind::Weight`].
    pub const fn vector(len: usize) -> Self {
        TensorSpec {
            shape: Shape::Vector(len),
            kind: ParamKind::Weight,
        }
    }

    /// A `rows × cols` matrix, kind [`ParamKind::Weight`].
    pub const fn matrix(rows: usize, cols: usize) -> Self {
        TensorSpec {
            shape: Shape::Matrix { rows, cols },
            kind: ParamKind::Weight,
        }
    }

    /// The same tensor with another role.
    pub const fn with_kind(self, kind: ParamKind) -> Self {
        TensorSpec { kind, ..self }
    }

    /// Number of values.
    pub const fn len(&self) -> usize {
        match self.shape {
            Shape::Vector(n) => n,
            Shape::Matrix { rows, cols } => rows.saturating_mul(cols),
        }
    }

    /// `true` for a tensor with no values.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one update did to one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// The parameters moved.
    Updated,
    /// A micro-step of an accumulation window: state changed, parameters did not.
    Accumulated,
    /// Tiger's guard fired: momentum unchanged, parameters shrunk toward the centre.
    Guarded,
    /// Nothing changed ([`Optimizer::skip`] of an optimizer without a guard).
    Skipped,
}

impl From<TigerOutcome> for Outcome {
    fn from(o: TigerOutcome) -> Self {
        match o {
            TigerOutcome::Updated => Outcome::Updated,
            TigerOutcome::Accumulated => Outcome::Accumulated,
            TigerOutcome::Guarded => Outcome::Guarded,
        }
    }
}

/// What every optimizer and chain tells generic code, whatever its state's storage: names,
/// state lengths, the learning rate, and the round's begin / observe / finish (see the
/// module docs). The steps themselves are [`Optimizer`].
pub trait Stage {
    /// What the observe phase gathers over all tensors (`()` for a plain optimizer).
    type Round: Copy;
    /// The stage name used in errors (`"lion"`, `"tiger"`, …).
    const NAME: &'static str;
    /// `true` when a round needs the observe phase (a chain with global-norm clipping).
    const OBSERVES: bool = false;
    /// Stages in this optimizer (a chain counts each transform): error positions.
    const STAGES: u8 = 1;

    /// The configured (base) learning rate.
    fn lr(&self) -> f32;

    /// State values this tensor needs. Meaningful once [`Stage::check`] has accepted the
    /// tensor.
    fn state_len(&self, spec: &TensorSpec) -> usize;

    /// Refuses a tensor this optimizer cannot take ([`StepError::StageRefused`], naming it).
    fn check(&self, spec: &TensorSpec) -> Result<(), StepError> {
        let _ = spec;
        Ok(())
    }

    /// Starts a round. `loss` is the loss of the gradients about to be applied (only
    /// Flooding reads it; pass `0.0` when there is none).
    fn begin(&self, loss: f32) -> Self::Round;

    /// Observe phase: sees one tensor's gradient before any tensor is updated (a no-op
    /// unless [`Stage::OBSERVES`]).
    fn observe(&self, round: &mut Self::Round, spec: &TensorSpec, grads: &[f32]) {
        let _ = (round, spec, grads);
    }

    /// Ends the observe phase (e.g. turns the sum of squares into the clip coefficient).
    fn finish(&self, round: &mut Self::Round) {
        let _ = round;
    }

    /// Micro-steps per parameter update the optimizer accumulates itself (Tiger, SGDM,
    /// AdamW with hidden accumulation); 1 for the others.
    fn accumulation(&self) -> u32 {
        1
    }

    /// Step `t` at the configured learning rate. Every margay optimizer's lr is validated
    /// when built; a user's [`Stage::lr`] that is negative or not finite gives lr 0 (nothing
    /// moves) rather than an invalid [`Step`].
    fn at(&self, t: u64) -> Step {
        Step::new(t, self.lr()).unwrap_or(Step::trusted(t, 0.0))
    }

    /// Step `t` at the configured learning rate times `schedule.factor(t)` (the same rule).
    fn at_scheduled<S: Schedule>(&self, t: u64, schedule: &S) -> Step
    where
        Self: Sized,
    {
        Step::new(t, self.lr() * schedule.factor(t)).unwrap_or(Step::trusted(t, 0.0))
    }
}

/// One optimizer's step, per tensor, with its state in caller memory (see the module docs
/// for the round protocol). `M` is the state's element type, `P` the parameters' and
/// gradients' (f32; f64 or fixed point for the `step_scalar` steps of Lion and Tiger).
pub trait Optimizer<M: Copy + Default = f32, P = f32>: Stage {
    /// Sets a tensor's state to its start value (zero unless the optimizer says otherwise).
    fn init(&self, spec: &TensorSpec, state: &mut [M]) {
        let _ = spec;
        state.fill(M::default());
    }

    /// Refuses parameter values the step cannot take (exponentiated gradient: a negative
    /// weight) before anything is written; generic code that steps several tensors (a chain,
    /// the on-device trainer) calls it first so that an error modifies nothing. Default: all
    /// values are fine.
    fn check_params(&self, params: &[P]) -> Result<(), StepError> {
        let _ = params;
        Ok(())
    }

    /// The step itself, called by [`Optimizer::update`] once the tensor and every length
    /// are checked. Calling it directly is memory-safe (slices are bounds-checked) but an
    /// implementation may then return its own length errors.
    fn apply(
        &self,
        round: &Self::Round,
        s: Step,
        spec: &TensorSpec,
        params: &mut [P],
        grads: &mut [P],
        state: &mut [M],
    ) -> Result<Outcome, StepError>;

    /// [`Optimizer::apply`] told whether these gradients hold NaN/±Inf by a pass made
    /// anyway (clipping's norm): Tiger then reads each gradient once. Default: ignores it.
    #[allow(clippy::too_many_arguments)]
    fn apply_with_health(
        &self,
        round: &Self::Round,
        s: Step,
        spec: &TensorSpec,
        health: GradHealth,
        params: &mut [P],
        grads: &mut [P],
        state: &mut [M],
    ) -> Result<Outcome, StepError> {
        let _ = health;
        self.apply(round, s, spec, params, grads, state)
    }

    /// A micro-step whose gradient cannot be formed (a non-finite sensor reading): Tiger's
    /// guard shrinks the parameters; other optimizers leave everything as it is.
    fn skip(&self, s: Step, spec: &TensorSpec, params: &mut [P], state: &mut [M]) -> Outcome {
        let _ = (s, spec, params, state);
        Outcome::Skipped
    }

    /// One checked step on one tensor: the tensor is [`Stage::check`]ed, `params` and
    /// `grads` must hold `spec.len()` values and `state` exactly `state_len(spec)`; any
    /// mismatch is an error and nothing is modified.
    fn update(
        &self,
        round: &Self::Round,
        s: Step,
        spec: &TensorSpec,
        params: &mut [P],
        grads: &mut [P],
        state: &mut [M],
    ) -> Result<Outcome, StepError> {
        check_buffers(self, spec, params.len(), grads.len(), state.len())?;
        self.apply(round, s, spec, params, grads, state)
    }

    /// [`Optimizer::update`] on arrays: a vector of `N` values (kind `Weight`); parameters
    /// and gradients agree in length by construction, the state's length is checked.
    fn update_array<const N: usize>(
        &self,
        round: &Self::Round,
        s: Step,
        params: &mut [P; N],
        grads: &mut [P; N],
        state: &mut [M],
    ) -> Result<Outcome, StepError> {
        self.update(round, s, &TensorSpec::vector(N), params, grads, state)
    }

    /// [`Optimizer::update`] with the gradients' health known (see
    /// [`Optimizer::apply_with_health`]).
    #[allow(clippy::too_many_arguments)]
    fn update_with_health(
        &self,
        round: &Self::Round,
        s: Step,
        spec: &TensorSpec,
        health: GradHealth,
        params: &mut [P],
        grads: &mut [P],
        state: &mut [M],
    ) -> Result<Outcome, StepError> {
        check_buffers(self, spec, params.len(), grads.len(), state.len())?;
        self.apply_with_health(round, s, spec, health, params, grads, state)
    }
}

/// The checks of [`Optimizer::update`] alone: the tensor, then params and grads against
/// `spec.len()`, then the state against `state_len(spec)`.
pub fn check_buffers<O: Stage + ?Sized>(
    opt: &O,
    spec: &TensorSpec,
    params: usize,
    grads: usize,
    state: usize,
) -> Result<(), StepError> {
    {
        opt.check(spec)?;
        let n = spec.len();
        if params != n || grads != n {
            return Err(StepError::LengthMismatch {
                params,
                grads,
                state,
            });
        }
        let expected = opt.state_len(spec);
        if state != expected {
            return Err(StepError::StateLength {
                expected,
                got: state,
            });
        }
        Ok(())
    }
}

/// Splits `state` into `(first n, the rest)`, or a length error (never a panic).
#[inline(always)]
pub(crate) fn split_state<M>(state: &mut [M], n: usize) -> Result<(&mut [M], &mut [M]), StepError> {
    let got = state.len();
    state
        .split_at_mut_checked(n)
        .ok_or(StepError::StateLength { expected: n, got })
}

/// Floats left unused between a tensor's two moments in the two-moment layout
/// `[m | gap | v]` (AdamW, AdaX, AdamWAccum): 512 when `n ≥ 16,384` and the distance `n`
/// from `m[i]` to `v[i]` would lie within 256 floats (1 KiB) of a multiple of 16,384 (64 KiB),
/// else 0. Why: on x86 (measured here, `tests/examples/adamw_layout.rs`), two streams whose
/// addresses differ by (nearly) a large power of two run AdamW at half speed (64M parameters:
/// 146 ms with `v` right after `m`, 66 ms 256 floats further, 72 ms in separate buffers). The
/// gap is 0 for every tensor below 64 KiB, so microcontrollers never pay it.
pub const fn moment_gap(n: usize) -> usize {
    let r = n % 16_384;
    if n >= 16_384 && (r < 256 || r > 16_384 - 256) {
        512
    } else {
        0
    }
}

/// `(m, v)` of the two-moment layout `[m | gap | v]` for a tensor of `n` values.
#[inline(always)]
pub(crate) fn split_moments<M>(
    state: &mut [M],
    n: usize,
) -> Result<(&mut [M], &mut [M]), StepError> {
    let gap = moment_gap(n);
    let got = state.len();
    let expected = moment_state_len(2, n);
    if got != expected {
        return Err(StepError::StateLength { expected, got });
    }
    let (m, rest) = state.split_at_mut(n);
    Ok((m, rest.get_mut(gap..).unwrap_or_default()))
}

/// `StageRefused` for a lone optimizer (stage 0).
pub(crate) const fn refused(stage: &'static str, reason: &'static str) -> StepError {
    StepError::StageRefused {
        stage,
        index: 0,
        reason,
    }
}

/// [`Stage`] and [`Optimizer`] for an element-wise optimizer whose state is one moment (`m`,
/// `len` values, direct step `step(s, p, g, m)`) or two (`[m | gap | v]`, direct step
/// `step(s, p, g, m, v)`), in any [`super::Moment`] storage: its name, its configured lr, its
/// own accumulation `k` and whether micro-step `t` moves the parameters.
macro_rules! moment_optimizer {
    ($t:ty, $name:literal, moments: $k:tt, lr: $lr:expr, accumulation: $acc:expr, updates: $upd:expr) => {
        impl $crate::optim::Stage for $t {
            type Round = ();
            const NAME: &'static str = $name;
            fn lr(&self) -> f32 {
                let lr: fn(&$t) -> f32 = $lr;
                lr(self)
            }
            fn state_len(&self, spec: &$crate::optim::TensorSpec) -> usize {
                $crate::optim::interface::moment_state_len($k, spec.len())
            }
            fn begin(&self, _loss: f32) {}
            fn accumulation(&self) -> u32 {
                let k: fn(&$t) -> u32 = $acc;
                k(self)
            }
        }

        impl<M: $crate::optim::Moment> $crate::optim::Optimizer<M> for $t {
            #[inline]
            fn apply(
                &self,
                _: &(),
                s: $crate::optim::Step,
                spec: &$crate::optim::TensorSpec,
                params: &mut [f32],
                grads: &mut [f32],
                state: &mut [M],
            ) -> Result<$crate::optim::Outcome, $crate::optim::StepError> {
                $crate::optim::interface::moment_optimizer!(@step $k, self, s, spec, params, grads, state)?;
                let updates: fn(&$t, u64) -> bool = $upd;
                Ok(if updates(self, s.t()) {
                    $crate::optim::Outcome::Updated
                } else {
                    $crate::optim::Outcome::Accumulated
                })
            }
        }
    };
    (@step 1, $o:ident, $s:ident, $spec:ident, $p:ident, $g:ident, $state:ident) => {{
        let _ = $spec;
        $o.step($s, $p, $g, $state)
    }};
    (@step 2, $o:ident, $s:ident, $spec:ident, $p:ident, $g:ident, $state:ident) => {{
        let (m, v) = $crate::optim::interface::split_moments($state, $spec.len())?;
        $o.step($s, $p, $g, m, v)
    }};
}
pub(crate) use moment_optimizer;

/// State values of an element-wise optimizer with `moments` moments on `n` values.
pub(crate) const fn moment_state_len(moments: usize, n: usize) -> usize {
    if moments == 1 {
        n
    } else {
        n.saturating_mul(2).saturating_add(moment_gap(n))
    }
}
