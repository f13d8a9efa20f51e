//! Errors of the rotary encodings.

use core::fmt;

/// A RoPE config or call refused before anything was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RopeError {
    /// `rotary_dim` (or a 2D/3D section) is zero or odd: rotations act on pairs.
    OddRotaryDim {
        /// The dimension given.
        rotary_dim: usize,
    },
    /// More rotated dims than the head has (or sections that add up to more).
    RotaryDimTooLarge {
        /// Rotated dims asked for.
        rotary_dim: usize,
        /// Head dimension.
        head_dim: usize,
    },
    /// `rotary_dim / 2` pairs do not fit the capacity const generic.
    Capacity {
        /// Pairs needed.
        pairs: usize,
        /// The capacity (`CAP` or the table's `P`).
        capacity: usize,
    },
    /// `base` (`rope_theta`) must be finite and > 1.
    BadBase,
    /// A scaling hyper-parameter outside its documented range (named as Hugging Face names it).
    BadParam {
        /// The field's name.
        name: &'static str,
    },
    /// A slice length that does not match (`expected` elements, `got`).
    LengthMismatch {
        /// Elements needed.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// A position outside a precomputed table (`first .. first + rows`).
    PositionOutOfTable {
        /// The position asked for.
        position: i32,
        /// The table's first position.
        first: i32,
        /// Rows in the table.
        rows: usize,
    },
    /// `start + rows − 1` does not fit an `i32` position.
    PositionOverflow,
}

impl fmt::Display for RopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RopeError::OddRotaryDim { rotary_dim } => write!(
                f,
                "rotary_dim {rotary_dim} must be even and > 0 (RoPE rotates pairs of dims)"
            ),
            RopeError::RotaryDimTooLarge { rotary_dim, head_dim } => write!(
                f,
                "rotary_dim {rotary_dim} exceeds head_dim {head_dim}; use partial rotation with rotary_dim <= head_dim"
            ),
            RopeError::Capacity { pairs, capacity } => write!(
                f,
                "{pairs} frequency pairs do not fit a capacity of {capacity}; raise the const generic"
            ),
            RopeError::BadBase => write!(f, "RoPE base (rope_theta) must be finite and > 1"),
            RopeError::BadParam { name } => write!(
                f,
                "RoPE scaling parameter `{name}` is outside its documented range (see its field docs)"
            ),
            RopeError::LengthMismatch { expected, got } => write!(
                f,
                "length mismatch: expected {expected} elements, got {got}; nothing was written"
            ),
            RopeError::PositionOutOfTable { position, first, rows } => write!(
                f,
                "position {position} is outside the table ({rows} rows from {first}); rebuild the table or rotate on the fly"
            ),
            RopeError::PositionOverflow => {
                write!(f, "positions run past i32::MAX; nothing was written")
            }
        }
    }
}

/// `len == expected`, else [`RopeError::LengthMismatch`].
pub(super) fn check_len(len: usize, expected: usize) -> Result<(), RopeError> {
    if len == expected {
        Ok(())
    } else {
        Err(RopeError::LengthMismatch { expected, got: len })
    }
}

/// How many rows of `per` elements `len` holds, or [`RopeError::LengthMismatch`] (naming the
/// next whole multiple) when it is not a whole number of rows.
pub(super) fn whole_rows(len: usize, per: usize) -> Result<usize, RopeError> {
    if per == 0 || !len.is_multiple_of(per) {
        return Err(RopeError::LengthMismatch {
            expected: len.div_ceil(per.max(1)) * per,
            got: len,
        });
    }
    Ok(len / per)
}
