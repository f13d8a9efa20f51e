//! Rotary position encodings: RoPE in both memory layouts with partial rotation, positions
//! from an offset or a list, forward and backward; the frequency scalings of long-context
//! models; cos/sin tables; 2D/3D axial RoPE; attention scales.
//!
//! | item | file | state |
//! |---|---|---|
//! | [`frequencies`], [`Scaling`] | `freq.rs` (+ `ntk.rs`, `yarn.rs`, `llama3.rs`, `longrope.rs`) | none: a pure builder |
//! | [`Rope`] | `rotate.rs` (+ `kernel.rs`, `angle.rs`) | one `u64` angle step per pair |
//! | [`RopeTable`] | `table.rs` | `2·T·P` floats |
//! | [`AxialRope`] | `axial.rs` | one [`Rope`] per axis |
//! | [`standard_scale`], [`log_n_scale`], [`grad_max_scale`] | `scale.rs` | none |
//!
//! Same shape as the optimizers: config → validated RoPE → calls on slices (a length
//! mismatch is a [`RopeError`] and nothing is written).

mod angle;
mod axial;
mod error;
mod freq;
mod kernel;
mod llama3;
mod longrope;
mod ntk;
mod rotate;
mod scale;
mod table;
mod yarn;

pub use angle::{sin_cos_turns, step_of, turns_at, turns_at_split};
pub use axial::{AxialConfig, AxialRope};
pub use error::RopeError;
use error::{check_len, whole_rows};
pub use freq::{frequencies, Frequencies, Llama3, LongRope, Scaling, Yarn};
pub use rotate::{Direction, Layout, Positions, Rope, RopeConfig, PREFETCH, SCRATCH};
pub use scale::{
    grad_max_alpha_mean_field, grad_max_scale, log_n_inference_factor, log_n_scale,
    log_n_scale_with, standard_scale, GRAD_MAX_COEFF,
};
pub use table::RopeTable;
