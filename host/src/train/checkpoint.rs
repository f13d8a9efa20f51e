//! Checkpoints: one safetensors file holding the model (`model.<path>`), the optimizer's
//! state from burn's optimizer record (`optim.<path>.<field>`), and, in its metadata, what
//! a bit-exact resume needs (configs, step, the data sampler's state, the loss history).
//!
//! Written atomically (a temporary file in the same directory, fsync, rename, fsync of the
//! directory), so a run killed during a save leaves the previous checkpoint intact. Read
//! back with errors that name the file and the fix; a checkpoint for another model shape or
//! optimizer is refused before anything is loaded or overwritten.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::AdaptorRecord;
use burn::optim::{Optimizer, SimpleOptimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use super::generic::{Core, CoreState};
use super::model::{Gpt, ModelConfig};
use super::optim::{Lion, MomentState, Tiger};
use super::run::TrainConfig;
use margay::optim::Stage;

/// Checkpoint format version (metadata key `margay`). 2: optimizers other than Lion and Tiger
/// store one flat `state` tensor per parameter (the core's layout) instead of `m`, `v`.
pub const FORMAT: u32 = 2;

/// One scalar series: `(step, loss)`.
pub type Series = Vec<(u64, f32)>;

/// Everything in a checkpoint besides tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// [`FORMAT`].
    pub format: u32,
    /// The model's shape and RoPE.
    pub model: ModelConfig,
    /// The run's configuration (optimizer included).
    pub train: TrainConfig,
    /// The vocabulary, characters in id order.
    pub vocab: String,
    /// Optimizer updates done.
    pub step: u64,
    /// The batch sampler's SplitMix64 state after `step`.
    pub rng: u64,
    /// Training loss per update.
    pub train_loss: Series,
    /// Validation loss at each evaluation.
    pub val_loss: Series,
    /// Steps whose loss was not finite (Tiger's guard fired on them).
    pub guarded: u64,
    /// Tokens per second so far (training only), for the report.
    pub tokens_per_s: f64,
}

/// An optimizer whose burn state can be written to and read from named tensors.
pub trait StateIo<B: Backend>: SimpleOptimizer<B> {
    /// Name stored in checkpoints.
    const NAME: &'static str;
    /// The state's tensors, in a fixed order, with their names.
    const FIELDS: &'static [&'static str];
    /// Splits a state into its tensors (in [`StateIo::FIELDS`] order) and step counter.
    fn export<const D: usize>(s: Self::State<D>) -> (Vec<Tensor<B, D>>, usize);
    /// The inverse of [`StateIo::export`].
    fn import<const D: usize>(t: Vec<Tensor<B, D>>, time: usize) -> Self::State<D>;
    /// The shape of each field of the state of a parameter of shape `param` (what a
    /// checkpoint's tensors are checked against); default: the parameter's shape.
    fn field_shapes(&self, param: &[usize]) -> Vec<Vec<usize>> {
        vec![param.to_vec(); Self::FIELDS.len()]
    }
    /// State values kept for a parameter of shape `param`.
    fn state_len(&self, param: &[usize]) -> usize {
        self.field_shapes(param)
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum()
    }
}

fn moment_export<B: Backend, const D: usize>(s: MomentState<B, D>) -> (Vec<Tensor<B, D>>, usize) {
    (vec![s.m], s.time)
}

fn moment_import<B: Backend, const D: usize>(
    mut t: Vec<Tensor<B, D>>,
    time: usize,
) -> MomentState<B, D> {
    MomentState {
        m: t.remove(0),
        time,
    }
}

impl<B: super::optim::SignStepBackend> StateIo<B> for Lion {
    const NAME: &'static str = "lion";
    const FIELDS: &'static [&'static str] = &["m"];
    fn export<const D: usize>(s: Self::State<D>) -> (Vec<Tensor<B, D>>, usize) {
        moment_export(s)
    }
    fn import<const D: usize>(t: Vec<Tensor<B, D>>, time: usize) -> Self::State<D> {
        moment_import(t, time)
    }
}

