//! The host side of the sensor example (`firmware/build.rs` includes it): the data, the
//! pretraining of [`SensorNet`]'s weights on clean windows, the blob, and the replay of the
//! device's fine-tuning in the device's number format, which the firmware must equal bit
//! for bit.
//!
//! The data are synthetic 3-axis accelerometer windows (25 Hz, counts of 1/32 g as an 8-bit
//! accelerometer gives them): *still* (gravity on z, a small tilt, noise), *walking* (a
//! 2 Hz vertical bounce and a 1 Hz sway) and *waving* (a 4.5 Hz swing along x). Pretraining
//! sees the sensor upright; the device it is flashed to has it mounted on its side
//! (`(x, y, z) → (z, y, −x)`), so the pretrained model misreads it until fine-tuned.

use crate::sensor_model::*;
use margay::math::xorshift32;
use margay::nn::engine::{
    Backprop, Conv, Depthwise, Full, GlobalAvgPool, ModelBlob, Pointwise, Relu, Scale, TrainStats,
};
use margay::nn::{Dense, Num, Saturations};
use margay::optim::{Optimizer, Tiger, TigerConfig};

/// One window of counts.
pub type Counts = [[i8; LEN]; AXES];

/// Windows and their labels.
#[derive(Default)]
pub struct Samples {
    pub x: Vec<Counts>,
    pub y: Vec<u8>,
}

