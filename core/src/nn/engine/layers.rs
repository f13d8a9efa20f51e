//! The engine's float-domain layers (generic over [`Num`]) and the wrappers that say what of
//! a layer trains.

use super::{Cell, Infer, Sink, Train};
use crate::nn::conv::{conv_out_len, taps_weight_grad, Conv1d, Depthwise1d};
use crate::nn::dense::{outer_flat, Dense};
use crate::nn::num::{Num, Saturations};
use crate::nn::{avg_pool, avg_pool_backward, global_avg_pool, global_avg_pool_backward};
use crate::optim::{ParamKind, TensorSpec};

/// A layer `y = f(x; w) + b` with per-output-channel biases: what [`Frozen`], [`BiasOnly`]
/// and [`Lora`] need (the input gradient and the bias gradient).
pub trait Affine<T: Num>: Infer {
    /// Output channels (biases).
    const BIASES: usize;
    /// Buffers the input gradient needs ([`Train::Grads`]).
    type Scratch: Copy;
    /// Zeroed [`Affine::Scratch`].
    const SCRATCH: Self::Scratch;
    /// `dx = ∂y/∂xᵀ·dy` with the current weights.
    fn backward_input(
        &self,
        dy: &Self::Output,
        dx: &mut Self::Input,
        scratch: &mut Self::Scratch,
        sat: &mut Saturations,
    );
    /// The biases.
    fn biases(&mut self) -> &mut [T];
    /// `∂L/∂b` (per channel, the sum of `dy` over positions) into `g`.
    fn bias_grad(dy: &Self::Output, g: &mut [T], sat: &mut Saturations);
}

/// An [`Affine`] layer whose weights can train ([`Full`]).
pub trait Weights<T: Num>: Affine<T> {
    /// What the optimizer is told about the weights.
    const WEIGHT_SPEC: TensorSpec;
    /// The weights, flat.
    fn weights(&mut self) -> &mut [T];
    /// `∂L/∂w` into `g` (`WEIGHT_SPEC.len()` values).
    fn weight_grad(x: &Self::Input, dy: &Self::Output, g: &mut [T], sat: &mut Saturations);
}

// ---------------------------------------------------------------- dense

impl<T: Num, const IN: usize, const OUT: usize> Infer for Dense<T, IN, OUT> {
    type Input = [T; IN];
    type Output = [T; OUT];
    fn forward(&mut self, x: &[T; IN], y: &mut [T; OUT], sat: &mut Saturations) {
        Dense::forward(self, x, y, sat)
    }
}

impl<T: Num, const IN: usize, const OUT: usize> Affine<T> for Dense<T, IN, OUT> {
    const BIASES: usize = OUT;
    type Scratch = ();
    const SCRATCH: () = ();
    fn backward_input(&self, dy: &[T; OUT], dx: &mut [T; IN], _: &mut (), sat: &mut Saturations) {
        Dense::backward_input(self, dy, dx, sat)
    }
    fn biases(&mut self) -> &mut [T] {
        &mut self.b
    }
    fn bias_grad(dy: &[T; OUT], g: &mut [T], _: &mut Saturations) {
        g.copy_from_slice(dy)
    }
}

impl<T: Num, const IN: usize, const OUT: usize> Weights<T> for Dense<T, IN, OUT> {
    const WEIGHT_SPEC: TensorSpec = TensorSpec::matrix(OUT, IN);
    fn weights(&mut self) -> &mut [T] {
        self.w.as_flattened_mut()
    }
    fn weight_grad(x: &[T; IN], dy: &[T; OUT], g: &mut [T], _: &mut Saturations) {
        outer_flat(dy, x, g)
    }
}

/// A dense layer with frozen int8 weights (per-output-row scales, borrowed from the model
/// blob, so they stay in flash) and float activations: `y[o] = scale[o]·Σ_i q[o][i]·x[i] +
/// b[o]`, summed in input order and rounded once ([`Num::finish_i8`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Dense<'a, T, const IN: usize, const OUT: usize> {
    /// The int8 weights as bytes, `OUT·IN`, row-major.
    pub q: &'a [u8],
    /// Per-row scales (weight = q·scale).
    pub scale: [T; OUT],
    /// Biases.
    pub b: [T; OUT],
}

impl<'a, T: Num, const IN: usize, const OUT: usize> Int8Dense<'a, T, IN, OUT> {
    /// No weights (every output is its bias): a placeholder for a `static`, loaded from a
    /// blob in place.
    pub const fn empty() -> Self {
        Int8Dense {
            q: &[],
            scale: [T::ZERO; OUT],
            b: [T::ZERO; OUT],
        }
    }

    /// Row `o` of the weights; a missing row (an empty layer) reads as zeros.
    fn row(&self, o: usize) -> &'a [u8] {
        self.q.get(o * IN..(o + 1) * IN).unwrap_or(&[])
    }
}

impl<T: Num, const IN: usize, const OUT: usize> Infer for Int8Dense<'_, T, IN, OUT> {
    type Input = [T; IN];
    type Output = [T; OUT];
    fn forward(&mut self, x: &[T; IN], y: &mut [T; OUT], sat: &mut Saturations) {
        for (o, y) in y.iter_mut().enumerate() {
            let mut acc = T::ACC_ZERO;
            for (&q, &x) in self.row(o).iter().zip(x) {
                acc = T::mac_i8(acc, q as i8, x);
            }
            *y = T::finish_i8(acc, self.scale[o], self.b[o], sat);
        }
    }
}

