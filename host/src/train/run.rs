//! The training driver: configuration (presets, JSON file, flags), the loop (gradient
//! accumulation, global-norm clipping, warmup-cosine schedule from the core), periodic
//! validation, atomic checkpoints, bit-exact resume, the NaN rule and the loss-curve PNG.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use margay::math::SplitMix64;
use margay::optim::{
    AdaX as CoreAdaX, AdaXConfig, Adafactor as CoreAdafactor, AdafactorConfig, AdamW as CoreAdamW,
    AdamWConfig, AdjustLr, ClipConfig, ClipForm, ConfigError, Grouped, LionConfig, MuonConfig,
    MuonWithAux, Schedule, Sgd, SgdConfig, Sgdm as CoreSgdm, SgdmConfig, TigerConfig, WarmupCosine,
    Zo, ZoConfig, ZoStatus,
};

use super::checkpoint::{self, Meta, StateIo};
use super::data::{Corpus, Source, Split};
use super::generic::Core;
use super::model::{Gpt, ModelConfig, Positions, RopeCache, RopeScaling};
use super::optim::{Lion, SignStepBackend, Tiger};

/// Which optimizer trains the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    /// AdamW, PyTorch semantics.
    Adamw,
    /// Lion.
    Lion,
    /// Tiger (free accumulation, RMS-scaled lr, NaN guard).
    Tiger,
    /// Adafactor, PyTorch's conventions (factored second moment; relative step).
    Adafactor,
    /// SGD with momentum (PyTorch's `SGD(momentum=β)`, decoupled decay).
    Sgdm,
    /// AdaX-W (AdaX with decoupled weight decay).
    Adax,
    /// Muon on the hidden matrices (`match_rms_adamw`, so the run's lr serves both), AdamW on
    /// the tied embedding/head and the vectors (`MuonWithAux`).
    Muon,
    /// MeZO's zeroth-order SGD: two forward passes per step, no backward pass, no autodiff
    /// graph; z regenerated from (seed, step).
    #[serde(rename = "zo-sgd")]
    #[value(name = "zo-sgd")]
    ZoSgd,
}

impl OptimKind {
    /// Name used in checkpoints and reports.
    pub fn name(self) -> &'static str {
        match self {
            OptimKind::Adamw => "adamw",
            OptimKind::Lion => "lion",
            OptimKind::Tiger => "tiger",
            OptimKind::Adafactor => "adafactor",
            OptimKind::Sgdm => "sgdm",
            OptimKind::Adax => "adax",
            OptimKind::Muon => "muon",
            OptimKind::ZoSgd => "zo-sgd",
        }
    }
}

/// Everything that defines a run (stored in each checkpoint). Optional fields fall back to
/// the core optimizer's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Width.
    pub n_embd: usize,
    /// Context length.
    pub block_size: usize,
    /// RoPE base.
    pub rope_base: f64,
    /// Rotated dims per head (partial RoPE); `None`: all.
    pub rotary_dim: Option<usize>,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// RoPE (default) or learned absolute positions (nanoGPT's model, for comparison).
    pub positions: Positions,
    /// Optimizer.
    pub optimizer: OptimKind,
    /// Peak learning rate.
    pub lr: f32,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f32,
    /// Linear warmup steps.
    pub warmup: u64,
    /// Weight decay (matrices only); `None`: the core default.
    pub weight_decay: Option<f32>,
    /// β₁ (Tiger: its single β); `None`: the core default.
    pub beta1: Option<f32>,
    /// β₂ (AdamW, Lion); `None`: the core default.
    pub beta2: Option<f32>,
    /// Global-norm clipping threshold (PyTorch's form); 0 turns it off.
    pub grad_clip: f32,
    /// Micro-batches per optimizer step.
    pub accumulation: u32,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Optimizer steps.
    pub steps: u64,
    /// Evaluate (and checkpoint) every this many steps.
    pub eval_interval: u64,
    /// Batches per evaluation.
    pub eval_iters: usize,
    /// Seed of the initialisation and the batch sampler (and of ZO's directions).
    pub seed: u64,
    /// ZO-SGD's perturbation ε; `None`: MeZO's 1e-3.
    pub zo_eps: Option<f32>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig::preset("quick").expect("the quick preset exists")
    }
}

/// Names accepted by [`TrainConfig::preset`].
pub const PRESETS: &[&str] = &["quick", "nanogpt-cpu", "baby-gpt", "tiny"];

impl TrainConfig {
    /// nanoGPT's CPU configuration of `shakespeare_char` (4 layers, 4 heads, 128 wide,
    /// context 64, batch 12, 2,000 steps, lr 1e-3 → 1e-4, warmup 100, β₂ 0.99, weight
    /// decay 0.1, clip 1.0, 20 evaluation batches) with AdamW.
    pub fn nanogpt_cpu() -> Self {
        TrainConfig {
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
            block_size: 64,
            rope_base: 10_000.0,
            rotary_dim: None,
            rope_scaling: RopeScaling::None,
            positions: Positions::Rope,
            optimizer: OptimKind::Adamw,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup: 100,
            weight_decay: Some(0.1),
            beta1: Some(0.9),
            beta2: Some(0.99),
            grad_clip: 1.0,
            accumulation: 1,
            batch_size: 12,
            steps: 2000,
            eval_interval: 250,
            eval_iters: 20,
            seed: 1337,
            zo_eps: None,
        }
    }

