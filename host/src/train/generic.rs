//! Any core optimizer as one burn optimizer: [`Core`] drives a `margay::optim::Optimizer`
//! (through the interface, in parameter groups) on each burn tensor, so a new core
//! optimizer reaches `margay train` with no burn code of its own. AdamW, Adafactor, SGDM and
//! AdaX run through it; its results are the core's by construction (the core's step runs on
//! the tensor's f32 values), which `tests/tests/host_train.rs` checks bit for bit.
//!
//! Each step moves the tensor's values, gradient and state to host memory and back: free on
//! the CPU back end (flex), a device round trip on wgpu/CUDA. That is why Lion and Tiger keep
//! their own burn optimizers ([`super::optim`]): on a GPU their step is one fused CubeCL
//! kernel that never leaves the device, tested equal to the composed ops and to the core
//! (`host/tests/fused.rs`).
//!
//! Groups by rank, as nanoGPT and the other burn optimizers here: a tensor of rank ≥ 2 is a
//! `Matrix { rows: product of the leading dims, cols: last dim }` of kind `Weight` (weight
//! decay); a vector is of kind `NormGain` (no decay). The state of each tensor is one flat
//! f32 tensor of `state_len` values, whatever its shape (Adafactor: rows + cols), stored in
//! checkpoints as `optim.<param>.state`.

use burn::optim::{LearningRate, SimpleOptimizer};
use burn::record::Record;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use margay::optim::{Grouped, Optimizer, ParamKind, Stage, Step, TensorSpec};

/// A core optimizer in parameter groups, as a burn optimizer (see the module docs).
#[derive(Debug, Clone)]
pub struct Core<O> {
    groups: Grouped<O>,
    /// The `[rows, cols]` of the embeddings (the token embedding, tied with the head; learned
    /// positions), when the optimizer treats them apart (Muon sends them to AdamW); empty:
    /// every matrix is a `Weight`.
    embeddings: Vec<[usize; 2]>,
}

/// One tensor's flat core state and its step counter.
#[derive(Record, Clone)]
pub struct CoreState<B: Backend, const D: usize> {
    /// The optimizer's state for this tensor (`state_len` values, laid out by the core).
    pub state: Tensor<B, 1>,
    /// Steps taken so far.
    pub time: usize,
}

/// What the core is told about a burn tensor of shape `dims` (see the module docs).
pub fn spec_of(dims: &[usize]) -> TensorSpec {
    match dims {
        [] => TensorSpec::vector(1).with_kind(ParamKind::NormGain),
        [n] => TensorSpec::vector(*n).with_kind(ParamKind::NormGain),
        [lead @ .., cols] => TensorSpec::matrix(lead.iter().product(), *cols),
    }
}

impl<O: Optimizer<f32>> Core<O> {
    /// The groups' optimizers: `make(true)` for matrices (with weight decay), `make(false)`
    /// for vectors (without).
    pub fn new<E>(make: impl FnMut(bool) -> Result<O, E>) -> Result<Self, E> {
        Self::with_embeddings(Vec::new(), 1, make)
    }

    /// As [`Core::new`], with tensors of the given `[rows, cols]` shapes marked as embeddings
    /// (`ParamKind::Embedding { cols }`; their group is built with that row length).
    pub fn with_embeddings<E>(
        embeddings: Vec<[usize; 2]>,
        cols: usize,
        mut make: impl FnMut(bool) -> Result<O, E>,
    ) -> Result<Self, E> {
        let groups = Grouped::build(cols, |kind| {
            make(matches!(
                kind,
                ParamKind::Weight | ParamKind::Embedding { .. }
            ))
        })?;
        Ok(Core { groups, embeddings })
    }

    /// What the core is told about a tensor of shape `dims`: [`spec_of`], except for the
    /// embeddings given to [`Core::with_embeddings`].
    pub fn spec(&self, dims: &[usize]) -> TensorSpec {
        match dims {
            [r, c] if self.embeddings.contains(&[*r, *c]) => {
                TensorSpec::matrix(*r, *c).with_kind(ParamKind::Embedding { cols: *c })
            }
            _ => spec_of(dims),
        }
    }

    /// The core optimizers, by group.
    pub fn groups(&self) -> &Grouped<O> {
        &self.groups
    }

    /// State values the core keeps for a parameter of shape `dims`.
    pub fn state_len(&self, dims: &[usize]) -> usize {
        self.groups.state_len(&self.spec(dims))
    }

    /// A per-tensor burn optimizer cannot run a round's observe phase over every tensor.
    const NO_OBSERVE: () = assert!(
        !O::OBSERVES,
        "burn steps one tensor at a time: clip in the trainer, not in a chain"
    );
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("converted to f32 just before")
}

impl<B: Backend, O: Optimizer<f32> + Send + Sync + Clone + 'static> SimpleOptimizer<B> for Core<O> {
    type State<const D: usize> = CoreState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<B, D>,
        g: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let () = Self::NO_OBSERVE;
        let dims = p.dims();
        let spec = self.spec(&dims);
        let device = p.device();
        let (mut pv, mut gv) = (values(p), values(g));
        let (mut sv, time) = match state {
            Some(s) => (values(s.state), s.time),
            None => {
                let mut v = vec![0.0f32; self.groups.state_len(&spec)];
                self.groups.init(&spec, &mut v);
                (v, 0)
            }
        };
        let s = Step::new((time as u64).saturating_add(1), lr as f32)
            .expect("the schedule's learning rates are finite and >= 0");
        let round = self.groups.begin(0.0);
        // Lengths agree by construction (the state comes from `init` or from a checkpoint
        // whose shapes were checked against `state_len` when it was read).
        self.groups
            .update(&round, s, &spec, &mut pv, &mut gv, &mut sv)
            .expect("tensor and state sized by the interface");
        let n = sv.len();
        (
            Tensor::from_data(TensorData::new(pv, dims), &device),
            Some(CoreState {
                state: Tensor::from_data(TensorData::new(sv, [n]), &device),
                time: time.saturating_add(1),
            }),
        )
    }

    fn to_device<const D: usize>(s: Self::State<D>, device: &B::Device) -> Self::State<D> {
        CoreState {
            state: s.state.to_device(device),
            time: s.time,
        }
    }
}