impl<T: Num, const IN: usize, const OUT: usize> Affine<T> for Int8Dense<'_, T, IN, OUT> {
    const BIASES: usize = OUT;
    /// `dy[o]·scale[o]`.
    type Scratch = [T; OUT];
    const SCRATCH: [T; OUT] = [T::ZERO; OUT];
    fn backward_input(
        &self,
        dy: &[T; OUT],
        dx: &mut [T; IN],
        ds: &mut [T; OUT],
        sat: &mut Saturations,
    ) {
        for ((d, &dy), &s) in ds.iter_mut().zip(dy).zip(&self.scale) {
            *d = dy.times(s);
        }
        for (i, dx) in dx.iter_mut().enumerate() {
            let mut acc = T::ACC_ZERO;
            for (o, &d) in ds.iter().enumerate() {
                if let Some(&q) = self.row(o).get(i) {
                    acc = T::mac_i8(acc, q as i8, d);
                }
            }
            *dx = T::finish_i8(acc, T::ONE, T::ZERO, sat);
        }
    }
    fn biases(&mut self) -> &mut [T] {
        &mut self.b
    }
    fn bias_grad(dy: &[T; OUT], g: &mut [T], _: &mut Saturations) {
        g.copy_from_slice(dy)
    }
}

// ---------------------------------------------------------------- convolutions

/// A 1-D convolution over input length `L` (output length `LOUT`, asserted at build time):
/// [`Conv1d`] in the engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv<
    T,
    const CIN: usize,
    const COUT: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const L: usize,
    const LOUT: usize,
>(pub Conv1d<T, CIN, COUT, K, S, P>);

/// A pointwise (1×1) convolution over length `L`.
pub type Pointwise<T, const CIN: usize, const COUT: usize, const L: usize> =
    Conv<T, CIN, COUT, 1, 1, 0, L, L>;

impl<
        T: Num,
        const CIN: usize,
        const COUT: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Conv<T, CIN, COUT, K, S, P, L, LOUT>
{
    /// The layer; `LOUT` must be [`conv_out_len`]`(L, K, S, P)` (a build error otherwise).
    pub const fn new(layer: Conv1d<T, CIN, COUT, K, S, P>) -> Self {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, P) && LOUT > 0) };
        Conv(layer)
    }
    /// All weights 0.
    pub const fn zeroed() -> Self {
        Self::new(Conv1d {
            w: [[[T::ZERO; K]; CIN]; COUT],
            b: [T::ZERO; COUT],
        })
    }
}

impl<
        T: Num,
        const CIN: usize,
        const COUT: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Infer for Conv<T, CIN, COUT, K, S, P, L, LOUT>
{
    type Input = [[T; L]; CIN];
    type Output = [[T; LOUT]; COUT];
    fn forward(&mut self, x: &Self::Input, y: &mut Self::Output, sat: &mut Saturations) {
        self.0.forward(x, y, sat)
    }
}

impl<
        T: Num,
        const CIN: usize,
        const COUT: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Affine<T> for Conv<T, CIN, COUT, K, S, P, L, LOUT>
{
    const BIASES: usize = COUT;
    type Scratch = ();
    const SCRATCH: () = ();
    fn backward_input(
        &self,
        dy: &Self::Output,
        dx: &mut Self::Input,
        _: &mut (),
        sat: &mut Saturations,
    ) {
        self.0.backward_input(dy, dx, sat)
    }
    fn biases(&mut self) -> &mut [T] {
        &mut self.0.b
    }
    fn bias_grad(dy: &Self::Output, g: &mut [T], sat: &mut Saturations) {
        channel_sums(dy, g, sat)
    }
}

impl<
        T: Num,
        const CIN: usize,
        const COUT: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Weights<T> for Conv<T, CIN, COUT, K, S, P, L, LOUT>
{
    const WEIGHT_SPEC: TensorSpec = TensorSpec::matrix(COUT, CIN * K);
    fn weights(&mut self) -> &mut [T] {
        self.0.w.as_flattened_mut().as_flattened_mut()
    }
    fn weight_grad(x: &Self::Input, dy: &Self::Output, g: &mut [T], sat: &mut Saturations) {
        // [`Conv1d::param_grads`]'s weight part, into the flat scratch.
        for (dw, dy) in g.chunks_exact_mut(CIN * K).zip(dy) {
            for (dw, x) in dw.chunks_exact_mut(K).zip(x) {
                taps_weight_grad(x, dy, dw, S, P, sat);
            }
        }
    }
}

/// A depthwise 1-D convolution over input length `L` (output length `LOUT`, asserted at
/// build time): [`Depthwise1d`] in the engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Depthwise<
    T,
    const C: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const L: usize,
    const LOUT: usize,
>(pub Depthwise1d<T, C, K, S, P>);