    /// A named preset: `quick` (the README's main job: the CPU configuration for 300 steps),
    /// `nanogpt-cpu`, `baby-gpt` (6 layers, 6 heads, 384 wide, context 256, batch 64, 5,000
    /// steps; for a GPU), `tiny` (tests).
    pub fn preset(name: &str) -> Result<Self, String> {
        let cpu = Self::nanogpt_cpu();
        Ok(match name {
            "nanogpt-cpu" => cpu,
            "quick" => TrainConfig {
                steps: 300,
                warmup: 30,
                eval_interval: 100,
                ..cpu
            },
            "baby-gpt" => TrainConfig {
                n_layer: 6,
                n_head: 6,
                n_embd: 384,
                block_size: 256,
                batch_size: 64,
                steps: 5000,
                eval_interval: 250,
                eval_iters: 200,
                ..cpu
            },
            "tiny" => TrainConfig {
                n_layer: 1,
                n_head: 2,
                n_embd: 16,
                block_size: 16,
                batch_size: 4,
                steps: 12,
                warmup: 2,
                eval_interval: 4,
                eval_iters: 2,
                ..cpu
            },
            other => {
                return Err(format!(
                    "unknown preset {other:?}; choose one of {}",
                    PRESETS.join(", ")
                ))
            }
        })
    }