/// A uniform number in [−1, 1).
fn uniform(s: &mut u32) -> f32 {
    (xorshift32(s) >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0
}

/// One window of `class`, upright or mounted on its side.
pub fn record(class: usize, on_side: bool, s: &mut u32) -> Counts {
    let tau = core::f32::consts::TAU;
    let (phase, amp, freq) = (
        uniform(s) * 3.2,
        1.0 + 0.2 * uniform(s),
        1.0 + 0.1 * uniform(s),
    );
    let tilt = [0.1 * uniform(s), 0.1 * uniform(s)];
    let mut out = [[0i8; LEN]; AXES];
    for t in 0..LEN {
        let time = t as f32 / 25.0;
        let mut g = [tilt[0], tilt[1], 1.0];
        match class {
            0 => {}
            1 => {
                g[2] += 0.5 * amp * (tau * 2.0 * freq * time + phase).sin();
                g[0] += 0.15 * amp * (tau * 1.0 * freq * time + phase).sin();
            }
            _ => {
                g[0] += 0.8 * amp * (tau * 4.5 * freq * time + phase).sin();
                g[1] += 0.3 * amp * (tau * 4.5 * freq * time + phase).cos();
            }
        }
        for v in &mut g {
            *v += 0.05 * (uniform(s) + uniform(s) + uniform(s));
        }
        if on_side {
            g = [g[2], g[1], -g[0]];
        }
        for (axis, v) in out.iter_mut().zip(g) {
            axis[t] = (v * 32.0).round().clamp(-127.0, 127.0) as i8;
        }
    }
    out
}

/// `n` windows, the classes in turn, from `seed`.
pub fn samples(n: usize, on_side: bool, seed: u32) -> Samples {
    let mut s = seed;
    let mut out = Samples::default();
    for i in 0..n {
        let class = i % CLASSES;
        out.x.push(record(class, on_side, &mut s));
        out.y.push(class as u8);
    }
    out
}

/// Pretraining's windows (upright), the device's fine-tuning stream and its held-out set
/// (on its side).
pub fn data() -> (Samples, Samples, Samples) {
    (
        samples(PRETRAIN_WINDOWS, false, 0x5e45_0001),
        samples(STREAM_WINDOWS, true, 0x5e45_0002),
        samples(TEST_WINDOWS, true, 0x5e45_0003),
    )
}

/// Pretraining windows.
pub const PRETRAIN_WINDOWS: usize = 240;
/// The device's fine-tuning stream.
pub const STREAM_WINDOWS: usize = 96;
/// The device's held-out windows.
pub const TEST_WINDOWS: usize = 90;
/// Passes over the pretraining windows.
pub const PRETRAIN_EPOCHS: usize = 12;

/// The model pretraining trains: the same layers, every one of them trainable and no
/// adapter yet.
type Pretrain = margay::Seq![
    Scale<f32, Window>,
    Full<Conv<f32, AXES, C1, 5, 2, 2, LEN, L1>>,
    Relu<[[f32; L1]; C1]>,
    Full<Pointwise<f32, C1, C2, L1>>,
    Relu<[[f32; L1]; C2]>,
    Full<Depthwise<f32, C2, 3, 1, 1, L1, L1>>,
    Relu<[[f32; L1]; C2]>,
    GlobalAvgPool<f32, C2, L1>,
    Full<Dense<f32, C2, CLASSES>>,
];
const PRETRAIN_PARAMS: usize = <Pretrain as margay::nn::engine::Train<f32>>::PARAMS;
const PRETRAIN_SCRATCH: usize = <Pretrain as margay::nn::engine::Train<f32>>::LARGEST;

/// Held-out windows `predict` gets right.
pub fn correct(s: &Samples, mut predict: impl FnMut(&Window) -> Option<usize>) -> usize {
    s.x.iter()
        .zip(&s.y)
        .filter(|(x, &y)| predict(&window(x)) == Some(y as usize))
        .count()
}

/// Pretrains on `clean` (He-uniform start, Tiger, 4 windows per update) and returns the
/// device model's blob (the pretrained weights with a fresh LoRA adapter: `A = 0`, `B`
/// uniform in ±0.5) and the accuracy on `check` (upright windows it did not see).
pub fn pretrain(clean: &Samples, check: &Samples) -> (Vec<u8>, usize) {
    let mut s = 0x1e4_u32;
    let mut he = |w: &mut [f32], fan_in: usize| {
        let bound = (6.0 / fan_in as f32).sqrt();
        w.iter_mut().for_each(|v| *v = bound * uniform(&mut s));
    };
    let mut pre = margay::seq!(
        Scale::new(1.0 / 32.0),
        Full(Conv::zeroed()),
        Relu::new(),
        Full(Pointwise::zeroed()),
        Relu::new(),
        Full(Depthwise::zeroed()),
        Relu::new(),
        GlobalAvgPool::new(),
        Full(Dense::zeroed()),
    );
    {
        let (_, r) = pre.parts_mut();
        let (conv, r) = r.parts_mut();
        he(conv.0 .0.w.as_flattened_mut().as_flattened_mut(), AXES * 5);
        let (_, r) = r.parts_mut();
        let (pw, r) = r.parts_mut();
        he(pw.0 .0.w.as_flattened_mut().as_flattened_mut(), C1);
        let (_, r) = r.parts_mut();
        let (dw, r) = r.parts_mut();
        he(dw.0 .0.w.as_flattened_mut(), 3);
        let (_, r) = r.parts_mut();
        let (_, head) = r.parts_mut();
        he(head.0.w.as_flattened_mut(), C2);
    }
    let mut tr = Box::new(Backprop::<Pretrain, f32, PRETRAIN_SCRATCH, PRETRAIN_PARAMS>::new(pre));
    let tiger = TigerConfig {
        accumulation: 4,
        ..TigerConfig::new(2e-3)
    }
    .build()
    .expect("a valid Tiger config");
    for _ in 0..PRETRAIN_EPOCHS {
        for (x, &y) in clean.x.iter().zip(&clean.y) {
            tr.train(&tiger, &window(x), y as usize)
                .expect("labels < CLASSES and the state fits");
        }
    }
    let mut sat = Saturations::default();
    let accuracy = correct(check, |x| tr.predict(x, &mut sat));

    // The pretrained layers into the device's model, with a fresh adapter.
    let mut dev = Box::new(sensor_net::<f32>());
    let (p_scale, r) = tr.model.parts_mut();
    let (d_scale, q) = dev.parts_mut();
    *d_scale = *p_scale;
    let (p_conv, r) = r.parts_mut();
    let (d_conv, q) = q.parts_mut();
    d_conv.0 = p_conv.0;
    let (_, r) = r.parts_mut();
    let (_, q) = q.parts_mut();
    let (p_pw, r) = r.parts_mut();
    let (d_lora, q) = q.parts_mut();
    d_lora.base = p_pw.0;
    for row in &mut d_lora.b {
        row.iter_mut().for_each(|v| *v = 0.5 * uniform(&mut s));
    }
    let (_, r) = r.parts_mut();
    let (_, q) = q.parts_mut();
    let (p_dw, r) = r.parts_mut();
    let (d_dw, q) = q.parts_mut();
    d_dw.0 = p_dw.0;
    let (_, r) = r.parts_mut();
    let (_, q) = q.parts_mut();
    let (_, p_head) = r.parts_mut();
    let (_, d_head) = q.parts_mut();
    d_head.0 = p_head.0;

    let mut blob = vec![0u8; ModelBlob::len::<SensorNet<f32>>()];
    ModelBlob::encode(&*dev, &mut blob).expect("the buffer is the blob's length");
    (blob, accuracy)
}

/// What a fine-tuning run gave (the firmware must give the same).
pub struct Run {
    pub before: usize,
    pub after: usize,
    pub stats: TrainStats,
    pub fingerprint: u32,
}

/// The device's Tiger.
pub fn device_tiger() -> Tiger {
    TigerConfig {
        accumulation: ACCUMULATION,
        ..TigerConfig::new(LR)
    }
    .build()
    .expect("a valid Tiger config")
}

/// The device's fine-tuning, replayed in format `T`: accuracy on `test`, [`EPOCHS`] passes
/// over `stream` (after the first, one all-NaN window: Tiger's guard), accuracy again.
pub fn finetune<T: Num>(blob: &[u8], stream: &Samples, test: &Samples) -> Run
where
    Tiger: Optimizer<T::Moment, T>,
{
    let tiger = device_tiger();
    let mut tr = Box::new(Backprop::<SensorNet<T>, T, SCRATCH, PARAMS>::new(
        sensor_net(),
    ));
    ModelBlob::load(&mut tr.model, blob).expect("the blob pretraining wrote");
    let mut sat = Saturations::default();
    let before = correct(test, |x| tr.predict(x, &mut sat));
    for epoch in 0..EPOCHS {
        for (x, &y) in stream.x.iter().zip(&stream.y) {
            tr.train(&tiger, &window(x), y as usize)
                .expect("labels < CLASSES and the state fits");
        }
        if epoch == 0 {
            tr.train(&tiger, &[[f32::NAN; LEN]; AXES], 0)
                .expect("label 0");
        }
    }
    let after = correct(test, |x| tr.predict(x, &mut sat));
    tr.stats.saturated += sat.0;
    Run {
        before,
        after,
        stats: tr.stats,
        fingerprint: tr.fingerprint(),
    }
}
