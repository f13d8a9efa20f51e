//! Tiger and Lion as burn optimizers (`SimpleOptimizer`, one tensor at a time), with their
//! own tensor code because on a GPU their step is one fused kernel; every other optimizer
//! reaches burn through the generic adapter [`super::generic::Core`].
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
    ConfigError, Guard, Lion as CoreLion, LionConfig, LrMode, Tiger as CoreTiger, TigerConfig,
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
