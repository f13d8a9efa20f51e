//! The on-device fine-tuning demo on the host side: the UCI digits (shipped in
//! `host/data/`), its fixed split, the device's shift, pretraining the base classifier with
//! Tiger, int8 quantization into the model blob, and the host run of the device's
//! fine-tuning (the reference the firmware must reproduce).

use flate2::read::GzDecoder;
use margay::math::xorshift32;
#[path = "digits_model.rs"]
mod model;
pub use model::{digits_model, DigitsModel, HID, IN, OUT, RANK, SCRATCH};

use margay::nn::engine::{Backprop, Int8Dense, ModelBlob, Train, ZoTrainer};
use margay::nn::BlobError;
use margay::nn::{relu, relu_backward, softmax_cross_entropy, Dense, Num, Saturations};
use margay::optim::{
    Directions, LionConfig, LrMode, Optimizer, TigerConfig, WarmupCosine, ZoConfig,
};
use margay::quant::quantize_rows;
use margay::quant::I8F24;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Passes over the device stream.
pub const EPOCHS: usize = 8;
/// The adapter's seed.
pub const SEED: u32 = 0x5eed_0001;

/// Trainable values (b₁, A, B, W₂, b₂).
pub const PARAMS: usize = <DigitsModel<'static, f32> as Train<f32>>::PARAMS;
/// The host trainer's optimizer-state capacity: two values per parameter, so that two-moment
/// optimizers (AdamW) run too; the firmware holds one (Tiger's momentum).
pub const STATE: usize = 2 * PARAMS;

/// The engine's digits trainer (backprop) in format `T`.
pub type DigitsBackprop<'a, T> = Backprop<DigitsModel<'a, T>, T, SCRATCH, STATE>;
/// The engine's forward-only digits trainer in format `T`.
pub type DigitsZo<'a, T> = ZoTrainer<DigitsModel<'a, T>, T, SCRATCH, STATE>;
/// The model blob's length.
pub const BLOB_LEN: usize = ModelBlob::len::<DigitsModel<'static, f32>>();

/// `B`'s start values: uniform on [−1/8, 1/8) in steps of 2⁻²⁴ from `seed` (exact in f32
/// and in I8F24, so every format starts from the same adapter).
pub fn adapter_b(seed: u32) -> [[f32; IN]; RANK] {
    let mut b = [[0.0f32; IN]; RANK];
    let mut s = seed.max(1);
    for b in b.as_flattened_mut() {
        let k = (xorshift32(&mut s) >> 10) as i32 - (1 << 21);
        *b = k as f32 * (1.0 / 16_777_216.0);
    }
    b
}

/// The engine blob of a pretrained model: `q` (int8 bytes, `HID·IN`), per-row `scale`,
/// first-layer biases `b1`, the head and the adapter's start (`A = 0`, `B` from [`SEED`]).
pub fn engine_blob(
    q: &[u8],
    scale: &[f32; HID],
    b1: &[f32; HID],
    head: &Dense<f32, HID, OUT>,
) -> Vec<u8> {
    let mut m = digits_model::<f32>();
    let (input, rest) = m.parts_mut();
    input.scale = 1.0 / 16.0;
    let (lora, rest) = rest.parts_mut();
    lora.base = Int8Dense {
        q,
        scale: *scale,
        b: *b1,
    };
    lora.b = adapter_b(SEED);
    rest.parts_mut().1 .0 = *head;
    let mut blob = vec![0u8; BLOB_LEN];
    ModelBlob::encode(&m, &mut blob).expect("the model's own length");
    blob
}

/// Tiger on the device: lr 2e-3 (absolute: A starts at 0, where a parameter-scale rate
/// would never move it), β = 0.965, k = 8 samples per update, λ = 0.01.
pub fn device_tiger() -> TigerConfig {
    TigerConfig {
        accumulation: 8,
        ..TigerConfig::new(2e-3)
    }
}

/// The shipped data set, relative to this crate.
pub fn data_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.csv.gz")
}

/// Labelled 8-bit images.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    /// Pixels 0..16, row-major 8×8.
    pub x: Vec<[u8; IN]>,
    /// Labels 0..9.
    pub y: Vec<u8>,
}

impl Samples {
    fn push(&mut self, x: [u8; IN], y: u8) {
        self.x.push(x);
        self.y.push(y);
    }

    /// The same images as the device's mirrored sensor reads them.
    pub fn mirrored(&self) -> Samples {
        Samples {
            x: self.x.iter().map(mirror).collect(),
            y: self.y.clone(),
        }
    }
}

