//! Tiger: Tight-fisted Optimizer (Su Jianlin, kexue 9512; `bojone/tiger`).
//!
//! Intuition: Lion with one coefficient (β₁ = β₂ = β), so the momentum is the only state
//! and gradient accumulation over `k` micro-steps needs no extra buffer; the learning rate
//! is tied to the scale of each parameter, and a NaN gradient shrinks the weights instead of
//! destroying them.
//!
//! | config field | symbol | default | source |
//! |---|---|---|---|
//! | `lr` | α (global, relative in the `Rms*` modes) | 1e-3 | post: max α ∈ [1e-3, 2e-3] |
//! | `beta` | β | 0.965 | `tiger.py` (NLP; CV: 0.945) |
//! | `weight_decay` | λ | 0.01 | post |
//! | `accumulation` | k | 1 | |
//! | `lr_mode` | η from α | [`LrMode::Absolute`] | see [`LrMode`] |
//! | `lr_scale` | group multiplier | 1.0 | 0.5 for bias/norm in the preset |
//! | `nan_shrink` | s | 0.99 | `tiger.py` `shrink_ratio` |
//! | `nan_center` | c | 0.0 | 1.0 for norm gains |
//! | `guard` | which gradients trigger the guard | [`Guard::NonFinite`] | see [`Guard`] |
//!
//! Update, micro-steps t = 1, 2, … (`χ(t) = 1` when `t ≡ 0 mod k`):
//! ```text
//! if any gradient is NaN (or ±Inf, see Guard):        the guard
//!     m unchanged;  θ ← (θ − c)·s + c                (on any micro-step)
//! else:
//!     m ← b·m + (1−β)/k·g      b = β on the first micro-step of a window, else 1
//!     if χ(t):  θ ← θ·(1 − η·λ) − η·sign(m)          sign(0) = 0
//! ```
//! with `η = lr·lr_scale·mode(θ)` taken before the step. State: `m`, one moment per
//! parameter (f32 or bf16: 2 bytes). With k = 1 Tiger equals Lion(β, β).
//!
//! Inf gradients: the reference checks NaN only. An Inf gradient makes `m` infinite, and
//! a later `Inf − Inf` turns it into NaN, after which `sign(m)` is NaN and the parameter
//! is lost. margay's default [`Guard::NonFinite`] therefore treats ±Inf like NaN (the rule
//! PyTorch's `GradScaler` uses to skip a step); [`Guard::NanOnly`] follows the reference.
//!
//! ```
//! use margay::optim::{TigerConfig, TigerOutcome};
//! let tiger = TigerConfig { accumulation: 2, ..TigerConfig::new(0.01) }.build().unwrap();
//! let (mut p, mut m) = ([1.0_f32], [0.0_f32]);
//! assert_eq!(tiger.step_array(tiger.at(1), &mut p, &[1.0], &mut m), Ok(TigerOutcome::Accumulated));
//! assert_eq!(p, [1.0]);
//! assert_eq!(tiger.step_array(tiger.at(2), &mut p, &[1.0], &mut m), Ok(TigerOutcome::Updated));
//! assert_eq!(p, [1.0 * (1.0 - 0.01 * 0.01) - 0.01]);
//! ```

use super::error::{
    finite, non_negative, open_closed_unit, positive, unit_beta, ConfigError, StepError,
};
use super::GradHealth;
use super::{check_lengths, Moment, Schedule, Step};
use crate::math::{sign, sqrt};
use crate::quant::Scalar;

/// How Tiger turns the global lr α into a per-tensor step size η.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LrMode {
    /// η = α (biases, norm gains; the preset uses `lr_scale = 0.5`).
    Absolute,
    /// η = α·RMS(θ) over the whole tensor (matrix kernels).
    Rms,
    /// η = α·RMS(row) for each row of `cols` elements (embeddings, `tiger.py`).
    RmsPerRow {
        /// Row length.
        cols: usize,
    },
    /// η = α/√d, a constant stand-in for RMS (Su's comment; for MCUs).
    InvSqrtDim {
        /// The hidden size d.
        dim: usize,
    },
}

/// Which gradients fire Tiger's skip-and-shrink guard (checked per tensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Guard {
    /// Any NaN or ±Inf element (default).
    NonFinite,
    /// Any NaN element, as in `tiger.py`; Inf passes through (see the module docs).
    NanOnly,
}

