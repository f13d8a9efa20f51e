//! 1-D convolutions (full, depthwise, pointwise), ReLU6 and average pooling, with their
//! backward passes: the first layers of the on-device engine (issue 20), generic over
//! [`Num`] so f32, f64 and fixed point run the same code.
//!
//! Activations are channel-major, `[[T; L]; C]` (channel `c`, position `t`). A convolution
//! with kernel K, stride S and zero padding P maps length L to `LOUT = (L + 2P − K)/S + 1`;
//! stable Rust cannot compute that in a type, so each call states `LOUT` and a `const`
//! assertion makes a wrong one a compile error (`cargo build` fails, it is not a run-time
//! check). Sums run in a fixed order (channel, then tap), each rounded once ([`Num::finish`]),
//! so every target gives the same bits.
//!
//! | layer | forward | parameters |
//! |---|---|---|
//! | [`Conv1d`] | `y[o][t] = b[o] + Σ_c Σ_k w[o][c][k]·x[c][tS+k−P]` | `w: [[[T; K]; CIN]; COUT]`, `b: [T; COUT]` |
//! | [`Depthwise1d`] | `y[c][t] = b[c] + Σ_k w[c][k]·x[c][tS+k−P]` | `w: [[T; K]; C]`, `b: [T; C]` |
//! | [`Pointwise`] | `Conv1d` with K = 1, S = 1, P = 0 | |
//! | [`relu6`] | `min(max(x, 0), 6)` | |
//! | [`avg_pool`] | `y[c][t] = (1/K)·Σ_k x[c][tS+k]` (no padding) | |
//! | [`global_avg_pool`] | `y[c] = (1/L)·Σ_t x[c][t]` | |
//!
//! Each backward takes the forward's input (and, for the activations, its output) and the
//! output gradient; parameter gradients are written, not accumulated, so the caller hands them
//! to an optimizer as soon as they exist.
//!
//! ```
//! use margay::nn::{Conv1d, Saturations};
//! let mut conv = Conv1d::<f32, 1, 2, 3, 2, 1>::zeroed(); // K 3, stride 2, padding 1
//! conv.w[0][0] = [1.0, 2.0, 3.0];
//! let (x, mut y, mut sat) = ([[1.0_f32, 1.0, 1.0, 1.0, 1.0]], [[0.0_f32; 3]; 2], Saturations::default());
//! conv.forward::<5, 3>(&x, &mut y, &mut sat); // (5 + 2 − 3)/2 + 1 = 3
//! assert_eq!(y[0], [5.0, 6.0, 3.0]); // the last window runs into the padding
//! ```
//!
//! A wrong output length does not build:
//! ```compile_fail
//! use margay::nn::{Conv1d, Saturations};
//! let conv = Conv1d::<f32, 1, 1, 3, 1, 0>::zeroed();
//! let (x, mut y, mut sat) = ([[0.0_f32; 8]], [[0.0_f32; 7]], Saturations::default());
//! conv.forward::<8, 7>(&x, &mut y, &mut sat); // 8 − 3 + 1 = 6, not 7
//! ```

use super::num::{Num, Saturations};

/// The output length of a convolution or pooling window: `(l + 2p − k)/s + 1`, or 0 when the
/// window does not fit.
pub const fn conv_out_len(l: usize, k: usize, s: usize, p: usize) -> usize {
    if s == 0 || l + 2 * p < k {
        0
    } else {
        (l + 2 * p - k) / s + 1
    }
}

/// Input position of output `t`, tap `k` (`None` in the padding).
#[inline(always)]
fn tap<const L: usize>(t: usize, k: usize, s: usize, p: usize) -> Option<usize> {
    (t * s + k).checked_sub(p).filter(|&i| i < L)
}

/// `acc + Σ_k w[k]·x[tS+k−P]`: one channel's taps of output `t` (the forward's inner sum).
#[inline(always)]
fn taps_forward<T: Num, const L: usize>(
    acc: T::Acc,
    w: &[T],
    x: &[T; L],
    t: usize,
    s: usize,
    p: usize,
) -> T::Acc {
    let mut acc = acc;
    for (k, &w) in w.iter().enumerate() {
        if let Some(i) = tap::<L>(t, k, s, p) {
            acc = T::mac(acc, w, x[i]);
        }
    }
    acc
}

