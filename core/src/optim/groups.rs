//! Parameter groups: one model, different rules for weights, biases, norm gains and
//! embeddings.
//!
//! Build one validated optimizer per [`ParamKind`] from a base config with `preset`, and
//! step each tensor with the optimizer of its kind (all at the same step index):
//!
//! | kind | Tiger preset (`bojone/tiger`) | Lion / AdamW preset |
//! |---|---|---|
//! | `Weight` (matrix kernels), `Head` | `LrMode::Rms`, decay λ | decay λ |
//! | `Bias` | `Absolute`, `lr_scale = 0.5`, no decay, guard centre 0 | no decay |
//! | `NormGain` (γ of a norm, init 1) | `Absolute`, `lr_scale = 0.5`, no decay, **guard centre 1** | no decay |
//! | `Embedding { cols }` | `RmsPerRow { cols }`, decay λ | decay λ |
//!
//! ```
//! use margay::optim::{ParamKind, TigerConfig};
//! let base = TigerConfig::new(1.76e-3);
//! let weights = base.preset(ParamKind::Weight).build().unwrap();
//! let gains = base.preset(ParamKind::NormGain).build().unwrap();
//! let (mut w, mut mw) = ([0.5_f32, -0.5], [0.0_f32; 2]);
//! let (mut g, mut mg) = ([1.0_f32, 1.0], [0.0_f32; 2]);
//! let t = 1;
//! weights.step_array(weights.at(t), &mut w, &[0.1, 0.2], &mut mw).unwrap();
//! gains.step_array(gains.at(t), &mut g, &[0.3, -0.3], &mut mg).unwrap();
//! assert_eq!(g, [1.0 - 0.88e-3, 1.0 + 0.88e-3]);
//! ```

use super::{AdamWConfig, LionConfig, LrMode, TigerConfig};

/// The role of a parameter tensor in a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ParamKind {
    /// A matrix kernel.
    Weight,
    /// The output projection (language-model head, classifier): a matrix that
    /// [`super::MuonWithAux`] sends to the auxiliary optimizer; every other preset treats it
    /// as a [`ParamKind::Weight`].
    Head,
    /// A bias vector (init 0).
    Bias,
    /// A norm gain γ (init 1).
    NormGain,
    /// An embedding table with rows of `cols` elements.
    Embedding {
        /// Row length (the embedding width).
        cols: usize,
    },
}

impl TigerConfig {
    /// Tiger's per-kind preset (see the module table); other fields are kept.
    pub const fn preset(self, kind: ParamKind) -> TigerConfig {
        match kind {
            ParamKind::Weight | ParamKind::Head => TigerConfig {
                lr_mode: LrMode::Rms,
                ..self
            },
            ParamKind::Bias => TigerConfig {
                lr_mode: LrMode::Absolute,
                lr_scale: 0.5,
                weight_decay: 0.0,
                nan_center: 0.0,
                ..self
            },
            ParamKind::NormGain => TigerConfig {
                lr_mode: LrMode::Absolute,
                lr_scale: 0.5,
                weight_decay: 0.0,
                nan_center: 1.0,
                ..self
            },
            ParamKind::Embedding { cols } => TigerConfig {
                lr_mode: LrMode::RmsPerRow { cols },
                ..self
            },
        }
    }
}

impl LionConfig {
    /// No weight decay on biases and norm gains; other kinds keep the config.
    pub const fn preset(self, kind: ParamKind) -> LionConfig {
        match kind {
            ParamKind::Bias | ParamKind::NormGain => LionConfig {
                weight_decay: 0.0,
                ..self
            },
            _ => self,
        }
    }
}

impl AdamWConfig {
    /// No weight decay on biases and norm gains; other kinds keep the config.
    pub const fn preset(self, kind: ParamKind) -> AdamWConfig {
        match kind {
            ParamKind::Bias | ParamKind::NormGain => AdamWConfig {
                weight_decay: 0.0,
                ..self
            },
            _ => self,
        }
    }
}

/// One validated optimizer per [`ParamKind`], picked by each tensor's
/// [`super::TensorSpec::kind`]: the parameter groups behind the [`super::Optimizer`]
/// interface. Built from a function of the kind (usually `base.preset(kind).build()`); the
/// embedding's row length is fixed when built, and a tensor whose embedding rows differ is
/// refused.
///
/// ```
/// use margay::optim::{Grouped, Optimizer, ParamKind, Stage, TensorSpec, TigerConfig};
/// let base = TigerConfig::new(1.76e-3);
/// let opt = Grouped::build(64, |kind| base.preset(kind).build()).unwrap();
/// let gain = TensorSpec::vector(2).with_kind(ParamKind::NormGain);
/// let (mut g, mut m) = ([1.0_f32, 1.0], [0.0_f32; 2]);
/// opt.update(&opt.begin(0.0), opt.at(1), &gain, &mut g, &mut [0.3, -0.3], &mut m).unwrap();
/// assert_eq!(g, [1.0 - 0.88e-3, 1.0 + 0.88e-3]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grouped<O> {
    /// For [`ParamKind::Weight`].
    pub weight: O,
    /// For [`ParamKind::Bias`].
    pub bias: O,
    /// For [`ParamKind::NormGain`].
    pub norm_gain: O,
    /// For [`ParamKind::Embedding`] with rows of `cols`.
    pub embedding: O,
    cols: usize,
}

