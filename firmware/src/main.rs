//! margay firmware: runs the optimizer golden cases on the emulated core, compares every
//! step with the host's result (bit for bit) and with the golden vector (its tolerance),
//! then measures instruction counts per parameter for the Tiger, Lion and AdamW steps.
//! Exits 0 (semihosting) only if every case matches.
#![no_std]
#![no_main]

use cortex_m as _;
use cortex_m_rt::entry;
use defmt_semihosting as _;
use margay::optim::{
    AdamWConfig, LionConfig, LrMode, Optimizer, StepError, TensorSpec, TigerConfig,
};

mod bench;
mod kernels;
mod rt;
mod scenarios;

use rt::exit;

use scenarios::SCENARIOS;
include!(concat!(env!("OUT_DIR"), "/host_words.rs"));

/// Runs one workload and compares its words with the host's, block by block (hashes).
fn run_scenario(i: usize) -> bool {
    let (name, run) = SCENARIOS[i];
    let (blocks, count) = HOST[i];
    let (mut at, mut bad) = (0usize, 0u32);
    let mut block = [0u32; scenarios::BLOCK];
    let check = |words: &[u32], first: usize, bad: &mut u32| {
        let want = blocks.get(first / scenarios::BLOCK).copied();
        if want != Some(scenarios::block_hash(words.iter().copied())) {
            if *bad == 0 {
                defmt::error!(
                    "{=str}: words {=usize}..{=usize} differ from the host (first word {=u32:#x})",
                    name,
                    first,
                    first + words.len(),
                    words[0]
                );
            }
            *bad += 1;
        }
    };
    run(&mut |w| {
        block[at % scenarios::BLOCK] = w;
        at += 1;
        if at % scenarios::BLOCK == 0 {
            check(&block, at - scenarios::BLOCK, &mut bad);
        }
    });
    if at % scenarios::BLOCK != 0 {
        let rest = at % scenarios::BLOCK;
        check(&block[..rest], at - rest, &mut bad);
    }
    if at != count {
        defmt::error!("{=str}: {=usize} words, host {=usize}", name, at, count);
        return false;
    }
    if bad == 0 {
        defmt::println!("  {=str}: {=usize} words equal to the host", name, at);
    }
    bad == 0
}

/// One golden case with the host's results (all f32 as bit patterns).
pub struct Case {
    name: &'static str,
    alg: Alg,
    n: usize,
    params: &'static [u32],
    grads: &'static [u32],
    expected: &'static [u32],
    host: &'static [u32],
    tol_abs: f32,
    tol_rel: f32,
}

/// The algorithm of a case.
pub enum Alg {
    AdamW(AdamWConfig),
    Lion(LionConfig),
    Tiger(TigerConfig),
}

include!(concat!(env!("OUT_DIR"), "/cases.rs"));

#[derive(Default)]
struct Tally {
    bit_exact: u32,
    in_tolerance: u32,
}

