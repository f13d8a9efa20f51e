//! Training a composed model: [`Backprop`] (any optimizer, one sample per step) and
//! [`ZoTrainer`] (forward-only SPSA / MeZO steps), and the [`Plan`] of their RAM.

use super::{Cell, Sink, Train};
use crate::nn::loss::{argmax_slice, softmax_cross_entropy_slice};
use crate::nn::num::{Num, Saturations};
use crate::nn::NnError;
use crate::optim::{DirectionSource, Estimator, Perturbation, Zo, ZoStatus};
use crate::optim::{Optimizer, Outcome, StepError, TensorSpec};
use core::mem::size_of;

/// The bytes a trainer needs, from the types alone (see the engine's module docs). Every
/// part is a field of the trainer, so [`Plan::total`] is its RAM apart from a few counters
/// (tests check it against `size_of`; the firmware against its measured peak).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Plan {
    /// The model: trainable parameters, frozen layers' RAM (scales, biases; int8 weights
    /// stay in flash) and its activation buffers.
    pub model: usize,
    /// Of `model`: the trainable parameters.
    pub params: usize,
    /// The logits (and, for backprop, their gradient).
    pub output: usize,
    /// Forward-only: the buffer one sample's readings are written into.
    pub input: usize,
    /// Backprop only: the gradient buffers between layers.
    pub backward: usize,
    /// One gradient scratch of the largest trainable tensor.
    pub scratch: usize,
    /// The optimizer state.
    pub state: usize,
}

impl Plan {
    /// Every part's bytes (`params` is inside `model`).
    pub const fn total(&self) -> usize {
        self.model + self.output + self.input + self.backward + self.scratch + self.state
    }
}

/// Counters of a training run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrainStats {
    /// Samples seen (micro-steps).
    pub samples: u32,
    /// Parameter updates (every `k` samples).
    pub updates: u32,
    /// Samples on which the optimizer's guard fired or its skip rule applied (Tiger's guard;
    /// a non-finite reading for any optimizer).
    pub guarded: u32,
    /// Values clamped to the fixed-point range (0 in floats).
    pub saturated: u32,
}

/// The state capacity `[start, end)` of each tensor, walked in the model's tensor order.
struct Layout {
    needed: usize,
}

/// Checks every tensor with `opt` and sums the state it needs.
fn layout<T: Num, M: Train<T>, O: Optimizer<T::Moment, T>>(
    model: &mut M,
    opt: &O,
    capacity: usize,
) -> Result<Layout, NnError> {
    let mut needed = 0usize;
    let mut err = None;
    model.tensors(&mut |spec, p| {
        if err.is_some() {
            return;
        }
        if let Err(e) = opt.check(spec).and_then(|()| opt.check_params(p)) {
            err = Some(e);
            return;
        }
        needed += opt.state_len(spec);
    });
    if let Some(e) = err {
        return Err(NnError::Step(e));
    }
    if needed > capacity {
        return Err(NnError::State { needed, capacity });
    }
    Ok(Layout { needed })
}

/// [`Optimizer::init`] on every tensor's state.
fn init_state<T: Num, M: Train<T>, O: Optimizer<T::Moment, T>>(
    model: &mut M,
    opt: &O,
    state: &mut [T::Moment],
) {
    let mut at = 0;
    model.tensors(&mut |spec, _| {
        let n = opt.state_len(spec);
        opt.init(spec, &mut state[at..at + n]);
        at += n;
    });
}

/// [`Optimizer::skip`] on every tensor (a micro-step whose gradient cannot be formed).
fn skip_all<T: Num, M: Train<T>, O: Optimizer<T::Moment, T>>(
    model: &mut M,
    opt: &O,
    step: crate::optim::Step,
    state: &mut [T::Moment],
) -> Outcome {
    let (mut at, mut outcome) = (0, Outcome::Skipped);
    model.tensors(&mut |spec, p| {
        let n = opt.state_len(spec);
        outcome = opt.skip(step, spec, p, &mut state[at..at + n]);
        at += n;
    });
    outcome
}

/// FNV-1a over every trainable value's bit pattern, in tensor order.
fn fingerprint<T: Num, M: Train<T>>(model: &mut M) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    model.tensors(&mut |_, p| {
        for v in p.iter() {
            for b in v.word().to_le_bytes() {
                h = (h ^ b as u32).wrapping_mul(0x0100_0193);
            }
        }
    });
    h
}