impl<
        T: Num,
        const C: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Depthwise<T, C, K, S, P, L, LOUT>
{
    /// The layer; `LOUT` must be [`conv_out_len`]`(L, K, S, P)` (a build error otherwise).
    pub const fn new(layer: Depthwise1d<T, C, K, S, P>) -> Self {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, P) && LOUT > 0) };
        Depthwise(layer)
    }
    /// All weights 0.
    pub const fn zeroed() -> Self {
        Self::new(Depthwise1d {
            w: [[T::ZERO; K]; C],
            b: [T::ZERO; C],
        })
    }
}

impl<
        T: Num,
        const C: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Infer for Depthwise<T, C, K, S, P, L, LOUT>
{
    type Input = [[T; L]; C];
    type Output = [[T; LOUT]; C];
    fn forward(&mut self, x: &Self::Input, y: &mut Self::Output, sat: &mut Saturations) {
        self.0.forward(x, y, sat)
    }
}

impl<
        T: Num,
        const C: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Affine<T> for Depthwise<T, C, K, S, P, L, LOUT>
{
    const BIASES: usize = C;
    type Scratch = ();
    const SCRATCH: () = ();
    fn backward_input(
        &self,
        dy: &Self::Output,
        dx: &mut Self::Input,
        _: &mut (),
        sat: &mut Saturations,
    ) {
        self.0.backward_input(dy, dx, sat)
    }
    fn biases(&mut self) -> &mut [T] {
        &mut self.0.b
    }
    fn bias_grad(dy: &Self::Output, g: &mut [T], sat: &mut Saturations) {
        channel_sums(dy, g, sat)
    }
}

impl<
        T: Num,
        const C: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Weights<T> for Depthwise<T, C, K, S, P, L, LOUT>
{
    const WEIGHT_SPEC: TensorSpec = TensorSpec::matrix(C, K);
    fn weights(&mut self) -> &mut [T] {
        self.0.w.as_flattened_mut()
    }
    fn weight_grad(x: &Self::Input, dy: &Self::Output, g: &mut [T], sat: &mut Saturations) {
        // [`Depthwise1d::param_grads`]'s weight part, into the flat scratch.
        for ((dw, dy), x) in g.chunks_exact_mut(K).zip(dy).zip(x) {
            taps_weight_grad(x, dy, dw, S, P, sat);
        }
    }
}

/// `g[c] = Σ_t dy[c][t]` (in order, rounded once).
fn channel_sums<T: Num, const C: usize, const L: usize>(
    dy: &[[T; L]; C],
    g: &mut [T],
    sat: &mut Saturations,
) {
    for (g, dy) in g.iter_mut().zip(dy) {
        let mut acc = T::ACC_ZERO;
        for &d in dy {
            acc = T::mac(acc, d, T::ONE);
        }
        *g = T::finish(acc, T::ZERO, sat);
    }
}

// ---------------------------------------------------------------- what trains

/// A layer that trains nothing but passes gradients to the layers before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frozen<L>(pub L);
/// TinyTL's bias-only update: the weights stay, the biases train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BiasOnly<L>(pub L);
/// Weights and biases train (tensor order: weights, biases).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Full<L>(pub L);

macro_rules! delegate_infer {
    ($w:ident) => {
        impl<L: Infer> Infer for $w<L> {
            type Input = L::Input;
            type Output = L::Output;
            fn forward(&mut self, x: &L::Input, y: &mut L::Output, sat: &mut Saturations) {
                self.0.forward(x, y, sat)
            }
        }
    };
}
delegate_infer!(Frozen);
delegate_infer!(BiasOnly);
delegate_infer!(Full);

fn bias_spec(n: usize) -> TensorSpec {
    TensorSpec::vector(n).with_kind(ParamKind::Bias)
}

impl<T: Num, L: Affine<T>> Train<T> for Frozen<L> {
    const TENSORS: usize = 0;
    const PARAMS: usize = 0;
    const LARGEST: usize = 0;
    type Grads = L::Scratch;
    const GRADS: L::Scratch = L::SCRATCH;
    fn backward(
        &mut self,
        _: &L::Input,
        _: &L::Output,
        dy: &L::Output,
        dx: Option<&mut L::Input>,
        grads: &mut L::Scratch,
        _: &mut dyn Sink<T>,
        sat: &mut Saturations,
    ) {
        if let Some(dx) = dx {
            self.0.backward_input(dy, dx, grads, sat);
        }
    }
    fn tensors(&mut self, _: &mut dyn FnMut(&TensorSpec, &mut [T])) {}
}

impl<T: Num, L: Affine<T>> Train<T> for BiasOnly<L> {
    const TENSORS: usize = 1;
    const PARAMS: usize = L::BIASES;
    const LARGEST: usize = L::BIASES;
    type Grads = L::Scratch;
    const GRADS: L::Scratch = L::SCRATCH;
    fn backward(
        &mut self,
        _: &L::Input,
        _: &L::Output,
        dy: &L::Output,
        dx: Option<&mut L::Input>,
        grads: &mut L::Scratch,
        sink: &mut dyn Sink<T>,
        sat: &mut Saturations,
    ) {
        if let Some(dx) = dx {
            self.0.backward_input(dy, dx, grads, sat);
        }
        sink.tensor(&bias_spec(L::BIASES), self.0.biases(), &mut |g| {
            L::bias_grad(dy, g, sat)
        });
    }
    fn tensors(&mut self, f: &mut dyn FnMut(&TensorSpec, &mut [T])) {
        f(&bias_spec(L::BIASES), self.0.biases())
    }
}

