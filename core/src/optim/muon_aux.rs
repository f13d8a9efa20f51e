//! Muon on the hidden matrices, an auxiliary optimizer on everything else: Keller Jordan's
//! `MuonWithAuxAdam` (and Keras' `Muon(exclude_embeddings=True)`), as one optimizer behind the
//! interface.
//!
//! Muon is defined for the hidden layers' matrices only: the embedding (a lookup, not a linear
//! map of its input), the output head, and 1-D parameters (biases, norm gains) go to AdamW or
//! Tiger. Which tensor is which comes from its [`TensorSpec`]:
//!
//! | spec | optimizer |
//! |---|---|
//! | `Matrix` of kind [`ParamKind::Weight`] | Muon |
//! | kind [`ParamKind::Head`], [`ParamKind::Embedding`], `Bias`, `NormGain`; any vector | the auxiliary's group for that kind |
//!
//! **Learning rates.** A step's lr is Muon's (times the schedule); the auxiliary runs at its
//! own base lr times the same schedule factor (Keller Jordan's defaults: Muon 0.02, Adam 3e-4).
//!
//! ```
//! use margay::optim::{AdamWConfig, Grouped, MuonConfig, MuonWithAux, Optimizer, ParamKind, Stage, TensorSpec};
//! let aux = Grouped::build(8, |k| AdamWConfig::new(3e-4).preset(k).build()).unwrap();
//! let opt = MuonWithAux::new(MuonConfig::new(0.02).build().unwrap(), aux).unwrap();
//! let hidden = TensorSpec::matrix(8, 8);
//! let embedding = TensorSpec::matrix(16, 8).with_kind(ParamKind::Embedding { cols: 8 });
//! assert!(opt.routes_to_muon(&hidden) && !opt.routes_to_muon(&embedding));
//! let mut state = vec![0.0_f32; opt.state_len(&embedding)];
//! let (mut w, mut g) = (vec![0.1_f32; 128], vec![0.01_f32; 128]);
//! opt.update(&(), opt.at(1), &embedding, &mut w, &mut g, &mut state).unwrap();
//! assert!((w[0] - (0.1 - 3e-4 - 3e-4 * 0.01 * 0.1)).abs() < 1e-7); // AdamW's first step
//! ```

use super::{
    ConfigError, Grouped, Muon, Optimizer, Outcome, ParamKind, Shape, Stage, Step, StepError,
    TensorSpec,
};

/// Muon for hidden matrices, `A`'s groups for the rest (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MuonWithAux<A> {
    /// The hidden matrices' optimizer.
    pub muon: Muon,
    /// Everything else, by kind.
    pub aux: Grouped<A>,
}

impl<A: Stage<Round = ()>> MuonWithAux<A> {
    /// Both optimizers, each validated when built. Muon steps every call, so an auxiliary
    /// that accumulates micro-steps (Tiger or SGDM with k > 1) is refused: the two would move
    /// on different steps.
    pub fn new(muon: Muon, aux: Grouped<A>) -> Result<Self, ConfigError> {
        let k = aux.accumulation();
        if k != 1 {
            return Err(ConfigError::OutOfRange {
                field: "accumulation",
                value: k as f32,
                min: 1.0,
                max: 1.0,
            });
        }
        Ok(MuonWithAux { muon, aux })
    }

    /// Whether `spec` is stepped by Muon (a matrix of kind `Weight`).
    pub fn routes_to_muon(&self, spec: &TensorSpec) -> bool {
        matches!(
            (spec.shape, spec.kind),
            (Shape::Matrix { .. }, ParamKind::Weight)
        )
    }

    /// The auxiliary's step: its base lr times the schedule factor of `s`.
    fn aux_step(&self, s: Step) -> Step {
        let (m, a) = (self.muon.lr(), self.aux.lr());
        if m == a {
            s
        } else {
            // Both base rates were validated (> 0, finite).
            Step::trusted(s.t, (s.lr * (a / m)).min(f32::MAX))
        }
    }
}

impl<A: Stage<Round = ()>> Stage for MuonWithAux<A> {
    type Round = ();
    const NAME: &'static str = "muon+aux";
    fn lr(&self) -> f32 {
        self.muon.lr()
    }
    fn state_len(&self, spec: &TensorSpec) -> usize {
        if self.routes_to_muon(spec) {
            self.muon.state_len(spec)
        } else {
            self.aux.state_len(spec)
        }
    }
    fn check(&self, spec: &TensorSpec) -> Result<(), StepError> {
        if self.routes_to_muon(spec) {
            self.muon.check(spec)
        } else {
            self.aux.check(spec)
        }
    }
    fn begin(&self, _loss: f32) {}
    fn accumulation(&self) -> u32 {
        1
    }
}

impl<A: Optimizer<f32> + Stage<Round = ()>> Optimizer<f32> for MuonWithAux<A> {
    fn init(&self, spec: &TensorSpec, state: &mut [f32]) {
        if self.routes_to_muon(spec) {
            self.muon.init(spec, state)
        } else {
            self.aux.init(spec, state)
        }
    }
    fn check_params(&self, params: &[f32]) -> Result<(), StepError> {
        self.aux.check_params(params)
    }
    fn apply(
        &self,
        round: &(),
        s: Step,
        spec: &TensorSpec,
        params: &mut [f32],
        grads: &mut [f32],
        state: &mut [f32],
    ) -> Result<Outcome, StepError> {
        if self.routes_to_muon(spec) {
            self.muon.apply(round, s, spec, params, grads, state)
        } else {
            self.aux
                .apply(round, self.aux_step(s), spec, params, grads, state)
        }
    }
    fn skip(&self, s: Step, spec: &TensorSpec, params: &mut [f32], state: &mut [f32]) -> Outcome {
        if self.routes_to_muon(spec) {
            self.muon.skip(s, spec, params, state)
        } else {
            self.aux.skip(self.aux_step(s), spec, params, state)
        }
    }
}
