//! RoPE (Su et al., RoFormer; kexue 8265): rotate each pair of a head vector by pos·θᵢ.
//!
//! | config field | symbol | default |
//! |---|---|---|
//! | `head_dim` | d | required |
//! | `rotary_dim` | r (first r dims rotate, the rest pass through) | d |
//! | `base` (`rope_theta`) | b, θᵢ = b^(−2i/r) | 10,000 |
//! | `layout` | which dims pair up | [`Layout::HalfSplit`] (Hugging Face checkpoints) |
//! | `scaling` | length extension | [`Scaling::Default`] |
//! | `prefetch` | cache hint distance of [`Rope::apply_heads`], floats (speed only; 0 = off) | [`PREFETCH`] |
//!
//! For pair i with dims (a, b): `x′ₐ = xₐ·cos(pθᵢ)·A − x_b·sin(pθᵢ)·A`,
//! `x′_b = x_b·cos(pθᵢ)·A + xₐ·sin(pθᵢ)·A`, A the attention factor (1 unless YaRN/LongRoPE).
//! Then ⟨R_m q, R_n k⟩ depends only on n − m, and ‖R_m x‖ = A·‖x‖.
//!
//! **Backward.** [`Direction::Backward`] applies the transpose A·R₋ₘ (sin negated): the
//! gradient of the forward rotation, and its exact inverse when A = 1.
//!
//! **Accuracy.** Angles are reduced exactly in integer turns (see `angle.rs`), so the error
//! does not grow with the position: `|cos, sin error| ≤ 1.3e-7` at every i32 position, against
//! ≈3.6e-3 rad at position 131,071 for the f32 `pos·θ` of Hugging Face and ggml.
//!
//! **State.** One `u64` angle step per pair (plus the f64 frequencies for inspection); no
//! tables unless you build a [`super::RopeTable`].
//!
//! ```
//! use margay::rope::{Direction, Layout, RopeConfig};
//! let rope = RopeConfig::new(8).layout(Layout::Interleaved).build::<4>().unwrap();
//! let mut q = [1.0_f32, 0.0, 0.5, 0.5, 0.0, 2.0, 1.0, -1.0];
//! let orig = q;
//! rope.apply(&mut q, 131_071, Direction::Forward).unwrap();
//! rope.apply(&mut q, 131_071, Direction::Backward).unwrap();
//! for (a, b) in q.iter().zip(&orig) { assert!((a - b).abs() < 1e-6); }
//! ```

use super::angle::{sin_cos_turns, step_of, turns_at_split};
use super::kernel::{rotate, rotate_on_the_fly};
use super::{check_len, frequencies, whole_rows, Frequencies, RopeError, Scaling};

/// Which dims form the rotated pairs. Both give identical q·k when q and k use the same
/// layout; they differ by a fixed permutation of the head dims, fixed by the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Layout {
    /// Pairs (2i, 2i+1): GPT-J, RoFormer, Meta's LLaMA, ggml NORMAL, flash-attn
    /// `interleaved=True`, rotary-embedding-torch (whose `rotate_half` is interleaved).
    Interleaved,
    /// Pairs (i, i + r/2): GPT-NeoX, Hugging Face `rotate_half`, ggml NEOX, candle `rope`.
    HalfSplit,
}

/// Forward rotation, or its transpose for backward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    /// x ← A·R_pos x.
    Forward,
    /// x ← A·R_posᵀ x = A·R₋pos x: the vector–Jacobian product of `Forward` (its inverse
    /// when the attention factor A is 1).
    Backward,
}

/// Where the rows sit: consecutive positions from a start (KV-cache offset), or a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions<'a> {
    /// Row k is at position `start + k`.
    From(i32),
    /// Row k is at `list[k]` (non-contiguous, packed or negative positions).
    List(&'a [i32]),
}

impl Positions<'_> {
    /// Position of row `k` (the caller checked bounds and overflow).
    #[inline(always)]
    pub(super) fn at(&self, k: usize) -> i32 {
        match *self {
            Positions::From(start) => start.wrapping_add(k as i32),
            Positions::List(list) => list[k],
        }
    }

    /// Checks that `rows` positions exist (list length, no i32 overflow).
    pub(super) fn check(&self, rows: usize) -> Result<(), RopeError> {
        match *self {
            Positions::From(start) => {
                let last = rows.saturating_sub(1);
                if i32::try_from(last)
                    .ok()
                    .and_then(|l| start.checked_add(l))
                    .is_none()
                {
                    return Err(RopeError::PositionOverflow);
                }
            }
            Positions::List(list) if list.len() != rows => {
                return Err(RopeError::LengthMismatch {
                    expected: rows,
                    got: list.len(),
                })
            }
            Positions::List(_) => {}
        }
        Ok(())
    }
}