impl<B: super::optim::SignStepBackend> StateIo<B> for Tiger {
    const NAME: &'static str = "tiger";
    const FIELDS: &'static [&'static str] = &["m"];
    fn export<const D: usize>(s: Self::State<D>) -> (Vec<Tensor<B, D>>, usize) {
        moment_export(s)
    }
    fn import<const D: usize>(t: Vec<Tensor<B, D>>, time: usize) -> Self::State<D> {
        moment_import(t, time)
    }
}

/// The generic adapter: one flat `state` field, stored with the parameter's rank as
/// `[1, …, 1, state_len]`.
impl<B: Backend, O> StateIo<B> for Core<O>
where
    O: margay::optim::Optimizer<f32> + Send + Sync + Clone + 'static,
{
    const NAME: &'static str = O::NAME;
    const FIELDS: &'static [&'static str] = &["state"];
    fn export<const D: usize>(s: Self::State<D>) -> (Vec<Tensor<B, D>>, usize) {
        let mut shape = [1usize; D];
        shape[D - 1] = s.state.dims()[0];
        (vec![s.state.reshape(shape)], s.time)
    }
    fn import<const D: usize>(mut t: Vec<Tensor<B, D>>, time: usize) -> Self::State<D> {
        let t = t.remove(0);
        let n = t.dims().iter().product::<usize>();
        CoreState {
            state: t.reshape([n]),
            time,
        }
    }
    fn field_shapes(&self, param: &[usize]) -> Vec<Vec<usize>> {
        let mut shape = vec![1usize; param.len().max(1)];
        *shape.last_mut().expect("at least one dim") = self.groups().state_len(&self.spec(param));
        vec![shape]
    }
}

/// burn's optimizer for a [`Gpt`] with margay's optimizer `O`.
pub type GptOptimizer<O, B> = OptimizerAdaptor<O, Gpt<B>, B>;

/// A model and, when asked for, its optimizer, restored from a checkpoint.
pub type Restored<O, B> = (Gpt<B>, Option<GptOptimizer<O, B>>);

/// The optimizer record type of the adaptor.
pub type OptRecord<O, B> = <OptimizerAdaptor<O, Gpt<B>, B> as Optimizer<Gpt<B>, B>>::Record;

struct Named {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn named<B: Backend, const D: usize>(t: Tensor<B, D>) -> Named {
    let shape = t.dims().to_vec();
    let data = t.into_data().convert::<f32>();
    Named {
        shape,
        bytes: data.as_bytes().to_vec(),
    }
}

struct Collect<'a, B: AutodiffBackend, O: StateIo<B::InnerBackend> + 'a> {
    path: Vec<String>,
    records: &'a OptRecord<O, B>,
    tensors: BTreeMap<String, Named>,
    times: BTreeMap<String, usize>,
}

impl<B: AutodiffBackend, O: StateIo<B::InnerBackend>> ModuleVisitor<B> for Collect<'_, B, O> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let name = self.path.join(".");
        self.tensors
            .insert(format!("model.{name}"), named(param.val().inner()));
        if let Some(rec) = self.records.get(&param.id) {
            let (ts, time) = O::export(rec.clone().into_state::<D>());
            for (f, t) in O::FIELDS.iter().zip(ts) {
                self.tensors.insert(format!("optim.{name}.{f}"), named(t));
            }
            self.times.insert(name, time);
        }
    }
}