impl<O> Grouped<O> {
    /// Builds the four groups; `cols` is the embedding's row length.
    pub fn build<E>(
        cols: usize,
        mut make: impl FnMut(ParamKind) -> Result<O, E>,
    ) -> Result<Self, E> {
        Ok(Grouped {
            weight: make(ParamKind::Weight)?,
            bias: make(ParamKind::Bias)?,
            norm_gain: make(ParamKind::NormGain)?,
            embedding: make(ParamKind::Embedding { cols })?,
            cols,
        })
    }

    /// The optimizer of a tensor of kind `kind`.
    pub fn of(&self, kind: ParamKind) -> &O {
        match kind {
            ParamKind::Weight | ParamKind::Head => &self.weight,
            ParamKind::Bias => &self.bias,
            ParamKind::NormGain => &self.norm_gain,
            ParamKind::Embedding { .. } => &self.embedding,
        }
    }
}

impl<O: super::Stage> super::Stage for Grouped<O> {
    type Round = O::Round;
    const NAME: &'static str = O::NAME;
    const OBSERVES: bool = O::OBSERVES;
    const STAGES: u8 = O::STAGES;

    fn lr(&self) -> f32 {
        self.weight.lr()
    }
    fn state_len(&self, spec: &super::TensorSpec) -> usize {
        self.of(spec.kind).state_len(spec)
    }
    fn check(&self, spec: &super::TensorSpec) -> Result<(), super::StepError> {
        if let ParamKind::Embedding { cols } = spec.kind {
            if cols != self.cols {
                return Err(super::interface::refused(
                    O::NAME,
                    "the embedding's row length differs from the one its group was built with",
                ));
            }
        }
        self.of(spec.kind).check(spec)
    }
    /// One round for every group: the weights' (the groups are one optimizer's presets).
    fn begin(&self, loss: f32) -> O::Round {
        self.weight.begin(loss)
    }
    fn observe(&self, round: &mut O::Round, spec: &super::TensorSpec, grads: &[f32]) {
        self.weight.observe(round, spec, grads)
    }
    fn finish(&self, round: &mut O::Round) {
        self.weight.finish(round)
    }
    fn accumulation(&self) -> u32 {
        self.weight.accumulation()
    }
}

impl<M: Copy + Default, P, O: super::Optimizer<M, P>> super::Optimizer<M, P> for Grouped<O> {
    fn init(&self, spec: &super::TensorSpec, state: &mut [M]) {
        self.of(spec.kind).init(spec, state)
    }
    /// Every group's check (the tensor's kind is not known here).
    fn check_params(&self, params: &[P]) -> Result<(), super::StepError> {
        self.weight.check_params(params)?;
        self.bias.check_params(params)?;
        self.norm_gain.check_params(params)?;
        self.embedding.check_params(params)
    }
    fn apply(
        &self,
        round: &O::Round,
        s: super::Step,
        spec: &super::TensorSpec,
        params: &mut [P],
        grads: &mut [P],
        state: &mut [M],
    ) -> Result<super::Outcome, super::StepError> {
        let o = self.of(spec.kind);
        let s = Self::group_step(s, self.weight.lr(), o.lr());
        o.apply(round, s, spec, params, grads, state)
    }
    fn apply_with_health(
        &self,
        round: &O::Round,
        s: super::Step,
        spec: &super::TensorSpec,
        health: super::GradHealth,
        params: &mut [P],
        grads: &mut [P],
        state: &mut [M],
    ) -> Result<super::Outcome, super::StepError> {
        let o = self.of(spec.kind);
        let s = Self::group_step(s, self.weight.lr(), o.lr());
        o.apply_with_health(round, s, spec, health, params, grads, state)
    }
    fn skip(
        &self,
        s: super::Step,
        spec: &super::TensorSpec,
        params: &mut [P],
        state: &mut [M],
    ) -> super::Outcome {
        self.of(spec.kind).skip(s, spec, params, state)
    }
}

impl<O> Grouped<O> {
    /// A step's lr is the weights' lr times the schedule; each group keeps its ratio to it
    /// (the same lr, bit for bit, when the group's base lr is the weights').
    #[inline(always)]
    fn group_step(s: super::Step, weight_lr: f32, group_lr: f32) -> super::Step {
        if group_lr == weight_lr {
            s
        } else {
            // Both base rates were validated (> 0, finite); the product stays finite.
            super::Step::trusted(s.t, (s.lr * (group_lr / weight_lr)).min(f32::MAX))
        }
    }
}
