//! # margay: training math that runs on every chip
//!
//! `margay` is the `no_std`, allocation-free core of the margay project, with the same numbers
//! on an x86 desktop, a Cortex-M4F and a Cortex-M0:
//!
//! | module | what it holds |
//! |---|---|
//! | [`optim`] | optimizers (Lion, Tiger, AdamW, AdaX, Adafactor, SGDM, AdamW with hidden accumulation, exponentiated gradient, cautious masking, lazy rows, LoRA as an optimizer, Amos-derived rules), gradient transforms (global-norm clipping, EG step sizes, Flooding), schedules, parameter groups, and **one interface** for all of them ([`optim::Optimizer`], [`optim::Stage`], [`optim::Chain`]) |
//! | [`quant`] | FSQ, VQ with EMA codebooks, LFQ, int8 rows, and the number formats (bf16, f16, fixed point) behind [`quant::Scalar`] |
//! | [`rope`] | rotary position encodings: layouts, partial rotation, linear / NTK / dynamic NTK / YaRN / Llama 3 / LongRoPE scaling, 2D/3D axial, attention scales, tables |
//! | [`nn`] | tiny on-device layers generic over the number format, LoRA, softmax cross-entropy, the versioned model blob, and a trainer that fine-tunes with any optimizer |
//! | [`math`] | `sign`, fixed-order sums, fast tanh, SplitMix64, libm wrappers |
//! | [`simd`] | the runtime AVX2/AVX-512 dispatch (the only `unsafe`), the M4F assembly loops, [`simd::set_max_level`] |
//!
//! Every algorithm follows one shape (see `STYLE.md` in the repository):
//! **config → validated algorithm → state → step**. Configs have public fields and
//! documented defaults, `build()` rejects bad hyper-parameters with a
//! [`optim::ConfigError`], and steps work on `&mut [f32]` slices (a length mismatch is an
//! [`optim::StepError`] and nothing is modified) or on `[f32; N]` arrays (a mismatch does
//! not compile).
//!
//! Generic code takes any optimizer (or a chain of transforms in front of one) through
//! [`optim::Optimizer`]; see the [`optim`] module for the round protocol.
//!
//! ```
//! use margay::optim::{TigerConfig, Step};
//! let tiger = TigerConfig::new(1e-3).build().unwrap();
//! let mut params = [0.5_f32, -0.25, 0.0];
//! let mut m = [0.0_f32; 3];
//! let grads = [0.1_f32, -0.2, 0.0];
//! tiger.step_array(tiger.at(1), &mut params, &grads, &mut m);
//! assert_eq!(params[2], 0.0); // sign(0) = 0: a zero gradient does not move a zero weight
//! ```
//!
//! ## Features
//! - `defmt`: derive `defmt::Format` on the error types (firmware logging).
//!
//! The crate builds with no default features for `thumbv6m-none-eabi` and
//! `thumbv7em-none-eabihf`.
#![no_std]
// `unsafe` only in `simd` (runtime-dispatched AVX2 and AVX-512 calls; see that module for why).
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod math;
pub mod nn;
pub mod optim;
pub mod quant;
pub mod rope;
pub mod simd;
