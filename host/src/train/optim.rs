//! Tiger, Lion and AdamW as burn optimizers (`SimpleOptimizer`, one tensor at a time).
//!
//! Each one restates the equations of its `margay::optim` twin, takes its hyper-parameters
//! (and their validation and defaults) from a built core config, and is tested against the
//! core step on identical inputs (`tests/tests/host_train.rs`).
//!
//! ```text
//! Lion   c = β₁m + (1−β₁)g;  θ ← θ(1 − ηλ) − η·sign(c);  m ← β₂m + (1−β₂)g
//! Tiger  m ← b·m + (1−β)/k·g  (b = β on a window's first micro-step, else 1)
//!        on every k-th micro-step: θ ← θ(1 − ηλ) − η·sign(m)
//!        a non-finite gradient: m unchanged, θ ← (θ − c)s + c          (the guard)
//! AdamW  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
//!        θ ← θ(1 − γλ) − γ/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)             (PyTorch)
//! ```
//!
//! Parameter groups follow nanoGPT and Tiger's preset, chosen by tensor rank: matrices
//! (rank ≥ 2: embeddings, projections) take weight decay, and Tiger's η = α·RMS(θ) over the
//! tensor; vectors (rank 1: RMSNorm gains) take no weight decay, and Tiger's η = α/2 with its
//! guard shrinking toward 1.
//!
//! Lion and Tiger share one sign step, [`SignStepBackend::sign_step`]: composed tensor ops
//! on the CPU back end (flex), a single fused CubeCL kernel (read θ, g, m; write θ, m) on
//! wgpu and CUDA. Its per-tensor scalars that live on the device (η, which depends on
//! RMS(θ), and the guard flag) travel in a 2-element `aux` tensor, so a step never waits for
//! the device.

use burn::optim::{LearningRate, SimpleOptimizer};
use burn::record::Record;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use margay::optim::{
    AdamW as CoreAdamW, AdamWConfig, ConfigError, Guard, Lion as CoreLion, LionConfig, LrMode,
    Tiger as CoreTiger, TigerConfig,
};

/// The scalars of one sign step (see [`SignStepBackend::sign_step`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignConsts {
    /// Factor on m in the direction c.
    pub b1: f32,
    /// Factor on g in the direction c.
    pub c1: f32,
    /// Factor on m in the new momentum.
    pub b2: f32,
    /// Factor on g in the new momentum.
    pub c2: f32,
    /// Weight decay λ (multiplied by η).
    pub wd: f32,
    /// Guard: shrink ratio s.
    pub shrink: f32,
    /// Guard: centre c.
    pub center: f32,
}

/// A back end that can run the sign step. The provided method is the composed-ops version
/// (what flex runs); GPU back ends override it with one fused kernel.
pub trait SignStepBackend: Backend {
    /// With `eta = aux[0]`, `bad = aux[1] != 0`:
    /// ```text
    /// c  = b1·m + c1·g
    /// θ' = bad ? (θ − center)·shrink + center : θ·(1 − η·wd) − η·sign(c)
    /// m' = bad ? m : b2·m + c2·g
    /// ```
    fn sign_step<const D: usize>(
        p: Tensor<Self, D>,
        g: Tensor<Self, D>,
        m: Tensor<Self, D>,
        aux: Tensor<Self, 1>,
        k: SignConsts,
    ) -> (Tensor<Self, D>, Tensor<Self, D>) {
        composed_sign_step(p, g, m, aux, k)
    }
}

impl SignStepBackend for burn::backend::Flex {}

/// The sign step in composed tensor ops, in the core's operation order (bit-identical to
/// `margay::optim` when η is).
pub fn composed_sign_step<B: Backend, const D: usize>(
    p: Tensor<B, D>,
    g: Tensor<B, D>,
    m: Tensor<B, D>,
    aux: Tensor<B, 1>,
    k: SignConsts,
) -> (Tensor<B, D>, Tensor<B, D>) {
    let eta = aux.clone().narrow(0, 0, 1).reshape([1; D]);
    let (bad, p_shr) = guard(&p, aux, k);
    let c = m.clone().mul_scalar(k.b1) + g.clone().mul_scalar(k.c1);
    let m_new = m.clone().mul_scalar(k.b2) + g.mul_scalar(k.c2);
    // 1 − η·λ, written as η·(−λ) + 1: the same bits.
    let decay = eta.clone().mul_scalar(-k.wd).add_scalar(1.0);
    let p_upd = p * decay - c.sign() * eta;
    (
        p_upd.mask_where(bad.clone(), p_shr),
        m_new.mask_where(bad, m),
    )
}

