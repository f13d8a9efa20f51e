//! The rotation itself: one reference loop per layout, over rows of cos and sin.
//!
//! Interleaved (pairs 2i, 2i+1) and half-split (pairs i, i + r/2):
//! `x′ₐ = xₐ·cᵢ − x_b·sᵢ`, `x′_b = x_b·cᵢ + xₐ·sᵢ`. The backward pass (the transpose, Rᵀ =
//! R₋ₘ) is the same loop with sᵢ negated, as ggml's `sin_sign = −1` and flash-attn's
//! `conjugate` are. The loops are plain slices (no indexing), so they vectorize.

use super::Layout;

/// Rotates the first `2·cos.len()` elements of `x` (the caller checked the lengths).
#[inline(always)]
pub(super) fn rotate<const BACK: bool>(layout: Layout, x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let pairs = cos.len();
    let x = &mut x[..2 * pairs];
    match layout {
        Layout::HalfSplit => {
            let (a, b) = x.split_at_mut(pairs);
            for (((a, b), &c), &s) in a.iter_mut().zip(b.iter_mut()).zip(cos).zip(sin) {
                let s = if BACK { -s } else { s };
                let (u, v) = (*a, *b);
                *a = u * c - v * s;
                *b = v * c + u * s;
            }
        }
        Layout::Interleaved => {
            for ((p, &c), &s) in x.chunks_exact_mut(2).zip(cos).zip(sin) {
                let s = if BACK { -s } else { s };
                let (u, v) = (p[0], p[1]);
                p[0] = u * c - v * s;
                p[1] = v * c + u * s;
            }
        }
    }
}

/// Rotates one row, computing each pair's (cos, sin) on the fly (no buffer): the same
/// values [`super::Rope::cos_sin`] writes, so table and on-the-fly results are bit-equal.
#[inline(always)]
pub(super) fn rotate_on_the_fly<const BACK: bool>(
    layout: Layout,
    x: &mut [f32],
    hi: &[u32],
    lo: &[u32],
    scale: f32,
    pos: i32,
) {
    let pairs = hi.len();
    let x = &mut x[..2 * pairs];
    let cs = |(&h, &l): (&u32, &u32)| {
        let (s, c) = super::angle::sin_cos_turns(super::angle::turns_at_split(pos, h, l));
        let s = s * scale;
        (c * scale, if BACK { -s } else { s })
    };
    match layout {
        Layout::HalfSplit => {
            let (a, b) = x.split_at_mut(pairs);
            for ((a, b), step) in a.iter_mut().zip(b.iter_mut()).zip(hi.iter().zip(lo)) {
                let (c, s) = cs(step);
                let (u, v) = (*a, *b);
                *a = u * c - v * s;
                *b = v * c + u * s;
            }
        }
        Layout::Interleaved => {
            for (p, step) in x.chunks_exact_mut(2).zip(hi.iter().zip(lo)) {
                let (c, s) = cs(step);
                let (u, v) = (p[0], p[1]);
                p[0] = u * c - v * s;
                p[1] = v * c + u * s;
            }
        }
    }
}