/// `acc + Σ_k w[k]·dy[t]` over the (t, k) with `tS + k − P = i`: one channel's share of the
/// input gradient at `i` (t = (i + P − k)/S where that divides).
#[inline(always)]
fn taps_backward<T: Num, const LOUT: usize>(
    acc: T::Acc,
    w: &[T],
    dy: &[T; LOUT],
    i: usize,
    s: usize,
    p: usize,
) -> T::Acc {
    let mut acc = acc;
    for (k, &w) in w.iter().enumerate() {
        let Some(j) = (i + p).checked_sub(k) else {
            continue;
        };
        if j % s == 0 && j / s < LOUT {
            acc = T::mac(acc, w, dy[j / s]);
        }
    }
    acc
}

/// `dw[k] = Σ_t dy[t]·x[tS+k−P]`: one channel's weight gradient.
#[inline(always)]
pub(crate) fn taps_weight_grad<T: Num, const L: usize, const LOUT: usize>(
    x: &[T; L],
    dy: &[T; LOUT],
    dw: &mut [T],
    s: usize,
    p: usize,
    sat: &mut Saturations,
) {
    for (k, dw) in dw.iter_mut().enumerate() {
        let mut acc = T::ACC_ZERO;
        for (t, &d) in dy.iter().enumerate() {
            if let Some(i) = tap::<L>(t, k, s, p) {
                acc = T::mac(acc, d, x[i]);
            }
        }
        *dw = T::finish(acc, T::ZERO, sat);
    }
}

/// A 1-D convolution with `CIN` input and `COUT` output channels, kernel `K`, stride `S` and
/// zero padding `P`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv1d<
    T,
    const CIN: usize,
    const COUT: usize,
    const K: usize,
    const S: usize,
    const P: usize,
> {
    /// Weights `w[o][c][k]`.
    pub w: [[[T; K]; CIN]; COUT],
    /// Biases.
    pub b: [T; COUT],
}

/// A pointwise (1×1) convolution: [`Conv1d`] with K = 1, S = 1, P = 0.
pub type Pointwise<T, const CIN: usize, const COUT: usize> = Conv1d<T, CIN, COUT, 1, 1, 0>;

impl<
        T: Num,
        const CIN: usize,
        const COUT: usize,
        const K: usize,
        const S: usize,
        const P: usize,
    > Conv1d<T, CIN, COUT, K, S, P>
{
    /// All weights and biases 0.
    pub const fn zeroed() -> Self {
        Conv1d {
            w: [[[T::ZERO; K]; CIN]; COUT],
            b: [T::ZERO; COUT],
        }
    }

    /// The forward pass; `LOUT` must be [`conv_out_len`]`(L, K, S, P)` (checked at compile time).
    pub fn forward<const L: usize, const LOUT: usize>(
        &self,
        x: &[[T; L]; CIN],
        y: &mut [[T; LOUT]; COUT],
        sat: &mut Saturations,
    ) {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, P) && LOUT > 0) };
        for ((y, w), &b) in y.iter_mut().zip(&self.w).zip(&self.b) {
            for (t, y) in y.iter_mut().enumerate() {
                let mut acc = T::ACC_ZERO;
                for (x, w) in x.iter().zip(w) {
                    acc = taps_forward(acc, w, x, t, S, P);
                }
                *y = T::finish(acc, b, sat);
            }
        }
    }

    /// The input gradient `dx[c][i] = Σ_o Σ_k w[o][c][k]·dy[o][t]` over the (t, k) with
    /// `tS + k − P = i` (taken before the weights move).
    pub fn backward_input<const L: usize, const LOUT: usize>(
        &self,
        dy: &[[T; LOUT]; COUT],
        dx: &mut [[T; L]; CIN],
        sat: &mut Saturations,
    ) {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, P) && LOUT > 0) };
        for (c, dx) in dx.iter_mut().enumerate() {
            for (i, dx) in dx.iter_mut().enumerate() {
                let mut acc = T::ACC_ZERO;
                for (w, dy) in self.w.iter().zip(dy) {
                    acc = taps_backward(acc, &w[c], dy, i, S, P);
                }
                *dx = T::finish(acc, T::ZERO, sat);
            }
        }
    }

    /// The parameter gradients: `dw[o][c][k] = Σ_t dy[o][t]·x[c][tS+k−P]`, `db[o] = Σ_t dy[o][t]`.
    pub fn param_grads<const L: usize, const LOUT: usize>(
        x: &[[T; L]; CIN],
        dy: &[[T; LOUT]; COUT],
        dw: &mut [[[T; K]; CIN]; COUT],
        db: &mut [T; COUT],
        sat: &mut Saturations,
    ) {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, P) && LOUT > 0) };
        for ((dw, db), dy) in dw.iter_mut().zip(db.iter_mut()).zip(dy) {
            for (dw, x) in dw.iter_mut().zip(x) {
                taps_weight_grad(x, dy, dw, S, P, sat);
            }
            *db = sum(dy, sat);
        }
    }
}

