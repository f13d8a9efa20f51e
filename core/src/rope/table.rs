//! Precomputed cos/sin tables in fixed-size buffers, for MCUs that rotate the same positions
//! many times (one table row costs r floats; computing it costs one sin/cos per pair).
//!
//! The rows are written by [`super::Rope::cos_sin`], the same function the on-the-fly path
//! evaluates pair by pair, so a table and on-the-fly rotation give **bit-identical** results.
//! A position outside `first .. first + T` is a [`RopeError::PositionOutOfTable`] (no
//! out-of-bounds read); rotate such rows on the fly or [`RopeTable::refill`] the table.
//!
//! ```
//! use margay::rope::{Direction, RopeConfig, RopeTable};
//! let rope = RopeConfig::new(8).build::<4>().unwrap();
//! let table = RopeTable::<16, 4>::new(&rope, 100).unwrap(); // positions 100..116
//! let mut a = [0.5_f32; 8];
//! let mut b = a;
//! table.apply(&mut a, 107, Direction::Forward).unwrap();
//! rope.apply(&mut b, 107, Direction::Forward).unwrap();
//! assert_eq!(a, b);
//! assert!(table.apply(&mut a, 116, Direction::Forward).is_err());
//! ```

use super::{check_len, whole_rows, Direction, Layout, Positions, Rope, RopeError};

/// cos/sin for `T` consecutive positions and up to `P` pairs (`2·T·P` floats).
#[derive(Debug, Clone, PartialEq)]
pub struct RopeTable<const T: usize, const P: usize> {
    first: i32,
    head_dim: usize,
    pairs: usize,
    layout: Layout,
    cos: [[f32; P]; T],
    sin: [[f32; P]; T],
}

impl<const T: usize, const P: usize> RopeTable<T, P> {
    /// An empty table (all zeros, usable in a `static`); fill it with [`RopeTable::refill`].
    pub const fn zeroed() -> Self {
        RopeTable {
            first: 0,
            head_dim: 0,
            pairs: 0,
            layout: Layout::HalfSplit,
            cos: [[0.0; P]; T],
            sin: [[0.0; P]; T],
        }
    }

    /// Tabulates positions `first .. first + T` of `rope`.
    pub fn new<const CAP: usize>(rope: &Rope<CAP>, first: i32) -> Result<Self, RopeError> {
        let mut t = Self::zeroed();
        t.refill(rope, first)?;
        Ok(t)
    }

    /// Re-tabulates in place (no stack copy of the table). Errors, with the table unchanged:
    /// more pairs than `P`, or `first + T − 1` past `i32::MAX`.
    pub fn refill<const CAP: usize>(
        &mut self,
        rope: &Rope<CAP>,
        first: i32,
    ) -> Result<(), RopeError> {
        let pairs = rope.rotary_dim() / 2;
        if pairs > P {
            return Err(RopeError::Capacity { pairs, capacity: P });
        }
        Positions::From(first).check(T)?;
        for (k, (c, s)) in self.cos.iter_mut().zip(self.sin.iter_mut()).enumerate() {
            rope.cos_sin_unchecked(
                first.wrapping_add(k as i32),
                &mut c[..pairs],
                &mut s[..pairs],
            );
        }
        self.first = first;
        self.head_dim = rope.head_dim();
        self.pairs = pairs;
        self.layout = rope.layout();
        Ok(())
    }

    /// The first tabulated position.
    pub fn first(&self) -> i32 {
        self.first
    }

    /// The row of `pos`, or the out-of-table error.
    fn row_of(&self, pos: i32) -> Result<usize, RopeError> {
        let k = (pos as i64) - (self.first as i64);
        if k < 0 || k >= T as i64 {
            return Err(RopeError::PositionOutOfTable {
                position: pos,
                first: self.first,
                rows: T,
            });
        }
        Ok(k as usize)
    }

    /// `(cos, sin)` rows of `pos` (r/2 values each, attention factor included).
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn cos_sin(&self, pos: i32) -> Result<(&[f32], &[f32]), RopeError> {
        let k = self.row_of(pos)?;
        Ok((&self.cos[k][..self.pairs], &self.sin[k][..self.pairs]))
    }

    /// Rotates one head vector at `pos` from the table.
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn apply(&self, x: &mut [f32], pos: i32, dir: Direction) -> Result<(), RopeError> {
        check_len(x.len(), self.head_dim)?;
        let k = self.row_of(pos)?;
        self.rotate(x, k, dir);
        Ok(())
    }

    /// Rotates rows `[rows, d]` at `positions`; every position is checked before any row is
    /// written.
    #[inline(never)] // one copy per CAP: keeps MCU flash small
    pub fn apply_rows(
        &self,
        x: &mut [f32],
        positions: Positions<'_>,
        dir: Direction,
    ) -> Result<(), RopeError> {
        let d = self.head_dim;
        let rows = whole_rows(x.len(), d)?;
        positions.check(rows)?;
        for k in 0..rows {
            self.row_of(positions.at(k))?;
        }
        for (k, row) in x.chunks_exact_mut(d).enumerate() {
            let r = (positions.at(k) as i64 - self.first as i64) as usize;
            self.rotate(row, r, dir);
        }
        Ok(())
    }

    #[inline(always)]
    fn rotate(&self, x: &mut [f32], k: usize, dir: Direction) {
        let (c, s) = (&self.cos[k][..self.pairs], &self.sin[k][..self.pairs]);
        match dir {
            Direction::Forward => super::kernel::rotate::<false>(self.layout, x, c, s),
            Direction::Backward => super::kernel::rotate::<true>(self.layout, x, c, s),
        }
    }
}
