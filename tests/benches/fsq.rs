//! FSQ encode throughput on the host: ns per vector for levels [8, 5, 5, 5] over 1M
//! vectors, with libm's tanh and with the fast tanh (one thread, best of 7 runs; run
//! `scripts/bench-fsq.sh` to time vector-quantize-pytorch in the same run).
//!
//! `cargo bench -p margay-tests --bench fsq [-- VECTORS]`

use margay::math::SplitMix64;
use margay::quant::{FsqConfig, Tanh};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1 << 20);
    let mut rng = SplitMix64::new(42);
    // Roughly unit-scale latents: the sum of three uniforms on [-1, 1).
    let z: Vec<f32> = (0..n * 4)
        .map(|_| (0..3).map(|_| rng.next_f32() * 2.0 - 1.0).sum())
        .collect();
    let mut idx = vec![0u32; n];
    println!("fsq encode, levels [8, 5, 5, 5], {n} vectors, best of 7");
    let mut results = Vec::new();
    for (name, tanh) in [
        ("libm tanh", Tanh::Accurate),
        ("fast tanh", Tanh::Fast),
        ("thresholds", Tanh::Thresholds),
    ] {
        let fsq = FsqConfig {
            tanh,
            ..FsqConfig::new([8, 5, 5, 5])
        }
        .build()
        .unwrap();
        let mut best = f64::INFINITY;
        for _ in 0..7 {
            let t = Instant::now();
            fsq.encode_rows(black_box(&z), &mut idx).unwrap();
            black_box(&mut idx);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let ns = best * 1e9 / n as f64;
        let check = idx
            .iter()
            .fold(0u64, |a, &i| a.wrapping_mul(31).wrapping_add(i as u64));
        println!("margay {name:<10} {ns:8.2} ns/vector   (checksum {check:#x})");
        results.push(ns);
    }
    println!("fast/libm time ratio: {:.3}", results[1] / results[0]);
    println!("thresholds/libm time ratio: {:.3}", results[2] / results[0]);
}
