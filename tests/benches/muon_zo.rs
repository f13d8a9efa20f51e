//! `cargo bench -p margay-tests --bench muon_zo [-- ROUNDS]`
//!
//! - Newton–Schulz (`Muon::orthogonalize`, 5 quintic steps, f32) on 128×128, 128×512 and
//!   768×768 matrices, one thread, milliseconds per call (median over rounds) and GFLOP/s
//!   counted as torch counts the iteration (2·r²·c for XXᵀ, 2·r³ for A², 2·r²·c for B·X per step);
//!   `scripts/bench-muon-zo.sh` adds torch's stock orthogonalization (bf16) and the same
//!   iteration in torch f32, in the same invocation, and the ratios.
//! - Regenerating z (`CounterZ::fill`) for 1 M parameters: ns per parameter, Rademacher and
//!   Gaussian, beside an in-place pass over the same 4 MiB (the memory limit).
//!
//! The SIMD level in use is printed first.

use margay::optim::{CounterZ, DirectionSource, Directions, MuonConfig};
use margay::simd::level;
use margay_tests::timing::{bench_data, in_place_pass, median};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    println!("simd level: {:?}", level());
    let muon = MuonConfig::new(0.02).build().unwrap();
    for (rows, cols) in [(128usize, 128usize), (128, 512), (768, 768)] {
        let n = rows * cols;
        let u = bench_data(n);
        let mut x = vec![0.0f32; n];
        let mut scratch = vec![0.0f32; margay::optim::ns_scratch_len(rows, cols)];
        let mut times = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            muon.orthogonalize(black_box(&u), rows, cols, &mut x, &mut scratch)
                .unwrap();
            times.push(t.elapsed().as_secs_f64());
            black_box(&x);
        }
        let (r, c) = (rows.min(cols) as f64, rows.max(cols) as f64);
        let flops = 5.0 * (4.0 * r * r * c + 2.0 * r * r * r);
        let t = median(&mut times);
        println!(
            "newton-schulz {rows}x{cols} margay f32 {:.3} ms {:.1} GFLOP/s",
            t * 1e3,
            flops / t / 1e9
        );
    }
    let n = 1 << 20;
    let mut z = vec![0.0f32; n];
    let mut buf = bench_data(n);
    let (mut tr, mut tg, mut tm) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds.max(5) {
        let t = Instant::now();
        in_place_pass(&mut buf, 1.000_001);
        tm.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        CounterZ::new(1, round as u64, Directions::Rademacher).fill(0, 0, 0, &mut z);
        tr.push(t.elapsed().as_secs_f64());
        black_box(&z);
        let t = Instant::now();
        CounterZ::new(1, round as u64, Directions::Gaussian).fill(0, 0, 0, &mut z);
        tg.push(t.elapsed().as_secs_f64());
        black_box(&z);
    }
    let ns = |t: &mut Vec<f64>| median(t) / n as f64 * 1e9;
    let mem = ns(&mut tm);
    println!("z in-place pass (memory limit) {mem:.3} ns/param");
    let r = ns(&mut tr);
    println!(
        "z rademacher {r:.3} ns/param ({:.2}x the memory limit)",
        r / mem
    );
    let g = ns(&mut tg);
    println!(
        "z gaussian {g:.3} ns/param ({:.2}x the memory limit)",
        g / mem
    );
}