impl<T: Num, L: Weights<T>> Train<T> for Full<L> {
    const TENSORS: usize = 2;
    const PARAMS: usize = L::WEIGHT_SPEC.len() + L::BIASES;
    const LARGEST: usize = if L::WEIGHT_SPEC.len() > L::BIASES {
        L::WEIGHT_SPEC.len()
    } else {
        L::BIASES
    };
    type Grads = L::Scratch;
    const GRADS: L::Scratch = L::SCRATCH;
    fn backward(
        &mut self,
        x: &L::Input,
        _: &L::Output,
        dy: &L::Output,
        dx: Option<&mut L::Input>,
        grads: &mut L::Scratch,
        sink: &mut dyn Sink<T>,
        sat: &mut Saturations,
    ) {
        if let Some(dx) = dx {
            self.0.backward_input(dy, dx, grads, sat);
        }
        sink.tensor(&L::WEIGHT_SPEC, self.0.weights(), &mut |g| {
            L::weight_grad(x, dy, g, sat)
        });
        sink.tensor(&bias_spec(L::BIASES), self.0.biases(), &mut |g| {
            L::bias_grad(dy, g, sat)
        });
    }
    fn tensors(&mut self, f: &mut dyn FnMut(&TensorSpec, &mut [T])) {
        f(&L::WEIGHT_SPEC, self.0.weights());
        f(&bias_spec(L::BIASES), self.0.biases());
    }
}

// ---------------------------------------------------------------- LoRA

/// A LoRA adapter on a dense or pointwise layer `L` (kexue 9590; reference `optimizers.md`
/// §10): `y = L(x) + A·(B·x)`, at every one of the `LEN` positions (1 for a dense layer)
/// with `A: COUT×R`, `B: R×CIN`. The base layer's weights stay frozen; its biases, `A` and
/// `B` train (tensor order: biases, `A`, `B`). `A` starts at 0, so the adapted layer starts
/// as the base layer.
///
/// Gradients: with `u = B·x` (kept from the forward pass) and `du = Aᵀ·dy`,
/// `∂L/∂A = Σ_t dy_t ⊗ u_t`, `∂L/∂B = Σ_t du_t ⊗ x_t` and `dx = L's dx + Bᵀ·du`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lora<L, T, const CIN: usize, const COUT: usize, const R: usize, const LEN: usize = 1> {
    /// The frozen base layer.
    pub base: L,
    /// `A`, `COUT×R`.
    pub a: [[T; R]; COUT],
    /// `B`, `R×CIN`.
    pub b: [[T; CIN]; R],
    u: [[T; LEN]; R],
}

impl<L, T: Num, const CIN: usize, const COUT: usize, const R: usize, const LEN: usize>
    Lora<L, T, CIN, COUT, R, LEN>
where
    L: Affine<T>,
    L::Input: Cell<Scalar = T>,
    L::Output: Cell<Scalar = T>,
{
    /// The adapter on `base` with `A = 0` and the given `B`. The base must map `CIN·LEN`
    /// values to `COUT·LEN` (a build error otherwise).
    pub const fn new(base: L, b: [[T; CIN]; R]) -> Self {
        const {
            assert!(
                L::Input::WIDTH == CIN * LEN && L::Output::WIDTH == COUT * LEN && R > 0,
                "Lora: the base layer must map CIN·LEN values to COUT·LEN"
            )
        };
        Lora {
            base,
            a: [[T::ZERO; R]; COUT],
            b,
            u: [[T::ZERO; LEN]; R],
        }
    }

    /// `B·x` from the last forward pass.
    pub fn down(&self) -> &[[T; LEN]; R] {
        &self.u
    }

    fn a_spec() -> TensorSpec {
        TensorSpec::matrix(COUT, R)
    }
    fn b_spec() -> TensorSpec {
        TensorSpec::matrix(R, CIN)
    }
}

impl<L, T: Num, const CIN: usize, const COUT: usize, const R: usize, const LEN: usize> Infer
    for Lora<L, T, CIN, COUT, R, LEN>
where
    L: Affine<T>,
    L::Input: Cell<Scalar = T>,
    L::Output: Cell<Scalar = T>,
{
    type Input = L::Input;
    type Output = L::Output;
    fn forward(&mut self, x: &L::Input, y: &mut L::Output, sat: &mut Saturations) {
        self.base.forward(x, y, sat);
        let (x, y) = (x.flat(), y.flat_mut());
        for (u, brow) in self.u.iter_mut().zip(&self.b) {
            for (t, u) in u.iter_mut().enumerate() {
                let mut acc = T::ACC_ZERO;
                for (c, &b) in brow.iter().enumerate() {
                    acc = T::mac(acc, b, x[c * LEN + t]);
                }
                *u = T::finish(acc, T::ZERO, sat);
            }
        }
        for (o, arow) in self.a.iter().enumerate() {
            for t in 0..LEN {
                let mut acc = T::ACC_ZERO;
                for (&a, u) in arow.iter().zip(&self.u) {
                    acc = T::mac(acc, a, u[t]);
                }
                let y = &mut y[o * LEN + t];
                *y = T::finish(acc, *y, sat);
            }
        }
    }
}

