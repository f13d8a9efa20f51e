//! Zeroth-order steps: SPSA / MeZO gradient estimates from forward passes only (Spall 1992;
//! Malladi et al. 2023, "Fine-Tuning Language Models with Just Forward Passes"; kexue 7737
//! and 7521).
//!
//! Intuition: the directional derivative along a random direction z is a difference of two
//! losses, and `E[(zᵀg)·z] = g` when `E[zzᵀ] = I`; so two forward passes give an unbiased
//! (for a quadratic, exact-in-expectation) gradient estimate. z is regenerated from a counter
//! instead of stored, and the parameters are perturbed **in place**: no backward pass, no
//! activations, no gradient buffer: training in inference memory.
//!
//! | config field | symbol | default | source |
//! |---|---|---|---|
//! | `eps` | ε | 1e-3 | MeZO |
//! | `samples` | q | 1 (1..=[`MAX_SAMPLES`]) | MeZO (n = 1) |
//! | `directions` | z | [`Directions::Gaussian`] | MeZO (`torch.normal`) |
//! | `perturbation` | | [`Perturbation::TwoSided`] | MeZO |
//! | `estimator` | | [`Estimator::Projected`] | MeZO; [`Estimator::Sign`] is ZO-SignSGD |
//! | `seed` | | 0 | |
//!
//! One estimate at step t, in execution order (θ the parameters, f the loss):
//! ```text
//! one-sided only:  f₀ = f(θ)
//! for j = 1..q:    z_j = Z(seed, t, j, tensor, index)          (regenerated, never stored)
//!   two-sided:     θ += εz_j; f₊ = f(θ); θ −= 2εz_j; f₋ = f(θ); θ += εz_j
//!                  p_j = (f₊ − f₋) / (2ε)
//!   one-sided:     θ += εz_j; f₊ = f(θ); θ −= εz_j;  p_j = (f₊ − f₀) / ε
//! c_j = p_j / q  (Projected)  or  sign(p_j) / q  (Sign; sign(0) = 0)
//! ĝ = Σ_j c_j·z_j                                               (j in order)
//! ```
//! ĝ then feeds any optimizer ([`ZoEstimate::update`], which needs a gradient buffer), or
//! [`Sgd`](super::Sgd) fused without one ([`ZoEstimate::sgd_step`]): the named bases are MeZO's
//! rule `θ ← θ − η(ĝ + λθ)` (Sgd, μ = 0), SGD with momentum (PyTorch semantics) and
//! ZO-SignSGD (the Sign estimator into Sgd).
//!
//! **Directions.** [`CounterZ`] is counter-based: `z` at (seed, step, sample, tensor, index)
//! is a pure function of those five integers (SplitMix64's output function on a counter), so
//! every chip, every SIMD level and every restart gets the same z. Rademacher: one 64-bit
//! word per 64 values, bit set → −1. Gaussian: Box–Muller from one word per pair
//! (`r = √(−2 ln u₁)`, u₁ from 24 bits; the angle from a quadrant and 22 bits, its sin and cos
//! by polynomials on [−π/4, π/4]; libm's software `ln`: the same bits everywhere). [`Explicit`] takes z from the caller (tests, golden vectors).
//!
//! **Restore and its drift.** θ is put back by arithmetic, not from a copy (there is no room
//! for one). Each `θ + s·z` rounds once, and `2εz` is exactly twice `εz`, so after one sample
//! every restored value satisfies `|θ' − θ| ≤ 2⁻²²·(|θ| + 2ε|z|)` (three roundings of ½ ulp of
//! values below `|θ| + ε|z|`; one-sided: two); over q samples the bounds add. At θ ≈ 1,
//! ε = 1e-3 that is ≤ 2.4e-7 per sample, two ulp of 1.0. The bound is tested.
//!
//! **Non-finite losses.** If any f is NaN or ±∞ (or a quotient p_j overflows), the sample's
//! restore still runs (after a non-finite f₊ directly, without the second pass), no further
//! sample is taken, the estimate's [`ZoStatus`] is `NonFiniteLoss` and applying it changes
//! nothing ([`super::Outcome::Skipped`]): θ is what it was, within the drift bound. A caller that
//! keeps a copy of θ (the trainer does) can put it back exactly instead.
//!
//! ```
//! use margay::optim::{Directions, SgdConfig, ZoConfig};
//! let zo = ZoConfig { directions: Directions::Rademacher, ..ZoConfig::new(1e-3) }.build().unwrap();
//! let sgd = SgdConfig::new(0.1).build().unwrap();
//! let mut w = [0.5_f32, -0.25, 1.0];
//! let loss = |p: &mut [&mut [f32]]| p[0].iter().map(|x| x * x).sum::<f32>();
//! for t in 1..=50 {
//!     let z = zo.directions(t);
//!     let est = zo.estimate(&z, &mut [&mut w[..]], loss);
//!     est.sgd_step::<_, f32>(&z, &sgd, sgd.at(t), 0, &mut w, &mut []).unwrap();
//! }
//! assert!(loss(&mut [&mut w[..]]) < 0.5 * 1.3125);
//! ```