/// RoPE hyper-parameters; [`RopeConfig::build`] validates them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeConfig<'a> {
    /// d: the length of one head vector.
    pub head_dim: usize,
    /// r ≤ d, even: only the first r dims rotate (frequencies use r).
    pub rotary_dim: usize,
    /// b > 1 (`rope_theta`).
    pub base: f64,
    /// Pairing of dims.
    pub layout: Layout,
    /// Length-extension scaling.
    pub scaling: Scaling<'a>,
    /// How far ahead of each head's current row [`Rope::apply_heads`] asks for the cache
    /// lines it will rotate next, in floats; 0 turns the hint off. A speed knob only (the
    /// results do not depend on it), used on x86_64 (`prefetcht1`), ignored elsewhere.
    /// Default [`PREFETCH`].
    pub prefetch: usize,
}

impl<'a> RopeConfig<'a> {
    /// Full rotation (r = d), base 10,000, half-split, no scaling.
    pub const fn new(head_dim: usize) -> Self {
        RopeConfig {
            head_dim,
            rotary_dim: head_dim,
            base: 10_000.0,
            layout: Layout::HalfSplit,
            scaling: Scaling::Default,
            prefetch: PREFETCH,
        }
    }

    /// Sets `rotary_dim` (partial rotation).
    pub const fn rotary_dim(mut self, rotary_dim: usize) -> Self {
        self.rotary_dim = rotary_dim;
        self
    }

    /// Sets `base`.
    pub const fn base(mut self, base: f64) -> Self {
        self.base = base;
        self
    }

    /// Sets `layout`.
    pub const fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Sets `scaling`.
    pub const fn scaling(mut self, scaling: Scaling<'a>) -> Self {
        self.scaling = scaling;
        self
    }

    /// Sets `prefetch` (floats ahead; 0 = off).
    pub const fn prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// Validates and precomputes one angle step per pair; `CAP` ≥ r/2 is the pair capacity.
    ///
    /// Errors: odd or zero `rotary_dim`, `rotary_dim > head_dim`, r/2 > `CAP`, `base` ≤ 1 or
    /// not finite, a scaling parameter out of range.
    pub fn build<const CAP: usize>(&self) -> Result<Rope<CAP>, RopeError> {
        if self.rotary_dim == 0 || !self.rotary_dim.is_multiple_of(2) {
            return Err(RopeError::OddRotaryDim {
                rotary_dim: self.rotary_dim,
            });
        }
        if self.rotary_dim > self.head_dim {
            return Err(RopeError::RotaryDimTooLarge {
                rotary_dim: self.rotary_dim,
                head_dim: self.head_dim,
            });
        }
        let freqs = frequencies::<CAP>(self.rotary_dim, self.base, &self.scaling)?;
        let mut step_hi = [0_u32; CAP];
        let mut step_lo = [0_u32; CAP];
        for ((h, l), &f) in step_hi
            .iter_mut()
            .zip(step_lo.iter_mut())
            .zip(freqs.inv_freq.iter())
        {
            let step = step_of(f);
            (*h, *l) = ((step >> 32) as u32, step as u32);
        }
        Ok(Rope {
            head_dim: self.head_dim,
            pairs: self.rotary_dim / 2,
            layout: self.layout,
            scale: freqs.attention_factor as f32,
            prefetch: self.prefetch,
            step_hi,
            step_lo,
            freqs,
        })
    }
}

/// A validated RoPE with room for `CAP` frequency pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope<const CAP: usize> {
    head_dim: usize,
    pairs: usize,
    layout: Layout,
    /// The attention factor in f32 (multiplies cos and sin).
    scale: f32,
    /// [`RopeConfig::prefetch`].
    prefetch: usize,
    /// Angle per position of each pair, in 2⁻⁶⁴ turns: high and low 32 bits.
    step_hi: [u32; CAP],
    step_lo: [u32; CAP],
    freqs: Frequencies<CAP>,
}