/// What one Tiger micro-step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TigerOutcome {
    /// The gradient was added to the momentum; parameters unchanged.
    Accumulated,
    /// Last micro-step of a window: parameters updated.
    Updated,
    /// The guard fired: momentum unchanged, parameters shrunk toward the centre.
    Guarded,
}

/// Tiger hyper-parameters (see the module docs for symbols and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TigerConfig {
    /// Global learning rate α (the schedule multiplies it).
    pub lr: f32,
    /// Momentum coefficient β.
    pub beta: f32,
    /// Decoupled weight decay λ (multiplied by η).
    pub weight_decay: f32,
    /// Micro-steps per update k (>= 1).
    pub accumulation: u32,
    /// How η follows from α.
    pub lr_mode: LrMode,
    /// Group multiplier on α (0.5 for biases and norm gains in the preset).
    pub lr_scale: f32,
    /// Shrink ratio s of the guard, in (0, 1].
    pub nan_shrink: f32,
    /// Centre c of the guard's shrink (1 for norm gains).
    pub nan_center: f32,
    /// Which gradients fire the guard.
    pub guard: Guard,
}

impl Default for TigerConfig {
    fn default() -> Self {
        Self::new(1e-3)
    }
}

impl TigerConfig {
    /// Defaults with the given global learning rate.
    pub const fn new(lr: f32) -> Self {
        TigerConfig {
            lr,
            beta: 0.965,
            weight_decay: 0.01,
            accumulation: 1,
            lr_mode: LrMode::Absolute,
            lr_scale: 1.0,
            nan_shrink: 0.99,
            nan_center: 0.0,
            guard: Guard::NonFinite,
        }
    }

    /// Validates every field (lr, lr_scale > 0; β ∈ [0, 1); λ >= 0; k, cols, dim >= 1;
    /// s ∈ (0, 1]; c finite).
    pub fn build(self) -> Result<Tiger, ConfigError> {
        positive("lr", self.lr)?;
        positive("lr_scale", self.lr_scale)?;
        unit_beta("beta", self.beta)?;
        non_negative("weight_decay", self.weight_decay)?;
        if self.accumulation == 0 {
            return Err(ConfigError::Zero {
                field: "accumulation",
            });
        }
        let mode_factor = match self.lr_mode {
            LrMode::RmsPerRow { cols: 0 } => return Err(ConfigError::Zero { field: "cols" }),
            LrMode::InvSqrtDim { dim: 0 } => return Err(ConfigError::Zero { field: "dim" }),
            LrMode::InvSqrtDim { dim } => 1.0 / sqrt(dim as f32),
            _ => 1.0,
        };
        open_closed_unit("nan_shrink", self.nan_shrink)?;
        finite("nan_center", self.nan_center)?;
        let add = (1.0 - self.beta) / self.accumulation as f32;
        Ok(Tiger {
            cfg: self,
            add,
            mode_factor,
        })
    }
}

/// A validated Tiger optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tiger {
    cfg: TigerConfig,
    /// (1 − β)/k, added per micro-step.
    add: f32,
    /// 1/√d for `InvSqrtDim`, else 1.
    mode_factor: f32,
}

impl Tiger {
    /// The validated configuration.
    pub const fn config(&self) -> &TigerConfig {
        &self.cfg
    }

    /// Micro-step `t` at the configured learning rate.
    pub const fn at(&self, t: u64) -> Step {
        Step::trusted(t, self.cfg.lr)
    }

    /// Micro-step `t` at the configured learning rate times `schedule.factor(t)`.
    pub fn at_scheduled<S: Schedule>(&self, t: u64, schedule: &S) -> Step {
        Step::trusted(t, self.cfg.lr * schedule.factor(t))
    }

    /// `(1 − β)/k`: the weight of each micro-step's gradient in the momentum.
    pub const fn momentum_add(&self) -> f32 {
        self.add
    }

    /// The factor that turns `lr·lr_scale` into η before any RMS: `1/√d` for
    /// [`LrMode::InvSqrtDim`], else 1.
    pub const fn mode_factor(&self) -> f32 {
        self.mode_factor
    }

    /// `true` when micro-step `t` updates the parameters (`t ≡ 0 mod k`).
    pub const fn is_update_step(&self, t: u64) -> bool {
        super::is_window_end(t, self.cfg.accumulation)
    }