/// `Σ xᵢ` in order (each term through the accumulator, rounded once).
fn sum<T: Num>(xs: &[T], sat: &mut Saturations) -> T {
    let mut acc = T::ACC_ZERO;
    for &x in xs {
        acc = T::mac(acc, x, T::ONE);
    }
    T::finish(acc, T::ZERO, sat)
}

/// A depthwise 1-D convolution: channel `c` of the output sees channel `c` of the input only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Depthwise1d<T, const C: usize, const K: usize, const S: usize, const P: usize> {
    /// Weights `w[c][k]`.
    pub w: [[T; K]; C],
    /// Biases.
    pub b: [T; C],
}

impl<T: Num, const C: usize, const K: usize, const S: usize, const P: usize>
    Depthwise1d<T, C, K, S, P>
{
    /// All weights and biases 0.
    pub const fn zeroed() -> Self {
        Depthwise1d {
            w: [[T::ZERO; K]; C],
            b: [T::ZERO; C],
        }
    }

    /// The forward pass; `LOUT` must be [`conv_out_len`]`(L, K, S, P)` (checked at compile time).
    pub fn forward<const L: usize, const LOUT: usize>(
        &self,
        x: &[[T; L]; C],
        y: &mut [[T; LOUT]; C],
        sat: &mut Saturations,
    ) {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, P) && LOUT > 0) };
        for (((y, x), w), &b) in y.iter_mut().zip(x).zip(&self.w).zip(&self.b) {
            for (t, y) in y.iter_mut().enumerate() {
                *y = T::finish(taps_forward(T::ACC_ZERO, w, x, t, S, P), b, sat);
            }
        }
    }

    /// The input gradient `dx[c][i] = Σ_k w[c][k]·dy[c][t]` over `tS + k − P = i`.
    pub fn backward_input<const L: usize, const LOUT: usize>(
        &self,
        dy: &[[T; LOUT]; C],
        dx: &mut [[T; L]; C],
        sat: &mut Saturations,
    ) {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, P) && LOUT > 0) };
        for ((dx, dy), w) in dx.iter_mut().zip(dy).zip(&self.w) {
            for (i, dx) in dx.iter_mut().enumerate() {
                *dx = T::finish(taps_backward(T::ACC_ZERO, w, dy, i, S, P), T::ZERO, sat);
            }
        }
    }

    /// The parameter gradients: `dw[c][k] = Σ_t dy[c][t]·x[c][tS+k−P]`, `db[c] = Σ_t dy[c][t]`.
    pub fn param_grads<const L: usize, const LOUT: usize>(
        x: &[[T; L]; C],
        dy: &[[T; LOUT]; C],
        dw: &mut [[T; K]; C],
        db: &mut [T; C],
        sat: &mut Saturations,
    ) {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, P) && LOUT > 0) };
        for (((dw, db), dy), x) in dw.iter_mut().zip(db.iter_mut()).zip(dy).zip(x) {
            taps_weight_grad(x, dy, dw, S, P, sat);
            *db = sum(dy, sat);
        }
    }
}

