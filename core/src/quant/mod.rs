//! Quantizers: FSQ (finite scalar quantization), VQ with EMA codebooks, LFQ, and symmetric
//! per-row int8.
//!
//! | item | file | state |
//! |---|---|---|
//! | [`Fsq`] | `fsq.rs` | none: the codebook is implicit (∏ Lᵢ codes) |
//! | [`Vq`] | `vq.rs` | [`VqState`]: codebook + EMA statistics, `2·K·D + K` floats |
//! | [`Lfq`] | `lfq.rs` | none: the codebook is implicit (2ᴰ sign patterns) |
//! | [`quantize_rows`], [`dot_i8`], [`Requantize`] | `int8.rs` | one f32 scale per row |
//!
//! Same shape as the optimizers: config → validated quantizer → calls on arrays (lengths fixed
//! by const generics) or slices (a mismatch is a [`QuantError`] and nothing is written).

mod error;
mod fsq;
mod int8;
mod lfq;
mod scalar;
mod vq;

use error::check_finite;
pub use error::QuantError;
pub use fsq::{levels, Fsq, FsqConfig, FsqVariant, Tanh, MAX_THRESHOLD_LEVELS};
pub use int8::{dot_i8, dot_i8_array, quantize_rows, Requantize};
pub use lfq::{Lfq, LfqConfig, LfqEntropy, LFQ_LOG_CLAMP};
pub use scalar::{from_fixed, to_bf16, to_f16, to_fixed, Fixed32, Rounding, Scalar, I16F16, I8F24};
pub use vq::{kmeans_pp, EmaBatch, EmaStats, Reservoir, Vq, VqConfig, VqLoss, VqState};