    /// One Tiger micro-step on slices. A length mismatch (or, in `RmsPerRow` mode, a length
    /// that is not a multiple of `cols`) returns an error and modifies nothing.
    ///
    /// Reads the gradients twice: once for the guard (every gradient must be known finite
    /// before any weight moves), once for the update. See [`Tiger::step_with_health`].
    // Inlined into each caller, so a caller's constants (lengths, lr mode, k) fold as they
    // did before the interface added call sites (M4F instruction counts, `insncount.sh`);
    // on the soft-float Cortex-M0 (`eabi`) one copy, to save its 256 KiB of flash.
    #[cfg_attr(not(target_abi = "eabi"), inline(always))]
    pub fn step<M: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
    ) -> Result<TigerOutcome, StepError> {
        self.check(params.len(), grads.len(), m.len())?;
        Ok(crate::simd::vectorized(TigerLoop(
            self, s, None, params, grads, m,
        )))
    }

    /// [`Tiger::step`] with the guard's answer supplied by the caller: `health` must come from
    /// a pass over exactly these gradients (e.g. [`super::NormAccumulator::health`] from the
    /// clipping pass, or [`GradHealth::scan`]). The step then reads each gradient once.
    ///
    /// A `health` that wrongly says finite is not undefined behaviour: a NaN gradient then
    /// flows into the momentum and the weight, as in Lion.
    #[cfg_attr(not(target_abi = "eabi"), inline(always))]
    pub fn step_with_health<M: Moment>(
        &self,
        s: Step,
        health: GradHealth,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
    ) -> Result<TigerOutcome, StepError> {
        self.check(params.len(), grads.len(), m.len())?;
        Ok(crate::simd::vectorized(TigerLoop(
            self,
            s,
            Some(health),
            params,
            grads,
            m,
        )))
    }

    /// One Tiger micro-step with **cautious masking** (Liang et al. 2024, arXiv 2411.16085;
    /// see [`super::Cautious`]): on an update micro-step, coordinates whose update `sign(m)`
    /// disagrees in sign with this micro-step's gradient are scaled by the factor (0:
    /// frozen), and every scale is divided by the mean scale. The guard, the accumulation
    /// and the lr modes are Tiger's. A scalar loop: slower than [`Tiger::step`]. Errors as
    /// [`Tiger::step`].
    pub fn step_cautious<M: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
        cautious: super::Cautious,
    ) -> Result<TigerOutcome, StepError> {
        self.check(params.len(), grads.len(), m.len())?;
        let cautious_factor = cautious.factor();
        let health = GradHealth::scan(grads);
        let bad = match self.cfg.guard {
            Guard::NonFinite => !health.is_finite(),
            Guard::NanOnly => health.has_nan(),
        };
        if bad || !self.is_update_step(s.t) {
            return self.step_with_health(s, health, params, grads, m);
        }
        let (b, a, lam) = (self.momentum_decay(s.t), self.add, self.cfg.weight_decay);
        let scale = super::cautious_scale(
            grads
                .iter()
                .zip(m.iter())
                .map(|(&g, m)| (sign(b * m.load() + a * g), g)),
            cautious_factor,
        );
        self.per_lr_group(s, params, grads, m, move |p, g, m, eta| {
            let decay = 1.0 - eta * lam;
            for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
                let mt = b * m.load() + a * g;
                *m = M::store(mt);
                let u = sign(mt);
                *p = *p * decay - eta * (u * super::cautious_weight(u, g, cautious_factor, scale));
            }
        });
        Ok(TigerOutcome::Updated)
    }

    fn check(&self, params: usize, grads: usize, m: usize) -> Result<(), StepError> {
        check_lengths(params, grads, m)?;
        if let LrMode::RmsPerRow { cols } = self.cfg.lr_mode {
            if !params.is_multiple_of(cols) {
                return Err(StepError::RowMismatch { len: params, cols });
            }
        }
        Ok(())
    }

    /// One Tiger micro-step on arrays. Only `RmsPerRow` with `N` not a multiple of `cols`
    /// can fail (nothing is modified then).
    pub fn step_array<M: Moment, const N: usize>(
        &self,
        s: Step,
        params: &mut [f32; N],
        grads: &[f32; N],
        m: &mut [M; N],
    ) -> Result<TigerOutcome, StepError> {
        self.step(s, params, grads, m)
    }

    /// One Tiger micro-step in any [`Scalar`] format: f32 (bit-identical to [`Tiger::step`]
    /// with f32 moments), bf16/f16, or fixed point such as [`crate::quant::I8F24`] on an
    /// FPU-less core, where every operation is saturating integer arithmetic (no float at
    /// all, so the same bits on every target). Parameters, gradients and momentum share the
    /// format. The learning rate and coefficients are converted once per call (nearest,
    /// saturating), so pick a format whose step resolves `lr·(1 − β)/k` (I8F24: 6e-8).
    ///
    /// `LrMode::Rms`/`RmsPerRow` take the RMS in the format itself (an integer square root
    /// in fixed point). The guard fires on any non-finite gradient as in [`Tiger::step`]
    /// (fixed point has none; see [`Tiger::shrink_scalar`] for a non-finite input). A length
    /// mismatch returns an error and modifies nothing.
    pub fn step_scalar<S: Scalar>(
        &self,
        s: Step,
        params: &mut [S],
        grads: &[S],
        m: &mut [S],
    ) -> Result<TigerOutcome, StepError> {
        self.check(params.len(), grads.len(), m.len())?;
        let cfg = &self.cfg;
        let bad = match cfg.guard {
            Guard::NonFinite => grads.iter().any(|g| !g.is_finite()),
            // NaN is the only value unequal to itself (PartialOrd: unordered with 0).
            Guard::NanOnly => grads.iter().any(|g| g.partial_cmp(&S::ZERO).is_none()),
        };
        if bad {
            return Ok(self.shrink_scalar(params));
        }
        let b = S::from_f32(self.momentum_decay(s.t));
        let a = S::from_f32(self.add);
        if !self.is_update_step(s.t) {
            for (m, &g) in m.iter_mut().zip(grads) {
                *m = b.times(*m).plus(a.times(g));
            }
            return Ok(TigerOutcome::Accumulated);
        }
        let lam = S::from_f32(cfg.weight_decay);
        self.per_lr_group(s, params, grads, m, |p, g, m, eta| {
            let decay = S::ONE.minus(eta.times(lam));
            for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
                let mt = b.times(*m).plus(a.times(g));
                *m = mt;
                *p = p.times(decay).minus(eta.times(mt.sign()));
            }
        });
        Ok(TigerOutcome::Updated)
    }

    /// The guard alone, `θ ← (θ − c)·s + c`, in any [`Scalar`] format: for a micro-step
    /// whose gradient cannot be formed (e.g. a non-finite sensor reading on a fixed-point
    /// core, where the gradient would otherwise saturate silently). Momentum is untouched.
    pub fn shrink_scalar<S: Scalar>(&self, params: &mut [S]) -> TigerOutcome {
        let (sh, c) = (
            S::from_f32(self.cfg.nan_shrink),
            S::from_f32(self.cfg.nan_center),
        );
        for p in params.iter_mut() {
            *p = p.minus(c).times(sh).plus(c);
        }
        TigerOutcome::Guarded
    }

    /// The momentum's factor on micro-step `t`: β on the first micro-step of an
    /// accumulation window, else 1. Public so that tensor back ends (the host's burn
    /// optimizer) take the window rule from here.
    #[inline(always)]
    pub fn momentum_decay(&self, t: u64) -> f32 {
        super::window_decay(t, self.cfg.accumulation, self.cfg.beta)
    }

    /// Calls `update(params, grads, m, η)` once per group that shares a step size η: the
    /// whole tensor (`Absolute`, `InvSqrtDim`, `Rms`) or each row (`RmsPerRow`). In f32,
    /// `from_f32` is the identity and `times` is `*`, so η has the same bits in both steps.
    #[inline(always)]
    fn per_lr_group<S: Scalar, M>(
        &self,
        s: Step,
        params: &mut [S],
        grads: &[S],
        m: &mut [M],
        mut update: impl FnMut(&mut [S], &[S], &mut [M], S),
    ) {
        let alpha = s.lr * self.cfg.lr_scale;
        match self.cfg.lr_mode {
            LrMode::Absolute | LrMode::InvSqrtDim { .. } => {
                update(params, grads, m, S::from_f32(alpha * self.mode_factor))
            }
            LrMode::Rms => {
                let eta = S::from_f32(alpha).times(S::rms(params));
                update(params, grads, m, eta)
            }
            LrMode::RmsPerRow { cols } => {
                let rows = params
                    .chunks_mut(cols)
                    .zip(grads.chunks(cols))
                    .zip(m.chunks_mut(cols));
                for ((p, g), m) in rows {
                    let eta = S::from_f32(alpha).times(S::rms(p));
                    update(p, g, m, eta);
                }
            }
        }
    }

    #[inline(always)]
    fn kernel<M: Moment>(
        &self,
        s: Step,
        health: GradHealth,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
    ) -> TigerOutcome {
        let cfg = &self.cfg;
        let bad = match cfg.guard {
            Guard::NonFinite => !health.is_finite(),
            Guard::NanOnly => health.has_nan(),
        };
        if bad {
            return self.shrink_scalar(params);
        }
        let decay_m = self.momentum_decay(s.t);
        if !self.is_update_step(s.t) {
            accumulate(m, grads, decay_m, self.add);
            return TigerOutcome::Accumulated;
        }
        let (add, weight_decay) = (self.add, cfg.weight_decay);
        self.per_lr_group(s, params, grads, m, move |p, g, m, eta| {
            update(p, g, m, decay_m, add, eta, weight_decay)
        });
        TigerOutcome::Updated
    }
}

