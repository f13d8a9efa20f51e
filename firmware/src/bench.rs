//! Instruction-count regions and memory figures.
//!
//! Each region sits between two calls of [`bench_mark`]; the QEMU plugin in
//! `tools/qemu-insncount.c` prints the instruction count at every call, so a region's cost
//! is the difference (`insncount.sh` does the arithmetic).

use crate::rt::bench_mark;
use crate::scenarios::Must;
use half::bf16;
use margay::optim::{
    AdamWConfig, Chain, ClipConfig, ClipForm, CounterZ, DirectionSource, Directions, GradHealth,
    LionConfig, MuonConfig, Optimizer, SgdConfig, Stage, TensorSpec, TigerConfig, ZoConfig,
};
use margay::quant::{dot_i8, FsqConfig, Tanh};
use margay::rope::{Direction, Positions, RopeConfig, RopeTable};

/// FSQ vectors per encode region.
pub const FSQ_VECTORS: usize = 64;

/// Elements per benchmarked step.
pub const N: usize = 256;

/// RoPE bench: rows of `ROPE_DIM` (all rotated, half-split) at positions 0..ROPE_ROWS.
pub const ROPE_DIM: usize = 32;
/// Rows per RoPE region (`ROPE_ROWS · ROPE_DIM` elements).
pub const ROPE_ROWS: usize = 8;

struct Buffers {
    p: [f32; N],
    g: [f32; N],
    m: [f32; N],
}

/// Runs each region once; regions end at marks 1 Tiger f32 (own NaN scan), 2 Tiger f32
/// given the gradients' health (the kernel alone), 3 Tiger bf16, 4 Lion, 5 AdamW, 6 FSQ
/// [8,5,5,5] encode with libm tanh, 9 the same with the fast tanh, 11 with thresholds
/// (`FSQ_VECTORS` vectors each), 13 an int8 dot product of `N` elements, 15 and 16 RoPE
/// from a table and on the fly, 18 Tiger f32 and 19 Lion through the optimizer interface, 20
/// a clip → Tiger chain round (observe, finish, update).
pub fn run() {
    let mut b = Buffers {
        p: [0.0; N],
        g: [0.0; N],
        m: [0.0; N],
    };
    for i in 0..N {
        // Deterministic, sign-mixed inputs without transcendental calls.
        let x = ((i * 7919) % 1000) as f32 / 500.0 - 1.0;
        b.p[i] = x;
        b.g[i] = 0.5 - x * x;
        b.m[i] = 0.1 * x;
    }
    let tiger = TigerConfig::new(1e-3).build().must();
    let lion = LionConfig::new(1e-4).build().must();
    let adamw = AdamWConfig::new(1e-3).build().must();
    let mut mb = [bf16::ZERO; N];
    let mut v = [0.0f32; N];

    bench_mark(0);
    let _ = core::hint::black_box(tiger.step_array(tiger.at(1), &mut b.p, &b.g, &mut b.m));
    bench_mark(1);
    let health = core::hint::black_box(GradHealth::FINITE);
    let _ = core::hint::black_box(tiger.step_with_health(
        tiger.at(1),
        health,
        &mut b.p,
        &b.g,
        &mut b.m,
    ));
    bench_mark(2);
    let _ = core::hint::black_box(tiger.step_array(tiger.at(1), &mut b.p, &b.g, &mut mb));
    bench_mark(3);
    lion.step_array(lion.at(1), &mut b.p, &b.g, &mut b.m);
    bench_mark(4);
    adamw.step_array(adamw.at(1), &mut b.p, &b.g, &mut b.m, &mut v);
    bench_mark(5);
    let fsq_sums = fsq_regions(&b.g[..FSQ_VECTORS * 4]);
    let mut qa = [0i8; N];
    let mut qb = [0i8; N];
    for i in 0..N {
        qa[i] = (i as i32 * 37 % 255 - 127) as i8;
        qb[i] = (i as i32 * 91 % 255 - 127) as i8;
    }
    let (qa, qb) = core::hint::black_box((&qa, &qb));
    bench_mark(12);
    let (qa, qb) = core::hint::black_box((qa, qb));
    let dot = core::hint::black_box(dot_i8(qa, qb));
    bench_mark(13);
    let rope = RopeConfig::new(ROPE_DIM).build::<{ ROPE_DIM / 2 }>().must();
    let table = RopeTable::<ROPE_ROWS, { ROPE_DIM / 2 }>::new(&rope, 0).must();
    let mut rows = [0.0f32; ROPE_ROWS * ROPE_DIM];
    rows.copy_from_slice(&b.g[..ROPE_ROWS * ROPE_DIM]);
    let rows = core::hint::black_box(&mut rows);
    bench_mark(14);
    table
        .apply_rows(
            core::hint::black_box(&mut rows[..]),
            Positions::From(0),
            Direction::Forward,
        )
        .must();
    bench_mark(15);
    rope.apply_rows(
        core::hint::black_box(&mut rows[..]),
        Positions::From(0),
        Direction::Backward,
    )
    .must();
    bench_mark(16);
    core::hint::black_box(&rows);
    interface_regions(&mut b);
    defmt::println!(
        "bench: fsq index sum {=u32} / {=u32} / {=u32} (accurate / fast / thresholds), dot {=i32}",
        fsq_sums[0],
        fsq_sums[1],
        fsq_sums[2],
        dot.unwrap_or(0)
    );
    let checksum = b.p.iter().fold(0u32, |a, x| a.rotate_left(5) ^ x.to_bits());
    defmt::println!(
        "bench: {=usize} elements per region, checksum {=u32:#010x}",
        N,
        checksum
    );
}

