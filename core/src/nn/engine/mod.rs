//! The on-device training engine: layers a user composes into a sequential model in their own
//! crate, trained by backprop with any optimizer or forward-only (zeroth-order), in a fixed
//! amount of RAM that the model states as a `const` ([`Plan`]).
//!
//! # Composing a model
//! A model is a [`Chain`] of layers (the [`seq!`](crate::seq) macro nests them; the
//! [`Seq!`](crate::Seq) macro writes the type). Each layer's output type must be the next
//! one's input type, so a model whose shapes do not chain does not build; where an output
//! length cannot be computed in a type (convolutions, pooling) the layer's constructor asserts
//! it in a `const` block, which is also a build error.
//!
//! | part | role | trains |
//! |---|---|---|
//! | [`Scale`], [`QInput`] | f32 readings → the model's number format / int8 | — |
//! | [`Prefix`] | any inference-only layers (int8 [`QDense`], [`QConv1d`], …): no activations kept, gradients stop here | nothing |
//! | [`Frozen`]`<L>` | a float layer that passes gradients but does not train | nothing |
//! | [`BiasOnly`]`<L>` | TinyTL's bias-only update | `b` |
//! | [`Full`]`<L>` | fully trainable | `w`, `b` |
//! | [`Lora`]`<L, …>` | `y = L(x) + A·(B·x)` on a dense, int8-weight dense or pointwise layer | `b`, `A`, `B` |
//! | [`Relu`], [`Relu6`], [`AvgPool`], [`GlobalAvgPool`], [`Flatten`] | parameter-free | — |
//!
//! MCUNetV3's "last k layers + biases" is `BiasOnly` on the earlier layers and `Full` on the
//! last k; a frozen int8 backbone is a `Prefix`.
//!
//! # Memory plan
//! Every buffer is a field of the model or the trainer, sized by the types, so nothing large
//! is ever on the stack and the RAM a trainer needs is its `size_of`:
//! - the model: its trainable parameters and, per [`Chain`] link, one buffer holding the
//!   activation between the two sides (inference RAM; a frozen prefix keeps no other);
//! - [`Backprop`] adds, per link of the trainable part, one gradient buffer of the same shape
//!   ([`Train::Grads`]), one scratch of the largest trainable tensor (each tensor's gradient
//!   is formed there and handed to the optimizer at once: no gradient buffer for the whole
//!   model, TinyEngine's operator reordering) and the optimizer state;
//! - [`ZoTrainer`] adds only the scratch and the optimizer state: forward-only training
//!   needs inference RAM plus optimizer state.
//!
//! [`Plan`] states those bytes as constants; tests check them against `size_of` and the
//! firmware checks its measured stack high-water mark.
//!
//! # Backward pass
//! Layers are visited last to first. Each layer first writes its input gradient (with its
//! weights as they were in the forward pass), then forms the gradient of each of its
//! trainable tensors in the scratch and hands it to the [`Sink`] (the optimizer step), in the
//! order weights, biases (for [`Lora`]: biases, `A`, `B`). That order is the optimizer-state
//! layout. An optimizer that observes every gradient first (a chain with global-norm
//! clipping) gets a first backward pass that only observes, then a second that steps: each
//! gradient formed twice instead of a buffer for all of them.

mod blob;
mod int8;
mod layers;
mod train;

pub use blob::{
    BlobReader, BlobWriter, LayerDesc, LayerKind, ModelBlob, Payload, Persist, Record, BLOB_MAGIC,
    BLOB_VERSION,
};
pub use int8::{Dequantize, QConv1d, QDense, QDepthwise1d, QInput, QParams, QPointwise};
pub use layers::{
    Affine, AvgPool, BiasOnly, Conv, Depthwise, Flatten, Frozen, Full, GlobalAvgPool, Int8Dense,
    Lora, Pointwise, Relu, Relu6, Scale, Weights,
};
pub use train::{Backprop, Batch, Plan, TrainStats, ZoStep, ZoTrainer};

use super::num::{Num, Saturations};
use crate::optim::TensorSpec;

/// A fixed-size activation: a number, or an array of cells (`[T; N]`, `[[T; L]; C]`, …),
/// seen as one flat slice of its [`Cell::Scalar`]s.
pub trait Cell: Copy + 'static {
    /// The number the cell is made of.
    type Scalar: Leaf;
    /// The same shape made of `U`.
    type With<U: Leaf>: Cell<Scalar = U>;
    /// Scalars in the cell.
    const WIDTH: usize;
    /// Every scalar 0.
    const ZEROED: Self;
    /// A slice of cells as one slice of scalars.
    fn flat_slice(s: &[Self]) -> &[Self::Scalar];
    /// [`Cell::flat_slice`], mutable.
    fn flat_slice_mut(s: &mut [Self]) -> &mut [Self::Scalar];
    /// The cell's scalars in order (channel-major for `[[T; L]; C]`).
    fn flat(&self) -> &[Self::Scalar] {
        Self::flat_slice(core::slice::from_ref(self))
    }
    /// [`Cell::flat`], mutable.
    fn flat_mut(&mut self) -> &mut [Self::Scalar] {
        Self::flat_slice_mut(core::slice::from_mut(self))
    }
}

