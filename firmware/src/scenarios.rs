//! Deterministic quantizer and fixed-point workloads, compiled twice from this one file: by
//! `build.rs` on the host (which records every emitted word) and into the firmware (which
//! compares every emitted word with the host's). Inputs come from a seeded SplitMix64 and
//! basic f32 arithmetic, so both sides see the same bits.

use half::{bf16, f16};
use margay::math::SplitMix64;
use margay::optim::LionConfig;
use margay::quant::{
    dot_i8, kmeans_pp, quantize_rows, to_bf16, to_f16, to_fixed, FsqConfig, FsqVariant, LfqConfig,
    Requantize, Rounding, Scalar, Tanh, VqConfig, VqState, I16F16, I8F24,
};

/// A workload: emits the words the two sides must agree on.
pub type Scenario = (&'static str, fn(&mut dyn FnMut(u32)));

/// Every workload, in order.
pub const SCENARIOS: [Scenario; 7] = [
    (
        "fsq encode/decode [8,5,5,5] and [7,5,5,5,5], both tanh paths",
        fsq_standard,
    ),
    ("fsq symmetric [2,4,3]", fsq_symmetric),
    ("int8 quantize, dot products, requantization", int8),
    ("bf16/f16/fixed conversions, three roundings", conversions),
    ("lion in I8F24, I16F16 and bf16 (Scalar)", fixed_lion),
    ("vq k-means++ init and EMA updates", vq),
    ("lfq entropy and gradient", lfq),
];

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
    for tanh in [Tanh::Accurate, Tanh::Fast] {
        let a = FsqConfig {
            tanh,
            ..FsqConfig::new([8, 5, 5, 5])
        }
        .build()
        .unwrap();
        let b = FsqConfig {
            tanh,
            ..FsqConfig::new([7, 5, 5, 5, 5])
        }
        .build()
        .unwrap();
        for v in 0..300 {
            let (codes, idx) = a.quantize(&inputs(&mut rng, v));
            emit(idx);
            emit(hash(codes.iter().map(|c| c.to_bits())));
            emit(b.encode(&inputs(&mut rng, v)));
        }
        for idx in 0..a.codebook_size() {
            let c = a.decode(idx).unwrap();
            emit(hash(c.iter().map(|c| c.to_bits())) ^ a.encode(&c));
        }
    }
}

fn fsq_symmetric(emit: &mut dyn FnMut(u32)) {
    let mut rng = SplitMix64::new(0x5E77);
    let fsq = FsqConfig {
        variant: FsqVariant::Symmetric,
        ..FsqConfig::new([2, 4, 3])
    }
    .build()
    .unwrap();
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
    quantize_rows(&w, C, &mut q, &mut scales).unwrap();
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
        Requantize::new(0.0123).unwrap(),
        Requantize::new(0.75).unwrap(),
        Requantize::new(3.5).unwrap(),
    ];
    for a in 0..R {
        for b in 0..R {
            let d = dot_i8(&q[a * C..(a + 1) * C], &q[b * C..(b + 1) * C]).unwrap();
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
    .unwrap();
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
        lion.step_scalar(lion.at(t), &mut p, &g, &mut m).unwrap();
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
    .unwrap();
    let mut rng = SplitMix64::new(0x7171);
    let mut data = [0.0f32; ROWS * D];
    for (i, x) in data.iter_mut().enumerate() {
        *x = (rng.next_f32() - 0.5) * 2.0 + ((i / D) % 3) as f32;
    }
    let mut state = VqState::new([[0.0; D]; K]);
    kmeans_pp(&mut state.codebook, &data, &mut rng).unwrap();
    for _ in 0..5 {
        let mut idx = [0u32; ROWS];
        vq.encode_rows(&state.codebook, &data, &mut idx).unwrap();
        let loss = vq.loss(&state.codebook, &data, &idx).unwrap();
        emit(loss.mse.to_bits());
        emit(loss.perplexity.to_bits());
        let stats = state.update(&vq, &data, &idx, &mut rng).unwrap();
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
    let lfq = LfqConfig::new().build::<D>().unwrap();
    let mut rng = SplitMix64::new(0x1F0);
    let mut z = [0.0f32; ROWS * D];
    for x in z.iter_mut() {
        *x = (rng.next_f32() - 0.5) * 0.02;
    }
    let mut scratch = [0.0f32; 1 << D];
    let e = lfq.entropy(&z, &mut scratch).unwrap();
    for v in [e.per_sample, e.codebook, e.aux, e.loss] {
        emit(v.to_bits());
    }
    let mut g = [0.0f32; ROWS * D];
    lfq.entropy_grad(&z, &mut scratch, &mut g).unwrap();
    for v in g {
        emit(v.to_bits());
    }
    for row in z.chunks_exact(D) {
        let mut v = [0.0f32; D];
        v.copy_from_slice(row);
        emit(lfq.encode(&v));
    }
}
