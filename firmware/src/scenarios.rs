//! Deterministic quantizer and fixed-point workloads, compiled twice from this one file: by
//! `build.rs` on the host (which records every emitted word) and into the firmware (which
//! compares every emitted word with the host's). Inputs come from a seeded SplitMix64 and
//! basic f32 arithmetic, so both sides see the same bits.

use half::{bf16, f16};
use margay::math::SplitMix64;
use margay::optim::{
    AdjustLr, DirectionSource, Directions, Estimator, LionConfig, MuonConfig, Optimizer,
    Perturbation, SgdConfig, Stage, TensorSpec, ZoConfig,
};
use margay::quant::{
    dot_i8, kmeans_pp, quantize_rows, to_bf16, to_f16, to_fixed, FsqConfig, FsqVariant, LfqConfig,
    Requantize, Rounding, Scalar, Tanh, VqConfig, VqState, I16F16, I8F24,
};
use margay::rope::{
    AxialConfig, Direction, Layout, Llama3, Positions, RopeConfig, RopeTable, Scaling, Yarn,
};

/// A workload: emits the words the two sides must agree on.
pub type Scenario = (&'static str, fn(&mut dyn FnMut(u32)));

/// Every workload, in order.
pub const SCENARIOS: [Scenario; 10] = [
    (
        "fsq encode/decode [8,5,5,5] and [7,5,5,5,5], three tanh modes",
        fsq_standard,
    ),
    (
        "fsq symmetric [2,4,3], libm tanh and thresholds",
        fsq_symmetric,
    ),
    ("int8 quantize, dot products, requantization", int8),
    ("bf16/f16/fixed conversions, three roundings", conversions),
    ("lion in I8F24, I16F16 and bf16 (Scalar)", fixed_lion),
    ("vq k-means++ init and EMA updates", vq),
    ("lfq entropy and gradient", lfq),
    (
        "rope: layouts, partial, scalings, long positions, tables, 2D/3D",
        rope,
    ),
    (
        "muon: 4x6, 6x4, 1x5, 8x2, 3x3 steps (Nesterov on/off, both lr adjustments)",
        muon,
    ),
    (
        "zo: counter z, SPSA one/two-sided, q = 2, fused SGD / momentum / sign",
        zo,
    ),
];

/// `unwrap` without the error's `Debug`: an `unwrap` links every error type's formatter (and
/// with them core's float formatting, ~10 KiB) into the firmware, whose panic handler never
/// prints them anyway.
pub trait Must<T> {
    /// The value, or a panic with a fixed message.
    fn must(self) -> T;
}

impl<T, E> Must<T> for Result<T, E> {
    #[inline(always)]
    fn must(self) -> T {
        match self {
            Ok(v) => v,
            Err(_) => panic!("a margay call failed"),
        }
    }
}

impl<T> Must<T> for Option<T> {
    #[inline(always)]
    fn must(self) -> T {
        match self {
            Some(v) => v,
            None => panic!("a margay call returned None"),
        }
    }
}

/// Words per compared block (see `build.rs`).
pub const BLOCK: usize = 32;

/// FNV-1a over a block of emitted words.
pub fn block_hash(words: impl Iterator<Item = u32>) -> u32 {
    hash(words)
}

fn hash(words: impl Iterator<Item = u32>) -> u32 {
    words.fold(0x811c_9dc5, |h, w| (h ^ w).wrapping_mul(0x0100_0193))
}

/// Vector `v` of `D` values in [-4, 4), with specials every so often.
fn inputs<const D: usize>(rng: &mut SplitMix64, v: usize) -> [f32; D] {
    let mut z = [0.0f32; D];
    for (j, x) in z.iter_mut().enumerate() {
        *x = match (v * D + j) % 97 {
            13 => f32::NAN,
            29 => f32::INFINITY,
            41 => f32::NEG_INFINITY,
            53 => 0.0,
            _ => (rng.next_f32() - 0.5) * 8.0,
        };
    }
    z
}

fn fsq_standard(emit: &mut dyn FnMut(u32)) {
    let mut rng = SplitMix64::new(0xF5A0);
    for tanh in [Tanh::Accurate, Tanh::Fast, Tanh::Thresholds] {
        fsq_standard_with(tanh, &mut rng, emit);
    }
}

/// One tanh mode of [`fsq_standard`]; out of line so the modes share one copy of the code
/// (the Cortex-M0's flash is nearly full).
#[inline(never)]
fn fsq_standard_with(tanh: Tanh, rng: &mut SplitMix64, emit: &mut dyn FnMut(u32)) {
    let a = FsqConfig {
        tanh,
        ..FsqConfig::new([8, 5, 5, 5])
    }
    .build()
    .must();
    let b = FsqConfig {
        tanh,
        ..FsqConfig::new([7, 5, 5, 5, 5])
    }
    .build()
    .must();
    for v in 0..300 {
        let (codes, idx) = a.quantize(&inputs(rng, v));
        emit(idx);
        emit(hash(codes.iter().map(|c| c.to_bits())));
        emit(b.encode(&inputs(rng, v)));
    }
    for idx in 0..a.codebook_size() {
        let c = a.decode(idx).must();
        emit(hash(c.iter().map(|c| c.to_bits())) ^ a.encode(&c));
    }
}

fn fsq_symmetric(emit: &mut dyn FnMut(u32)) {
    for tanh in [Tanh::Accurate, Tanh::Thresholds] {
        fsq_symmetric_with(tanh, emit);
    }
}

/// One tanh mode of [`fsq_symmetric`], out of line (one copy of the code).
#[inline(never)]
fn fsq_symmetric_with(tanh: Tanh, emit: &mut dyn FnMut(u32)) {
    let mut rng = SplitMix64::new(0x5E77);
    let fsq = FsqConfig {
        variant: FsqVariant::Symmetric,
        tanh,
        ..FsqConfig::new([2, 4, 3])
    }
    .build()
    .must();
    for v in 0..200 {
        let z = inputs(&mut rng, v);
        let (codes, idx) = fsq.quantize(&z);
        emit(idx);
        emit(hash(codes.iter().map(|c| c.to_bits())));
        let g = fsq.vjp(&z, &[1.0, -0.5, 0.25]);
        emit(hash(g.iter().map(|c| c.to_bits())));
    }
}

fn int8(emit: &mut dyn FnMut(u32)) {
    const R: usize = 8;
    const C: usize = 24;
    let mut rng = SplitMix64::new(0x1178);
    let mut w = [0.0f32; R * C];
    for (i, x) in w.iter_mut().enumerate() {
        *x = match i / C {
            3 => 0.0,                           // an all-zero row: scale 0
            5 => ((i % C) as f32 - 11.5) * 0.5, // ties at .5 steps
            _ => (rng.next_f32() - 0.5) * (1 + i / C) as f32,
        };
    }
    let mut q = [0i8; R * C];
    let mut scales = [0.0f32; R];
    quantize_rows(&w, C, &mut q, &mut scales).must();
    for s in scales {
        emit(s.to_bits());
    }
    for chunk in q.chunks_exact(4) {
        emit(u32::from_le_bytes([
            chunk[0] as u8,
            chunk[1] as u8,
            chunk[2] as u8,
            chunk[3] as u8,
        ]));
    }
    let muls = [
        Requantize::new(0.0123).must(),
        Requantize::new(0.75).must(),
        Requantize::new(3.5).must(),
    ];
    for a in 0..R {
        for b in 0..R {
            let d = dot_i8(&q[a * C..(a + 1) * C], &q[b * C..(b + 1) * C]).must();
            emit(d as u32);
            for m in &muls {
                emit(m.apply(d) as u32);
            }
        }
    }
}

fn conversions(emit: &mut dyn FnMut(u32)) {
    let mut rng = SplitMix64::new(0xC0417);
    for i in 0..300 {
        let x = match i % 50 {
            7 => f32::MAX,
            8 => -1.0e-40,
            9 => 65_519.0,
            10 => 1.0 + 1.0 / 256.0,
            _ => (rng.next_f32() - 0.5) * [1e-3, 1.0, 300.0, 1e5][i % 4],
        };
        let r = rng.next_u64() as u32;
        for mode in [
            Rounding::NearestEven,
            Rounding::TowardZero,
            Rounding::Stochastic(r),
        ] {
            let b: bf16 = to_bf16(x, mode);
            let h: f16 = to_f16(x, mode);
            emit(b.to_bits() as u32 | (h.to_bits() as u32) << 16);
            emit(to_fixed::<I16F16>(x, mode).to_bits() as u32);
            emit(to_fixed::<I8F24>(x, mode).to_bits() as u32);
        }
    }
}

fn lion_in<S: Scalar>(emit: &mut dyn FnMut(u32), bits: fn(S) -> u32) {
    const N: usize = 32;
    let lion = LionConfig {
        weight_decay: 0.1,
        ..LionConfig::new(2e-3)
    }
    .build()
    .must();
    let mut rng = SplitMix64::new(0x110E);
    let mut p = [S::ZERO; N];
    for x in p.iter_mut() {
        *x = S::from_f32(rng.next_f32() - 0.5);
    }
    let mut m = [S::ZERO; N];
    for t in 1..=20 {
        let mut g = [S::ZERO; N];
        for x in g.iter_mut() {
            *x = S::from_f32((rng.next_f32() - 0.5) * 0.2);
        }
        lion.step_scalar(lion.at(t), &mut p, &g, &mut m).must();
    }
    for x in p.iter().chain(&m) {
        emit(bits(*x));
    }
}

fn fixed_lion(emit: &mut dyn FnMut(u32)) {
    lion_in::<I8F24>(emit, |x| x.to_bits() as u32);
    lion_in::<I16F16>(emit, |x| x.to_bits() as u32);
    lion_in::<bf16>(emit, |x| x.to_bits() as u32);
}

fn vq(emit: &mut dyn FnMut(u32)) {
    const K: usize = 8;
    const D: usize = 4;
    const ROWS: usize = 48;
    let vq = VqConfig {
        dead_threshold: 0.5,
        ..VqConfig::new()
    }
    .build::<K, D>()
    .must();
    let mut rng = SplitMix64::new(0x7171);
    let mut data = [0.0f32; ROWS * D];
    for (i, x) in data.iter_mut().enumerate() {
        *x = (rng.next_f32() - 0.5) * 2.0 + ((i / D) % 3) as f32;
    }
    let mut state = VqState::new([[0.0; D]; K]);
    kmeans_pp(&mut state.codebook, &data, &mut rng).must();
    for _ in 0..5 {
        let mut idx = [0u32; ROWS];
        vq.encode_rows(&state.codebook, &data, &mut idx).must();
        let loss = vq.loss(&state.codebook, &data, &idx).must();
        emit(loss.mse.to_bits());
        emit(loss.perplexity.to_bits());
        let stats = state.update(&vq, &data, &idx, &mut rng).must();
        emit(stats.dead | stats.restarted << 16);
        for x in &mut data {
            *x += (rng.next_f32() - 0.5) * 0.1;
        }
    }
    for e in state.codebook.iter().flatten() {
        emit(e.to_bits());
    }
}

fn lfq(emit: &mut dyn FnMut(u32)) {
    const D: usize = 6;
    const ROWS: usize = 16;
    let lfq = LfqConfig::new().build::<D>().must();
    let mut rng = SplitMix64::new(0x1F0);
    let mut z = [0.0f32; ROWS * D];
    for x in z.iter_mut() {
        *x = (rng.next_f32() - 0.5) * 0.02;
    }
    let mut scratch = [0.0f32; 1 << D];
    let e = lfq.entropy(&z, &mut scratch).must();
    for v in [e.per_sample, e.codebook, e.aux, e.loss] {
        emit(v.to_bits());
    }
    let mut g = [0.0f32; ROWS * D];
    lfq.entropy_grad(&z, &mut scratch, &mut g).must();
    for v in g {
        emit(v.to_bits());
    }
    for row in z.chunks_exact(D) {
        let mut v = [0.0f32; D];
        v.copy_from_slice(row);
        emit(lfq.encode(&v));
    }
}

fn rope(emit: &mut dyn FnMut(u32)) {
    let mut rng = SplitMix64::new(0x20FE);
    let configs = [
        RopeConfig::new(16),
        RopeConfig::new(16).layout(Layout::Interleaved),
        RopeConfig::new(24)
            .rotary_dim(8)
            .layout(Layout::Interleaved)
            .base(500_000.0),
        RopeConfig::new(16).scaling(Scaling::Yarn(Yarn::new(4.0, 4096))),
        RopeConfig::new(16)
            .base(500_000.0)
            .scaling(Scaling::Llama3(Llama3::LLAMA_3_1)),
        RopeConfig::new(16).scaling(Scaling::Ntk { factor: 8.0 }),
        RopeConfig::new(16).scaling(Scaling::Dynamic {
            factor: 2.0,
            max_position_embeddings: 2048,
            seq_len: 4096,
        }),
    ];
    for cfg in &configs {
        rope_case(cfg, &mut rng, emit);
    }
    let two = AxialConfig::two_d(16).base(100.0).build::<4>().must();
    let three = AxialConfig::new(28, [8, 8, 8]).build::<4>().must();
    for p in [[0, 0], [5, 9], [31, 17], [-3, 100_000]] {
        let mut x = [0.0f32; 28];
        for v in x.iter_mut() {
            *v = rng.next_f32() - 0.5;
        }
        two.apply(&mut x[..16], p, Direction::Forward).must();
        three
            .apply(&mut x, [p[0], p[1], p[0] ^ p[1]], Direction::Forward)
            .must();
        emit(hash(x.iter().map(|v| v.to_bits())));
    }
}

/// One RoPE config through every path (kept out of line: one copy in flash).
#[inline(never)]
fn rope_case(cfg: &RopeConfig, rng: &mut SplitMix64, emit: &mut dyn FnMut(u32)) {
    let positions = [0, 1, 7, 100, 4095, 131_071, 1_048_575, -5, i32::MAX];
    let bits = |x: &[f32]| hash(x.iter().map(|v| v.to_bits()));
    {
        let rope = cfg.build::<8>().must();
        let f = rope.frequencies();
        emit(hash(f.inv_freq.iter().flat_map(|v| {
            let b = v.to_bits();
            [b as u32, (b >> 32) as u32]
        })));
        emit(rope.attention_factor().to_bits());
        let d = cfg.head_dim;
        for &p in &positions {
            let mut x = [0.0f32; 24];
            for v in x.iter_mut() {
                *v = (rng.next_f32() - 0.5) * 6.0;
            }
            let x = &mut x[..d];
            rope.apply(x, p, Direction::Forward).must();
            emit(bits(x));
            rope.apply(x, p, Direction::Backward).must();
            emit(bits(x));
        }
        // A table of positions 100..108 against on-the-fly rows: the same bits.
        let table = RopeTable::<8, 8>::new(&rope, 100).must();
        let mut a = [0.0f32; 8 * 24];
        for v in a.iter_mut() {
            *v = rng.next_f32() - 0.5;
        }
        let a = &mut a[..8 * d];
        let mut b = [0.0f32; 8 * 24];
        b[..8 * d].copy_from_slice(a);
        table
            .apply_rows(a, Positions::From(100), Direction::Forward)
            .must();
        rope.apply_rows(&mut b[..8 * d], Positions::From(100), Direction::Forward)
            .must();
        emit((a == &b[..8 * d]) as u32);
        emit(bits(a));
        // Two heads of four positions, blocked: the same bits as rows one by one.
        let mut h = [0.0f32; 2 * 4 * 24];
        for v in h.iter_mut() {
            *v = rng.next_f32() - 0.5;
        }
        let h = &mut h[..2 * 4 * d];
        let mut r = [0.0f32; 2 * 4 * 24];
        r[..2 * 4 * d].copy_from_slice(h);
        rope.apply_heads(h, 2, Positions::From(-2), Direction::Forward)
            .must();
        for (k, row) in r[..2 * 4 * d].chunks_exact_mut(d).enumerate() {
            rope.apply(row, (k % 4) as i32 - 2, Direction::Forward)
                .must();
        }
        emit((h == &r[..2 * 4 * d]) as u32);
    }
}

/// Three Muon steps per shape (tall shapes take the transposed path; 1×5 and 8×2 are the
/// LoRA-like factors whose Gram matrix is 1×1 and 2×2), every parameter's bits emitted.
fn muon(emit: &mut dyn FnMut(u32)) {
    let mut rng = SplitMix64::new(0x4d75_6f6e);
    let shapes = [
        (4usize, 6usize, true, AdjustLr::Original),
        (6, 4, false, AdjustLr::MatchRmsAdamW),
        (1, 5, true, AdjustLr::Original),
        (8, 2, true, AdjustLr::MatchRmsAdamW),
        (3, 3, false, AdjustLr::Original),
    ];
    for (rows, cols, nesterov, adjust_lr) in shapes {
        let muon = MuonConfig {
            nesterov,
            adjust_lr,
            ..MuonConfig::new(0.02)
        }
        .build()
        .must();
        let spec = TensorSpec::matrix(rows, cols);
        let n = rows * cols;
        let mut p = [0.0f32; 24];
        let mut g = [0.0f32; 24];
        let mut state = [0.0f32; 2 * 24 + 24 + 2 * 16];
        let len = muon.state_len(&spec);
        for x in p[..n].iter_mut() {
            *x = rng.next_f32() - 0.5;
        }
        for t in 1..=3 {
            for x in g[..n].iter_mut() {
                *x = (rng.next_f32() - 0.5) * 4.0;
            }
            muon.update(
                &(),
                muon.at(t),
                &spec,
                &mut p[..n],
                &mut g[..n],
                &mut state[..len],
            )
            .must();
            for x in &p[..n] {
                emit(x.to_bits());
            }
        }
    }
}

/// `Σₖ aₖ·Σᵢ (θᵢ − ¼)²` over two tensors (a = ½, ¾), in index order.
#[inline(never)]
fn zo_loss(p: &mut [&mut [f32]]) -> f32 {
    let mut s = 0.0f32;
    let mut a = 0.5f32;
    for t in p.iter() {
        let mut part = 0.0f32;
        for &x in t.iter() {
            let d = x - 0.25;
            part += d * d;
        }
        s += a * part;
        a += 0.25;
    }
    s
}

/// Counter directions (both kinds, at offsets inside and across 64-value words), then four
/// zeroth-order steps per configuration on two tensors, projected gradients, losses and
/// parameters emitted.
fn zo(emit: &mut dyn FnMut(u32)) {
    let mut z = [0.0f32; 70];
    for kind in [Directions::Rademacher, Directions::Gaussian] {
        let c = margay::optim::CounterZ::new(0x5eed, 3, kind);
        for start in [0usize, 1, 63, 1000] {
            c.fill(1, 2, start, &mut z);
            for x in &z {
                emit(x.to_bits());
            }
        }
    }
    let mut rng = SplitMix64::new(0x5a50);
    let configs = [
        (
            Directions::Rademacher,
            Perturbation::TwoSided,
            Estimator::Projected,
            0.0f32,
        ),
        (
            Directions::Gaussian,
            Perturbation::OneSided,
            Estimator::Projected,
            0.9,
        ),
        (
            Directions::Gaussian,
            Perturbation::TwoSided,
            Estimator::Sign,
            0.0,
        ),
    ];
    for (directions, perturbation, estimator, momentum) in configs {
        let zo = ZoConfig {
            eps: 1e-2,
            samples: 2,
            directions,
            perturbation,
            estimator,
            seed: 7,
        }
        .build()
        .must();
        let sgd = SgdConfig {
            momentum,
            weight_decay: 0.01,
            ..SgdConfig::new(0.02)
        }
        .build()
        .must();
        let (mut a, mut b) = ([0.0f32; 67], [0.0f32; 9]);
        for x in a.iter_mut().chain(b.iter_mut()) {
            *x = rng.next_f32() * 2.0 - 1.0;
        }
        let (mut ma, mut mb) = ([0.0f32; 67], [0.0f32; 9]);
        let la = sgd.momentum_len(67);
        let lb = sgd.momentum_len(9);
        for t in 1..=4 {
            let dirs = zo.directions(t);
            let est = zo.estimate(&dirs, &mut [&mut a[..], &mut b[..]], zo_loss);
            for x in est.projected() {
                emit(x.to_bits());
            }
            for [fp, fm] in est.losses() {
                emit(fp.to_bits());
                emit(fm.to_bits());
            }
            est.sgd_step(&dirs, &sgd, sgd.at(t), 0, &mut a, &mut ma[..la])
                .must();
            est.sgd_step(&dirs, &sgd, sgd.at(t), 1, &mut b, &mut mb[..lb])
                .must();
            for x in a.iter().chain(b.iter()) {
                emit(x.to_bits());
            }
        }
    }
}