    /// Reads a JSON config (fields not given keep the `quick` preset's values).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let s = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "{}: cannot read the config ({e}); pass an existing JSON file to --config, or \
                 leave --config out and use --preset and flags",
                path.display()
            )
        })?;
        serde_json::from_str(&s).map_err(|e| {
            format!(
                "{}: not a valid margay train config ({e}); fields are those of \
                 `margay train --print-config`",
                path.display()
            )
        })
    }

    /// The model configuration for a vocabulary of `vocab` characters.
    pub fn model(&self, vocab: usize) -> ModelConfig {
        ModelConfig {
            vocab,
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_embd: self.n_embd,
            block_size: self.block_size,
            rope_base: self.rope_base,
            rotary_dim: self.rotary_dim,
            rope_scaling: self.rope_scaling,
            positions: self.positions,
        }
    }

    /// The learning-rate schedule (warmup, then cosine to `min_lr`).
    pub fn schedule(&self) -> Result<WarmupCosine, String> {
        if !(self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return Err(format!(
                "min_lr = {} must lie in [0, lr = {}]",
                self.min_lr, self.lr
            ));
        }
        WarmupCosine::new(self.warmup, self.steps, self.min_lr / self.lr)
            .map_err(|e| format!("schedule: {e}"))
    }

    /// Validates every hyper-parameter (the optimizer's through the core's builders).
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("batch_size", self.batch_size as u64),
            ("steps", self.steps),
            ("eval_interval", self.eval_interval),
            ("eval_iters", self.eval_iters as u64),
            ("accumulation", self.accumulation as u64),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if !(self.grad_clip.is_finite() && self.grad_clip >= 0.0) {
            return Err(format!(
                "grad_clip = {} must be finite and >= 0 (0 turns clipping off)",
                self.grad_clip
            ));
        }
        self.model(2).validate()?;
        self.schedule()?;
        match self.optimizer {
            OptimKind::Adamw => self.core_adamw().map(|_| ()),
            OptimKind::Lion => Lion::new(self.lion()).map(|_| ()),
            OptimKind::Tiger => Tiger::new(self.tiger()).map(|_| ()),
            OptimKind::Adafactor => self.core_adafactor().map(|_| ()),
            OptimKind::Sgdm => self.core_sgdm().map(|_| ()),
            OptimKind::Adax => self.core_adax().map(|_| ()),
            OptimKind::Muon => self.core_muon(2, self.n_embd).map(|_| ()),
            OptimKind::ZoSgd => self.zo().and(self.core_zo_sgd()).map(|_| ()),
        }
        .map_err(|e| format!("{}: {e}", self.optimizer.name()))?;
        if self.optimizer == OptimKind::ZoSgd && self.accumulation != 1 {
            return Err(format!(
                "zo-sgd: accumulation = {} is not supported (each step estimates from one batch);                  pass --accumulation 1, or a larger --batch-size",
                self.accumulation
            ));
        }
        Ok(())
    }

    /// The core AdamW config of this run.
    pub fn adamw(&self) -> AdamWConfig {
        let d = AdamWConfig::new(self.lr);
        AdamWConfig {
            beta1: self.beta1.unwrap_or(d.beta1),
            beta2: self.beta2.unwrap_or(d.beta2),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            ..d
        }
    }

    /// The core Lion config of this run.
    pub fn lion(&self) -> LionConfig {
        let d = LionConfig::new(self.lr);
        LionConfig {
            beta1: self.beta1.unwrap_or(d.beta1),
            beta2: self.beta2.unwrap_or(d.beta2),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            ..d
        }
    }

    /// The core Adafactor config of this run (β's do not apply: its β̂ₜ follows from t).
    pub fn adafactor(&self) -> AdafactorConfig {
        let d = AdafactorConfig::new(self.lr);
        AdafactorConfig {
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            ..d
        }
    }

    /// The core SGDM config of this run (momentum from `beta1`; the trainer accumulates
    /// the micro-batches, so the core's own accumulation stays 1).
    pub fn sgdm(&self) -> SgdmConfig {
        let d = SgdmConfig::new(self.lr);
        SgdmConfig {
            momentum: self.beta1.unwrap_or(d.momentum),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            ..d
        }
    }

    /// The core AdaX-W config of this run. AdaX's β₂ is a growth rate (default 1e-4), not
    /// a decay: the run's `beta2` (a decay, 0.99 in the presets) does not apply to it.
    pub fn adax(&self) -> AdaXConfig {
        let d = AdaXConfig::new(self.lr);
        AdaXConfig {
            beta1: self.beta1.unwrap_or(d.beta1),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            ..d
        }
    }

    /// AdamW through the generic adapter (no decay on vectors, as nanoGPT).
    pub fn core_adamw(&self) -> Result<Core<CoreAdamW>, ConfigError> {
        let c = self.adamw();
        grouped(
            |wd| {
                AdamWConfig {
                    weight_decay: wd,
                    ..c
                }
                .build()
            },
            c.weight_decay,
        )
    }

    /// Adafactor through the generic adapter.
    pub fn core_adafactor(&self) -> Result<Core<CoreAdafactor>, ConfigError> {
        let c = self.adafactor();
        grouped(
            |wd| {
                AdafactorConfig {
                    weight_decay: wd,
                    ..c
                }
                .build()
            },
            c.weight_decay,
        )
    }

    /// SGDM through the generic adapter.
    pub fn core_sgdm(&self) -> Result<Core<CoreSgdm>, ConfigError> {
        let c = self.sgdm();
        grouped(
            |wd| {
                SgdmConfig {
                    weight_decay: wd,
                    ..c
                }
                .build()
            },
            c.weight_decay,
        )
    }

    /// The core Muon config of this run: `match_rms_adamw`, so the run's (AdamW-sized) lr and
    /// weight decay serve Muon too (Moonshot's recipe); Muon's own momentum 0.95 and
    /// Nesterov (`beta1` is AdamW's).
    pub fn muon(&self) -> MuonConfig {
        let d = MuonConfig::new(self.lr);
        MuonConfig {
            // The run's (AdamW's) decay, given or default: one decay for both.
            weight_decay: self.adamw().weight_decay,
            adjust_lr: AdjustLr::MatchRmsAdamW,
            ..d
        }
    }

    /// Muon on hidden matrices and AdamW (this run's) on the `[vocab, width]` embedding (and
    /// the `[block_size, width]` learned positions), and the vectors, through the generic
    /// adapter. burn hands the optimizer a tensor's shape only, so the embeddings are known by
    /// theirs: a model where a hidden matrix has an embedding's shape is refused
    /// ([`TrainConfig::validate`]).
    pub fn core_muon(
        &self,
        vocab: usize,
        width: usize,
    ) -> Result<Core<MuonWithAux<CoreAdamW>>, ConfigError> {
        let (m, a) = (self.muon(), self.adamw());
        let mut embeddings = vec![[vocab, width]];
        if self.positions == Positions::Learned {
            embeddings.push([self.block_size, width]);
        }
        Core::with_embeddings(embeddings, width, |decay| {
            let wd = if decay { a.weight_decay } else { 0.0 };
            let muon = MuonConfig {
                weight_decay: if decay { m.weight_decay } else { 0.0 },
                ..m
            }
            .build()?;
            let aux = Grouped::build(width, |k| {
                AdamWConfig {
                    weight_decay: wd,
                    ..a
                }
                .preset(k)
                .build()
            })?;
            MuonWithAux::new(muon, aux)
        })
    }

    /// The zeroth-order estimator of a ZO-SGD run (MeZO: Gaussian z, two-sided, q = 1, ε from
    /// `zo_eps`, seed of the run).
    pub fn zo(&self) -> Result<Zo, ConfigError> {
        ZoConfig {
            seed: self.seed,
            ..ZoConfig::new(self.zo_eps.unwrap_or(1e-3))
        }
        .build()
    }

    /// MeZO's SGD (μ = 0, coupled decay on matrices only) in the generic adapter (its
    /// checkpoint layout; it holds no state).
    pub fn core_zo_sgd(&self) -> Result<Core<Sgd>, ConfigError> {
        let wd = self.weight_decay.unwrap_or(0.0);
        grouped(
            |wd| {
                SgdConfig {
                    weight_decay: wd,
                    ..SgdConfig::new(self.lr)
                }
                .build()
            },
            wd,
        )
    }

    /// AdaX-W through the generic adapter.
    pub fn core_adax(&self) -> Result<Core<CoreAdaX>, ConfigError> {
        let c = self.adax();
        grouped(
            |wd| {
                AdaXConfig {
                    weight_decay: wd,
                    ..c
                }
                .build()
            },
            c.weight_decay,
        )
    }

    /// The core Tiger config of this run (β from `beta1`; `accumulation` is Tiger's k).
    pub fn tiger(&self) -> TigerConfig {
        let d = TigerConfig::new(self.lr);
        TigerConfig {
            beta: self.beta1.unwrap_or(d.beta),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            accumulation: self.accumulation,
            ..d
        }
    }
}