fn finite<X: Cell<Scalar = f32>>(x: &X) -> bool {
    x.flat().iter().all(|v| v.is_finite())
}

/// The sink of the step pass: forms each gradient in the scratch and steps the tensor.
struct Apply<'s, T: Num, O: Optimizer<T::Moment, T>> {
    opt: &'s O,
    round: &'s O::Round,
    step: crate::optim::Step,
    state: &'s mut [T::Moment],
    at: usize,
    scratch: &'s mut [T],
    outcome: Outcome,
    error: Option<StepError>,
}

impl<T: Num, O: Optimizer<T::Moment, T>> Sink<T> for Apply<'_, T, O> {
    fn tensor(&mut self, spec: &TensorSpec, params: &mut [T], grad: &mut dyn FnMut(&mut [T])) {
        if self.error.is_some() {
            return;
        }
        let g = &mut self.scratch[..spec.len()];
        grad(g);
        let n = self.opt.state_len(spec);
        let state = &mut self.state[self.at..self.at + n];
        self.at += n;
        // `layout` checked each tensor and the state's capacity; params and gradient have the
        // spec's length by construction.
        match self
            .opt
            .apply(self.round, self.step, spec, params, g, state)
        {
            Ok(o) => self.outcome = o,
            Err(e) => self.error = Some(e),
        }
    }
}

/// The sink of the observe pass (an optimizer with global-norm clipping): forms each
/// gradient and shows it to the optimizer, changes nothing.
struct Observe<'s, T: Num, O: Optimizer<T::Moment, T>> {
    opt: &'s O,
    round: &'s mut O::Round,
    scratch: &'s mut [T],
}

impl<T: Num, O: Optimizer<T::Moment, T>> Sink<T> for Observe<'_, T, O> {
    fn tensor(&mut self, spec: &TensorSpec, _: &mut [T], grad: &mut dyn FnMut(&mut [T])) {
        let g = &mut self.scratch[..spec.len()];
        grad(g);
        observe(self.opt, self.round, spec, g);
    }
}

/// Shows one gradient to the optimizer (other formats than f32 in f32 chunks of 64).
fn observe<T: Num, O: Optimizer<T::Moment, T>>(
    opt: &O,
    round: &mut O::Round,
    spec: &TensorSpec,
    g: &[T],
) {
    match T::as_f32(g) {
        Some(g) => opt.observe(round, spec, g),
        None => {
            for chunk in g.chunks(64) {
                let mut f = [0.0f32; 64];
                for (f, v) in f.iter_mut().zip(chunk) {
                    *f = v.to_f32();
                }
                opt.observe(round, spec, &f[..chunk.len()]);
            }
        }
    }
}

/// Trains a composed model `M` by backprop with any optimizer `O: Optimizer<T::Moment, T>`,
/// one sample per step (Tiger's built-in accumulation makes every `k` samples one
/// mini-batch update with no gradient buffer). `S` is the gradient scratch (at least the
/// largest trainable tensor, a build error otherwise), `ST` the optimizer-state capacity in
/// `T::Moment` values (checked on every step: [`NnError::State`]).
///
/// Bad input: a label outside the classes is an error and changes nothing; a NaN/±Inf
/// reading makes every gradient non-finite, so the optimizer's [`Optimizer::skip`] rule is
/// applied to every tensor without forming them (Tiger's guard shrinks the weights by
/// `nan_shrink`, other optimizers leave everything as it is); in fixed point a value beyond
/// the format's range saturates and is counted in [`TrainStats::saturated`].
#[derive(Debug, Clone, PartialEq)]
pub struct Backprop<M: Train<T>, T: Num, const S: usize, const ST: usize> {
    /// The model being trained.
    pub model: M,
    out: M::Output,
    dz: M::Output,
    grads: M::Grads,
    scratch: [T; S],
    state: [T::Moment; ST],
    t: u64,
    /// Counters.
    pub stats: TrainStats,
}

const fn zero_stats() -> TrainStats {
    TrainStats {
        samples: 0,
        updates: 0,
        guarded: 0,
        saturated: 0,
    }
}

