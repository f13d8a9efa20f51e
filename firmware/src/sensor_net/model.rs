//! A user's own model on margay's engine: a small 1-D CNN that tells three motions apart
//! from a 3-axis accelerometer window. This file is all a user writes to define it; the
//! host (`firmware/build.rs` via `host.rs`: pretraining, the blob, the replay of the device
//! run) and the firmware (`src/bin/sensor_net.rs`) both include it, as two crates of a
//! user's project would share a module. It uses margay's public API only.

use margay::nn::engine::{
    BiasOnly, Conv, Depthwise, Frozen, Full, GlobalAvgPool, Lora, Pointwise, Relu, Scale,
};
use margay::nn::{Dense, Num};

/// Accelerometer axes (x, y, z).
pub const AXES: usize = 3;
/// Readings per axis in one window (1.28 s at 25 Hz).
pub const LEN: usize = 32;
/// Motions: still, walking, waving.
pub const CLASSES: usize = 3;
/// Channels after the first convolution (stride 2: length 16).
pub const C1: usize = 8;
/// Channels after the pointwise expansion.
pub const C2: usize = 12;
/// Length after the strided convolution.
pub const L1: usize = 16;
/// LoRA rank on the pointwise layer.
pub const RANK: usize = 2;

/// One window of readings as the trainer takes it: raw sensor counts as f32.
pub type Window = [[f32; LEN]; AXES];

/// The model, first layer to last, with what fine-tuning may change in each:
/// - `Scale`: counts → g (1/32 g per count), from the blob;
/// - a frozen 5-tap convolution, stride 2 (gradients pass through it, it does not train);
/// - a pointwise expansion with a rank-2 LoRA adapter (its biases, `A` and `B` train);
/// - a depthwise 3-tap convolution whose biases train (TinyTL's bias-only update);
/// - global average pooling and a fully trainable head.
pub type SensorNet<T> = margay::Seq![
    Scale<T, Window>,
    Frozen<Conv<T, AXES, C1, 5, 2, 2, LEN, L1>>,
    Relu<[[T; L1]; C1]>,
    Lora<Pointwise<T, C1, C2, L1>, T, C1, C2, RANK, L1>,
    Relu<[[T; L1]; C2]>,
    BiasOnly<Depthwise<T, C2, 3, 1, 1, L1, L1>>,
    Relu<[[T; L1]; C2]>,
    GlobalAvgPool<T, C2, L1>,
    Full<Dense<T, C2, CLASSES>>,
];

/// An empty [`SensorNet`] (every value 0), a `const fn` so the trainer can sit in a
/// `static`: load a blob into it.
pub const fn sensor_net<T: Num>() -> SensorNet<T> {
    margay::seq!(
        Scale::new(T::ZERO),
        Frozen(Conv::zeroed()),
        Relu::new(),
        Lora::new(Pointwise::zeroed(), [[T::ZERO; C1]; RANK]),
        Relu::new(),
        BiasOnly(Depthwise::zeroed()),
        Relu::new(),
        GlobalAvgPool::new(),
        Full(Dense::zeroed()),
    )
}

/// Trainable values (one optimizer-state value each with Tiger).
pub const PARAMS: usize = <SensorNet<f32> as margay::nn::engine::Train<f32>>::PARAMS;
/// The gradient scratch: the largest trainable tensor.
pub const SCRATCH: usize = <SensorNet<f32> as margay::nn::engine::Train<f32>>::LARGEST;

/// Device fine-tuning: Tiger, one update per 8 windows, through the stream this often.
pub const EPOCHS: usize = 10;
/// Tiger's micro-steps per update on the device.
pub const ACCUMULATION: u32 = 8;
/// Tiger's learning rate on the device.
pub const LR: f32 = 1.5e-2;

/// A window of sensor counts as the trainer's input.
pub fn window(counts: &[[i8; LEN]; AXES]) -> Window {
    counts.map(|axis| axis.map(|c| c as f32))
}