/// `g[i][j] = Σ_t l[i][t]·r[j][t]` over `LEN` positions (one rounding per value; for one
/// position the plain product, as [`outer_flat`]).
fn outer_sum<T: Num>(l: &[T], r: &[T], len: usize, g: &mut [T], sat: &mut Saturations) {
    if len == 1 {
        return outer_flat(l, r, g);
    }
    let cols = r.len() / len;
    for (i, grow) in g.chunks_exact_mut(cols).enumerate() {
        for (j, g) in grow.iter_mut().enumerate() {
            let mut acc = T::ACC_ZERO;
            for t in 0..len {
                acc = T::mac(acc, l[i * len + t], r[j * len + t]);
            }
            *g = T::finish(acc, T::ZERO, sat);
        }
    }
}

impl<L, T: Num, const CIN: usize, const COUT: usize, const R: usize, const LEN: usize> Train<T>
    for Lora<L, T, CIN, COUT, R, LEN>
where
    L: Affine<T>,
    L::Input: Cell<Scalar = T>,
    L::Output: Cell<Scalar = T>,
{
    const TENSORS: usize = 3;
    const PARAMS: usize = L::BIASES + COUT * R + R * CIN;
    const LARGEST: usize = {
        let (b, a, r) = (L::BIASES, COUT * R, R * CIN);
        let m = if b > a { b } else { a };
        if m > r {
            m
        } else {
            r
        }
    };
    /// The base's scratch and `du = Aᵀ·dy`.
    type Grads = (L::Scratch, [[T; LEN]; R]);
    const GRADS: Self::Grads = (L::SCRATCH, [[T::ZERO; LEN]; R]);

    fn backward(
        &mut self,
        x: &L::Input,
        _: &L::Output,
        dy: &L::Output,
        dx: Option<&mut L::Input>,
        grads: &mut Self::Grads,
        sink: &mut dyn Sink<T>,
        sat: &mut Saturations,
    ) {
        let (scratch, du) = grads;
        let dyf = dy.flat();
        for (r, du) in du.iter_mut().enumerate() {
            for (t, du) in du.iter_mut().enumerate() {
                let mut acc = T::ACC_ZERO;
                for (o, arow) in self.a.iter().enumerate() {
                    acc = T::mac(acc, arow[r], dyf[o * LEN + t]);
                }
                *du = T::finish(acc, T::ZERO, sat);
            }
        }
        if let Some(dx) = dx {
            self.base.backward_input(dy, dx, scratch, sat);
            let dx = dx.flat_mut();
            for c in 0..CIN {
                for t in 0..LEN {
                    let mut acc = T::ACC_ZERO;
                    for (brow, du) in self.b.iter().zip(du.iter()) {
                        acc = T::mac(acc, brow[c], du[t]);
                    }
                    let d = &mut dx[c * LEN + t];
                    *d = T::finish(acc, *d, sat);
                }
            }
        }
        sink.tensor(&bias_spec(L::BIASES), self.base.biases(), &mut |g| {
            L::bias_grad(dy, g, sat)
        });
        let u = self.u.as_flattened();
        sink.tensor(&Self::a_spec(), self.a.as_flattened_mut(), &mut |g| {
            outer_sum(dyf, u, LEN, g, sat)
        });
        let duf = du.as_flattened();
        sink.tensor(&Self::b_spec(), self.b.as_flattened_mut(), &mut |g| {
            // ∂L/∂B[r][c] = Σ_t du[r][t]·x[c][t].
            outer_sum(duf, x.flat(), LEN, g, sat)
        });
    }

    fn tensors(&mut self, f: &mut dyn FnMut(&TensorSpec, &mut [T])) {
        f(&bias_spec(L::BIASES), self.base.biases());
        f(&Self::a_spec(), self.a.as_flattened_mut());
        f(&Self::b_spec(), self.b.as_flattened_mut());
    }
}

// ---------------------------------------------------------------- parameter-free layers

/// Readings (f32) → the model's format: `x = reading·scale` (a NaN/±Inf reading is refused
/// by the trainer before the forward pass; a reading beyond a fixed-point range saturates and
/// is counted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale<T, X> {
    /// The factor.
    pub scale: T,
    _shape: core::marker::PhantomData<X>,
}

impl<T: Num, X: Cell<Scalar = f32>> Scale<T, X> {
    /// Readings times `scale`.
    pub const fn new(scale: T) -> Self {
        Scale {
            scale,
            _shape: core::marker::PhantomData,
        }
    }
}

impl<T: Num, X: Cell<Scalar = f32>> Infer for Scale<T, X> {
    type Input = X;
    type Output = X::With<T>;
    fn forward(&mut self, x: &X, y: &mut X::With<T>, sat: &mut Saturations) {
        for (y, &r) in y.flat_mut().iter_mut().zip(x.flat()) {
            *y = T::from_reading(r, sat).unwrap_or(T::ZERO).times(self.scale);
        }
    }
}