/// The device's shift: column `c` reads column `7 − c`.
pub fn mirror(img: &[u8; IN]) -> [u8; IN] {
    core::array::from_fn(|i| img[(i / 8) * 8 + 7 - i % 8])
}

/// The fixed split (see `host/data/README.md`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    /// Host pretraining rows (clean).
    pub train: Samples,
    /// Device stream rows (clean; the device sees them mirrored).
    pub stream: Samples,
    /// Held-out rows (clean).
    pub test: Samples,
}

/// Reads `digits.csv.gz` and splits it; errors name the file and the fix.
pub fn load(path: &Path) -> Result<Split, String> {
    let fix = "it ships in host/data/ (restore it with `git checkout host/data/digits.csv.gz`)";
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}; {fix}", path.display()))?;
    let mut text = String::new();
    GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: not a readable gzip CSV ({e}); {fix}", path.display()))?;
    let mut split = Split::default();
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let bad = |why: &str| format!("{}: row {}: {why}; {fix}", path.display(), i + 1);
        let vals: Vec<u8> = line
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=16.0).contains(v) && v.fract() == 0.0)
            })
            .map(|v| v.map(|v| v as u8))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("a value is not an integer in 0..=16"))?;
        if vals.len() != IN + 1 || vals[IN] > 9 {
            return Err(bad("expected 64 pixels and a label 0..9"));
        }
        let x: [u8; IN] = vals[..IN].try_into().unwrap();
        match i % 10 {
            0..=5 => split.train.push(x, vals[IN]),
            6 | 7 => split.stream.push(x, vals[IN]),
            _ => split.test.push(x, vals[IN]),
        }
    }
    if split.test.x.is_empty() {
        return Err(format!("{}: no rows; {fix}", path.display()));
    }
    Ok(split)
}

/// What pretraining produced.
#[derive(Debug, Clone)]
pub struct Pretrained {
    /// The blob bytes.
    pub blob: Vec<u8>,
    /// Accuracy of the f32 model on the clean held-out rows.
    pub f32_test: f64,
    /// Accuracy of the int8 base (the blob) on the clean held-out rows.
    pub int8_test: f64,
    /// Mean training loss of the last epoch.
    pub last_loss: f64,
}

/// Pretraining epochs over the clean training rows.
pub const PRETRAIN_EPOCHS: usize = 60;