/// One Tiger micro-step as a [`crate::simd::Kernel`]; `None` health: scan first.
struct TigerLoop<'a, M>(
    &'a Tiger,
    Step,
    Option<GradHealth>,
    &'a mut [f32],
    &'a [f32],
    &'a mut [M],
);

impl<M: Moment> crate::simd::Kernel for TigerLoop<'_, M> {
    type Out = TigerOutcome;
    #[inline(always)]
    fn run(self) -> TigerOutcome {
        let TigerLoop(tiger, s, health, params, grads, m) = self;
        let health = match health {
            Some(h) => h,
            None => GradHealth::scan_inline(grads),
        };
        tiger.kernel(s, health, params, grads, m)
    }
}

/// `m ← b·m + a·g` (a micro-step that does not update θ).
#[inline(always)]
fn accumulate<M: Moment>(m: &mut [M], grads: &[f32], b: f32, a: f32) {
    for (m, &g) in m.iter_mut().zip(grads) {
        *m = M::store(b * m.load() + a * g);
    }
}

/// `m ← b·m + a·g;  θ ← θ·(1 − η·λ) − η·sign(m)`: one pass, reads θ, g, m; writes θ, m.
#[inline(always)]
fn update<M: Moment>(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [M],
    b: f32,
    a: f32,
    eta: f32,
    weight_decay: f32,
) {
    let decay = 1.0 - eta * weight_decay;
    // f32 momentum on Cortex-M4F: an assembly kernel takes whole blocks (same bits).
    let done = match M::as_f32_mut(m) {
        Some(m32) => crate::simd::tiger_update_f32(params, grads, m32, b, a, decay, eta),
        None => 0,
    };
    let (params, grads, m) = (&mut params[done..], &grads[done..], &mut m[done..]);
    for ((p, &g), m) in params.iter_mut().zip(grads).zip(m.iter_mut()) {
        let mt = b * m.load() + a * g;
        *m = M::store(mt);
        *p = *p * decay - eta * sign(mt);
    }
}