use super::error::{positive, ConfigError, StepError};
use super::{Moment, Optimizer, Outcome, Sgd, Step, TensorSpec};
use crate::math::{ln, sign, sqrt};

/// Most samples q one estimate holds (its scalars live on the stack).
pub const MAX_SAMPLES: usize = 16;

/// Values per chunk of the perturb / gradient loops (a stack buffer of z).
const CHUNK: usize = 64;

/// The distribution of the directions z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Directions {
    /// ±1 with probability ½ each (E zzᵀ = I, ‖z‖² = d exactly).
    Rademacher,
    /// Standard normal (Box–Muller).
    Gaussian,
}

/// Which finite difference estimates the directional derivative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Perturbation {
    /// `(f(θ+εz) − f(θ−εz)) / 2ε`: 2q forward passes, error O(ε²).
    TwoSided,
    /// `(f(θ+εz) − f(θ)) / ε`: q + 1 forward passes, error O(ε).
    OneSided,
}

/// How a sample's scalar weighs its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Estimator {
    /// `ĝ = (1/q) Σ p_j z_j` (SPSA, MeZO).
    Projected,
    /// `ĝ = (1/q) Σ sign(p_j) z_j` (ZO-SignSGD; sign(0) = 0).
    Sign,
}

/// Zeroth-order estimator settings (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZoConfig {
    /// Perturbation size ε (finite, > 0).
    pub eps: f32,
    /// Samples q per estimate (1..=[`MAX_SAMPLES`]).
    pub samples: u32,
    /// Distribution of z.
    pub directions: Directions,
    /// One- or two-sided differences.
    pub perturbation: Perturbation,
    /// Projected gradient or its sign.
    pub estimator: Estimator,
    /// Seed of the counter-based directions.
    pub seed: u64,
}

impl Default for ZoConfig {
    fn default() -> Self {
        Self::new(1e-3)
    }
}

impl ZoConfig {
    /// MeZO's defaults with the given ε.
    pub const fn new(eps: f32) -> Self {
        ZoConfig {
            eps,
            samples: 1,
            directions: Directions::Gaussian,
            perturbation: Perturbation::TwoSided,
            estimator: Estimator::Projected,
            seed: 0,
        }
    }

    /// Validates: ε finite and > 0 with 2ε finite (the two-sided pass steps by −2εz), q in
    /// 1..=[`MAX_SAMPLES`].
    pub fn build(self) -> Result<Zo, ConfigError> {
        positive("eps", self.eps)?;
        if !(2.0 * self.eps).is_finite() {
            return Err(ConfigError::OutOfRange {
                field: "eps",
                value: self.eps,
                min: f32::MIN_POSITIVE,
                max: f32::MAX / 2.0,
            });
        }
        if self.samples == 0 {
            return Err(ConfigError::Zero { field: "samples" });
        }
        if self.samples as usize > MAX_SAMPLES {
            return Err(ConfigError::OutOfRange {
                field: "samples",
                value: self.samples as f32,
                min: 1.0,
                max: MAX_SAMPLES as f32,
            });
        }
        Ok(Zo { cfg: self })
    }
}