/// Pretrains `64 → 32 → 10` on the clean rows with Tiger (k = 16 samples per update,
/// parameter-scale lr for the matrices, half the lr and no decay for biases), then
/// quantizes the first layer to int8 with per-row scales. Deterministic: the same bytes on
/// every run.
pub fn pretrain(split: &Split, mut progress: impl FnMut(usize, f64)) -> Pretrained {
    let mut seed = 0x0dd1_9175u32;
    let mut uniform = |fan_in: usize| {
        let k = (xorshift32(&mut seed) >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0;
        k / (fan_in as f32).sqrt()
    };
    let mut l1 = Dense::<f32, IN, HID>::zeroed();
    let mut l2 = Dense::<f32, HID, OUT>::zeroed();
    l1.w.as_flattened_mut()
        .iter_mut()
        .for_each(|w| *w = uniform(IN));
    l2.w.as_flattened_mut()
        .iter_mut()
        .for_each(|w| *w = uniform(HID));
    let k = 16;
    let matrix = TigerConfig {
        accumulation: k,
        lr_mode: LrMode::Rms,
        ..TigerConfig::new(2e-3)
    }
    .build()
    .expect("valid Tiger config");
    let bias = TigerConfig {
        accumulation: k,
        lr_scale: 0.5,
        weight_decay: 0.0,
        ..TigerConfig::new(1e-2)
    }
    .build()
    .expect("valid Tiger config");
    let mut m1 = Dense::<f32, IN, HID>::zeroed();
    let mut m2 = Dense::<f32, HID, OUT>::zeroed();
    let (mut g1, mut g2) = (
        Dense::<f32, IN, HID>::zeroed(),
        Dense::<f32, HID, OUT>::zeroed(),
    );
    let n = split.train.x.len();
    let mut order: Vec<usize> = (0..n).collect();
    let total = (PRETRAIN_EPOCHS * n) as u64;
    let schedule = WarmupCosine::new(total / 20, total, 0.0).expect("valid schedule");
    let mut t = 1u64;
    let mut last_loss = 0.0;
    let mut sat = Saturations::default();
    for epoch in 0..PRETRAIN_EPOCHS {
        for i in (1..n).rev() {
            order.swap(i, xorshift32(&mut seed) as usize % (i + 1));
        }
        let mut loss = 0.0;
        for &i in &order {
            let x = split.train.x[i].map(|p| p as f32 / 16.0);
            let (h, z) = forward(&l1, &l2, &x, &mut sat);
            let mut dz = [0.0; OUT];
            let p =
                softmax_cross_entropy(&z, split.train.y[i] as usize, &mut dz).expect("label < 10");
            loss += -(p.p_label.max(1e-30) as f64).ln();
            let mut dh = [0.0; HID];
            l2.backward_input(&dz, &mut dh, &mut sat);
            relu_backward(&h, &mut dh);
            Dense::weight_grad(&dz, &h, &mut g2.w);
            Dense::weight_grad(&dh, &x, &mut g1.w);
            let s = matrix.at_scheduled(t, &schedule);
            matrix
                .step(
                    s,
                    l2.w.as_flattened_mut(),
                    g2.w.as_flattened(),
                    m2.w.as_flattened_mut(),
                )
                .unwrap();
            matrix
                .step(
                    s,
                    l1.w.as_flattened_mut(),
                    g1.w.as_flattened(),
                    m1.w.as_flattened_mut(),
                )
                .unwrap();
            let s = bias.at_scheduled(t, &schedule);
            bias.step(s, &mut l2.b, &dz, &mut m2.b).unwrap();
            bias.step(s, &mut l1.b, &dh, &mut m1.b).unwrap();
            t += 1;
        }
        last_loss = loss / n as f64;
        progress(epoch, last_loss);
    }
    let acc_f32 = {
        let mut ok = 0;
        for (x, &y) in split.test.x.iter().zip(&split.test.y) {
            let (_, z) = forward(&l1, &l2, &x.map(|p| p as f32 / 16.0), &mut sat);
            ok += (margay::nn::argmax(&z) == y as usize) as usize;
        }
        ok as f64 / split.test.x.len() as f64
    };
    let mut q = [0i8; HID * IN];
    let mut scale = [0.0f32; HID];
    quantize_rows(l1.w.as_flattened(), IN, &mut q, &mut scale).expect("finite weights");
    let qb: Vec<u8> = q.iter().map(|&v| v as u8).collect();
    let blob = engine_blob(&qb, &scale, &l1.b, &l2);
    let int8_test = base_accuracy::<f32>(&blob, &split.test);
    Pretrained {
        blob,
        f32_test: acc_f32,
        int8_test,
        last_loss,
    }
}

/// The f32 pretraining model: hidden activations (after ReLU) and logits.
fn forward(
    l1: &Dense<f32, IN, HID>,
    l2: &Dense<f32, HID, OUT>,
    x: &[f32; IN],
    sat: &mut Saturations,
) -> ([f32; HID], [f32; OUT]) {
    let mut h = [0.0; HID];
    l1.forward(x, &mut h, sat);
    relu(&mut h);
    let mut z = [0.0; OUT];
    l2.forward(&h, &mut z, sat);
    (h, z)
}

/// Every trainable value of a model, in tensor order, as f32.
pub fn trained_values<T: Num, M: margay::nn::engine::Train<T>>(m: &mut M) -> Vec<f32> {
    let mut v = Vec::new();
    m.tensors(&mut |_, p| v.extend(p.iter().map(|x| x.to_f32())));
    v
}

/// The largest `|w_fixed − w_f32|` over the trained tensors of two runs, and the largest
/// `|w_f32|` (for the bound in the README).
pub fn weight_gap(f: &mut DigitsModel<'_, f32>, q: &mut DigitsModel<'_, I8F24>) -> (f32, f32) {
    let (a, b) = (trained_values(f), trained_values(q));
    let (mut gap, mut big) = (0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(&b) {
        gap = gap.max((x - y).abs());
        big = big.max(x.abs());
    }
    (gap, big)
}

/// A sample's readings (pixel values 0..16 as f32).
pub fn reading(x: &[u8; IN]) -> [f32; IN] {
    x.map(|p| p as f32)
}

/// How many of `s` a trainer's `predict` classifies as their label.
fn correct(s: &Samples, mut predict: impl FnMut(&[f32; IN]) -> Option<usize>) -> usize {
    s.x.iter()
        .zip(&s.y)
        .filter(|(x, &y)| predict(&reading(x)) == Some(y as usize))
        .count()
}

/// A backprop trainer loaded from a checked blob.
pub fn load_backprop<T: Num>(blob: &[u8]) -> Result<Box<DigitsBackprop<'_, T>>, BlobError> {
    let mut tr = Box::new(DigitsBackprop::<T>::new(digits_model()));
    ModelBlob::load(&mut tr.model, blob)?;
    Ok(tr)
}

/// A forward-only trainer loaded from a checked blob.
pub fn load_zo<T: Num>(blob: &[u8]) -> Result<Box<DigitsZo<'_, T>>, BlobError> {
    let mut tr = Box::new(DigitsZo::<T>::new(digits_model()));
    ModelBlob::load(&mut tr.model, blob)?;
    Ok(tr)
}