/// Marks 17 to 20 (17: set-up done): the steps of marks 1 and 4 through `Optimizer::update` (what generic code
/// calls), and a `Chain(clip, tiger)` round, whose clip pass hands Tiger the gradients'
/// health.
#[inline(never)]
fn interface_regions(b: &mut Buffers) {
    // Built here, as in `run`: the same configs, so the compiler knows as much about them in
    // both places (the direct regions' figures depend on it).
    let tiger = TigerConfig::new(1e-3).build().must();
    let lion = LionConfig::new(1e-4).build().must();
    let spec = TensorSpec::vector(N);
    let clip = ClipConfig::new(f32::MAX, ClipForm::Min).build().must();
    let chain = Chain(clip, tiger);
    let (b, spec, chain) = core::hint::black_box((b, spec, chain));
    bench_mark(17);
    let _ =
        core::hint::black_box(tiger.update(&(), tiger.at(1), &spec, &mut b.p, &mut b.g, &mut b.m));
    bench_mark(18);
    let _ =
        core::hint::black_box(lion.update(&(), lion.at(1), &spec, &mut b.p, &mut b.g, &mut b.m));
    bench_mark(19);
    let mut round = chain.begin(0.0);
    chain.observe(&mut round, &spec, &b.g);
    chain.finish(&mut round);
    let _ = core::hint::black_box(chain.update(
        &round,
        chain.at(1),
        &spec,
        &mut b.p,
        &mut b.g,
        &mut b.m,
    ));
    bench_mark(20);
    zo_muon_regions(b);
}

/// Muon's test matrix: `MUON_ROWS × MUON_COLS` (a LoRA-like factor: tall, rank 4).
pub const MUON_ROWS: usize = 8;
/// See [`MUON_ROWS`].
pub const MUON_COLS: usize = 4;

/// Marks 21 to 25: regenerating `N` Rademacher then Gaussian directions (21→22, 22→23), one
/// MeZO step (two-sided, q = 1, Rademacher; a loss that reads one value, so the region is
/// the perturb / restore passes and the fused SGD update) on `N` parameters (23→24), one Muon
/// step on an 8×4 matrix (24→25).
#[inline(never)]
fn zo_muon_regions(b: &mut Buffers) {
    let zo = ZoConfig {
        directions: Directions::Rademacher,
        ..ZoConfig::new(1e-3)
    }
    .build()
    .must();
    let sgd = SgdConfig::new(1e-3).build().must();
    let muon = MuonConfig::new(0.02).build().must();
    let spec = TensorSpec::matrix(MUON_ROWS, MUON_COLS);
    let n = MUON_ROWS * MUON_COLS;
    let len = Stage::state_len(&muon, &spec);
    let (b, zo, sgd, muon, spec) = core::hint::black_box((b, zo, sgd, muon, spec));
    bench_mark(21);
    CounterZ::new(1, 1, Directions::Rademacher).fill(0, 0, 0, &mut b.g);
    core::hint::black_box(&b.g);
    bench_mark(22);
    CounterZ::new(1, 1, Directions::Gaussian).fill(0, 0, 0, &mut b.g);
    core::hint::black_box(&b.g);
    bench_mark(23);
    let dirs = zo.directions(1);
    let est = zo.estimate(&dirs, &mut [&mut b.p[..]], |p| p[0][0]);
    let _ =
        core::hint::black_box(est.sgd_step::<_, f32>(&dirs, &sgd, sgd.at(1), 0, &mut b.p, &mut []));
    bench_mark(24);
    let _ = core::hint::black_box(muon.update(
        &(),
        muon.at(1),
        &spec,
        &mut b.p[..n],
        &mut b.g[..n],
        &mut b.m[..len],
    ));
    bench_mark(25);
}

/// Marks 6 to 11: FSQ [8,5,5,5] encode of `FSQ_VECTORS` vectors with each tanh mode in turn
/// between marks 6 + 2m and 7 + 2m (one quantizer and one index buffer live at a time: the
/// Cortex-M0 has 16 KiB of RAM).
/// Returns each mode's index sum.
#[inline(never)]
fn fsq_regions(z: &[f32]) -> [u32; 3] {
    let mut sums = [0u32; 3];
    let mut idx = [0u32; FSQ_VECTORS];
    for (m, tanh) in [Tanh::Accurate, Tanh::Fast, Tanh::Thresholds]
        .into_iter()
        .enumerate()
    {
        let fsq = FsqConfig {
            tanh,
            ..FsqConfig::new([8, 5, 5, 5])
        }
        .build()
        .must();
        let z = core::hint::black_box(z);
        bench_mark(6 + 2 * m as u32);
        // Inputs pass through black_box after the mark, so the work cannot be hoisted above it.
        fsq.encode_rows(core::hint::black_box(z), &mut idx).must();
        // Pin the results before the mark so the work cannot move across it.
        core::hint::black_box(&mut idx);
        bench_mark(7 + 2 * m as u32);
        sums[m] = idx.iter().sum();
    }
    sums
}
