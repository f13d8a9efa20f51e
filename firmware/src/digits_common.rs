//! What the two digits binaries share (`digits`: backprop with Tiger; `digits-zo`:
//! forward-only): the model (the host's definition, `host/src/digits_model.rs`, included as
//! a user's crate would define its own), the data and the host's reference numbers (from
//! build.rs), the blob and the checks.

#[path = "../../host/src/digits_model.rs"]
mod model;
pub use model::{digits_model, DigitsModel, IN, SCRATCH};

use margay::nn::engine::{ModelBlob, Persist};
use margay::nn::Saturations;

/// The reference numbers from the host run (build.rs).
pub struct Host {
    pub before: usize,
    pub after: usize,
    pub samples: u32,
    pub updates: u32,
    pub guarded: u32,
    pub saturated: u32,
    pub fingerprint: u32,
}

include!(concat!(env!("OUT_DIR"), "/digits_data.rs"));

/// The model blob (`--features corrupt-blob`: one byte flipped, to prove the check).
pub static BLOB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/digits.mgyb"));

#[cfg(fixed_point)]
pub type T = margay::quant::I8F24;
#[cfg(not(fixed_point))]
pub type T = f32;

#[cfg(fixed_point)]
pub const CORE: &str = "Cortex-M0, I8F24 fixed point";
#[cfg(not(fixed_point))]
pub const CORE: &str = "Cortex-M4F, f32";

#[cfg(fixed_point)]
pub const RAM_BUDGET: usize = 16 * 1024;
#[cfg(not(fixed_point))]
pub const RAM_BUDGET: usize = 64 * 1024;

/// Trainable values: one optimizer-state value each (Tiger's and Lion's momentum).
pub const STATE: usize = <DigitsModel<'static, T> as margay::nn::engine::Train<T>>::PARAMS;

/// Basis points of the held-out set.
pub fn percent(n: usize) -> u32 {
    ((n * 10_000 + TEST_Y.len() / 2) / TEST_Y.len()) as u32
}

/// A sample's readings (pixel values as f32).
pub fn reading(x: &[u8; IN]) -> [f32; IN] {
    x.map(|p| p as f32)
}

/// Loads the blob into `model`, or exits non-zero naming the error.
pub fn load_or_exit<M: Persist<'static>>(model: &mut M) {
    if let Err(e) = ModelBlob::load(model, BLOB) {
        defmt::error!(
            "model blob rejected: {}; rebuild it with `cargo run --release -p margay-host -- digits pretrain`",
            e
        );
        super::rt::exit(false)
    }
}

/// Held-out samples `predict` classifies right.
pub fn correct(
    mut predict: impl FnMut(&[f32; IN], &mut Saturations) -> Option<usize>,
    sat: &mut Saturations,
) -> usize {
    TEST_X
        .iter()
        .zip(&TEST_Y)
        .filter(|(x, &y)| predict(&reading(x), sat) == Some(y as usize))
        .count()
}

/// Prints the run, compares it with the host's and checks the margin, the plan and the RAM
/// budget; returns whether everything held.
#[allow(clippy::too_many_arguments)]
pub fn report(
    mode: &str,
    before: usize,
    after: usize,
    stats: margay::nn::TrainStats,
    fingerprint: u32,
    host: &Host,
    margin: usize,
    plan: margay::nn::engine::Plan,
    trainer_bytes: usize,
    stack_allowance: usize,
) -> bool {
    let mut ok = true;
    defmt::println!(
        "{=str}: accuracy on {=usize} held-out mirrored samples: before {=u32}.{=u32:02}%, after {=u32}.{=u32:02}%",
        mode,
        TEST_Y.len(),
        percent(before) / 100,
        percent(before) % 100,
        percent(after) / 100,
        percent(after) % 100
    );
    defmt::println!(
        "trained on {=u32} samples: {=u32} updates, {=u32} guarded, {=u32} saturated; fingerprint {=u32:#010x}",
        stats.samples,
        stats.updates,
        stats.guarded,
        stats.saturated,
        fingerprint
    );
    if after < before + margin * TEST_Y.len() / 100 {
        defmt::error!("accuracy gain below the {=usize}-point margin", margin);
        ok = false;
    }
    if (
        before,
        after,
        stats.samples,
        stats.updates,
        stats.guarded,
        stats.saturated,
        fingerprint,
    ) != (
        host.before,
        host.after,
        host.samples,
        host.updates,
        host.guarded,
        host.saturated,
        host.fingerprint,
    ) {
        defmt::error!(
            "differs from the host run: host before {=usize} after {=usize} samples {=u32} updates {=u32} saturated {=u32} fingerprint {=u32:#010x}",
            host.before,
            host.after,
            host.samples,
            host.updates,
            host.saturated,
            host.fingerprint
        );
        ok = false;
    } else {
        defmt::println!("equal to the host run bit for bit (counts and weight fingerprint)");
    }
    let m = super::rt::memory();
    let peak = m.statics + m.stack_used;
    defmt::println!(
        "flash {=usize} bytes (model blob {=usize}, data {=usize}); RAM peak {=usize} bytes = {=usize} static + {=usize} stack high-water (budget {=usize}; stack region {=usize})",
        m.flash,
        BLOB.len(),
        (IN + 1) * (STREAM_Y.len() + TEST_Y.len()),
        peak,
        m.statics,
        m.stack_used,
        RAM_BUDGET,
        m.stack_size
    );
    defmt::println!(
        "memory plan {=usize} bytes (model {=usize} of which parameters {=usize}, output {=usize}, input {=usize}, backward {=usize}, scratch {=usize}, optimizer state {=usize}); trainer static {=usize} bytes; stack {=usize} of {=usize} allowed",
        plan.total(),
        plan.model,
        plan.params,
        plan.output,
        plan.input,
        plan.backward,
        plan.scratch,
        plan.state,
        trainer_bytes,
        m.stack_used,
        stack_allowance
    );
    // The trainer is the plan plus its step counter and counters; nothing large may sit on
    // the stack (the measured high-water mark) and everything must fit the board.
    if trainer_bytes > plan.total() + 32 || trainer_bytes < plan.total() {
        defmt::error!("the trainer's RAM is not its plan");
        ok = false;
    }
    if m.stack_used > stack_allowance {
        defmt::error!("stack above the plan's allowance");
        ok = false;
    }
    if peak > RAM_BUDGET {
        defmt::error!("RAM over budget");
        ok = false;
    }
    ok
}