/// Writes a checkpoint of `model` and `opt` with `meta` to `path`, atomically.
pub fn save<B: AutodiffBackend, O: StateIo<B::InnerBackend>>(
    path: &Path,
    model: &Gpt<B>,
    opt: &OptimizerAdaptor<O, Gpt<B>, B>,
    meta: &Meta,
) -> Result<(), String> {
    let records = opt.to_record();
    let mut c = Collect::<B, O> {
        path: Vec::new(),
        records: &records,
        tensors: BTreeMap::new(),
        times: BTreeMap::new(),
    };
    model.visit(&mut c);
    let mut info = HashMap::new();
    info.insert(
        "margay".to_string(),
        serde_json::to_string(meta).map_err(|e| e.to_string())?,
    );
    info.insert("optimizer".to_string(), O::NAME.to_string());
    info.insert(
        "optimizer_time".to_string(),
        serde_json::to_string(&c.times).map_err(|e| e.to_string())?,
    );
    let views = c
        .tensors
        .iter()
        .map(|(k, n)| {
            TensorView::new(Dtype::F32, n.shape.clone(), &n.bytes)
                .map(|v| (k.clone(), v))
                .map_err(|e| format!("{k}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, Some(info))
        .map_err(|e| format!("{}: cannot serialize: {e}", path.display()))?;
    crate::files::write_atomic(path, &bytes)
}

/// A checkpoint read from disk, not yet applied to a model.
pub struct Loaded {
    /// Its metadata.
    pub meta: Meta,
    /// Optimizer name stored in it.
    pub optimizer: String,
    bytes: Vec<u8>,
    times: BTreeMap<String, usize>,
    path: String,
}

/// Reads and checks a checkpoint file's header and metadata.
pub fn read(path: &Path) -> Result<Loaded, String> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "{p}: cannot read the checkpoint ({e}); pass the checkpoint a `margay train --out DIR` \
             run wrote (DIR/ckpt.safetensors), or train without --resume first"
        )
    })?;
    let (_, md) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        format!("{p}: not a safetensors checkpoint ({e}); it is damaged or another kind of file")
    })?;
    let info = md.metadata().clone().unwrap_or_default();
    let json = info.get("margay").ok_or_else(|| {
        format!(
            "{p}: a safetensors file without margay metadata; it was not written by `margay train`"
        )
    })?;
    let meta: Meta = serde_json::from_str(json).map_err(|e| {
        format!("{p}: unreadable margay metadata ({e}); retrain or use another checkpoint")
    })?;
    let optimizer = info.get("optimizer").cloned().unwrap_or_default();
    // Format 1 differs only for the optimizers now on the generic adapter: Lion's and
    // Tiger's format-1 checkpoints are the same files.
    let same_layout = meta.format == 1 && (optimizer == "lion" || optimizer == "tiger");
    if meta.format != FORMAT && !same_layout {
        return Err(format!(
            "{p}: checkpoint format {} but this margay reads format {FORMAT}; retrain",
            meta.format
        ));
    }
    let times = serde_json::from_str(info.get("optimizer_time").map_or("{}", |s| s.as_str()))
        .map_err(|e| format!("{p}: unreadable optimizer_time ({e})"))?;
    Ok(Loaded {
        meta,
        optimizer,
        bytes,
        times,
        path: p,
    })
}

struct Apply<'a, B: AutodiffBackend, O: StateIo<B::InnerBackend>> {
    path: Vec<String>,
    st: &'a safetensors::SafeTensors<'a>,
    times: &'a BTreeMap<String, usize>,
    records: OptRecord<O, B>,
    /// The optimizer whose state is read (its fields' shapes), when it is.
    optim: Option<&'a O>,
    err: Option<String>,
}

impl<B: AutodiffBackend, O: StateIo<B::InnerBackend>> Apply<'_, B, O> {
    fn tensor<BB: Backend, const D: usize>(
        &mut self,
        name: &str,
        shape: &[usize],
        device: &BB::Device,
    ) -> Option<Tensor<BB, D>> {
        let v = match self.st.tensor(name) {
            Ok(v) => v,
            Err(_) => {
                self.err.get_or_insert(format!("tensor {name} is missing"));
                return None;
            }
        };
        if v.dtype() != Dtype::F32 || v.shape() != shape {
            self.err.get_or_insert(format!(
                "tensor {name} has shape {:?} ({:?}), the model needs {shape:?} (F32)",
                v.shape(),
                v.dtype()
            ));
            return None;
        }
        let data =
            TensorData::from_bytes_vec(v.data().to_vec(), shape.to_vec(), burn::tensor::DType::F32);
        Some(Tensor::from_data(data, device))
    }
}