/// Accuracy of the blob's model with a fresh adapter (A = 0: the base itself) on `s`.
pub fn base_accuracy<T: Num>(blob: &[u8], s: &Samples) -> f64 {
    let mut tr = load_backprop::<T>(blob).expect("a checked blob");
    let mut sat = Saturations::default();
    correct(s, |x| tr.predict(x, &mut sat)) as f64 / s.x.len() as f64
}

pub use crate::files::write_atomic;

/// Reads and verifies a blob file; errors name the file and the fix.
pub fn read_blob(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "{}: {e}; write it with `cargo run --release -p margay-host -- digits pretrain`",
            path.display()
        )
    })?;
    ModelBlob::check::<DigitsModel<'_, f32>>(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

/// The device run's glitches. After the first pass over the stream it trains on one sample
/// whose sensor returned NaN (Tiger's guard fires); after training it classifies one whose
/// reading is 1,000 on every pixel (beyond I8F24's ±128 once it reaches the hidden layer:
/// it saturates and is counted on the M0).
pub const NAN_READING: f32 = f32::NAN;
/// See [`NAN_READING`].
pub const HUGE_READING: f32 = 1000.0;

/// What a fine-tuning run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Held-out samples classified correctly before fine-tuning.
    pub before: usize,
    /// … and after.
    pub after: usize,
    /// Held-out samples.
    pub total: usize,
    /// Trainer counters.
    pub stats: margay::nn::TrainStats,
    /// Fingerprint of the trained tensors.
    pub fingerprint: u32,
}

/// The device's fine-tuning run in format `T`, exactly as the firmware does it: accuracy on
/// the mirrored held-out rows, `EPOCHS` passes over the mirrored stream (the glitches after
/// the first), accuracy again. Returns the report and the trainer.
pub fn finetune<'a, T: Num>(
    blob: &'a [u8],
    stream: &Samples,
    test: &Samples,
) -> (Report, Box<DigitsBackprop<'a, T>>)
where
    margay::optim::Tiger: Optimizer<T::Moment, T>,
{
    let tiger = device_tiger().build().expect("valid Tiger config");
    finetune_with(blob, stream, test, &tiger)
}

/// [`finetune`] with any optimizer of the interface (the host's runs with Lion, AdamW and
/// a clipping chain; the device runs Tiger).
pub fn finetune_with<'a, T: Num, O: Optimizer<T::Moment, T>>(
    blob: &'a [u8],
    stream: &Samples,
    test: &Samples,
    opt: &O,
) -> (Report, Box<DigitsBackprop<'a, T>>) {
    let mut sat = Saturations::default();
    let mut tr = load_backprop::<T>(blob).expect("a checked blob");
    let before = correct(test, |x| tr.predict(x, &mut sat));
    for epoch in 0..EPOCHS {
        for (x, &y) in stream.x.iter().zip(&stream.y) {
            tr.train(opt, &reading(x), y as usize)
                .expect("labels < 10 and the state fits");
        }
        if epoch == 0 {
            tr.train(opt, &[NAN_READING; IN], 0).expect("label 0");
        }
    }
    let after = correct(test, |x| tr.predict(x, &mut sat));
    tr.predict(&[HUGE_READING; IN], &mut sat);
    tr.stats.saturated += sat.0;
    let report = Report {
        before,
        after,
        total: test.x.len(),
        stats: tr.stats,
        fingerprint: tr.fingerprint(),
    };
    (report, tr)
}

/// Samples per forward-only step (the batch both losses are taken on; Tiger's k on the
/// backprop side).
pub const ZO_BATCH: usize = 8;