impl<const CAP: usize> Rope<CAP> {
    /// d.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// r (rotated dims).
    pub fn rotary_dim(&self) -> usize {
        2 * self.pairs
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The f64 frequencies and attention factor this RoPE was built from.
    pub fn frequencies(&self) -> &Frequencies<CAP> {
        &self.freqs
    }

    /// The attention factor A as applied (f32).
    pub fn attention_factor(&self) -> f32 {
        self.scale
    }

    /// The angle steps (high, low halves) of the r/2 pairs.
    #[inline(always)]
    pub(super) fn steps(&self) -> (&[u32], &[u32]) {
        (&self.step_hi[..self.pairs], &self.step_lo[..self.pairs])
    }

    /// Writes `A·cos(pos·θᵢ)` and `A·sin(pos·θᵢ)` for the r/2 pairs (a table row, e.g. for
    /// a GPU cache or [`super::RopeTable`]). Error if either slice is not r/2 long.
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn cos_sin(&self, pos: i32, cos: &mut [f32], sin: &mut [f32]) -> Result<(), RopeError> {
        for len in [cos.len(), sin.len()] {
            if len != self.pairs {
                return Err(RopeError::LengthMismatch {
                    expected: self.pairs,
                    got: len,
                });
            }
        }
        self.cos_sin_unchecked(pos, cos, sin);
        Ok(())
    }

    #[inline(always)]
    pub(super) fn cos_sin_unchecked(&self, pos: i32, cos: &mut [f32], sin: &mut [f32]) {
        let scale = self.scale;
        let (hi, lo) = self.steps();
        for ((c, s), (&h, &l)) in cos.iter_mut().zip(sin.iter_mut()).zip(hi.iter().zip(lo)) {
            let (sv, cv) = sin_cos_turns(turns_at_split(pos, h, l));
            *c = cv * scale;
            *s = sv * scale;
        }
    }

    /// Rotates one head vector (`x.len() == head_dim`) at `pos`, computing cos/sin on the fly.
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn apply(&self, x: &mut [f32], pos: i32, dir: Direction) -> Result<(), RopeError> {
        check_len(x.len(), self.head_dim)?;
        self.row(x, pos, dir);
        Ok(())
    }

    /// [`Rope::apply`] on a `[f32; D]` (the length is still checked against `head_dim`).
    pub fn apply_array<const D: usize>(
        &self,
        x: &mut [f32; D],
        pos: i32,
        dir: Direction,
    ) -> Result<(), RopeError> {
        self.apply(x, pos, dir)
    }

    #[inline(always)]
    fn row(&self, x: &mut [f32], pos: i32, dir: Direction) {
        let (hi, lo) = self.steps();
        match dir {
            Direction::Forward => {
                rotate_on_the_fly::<false>(self.layout, x, hi, lo, self.scale, pos)
            }
            Direction::Backward => {
                rotate_on_the_fly::<true>(self.layout, x, hi, lo, self.scale, pos)
            }
        }
    }

    /// Rotates rows of `head_dim` (shape `[rows, d]`), row k at `positions.at(k)`, each
    /// row's cos/sin computed on the fly.
    /// Errors (nothing written): `x.len()` not a multiple of d, a list of the wrong length,
    /// positions past `i32::MAX`.
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn apply_rows(
        &self,
        x: &mut [f32],
        positions: Positions<'_>,
        dir: Direction,
    ) -> Result<(), RopeError> {
        self.batched(x, 1, positions, dir, Shape::Rows, None)
    }

    /// Rotates a `[heads, seq, d]` tensor (batch folded into `heads`; Hugging Face's
    /// `(B, H, T, D)`), every head with the same positions. cos/sin are computed once per
    /// position, for a block of positions that fills [`SCRATCH`] floats each, and reused by
    /// every head; heads go four at a time, so each cos/sin row is read once from L1 for
    /// four rows, and each head streams one contiguous block of rows. The first four heads
    /// compute each cos/sin row as they reach it, so that arithmetic overlaps their memory
    /// traffic instead of leaving the memory idle while a whole block is computed.
    ///
    /// Stack: `2·SCRATCH` floats (64 KiB on 64-bit targets, 2 KiB on 32-bit MCUs).
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn apply_heads(
        &self,
        x: &mut [f32],
        heads: usize,
        positions: Positions<'_>,
        dir: Direction,
    ) -> Result<(), RopeError> {
        self.batched(x, heads, positions, dir, Shape::HeadsMajor, None)
    }

    /// [`Rope::apply_heads`] with the cos/sin blocks in `scratch` (the caller's memory, e.g. a
    /// `Vec` reused across calls) instead of the stack: `scratch.len() / (2·pairs)` positions
    /// per block. A longer block lets each head stream a longer run of rows between switches;
    /// on the bench machine 512 positions (256 KiB for pairs = 64, see
    /// [`Rope::heads_scratch_len`]) ran half-split closer to the memory limit than the
    /// stack's 128, and interleaved about as close (README, "Speed, host"). Same results as
    /// `apply_heads`, bit for bit.
    ///
    /// Errors (nothing written): those of `apply_heads`, and a scratch shorter than one
    /// position (`2·pairs` floats).
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn apply_heads_in(
        &self,
        x: &mut [f32],
        heads: usize,
        positions: Positions<'_>,
        dir: Direction,
        scratch: &mut [f32],
    ) -> Result<(), RopeError> {
        let one = self.heads_scratch_len(1);
        if scratch.len() < one {
            return Err(RopeError::LengthMismatch {
                expected: one,
                got: scratch.len(),
            });
        }
        self.batched(x, heads, positions, dir, Shape::HeadsMajor, Some(scratch))
    }

    /// Floats of scratch for [`Rope::apply_heads_in`] to hold blocks of `positions`.
    pub const fn heads_scratch_len(&self, positions: usize) -> usize {
        2 * self.pairs * positions
    }

    /// Rotates a `[seq, heads, d]` tensor (flash-attn / candle `thd`): cos/sin computed once
    /// per token and reused by its heads (stack: `2·CAP` floats).
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn apply_tokens(
        &self,
        x: &mut [f32],
        heads: usize,
        positions: Positions<'_>,
        dir: Direction,
    ) -> Result<(), RopeError> {
        self.batched(x, heads, positions, dir, Shape::TokensMajor, None)
    }

    /// Checks `x` (whole positions of `heads` rows) and the positions, then runs `shape`
    /// through the AVX2 / AVX-512 dispatch. Nothing is written on error.
    fn batched(
        &self,
        x: &mut [f32],
        heads: usize,
        positions: Positions<'_>,
        dir: Direction,
        shape: Shape,
        scratch: Option<&mut [f32]>,
    ) -> Result<(), RopeError> {
        let seq = whole_rows(x.len(), heads * self.head_dim)?;
        positions.check(seq)?;
        crate::simd::vectorized(Job {
            rope: self,
            x,
            heads,
            positions,
            dir,
            shape,
            scratch,
        });
        Ok(())
    }

    /// `[heads, seq, d]` in blocks of positions (lengths checked by the caller).
    #[inline(always)]
    fn heads_major<const BACK: bool>(
        &self,
        x: &mut [f32],
        heads: usize,
        positions: Positions<'_>,
        scratch: Option<&mut [f32]>,
    ) {
        match scratch {
            Some(s) => {
                let half = s.len() / 2;
                let (cos, sin) = s.split_at_mut(half);
                self.heads_major_in::<BACK>(x, heads, positions, cos, &mut sin[..half]);
            }
            None => {
                let mut cos = [0.0_f32; SCRATCH];
                let mut sin = [0.0_f32; SCRATCH];
                self.heads_major_in::<BACK>(x, heads, positions, &mut cos, &mut sin);
            }
        }
    }

    /// [`Rope::heads_major`] with cos and sin blocks of `cos.len() / pairs` positions (≥ 1).
    #[inline(always)]
    fn heads_major_in<const BACK: bool>(
        &self,
        x: &mut [f32],
        heads: usize,
        positions: Positions<'_>,
        cos: &mut [f32],
        sin: &mut [f32],
    ) {
        let d = self.head_dim;
        let pairs = self.pairs;
        let seq = x.len() / (heads * d);
        if seq == 0 {
            return;
        }
        if cos.len() < pairs {
            // Not one position fits (more pairs than the MCU stack scratch): every row
            // computes its own cos/sin, the same values.
            for head in x.chunks_exact_mut(seq * d) {
                self.rows::<BACK>(head, positions);
            }
            return;
        }
        let block = cos.len() / pairs;
        let mut t0 = 0;
        while t0 < seq {
            let n = block.min(seq - t0);
            // Heads in groups of GROUP: each cos/sin row, once in L1, serves GROUP rows. The
            // first group computes each row just before using it, so that work overlaps the
            // group's memory traffic instead of stalling the stream.
            for (gi, group) in x.chunks_mut(GROUP * seq * d).enumerate() {
                let g = group.len() / (seq * d);
                for k in 0..n {
                    let (c, s) = (
                        &mut cos[k * pairs..(k + 1) * pairs],
                        &mut sin[k * pairs..(k + 1) * pairs],
                    );
                    if gi == 0 {
                        self.cos_sin_unchecked(positions.at(t0 + k), c, s);
                    }
                    for h in 0..g {
                        let at = (h * seq + t0 + k) * d;
                        if self.prefetch > 0 {
                            let ahead = at.saturating_add(self.prefetch);
                            if let Some(next) = group.get(ahead..ahead.saturating_add(d)) {
                                crate::simd::prefetch_l2(next);
                            }
                        }
                        rotate::<BACK>(self.layout, &mut group[at..at + d], c, s);
                    }
                }
            }
            t0 += n;
        }
    }

    /// `[seq, heads, d]`, one cos/sin row per token.
    #[inline(always)]
    fn tokens_major<const BACK: bool>(
        &self,
        x: &mut [f32],
        heads: usize,
        positions: Positions<'_>,
    ) {
        let mut cos = [0.0_f32; CAP];
        let mut sin = [0.0_f32; CAP];
        let (c, s) = (&mut cos[..self.pairs], &mut sin[..self.pairs]);
        for (t, token) in x.chunks_exact_mut(heads * self.head_dim).enumerate() {
            self.cos_sin_unchecked(positions.at(t), c, s);
            for row in token.chunks_exact_mut(self.head_dim) {
                rotate::<BACK>(self.layout, row, c, s);
            }
        }
    }

    /// `[rows, d]`, fused on-the-fly rotation per row.
    #[inline(always)]
    fn rows<const BACK: bool>(&self, x: &mut [f32], positions: Positions<'_>) {
        for (k, row) in x.chunks_exact_mut(self.head_dim).enumerate() {
            let (hi, lo) = self.steps();
            rotate_on_the_fly::<BACK>(self.layout, row, hi, lo, self.scale, positions.at(k));
        }
    }
}

/// Floats of cos (and of sin) that [`Rope::apply_heads`] computes per block of positions:
/// on hosts, 128 positions of a 128-dim head (64 pairs; each head then streams 64 KiB of
/// contiguous rows per block; `cargo bench --bench rope`), small on MCUs.
#[cfg(target_pointer_width = "64")]
pub const SCRATCH: usize = 8192;
/// Floats of cos (and of sin) that [`Rope::apply_heads`] computes per block of positions.
#[cfg(not(target_pointer_width = "64"))]
pub const SCRATCH: usize = 256;

/// Heads that [`Rope::apply_heads`] rotates together, sharing each cos/sin row.
const GROUP: usize = 4;

/// The default [`RopeConfig::prefetch`]: 768 floats (3 KiB, six rows of a 128-dim head).
/// On the bench machine the hardware prefetcher alone kept the four-head kernel's streams fed
/// only while the other tenants were quiet; with this hint it slowed down less when they were
/// busy (README, "Speed, host").
pub const PREFETCH: usize = 768;

#[derive(Clone, Copy)]
enum Shape {
    Rows,
    HeadsMajor,
    TokensMajor,
}

/// One batched call, run through the AVX2 / AVX-512 dispatch (see `simd.rs`).
struct Job<'a, 'p, const CAP: usize> {
    rope: &'a Rope<CAP>,
    x: &'a mut [f32],
    heads: usize,
    positions: Positions<'p>,
    dir: Direction,
    shape: Shape,
    /// The caller's cos/sin scratch ([`Rope::apply_heads_in`]), else the stack's.
    scratch: Option<&'a mut [f32]>,
}

impl<const CAP: usize> Job<'_, '_, CAP> {
    #[inline(always)]
    fn go<const BACK: bool>(self) {
        match self.shape {
            Shape::Rows => self.rope.rows::<BACK>(self.x, self.positions),
            Shape::HeadsMajor => {
                self.rope
                    .heads_major::<BACK>(self.x, self.heads, self.positions, self.scratch)
            }
            Shape::TokensMajor => {
                self.rope
                    .tokens_major::<BACK>(self.x, self.heads, self.positions)
            }
        }
    }
}

impl<const CAP: usize> crate::simd::Kernel for Job<'_, '_, CAP> {
    type Out = ();
    const AVX512: bool = true;
    #[inline(always)]
    fn run(self) {
        match self.dir {
            Direction::Forward => self.go::<false>(),
            Direction::Backward => self.go::<true>(),
        }
    }
}