impl<M, T, const S: usize, const ST: usize> Backprop<M, T, S, ST>
where
    T: Num,
    M: Train<T>,
    M::Input: Cell<Scalar = f32>,
    M::Output: Cell<Scalar = T>,
{
    /// The memory plan of this trainer.
    pub const PLAN: Plan = Plan {
        model: size_of::<M>(),
        params: M::PARAMS * size_of::<T>(),
        output: 2 * size_of::<M::Output>(),
        input: 0,
        backward: size_of::<M::Grads>(),
        scratch: S * size_of::<T>(),
        state: ST * size_of::<T::Moment>(),
    };

    /// A trainer for `model` (a `const fn`, so it can sit in a `static`); the optimizer
    /// state is set to the optimizer's start value on the first step.
    pub const fn new(model: M) -> Self {
        const {
            assert!(
                S >= M::LARGEST,
                "Backprop: the scratch S must hold the largest trainable tensor"
            );
            let _chains: bool = M::PASSES;
        };
        Backprop {
            model,
            out: M::Output::ZEROED,
            dz: M::Output::ZEROED,
            grads: M::GRADS,
            scratch: [T::ZERO; S],
            state: [T::MOMENT_ZERO; ST],
            t: 1,
            stats: zero_stats(),
        }
    }

    /// Back to step 1 with zero counters (after loading new weights into the model).
    pub fn restart(&mut self) {
        self.t = 1;
        self.stats = TrainStats::default();
        self.state.fill(T::MOMENT_ZERO);
    }

    /// The optimizer state, tensor after tensor in the model's tensor order.
    pub fn state(&self) -> &[T::Moment] {
        &self.state
    }

    /// The logits of the last forward pass.
    pub fn logits(&self) -> &M::Output {
        &self.out
    }

    /// The predicted class (`None` for a non-finite reading).
    pub fn predict(&mut self, x: &M::Input, sat: &mut Saturations) -> Option<usize> {
        if !finite(x) {
            return None;
        }
        self.model.forward(x, &mut self.out, sat);
        Some(argmax_slice(self.out.flat()))
    }

    /// FNV-1a over the trainable values' bits: equal fingerprints mean identical weights.
    pub fn fingerprint(&mut self) -> u32 {
        fingerprint(&mut self.model)
    }

    /// One sample: forward, backward, and one optimizer step on every trainable tensor as
    /// soon as its gradient exists. Returns what the optimizer did to the last tensor (see
    /// the type's docs for bad input). The label, the state's capacity, each tensor's shape
    /// ([`crate::optim::Stage::check`]) and values ([`Optimizer::check_params`]) are checked
    /// before anything is written.
    pub fn train<O: Optimizer<T::Moment, T>>(
        &mut self,
        opt: &O,
        x: &M::Input,
        label: usize,
    ) -> Result<Outcome, NnError> {
        let classes = M::Output::WIDTH;
        if label >= classes {
            return Err(NnError::Label { label, classes });
        }
        let lay = layout(&mut self.model, opt, ST)?;
        if self.t == 1 {
            init_state(&mut self.model, opt, &mut self.state[..lay.needed]);
        }
        let step = opt.at(self.t);
        self.t += 1;
        self.stats.samples += 1;
        if !finite(x) {
            let outcome = skip_all(&mut self.model, opt, step, &mut self.state);
            self.stats.guarded += 1;
            return Ok(outcome);
        }
        let mut sat = Saturations::default();
        self.model.forward(x, &mut self.out, &mut sat);
        softmax_cross_entropy_slice(self.out.flat(), label, self.dz.flat_mut())?;
        let mut round = opt.begin(0.0);
        if O::OBSERVES {
            let mut sink = Observe {
                opt,
                round: &mut round,
                scratch: &mut self.scratch,
            };
            self.model.backward(
                x,
                &self.out,
                &self.dz,
                None,
                &mut self.grads,
                &mut sink,
                &mut sat,
            );
            opt.finish(&mut round);
        }
        let mut sink = Apply {
            opt,
            round: &round,
            step,
            state: &mut self.state,
            at: 0,
            scratch: &mut self.scratch,
            outcome: Outcome::Accumulated,
            error: None,
        };
        self.model.backward(
            x,
            &self.out,
            &self.dz,
            None,
            &mut self.grads,
            &mut sink,
            &mut sat,
        );
        let (outcome, error) = (sink.outcome, sink.error);
        self.stats.saturated += sat.0;
        if let Some(e) = error {
            return Err(NnError::Step(e));
        }
        match outcome {
            Outcome::Updated => self.stats.updates += 1,
            Outcome::Guarded | Outcome::Skipped => self.stats.guarded += 1,
            Outcome::Accumulated => {}
        }
        Ok(outcome)
    }
}