macro_rules! no_params {
    () => {
        const TENSORS: usize = 0;
        const PARAMS: usize = 0;
        const LARGEST: usize = 0;
        type Grads = ();
        const GRADS: () = ();
        fn tensors(&mut self, _: &mut dyn FnMut(&TensorSpec, &mut [T])) {}
    };
}

impl<T: Num, X: Cell<Scalar = f32>> Train<T> for Scale<T, X> {
    no_params!();
    fn backward(
        &mut self,
        _: &X,
        _: &X::With<T>,
        _: &X::With<T>,
        _: Option<&mut X>,
        _: &mut (),
        _: &mut dyn Sink<T>,
        _: &mut Saturations,
    ) {
    }
}

/// ReLU on any shape `X`: `y = max(x, 0)`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Relu<X>(core::marker::PhantomData<X>);
/// ReLU6 on any shape `X`: `y = min(max(x, 0), 6)` (MobileNet's activation).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Relu6<X>(core::marker::PhantomData<X>);

impl<X> Relu<X> {
    /// The layer.
    pub const fn new() -> Self {
        Relu(core::marker::PhantomData)
    }
}
impl<X> Relu6<X> {
    /// The layer.
    pub const fn new() -> Self {
        Relu6(core::marker::PhantomData)
    }
}

impl<X: Cell> Infer for Relu<X>
where
    X::Scalar: Num,
{
    type Input = X;
    type Output = X;
    fn forward(&mut self, x: &X, y: &mut X, _: &mut Saturations) {
        *y = *x;
        crate::nn::relu_slice(y.flat_mut());
    }
}

impl<T: Num, X: Cell<Scalar = T>> Train<T> for Relu<X> {
    no_params!();
    fn backward(
        &mut self,
        _: &X,
        y: &X,
        dy: &X,
        dx: Option<&mut X>,
        _: &mut (),
        _: &mut dyn Sink<T>,
        _: &mut Saturations,
    ) {
        if let Some(dx) = dx {
            *dx = *dy;
            crate::nn::relu_backward_slice(y.flat(), dx.flat_mut());
        }
    }
}

impl<X: Cell> Infer for Relu6<X>
where
    X::Scalar: Num,
{
    type Input = X;
    type Output = X;
    fn forward(&mut self, x: &X, y: &mut X, _: &mut Saturations) {
        *y = *x;
        crate::nn::relu6(y.flat_mut());
    }
}

impl<T: Num, X: Cell<Scalar = T>> Train<T> for Relu6<X> {
    no_params!();
    fn backward(
        &mut self,
        _: &X,
        y: &X,
        dy: &X,
        dx: Option<&mut X>,
        _: &mut (),
        _: &mut dyn Sink<T>,
        _: &mut Saturations,
    ) {
        if let Some(dx) = dx {
            *dx = *dy;
            crate::nn::relu6_backward(y.flat(), dx.flat_mut());
        }
    }
}

/// Average pooling over windows of `K` with stride `S` (no padding) on `[[T; L]; C]`;
/// `LOUT` is asserted at build time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvgPool<
    T,
    const C: usize,
    const L: usize,
    const LOUT: usize,
    const K: usize,
    const S: usize,
>(core::marker::PhantomData<T>);

impl<T: Num, const C: usize, const L: usize, const LOUT: usize, const K: usize, const S: usize>
    AvgPool<T, C, L, LOUT, K, S>
{
    /// The layer; `LOUT` must be [`conv_out_len`]`(L, K, S, 0)` (a build error otherwise).
    pub const fn new() -> Self {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, 0) && LOUT > 0) };
        AvgPool(core::marker::PhantomData)
    }
}

impl<T: Num, const C: usize, const L: usize, const LOUT: usize, const K: usize, const S: usize>
    Default for AvgPool<T, C, L, LOUT, K, S>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Num, const C: usize, const L: usize, const LOUT: usize, const K: usize, const S: usize>
    Infer for AvgPool<T, C, L, LOUT, K, S>
{
    type Input = [[T; L]; C];
    type Output = [[T; LOUT]; C];
    fn forward(&mut self, x: &Self::Input, y: &mut Self::Output, sat: &mut Saturations) {
        avg_pool::<T, C, L, LOUT, K, S>(x, y, sat)
    }
}

impl<T: Num, const C: usize, const L: usize, const LOUT: usize, const K: usize, const S: usize>
    Train<T> for AvgPool<T, C, L, LOUT, K, S>
{
    no_params!();
    fn backward(
        &mut self,
        _: &Self::Input,
        _: &Self::Output,
        dy: &Self::Output,
        dx: Option<&mut Self::Input>,
        _: &mut (),
        _: &mut dyn Sink<T>,
        sat: &mut Saturations,
    ) {
        if let Some(dx) = dx {
            avg_pool_backward::<T, C, L, LOUT, K, S>(dy, dx, sat)
        }
    }
}

/// Global average pooling `[[T; L]; C] → [T; C]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlobalAvgPool<T, const C: usize, const L: usize>(core::marker::PhantomData<T>);

impl<T: Num, const C: usize, const L: usize> GlobalAvgPool<T, C, L> {
    /// The layer.
    pub const fn new() -> Self {
        GlobalAvgPool(core::marker::PhantomData)
    }
}