impl<B: AutodiffBackend, O: StateIo<B::InnerBackend>> ModuleMapper<B> for Apply<'_, B, O> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, t, mapper) = param.consume();
        let name = self.path.join(".");
        let shape = t.dims().to_vec();
        let device = t.device();
        let grad = t.is_require_grad();
        let Some(new) =
            self.tensor::<B::InnerBackend, D>(&format!("model.{name}"), &shape, &device)
        else {
            return Param::from_mapped_value(id, t, mapper);
        };
        if let Some(optim) = self.optim {
            if let Some(&time) = self.times.get(&name) {
                let mut parts = Vec::new();
                for (f, fshape) in O::FIELDS.iter().zip(optim.field_shapes(&shape)) {
                    match self.tensor::<B::InnerBackend, D>(
                        &format!("optim.{name}.{f}"),
                        &fshape,
                        &device,
                    ) {
                        Some(x) => parts.push(x),
                        None => return Param::from_mapped_value(id, t, mapper),
                    }
                }
                let state = O::import(parts, time);
                insert_record::<B, O, D>(&mut self.records, id, state);
            }
        }
        let new = Tensor::from_inner(new).set_require_grad(grad);
        Param::from_mapped_value(id, new, mapper)
    }
}

fn insert_record<B: AutodiffBackend, O: StateIo<B::InnerBackend>, const D: usize>(
    records: &mut OptRecord<O, B>,
    id: ParamId,
    state: O::State<D>,
) {
    records.insert(id, AdaptorRecord::from_state(state));
}

impl Loaded {
    /// Checks that this checkpoint fits `model` and optimizer `O`; nothing is changed.
    pub fn check(&self, model: &ModelConfig, optimizer: &str) -> Result<(), String> {
        if &self.meta.model != model {
            return Err(format!(
                "{}: written for model {:?}, this run builds {:?}; resume with the checkpoint's \
                 settings (or its --config), or give a new --out to start afresh",
                self.path, self.meta.model, model
            ));
        }
        if self.optimizer != optimizer {
            return Err(format!(
                "{}: holds {} optimizer state, this run uses {optimizer}; resume with --optimizer {}, \
                 or give a new --out to start afresh",
                self.path, self.optimizer, self.optimizer
            ));
        }
        Ok(())
    }

    /// Loads the weights into `model` (shapes checked) and, when `opt` is given (burn's
    /// optimizer and the margay optimizer it wraps), the optimizer state into it (shapes
    /// checked against what that optimizer keeps). On error, returns it and nothing of the
    /// checkpoint is used.
    pub fn apply<B: AutodiffBackend, O: StateIo<B::InnerBackend>>(
        &self,
        model: Gpt<B>,
        opt: Option<(GptOptimizer<O, B>, &O)>,
    ) -> Result<Restored<O, B>, String> {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).map_err(|e| {
            format!(
                "{}: damaged checkpoint ({e}); use an earlier one",
                self.path
            )
        })?;
        let mut m = Apply::<B, O> {
            path: Vec::new(),
            st: &st,
            times: &self.times,
            records: Default::default(),
            optim: opt.as_ref().map(|o| o.1),
            err: None,
        };
        let model = model.map(&mut m);
        if let Some(e) = m.err {
            return Err(format!(
                "{}: {e}; the checkpoint does not match this model (use the settings it was \
                 trained with)",
                self.path
            ));
        }
        let opt = opt.map(|o| o.0.load_record(m.records));
        Ok((model, opt))
    }
}

/// Inference copy of a model (no autodiff), for sampling and evaluation.
pub fn valid<B: AutodiffBackend>(model: &Gpt<B>) -> Gpt<B::InnerBackend> {
    model.valid()
}