/// A number a [`Cell`] is made of (f32, f64, the fixed-point formats, i8).
pub trait Leaf: Cell<Scalar = Self> + Default + PartialOrd {}

macro_rules! leaf {
    ($($t:ty => $zero:expr),*) => {$(
        impl Cell for $t {
            type Scalar = $t;
            type With<U: Leaf> = U;
            const WIDTH: usize = 1;
            const ZEROED: Self = $zero;
            fn flat_slice(s: &[Self]) -> &[Self] {
                s
            }
            fn flat_slice_mut(s: &mut [Self]) -> &mut [Self] {
                s
            }
        }
        impl Leaf for $t {}
    )*};
}
leaf!(f32 => 0.0, f64 => 0.0, i8 => 0, crate::quant::I8F24 => crate::quant::I8F24::ZERO,
      crate::quant::I16F16 => crate::quant::I16F16::ZERO);

impl<E: Cell, const N: usize> Cell for [E; N] {
    type Scalar = E::Scalar;
    type With<U: Leaf> = [E::With<U>; N];
    const WIDTH: usize = N * E::WIDTH;
    const ZEROED: Self = [E::ZEROED; N];
    fn flat_slice(s: &[Self]) -> &[Self::Scalar] {
        E::flat_slice(s.as_flattened())
    }
    fn flat_slice_mut(s: &mut [Self]) -> &mut [Self::Scalar] {
        E::flat_slice_mut(s.as_flattened_mut())
    }
}

/// A layer's inference: `y = f(x)`. Buffers a layer needs between its forward and backward
/// passes (LoRA's `B·x`) are its own fields, written here.
pub trait Infer {
    /// The input activation.
    type Input: Cell;
    /// The output activation.
    type Output: Cell;
    /// The forward pass.
    fn forward(&mut self, x: &Self::Input, y: &mut Self::Output, sat: &mut Saturations);
}

/// Where a layer hands each trainable tensor's gradient during the backward pass (the
/// trainer's optimizer step).
pub trait Sink<T> {
    /// `grad` writes the gradient of `params` (`spec.len()` values) into the slice it is given;
    /// the sink forms it in its scratch and steps `params` (or only observes it).
    fn tensor(&mut self, spec: &TensorSpec, params: &mut [T], grad: &mut dyn FnMut(&mut [T]));
}

/// A layer in the trainable part of a model, in format `T` (see the module docs for the
/// order of the backward pass).
pub trait Train<T: Num>: Infer {
    /// Trainable tensors.
    const TENSORS: usize;
    /// Trainable values.
    const PARAMS: usize;
    /// Values of the largest trainable tensor (the gradient scratch).
    const LARGEST: usize;
    /// Whether the layer can write an input gradient (`false` for a [`Prefix`]: nothing
    /// before it may train).
    const PASSES: bool = true;
    /// Buffers the backward pass needs between layers (a [`Chain`]'s link gradient).
    type Grads: Copy;
    /// Zeroed [`Train::Grads`].
    const GRADS: Self::Grads;
    /// The backward pass: `x` and `y` are this layer's input and output of the last forward
    /// pass, `dy` the output gradient. Writes `dx` when asked, then hands each trainable
    /// tensor's gradient to `sink`.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &mut self,
        x: &Self::Input,
        y: &Self::Output,
        dy: &Self::Output,
        dx: Option<&mut Self::Input>,
        grads: &mut Self::Grads,
        sink: &mut dyn Sink<T>,
        sat: &mut Saturations,
    );
    /// Every trainable tensor in backward order, with its spec.
    fn tensors(&mut self, f: &mut dyn FnMut(&TensorSpec, &mut [T]));
}

/// Two layers in sequence: `b(a(x))`. The activation between them is kept here (the
/// forward pass's output of `a`, which `b`'s backward pass reads).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chain<A: Infer, B> {
    a: A,
    b: B,
    mid: A::Output,
}

impl<A: Infer, B: Infer<Input = A::Output>> Chain<A, B> {
    /// `a` then `b` (the types say the shapes chain).
    pub const fn new(a: A, b: B) -> Self {
        Chain {
            a,
            b,
            mid: A::Output::ZEROED,
        }
    }