/// The forward-only estimator of the device run: two-sided SPSA, [`ZO_SAMPLES`] Rademacher
/// directions per step, ε = 1e-2.
pub fn device_zo() -> ZoConfig {
    ZoConfig {
        eps: ZO_EPS,
        samples: ZO_SAMPLES,
        directions: Directions::Rademacher,
        seed: SEED as u64,
        ..ZoConfig::default()
    }
}

/// ε of [`device_zo`].
pub const ZO_EPS: f32 = 1e-2;
/// Directions per forward-only step (each costs two forward passes of the batch).
pub const ZO_SAMPLES: u32 = 4;
/// Passes over the stream in forward-only mode (a zeroth-order estimate carries far less
/// information than a gradient: it needs more steps, each much cheaper in RAM).
pub const ZO_EPOCHS: usize = 32;
/// The learning rate of the forward-only run's Lion.
pub const ZO_LR: f32 = 1e-3;

/// The forward-only device run in format `T`: the same held-out measurement and the same
/// stream, [`ZO_EPOCHS`] passes in batches of [`ZO_BATCH`] (`2·ZO_SAMPLES` forward passes of
/// the batch per step, no backward pass), Lion on the estimate (sign-based, so the estimate's scale does not matter: the
/// same rule in f32 and fixed point); after the first pass one batch holds a NaN reading
/// (the step is skipped, the weights restored).
pub fn finetune_zo<'a, T: Num>(
    blob: &'a [u8],
    stream: &Samples,
    test: &Samples,
) -> (Report, Box<DigitsZo<'a, T>>)
where
    margay::optim::Lion: Optimizer<T::Moment, T>,
{
    let zo = device_zo().build().expect("valid ZO config");
    let lion = LionConfig::new(ZO_LR).build().expect("valid Lion config");
    let mut sat = Saturations::default();
    let mut tr = load_zo::<T>(blob).expect("a checked blob");
    let before = correct(test, |x| tr.predict(x, &mut sat));
    let xs: Vec<[f32; IN]> = stream.x.iter().map(reading).collect();
    for epoch in 0..ZO_EPOCHS {
        for (x, y) in xs.chunks(ZO_BATCH).zip(stream.y.chunks(ZO_BATCH)) {
            tr.step(&zo, &lion, x, y)
                .expect("labels < 10 and the state fits");
        }
        if epoch == 0 {
            let mut glitch = [xs[0]; 2];
            glitch[1] = [NAN_READING; IN];
            tr.step(&zo, &lion, &glitch, &stream.y[..2])
                .expect("labels < 10");
        }
    }
    let after = correct(test, |x| tr.predict(x, &mut sat));
    tr.predict(&[HUGE_READING; IN], &mut sat);
    tr.stats.saturated += sat.0;
    let report = Report {
        before,
        after,
        total: test.x.len(),
        stats: tr.stats,
        fingerprint: tr.fingerprint(),
    };
    (report, tr)
}

/// The device's fine-tuning with other optimizers of the interface, in f32 with bf16 state
/// (the device format of the M4F), from the same base, stream and glitches: Lion (one
/// sample per update, so its lr is Tiger's over k), AdamW, and global-norm clipping in front
/// of Tiger. Host only (the firmware runs Tiger).
pub fn other_optimizers(
    blob: &[u8],
    stream: &Samples,
    test: &Samples,
) -> Vec<(&'static str, Report)> {
    use margay::optim::{AdamWConfig, Chain, ClipConfig, ClipForm};
    let lion = LionConfig::new(LION_LR).build().expect("valid Lion config");
    let adamw = AdamWConfig::new(ADAMW_LR)
        .build()
        .expect("valid AdamW config");
    let clip = ClipConfig::new(1.0, ClipForm::Min)
        .build()
        .expect("valid clip");
    let tiger = device_tiger().build().expect("valid Tiger config");
    vec![
        (
            "lion (lr 2.5e-4)",
            finetune_with::<f32, _>(blob, stream, test, &lion).0,
        ),
        (
            "adamw (lr 1e-3)",
            finetune_with::<f32, _>(blob, stream, test, &adamw).0,
        ),
        (
            "clip 1.0 -> tiger",
            finetune_with::<f32, _>(blob, stream, test, &Chain(clip, tiger)).0,
        ),
    ]
}

/// Lion's lr in [`other_optimizers`]: Tiger's 2e-3 over its k = 8 (Lion updates every sample).
pub const LION_LR: f32 = 2.5e-4;
/// AdamW's lr in [`other_optimizers`] (PyTorch's default).
pub const ADAMW_LR: f32 = 1e-3;
