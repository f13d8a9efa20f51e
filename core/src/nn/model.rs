//! A classifier for on-device fine-tuning: a frozen int8 base layer with a LoRA adapter,
//! ReLU, and a trainable head, trained one sample at a time with any optimizer of the
//! [`crate::optim::Optimizer`] interface (Tiger in the digits demo).
//!
//! ```text
//! x = reading · input_scale                      (IN)
//! h = ReLU(W₀x + b₁ + A(Bx))                     (HID)   W₀ int8 per-row scales, frozen (flash)
//! z = W₂h + b₂                                   (OUT)
//! L = −ln softmax(z)[label]
//! ```
//! Trainable (RAM): `b₁`, `A` (HID×R, starts at 0), `B` (R×IN, small deterministic
//! values), `W₂`, `b₂`. Each sample is one optimizer step (one micro-step for Tiger, whose
//! built-in accumulation `k` makes every `k` samples one mini-batch update with no gradient
//! buffer): the gradient of one tensor at a time goes through a scratch of `S` values and is
//! handed to the optimizer at once. An optimizer that observes every gradient first (a chain
//! with global-norm clipping) gets each gradient formed twice (once to observe, once to
//! step) instead of a buffer for all of them. The optimizer's state lives in the trainer:
//! `ST` values of `T::Moment`, at least the sum of `state_len` over the five tensors
//! (checked on every step: [`NnError::State`]).
//!
//! Bad input: a label outside `0..OUT` is an error and changes nothing; a non-finite
//! reading makes every gradient non-finite, so the optimizer's [`Optimizer::skip`] rule is
//! applied to every tensor without forming them (Tiger's guard: weights shrink toward 0 by
//! `nan_shrink`, momentum unchanged; other optimizers leave everything as it is); in
//! fixed point a reading or a sum beyond the format's range saturates and is counted in
//! [`TrainStats::saturated`].

use super::blob::BaseModel;
use super::dense::{outer_flat, relu, relu_backward, Dense};
use super::lora::Lora;
use super::loss::{argmax, softmax_cross_entropy};
use super::num::{Num, Saturations};
use super::NnError;
use crate::math::xorshift32;
use crate::optim::{Optimizer, Outcome, ParamKind, TensorSpec};

/// The trainable tensors (or their momenta: `X = T::Moment`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trainable<X, const IN: usize, const HID: usize, const OUT: usize, const R: usize> {
    /// Hidden biases.
    pub b1: [X; HID],
    /// The LoRA adapter on the base layer.
    pub lora: Lora<X, IN, HID, R>,
    /// The head.
    pub head: Dense<X, HID, OUT>,
}

/// Values in a [`Trainable`]: `OUT·HID + OUT + HID + HID·R + R·IN` (the state length of a
/// one-moment optimizer such as Tiger for the whole model).
pub const fn trainable_len(inputs: usize, hidden: usize, outputs: usize, rank: usize) -> usize {
    outputs * hidden + outputs + hidden + hidden * rank + rank * inputs
}

impl<X: Copy, const IN: usize, const HID: usize, const OUT: usize, const R: usize>
    Trainable<X, IN, HID, OUT, R>
{
    /// What the optimizer is told about each tensor, in [`Trainable::tensors`] order.
    pub const SPECS: [TensorSpec; 5] = [
        TensorSpec::matrix(OUT, HID),
        TensorSpec::vector(OUT).with_kind(ParamKind::Bias),
        TensorSpec::vector(HID).with_kind(ParamKind::Bias),
        TensorSpec::matrix(HID, R),
        TensorSpec::matrix(R, IN),
    ];

    /// Every value `z`.
    pub const fn splat(z: X) -> Self {
        Trainable {
            b1: [z; HID],
            lora: Lora {
                a: [[z; R]; HID],
                b: [[z; IN]; R],
            },
            head: Dense {
                w: [[z; HID]; OUT],
                b: [z; OUT],
            },
        }
    }

    /// The tensors in update order: head weights, head biases, hidden biases, A, B.
    pub fn tensors(&self) -> [&[X]; 5] {
        [
            self.head.w.as_flattened(),
            &self.head.b,
            &self.b1,
            self.lora.a.as_flattened(),
            self.lora.b.as_flattened(),
        ]
    }

    /// [`Trainable::tensors`], mutable.
    pub fn tensors_mut(&mut self) -> [&mut [X]; 5] {
        [
            self.head.w.as_flattened_mut(),
            &mut self.head.b,
            &mut self.b1,
            self.lora.a.as_flattened_mut(),
            self.lora.b.as_flattened_mut(),
        ]
    }
}