/// What one zeroth-order step did.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ZoStep {
    /// What the optimizer did to the last tensor (`Skipped` when the estimate was not
    /// defined).
    pub outcome: Outcome,
    /// Whether every loss was finite.
    pub status: ZoStatus,
    /// The mean batch loss at `θ + εz` of the first sample (NaN when skipped before it).
    pub loss: f32,
}

/// Trains a composed model forward-only: each step estimates the gradient from the batch
/// loss at `θ ± εz` (SPSA; MeZO with [`Estimator::Projected`]), with z regenerated from the
/// estimator's seed ([`crate::optim::CounterZ`]: a pure function of seed, step, sample,
/// tensor and index), and hands `ĝ = Σ_j c_j z_j` to any optimizer tensor by tensor. No
/// activation is kept for a backward pass: its RAM is the model's (inference) plus one
/// gradient scratch `S` and the optimizer state `ST` ([`ZoTrainer::PLAN`]).
///
/// The perturbation of a value is `d = εz` rounded once to `T`, applied as `θ + d`, then
/// `θ − 2d`, then `θ + d`: in f32 the same bits as [`Zo::perturb`], in fixed point an exact
/// restore (unless a value saturates, which is counted). The loss is the mean softmax
/// cross-entropy of the batch computed in f32 from the logits (log-sum-exp with `libm`, so
/// every target gives the same bits).
///
/// Bad input: a label outside the classes or an empty batch is an error and changes
/// nothing; a NaN/±Inf reading, a non-finite loss or an overflowing difference quotient
/// skips the step with the weights restored (counted in [`TrainStats::guarded`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ZoTrainer<M: Train<T>, T: Num, const S: usize, const ST: usize> {
    /// The model being trained.
    pub model: M,
    out: M::Output,
    input: M::Input,
    scratch: [T; S],
    state: [T::Moment; ST],
    t: u64,
    /// Counters (`samples`: batch samples seen; `updates`: estimates applied).
    pub stats: TrainStats,
}

/// A batch for [`ZoTrainer::step_with`]: writes sample `i` into the buffer, returns its label.
pub type Batch<'s, X> = dyn FnMut(usize, &mut X) -> u8 + 's;

/// One tensor of [`ZoTrainer::perturb`] (out of line: one copy for every tensor).
#[cfg_attr(target_os = "none", inline(never))]
fn perturb_tensor<T: Num, D: DirectionSource>(
    dirs: &D,
    sample: u32,
    tensor: u32,
    eps: f32,
    k: i32,
    p: &mut [T],
) {
    let mut z = [0.0f32; 64];
    for (c, chunk) in p.chunks_mut(64).enumerate() {
        let z = &mut z[..chunk.len()];
        dirs.fill(sample, tensor, c * 64, z);
        for (p, &z) in chunk.iter_mut().zip(z.iter()) {
            let d = T::from_f32(eps * z);
            *p = if k > 0 { p.plus(d) } else { p.minus(d.plus(d)) };
        }
    }
}

/// `−ln softmax(z)[label]` in f32 (log-sum-exp after subtracting the maximum).
fn ce_loss<T: Num>(z: &[T], label: usize) -> f32 {
    let max = z.iter().fold(f32::NEG_INFINITY, |m, v| m.max(v.to_f32()));
    let mut sum = 0.0f32;
    for v in z {
        sum += libm::expf(v.to_f32() - max);
    }
    libm::logf(sum) + max - z[label].to_f32()
}