impl<T: Num, const C: usize, const L: usize> Default for GlobalAvgPool<T, C, L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Num, const C: usize, const L: usize> Infer for GlobalAvgPool<T, C, L> {
    type Input = [[T; L]; C];
    type Output = [T; C];
    fn forward(&mut self, x: &Self::Input, y: &mut [T; C], sat: &mut Saturations) {
        global_avg_pool(x, y, sat)
    }
}

impl<T: Num, const C: usize, const L: usize> Train<T> for GlobalAvgPool<T, C, L> {
    no_params!();
    fn backward(
        &mut self,
        _: &Self::Input,
        _: &[T; C],
        dy: &[T; C],
        dx: Option<&mut Self::Input>,
        _: &mut (),
        _: &mut dyn Sink<T>,
        _: &mut Saturations,
    ) {
        if let Some(dx) = dx {
            global_avg_pool_backward(dy, dx)
        }
    }
}

/// `[[T; L]; C] → [T; N]` with `N = C·L` (asserted at build time), channel-major.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flatten<T, const C: usize, const L: usize, const N: usize>(core::marker::PhantomData<T>);

impl<T: Num, const C: usize, const L: usize, const N: usize> Flatten<T, C, L, N> {
    /// The layer; `N` must be `C·L` (a build error otherwise).
    pub const fn new() -> Self {
        const { assert!(N == C * L, "Flatten: N must be C·L") };
        Flatten(core::marker::PhantomData)
    }
}

impl<T: Num, const C: usize, const L: usize, const N: usize> Default for Flatten<T, C, L, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Num, const C: usize, const L: usize, const N: usize> Infer for Flatten<T, C, L, N> {
    type Input = [[T; L]; C];
    type Output = [T; N];
    fn forward(&mut self, x: &Self::Input, y: &mut [T; N], _: &mut Saturations) {
        y.copy_from_slice(x.as_flattened())
    }
}

impl<T: Num, const C: usize, const L: usize, const N: usize> Train<T> for Flatten<T, C, L, N> {
    no_params!();
    fn backward(
        &mut self,
        _: &Self::Input,
        _: &[T; N],
        dy: &[T; N],
        dx: Option<&mut Self::Input>,
        _: &mut (),
        _: &mut dyn Sink<T>,
        _: &mut Saturations,
    ) {
        if let Some(dx) = dx {
            dx.as_flattened_mut().copy_from_slice(dy)
        }
    }
}

// ---------------------------------------------------------------- blob records

use super::blob::{record_bytes, BlobReader, BlobWriter, LayerDesc, LayerKind, Persist, Record};

fn save_t<T: Num>(w: &mut BlobWriter<'_>, v: &[T]) {
    for v in v {
        w.f32(v.to_f32())
    }
}

fn load_t<T: Num>(p: &mut super::blob::Payload<'_>, v: &mut [T]) {
    for v in v {
        *v = T::from_f32(p.f32())
    }
}

/// A layer of one record whose payload is all floats.
macro_rules! float_record {
    ($kind:expr, $dims:expr, $values:expr) => {
        Record {
            desc: LayerDesc::new($kind, $dims),
            len: 4 * ($values),
            floats: (0, 4 * ($values)),
        }
    };
}

impl<'a, T: Num, const IN: usize, const OUT: usize> Persist<'a> for Dense<T, IN, OUT> {
    const RECORDS: usize = 1;
    const BYTES: usize = record_bytes(4 * (OUT * IN + OUT));
    fn records(f: &mut dyn FnMut(Record)) {
        f(float_record!(
            LayerKind::Dense,
            [IN, OUT, 0, 0],
            OUT * IN + OUT
        ))
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        Self::records(&mut |r| w.record(&r));
        save_t(w, self.w.as_flattened());
        save_t(w, &self.b);
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        let mut p = r.record();
        load_t(&mut p, self.w.as_flattened_mut());
        load_t(&mut p, &mut self.b);
    }
}

impl<'a, T: Num, const IN: usize, const OUT: usize> Persist<'a> for Int8Dense<'a, T, IN, OUT> {
    const RECORDS: usize = 1;
    const BYTES: usize = record_bytes(OUT * IN + 8 * OUT);
    fn records(f: &mut dyn FnMut(Record)) {
        f(Record {
            desc: LayerDesc::new(LayerKind::Int8Dense, [IN, OUT, 0, 0]),
            len: OUT * IN + 8 * OUT,
            floats: (OUT * IN, OUT * IN + 8 * OUT),
        })
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        Self::records(&mut |r| w.record(&r));
        let mut q = [0u8; IN];
        for o in 0..OUT {
            let row = self.row(o);
            q[..row.len()].copy_from_slice(row);
            w.bytes(&q);
        }
        save_t(w, &self.scale);
        save_t(w, &self.b);
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        let mut p = r.record();
        self.q = p.bytes(OUT * IN);
        load_t(&mut p, &mut self.scale);
        load_t(&mut p, &mut self.b);
    }
}

