//! `cargo run --release -p margay-tests --example adamw_layout`
//!
//! Why the two-moment interface layout is `[m | gap | v]` (`margay::optim::moment_gap`):
//! AdamW on 64M parameters with `m` and `v` in separate buffers, and in one buffer with `v`
//! starting `n + off` floats after `m`, all in one process, round after round (ms per step;
//! the machine is shared, so compare within a round).

use margay::optim::{moment_gap, AdamWConfig};
use std::time::Instant;

fn main() {
    let n = 64usize << 20;
    let adamw = AdamWConfig::new(1e-3).build().unwrap();
    let g: Vec<f32> = (0..n).map(|i| ((i % 1000) as f32 - 500.0) * 1e-3).collect();
    let mut p = vec![0.5f32; n];
    let (mut m, mut v) = (vec![0.01f32; n], vec![0.01f32; n]);
    let offsets = [0usize, 16, 64, 256, 1024, moment_gap(n)];
    let mut mv = vec![0.01f32; 2 * n + 1024];
    println!(
        "AdamW, {n} parameters (moment_gap = {} floats here)",
        moment_gap(n)
    );
    for round in 0..5 {
        let t = Instant::now();
        adamw.step(adamw.at(1), &mut p, &g, &mut m, &mut v).unwrap();
        print!(
            "round {round}: separate {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        for off in offsets {
            let (x, y) = mv.split_at_mut(n + off);
            let t = Instant::now();
            adamw
                .step(adamw.at(1), &mut p, &g, &mut x[..n], &mut y[..n])
                .unwrap();
            print!(", +{off}: {:.1}", t.elapsed().as_secs_f64() * 1e3);
        }
        println!();
    }
}
