//! Tiny fixed-size layers with backward passes, for on-device fine-tuning (no heap; sizes
//! are const generics).
//!
//! | item | file |
//! |---|---|
//! | [`Num`]: f32, f64, fixed point ([`crate::quant::I8F24`]) | `num.rs` |
//! | [`Dense`] (forward, input and weight gradients), [`relu`] | `dense.rs` |
//! | [`Lora`] adapter `W₀ + A·B` and its gradients | `lora.rs` |
//! | [`softmax_cross_entropy`] | `loss.rs` |
//! | [`Conv1d`], [`Depthwise1d`], [`Pointwise`], [`relu6`], pooling, [`flatten`] | `conv.rs` |
//! | blob errors and checksum ([`BlobError`], [`fnv1a32`]) | `blob.rs` |
//! | [`engine`]: models a user composes from these layers, int8 layers, backprop and forward-only trainers, the memory plan, the model blob | `engine/` |
//!
//! Every layer is generic over [`Num`], so the Cortex-M0 runs the very same code in fixed
//! point that the host and the Cortex-M4F run in f32. Gradients are checked against finite
//! differences (in f64) in the test suite.

mod blob;
mod conv;
mod dense;
pub mod engine;
mod lora;
mod loss;
mod num;

pub use blob::{fnv1a32, BlobError, MAGIC};
pub use conv::{
    avg_pool, avg_pool_backward, conv_out_len, flatten, global_avg_pool, global_avg_pool_backward,
    relu6, relu6_backward, Conv1d, Depthwise1d, Pointwise,
};
pub use dense::{outer, relu, relu_backward, relu_backward_slice, relu_slice, Dense};
pub use engine::TrainStats;
pub use lora::Lora;
pub use loss::{
    argmax, argmax_slice, softmax_cross_entropy, softmax_cross_entropy_slice, Prediction,
};
pub use num::{Num, Saturations};

use core::fmt;

/// Errors of the `nn` layers and trainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum NnError {
    /// A label outside `0..classes`.
    Label {
        /// The label given.
        label: usize,
        /// The number of classes.
        classes: usize,
    },
    /// A batch with no samples, or with as many labels as samples not.
    Batch {
        /// Samples given.
        samples: usize,
        /// Labels given.
        labels: usize,
    },
    /// The optimizer refused a step.
    Step(crate::optim::StepError),
    /// The trainer's optimizer-state capacity `ST` is smaller than the optimizer needs.
    State {
        /// Values the optimizer needs for the whole model.
        needed: usize,
        /// The trainer's capacity `ST`.
        capacity: usize,
    },
}

impl fmt::Display for NnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NnError::Label { label, classes } => {
                write!(f, "label {label} is outside 0..{classes}")
            }
            NnError::Batch { samples, labels } => write!(
                f,
                "a batch needs at least one sample and one label per sample (got {samples} samples, {labels} labels)"
            ),
            NnError::Step(e) => write!(f, "optimizer step: {e}"),
            NnError::State { needed, capacity } => write!(
                f,
                "the optimizer needs {needed} state values but the trainer holds {capacity} \
                 (raise the Trainer's ST parameter); nothing was modified"
            ),
        }
    }
}
