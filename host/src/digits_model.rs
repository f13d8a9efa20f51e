//! The digits classifier as a model of margay's on-device engine: the one definition the
//! host (pretraining, the replay of the device run) and the firmware (`firmware/src/bin/
//! digits*.rs`, which include this file) share. It uses margay's public API only, as a
//! user's own crate would.

use margay::nn::engine::{Full, Int8Dense, Lora, Relu, Scale};
use margay::nn::{Dense, Num};

/// Pixels per image.
pub const IN: usize = 64;
/// Hidden units.
pub const HID: usize = 32;
/// Classes.
pub const OUT: usize = 10;
/// LoRA rank on the device.
pub const RANK: usize = 8;
/// The trainer's gradient scratch (the largest trainable tensor: B, RANK×IN).
pub const SCRATCH: usize = RANK * IN;

/// Readings · 1/16 (from the blob), a frozen int8 layer with a LoRA adapter (its biases, A
/// and B train), ReLU, a trainable head.
pub type DigitsModel<'a, T> = margay::Seq![
    Scale<T, [f32; IN]>,
    Lora<Int8Dense<'a, T, IN, HID>, T, IN, HID, RANK>,
    Relu<[T; HID]>,
    Full<Dense<T, HID, OUT>>,
];

/// An empty [`DigitsModel`] (every value 0), for a `static`: load a blob into it.
pub const fn digits_model<'a, T: Num>() -> DigitsModel<'a, T> {
    margay::seq!(
        Scale::new(T::ZERO),
        Lora::new(Int8Dense::empty(), [[T::ZERO; IN]; RANK]),
        Relu::new(),
        Full(Dense::zeroed()),
    )
}