impl<T: Num, const IN: usize, const HID: usize, const OUT: usize, const R: usize>
    Trainable<T, IN, HID, OUT, R>
{
    /// FNV-1a over every value's bit pattern (little-endian words), in tensor order: equal
    /// fingerprints mean bit-identical weights.
    pub fn fingerprint(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for t in self.tensors() {
            for v in t {
                for b in v.word().to_le_bytes() {
                    h = (h ^ b as u32).wrapping_mul(0x0100_0193);
                }
            }
        }
        h
    }
}

/// The classifier (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoraMlp<'a, T, const IN: usize, const HID: usize, const OUT: usize, const R: usize> {
    q: &'a [u8],
    scale: [T; HID],
    input_scale: T,
    /// The trainable tensors.
    pub train: Trainable<T, IN, HID, OUT, R>,
}

/// The activations of one forward pass (kept for the backward pass).
struct Acts<T, const IN: usize, const HID: usize, const OUT: usize, const R: usize> {
    x: [T; IN],
    u: [T; R],
    h: [T; HID],
    z: [T; OUT],
}

impl<'a, T: Num, const IN: usize, const HID: usize, const OUT: usize, const R: usize>
    LoraMlp<'a, T, IN, HID, OUT, R>
{
    /// A classifier with no base (every value 0): a placeholder for a `static`, to be
    /// [`LoraMlp::load`]ed in place.
    pub const fn empty() -> Self {
        LoraMlp {
            q: &[],
            scale: [T::ZERO; HID],
            input_scale: T::ZERO,
            train: Trainable::splat(T::ZERO),
        }
    }

    /// The classifier from a parsed blob (see [`LoraMlp::load`]).
    pub fn new(base: &BaseModel<'a, IN, HID, OUT>, seed: u32) -> Self {
        let mut m = Self::empty();
        m.load(base, seed);
        m
    }

    /// Loads a parsed blob in place (no temporary copy: what a microcontroller wants):
    /// floats converted to `T` (nearest), `A = 0` and `B` filled from `seed` with values
    /// uniform on [−1/8, 1/8) in steps of 2⁻²⁴ (exact in f32 and in I8F24, so every format
    /// starts from the same adapter).
    pub fn load(&mut self, base: &BaseModel<'a, IN, HID, OUT>, seed: u32) {
        let c = T::from_f32;
        let train = &mut self.train;
        for a in train.lora.a.as_flattened_mut() {
            *a = T::ZERO;
        }
        for (o, t) in train.b1.iter_mut().enumerate() {
            *t = c(base.b1(o));
        }
        for (o, row) in train.head.w.iter_mut().enumerate() {
            for (i, t) in row.iter_mut().enumerate() {
                *t = c(base.w2(o, i));
            }
        }
        for (o, t) in train.head.b.iter_mut().enumerate() {
            *t = c(base.b2(o));
        }
        let mut s = seed.max(1);
        for b in train.lora.b.as_flattened_mut() {
            let k = (xorshift32(&mut s) >> 10) as i32 - (1 << 21);
            *b = c(k as f32 * (1.0 / 16_777_216.0));
        }
        for (o, t) in self.scale.iter_mut().enumerate() {
            *t = c(base.scale(o));
        }
        self.q = base.q();
        self.input_scale = c(base.input_scale());
    }

    /// Readings → model input; `None` if any reading is NaN/±Inf.
    fn input(&self, reading: &[f32; IN], sat: &mut Saturations) -> Option<[T; IN]> {
        let mut x = [T::ZERO; IN];
        for (x, &r) in x.iter_mut().zip(reading) {
            *x = T::from_reading(r, sat)?.times(self.input_scale);
        }
        Some(x)
    }

    fn forward(&self, a: &mut Acts<T, IN, HID, OUT, R>, sat: &mut Saturations) {
        let t = &self.train;
        for (o, h) in a.h.iter_mut().enumerate() {
            let row = &self.q[o * IN..(o + 1) * IN];
            let mut acc = T::ACC_ZERO;
            for (&q, &x) in row.iter().zip(&a.x) {
                acc = T::mac_i8(acc, q as i8, x);
            }
            *h = T::finish_i8(acc, self.scale[o], t.b1[o], sat);
        }
        t.lora.down(&a.x, &mut a.u, sat);
        t.lora.up_add(&a.u, &mut a.h, sat);
        relu(&mut a.h);
        t.head.forward(&a.h, &mut a.z, sat);
    }

    /// How many of the 8-bit `samples` (reading = byte value) are classified as their label.
    pub fn correct(&self, samples: &[[u8; IN]], labels: &[u8], sat: &mut Saturations) -> usize {
        let mut n = 0;
        for (s, &l) in samples.iter().zip(labels) {
            if self.predict(&s.map(|p| p as f32), sat) == Some(l as usize) {
                n += 1;
            }
        }
        n
    }

    /// The predicted class for a reading (`None` for a non-finite reading).
    pub fn predict(&self, reading: &[f32; IN], sat: &mut Saturations) -> Option<usize> {
        let x = self.input(reading, sat)?;
        let mut a = Acts {
            x,
            u: [T::ZERO; R],
            h: [T::ZERO; HID],
            z: [T::ZERO; OUT],
        };
        self.forward(&mut a, sat);
        Some(argmax(&a.z))
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

/// Fine-tunes a [`LoraMlp`] with any optimizer `O: Optimizer<T::Moment, T>`, one sample per
/// step: the training state (model, optimizer state, step, scratch); the validated optimizer
/// is passed to each step. `S` is the gradient scratch length: at least the largest
/// trainable tensor (checked at compile time). `ST` is the optimizer-state capacity in
/// `T::Moment` values (Tiger or Lion: [`trainable_len`]; AdamW: twice that, plus
/// [`crate::optim::moment_gap`] per tensor of 16,384 values or more).
#[derive(Debug, Clone, PartialEq)]
pub struct Trainer<
    'a,
    T: Num,
    const IN: usize,
    const HID: usize,
    const OUT: usize,
    const R: usize,
    const S: usize,
    const ST: usize,
> {
    /// The classifier being trained.
    pub model: LoraMlp<'a, T, IN, HID, OUT, R>,
    state: [T::Moment; ST],
    t: u64,
    scratch: [T; S],
    /// Counters.
    pub stats: TrainStats,
}

impl<
        'a,
        T: Num,
        const IN: usize,
        const HID: usize,
        const OUT: usize,
        const R: usize,
        const S: usize,
        const ST: usize,
    > Trainer<'a, T, IN, HID, OUT, R, S, ST>
{
    const SCRATCH_FITS: () = assert!(
        S >= HID * OUT && S >= HID * R && S >= R * IN && S >= HID && S >= OUT,
        "Trainer scratch S must hold the largest trainable tensor"
    );

    /// A trainer with no model (every value 0), for a `static` on a microcontroller;
    /// [`Trainer::load`] it in place before training.
    pub const fn empty() -> Self {
        let () = Self::SCRATCH_FITS;
        Trainer {
            model: LoraMlp::empty(),
            state: [T::MOMENT_ZERO; ST],
            t: 1,
            scratch: [T::ZERO; S],
            stats: TrainStats {
                samples: 0,
                updates: 0,
                guarded: 0,
                saturated: 0,
            },
        }
    }

    /// A trainer for the classifier from `base` (see [`LoraMlp::load`]).
    pub fn new(base: &BaseModel<'a, IN, HID, OUT>, seed: u32) -> Self {
        let mut t = Self::empty();
        t.load(base, seed);
        t
    }

    /// Loads `base` in place and restarts: step 1, zero counters; the optimizer state is set
    /// to the optimizer's start value ([`Optimizer::init`]) on the first step.
    pub fn load(&mut self, base: &BaseModel<'a, IN, HID, OUT>, seed: u32) {
        self.model.load(base, seed);
        self.state.fill(T::MOMENT_ZERO);
        self.t = 1;
        self.stats = TrainStats::default();
    }

    /// The optimizer state, tensor after tensor in [`Trainable::tensors`] order (each
    /// tensor's part laid out by the optimizer), then unused capacity.
    pub fn state(&self) -> &[T::Moment] {
        &self.state
    }

    /// `[start, end)` of each tensor's state for `opt`, or [`NnError::State`] when `ST` is
    /// too small (or a tensor is refused).
    fn layout<O: Optimizer<T::Moment, T>>(opt: &O) -> Result<[usize; 6], NnError> {
        let mut ends = [0usize; 6];
        for (i, spec) in Trainable::<T, IN, HID, OUT, R>::SPECS.iter().enumerate() {
            opt.check(spec).map_err(NnError::Step)?;
            ends[i + 1] = ends[i] + opt.state_len(spec);
        }
        if ends[5] > ST {
            return Err(NnError::State {
                needed: ends[5],
                capacity: ST,
            });
        }
        Ok(ends)
    }

    /// One pass over 8-bit `samples` (reading = byte value) in order, one step each.
    /// Stops at the first error (a label outside `0..OUT`, state too small).
    pub fn train_bytes<O: Optimizer<T::Moment, T>>(
        &mut self,
        opt: &O,
        samples: &[[u8; IN]],
        labels: &[u8],
    ) -> Result<(), NnError> {
        for (s, &l) in samples.iter().zip(labels) {
            self.train(opt, &s.map(|p| p as f32), l as usize)?;
        }
        Ok(())
    }

    /// The gradient of tensor `i` (in [`Trainable::tensors`] order) into `g`.
    fn gradient(pairs: &[(&[T], &[T]); 5], i: usize, g: &mut [T]) {
        let (l, r) = pairs[i];
        if r.is_empty() {
            g.copy_from_slice(l);
        } else {
            outer_flat(l, r, g);
        }
    }

    /// One sample: forward, backward, and one optimizer step on every trainable tensor.
    /// Returns what the optimizer did to the last tensor (see the module docs for bad
    /// input). Nothing changes on an error: the label, the state's capacity, each tensor's
    /// shape ([`crate::optim::Stage::check`]) and its values
    /// ([`Optimizer::check_params`]) are checked before anything is written.
    pub fn train<O: Optimizer<T::Moment, T>>(
        &mut self,
        opt: &O,
        reading: &[f32; IN],
        label: usize,
    ) -> Result<Outcome, NnError> {
        if label >= OUT {
            return Err(NnError::Label {
                label,
                classes: OUT,
            });
        }
        let ends = Self::layout(opt)?;
        for p in self.model.train.tensors() {
            opt.check_params(p).map_err(NnError::Step)?;
        }
        let specs = &Trainable::<T, IN, HID, OUT, R>::SPECS;
        if self.t == 1 {
            for (i, spec) in specs.iter().enumerate() {
                opt.init(spec, &mut self.state[ends[i]..ends[i + 1]]);
            }
        }
        let mut sat = Saturations::default();
        let step = opt.at(self.t);
        self.t += 1;
        self.stats.samples += 1;
        let Some(x) = self.model.input(reading, &mut sat) else {
            let mut outcome = Outcome::Skipped;
            let params = self.model.train.tensors_mut();
            for (i, p) in params.into_iter().enumerate() {
                outcome = opt.skip(step, &specs[i], p, &mut self.state[ends[i]..ends[i + 1]]);
            }
            self.stats.guarded += 1;
            self.stats.saturated += sat.0;
            return Ok(outcome);
        };
        let mut a = Acts {
            x,
            u: [T::ZERO; R],
            h: [T::ZERO; HID],
            z: [T::ZERO; OUT],
        };
        self.model.forward(&mut a, &mut sat);
        let mut dz = [T::ZERO; OUT];
        softmax_cross_entropy(&a.z, label, &mut dz)?;
        let t = &self.model.train;
        let mut dh = [T::ZERO; HID];
        t.head.backward_input(&dz, &mut dh, &mut sat);
        relu_backward(&a.h, &mut dh);
        let mut du = [T::ZERO; R];
        t.lora.back_down(&dh, &mut du, &mut sat);
        // One gradient at a time through the scratch, in `Trainable::tensors` order.
        let pairs: [(&[T], &[T]); 5] = [
            (&dz, &a.h),
            (&dz, &[]),
            (&dh, &[]),
            (&dh, &a.u),
            (&du, &a.x),
        ];
        let mut round = opt.begin(0.0);
        if O::OBSERVES {
            for (i, spec) in specs.iter().enumerate() {
                let g = &mut self.scratch[..spec.len()];
                Self::gradient(&pairs, i, g);
                match T::as_f32(g) {
                    Some(g) => opt.observe(&mut round, spec, g),
                    // Other formats are observed in f32, in chunks of 64 values.
                    None => {
                        for chunk in g.chunks(64) {
                            let mut f = [0.0f32; 64];
                            for (f, v) in f.iter_mut().zip(chunk) {
                                *f = v.to_f32();
                            }
                            opt.observe(&mut round, spec, &f[..chunk.len()]);
                        }
                    }
                }
            }
            opt.finish(&mut round);
        }
        let mut outcome = Outcome::Accumulated;
        let params = self.model.train.tensors_mut();
        for (i, p) in params.into_iter().enumerate() {
            let g = &mut self.scratch[..p.len()];
            Self::gradient(&pairs, i, g);
            let state = &mut self.state[ends[i]..ends[i + 1]];
            // `layout` checked each tensor and sized its state; params and gradient have the
            // spec's length by construction: `apply` without `update`'s second check.
            outcome = opt
                .apply(&round, step, &specs[i], p, g, state)
                .map_err(NnError::Step)?;
        }
        match outcome {
            Outcome::Updated => self.stats.updates += 1,
            Outcome::Guarded | Outcome::Skipped => self.stats.guarded += 1,
            Outcome::Accumulated => {}
        }
        self.stats.saturated += sat.0;
        Ok(outcome)
    }
}