/// Where and how a run goes (not part of the stored configuration).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output directory (checkpoint, PNG).
    pub out: PathBuf,
    /// Continue from `out/ckpt.safetensors`.
    pub resume: bool,
    /// The training text.
    pub data: Source,
    /// Draw a progress bar (off in tests).
    pub progress: bool,
    /// Testing: make the loss NaN at this step.
    pub fault_nan_step: Option<u64>,
    /// Testing: stop (as if killed) after this step's checkpoint.
    pub stop_after: Option<u64>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The final checkpoint's metadata (loss history included).
    pub meta: Meta,
    /// Trainable parameters.
    pub params: usize,
    /// Optimizer state in bytes (f32).
    pub state_bytes: usize,
    /// Where the checkpoint is.
    pub checkpoint: PathBuf,
}

/// The checkpoint file of an output directory.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    out.join("ckpt.safetensors")
}

/// Trains on back end `B` with the optimizer `cfg` names.
pub fn train<B>(cfg: &TrainConfig, opts: &RunOptions, device: &B::Device) -> Result<Report, String>
where
    B: AutodiffBackend,
    B::InnerBackend: SignStepBackend,
{
    cfg.validate()?;
    let map = |e: margay::optim::ConfigError| format!("{}: {e}", cfg.optimizer.name());
    match cfg.optimizer {
        OptimKind::Adamw => run::<B, _>(cfg, cfg.core_adamw().map_err(map)?, opts, device),
        OptimKind::Lion => run::<B, Lion>(cfg, Lion::new(cfg.lion()).map_err(map)?, opts, device),
        OptimKind::Tiger => {
            run::<B, Tiger>(cfg, Tiger::new(cfg.tiger()).map_err(map)?, opts, device)
        }
        OptimKind::Adafactor => run::<B, _>(cfg, cfg.core_adafactor().map_err(map)?, opts, device),
        OptimKind::Sgdm => run::<B, _>(cfg, cfg.core_sgdm().map_err(map)?, opts, device),
        OptimKind::Adax => run::<B, _>(cfg, cfg.core_adax().map_err(map)?, opts, device),
        OptimKind::Muon => {
            let vocab = Corpus::load(&opts.data)?.vocab.len();
            muon_shapes_are_distinct(cfg, vocab)?;
            let core = cfg.core_muon(vocab, cfg.n_embd).map_err(map)?;
            run::<B, _>(cfg, core, opts, device)
        }
        OptimKind::ZoSgd => run::<B, _>(cfg, cfg.core_zo_sgd().map_err(map)?, opts, device),
    }
}

/// Muon finds the embeddings by shape (see [`TrainConfig::core_muon`]): refuses a model whose
/// hidden matrices (`[d, 3d]`, `[d, d]`, `[d, 4d]`, `[4d, d]`) share an embedding's shape.
fn muon_shapes_are_distinct(cfg: &TrainConfig, vocab: usize) -> Result<(), String> {
    let d = cfg.n_embd;
    let mut rows = vec![("the vocabulary", vocab)];
    if cfg.positions == Positions::Learned {
        rows.push(("block_size", cfg.block_size));
    }
    for (what, r) in rows {
        if r == d || r == 4 * d {
            return Err(format!(
                "muon: {what} ({r}) makes the embedding [{r}, {d}] the shape of a hidden matrix,                  which the optimizer cannot tell apart; choose another n_embd"
            ));
        }
    }
    Ok(())
}

/// The generic adapter's groups: `build(weight_decay)` for matrices, `build(0)` for vectors.
fn grouped<O: margay::optim::Optimizer<f32>>(
    build: impl Fn(f32) -> Result<O, ConfigError>,
    weight_decay: f32,
) -> Result<Core<O>, ConfigError> {
    Core::new(|decay| build(if decay { weight_decay } else { 0.0 }))
}

/// Every parameter's shape (for the optimizer-state size in the report).
struct Shapes(Vec<Vec<usize>>);

