//! Errors: bad hyper-parameters (when a config is built) and bad buffers (when stepping).

use core::fmt;

/// A hyper-parameter rejected by a config's `build()`.
///
/// Each variant names the config field and the value that was given, so the message says
/// what to fix.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// The field must be finite and strictly positive (learning rate, eps, max norm…).
    NotPositive {
        /// Config field name.
        field: &'static str,
        /// Value given.
        value: f32,
    },
    /// The field must be finite and non-negative (weight decay, flood level…).
    Negative {
        /// Config field name.
        field: &'static str,
        /// Value given.
        value: f32,
    },
    /// The field must lie in `[0, 1)` (β coefficients).
    OutsideUnitInterval {
        /// Config field name.
        field: &'static str,
        /// Value given.
        value: f32,
    },
    /// The field must lie in `(0, 1]` (shrink ratios, final factors).
    OutsideOpenClosedUnit {
        /// Config field name.
        field: &'static str,
        /// Value given.
        value: f32,
    },
    /// The field must be finite (centres).
    NotFinite {
        /// Config field name.
        field: &'static str,
        /// Value given.
        value: f32,
    },
    /// The count must be at least 1 (accumulation steps, row length, dimension).
    Zero {
        /// Config field name.
        field: &'static str,
    },
    /// Schedule breakpoints must have strictly increasing steps.
    NotIncreasing {
        /// Config field name.
        field: &'static str,
    },
    /// The field must lie in `[min, max]` (iteration counts).
    OutOfRange {
        /// Config field name.
        field: &'static str,
        /// Value given.
        value: f32,
        /// Least accepted value.
        min: f32,
        /// Largest accepted value.
        max: f32,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::NotPositive { field, value } => {
                write!(f, "`{field}` must be finite and > 0, got {value}")
            }
            ConfigError::Negative { field, value } => {
                write!(f, "`{field}` must be finite and >= 0, got {value}")
            }
            ConfigError::OutsideUnitInterval { field, value } => {
                write!(f, "`{field}` must be in [0, 1), got {value}")
            }
            ConfigError::OutsideOpenClosedUnit { field, value } => {
                write!(f, "`{field}` must be in (0, 1], got {value}")
            }
            ConfigError::NotFinite { field, value } => {
                write!(f, "`{field}` must be finite, got {value}")
            }
            ConfigError::Zero { field } => write!(f, "`{field}` must be at least 1, got 0"),
            ConfigError::NotIncreasing { field } => {
                write!(f, "`{field}` steps must be strictly increasing")
            }
            ConfigError::OutOfRange {
                field,
                value,
                min,
                max,
            } => write!(f, "`{field}` must be in {min}..={max}, got {value}"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// A step refused before anything was modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StepError {
    /// `params`, `grads` and the state buffers differ in length.
    LengthMismatch {
        /// Length of the parameter slice.
        params: usize,
        /// Length of the gradient slice.
        grads: usize,
        /// Length of the (first mismatching) state buffer.
        state: usize,
    },
    /// A per-row mode was given a tensor whose length is not a multiple of the row length.
    RowMismatch {
        /// Length of the parameter slice.
        len: usize,
        /// Configured row length.
        cols: usize,
    },
    /// A lazy row update named a row past the end of the table.
    RowOutOfRange {
        /// The row index given.
        row: usize,
        /// Rows in the table.
        rows: usize,
    },
    /// A parameter that must be non-negative (exponentiated gradient) is negative or NaN.
    NegativeParameter {
        /// Index of the first offending parameter.
        index: usize,
    },
    /// A state buffer handed to [`super::Optimizer::update`] does not have the length the
    /// optimizer (or chain) asks for this tensor ([`super::Stage::state_len`]).
    StateLength {
        /// The length the stages need for this tensor.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A stage (an optimizer, or one stage of a chain) cannot take this tensor's shape or
    /// kind, e.g. Adafactor and a matrix with a zero dimension.
    StageRefused {
        /// The stage's name (`"adafactor"`, `"tiger"`, `"clip"`…).
        stage: &'static str,
        /// Its position in the chain, 0 for the first (a lone optimizer is stage 0).
        index: u8,
        /// What it needs.
        reason: &'static str,
    },
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StepError::LengthMismatch {
                params,
                grads,
                state,
            } => write!(
                f,
                "length mismatch: params {params}, grads {grads}, state {state}; nothing was modified"
            ),
            StepError::RowMismatch { len, cols } => write!(
                f,
                "tensor of {len} elements is not a whole number of rows of {cols}; nothing was modified"
            ),
            StepError::RowOutOfRange { row, rows } => write!(
                f,
                "row {row} is past the end of a table of {rows} rows; nothing was modified"
            ),
            StepError::NegativeParameter { index } => write!(
                f,
                "parameter {index} is negative or NaN, but exponentiated gradient keeps parameters \
                 >= 0 (start them at >= 0); nothing was modified"
            ),
            StepError::StateLength { expected, got } => write!(
                f,
                "state buffer of {got} values where this tensor needs {expected} (size it with \
                 `state_len`); nothing was modified"
            ),
            StepError::StageRefused {
                stage,
                index,
                reason,
            } => write!(
                f,
                "stage {index} (`{stage}`) refuses this tensor: {reason}; nothing was modified"
            ),
        }
    }
}

impl core::error::Error for StepError {}

/// `Ok(v)` when `v` is finite and > 0.
pub(crate) fn positive(field: &'static str, value: f32) -> Result<f32, ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ConfigError::NotPositive { field, value })
    }
}

/// `Ok(v)` when `v` is finite and >= 0.
pub(crate) fn non_negative(field: &'static str, value: f32) -> Result<f32, ConfigError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(ConfigError::Negative { field, value })
    }
}

/// `Ok(v)` when `0 <= v < 1`.
pub(crate) fn unit_beta(field: &'static str, value: f32) -> Result<f32, ConfigError> {
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::OutsideUnitInterval { field, value })
    }
}

/// `Ok(v)` when `0 < v <= 1`.
pub(crate) fn open_closed_unit(field: &'static str, value: f32) -> Result<f32, ConfigError> {
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(ConfigError::OutsideOpenClosedUnit { field, value })
    }
}

/// `Ok(v)` when `v` is finite.
pub(crate) fn finite(field: &'static str, value: f32) -> Result<f32, ConfigError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ConfigError::NotFinite { field, value })
    }
}