impl<
        'a,
        T: Num,
        const CIN: usize,
        const COUT: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Persist<'a> for Conv<T, CIN, COUT, K, S, P, L, LOUT>
{
    const RECORDS: usize = 1;
    const BYTES: usize = record_bytes(4 * (COUT * CIN * K + COUT));
    fn records(f: &mut dyn FnMut(Record)) {
        f(float_record!(
            LayerKind::Conv,
            [CIN, COUT, K, S * 256 + P],
            COUT * CIN * K + COUT
        ))
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        Self::records(&mut |r| w.record(&r));
        save_t(w, self.0.w.as_flattened().as_flattened());
        save_t(w, &self.0.b);
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        let mut p = r.record();
        load_t(&mut p, self.0.w.as_flattened_mut().as_flattened_mut());
        load_t(&mut p, &mut self.0.b);
    }
}

impl<
        'a,
        T: Num,
        const C: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Persist<'a> for Depthwise<T, C, K, S, P, L, LOUT>
{
    const RECORDS: usize = 1;
    const BYTES: usize = record_bytes(4 * (C * K + C));
    fn records(f: &mut dyn FnMut(Record)) {
        f(float_record!(LayerKind::Depthwise, [C, K, S, P], C * K + C))
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        Self::records(&mut |r| w.record(&r));
        save_t(w, self.0.w.as_flattened());
        save_t(w, &self.0.b);
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        let mut p = r.record();
        load_t(&mut p, self.0.w.as_flattened_mut());
        load_t(&mut p, &mut self.0.b);
    }
}

macro_rules! delegate_persist {
    ($w:ident) => {
        impl<'a, L: Persist<'a>> Persist<'a> for $w<L> {
            const RECORDS: usize = L::RECORDS;
            const BYTES: usize = L::BYTES;
            fn records(f: &mut dyn FnMut(Record)) {
                L::records(f)
            }
            fn save(&self, w: &mut BlobWriter<'_>) {
                self.0.save(w)
            }
            fn load(&mut self, r: &mut BlobReader<'a>) {
                self.0.load(r)
            }
        }
    };
}
delegate_persist!(Frozen);
delegate_persist!(BiasOnly);
delegate_persist!(Full);
delegate_persist!(Prefix);

use super::Prefix;

impl<'a, L, T: Num, const CIN: usize, const COUT: usize, const R: usize, const LEN: usize>
    Persist<'a> for Lora<L, T, CIN, COUT, R, LEN>
where
    L: Persist<'a>,
{
    const RECORDS: usize = L::RECORDS + 1;
    const BYTES: usize = L::BYTES + record_bytes(4 * (COUT * R + R * CIN));
    fn records(f: &mut dyn FnMut(Record)) {
        L::records(f);
        f(float_record!(
            LayerKind::Lora,
            [CIN, COUT, R, LEN],
            COUT * R + R * CIN
        ))
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        self.base.save(w);
        w.record(&float_record!(
            LayerKind::Lora,
            [CIN, COUT, R, LEN],
            COUT * R + R * CIN
        ));
        save_t(w, self.a.as_flattened());
        save_t(w, self.b.as_flattened());
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        self.base.load(r);
        let mut p = r.record();
        load_t(&mut p, self.a.as_flattened_mut());
        load_t(&mut p, self.b.as_flattened_mut());
    }
}

impl<'a, T: Num, X: Cell<Scalar = f32>> Persist<'a> for Scale<T, X> {
    const RECORDS: usize = 1;
    const BYTES: usize = record_bytes(4);
    fn records(f: &mut dyn FnMut(Record)) {
        f(float_record!(LayerKind::Scale, [X::WIDTH, 0, 0, 0], 1))
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        Self::records(&mut |r| w.record(&r));
        w.f32(self.scale.to_f32());
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        self.scale = T::from_f32(r.record().f32());
    }
}

/// A parameter-free layer: one record with no payload.
macro_rules! empty_record {
    ($ty:ty, [$($g:tt)*], $kind:expr, $dims:expr) => {
        impl<'a, $($g)*> Persist<'a> for $ty {
            const RECORDS: usize = 1;
            const BYTES: usize = record_bytes(0);
            fn records(f: &mut dyn FnMut(Record)) {
                f(Record { desc: LayerDesc::new($kind, $dims), len: 0, floats: (0, 0) })
            }
            fn save(&self, w: &mut BlobWriter<'_>) {
                Self::records(&mut |r| w.record(&r));
            }
            fn load(&mut self, r: &mut BlobReader<'a>) {
                r.record();
            }
        }
    };
}
empty_record!(Relu<X>, [X: Cell], LayerKind::Relu, [X::WIDTH, 0, 0, 0]);
empty_record!(Relu6<X>, [X: Cell], LayerKind::Relu6, [X::WIDTH, 0, 0, 0]);
empty_record!(
    AvgPool<T, C, L, LOUT, K, S>,
    [T: Num, const C: usize, const L: usize, const LOUT: usize, const K: usize, const S: usize],
    LayerKind::AvgPool,
    [C, L, K, S]
);
empty_record!(
    GlobalAvgPool<T, C, L>,
    [T: Num, const C: usize, const L: usize],
    LayerKind::GlobalAvgPool,
    [C, L, 0, 0]
);
empty_record!(
    Flatten<T, C, L, N>,
    [T: Num, const C: usize, const L: usize, const N: usize],
    LayerKind::Flatten,
    [C, L, 0, 0]
);