fn run_case(c: &Case, tally: &mut Tally) -> bool {
    let n = c.n;
    let mut p = [0.0f32; MAX_N];
    // Every optimizer's state for the case's one tensor, laid out by the interface.
    let mut state = [0.0f32; 2 * MAX_N];
    let spec = TensorSpec::vector(n);
    for (x, &b) in p.iter_mut().zip(c.params) {
        *x = f32::from_bits(b);
    }
    let mut g = [0.0f32; MAX_N];
    let steps = c.grads.len() / n;
    let mut ok = true;
    for t in 0..steps {
        for (x, &b) in g.iter_mut().zip(&c.grads[t * n..(t + 1) * n]) {
            *x = f32::from_bits(b);
        }
        let step = (t + 1) as u64;
        let (p, g) = (&mut p[..n], &mut g[..n]);
        let r = match &c.alg {
            Alg::AdamW(cfg) => cfg
                .build()
                .map(|o| interface_step(&o, step, &spec, p, g, &mut state)),
            Alg::Lion(cfg) => cfg
                .build()
                .map(|o| interface_step(&o, step, &spec, p, g, &mut state)),
            Alg::Tiger(cfg) => cfg
                .build()
                .map(|o| interface_step(&o, step, &spec, p, g, &mut state)),
        };
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                defmt::error!("{}: step {}: {}", c.name, step, e);
                return false;
            }
            Err(e) => {
                defmt::error!("{}: config: {}", c.name, e);
                return false;
            }
        }
        let host_row = &c.host[t * n..(t + 1) * n];
        let golden_row = &c.expected[t * n..(t + 1) * n];
        for (i, ((&y, &host), &e)) in p.iter().zip(host_row).zip(golden_row).enumerate() {
            let e = f32::from_bits(e);
            if y.to_bits() == host {
                tally.bit_exact += 1;
            } else {
                defmt::error!(
                    "{}: step {} [{}]: {=u32:#x} differs from host {=u32:#x}",
                    c.name,
                    step,
                    i,
                    y.to_bits(),
                    host
                );
                ok = false;
            }
            let within = if c.tol_abs == 0.0 && c.tol_rel == 0.0 {
                y.to_bits() == e.to_bits()
            } else {
                abs(y - e) <= c.tol_abs + c.tol_rel * abs(e)
            };
            if within {
                tally.in_tolerance += 1;
            } else {
                defmt::error!("{}: step {} [{}]: {} vs golden {}", c.name, step, i, y, e);
                ok = false;
            }
        }
    }
    ok
}

/// One step of a golden case through the optimizer interface (what generic code calls).
fn interface_step<O: Optimizer>(
    o: &O,
    t: u64,
    spec: &TensorSpec,
    p: &mut [f32],
    g: &mut [f32],
    state: &mut [f32],
) -> Result<(), StepError> {
    let len = o.state_len(spec).min(state.len());
    o.update(&o.begin(0.0), o.at(t), spec, p, g, &mut state[..len])
        .map(|_| ())
}

fn abs(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
}

#[entry]
fn main() -> ! {
    let core = if cfg!(target_arch = "arm") && cfg!(target_abi = "eabihf") {
        "Cortex-M4F"
    } else {
        "Cortex-M0"
    };
    defmt::println!(
        "margay firmware on {=str}: {=usize} optimizer golden cases",
        core,
        CASES.len()
    );
    let mut tally = Tally::default();
    let (mut passed, mut failed) = (0u32, 0u32);
    for c in CASES {
        if run_case(c, &mut tally) {
            passed += 1;
            defmt::println!("PASS {=str}", c.name);
        } else {
            failed += 1;
            defmt::println!("FAIL {=str}", c.name);
        }
    }
    type Check = (&'static str, fn() -> bool);
    let checks: [Check; 2] = [
        (
            "tiger kernel vs scalar loop (special values)",
            kernels::tiger_kernel_matches_scalar_loop,
        ),
        (
            "tiger guard at every position",
            kernels::guard_sees_every_position,
        ),
    ];
    for (name, check) in checks {
        if check() {
            passed += 1;
            defmt::println!("PASS {=str}", name);
        } else {
            failed += 1;
            defmt::println!("FAIL {=str}", name);
        }
    }
    for (i, (name, _)) in SCENARIOS.iter().enumerate() {
        if run_scenario(i) {
            passed += 1;
            defmt::println!("PASS {=str}", name);
        } else {
            failed += 1;
            defmt::println!("FAIL {=str}", name);
        }
    }
    defmt::println!(
        "values: {=u32} bit-exact with the host, {=u32} within the golden tolerance",
        tally.bit_exact,
        tally.in_tolerance
    );
    bench::run();
    rt::report_memory();
    defmt::println!(
        "firmware {=str}: {=u32} passed, {=u32} failed",
        core,
        passed,
        failed
    );
    exit(failed == 0)
}