impl<B: Backend> ModuleVisitor<B> for Shapes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(param.val().dims().to_vec());
    }
}

/// Sum of squares of every gradient, then PyTorch-form clipping by the core's rule.
struct Clip<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    sum: Option<Tensor<B::InnerBackend, 1>>,
    coef: Option<f32>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Clip<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        match self.coef {
            None => {
                if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                    let s = g.square().sum();
                    self.sum = Some(match self.sum.take() {
                        Some(acc) => acc + s,
                        None => s,
                    });
                }
            }
            Some(c) => {
                if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                    self.grads.register(param.id, g.mul_scalar(c));
                }
            }
        }
    }
}

fn clip<B: AutodiffBackend>(
    model: &Gpt<B>,
    grads: &mut GradientsParams,
    max_norm: f32,
) -> Result<(), String> {
    if max_norm == 0.0 {
        return Ok(());
    }
    let rule = ClipConfig::new(max_norm, ClipForm::Min)
        .build()
        .map_err(|e| format!("grad_clip: {e}"))?;
    let mut v = Clip::<B> {
        grads,
        sum: None,
        coef: None,
    };
    model.visit(&mut v);
    let Some(sum) = v.sum.take() else {
        return Ok(());
    };
    let norm = sum.into_scalar().elem::<f32>().sqrt();
    // Non-finite norm: coefficient 1, the gradients stay as they are for the optimizer's
    // own rule (Tiger's guard), as the core's clip does.
    let coef = rule.coefficient(norm);
    if coef != 1.0 {
        v.coef = Some(coef);
        model.visit(&mut v);
    }
    Ok(())
}

fn ids<B: Backend>(x: Vec<i64>, rows: usize, cols: usize, device: &B::Device) -> Tensor<B, 2, Int> {
    Tensor::from_data(TensorData::new(x, [rows, cols]), device)
}

/// Mean loss over `iters` batches of `split` drawn from a fixed seed (the same batches at
/// every evaluation), on the inference copy of the model.
pub fn evaluate<B: Backend>(
    model: &Gpt<B>,
    rope: &RopeCache<B>,
    corpus: &Corpus,
    split: Split,
    cfg: &TrainConfig,
    device: &B::Device,
) -> f32 {
    let mut rng = SplitMix64::new(cfg.seed ^ 0x5EED_E7A1);
    let mut total = 0.0f64;
    for _ in 0..cfg.eval_iters {
        let (x, y) = corpus.batch(split, cfg.batch_size, cfg.block_size, &mut rng);
        let (x, y) = (
            ids::<B>(x, cfg.batch_size, cfg.block_size, device),
            ids::<B>(y, cfg.batch_size, cfg.block_size, device),
        );
        total += model.loss(x, y, rope).into_scalar().elem::<f32>() as f64;
    }
    (total / cfg.eval_iters as f64) as f32
}