/// A validated zeroth-order estimator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zo {
    cfg: ZoConfig,
}

/// Where the directions come from: `fill` writes z of `sample` for `tensor`'s values
/// `start .. start + out.len()`. It must return the same values on every call.
pub trait DirectionSource {
    /// Writes z(sample, tensor, start + k) into `out[k]`.
    fn fill(&self, sample: u32, tensor: u32, start: usize, out: &mut [f32]);
}

/// SplitMix64's output function (Steele, Lea and Flood 2014).
#[inline(always)]
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Counter-based directions of one step: z is a pure function of
/// (seed, step, sample, tensor, index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterZ {
    key: u64,
    kind: Directions,
}

impl CounterZ {
    /// The directions of `step` for `seed`.
    pub const fn new(seed: u64, step: u64, kind: Directions) -> Self {
        CounterZ {
            key: mix(seed.wrapping_add(GOLDEN)) ^ mix(step.wrapping_mul(GOLDEN).wrapping_add(1)),
            kind,
        }
    }

    /// The stream of one (sample, tensor).
    #[inline(always)]
    const fn stream(&self, sample: u32, tensor: u32) -> u64 {
        mix(self
            .key
            .wrapping_add((((sample as u64) << 32) | tensor as u64).wrapping_mul(GOLDEN)))
    }

    /// Word `b` of a stream: SplitMix64's (b+1)-th output from state `stream`.
    #[inline(always)]
    const fn word(stream: u64, b: u64) -> u64 {
        mix(stream.wrapping_add(b.wrapping_add(1).wrapping_mul(GOLDEN)))
    }

    /// One value (the reference the block fill is tested against).
    pub fn at(&self, sample: u32, tensor: u32, index: usize) -> f32 {
        let s = self.stream(sample, tensor);
        match self.kind {
            Directions::Rademacher => rademacher(Self::word(s, (index >> 6) as u64), index & 63),
            Directions::Gaussian => {
                let (c, sn) = box_muller(Self::word(s, (index >> 1) as u64));
                if index & 1 == 0 {
                    c
                } else {
                    sn
                }
            }
        }
    }
}

/// Bit `k` of `w` as ±1.0 (set → −1), branch-free.
#[inline(always)]
fn rademacher(w: u64, k: usize) -> f32 {
    f32::from_bits(0x3F80_0000 | ((((w >> k) & 1) as u32) << 31))
}

/// Two standard normals from one 64-bit word (Box–Muller): r = √(−2 ln u₁) with
/// u₁ ∈ (0, 1] from the top 24 bits; the angle as a quadrant q (2 bits) and φ ∈ [−π/4, π/4)
/// (22 bits), so `(cos, sin)(qπ/2 + φ)` needs sin and cos only on [−π/4, π/4] ([`sin_cos`]).
#[cfg_attr(target_os = "none", inline(never))]
#[cfg_attr(not(target_os = "none"), inline)]
fn box_muller(w: u64) -> (f32, f32) {
    const INV24: f32 = 1.0 / 16_777_216.0;
    const INV22: f32 = 1.0 / 4_194_304.0;
    let u1 = ((w >> 40) + 1) as f32 * INV24;
    let q = (w >> 38) & 3;
    let phi = (((w >> 16) & 0x3F_FFFF) as f32 * INV22 - 0.5) * core::f32::consts::FRAC_PI_2;
    let r = sqrt(-2.0 * ln(u1));
    let (s, c) = sin_cos(phi);
    let (cq, sq) = match q {
        0 => (c, s),
        1 => (-s, c),
        2 => (-c, -s),
        _ => (s, -c),
    };
    (r * cq, r * sq)
}