    /// The first layer.
    pub fn first(&self) -> &A {
        &self.a
    }
    /// The rest.
    pub fn rest(&self) -> &B {
        &self.b
    }
    /// Both sides, mutable (to load weights).
    pub fn parts_mut(&mut self) -> (&mut A, &mut B) {
        (&mut self.a, &mut self.b)
    }
    /// The activation between the two sides from the last forward pass.
    pub fn between(&self) -> &A::Output {
        &self.mid
    }
}

impl<A: Infer, B: Infer<Input = A::Output>> Infer for Chain<A, B> {
    type Input = A::Input;
    type Output = B::Output;
    fn forward(&mut self, x: &A::Input, y: &mut B::Output, sat: &mut Saturations) {
        self.a.forward(x, &mut self.mid, sat);
        self.b.forward(&self.mid, y, sat);
    }
}

impl<T: Num, A: Train<T>, B: Train<T> + Infer<Input = A::Output>> Train<T> for Chain<A, B> {
    const TENSORS: usize = A::TENSORS + B::TENSORS;
    const PARAMS: usize = A::PARAMS + B::PARAMS;
    const LARGEST: usize = if A::LARGEST > B::LARGEST {
        A::LARGEST
    } else {
        B::LARGEST
    };
    const PASSES: bool = {
        assert!(
            A::TENSORS == 0 || B::PASSES,
            "a Prefix (gradients stop there) follows a trainable layer"
        );
        A::PASSES && B::PASSES
    };
    type Grads = (A::Grads, B::Grads, A::Output);
    const GRADS: Self::Grads = (A::GRADS, B::GRADS, A::Output::ZEROED);

    fn backward(
        &mut self,
        x: &A::Input,
        y: &B::Output,
        dy: &B::Output,
        dx: Option<&mut A::Input>,
        grads: &mut Self::Grads,
        sink: &mut dyn Sink<T>,
        sat: &mut Saturations,
    ) {
        let need = A::TENSORS > 0 || dx.is_some();
        let (ga, gb, dmid) = grads;
        self.b.backward(
            &self.mid,
            y,
            dy,
            if need { Some(dmid) } else { None },
            gb,
            sink,
            sat,
        );
        if need {
            self.a.backward(x, &self.mid, dmid, dx, ga, sink, sat);
        }
    }

    fn tensors(&mut self, f: &mut dyn FnMut(&TensorSpec, &mut [T])) {
        self.b.tensors(f);
        self.a.tensors(f);
    }
}

/// Inference-only layers in front of the trainable part (a frozen int8 backbone): run
/// forward only, keep no activations, take no gradient. Nothing before a `Prefix` may train
/// (a build error).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prefix<L>(pub L);

impl<L: Infer> Infer for Prefix<L> {
    type Input = L::Input;
    type Output = L::Output;
    fn forward(&mut self, x: &L::Input, y: &mut L::Output, sat: &mut Saturations) {
        self.0.forward(x, y, sat)
    }
}

impl<T: Num, L: Infer> Train<T> for Prefix<L> {
    const TENSORS: usize = 0;
    const PARAMS: usize = 0;
    const LARGEST: usize = 0;
    const PASSES: bool = false;
    type Grads = ();
    const GRADS: () = ();
    fn backward(
        &mut self,
        _: &L::Input,
        _: &L::Output,
        _: &L::Output,
        _: Option<&mut L::Input>,
        _: &mut (),
        _: &mut dyn Sink<T>,
        _: &mut Saturations,
    ) {
    }
    fn tensors(&mut self, _: &mut dyn FnMut(&TensorSpec, &mut [T])) {}
}

/// Nests layers into a [`Chain`]: `seq!(a, b, c)` is `Chain::new(a, Chain::new(b, c))`.
#[macro_export]
macro_rules! seq {
    ($a:expr $(,)?) => { $a };
    ($a:expr, $($rest:expr),+ $(,)?) => {
        $crate::nn::engine::Chain::new($a, $crate::seq!($($rest),+))
    };
}

/// The type of a [`seq!`](crate::seq): `Seq![A, B, C]` is `Chain<A, Chain<B, C>>`.
#[macro_export]
#[allow(non_snake_case)]
macro_rules! Seq {
    ($a:ty $(,)?) => { $a };
    ($a:ty, $($rest:ty),+ $(,)?) => {
        $crate::nn::engine::Chain<$a, $crate::Seq![$($rest),+]>
    };
}

impl<'a, A: Infer + Persist<'a>, B: Infer<Input = A::Output> + Persist<'a>> Persist<'a>
    for Chain<A, B>
{
    const RECORDS: usize = A::RECORDS + B::RECORDS;
    const BYTES: usize = A::BYTES + B::BYTES;
    fn records(f: &mut dyn FnMut(blob::Record)) {
        A::records(f);
        B::records(f);
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        self.a.save(w);
        self.b.save(w);
    }
    fn load(&mut self, r: &mut blob::BlobReader<'a>) {
        self.a.load(r);
        self.b.load(r);
    }
}