impl<M, T, const S: usize, const ST: usize> ZoTrainer<M, T, S, ST>
where
    T: Num,
    M: Train<T>,
    M::Input: Cell<Scalar = f32>,
    M::Output: Cell<Scalar = T>,
{
    /// The memory plan of this trainer (no backward buffers).
    pub const PLAN: Plan = Plan {
        model: size_of::<M>(),
        params: M::PARAMS * size_of::<T>(),
        output: size_of::<M::Output>(),
        input: size_of::<M::Input>(),
        backward: 0,
        scratch: S * size_of::<T>(),
        state: ST * size_of::<T::Moment>(),
    };

    /// A trainer for `model` (a `const fn`, for a `static`).
    pub const fn new(model: M) -> Self {
        const {
            assert!(
                S >= M::LARGEST,
                "ZoTrainer: the scratch S must hold the largest trainable tensor"
            )
        };
        ZoTrainer {
            model,
            out: M::Output::ZEROED,
            input: M::Input::ZEROED,
            scratch: [T::ZERO; S],
            state: [T::MOMENT_ZERO; ST],
            t: 1,
            stats: zero_stats(),
        }
    }

    /// Back to step 1 with zero counters.
    pub fn restart(&mut self) {
        self.t = 1;
        self.stats = TrainStats::default();
        self.state.fill(T::MOMENT_ZERO);
    }

    /// The predicted class (`None` for a non-finite reading).
    pub fn predict(&mut self, x: &M::Input, sat: &mut Saturations) -> Option<usize> {
        if !finite(x) {
            return None;
        }
        self.model.forward(x, &mut self.out, sat);
        Some(argmax_slice(self.out.flat()))
    }

    /// FNV-1a over the trainable values' bits.
    pub fn fingerprint(&mut self) -> u32 {
        fingerprint(&mut self.model)
    }

    /// Mean loss of the batch at the current parameters (each sample written into the
    /// input buffer by `sample`).
    #[cfg_attr(target_os = "none", inline(never))]
    fn batch_loss(
        &mut self,
        n: usize,
        sample: &mut Batch<'_, M::Input>,
        sat: &mut Saturations,
    ) -> f32 {
        let mut sum = 0.0f32;
        for i in 0..n {
            let l = sample(i, &mut self.input);
            self.model.forward(&self.input, &mut self.out, sat);
            sum += ce_loss(self.out.flat(), l as usize);
        }
        sum / n as f32
    }

    /// `θ ← θ + d` (`k = 1`) or `θ ← θ − 2d` (`k = −2`) with `d = εz` of `sample`.
    #[cfg_attr(target_os = "none", inline(never))]
    fn perturb<D: DirectionSource>(&mut self, dirs: &D, sample: u32, eps: f32, k: i32) {
        let mut tensor = 0u32;
        self.model.tensors(&mut |_, p| {
            perturb_tensor(dirs, sample, tensor, eps, k, p);
            tensor += 1;
        });
    }

    /// ĝ of one tensor into `g`: `Σ_j c_j z_j` in f32 (as [`crate::optim::ZoEstimate::gradient`]),
    /// rounded once to `T`.
    #[cfg_attr(target_os = "none", inline(never))]
    fn gradient<D: DirectionSource>(dirs: &D, coeffs: &[f32], tensor: u32, g: &mut [T]) {
        let (mut acc, mut z) = ([0.0f32; 64], [0.0f32; 64]);
        for (c, chunk) in g.chunks_mut(64).enumerate() {
            let (acc, z) = (&mut acc[..chunk.len()], &mut z[..chunk.len()]);
            acc.fill(0.0);
            for (j, &cj) in coeffs.iter().enumerate() {
                dirs.fill(j as u32, tensor, c * 64, z);
                for (a, &z) in acc.iter_mut().zip(z.iter()) {
                    *a += cj * z;
                }
            }
            for (g, &a) in chunk.iter_mut().zip(acc.iter()) {
                *g = T::from_f32(a);
            }
        }
    }

    /// One zeroth-order step on a batch (`xs[i]` labelled `labels[i]`): `2q` forward passes
    /// of the batch (two-sided; `q + 1` one-sided), then one optimizer step per tensor with
    /// ĝ regenerated into the scratch.
    pub fn step<O: Optimizer<T::Moment, T>>(
        &mut self,
        zo: &Zo,
        opt: &O,
        xs: &[M::Input],
        labels: &[u8],
    ) -> Result<ZoStep, NnError> {
        if xs.len() != labels.len() {
            return Err(NnError::Batch {
                samples: xs.len(),
                labels: labels.len(),
            });
        }
        self.step_with(zo, opt, xs.len(), &mut |i, x| {
            *x = xs[i];
            labels[i]
        })
    }

    /// [`ZoTrainer::step`] on a batch of `n` samples that `sample(i, x)` writes, one at a time,
    /// into the trainer's input buffer (returning the label): no buffer for the batch, so the
    /// readings can come straight from flash or a sensor FIFO. `sample` must give the same
    /// sample for the same `i` every time (it is called once per forward pass and once to
    /// check the batch).
    pub fn step_with<O: Optimizer<T::Moment, T>>(
        &mut self,
        zo: &Zo,
        opt: &O,
        n: usize,
        sample: &mut Batch<'_, M::Input>,
    ) -> Result<ZoStep, NnError> {
        let classes = M::Output::WIDTH;
        if n == 0 {
            return Err(NnError::Batch {
                samples: 0,
                labels: 0,
            });
        }
        let mut all_finite = true;
        for i in 0..n {
            let l = sample(i, &mut self.input);
            if l as usize >= classes {
                return Err(NnError::Label {
                    label: l as usize,
                    classes,
                });
            }
            all_finite &= finite(&self.input);
        }
        let lay = layout(&mut self.model, opt, ST)?;
        if self.t == 1 {
            init_state(&mut self.model, opt, &mut self.state[..lay.needed]);
        }
        let t = self.t;
        let step = opt.at(t);
        self.t += 1;
        self.stats.samples += n as u32;
        let skipped = |loss: f32, sample: u32| ZoStep {
            outcome: Outcome::Skipped,
            status: ZoStatus::NonFiniteLoss { sample },
            loss,
        };
        if !all_finite {
            self.stats.guarded += 1;
            return Ok(skipped(f32::NAN, 0));
        }
        let cfg = *zo.config();
        let dirs = zo.directions(t);
        let (eps, q) = (cfg.eps, cfg.samples);
        let mut sat = Saturations::default();
        let two = cfg.perturbation == Perturbation::TwoSided;
        let f0 = if two {
            0.0
        } else {
            self.batch_loss(n, sample, &mut sat)
        };
        if !f0.is_finite() {
            self.stats.guarded += 1;
            self.stats.saturated += sat.0;
            return Ok(skipped(f0, 0));
        }
        let mut coeffs = [0.0f32; crate::optim::MAX_SAMPLES];
        let mut first = f32::NAN;
        for j in 0..q {
            self.perturb(&dirs, j, eps, 1);
            let fp = self.batch_loss(n, sample, &mut sat);
            if j == 0 {
                first = fp;
            }
            let (fm, p) = if two && fp.is_finite() {
                self.perturb(&dirs, j, eps, -2);
                let fm = self.batch_loss(n, sample, &mut sat);
                self.perturb(&dirs, j, eps, 1);
                (fm, (fp - fm) / (2.0 * eps))
            } else {
                // One-sided, or f₊ already unusable: back to θ (the same +d, −2d, +d
                // sequence, so the restore is exact in fixed point).
                self.perturb(&dirs, j, eps, -2);
                self.perturb(&dirs, j, eps, 1);
                (f0, (fp - f0) / eps)
            };
            if !fp.is_finite() || !fm.is_finite() || !p.is_finite() {
                self.stats.guarded += 1;
                self.stats.saturated += sat.0;
                return Ok(skipped(first, j));
            }
            coeffs[j as usize] = match cfg.estimator {
                Estimator::Projected => p,
                Estimator::Sign => {
                    if p > 0.0 {
                        1.0
                    } else if p < 0.0 {
                        -1.0
                    } else {
                        0.0
                    }
                }
            } / q as f32;
        }
        let coeffs = &coeffs[..q as usize];
        let mut round = opt.begin(0.0);
        let scratch = &mut self.scratch;
        if O::OBSERVES {
            let mut tensor = 0u32;
            self.model.tensors(&mut |spec, _| {
                let g = &mut scratch[..spec.len()];
                Self::gradient(&dirs, coeffs, tensor, g);
                observe(opt, &mut round, spec, g);
                tensor += 1;
            });
            opt.finish(&mut round);
        }
        let (mut tensor, mut at) = (0u32, 0usize);
        let (mut outcome, mut error) = (Outcome::Accumulated, None);
        let state = &mut self.state;
        self.model.tensors(&mut |spec, p| {
            if error.is_some() {
                return;
            }
            let g = &mut scratch[..spec.len()];
            Self::gradient(&dirs, coeffs, tensor, g);
            let n = opt.state_len(spec);
            match opt.apply(&round, step, spec, p, g, &mut state[at..at + n]) {
                Ok(o) => outcome = o,
                Err(e) => error = Some(e),
            }
            at += n;
            tensor += 1;
        });
        self.stats.saturated += sat.0;
        if let Some(e) = error {
            return Err(NnError::Step(e));
        }
        match outcome {
            Outcome::Updated => self.stats.updates += 1,
            Outcome::Guarded | Outcome::Skipped => self.stats.guarded += 1,
            Outcome::Accumulated => {}
        }
        Ok(ZoStep {
            outcome,
            status: ZoStatus::Estimated,
            loss: first,
        })
    }
}