/// sin and cos on [−π/4, π/4] by their Taylor polynomials to x¹¹ and x¹⁰ (Horner form, plain
/// f32 multiplies and adds: the same bits on every chip); the truncation error is below 2e-9,
/// and with Horner's roundings the results are within 1.2e-7 of libm's (tested).
#[inline(always)]
fn sin_cos(x: f32) -> (f32, f32) {
    let x2 = x * x;
    let s = x
        * (1.0
            + x2 * (-1.0 / 6.0
                + x2 * (1.0 / 120.0
                    + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362_880.0 + x2 * (-1.0 / 39_916_800.0))))));
    let c = 1.0
        + x2 * (-0.5
            + x2 * (1.0 / 24.0
                + x2 * (-1.0 / 720.0 + x2 * (1.0 / 40_320.0 + x2 * (-1.0 / 3_628_800.0)))));
    (s, c)
}

impl DirectionSource for CounterZ {
    #[cfg_attr(target_os = "none", inline(never))]
    fn fill(&self, sample: u32, tensor: u32, start: usize, out: &mut [f32]) {
        let s = self.stream(sample, tensor);
        match self.kind {
            Directions::Rademacher => {
                let mut i = start;
                let mut rest = &mut out[..];
                while !rest.is_empty() {
                    let w = Self::word(s, (i >> 6) as u64);
                    let k0 = i & 63;
                    let take = (64 - k0).min(rest.len());
                    let (head, tail) = rest.split_at_mut(take);
                    for (k, z) in head.iter_mut().enumerate() {
                        *z = rademacher(w, k0 + k);
                    }
                    i += take;
                    rest = tail;
                }
            }
            Directions::Gaussian => {
                let mut i = start;
                let mut k = 0;
                while k < out.len() {
                    let (c, sn) = box_muller(Self::word(s, (i >> 1) as u64));
                    if i & 1 == 0 {
                        out[k] = c;
                        if k + 1 < out.len() {
                            out[k + 1] = sn;
                        }
                        k += 2;
                        i += 2;
                    } else {
                        out[k] = sn;
                        k += 1;
                        i += 1;
                    }
                }
            }
        }
    }
}

/// Directions given by the caller: `z[sample·tensors + tensor]` is that sample's z for that
/// tensor (what the golden vectors and tests use).
#[derive(Debug, Clone, Copy)]
pub struct Explicit<'a> {
    z: &'a [&'a [f32]],
    tensors: usize,
}

impl<'a> Explicit<'a> {
    /// `z` holds `samples × tensors` slices, sample-major. An `Err` names the counts when
    /// `z.len()` is not a multiple of `tensors` (or `tensors` is 0).
    pub fn new(z: &'a [&'a [f32]], tensors: usize) -> Result<Self, StepError> {
        if tensors == 0 || !z.len().is_multiple_of(tensors) {
            return Err(StepError::LengthMismatch {
                params: tensors,
                grads: z.len(),
                state: 0,
            });
        }
        Ok(Explicit { z, tensors })
    }
}

impl DirectionSource for Explicit<'_> {
    /// Panics when (sample, tensor, range) is outside what was given (a test's mistake).
    fn fill(&self, sample: u32, tensor: u32, start: usize, out: &mut [f32]) {
        let zs = self.z[sample as usize * self.tensors + tensor as usize];
        out.copy_from_slice(&zs[start..start + out.len()]);
    }
}

/// What an estimate found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ZoStatus {
    /// Every sample's losses were finite: ĝ is defined.
    Estimated,
    /// A forward pass of `sample` (0-based; for the one-sided base loss f₀, sample 0) returned
    /// NaN or ±∞, or its difference quotient overflowed: the parameters were restored and
    /// applying the estimate changes nothing.
    NonFiniteLoss {
        /// The sample whose loss was not finite.
        sample: u32,
    },
}

/// The scalars of one estimate: ĝ = Σ c_j z_j is regenerated from them and the directions.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoEstimate {
    status: ZoStatus,
    projected: heapless::Vec<f32, MAX_SAMPLES>,
    losses: heapless::Vec<[f32; 2], MAX_SAMPLES>,
    coeffs: heapless::Vec<f32, MAX_SAMPLES>,
}

