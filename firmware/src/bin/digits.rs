//! On-device fine-tuning of a digits classifier by backprop, on margay's engine.
//!
//! The base model (int8 first layer, f32 head) was pretrained on the host on clean digits
//! and sits in flash (`model/digits.mgyb`, the engine's blob: checked against this model's
//! layer sequence at start-up). This device's sensor is mounted mirrored, so the base model
//! misreads it. The firmware measures accuracy on held-out mirrored samples, fine-tunes a
//! LoRA adapter, the hidden biases and the head with Tiger on a stream of mirrored samples
//! (8 samples per update through Tiger's built-in accumulation), measures again, and exits 0
//! only if
//! - accuracy rose by at least [`MARGIN_PERCENT`] points,
//! - every count and the trained weights' fingerprint equal the host's run of the same
//!   fine-tuning in the same format (f32 on the Cortex-M4F, I8F24 fixed point on the M0),
//! - the trainer's RAM is its memory plan, the stack stays within [`STACK_ALLOWANCE`], and
//!   RAM (statics + stack high-water) is within the budget (64 KiB M4F, 16 KiB M0).
#![no_std]
#![no_main]

use cortex_m as _;
use cortex_m_rt::entry;
use defmt_semihosting as _;
use margay::nn::engine::Backprop;
use margay::nn::Saturations;
use margay::optim::TigerConfig;

#[allow(dead_code)]
#[path = "../digits_common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../rt.rs"]
mod rt;
use common::*;
use rt::{bench_mark, exit};

/// The least accuracy gain (percentage points) the run must show; the measured gains are
/// 47.5 (f32) and 45.8 (I8F24) points (README).
const MARGIN_PERCENT: usize = 30;

/// Stack the run may use (call frames and one sample's readings; the plan keeps every other
/// buffer in the trainer).
const STACK_ALLOWANCE: usize = 2560;

type Trainer = Backprop<DigitsModel<'static, T>, T, SCRATCH, STATE>;

#[entry]
fn main() -> ! {
    defmt::println!("digits (backprop, Tiger) on {=str}", CORE);
    let Ok(tiger) = (TigerConfig {
        accumulation: ACCUMULATION,
        ..TigerConfig::new(LR)
    })
    .build() else {
        defmt::error!("invalid Tiger config");
        exit(false)
    };
    // The trainer lives in a static (zeroed at reset) and is loaded in place: building it on
    // the stack would copy its 11 KB at least once, more than the Cortex-M0 can spare.
    static mut TRAINER: Trainer = Backprop::new(digits_model());
    // SAFETY: the only reference to TRAINER, taken once in `main`, which never returns.
    let tr = unsafe { &mut *core::ptr::addr_of_mut!(TRAINER) };
    load_or_exit(&mut tr.model);
    let mut sat = Saturations::default();
    bench_mark(0);
    let before = correct(|x, s| tr.predict(x, s), &mut sat);
    bench_mark(1);
    let mut ok = true;
    for epoch in 0..EPOCHS {
        bench_mark(2);
        for (x, &y) in STREAM_X.iter().zip(&STREAM_Y) {
            ok &= tr.train(&tiger, &reading(x), y as usize).is_ok();
        }
        bench_mark(3);
        if epoch == 0 {
            // A sensor glitch: NaN on every pixel. Tiger's guard must fire, not a fault.
            ok &= tr.train(&tiger, &[f32::NAN; IN], 0) == Ok(margay::optim::Outcome::Guarded);
        }
    }
    let after = correct(|x, s| tr.predict(x, s), &mut sat);
    // A reading beyond the fixed-point range: saturates (counted on the M0), never faults.
    tr.predict(&[HUGE_READING; IN], &mut sat);
    tr.stats.saturated += sat.0;
    let fingerprint = tr.fingerprint();
    if !ok {
        defmt::error!("a training step failed or the NaN glitch was not guarded");
    }
    ok &= report(
        "backprop",
        before,
        after,
        tr.stats,
        fingerprint,
        &HOST,
        MARGIN_PERCENT,
        Trainer::PLAN,
        core::mem::size_of::<Trainer>(),
        STACK_ALLOWANCE,
    );
    defmt::println!(
        "digits {=str}: {=str}",
        CORE,
        if ok { "PASS" } else { "FAIL" }
    );
    exit(ok)
}