fn run<B, O>(
    cfg: &TrainConfig,
    optim: O,
    opts: &RunOptions,
    device: &B::Device,
) -> Result<Report, String>
where
    B: AutodiffBackend,
    O: StateIo<B::InnerBackend>,
{
    let corpus = Corpus::load(&opts.data)?;
    corpus.check_block(cfg.block_size)?;
    let mcfg = cfg.model(corpus.vocab.len());
    let ckpt = checkpoint_path(&opts.out);
    // The checkpoint's header, shape, optimizer and text are checked before the output
    // directory is touched; its tensors are read (and checked) when applied below, which
    // writes nothing either.
    let loaded = if opts.resume {
        let l = checkpoint::read(&ckpt)?;
        l.check(&mcfg, O::NAME)?;
        if l.meta.vocab != corpus.vocab.as_string() {
            return Err(format!(
                "{}: trained on another text (different vocabulary); resume with the same --data",
                ckpt.display()
            ));
        }
        if l.meta.step > cfg.steps {
            return Err(format!(
                "{}: already at step {}; ask for --steps >= {} (a different --steps also \
                 changes the learning-rate schedule from here on)",
                ckpt.display(),
                l.meta.step,
                l.meta.step
            ));
        }
        Some(l)
    } else {
        None
    };
    std::fs::create_dir_all(&opts.out).map_err(|e| {
        format!(
            "{}: cannot create the output directory ({e}); pass a writable --out",
            opts.out.display()
        )
    })?;
    // Temporary files left by a run killed while saving.
    if let Ok(dir) = std::fs::read_dir(&opts.out) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".ckpt.safetensors.") && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let mut model = mcfg.init::<B>(cfg.seed, device)?;
    let state_bytes = {
        let mut shapes = Shapes(Vec::new());
        model.visit(&mut shapes);
        4 * shapes.0.iter().map(|s| optim.state_len(s)).sum::<usize>()
    };
    let core = optim.clone();
    let mut opt: OptimizerAdaptor<O, Gpt<B>, B> = OptimizerAdaptor::from(optim);
    let mut meta = Meta {
        format: checkpoint::FORMAT,
        model: mcfg.clone(),
        train: cfg.clone(),
        vocab: corpus.vocab.as_string(),
        step: 0,
        rng: cfg.seed,
        train_loss: Vec::new(),
        val_loss: Vec::new(),
        guarded: 0,
        tokens_per_s: 0.0,
    };
    if let Some(l) = loaded {
        let (m, o) = l.apply(model, Some((opt, &core)))?;
        model = m;
        opt = o.expect("optimizer state requested");
        meta = Meta {
            train: cfg.clone(),
            ..l.meta
        };
    }
    let rope = RopeCache::<B>::new(&mcfg, cfg.block_size, device)?;
    let rope_eval = RopeCache::<B::InnerBackend>::new(&mcfg, cfg.block_size, device)?;
    let schedule = cfg.schedule()?;
    let tiger = cfg.optimizer == OptimKind::Tiger;
    let k = cfg.accumulation as usize;
    let mut rng = SplitMix64::new(meta.rng);
    let pb = if opts.progress {
        ProgressBar::new(cfg.steps)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta}]",
        )
        .map_err(|e| e.to_string())?,
    );
    pb.set_position(meta.step);
    let say = |pb: &ProgressBar, s: String| {
        if opts.progress {
            pb.suspend(|| println!("{s}"));
        }
    };
    let tokens_per_step = (cfg.batch_size * cfg.block_size * k) as f64;
    let mut train_time = 0.0f64;
    let mut trained = 0u64;
    let mut consecutive_bad = 0u64;
    let nan_stop = |step: u64, meta: &Meta, what: &str| {
        let kept = if meta.val_loss.is_empty() || !ckpt.exists() {
            "no checkpoint was written yet".to_string()
        } else {
            format!(
                "the last good checkpoint (step {}) is kept at {}",
                meta.val_loss.last().map_or(0, |v| v.0),
                ckpt.display()
            )
        };
        format!(
            "{what} at step {step} with {}: stopped without saving; {kept}. Lower --lr, keep \
             --grad-clip on, or train with --optimizer tiger (its guard skips such steps)",
            cfg.optimizer.name()
        )
    };
    let mut zo = match cfg.optimizer {
        OptimKind::ZoSgd => Some(ZoRun::new(cfg, &model).map_err(|e| format!("zo-sgd: {e}"))?),
        _ => None,
    };
    for step in meta.step + 1..=cfg.steps {
        let t0 = Instant::now();
        let lr = (cfg.lr * schedule.factor(step)) as f64;
        let loss = if let Some(zr) = &mut zo {
            // Forward passes only, on an inference model: no autodiff graph is built.
            let (x, y) = corpus.batch(Split::Train, cfg.batch_size, cfg.block_size, &mut rng);
            let (x, y) = (
                ids::<B::InnerBackend>(x, cfg.batch_size, cfg.block_size, device),
                ids::<B::InnerBackend>(y, cfg.batch_size, cfg.block_size, device),
            );
            let fault = opts.fault_nan_step == Some(step);
            zr.step(step, lr as f32, &rope_eval, x, y, fault)?
        } else {
            let mut loss_sum = 0.0f32;
            let mut accum = GradientsAccumulator::<Gpt<B>>::new();
            for _ in 0..k {
                let (x, y) = corpus.batch(Split::Train, cfg.batch_size, cfg.block_size, &mut rng);
                let (x, y) = (
                    ids::<B>(x, cfg.batch_size, cfg.block_size, device),
                    ids::<B>(y, cfg.batch_size, cfg.block_size, device),
                );
                let mut loss = model.loss(x, y, &rope);
                if opts.fault_nan_step == Some(step) {
                    loss = loss.mul_scalar(f32::NAN);
                }
                let value = loss.clone().into_scalar().elem::<f32>();
                if !value.is_finite() && !tiger {
                    pb.abandon();
                    return Err(nan_stop(step, &meta, "the loss is not finite"));
                }
                loss_sum += value;
                if tiger {
                    // Free accumulation: every micro-batch is a Tiger micro-step.
                    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
                    clip(&model, &mut grads, cfg.grad_clip)?;
                    model = opt.step(lr, model, grads);
                } else {
                    let loss = loss.div_scalar(k as f32);
                    accum.accumulate(&model, GradientsParams::from_grads(loss.backward(), &model));
                }
            }
            if !tiger {
                let mut grads = accum.grads();
                clip(&model, &mut grads, cfg.grad_clip)?;
                model = opt.step(lr, model, grads);
            }
            loss_sum / k as f32
        };
        if loss.is_finite() {
            consecutive_bad = 0;
        } else {
            meta.guarded += 1;
            consecutive_bad += 1;
            say(
                &pb,
                format!(
                    "step {step}: loss not finite, {}",
                    if zo.is_some() {
                        "the zeroth-order step was skipped (weights restored)"
                    } else {
                        "Tiger's guard shrank the weights"
                    }
                ),
            );
            if consecutive_bad >= 20 {
                pb.abandon();
                return Err(nan_stop(step, &meta, "20 non-finite losses in a row"));
            }
        }
        train_time += t0.elapsed().as_secs_f64();
        trained += 1;
        meta.step = step;
        meta.rng = rng.state();
        meta.train_loss.push((step, loss));
        let tps = trained as f64 * tokens_per_step / train_time.max(1e-9);
        pb.set_message(format!("loss {loss:.4}  {tps:.0} tok/s"));
        pb.set_position(step);
        if step % cfg.eval_interval == 0 || step == cfg.steps {
            if let Some(zr) = &zo {
                // ZO's weights live in its f32 vectors; the trained model takes them here.
                model = zr.sync(model);
            }
            let m = model.valid();
            let val = evaluate(&m, &rope_eval, &corpus, Split::Val, cfg, device);
            let tr = evaluate(&m, &rope_eval, &corpus, Split::Train, cfg, device);
            if !val.is_finite() {
                pb.abandon();
                return Err(nan_stop(step, &meta, "the validation loss is not finite"));
            }
            meta.val_loss.push((step, val));
            meta.tokens_per_s = tps;
            say(
                &pb,
                format!("step {step}: train {tr:.4}, val {val:.4}, lr {lr:.2e}, {tps:.0} tok/s"),
            );
            checkpoint::save(&ckpt, &model, &opt, &meta)?;
            super::plot::loss_curve(&opts.out.join("loss.png"), &meta)?;
            if opts.stop_after.is_some_and(|s| step >= s) {
                break;
            }
        }
    }
    pb.finish_and_clear();
    let params = mcfg.params();
    Ok(Report {
        meta,
        params,
        state_bytes,
        checkpoint: ckpt,
    })
}