impl Zo {
    /// The validated configuration.
    pub const fn config(&self) -> &ZoConfig {
        &self.cfg
    }

    /// The counter-based directions of step `t`.
    pub const fn directions(&self, t: u64) -> CounterZ {
        CounterZ::new(self.cfg.seed, t, self.cfg.directions)
    }

    /// `θ += scale·z` for `sample` on every tensor (tensor index = position in `params`).
    #[cfg_attr(target_os = "none", inline(never))]
    pub fn perturb<D: DirectionSource>(
        &self,
        dirs: &D,
        sample: u32,
        scale: f32,
        params: &mut [&mut [f32]],
    ) {
        let mut z = [0.0f32; CHUNK];
        for (t, p) in params.iter_mut().enumerate() {
            for (c, chunk) in p.chunks_mut(CHUNK).enumerate() {
                let z = &mut z[..chunk.len()];
                dirs.fill(sample, t as u32, c * CHUNK, z);
                for (p, &z) in chunk.iter_mut().zip(z.iter()) {
                    *p += scale * z;
                }
            }
        }
    }

    /// Perturbs, evaluates `loss` and restores, q times (see the module docs); `loss` gets
    /// the perturbed parameters. The parameters end where they started, within the drift
    /// bound of the module docs.
    #[cfg_attr(target_os = "none", inline(never))]
    pub fn estimate<D, L>(&self, dirs: &D, params: &mut [&mut [f32]], mut loss: L) -> ZoEstimate
    where
        D: DirectionSource,
        L: FnMut(&mut [&mut [f32]]) -> f32,
    {
        let eps = self.cfg.eps;
        let q = self.cfg.samples;
        let mut est = ZoEstimate {
            status: ZoStatus::Estimated,
            projected: heapless::Vec::new(),
            losses: heapless::Vec::new(),
            coeffs: heapless::Vec::new(),
        };
        let f0 = match self.cfg.perturbation {
            Perturbation::OneSided => {
                let f0 = loss(params);
                if !f0.is_finite() {
                    est.status = ZoStatus::NonFiniteLoss { sample: 0 };
                    return est;
                }
                f0
            }
            Perturbation::TwoSided => 0.0,
        };
        for j in 0..q {
            self.perturb(dirs, j, eps, params);
            let fp = loss(params);
            let two = self.cfg.perturbation == Perturbation::TwoSided;
            if !fp.is_finite() || !two {
                // Back to θ now: the second pass is not needed (one-sided) or not useful.
                self.perturb(dirs, j, -eps, params);
            }
            if !fp.is_finite() {
                est.status = ZoStatus::NonFiniteLoss { sample: j };
                est.coeffs.clear();
                return est;
            }
            let (fm, p) = if two {
                self.perturb(dirs, j, -2.0 * eps, params);
                let fm = loss(params);
                self.perturb(dirs, j, eps, params);
                (fm, (fp - fm) / (2.0 * eps))
            } else {
                (f0, (fp - f0) / eps)
            };
            // A finite pair whose quotient overflows is as unusable as a NaN loss.
            if !fm.is_finite() || !p.is_finite() {
                est.status = ZoStatus::NonFiniteLoss { sample: j };
                est.coeffs.clear();
                return est;
            }
            let c = match self.cfg.estimator {
                Estimator::Projected => p,
                Estimator::Sign => sign(p),
            } / q as f32;
            // Capacity is MAX_SAMPLES and q <= MAX_SAMPLES (checked by build).
            let _ = est.projected.push(p);
            let _ = est.losses.push([fp, fm]);
            let _ = est.coeffs.push(c);
        }
        est
    }
}

impl ZoEstimate {
    /// Whether ĝ is defined.
    pub const fn status(&self) -> ZoStatus {
        self.status
    }

    /// The projected gradients p_j of the samples taken.
    pub fn projected(&self) -> &[f32] {
        &self.projected
    }

