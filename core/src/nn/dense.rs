//! A dense (fully connected) layer `y = W·x + b` with its backward pass, and ReLU.

use super::num::{Num, Saturations};

/// A trainable dense layer: `w[o][i]` is the weight from input `i` to output `o`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dense<T, const IN: usize, const OUT: usize> {
    /// Weights, one row per output.
    pub w: [[T; IN]; OUT],
    /// Biases.
    pub b: [T; OUT],
}

impl<T: Num, const IN: usize, const OUT: usize> Dense<T, IN, OUT> {
    /// All weights and biases 0.
    pub const fn zeroed() -> Self {
        Dense {
            w: [[T::ZERO; IN]; OUT],
            b: [T::ZERO; OUT],
        }
    }

    /// `y = W·x + b` (each output summed in input order, rounded once).
    pub fn forward(&self, x: &[T; IN], y: &mut [T; OUT], sat: &mut Saturations) {
        for ((y, row), &b) in y.iter_mut().zip(&self.w).zip(&self.b) {
            *y = T::finish(dot(row, x), b, sat);
        }
    }

    /// The input gradient `dx = Wᵀ·dy` (taken before the weights move).
    pub fn backward_input(&self, dy: &[T; OUT], dx: &mut [T; IN], sat: &mut Saturations) {
        for (i, dx) in dx.iter_mut().enumerate() {
            let mut acc = T::ACC_ZERO;
            for (row, &d) in self.w.iter().zip(dy) {
                acc = T::mac(acc, row[i], d);
            }
            *dx = T::finish(acc, T::ZERO, sat);
        }
    }

    /// The weight gradient `∂L/∂W = dy ⊗ x` into `dw` (row-major, `OUT·IN` values).
    pub fn weight_grad(dy: &[T; OUT], x: &[T; IN], dw: &mut [[T; IN]; OUT]) {
        outer(dy, x, dw)
    }
}

/// `Σ aᵢ·bᵢ` as an accumulator (in order).
#[inline(always)]
pub(crate) fn dot<T: Num, const N: usize>(a: &[T; N], b: &[T; N]) -> T::Acc {
    let mut acc = T::ACC_ZERO;
    for (&a, &b) in a.iter().zip(b) {
        acc = T::mac(acc, a, b);
    }
    acc
}

/// `out[o][i] = a[o]·b[i]` (each product rounded once, saturating in fixed point).
pub fn outer<T: Num, const A: usize, const B: usize>(
    a: &[T; A],
    b: &[T; B],
    out: &mut [[T; B]; A],
) {
    outer_flat(a, b, out.as_flattened_mut())
}

/// [`outer`] into a row-major slice; the caller guarantees `out.len() ≥ a.len()·b.len()`
/// (the trainer's scratch, sized at compile time).
#[inline]
pub(crate) fn outer_flat<T: Num>(a: &[T], b: &[T], out: &mut [T]) {
    for (row, &a) in out.chunks_exact_mut(b.len()).zip(a) {
        for (o, &b) in row.iter_mut().zip(b) {
            *o = a.times(b);
        }
    }
}

/// ReLU in place: `x ← max(x, 0)`.
pub fn relu<T: Num, const N: usize>(x: &mut [T; N]) {
    relu_slice(x)
}

/// [`relu`] on a slice.
pub fn relu_slice<T: Num>(x: &mut [T]) {
    for x in x.iter_mut() {
        if *x <= T::ZERO {
            *x = T::ZERO;
        }
    }
}

/// ReLU's backward pass: `dx ← dx` where the ReLU output `y` is positive, else 0.
pub fn relu_backward<T: Num, const N: usize>(y: &[T; N], dx: &mut [T; N]) {
    relu_backward_slice(y, dx)
}

/// [`relu_backward`] on slices.
pub fn relu_backward_slice<T: Num>(y: &[T], dx: &mut [T]) {
    for (d, &y) in dx.iter_mut().zip(y) {
        if y <= T::ZERO {
            *d = T::ZERO;
        }
    }
}