/// The guard's pieces: where it fires (`aux[1] != 0`, broadcast to θ's shape) and the shrunk
/// parameters `(θ − center)·shrink + center`.
fn guard<B: Backend, const D: usize>(
    p: &Tensor<B, D>,
    aux: Tensor<B, 1>,
    k: SignConsts,
) -> (Tensor<B, D, Bool>, Tensor<B, D>) {
    let bad = aux
        .narrow(0, 1, 1)
        .not_equal_elem(0.0)
        .reshape([1; D])
        .expand(p.shape());
    let p_shr = p
        .clone()
        .sub_scalar(k.center)
        .mul_scalar(k.shrink)
        .add_scalar(k.center);
    (bad, p_shr)
}

/// Tiger's momentum-only micro-step: `m' = b2·m + c2·g`, θ unchanged, or the guard.
fn accumulate<B: Backend, const D: usize>(
    p: Tensor<B, D>,
    g: Tensor<B, D>,
    m: Tensor<B, D>,
    aux: Tensor<B, 1>,
    k: SignConsts,
) -> (Tensor<B, D>, Tensor<B, D>) {
    let (bad, p_shr) = guard(&p, aux, k);
    let m_new = m.clone().mul_scalar(k.b2) + g.mul_scalar(k.c2);
    (p.mask_where(bad.clone(), p_shr), m_new.mask_where(bad, m))
}

/// Momentum and micro-step counter (Lion, Tiger).
#[derive(Record, Clone)]
pub struct MomentState<B: Backend, const D: usize> {
    /// The momentum m.
    pub m: Tensor<B, D>,
    /// Steps (Tiger: micro-steps) taken so far.
    pub time: usize,
}

impl<B: Backend, const D: usize> MomentState<B, D> {
    fn moved_to(self, device: &B::Device) -> Self {
        MomentState {
            m: self.m.to_device(device),
            time: self.time,
        }
    }
}

/// Both moments and the step counter (AdamW).
#[derive(Record, Clone)]
pub struct AdamWState<B: Backend, const D: usize> {
    /// First moment.
    pub m: Tensor<B, D>,
    /// Second moment.
    pub v: Tensor<B, D>,
    /// Steps taken so far.
    pub time: usize,
}

/// `[η, bad]` as a device tensor.
fn aux<B: Backend, const D: usize>(
    eta: Tensor<B, 1>,
    g: &Tensor<B, D>,
    guard: Option<Guard>,
) -> Tensor<B, 1> {
    let bad = match guard {
        None => eta.zeros_like(),
        // 0·g sums to NaN iff some element is NaN or ±Inf.
        Some(Guard::NonFinite) => g.clone().mul_scalar(0.0).sum().is_nan().float(),
        Some(Guard::NanOnly) => g.clone().is_nan().any().float(),
    };
    Tensor::cat(vec![eta, bad], 0)
}

fn scalar<B: Backend>(x: f32, like: &Tensor<B, 1>) -> Tensor<B, 1> {
    Tensor::from_floats([x], &like.device())
}

/// Lion as a burn optimizer; hyper-parameters from a validated [`margay::optim::Lion`].
#[derive(Debug, Clone, Copy)]
pub struct Lion {
    core: CoreLion,
}

impl Lion {
    /// Validates `cfg` with the core's rules.
    pub fn new(cfg: LionConfig) -> Result<Self, ConfigError> {
        Ok(Lion { core: cfg.build()? })
    }

    /// The core optimizer these equations restate.
    pub fn core(&self) -> &CoreLion {
        &self.core
    }
}

impl<B: SignStepBackend> SimpleOptimizer<B> for Lion {
    type State<const D: usize> = MomentState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<B, D>,
        g: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let c = self.core.config();
        let (m, time) = match state {
            Some(s) => (s.m, s.time),
            None => (g.zeros_like(), 0),
        };
        let k = SignConsts {
            b1: c.beta1,
            c1: 1.0 - c.beta1,
            b2: c.beta2,
            c2: 1.0 - c.beta2,
            wd: if D >= 2 { c.weight_decay } else { 0.0 },
            shrink: 1.0,
            center: 0.0,
        };
        let eta = Tensor::from_floats([lr as f32], &p.device());
        let aux = aux(eta, &g, None);
        let (p, m) = B::sign_step(p, g, m, aux, k);
        (p, Some(MomentState { m, time: time + 1 }))
    }

    fn to_device<const D: usize>(s: Self::State<D>, device: &B::Device) -> Self::State<D> {
        s.moved_to(device)
    }
}