    /// `[f₊, f₋]` per sample (`[f₊, f₀]` one-sided).
    pub fn losses(&self) -> &[[f32; 2]] {
        &self.losses
    }

    /// The weights c_j of ĝ = Σ c_j z_j (empty when a loss was not finite).
    pub fn coefficients(&self) -> &[f32] {
        &self.coeffs
    }

    /// ĝ of `tensor` at values `start .. start + out.len()` into `out`.
    #[cfg_attr(target_os = "none", inline(never))]
    pub fn gradient<D: DirectionSource>(
        &self,
        dirs: &D,
        tensor: u32,
        start: usize,
        out: &mut [f32],
    ) {
        out.fill(0.0);
        let mut z = [0.0f32; CHUNK];
        for (o, s) in out.chunks_mut(CHUNK).zip((start..).step_by(CHUNK)) {
            let z = &mut z[..o.len()];
            for (j, &c) in self.coeffs.iter().enumerate() {
                dirs.fill(j as u32, tensor, s, z);
                for (o, &z) in o.iter_mut().zip(z.iter()) {
                    *o += c * z;
                }
            }
        }
    }

    /// Fused [`Sgd`] step on one tensor without a gradient buffer: ĝ is regenerated a chunk at
    /// a time and fed to Sgd's element rule (the same bits as [`ZoEstimate::gradient`]
    /// followed by [`Sgd::step`]). `tensor` is the tensor's position in the `params` given to
    /// [`Zo::estimate`]; `m` holds [`Sgd::momentum_len`] values. A skipped estimate returns
    /// `Outcome::Skipped` and changes nothing.
    #[cfg_attr(target_os = "none", inline(never))]
    pub fn sgd_step<D: DirectionSource, M: Moment>(
        &self,
        dirs: &D,
        sgd: &Sgd,
        s: Step,
        tensor: u32,
        params: &mut [f32],
        m: &mut [M],
    ) -> Result<Outcome, StepError> {
        let n = params.len();
        if m.len() != sgd.momentum_len(n) {
            return Err(StepError::StateLength {
                expected: sgd.momentum_len(n),
                got: m.len(),
            });
        }
        if self.status != ZoStatus::Estimated {
            return Ok(Outcome::Skipped);
        }
        let mut g = [0.0f32; CHUNK];
        let has_m = !m.is_empty();
        for (c, p) in params.chunks_mut(CHUNK).enumerate() {
            let g = &mut g[..p.len()];
            self.gradient(dirs, tensor, c * CHUNK, g);
            let mc = if has_m {
                &mut m[c * CHUNK..c * CHUNK + p.len()]
            } else {
                &mut m[..0]
            };
            sgd.kernel(s, p, g, mc);
        }
        Ok(Outcome::Updated)
    }

