//! Errors of the quantizers.

use core::fmt;

/// A quantizer config or call refused before anything was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QuantError {
    /// FSQ with no channels.
    EmptyLevels,
    /// A level count below 2 (no code to choose), or 2 in the standard FSQ variant, whose
    /// bound is degenerate there (`atanh(0.999)` shift): use [`super::FsqVariant::Symmetric`]
    /// (or LFQ) for binary channels.
    BadLevel {
        /// The channel.
        channel: usize,
        /// Its level count.
        level: u32,
    },
    /// A level count above what [`super::Tanh::Thresholds`] stores thresholds for.
    TooManyLevels {
        /// The channel.
        channel: usize,
        /// Its level count.
        level: u32,
        /// The most levels the mode takes ([`super::MAX_THRESHOLD_LEVELS`]).
        max: u32,
    },
    /// ∏ Lᵢ does not fit the `u32` index.
    CodebookTooLarge,
    /// `eps` of FSQ outside [0, 0.1].
    BadEps,
    /// A slice length that does not match (`expected` elements, `got`).
    LengthMismatch {
        /// Elements needed.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// An index at or beyond the codebook size.
    IndexOutOfRange {
        /// The index.
        index: u32,
        /// The codebook size.
        size: u32,
    },
    /// A VQ/LFQ with no codes or no channels.
    EmptyCodebook,
    /// A hyper-parameter outside its documented range.
    BadParam {
        /// The field's name.
        name: &'static str,
    },
    /// A NaN or ±Inf value at this flat position (int8 weights, VQ EMA and initialisation rows).
    NonFinite {
        /// Flat index of the first non-finite value.
        at: usize,
    },
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QuantError::EmptyLevels => write!(f, "FSQ needs at least one channel (levels is empty)"),
            QuantError::BadLevel { channel, level: 2 } => write!(
                f,
                "FSQ level 2 on channel {channel}: the standard bound is degenerate for L = 2; use FsqVariant::Symmetric"
            ),
            QuantError::BadLevel { channel, level } => {
                write!(f, "FSQ level {level} on channel {channel}: every level must be >= 2")
            }
            QuantError::TooManyLevels { channel, level, max } => write!(
                f,
                "FSQ level {level} on channel {channel}: Tanh::Thresholds takes at most {max} levels per channel; use Tanh::Fast or Tanh::Accurate"
            ),
            QuantError::CodebookTooLarge => {
                write!(f, "the product of the FSQ levels does not fit a u32 index")
            }
            QuantError::BadEps => write!(f, "FSQ eps must be in [0, 0.1]"),
            QuantError::LengthMismatch { expected, got } => write!(
                f,
                "length mismatch: expected {expected} elements, got {got}; nothing was written"
            ),
            QuantError::IndexOutOfRange { index, size } => {
                write!(f, "index {index} is outside the codebook of {size} codes")
            }
            QuantError::EmptyCodebook => {
                write!(f, "the codebook needs at least one code and one channel")
            }
            QuantError::BadParam { name } => write!(
                f,
                "quantizer hyper-parameter `{name}` is outside its documented range (see its field docs)"
            ),
            QuantError::NonFinite { at } => write!(
                f,
                "value {at} is NaN or infinite: it has no code; nothing was written"
            ),
        }
    }
}

impl core::error::Error for QuantError {}

/// `Err(NonFinite { at })` for the first NaN/±Inf value of `xs`, naming its flat position.
pub(crate) fn check_finite(xs: &[f32]) -> Result<(), QuantError> {
    match xs.iter().position(|x| !x.is_finite()) {
        Some(at) => Err(QuantError::NonFinite { at }),
        None => Ok(()),
    }
}
