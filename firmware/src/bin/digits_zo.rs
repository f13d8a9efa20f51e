//! On-device fine-tuning of the digits classifier forward-only (zeroth-order), on margay's
//! engine: the same model, blob, stream and held-out samples as `digits`, but no backward
//! pass and no activations kept for one. Each step takes a batch of `ZO_BATCH` stream
//! samples, evaluates its loss at θ ± εz for `ZO_SAMPLES` directions z (regenerated from a
//! seed, never stored), and hands ĝ to Lion; after the first pass one batch holds a NaN
//! reading (the step is skipped, the weights restored). Samples go from flash into the
//! trainer's one input buffer as each forward pass needs them. Exits 0 only if
//! - accuracy rose by at least [`MARGIN_PERCENT`] points,
//! - every count and the fingerprint equal the host's run in the same format,
//! - the trainer's RAM is its plan (inference RAM + scratch + optimizer state: no backward
//!   buffers), the stack stays within [`STACK_ALLOWANCE`], and RAM is within the budget.
#![no_std]
#![no_main]

use cortex_m as _;
use cortex_m_rt::entry;
use defmt_semihosting as _;
use margay::nn::engine::ZoTrainer;
use margay::nn::Saturations;
use margay::optim::{Directions, LionConfig, ZoConfig};

#[allow(dead_code)]
#[path = "../digits_common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../rt.rs"]
mod rt;
use common::*;
use rt::{bench_mark, exit};

/// The least accuracy gain (percentage points); the host measures 24.9 in both formats.
const MARGIN_PERCENT: usize = 15;

/// Stack the run may use (call frames; the plan keeps every buffer in the trainer).
const STACK_ALLOWANCE: usize = 2560;

type Trainer = ZoTrainer<DigitsModel<'static, T>, T, SCRATCH, STATE>;

#[entry]
fn main() -> ! {
    defmt::println!("digits (forward-only, SPSA + Lion) on {=str}", CORE);
    let zo = ZoConfig {
        eps: ZO_EPS,
        samples: ZO_SAMPLES,
        directions: Directions::Rademacher,
        seed: SEED as u64,
        ..ZoConfig::default()
    }
    .build();
    let lion = LionConfig::new(ZO_LR).build();
    let (Ok(zo), Ok(lion)) = (zo, lion) else {
        defmt::error!("invalid ZO or Lion config");
        exit(false)
    };
    static mut TRAINER: Trainer = ZoTrainer::new(digits_model());
    // SAFETY: the only reference to TRAINER, taken once in `main`, which never returns.
    let tr = unsafe { &mut *core::ptr::addr_of_mut!(TRAINER) };
    load_or_exit(&mut tr.model);
    let mut sat = Saturations::default();
    bench_mark(0);
    let before = correct(|x, s| tr.predict(x, s), &mut sat);
    bench_mark(1);
    let mut ok = true;
    for epoch in 0..ZO_EPOCHS {
        bench_mark(2);
        for (xs, ys) in STREAM_X.chunks(ZO_BATCH).zip(STREAM_Y.chunks(ZO_BATCH)) {
            // Each sample goes from flash into the trainer's input buffer when a forward pass
            // needs it: no batch buffer.
            let r = tr.step_with(&zo, &lion, xs.len(), &mut |i, x| {
                *x = reading(&xs[i]);
                ys[i]
            });
            ok &= r.is_ok();
        }
        bench_mark(3);
        if epoch == 0 {
            // A sensor glitch inside a batch: the step is skipped, nothing faults.
            let r = tr.step_with(&zo, &lion, 2, &mut |i, x| {
                *x = if i == 0 {
                    reading(&STREAM_X[0])
                } else {
                    [f32::NAN; IN]
                };
                STREAM_Y[i]
            });
            ok &= matches!(r, Ok(s) if s.outcome == margay::optim::Outcome::Skipped);
        }
    }
    let after = correct(|x, s| tr.predict(x, s), &mut sat);
    tr.predict(&[HUGE_READING; IN], &mut sat);
    tr.stats.saturated += sat.0;
    let fingerprint = tr.fingerprint();
    if !ok {
        defmt::error!("a step failed or the NaN glitch was not skipped");
    }
    ok &= report(
        "forward-only",
        before,
        after,
        tr.stats,
        fingerprint,
        &HOST_ZO,
        MARGIN_PERCENT,
        Trainer::PLAN,
        core::mem::size_of::<Trainer>(),
        STACK_ALLOWANCE,
    );
    defmt::println!(
        "digits-zo {=str}: {=str}",
        CORE,
        if ok { "PASS" } else { "FAIL" }
    );
    exit(ok)
}