/// Generates `len` characters after `prompt` from a checkpoint (temperature, top-k; the
/// randomness is margay's SplitMix64, so a seed gives the same text on every back end that
/// computes the same logits).
#[allow(clippy::too_many_arguments)]
pub fn sample<B: Backend>(
    path: &Path,
    prompt: &str,
    len: usize,
    temperature: f32,
    top_k: usize,
    seed: u64,
    device: &B::Device,
) -> Result<String, String> {
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(format!(
            "--temperature = {temperature} must be finite and > 0"
        ));
    }
    let l = checkpoint::read(path)?;
    let mcfg = l.meta.model.clone();
    let vocab = super::data::Vocab::from_string(&l.meta.vocab);
    let model = mcfg.init::<burn::backend::Autodiff<B>>(0, device)?;
    let (model, _) = l.apply::<burn::backend::Autodiff<B>, Core<CoreAdamW>>(model, None)?;
    let model = model.valid();
    let rope = RopeCache::<B>::new(&mcfg, mcfg.block_size, device)?;
    let mut ctx: Vec<i64> = if prompt.is_empty() {
        vec![vocab.id('\n').unwrap_or(0) as i64]
    } else {
        vocab
            .encode(prompt)
            .map_err(|e| format!("--prompt: {e}"))?
            .into_iter()
            .map(|t| t as i64)
            .collect()
    };
    let mut rng = SplitMix64::new(seed);
    let mut out = String::from(prompt);
    for _ in 0..len {
        let start = ctx.len().saturating_sub(mcfg.block_size);
        let window = ctx[start..].to_vec();
        let t = window.len();
        let logits = model.forward(ids::<B>(window, 1, t, device), &rope);
        let last = logits
            .narrow(1, t - 1, 1)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        let next = pick(&last, temperature, top_k, &mut rng);
        ctx.push(next as i64);
        out.push(vocab.char(next));
    }
    Ok(out)
}

/// Samples from softmax(logits / T) restricted to the `top_k` largest (0: all).
fn pick(logits: &[f32], temperature: f32, top_k: usize, rng: &mut SplitMix64) -> usize {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let keep = if top_k == 0 {
        order.len()
    } else {
        top_k.min(order.len())
    };
    let top = logits[order[0]];
    let w: Vec<f64> = order[..keep]
        .iter()
        .map(|&i| (((logits[i] - top) / temperature) as f64).exp())
        .collect();
    let total: f64 = w.iter().sum();
    let mut u = rng.next_f32() as f64 * total;
    for (j, &wj) in w.iter().enumerate() {
        if u < wj {
            return order[j];
        }
        u -= wj;
    }
    order[keep - 1]
}

/// For tests: the model's parameters as plain vectors, in visiting order.
pub fn flat_params<B: Backend>(model: &Gpt<B>) -> Vec<Vec<f32>> {
    struct V(Vec<Vec<f32>>);
    impl<B: Backend> ModuleVisitor<B> for V {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.0.push(
                p.val()
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .unwrap_or_default(),
            );
        }
    }
    let mut v = V(Vec::new());
    model.visit(&mut v);
    v.0
}