/// ReLU6 in place: `x ← min(max(x, 0), 6)` (MobileNet's activation).
pub fn relu6<T: Num>(x: &mut [T]) {
    let six = T::from_f32(6.0);
    for x in x.iter_mut() {
        if *x <= T::ZERO {
            *x = T::ZERO;
        } else if *x >= six {
            *x = six;
        }
    }
}

/// ReLU6's backward pass: `dx` kept where the output `y` lies strictly inside (0, 6), else 0.
pub fn relu6_backward<T: Num>(y: &[T], dx: &mut [T]) {
    let six = T::from_f32(6.0);
    for (d, &y) in dx.iter_mut().zip(y) {
        if y <= T::ZERO || y >= six {
            *d = T::ZERO;
        }
    }
}

/// Average pooling over windows of `K` with stride `S` (no padding); `LOUT` must be
/// [`conv_out_len`]`(L, K, S, 0)` (checked at compile time).
pub fn avg_pool<
    T: Num,
    const C: usize,
    const L: usize,
    const LOUT: usize,
    const K: usize,
    const S: usize,
>(
    x: &[[T; L]; C],
    y: &mut [[T; LOUT]; C],
    sat: &mut Saturations,
) {
    const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, 0) && LOUT > 0) };
    let inv = T::from_f32(1.0 / K as f32);
    for (y, x) in y.iter_mut().zip(x) {
        for (t, y) in y.iter_mut().enumerate() {
            *y = sum(&x[t * S..t * S + K], sat).times(inv);
        }
    }
}

/// [`avg_pool`]'s backward pass: `dx[c][tS+k] = Σ (1/K)·dy[c][t]` over the windows that hold it.
pub fn avg_pool_backward<
    T: Num,
    const C: usize,
    const L: usize,
    const LOUT: usize,
    const K: usize,
    const S: usize,
>(
    dy: &[[T; LOUT]; C],
    dx: &mut [[T; L]; C],
    sat: &mut Saturations,
) {
    const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, 0) && LOUT > 0) };
    let inv = T::from_f32(1.0 / K as f32);
    for (dx, dy) in dx.iter_mut().zip(dy) {
        for (i, dx) in dx.iter_mut().enumerate() {
            let mut acc = T::ACC_ZERO;
            for k in 0..K {
                let Some(j) = i.checked_sub(k) else {
                    break;
                };
                if j % S == 0 && j / S < LOUT {
                    acc = T::mac(acc, dy[j / S], inv);
                }
            }
            *dx = T::finish(acc, T::ZERO, sat);
        }
    }
}

/// Global average pooling: `y[c] = (1/L)·Σ_t x[c][t]`.
pub fn global_avg_pool<T: Num, const C: usize, const L: usize>(
    x: &[[T; L]; C],
    y: &mut [T; C],
    sat: &mut Saturations,
) {
    let inv = T::from_f32(1.0 / L as f32);
    for (y, x) in y.iter_mut().zip(x) {
        *y = sum(x, sat).times(inv);
    }
}

/// [`global_avg_pool`]'s backward pass: `dx[c][t] = dy[c]/L`.
pub fn global_avg_pool_backward<T: Num, const C: usize, const L: usize>(
    dy: &[T; C],
    dx: &mut [[T; L]; C],
) {
    let inv = T::from_f32(1.0 / L as f32);
    for (dx, &d) in dx.iter_mut().zip(dy) {
        let g = d.times(inv);
        dx.fill(g);
    }
}

/// Flattens channel-major activations into `N = C·L` values (checked at compile time).
pub fn flatten<T: Num, const C: usize, const L: usize, const N: usize>(
    x: &[[T; L]; C],
    out: &mut [T; N],
) {
    const { assert!(N == C * L) };
    out.copy_from_slice(x.as_flattened());
}