/// Tiger as a burn optimizer: two validated [`margay::optim::Tiger`]s, one per group
/// (matrices: `LrMode::Rms`; vectors: `Absolute`, `lr_scale` 0.5, no decay, guard centre 1).
/// `accumulation = k` makes every k-th call an update and the others momentum-only
/// micro-steps: call [`burn::optim::Optimizer::step`] once per micro-batch.
#[derive(Debug, Clone, Copy)]
pub struct Tiger {
    matrix: CoreTiger,
    vector: CoreTiger,
}

impl Tiger {
    /// Validates `cfg` (its `lr_mode`, `lr_scale` and `nan_center` are set per group).
    pub fn new(cfg: TigerConfig) -> Result<Self, ConfigError> {
        Ok(Tiger {
            matrix: TigerConfig {
                lr_mode: LrMode::Rms,
                ..cfg
            }
            .build()?,
            vector: TigerConfig {
                lr_mode: LrMode::Absolute,
                lr_scale: 0.5 * cfg.lr_scale,
                weight_decay: 0.0,
                nan_center: 1.0,
                ..cfg
            }
            .build()?,
        })
    }

    /// The core optimizer used for tensors of rank `rank`.
    pub fn core(&self, rank: usize) -> &CoreTiger {
        if rank >= 2 {
            &self.matrix
        } else {
            &self.vector
        }
    }
}

impl<B: SignStepBackend> SimpleOptimizer<B> for Tiger {
    type State<const D: usize> = MomentState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<B, D>,
        g: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let tiger = self.core(D);
        let c = tiger.config();
        let (m, time) = match state {
            Some(s) => (s.m, s.time),
            None => (g.zeros_like(), 0),
        };
        let t = time as u64 + 1;
        let (b, a) = (tiger.momentum_decay(t), tiger.momentum_add());
        let alpha = lr as f32 * c.lr_scale;
        let flat_p = p.clone().flatten::<1>(0, D - 1);
        let eta = match c.lr_mode {
            LrMode::Rms => flat_p.clone().square().mean().sqrt().mul_scalar(alpha),
            _ => scalar(alpha * tiger.mode_factor(), &flat_p),
        };
        let aux = aux(eta, &g, Some(c.guard));
        let k = SignConsts {
            b1: b,
            c1: a,
            b2: b,
            c2: a,
            wd: c.weight_decay,
            shrink: c.nan_shrink,
            center: c.nan_center,
        };
        if !tiger.is_update_step(t) {
            // A momentum-only micro-step: θ is read only if the guard fires.
            let (p, m) = accumulate(p, g, m, aux, k);
            return (p, Some(MomentState { m, time: time + 1 }));
        }
        let (p, m) = B::sign_step(p, g, m, aux, k);
        (p, Some(MomentState { m, time: time + 1 }))
    }

    fn to_device<const D: usize>(s: Self::State<D>, device: &B::Device) -> Self::State<D> {
        s.moved_to(device)
    }
}

/// AdamW with PyTorch semantics as a burn optimizer; hyper-parameters from a validated
/// [`margay::optim::AdamW`].
#[derive(Debug, Clone, Copy)]
pub struct AdamW {
    core: CoreAdamW,
}

impl AdamW {
    /// Validates `cfg` with the core's rules.
    pub fn new(cfg: AdamWConfig) -> Result<Self, ConfigError> {
        Ok(AdamW { core: cfg.build()? })
    }

    /// The core optimizer these equations restate.
    pub fn core(&self) -> &CoreAdamW {
        &self.core
    }
}

