//! A user's own model trained on the device: the firmware loop of the sensor example
//! (`src/sensor_net/model.rs` defines the model; `build.rs` pretrains it on the host and
//! writes the blob). A motion classifier pretrained with the sensor upright meets a device
//! with the sensor mounted on its side; it fine-tunes its LoRA adapter, its depthwise biases
//! and its head with Tiger on a stream of the device's own windows and exits 0 only if
//! - accuracy on held-out windows rose by at least [`MARGIN_PERCENT`] points,
//! - every count and the trained weights' fingerprint equal the host's replay of the run in
//!   the same format (f32 on the Cortex-M4F, I16F16 fixed point on the M0),
//! - the trainer's RAM is its memory plan, the stack stays within [`STACK_ALLOWANCE`] and
//!   RAM (statics + stack high-water) within the board's budget.
#![no_std]
#![no_main]

use cortex_m as _;
use cortex_m_rt::entry;
use defmt_semihosting as _;
use margay::nn::engine::{Backprop, ModelBlob};
use margay::nn::{Saturations, TrainStats};
use margay::optim::{Outcome, TigerConfig};

#[allow(dead_code)]
#[path = "../sensor_net/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../rt.rs"]
mod rt;
use model::*;
use rt::{bench_mark, exit, memory};

/// The device's number format: I16F16 on the Cortex-M0 (no FPU; the logits reach ~40, too
/// close to I8F24's ±128 for training), f32 on the Cortex-M4F.
#[cfg(fixed_point)]
type T = margay::quant::I16F16;
#[cfg(not(fixed_point))]
type T = f32;

/// The trainer: model, activations, gradient buffers, scratch and Tiger's state, all sized
/// by the types ([`Backprop::PLAN`]).
type Trainer = Backprop<SensorNet<T>, T, SCRATCH, PARAMS>;

/// The host's reference numbers (build.rs).
pub struct Host {
    pub before: usize,
    pub after: usize,
    pub samples: u32,
    pub updates: u32,
    pub guarded: u32,
    pub saturated: u32,
    pub fingerprint: u32,
}

include!(concat!(env!("OUT_DIR"), "/sensor_net_data.rs"));

/// The pretrained model (build.rs).
static BLOB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sensor_net.mgyb"));

/// The least accuracy gain (percentage points); the measured gains are in
/// `docs/on-device.md`.
const MARGIN_PERCENT: usize = 40;
/// Stack the run may use (call frames and one window's readings).
const STACK_ALLOWANCE: usize = 2048;
/// RAM the run may use: the microbit's 16 KiB, the M4F board's first 64 KiB.
const RAM_BUDGET: usize = if cfg!(fixed_point) { 16 } else { 64 } * 1024;

/// Held-out windows the model classifies right.
fn correct(tr: &mut Trainer, sat: &mut Saturations) -> usize {
    TEST_X
        .iter()
        .zip(&TEST_Y)
        .filter(|(x, &y)| tr.predict(&window(x), sat) == Some(y as usize))
        .count()
}

#[entry]
fn main() -> ! {
    // The trainer lives in a static, loaded in place (on the stack it would be copied);
    // `#[entry]` hands a `static mut` declared first in `main` over as a `&'static mut`.
    static mut TRAINER: Trainer = Backprop::new(sensor_net());
    let tr: &'static mut Trainer = TRAINER;
    if let Err(e) = ModelBlob::load(&mut tr.model, BLOB) {
        defmt::error!("model blob rejected: {}", e);
        exit(false)
    }
    let Ok(tiger) = (TigerConfig {
        accumulation: ACCUMULATION,
        ..TigerConfig::new(LR)
    })
    .build() else {
        defmt::error!("invalid Tiger config");
        exit(false)
    };

    let mut sat = Saturations::default();
    bench_mark(0); // marks: instruction counts (firmware/insncount.sh)
    let before = correct(tr, &mut sat);
    bench_mark(1);
    let mut ok = true;
    for epoch in 0..EPOCHS {
        bench_mark(2);
        for (x, &y) in STREAM_X.iter().zip(&STREAM_Y) {
            ok &= tr.train(&tiger, &window(x), y as usize).is_ok();
        }
        bench_mark(3);
        if epoch == 0 {
            // A sensor glitch: NaN on every axis. Tiger's guard must fire, not a fault.
            ok &= tr.train(&tiger, &[[f32::NAN; LEN]; AXES], 0) == Ok(Outcome::Guarded);
        }
    }
    let after = correct(tr, &mut sat);
    tr.stats.saturated += sat.0;
    let fingerprint = tr.fingerprint();
    if !ok {
        defmt::error!("a training step failed or the NaN glitch was not guarded");
    }
    ok &= check(before, after, tr.stats, fingerprint);
    defmt::println!("sensor-net: {=str}", if ok { "PASS" } else { "FAIL" });
    exit(ok)
}