    /// ĝ of `tensor` into `grads`, then `opt`'s step through the interface: any optimizer
    /// whose round does not observe the gradients first (a `Chain` with global clipping needs
    /// every tensor's ĝ observed before any update: fill the buffers with
    /// [`ZoEstimate::gradient`] and run the round yourself). `tensor` is the tensor's position
    /// in the `params` given to [`Zo::estimate`]. A skipped estimate returns
    /// `Outcome::Skipped` and changes nothing (not even `grads`).
    #[allow(clippy::too_many_arguments)]
    pub fn update<D, O, M>(
        &self,
        dirs: &D,
        opt: &O,
        round: &O::Round,
        s: Step,
        spec: &TensorSpec,
        tensor: u32,
        params: &mut [f32],
        grads: &mut [f32],
        state: &mut [M],
    ) -> Result<Outcome, StepError>
    where
        D: DirectionSource,
        O: Optimizer<M>,
        M: Copy + Default,
    {
        super::check_buffers(opt, spec, params.len(), grads.len(), state.len())?;
        if self.status != ZoStatus::Estimated {
            return Ok(Outcome::Skipped);
        }
        self.gradient(dirs, tensor, 0, grads);
        opt.update(round, s, spec, params, grads, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_fill_matches_single_values_at_every_offset() {
        for kind in [Directions::Rademacher, Directions::Gaussian] {
            let z = CounterZ::new(7, 3, kind);
            for start in [0usize, 1, 5, 63, 64, 130] {
                let mut out = [0.0f32; 150];
                z.fill(2, 1, start, &mut out);
                for (k, &v) in out.iter().enumerate() {
                    assert_eq!(v.to_bits(), z.at(2, 1, start + k).to_bits());
                }
            }
        }
    }

    #[test]
    fn the_polynomial_sin_cos_is_within_an_ulp_of_libm() {
        for i in 0..=2000 {
            let x = (i as f32 / 1000.0 - 1.0) * core::f32::consts::FRAC_PI_4;
            let (s, c) = sin_cos(x);
            assert!((s - libm::sinf(x)).abs() <= 1.2e-7, "sin {x}");
            assert!((c - libm::cosf(x)).abs() <= 1.2e-7, "cos {x}");
        }
    }

    #[test]
    fn streams_differ_by_seed_step_sample_and_tensor() {
        let base = CounterZ::new(1, 1, Directions::Rademacher);
        let take = |z: CounterZ, s: u32, t: u32| {
            let mut o = [0.0f32; 64];
            z.fill(s, t, 0, &mut o);
            o
        };
        let a = take(base, 0, 0);
        assert_ne!(a, take(CounterZ::new(2, 1, Directions::Rademacher), 0, 0));
        assert_ne!(a, take(CounterZ::new(1, 2, Directions::Rademacher), 0, 0));
        assert_ne!(a, take(base, 1, 0));
        assert_ne!(a, take(base, 0, 1));
    }

    #[test]
    fn bad_config_is_refused() {
        for eps in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(ZoConfig::new(eps).build().is_err());
        }
        let c = ZoConfig::new(1e-3);
        assert_eq!(
            ZoConfig { samples: 0, ..c }.build(),
            Err(ConfigError::Zero { field: "samples" })
        );
        assert!(ZoConfig { samples: 17, ..c }.build().is_err());
        assert!(ZoConfig::new(f32::MAX).build().is_err());
    }

    #[test]
    fn an_overflowing_quotient_skips_like_a_nan_loss() {
        // Finite losses whose difference overflows: p = ±∞ would make ĝ non-finite.
        let zo = ZoConfig::new(1e-30).build().unwrap();
        let mut w = [0.5f32; 4];
        let mut calls = 0;
        let est = zo.estimate(&zo.directions(1), &mut [&mut w[..]], |_| {
            calls += 1;
            if calls == 1 {
                3e38
            } else {
                -3e38
            }
        });
        assert_eq!(est.status(), ZoStatus::NonFiniteLoss { sample: 0 });
        assert!(est.coefficients().is_empty());
    }

    #[test]
    fn a_nan_loss_skips_and_restores() {
        let zo = ZoConfig::new(1e-2).build().unwrap();
        let sgd = super::super::SgdConfig::new(0.1).build().unwrap();
        let w0 = [0.5f32, -0.25, 2.0];
        let mut w = w0;
        let z = zo.directions(1);
        let mut calls = 0;
        let est = zo.estimate(&z, &mut [&mut w[..]], |_| {
            calls += 1;
            if calls == 2 {
                f32::NAN
            } else {
                1.0
            }
        });
        assert_eq!(est.status(), ZoStatus::NonFiniteLoss { sample: 0 });
        for (i, (a, b)) in w.iter().zip(&w0).enumerate() {
            let bound = 2f32.powi(-22) * (b.abs() + 2.0 * 1e-2 * z.at(0, 0, i).abs());
            assert!((a - b).abs() <= bound);
        }
        let before = w;
        let r = est.sgd_step::<_, f32>(&z, &sgd, sgd.at(1), 0, &mut w, &mut []);
        assert_eq!(r, Ok(Outcome::Skipped));
        assert_eq!(w, before);
    }
}