/// Tiger's names and lengths for the [`super::Optimizer`] interface.
impl super::Stage for Tiger {
    type Round = ();
    const NAME: &'static str = "tiger";
    fn lr(&self) -> f32 {
        self.cfg.lr
    }
    fn state_len(&self, spec: &super::TensorSpec) -> usize {
        spec.len()
    }
    fn begin(&self, _loss: f32) {}
    fn check(&self, spec: &super::TensorSpec) -> Result<(), StepError> {
        let LrMode::RmsPerRow { cols } = self.cfg.lr_mode else {
            return Ok(());
        };
        let shape_cols = match (spec.shape, spec.kind) {
            (_, super::ParamKind::Embedding { cols: c }) => Some(c),
            (super::Shape::Matrix { cols: c, .. }, _) => Some(c),
            _ => None,
        };
        if shape_cols.is_some_and(|c| c != cols) {
            return Err(super::interface::refused(
                "tiger",
                "RmsPerRow's row length differs from the tensor's rows",
            ));
        }
        if !spec.len().is_multiple_of(cols) {
            return Err(super::interface::refused(
                "tiger",
                "RmsPerRow needs a length that is a multiple of cols",
            ));
        }
        Ok(())
    }
    fn accumulation(&self) -> u32 {
        self.cfg.accumulation
    }
}
/// Tiger through the interface: state `m` (`spec.len()` values); `skip` is the guard.
impl<M: Moment> super::Optimizer<M> for Tiger {
    #[inline]
    fn apply(
        &self,
        _: &(),
        s: Step,
        _: &super::TensorSpec,
        params: &mut [f32],
        grads: &mut [f32],
        state: &mut [M],
    ) -> Result<super::Outcome, StepError> {
        self.step(s, params, grads, state).map(Into::into)
    }
    #[inline]
    fn apply_with_health(
        &self,
        _: &(),
        s: Step,
        _: &super::TensorSpec,
        health: GradHealth,
        params: &mut [f32],
        grads: &mut [f32],
        m: &mut [M],
    ) -> Result<super::Outcome, StepError> {
        self.step_with_health(s, health, params, grads, m)
            .map(Into::into)
    }
    fn skip(
        &self,
        _: Step,
        _: &super::TensorSpec,
        params: &mut [f32],
        _: &mut [M],
    ) -> super::Outcome {
        self.shrink_scalar(params).into()
    }
}