/// Prints the run and checks the margin, the host's numbers, the plan and the RAM.
fn check(before: usize, after: usize, s: TrainStats, fingerprint: u32) -> bool {
    let n = TEST_Y.len();
    let pct = |k: usize| ((k * 10_000 + n / 2) / n) as u32;
    defmt::println!(
        "sensor-net ({=str}): {=usize} held-out windows, sensor on its side: before {=u32}.{=u32:02}%, after {=u32}.{=u32:02}% (pretrained: {=usize} of {=usize} upright)",
        if cfg!(fixed_point) { "Cortex-M0, I16F16" } else { "Cortex-M4F, f32" },
        n,
        pct(before) / 100,
        pct(before) % 100,
        pct(after) / 100,
        pct(after) % 100,
        PRETRAINED,
        n
    );
    defmt::println!(
        "trained on {=u32} windows: {=u32} updates, {=u32} guarded, {=u32} saturated; fingerprint {=u32:#010x}",
        s.samples,
        s.updates,
        s.guarded,
        s.saturated,
        fingerprint
    );
    let mut ok = true;
    if after < before + MARGIN_PERCENT * n / 100 {
        defmt::error!(
            "accuracy gain below the {=usize}-point margin",
            MARGIN_PERCENT
        );
        ok = false;
    }
    let h = HOST;
    let host = (
        h.before,
        h.after,
        h.samples,
        h.updates,
        h.guarded,
        h.saturated,
        h.fingerprint,
    );
    if (
        before,
        after,
        s.samples,
        s.updates,
        s.guarded,
        s.saturated,
        fingerprint,
    ) != host
    {
        defmt::error!(
            "differs from the host run: before {=usize} after {=usize} samples {=u32} updates {=u32} guarded {=u32} saturated {=u32} fingerprint {=u32:#010x}",
            h.before, h.after, h.samples, h.updates, h.guarded, h.saturated, h.fingerprint
        );
        ok = false;
    } else {
        defmt::println!("equal to the host run bit for bit (counts and weight fingerprint)");
    }
    let (m, plan) = (memory(), Trainer::PLAN);
    let trainer = core::mem::size_of::<Trainer>();
    defmt::println!(
        "RAM peak {=usize} bytes = {=usize} static + {=usize} stack (budget {=usize}); memory plan {=usize} bytes (model {=usize}, backward {=usize}, scratch {=usize}, optimizer state {=usize}), trainer {=usize}; flash {=usize} (blob {=usize})",
        m.statics + m.stack_used,
        m.statics,
        m.stack_used,
        RAM_BUDGET,
        plan.total(),
        plan.model,
        plan.backward,
        plan.scratch,
        plan.state,
        trainer,
        m.flash,
        BLOB.len()
    );
    if trainer < plan.total() || trainer > plan.total() + 32 {
        defmt::error!("the trainer's RAM is not its plan");
        ok = false;
    }
    if m.stack_used > STACK_ALLOWANCE {
        defmt::error!(
            "stack above the allowance of {=usize} bytes",
            STACK_ALLOWANCE
        );
        ok = false;
    }
    if m.statics + m.stack_used > RAM_BUDGET {
        defmt::error!("RAM over budget");
        ok = false;
    }
    ok
}
