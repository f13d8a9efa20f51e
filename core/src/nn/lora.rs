//! A LoRA adapter: `W = W₀ + A·B` with `A: OUT×R`, `B: R×IN` (kexue 9590; reference
//! `optimizers.md` §10), computed as `y = W₀x + A(Bx)` so `W` is never formed.
//!
//! Gradients. With `G = ∂L/∂W = dy ⊗ x`:
//! `∂L/∂A = G·Bᵀ` and `∂L/∂B = Aᵀ·G`. Because `G` is an outer product these factor into
//! `∂L/∂A = dy ⊗ (Bx)` and `∂L/∂B = (Aᵀdy) ⊗ x`, which [`Lora::grads`] uses (no `OUT×IN`
//! buffer); [`Lora::project`] takes any full `G` and is tested to agree.

use super::dense::outer;
use super::num::{Num, Saturations};

/// The trainable factors of a LoRA adapter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lora<T, const IN: usize, const OUT: usize, const R: usize> {
    /// `A`, `OUT×R` (starts at 0 so the adapter starts as the identity update).
    pub a: [[T; R]; OUT],
    /// `B`, `R×IN`.
    pub b: [[T; IN]; R],
}

impl<T: Num, const IN: usize, const OUT: usize, const R: usize> Lora<T, IN, OUT, R> {
    /// `u = B·x` (kept for the backward pass).
    pub fn down(&self, x: &[T; IN], u: &mut [T; R], sat: &mut Saturations) {
        for (u, row) in u.iter_mut().zip(&self.b) {
            *u = T::finish(super::dense::dot(row, x), T::ZERO, sat);
        }
    }

    /// `y ← y + A·u`.
    pub fn up_add(&self, u: &[T; R], y: &mut [T; OUT], sat: &mut Saturations) {
        for (y, row) in y.iter_mut().zip(&self.a) {
            *y = T::finish(super::dense::dot(row, u), *y, sat);
        }
    }

    /// `du = Aᵀ·dy` (taken before `A` moves).
    pub fn back_down(&self, dy: &[T; OUT], du: &mut [T; R], sat: &mut Saturations) {
        for (j, du) in du.iter_mut().enumerate() {
            let mut acc = T::ACC_ZERO;
            for (row, &d) in self.a.iter().zip(dy) {
                acc = T::mac(acc, row[j], d);
            }
            *du = T::finish(acc, T::ZERO, sat);
        }
    }

    /// `∂L/∂A = dy ⊗ u` with `u = Bx` from [`Lora::down`].
    pub fn grad_a(dy: &[T; OUT], u: &[T; R], da: &mut [[T; R]; OUT]) {
        outer(dy, u, da)
    }

    /// `∂L/∂B = du ⊗ x` with `du = Aᵀdy` from [`Lora::back_down`].
    pub fn grad_b(du: &[T; R], x: &[T; IN], db: &mut [[T; IN]; R]) {
        outer(du, x, db)
    }

    /// Both gradients from `dy` and the input: [`Lora::grad_a`] and [`Lora::grad_b`].
    pub fn grads(
        &self,
        dy: &[T; OUT],
        x: &[T; IN],
        da: &mut [[T; R]; OUT],
        db: &mut [[T; IN]; R],
        sat: &mut Saturations,
    ) {
        let (mut u, mut du) = ([T::ZERO; R], [T::ZERO; R]);
        self.down(x, &mut u, sat);
        self.back_down(dy, &mut du, sat);
        Self::grad_a(dy, &u, da);
        Self::grad_b(&du, x, db);
    }

    /// The projection of a full weight gradient `G = ∂L/∂W` (`OUT×IN`) onto the factors:
    /// `∂L/∂A = G·Bᵀ`, `∂L/∂B = Aᵀ·G` (§10). For a per-sample `G = dy ⊗ x` this equals
    /// [`Lora::grads`] up to rounding.
    pub fn project(
        &self,
        g: &[[T; IN]; OUT],
        da: &mut [[T; R]; OUT],
        db: &mut [[T; IN]; R],
        sat: &mut Saturations,
    ) {
        for (da, grow) in da.iter_mut().zip(g) {
            for (d, brow) in da.iter_mut().zip(&self.b) {
                *d = T::finish(super::dense::dot(grow, brow), T::ZERO, sat);
            }
        }
        for (j, db) in db.iter_mut().enumerate() {
            for (i, d) in db.iter_mut().enumerate() {
                let mut acc = T::ACC_ZERO;
                for (arow, grow) in self.a.iter().zip(g) {
                    acc = T::mac(acc, arow[j], grow[i]);
                }
                *d = T::finish(acc, T::ZERO, sat);
            }
        }
    }

    /// The adapter's full update `A·B` (`OUT×IN`), e.g. to merge it into `W₀` after training.
    pub fn delta(&self, w: &mut [[T; IN]; OUT], sat: &mut Saturations) {
        for (wrow, arow) in w.iter_mut().zip(&self.a) {
            for (i, w) in wrow.iter_mut().enumerate() {
                let mut acc = T::ACC_ZERO;
                for (&a, brow) in arow.iter().zip(&self.b) {
                    acc = T::mac(acc, a, brow[i]);
                }
                *w = T::finish(acc, T::ZERO, sat);
            }
        }
    }
}