/// Tiger in a fixed-point or f64 format ([`Tiger::step_scalar`]) through the interface.
macro_rules! tiger_scalar {
    ($($t:ty),*) => {$(
impl super::Optimizer<$t, $t> for Tiger {
    #[inline]
    fn apply(
        &self,
        _: &(),
        s: Step,
        _: &super::TensorSpec,
        params: &mut [$t],
        grads: &mut [$t],
        state: &mut [$t],
    ) -> Result<super::Outcome, StepError> {
        self.step_scalar(s, params, grads, state).map(Into::into)
    }
    fn skip(&self, _: Step, _: &super::TensorSpec, params: &mut [$t], _: &mut [$t]) -> super::Outcome {
        self.shrink_scalar(params).into()
    }
}
    )*};
}
tiger_scalar!(f64, crate::quant::I8F24, crate::quant::I16F16);

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TigerConfig {
        TigerConfig::new(1e-2)
    }

    #[test]
    fn tiger_rejects_bad_hyper_parameters() {
        assert!(TigerConfig::new(0.0).build().is_err());
        assert!(TigerConfig::new(f32::NAN).build().is_err());
        assert!(TigerConfig { beta: 1.0, ..cfg() }.build().is_err());
        assert!(TigerConfig {
            beta: -0.5,
            ..cfg()
        }
        .build()
        .is_err());
        assert!(TigerConfig {
            accumulation: 0,
            ..cfg()
        }
        .build()
        .is_err());
        assert!(TigerConfig {
            weight_decay: -1e-3,
            ..cfg()
        }
        .build()
        .is_err());
        assert!(TigerConfig {
            nan_shrink: 0.0,
            ..cfg()
        }
        .build()
        .is_err());
        assert!(TigerConfig {
            nan_shrink: 1.5,
            ..cfg()
        }
        .build()
        .is_err());
        assert!(TigerConfig {
            nan_center: f32::INFINITY,
            ..cfg()
        }
        .build()
        .is_err());
        assert!(TigerConfig {
            lr_mode: LrMode::RmsPerRow { cols: 0 },
            ..cfg()
        }
        .build()
        .is_err());
        assert!(TigerConfig {
            lr_mode: LrMode::InvSqrtDim { dim: 0 },
            ..cfg()
        }
        .build()
        .is_err());
    }

    #[test]
    fn tiger_without_decay_moves_each_weight_by_exactly_lr() {
        let t = TigerConfig {
            weight_decay: 0.0,
            ..TigerConfig::new(0.25)
        }
        .build()
        .unwrap();
        let mut p = [1.0f32, -1.0, 0.5, 0.0];
        let mut m = [0.0f32; 4];
        t.step_array(t.at(1), &mut p, &[2.0, -3.0, 0.0, 1e-30], &mut m)
            .unwrap();
        assert_eq!(p, [0.75, -0.75, 0.5, -0.25]);
    }

    #[test]
    fn tiger_guard_shrinks_toward_centre_and_keeps_momentum() {
        let t = TigerConfig {
            nan_center: 1.0,
            nan_shrink: 0.5,
            ..cfg()
        }
        .build()
        .unwrap();
        let mut p = [3.0f32, 0.0];
        let mut m = [0.25f32, -0.5];
        let out = t
            .step_array(t.at(1), &mut p, &[f32::NAN, 1.0], &mut m)
            .unwrap();
        assert_eq!(out, TigerOutcome::Guarded);
        assert_eq!(p, [2.0, 0.5]);
        assert_eq!(m, [0.25, -0.5]);
    }

    #[test]
    fn tiger_inf_gradient_fires_the_default_guard() {
        let t = cfg().build().unwrap();
        let mut p = [1.0f32];
        let mut m = [0.0f32];
        let out = t
            .step_array(t.at(1), &mut p, &[f32::INFINITY], &mut m)
            .unwrap();
        assert_eq!(out, TigerOutcome::Guarded);
        assert_eq!(m, [0.0]);
    }

    #[test]
    fn tiger_inf_gradient_with_nan_only_guard_poisons_momentum_as_documented() {
        let t = TigerConfig {
            guard: Guard::NanOnly,
            ..cfg()
        }
        .build()
        .unwrap();
        let mut p = [1.0f32];
        let mut m = [0.0f32];
        // +Inf: m = +Inf, sign = +1, the weight moves by the lr as usual.
        let out = t
            .step_array(t.at(1), &mut p, &[f32::INFINITY], &mut m)
            .unwrap();
        assert_eq!(out, TigerOutcome::Updated);
        assert_eq!(m[0], f32::INFINITY);
        assert!(p[0].is_finite());
        // -Inf next: Inf - Inf = NaN in m, and the parameter becomes NaN.
        t.step_array(t.at(2), &mut p, &[f32::NEG_INFINITY], &mut m)
            .unwrap();
        assert!(m[0].is_nan() && p[0].is_nan());
    }

    #[test]
    fn tiger_rms_per_row_uses_each_rows_own_scale() {
        let t = TigerConfig {
            weight_decay: 0.0,
            lr_mode: LrMode::RmsPerRow { cols: 2 },
            ..TigerConfig::new(0.5)
        }
        .build()
        .unwrap();
        let mut p = [2.0f32, 2.0, 4.0, -4.0];
        let mut m = [0.0f32; 4];
        t.step_array(t.at(1), &mut p, &[1.0, 1.0, 1.0, -1.0], &mut m)
            .unwrap();
        assert_eq!(p, [1.0, 1.0, 2.0, -2.0]);
        let mut q = [1.0f32; 3];
        let mut mq = [0.0f32; 3];
        assert_eq!(
            t.step(t.at(1), &mut q, &[1.0; 3], &mut mq),
            Err(StepError::RowMismatch { len: 3, cols: 2 })
        );
        assert_eq!(q, [1.0; 3]);
    }

    #[test]
    fn tiger_inv_sqrt_dim_scales_the_lr() {
        let t = TigerConfig {
            weight_decay: 0.0,
            lr_mode: LrMode::InvSqrtDim { dim: 16 },
            ..TigerConfig::new(1.0)
        }
        .build()
        .unwrap();
        let mut p = [0.0f32];
        let mut m = [0.0f32];
        t.step_array(t.at(1), &mut p, &[1.0], &mut m).unwrap();
        assert_eq!(p, [-0.25]);
    }

    #[test]
    fn tiger_mismatched_slices_modify_nothing() {
        let t = cfg().build().unwrap();
        let mut p = [1.0f32; 4];
        let mut m = [0.0f32; 4];
        assert!(t.step(t.at(1), &mut p, &[1.0; 3], &mut m).is_err());
        assert_eq!(p, [1.0; 4]);
        assert_eq!(m, [0.0; 4]);
    }

    #[test]
    fn tiger_health_from_the_norm_pass_equals_its_own_scan() {
        use crate::optim::NormAccumulator;
        let t = cfg().build().unwrap();
        for g in [
            [0.5f32, -1.0, 2.0],
            [0.5, f32::NAN, 2.0],
            [f32::INFINITY, 0.0, 1.0],
        ] {
            let mut acc = NormAccumulator::new();
            acc.add(&g);
            let (mut p1, mut m1) = ([1.0f32, -2.0, 3.0], [0.1f32, 0.0, -0.1]);
            let (mut p2, mut m2) = (p1, m1);
            let a = t.step(t.at(1), &mut p1, &g, &mut m1);
            let b = t.step_with_health(t.at(1), acc.health(), &mut p2, &g, &mut m2);
            assert_eq!(a, b);
            assert_eq!((p1, m1), (p2, m2));
        }
    }
}