impl<B: Backend> SimpleOptimizer<B> for AdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<B, D>,
        g: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let c = self.core.config();
        let (m, v, time) = match state {
            Some(s) => (s.m, s.v, s.time),
            None => (g.zeros_like(), g.zeros_like(), 0),
        };
        let t = (time + 1) as f32;
        let lr = lr as f32;
        let wd = if D >= 2 { c.weight_decay } else { 0.0 };
        let bias1 = 1.0 - margay::math::powf(c.beta1, t);
        let bias2_sqrt = margay::math::sqrt(1.0 - margay::math::powf(c.beta2, t));
        let m = m.mul_scalar(c.beta1) + g.clone().mul_scalar(1.0 - c.beta1);
        let v = v.mul_scalar(c.beta2) + (g.clone() * g).mul_scalar(1.0 - c.beta2);
        let denom = v.clone().sqrt().div_scalar(bias2_sqrt).add_scalar(c.eps);
        let p = p.mul_scalar(1.0 - lr * wd) - (m.clone() / denom).mul_scalar(lr / bias1);
        (
            p,
            Some(AdamWState {
                m,
                v,
                time: time + 1,
            }),
        )
    }

    fn to_device<const D: usize>(s: Self::State<D>, device: &B::Device) -> Self::State<D> {
        AdamWState {
            m: s.m.to_device(device),
            v: s.v.to_device(device),
            time: s.time,
        }
    }
}

/// Adafactor's factored second moment (rank ≥ 2: row and column statistics over the last two
/// dims) or its full one (rank 1: `row` holds it, `col` is a placeholder), and the step count.
#[derive(Record, Clone)]
pub struct AdafactorState<B: Backend, const D: usize> {
    /// Row means of g² (`[.., n, 1]`), or the full second moment of a vector.
    pub row: Tensor<B, D>,
    /// Column means of g² (`[.., 1, m]`); one element for a vector.
    pub col: Tensor<B, D>,
    /// Steps taken so far.
    pub time: usize,
}

/// Adafactor (PyTorch's conventions) as a burn optimizer, from a validated
/// [`margay::optim::Adafactor`]: factored over the last two dims of tensors of rank ≥ 2,
/// unfactored for vectors; RMS(θ), the update's RMS and `mean(R)` stay on the device. Not
/// offered by `margay train` (its checkpoints hold state shaped like the parameters).
#[derive(Debug, Clone, Copy)]
pub struct Adafactor {
    core: margay::optim::Adafactor,
}

impl Adafactor {
    /// Validates `cfg` with the core's rules.
    pub fn new(cfg: margay::optim::AdafactorConfig) -> Result<Self, ConfigError> {
        Ok(Adafactor { core: cfg.build()? })
    }
}

impl<B: Backend> SimpleOptimizer<B> for Adafactor {
    type State<const D: usize> = AdafactorState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<B, D>,
        g: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let c = self.core.config();
        let time = state.as_ref().map_or(0, |s| s.time) + 1;
        let t = time as f32;
        let lr = lr as f32;
        let w = margay::math::powf(t, c.beta2_decay);
        let rho = lr.min(1.0 / margay::math::sqrt(t));
        let ones = [1usize; D];
        let alpha = p
            .clone()
            .square()
            .mean()
            .sqrt()
            .clamp_min(c.eps2)
            .mul_scalar(rho)
            .reshape(ones);
        let p = if c.weight_decay != 0.0 {
            p.mul_scalar(1.0 - lr * c.weight_decay)
        } else {
            p
        };
        let g2 = g.clone().square();
        let (row, col, v) = if D >= 2 {
            let (row0, col0) = match state {
                Some(s) => (s.row, s.col),
                None => (
                    g2.clone().mean_dim(D - 1).zeros_like(),
                    g2.clone().mean_dim(D - 2).zeros_like(),
                ),
            };
            let row = row0.mul_scalar(1.0 - w) + g2.clone().mean_dim(D - 1).mul_scalar(w);
            let col = col0.mul_scalar(1.0 - w) + g2.mean_dim(D - 2).mul_scalar(w);
            let r_mean = row.clone().mean_dim(D - 2).clamp_min(c.eps1);
            let v = (row.clone() * col.clone()) / r_mean;
            (row, col, v)
        } else {
            let (var0, col) = match state {
                Some(s) => (s.row, s.col),
                None => (g2.zeros_like(), Tensor::zeros(ones, &g2.device())),
            };
            let var = var0.mul_scalar(1.0 - w) + g2.mul_scalar(w);
            (var.clone(), col, var)
        };
        let u = g / v.clamp_min(c.eps1 * c.eps1).sqrt();
        let denom = u
            .clone()
            .square()
            .mean()
            .sqrt()
            .div_scalar(c.d)
            .clamp_min(1.0)
            .reshape(ones);
        let p = p - u * (alpha / denom);
        (p, Some(AdafactorState { row, col, time }))
    }

    fn to_device<const D: usize>(s: Self::State<D>, device: &B::Device) -> Self::State<D> {
        AdafactorState {
            row: s.row.to_device(device),
            col: s.col.to_device(device),
            time: s.time,
        }
    }
}
