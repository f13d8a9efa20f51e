//! 2D RoPE (kexue 8397) and its N-axis generalisation: each axis rotates its own block of
//! dims with 1D RoPE of that axis's coordinate.
//!
//! For an image patch at (x, y) the head vector splits into two halves: the first is rotated
//! by x, the second by y, each with its own RoPE (layout within the block, θᵢ =
//! base^(−2i/section)). Then R_{x₁,y₁}ᵀ R_{x₂,y₂} = R_{x₂−x₁, y₂−y₁}: attention sees both
//! relative offsets, and (x, y) stays recoverable, which flattening to x·h + y loses.
//! Video uses three sections (t, y, x). Dims after the last section pass through.
//!
//! Frequencies restart in every section (kexue's construction, ggml's `VISION` mode). Qwen's
//! M-RoPE instead deals the pairs of one half-split head out to the axes without restarting θ;
//! that variant is not provided here.
//!
//! ```
//! use margay::rope::{AxialConfig, Direction};
//! let rope = AxialConfig::two_d(16).build::<4>().unwrap(); // 8 dims for x, 8 for y
//! let mut patch = [0.25_f32; 16];
//! rope.apply(&mut patch, [3, 5], Direction::Forward).unwrap();
//! ```

use super::{check_len, Direction, Layout, Rope, RopeConfig, RopeError};

/// Axial RoPE hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxialConfig<const A: usize> {
    /// d.
    pub head_dim: usize,
    /// Dims per axis, in order, each even and > 0, summing to at most d.
    pub sections: [usize; A],
    /// b > 1 (shared by the axes).
    pub base: f64,
    /// Pairing within each section.
    pub layout: Layout,
}

impl AxialConfig<2> {
    /// 2D RoPE: x on the first half, y on the second, base 10,000, half-split sections.
    pub const fn two_d(head_dim: usize) -> Self {
        AxialConfig {
            head_dim,
            sections: [head_dim / 2, head_dim / 2],
            base: 10_000.0,
            layout: Layout::HalfSplit,
        }
    }
}

impl<const A: usize> AxialConfig<A> {
    /// Explicit sections (e.g. `[t, y, x]` dims for video), base 10,000, half-split.
    pub const fn new(head_dim: usize, sections: [usize; A]) -> Self {
        AxialConfig {
            head_dim,
            sections,
            base: 10_000.0,
            layout: Layout::HalfSplit,
        }
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

    /// Validates; `CAP` is the pair capacity of the largest section.
    pub fn build<const CAP: usize>(&self) -> Result<AxialRope<A, CAP>, RopeError> {
        let total: usize = self.sections.iter().sum();
        if total > self.head_dim {
            return Err(RopeError::RotaryDimTooLarge {
                rotary_dim: total,
                head_dim: self.head_dim,
            });
        }
        let built: [Result<Rope<CAP>, RopeError>; A] = core::array::from_fn(|a| {
            RopeConfig::new(self.sections[a])
                .base(self.base)
                .layout(self.layout)
                .build::<CAP>()
        });
        for r in &built {
            if let Err(e) = r {
                return Err(*e);
            }
        }
        let mut starts = [0; A];
        let mut at = 0;
        for (s, &len) in starts.iter_mut().zip(&self.sections) {
            *s = at;
            at += len;
        }
        Ok(AxialRope {
            head_dim: self.head_dim,
            starts,
            axes: built.map(|r| r.unwrap_or_else(|_| unreachable!("checked above"))),
        })
    }
}

/// A validated axial RoPE: one [`Rope`] per axis on its own block of dims.
#[derive(Debug, Clone, PartialEq)]
pub struct AxialRope<const A: usize, const CAP: usize> {
    head_dim: usize,
    starts: [usize; A],
    axes: [Rope<CAP>; A],
}

impl<const A: usize, const CAP: usize> AxialRope<A, CAP> {
    /// The RoPE of axis `a`.
    pub fn axis(&self, a: usize) -> Option<&Rope<CAP>> {
        self.axes.get(a)
    }

    /// Rotates one head vector at coordinates `pos` (one per axis).
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn apply(&self, x: &mut [f32], pos: [i32; A], dir: Direction) -> Result<(), RopeError> {
        check_len(x.len(), self.head_dim)?;
        for ((rope, &start), &p) in self.axes.iter().zip(&self.starts).zip(&pos) {
            let block = &mut x[start..start + rope.head_dim()];
            rope.apply(block, p, dir)?;
        }
        Ok(())
    }

    /// Rotates rows `[rows, d]`, row k at `pos[k]`.
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn apply_rows(
        &self,
        x: &mut [f32],
        pos: &[[i32; A]],
        dir: Direction,
    ) -> Result<(), RopeError> {
        check_len(x.len(), pos.len() * self.head_dim)?;
        for (row, &p) in x.chunks_exact_mut(self.head_dim.max(1)).zip(pos) {
            self.apply(row, p, dir)?;
        }
        Ok(())
    }
}