/// Loads a checkpoint's model for inspection (tests, `sample`).
pub fn load_model<B: AutodiffBackend>(
    path: &Path,
    device: &B::Device,
) -> Result<(Meta, Gpt<B>), String> {
    let l = checkpoint::read(path)?;
    let model = l.meta.model.init::<B>(0, device)?;
    let (model, _) = l.apply::<B, Core<CoreAdamW>>(model, None)?;
    Ok((l.meta.clone(), model))
}

/// One tensor's new values, in visiting order, into a model (ids and `require_grad` kept).
struct SetValues<'a> {
    vals: &'a [&'a [f32]],
    next: usize,
}

impl<B: Backend> burn::module::ModuleMapper<B> for SetValues<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, t, mapper) = param.consume();
        let v = self.vals[self.next];
        self.next += 1;
        let grad = t.is_require_grad();
        let new = Tensor::<B, D>::from_data(TensorData::new(v.to_vec(), t.dims()), &t.device())
            .set_require_grad(grad);
        Param::from_mapped_value(id, new, mapper)
    }
}

fn set_values<B: Backend>(model: Gpt<B>, vals: &[&[f32]]) -> Gpt<B> {
    model.map(&mut SetValues { vals, next: 0 })
}

/// MeZO's step on the trainer's model: the weights live in f32 vectors (so the step has the
/// core's bits) and the core's estimator perturbs, evaluates and restores them in place, each
/// forward pass on an inference model (no autodiff tensors are made per step: on the autodiff
/// back end they would pile up, never freed by a backward pass), then the core's fused SGD
/// applies ĝ tensor by tensor without a gradient buffer. The trained model takes the vectors
/// at each evaluation ([`ZoRun::sync`]). A skipped step leaves the vectors as the estimator
/// restored them (within its documented drift bound).
struct ZoRun<IB: Backend> {
    zo: Zo,
    /// Matrices (coupled decay) and vectors (none).
    sgd: [Sgd; 2],
    params: Vec<Vec<f32>>,
    vector: Vec<bool>,
    inner: Option<Gpt<IB>>,
}

impl<IB: Backend> ZoRun<IB> {
    fn new<B: AutodiffBackend<InnerBackend = IB>>(
        cfg: &TrainConfig,
        model: &Gpt<B>,
    ) -> Result<Self, ConfigError> {
        let wd = cfg.weight_decay.unwrap_or(0.0);
        let sgd = |wd| {
            SgdConfig {
                weight_decay: wd,
                ..SgdConfig::new(cfg.lr)
            }
            .build()
        };
        let mut shapes = Shapes(Vec::new());
        model.visit(&mut shapes);
        Ok(ZoRun {
            zo: cfg.zo()?,
            sgd: [sgd(wd)?, sgd(0.0)?],
            params: flat_params(model),
            vector: shapes.0.iter().map(|s| s.len() < 2).collect(),
            inner: Some(model.valid()),
        })
    }

    /// One step; returns the mean of the two losses (NaN when skipped).
    fn step(
        &mut self,
        step: u64,
        lr: f32,
        rope: &RopeCache<IB>,
        x: Tensor<IB, 2, Int>,
        y: Tensor<IB, 2, Int>,
        fault: bool,
    ) -> Result<f32, String> {
        let cur = &mut self.inner;
        let mut loss = |p: &mut [&mut [f32]]| -> f32 {
            let vals: Vec<&[f32]> = p.iter().map(|v| &**v).collect();
            let m = set_values(cur.take().expect("put back below"), &vals);
            let mut l = m.loss(x.clone(), y.clone(), rope);
            if fault {
                l = l.mul_scalar(f32::NAN);
            }
            *cur = Some(m);
            l.into_scalar().elem::<f32>()
        };
        let dirs = self.zo.directions(step);
        let est = {
            let mut views: Vec<&mut [f32]> =
                self.params.iter_mut().map(|v| v.as_mut_slice()).collect();
            self.zo.estimate(&dirs, &mut views, &mut loss)
        };
        if est.status() != ZoStatus::Estimated {
            return Ok(f32::NAN);
        }
        let s = margay::optim::Step::new(step, lr).map_err(|e| format!("lr: {e}"))?;
        for (i, (p, &vector)) in self.params.iter_mut().zip(&self.vector).enumerate() {
            let sgd = &self.sgd[usize::from(vector)];
            est.sgd_step::<_, f32>(&dirs, sgd, s, i as u32, p, &mut [])
                .map_err(|e| format!("zo-sgd: {e}"))?;
        }
        let [fp, fm] = est.losses()[0];
        Ok(0.5 * (fp + fm))
    }

    /// The trained model with the current weights.
    fn sync<B: AutodiffBackend<InnerBackend = IB>>(&self, model: Gpt<B>) -> Gpt<B> {
        let vals: Vec<&[f32]> = self.params.iter().map(|v| v.as_slice()).collect();
        set_values(model, &vals)
    }
}
