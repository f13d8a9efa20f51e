//! The cost and benefit of `RopeConfig::prefetch` on this machine, for choosing a distance:
//! `cargo run --release -p margay-tests --example rope_prefetch [-- REPS [LAYOUT:FLOATS ...]]`
//! (layout `h` half-split or `i` interleaved; default `h:0 h:768 i:0 i:768`, 150 reps).
//!
//! `apply_heads_in` (512-position scratch) on a [32, 4096, 128] f32 tensor, every variant in
//! the same process, interleaved with an in-place pass (the memory limit). Each rep is 7
//! rounds; its ratio is median(pass) / median(variant). Reps are split by the pass's own
//! speed: "quiet" when within 15% of the fastest quarter of reps, else "busy" (other tenants
//! loading the memory). Prints the mean and the 10th percentile of each group.

use margay::rope::{Direction, Layout, Positions, RopeConfig};
use margay_tests::timing::{bench_data, in_place_pass, median};
use std::hint::black_box;
use std::time::Instant;

fn summary(name: &str, ratios: &[f64]) -> String {
    if ratios.is_empty() {
        return format!("{name}: -");
    }
    let mut r = ratios.to_vec();
    r.sort_by(|a, b| a.total_cmp(b));
    let mean = r.iter().sum::<f64>() / r.len() as f64;
    format!("{name}: mean {mean:.2}, p10 {:.2}", r[r.len() / 10])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(150);
    let mut specs: Vec<String> = args.collect();
    if specs.is_empty() {
        specs = ["h:0", "h:768", "i:0", "i:768"].map(String::from).to_vec();
    }
    let (heads, seq, d) = (32, 4096, 128);
    let ropes: Vec<_> = specs
        .iter()
        .map(|s| {
            let (layout, floats) = s.split_once(':').expect("LAYOUT:FLOATS, e.g. h:768");
            let layout = if layout == "i" {
                Layout::Interleaved
            } else {
                Layout::HalfSplit
            };
            let floats: usize = floats.parse().expect("FLOATS is a number");
            RopeConfig::new(d)
                .layout(layout)
                .prefetch(floats)
                .build::<64>()
                .unwrap()
        })
        .collect();
    let n = heads * seq * d;
    let mut x = bench_data(n);
    let mut scratch = vec![0.0f32; ropes[0].heads_scratch_len(512)];
    let mut limits = Vec::new();
    let mut ratios = vec![Vec::new(); ropes.len()];
    for _ in 0..reps {
        let mut t = vec![Vec::new(); ropes.len() + 1];
        for r in 0..7 {
            let dir = if r % 2 == 0 {
                Direction::Forward
            } else {
                Direction::Backward
            };
            let start = Instant::now();
            in_place_pass(black_box(&mut x), if r % 2 == 0 { 1.5 } else { 1.0 / 1.5 });
            t[0].push(start.elapsed().as_secs_f64());
            for (v, rope) in ropes.iter().enumerate() {
                let start = Instant::now();
                rope.apply_heads_in(
                    black_box(&mut x),
                    heads,
                    Positions::From(0),
                    dir,
                    &mut scratch,
                )
                .unwrap();
                t[v + 1].push(start.elapsed().as_secs_f64());
            }
        }
        let limit = median(&mut t[0]);
        limits.push(limit);
        for (v, tv) in t[1..].iter_mut().enumerate() {
            ratios[v].push(limit / median(tv));
        }
    }
    let mut sorted = limits.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let threshold = sorted[sorted.len() / 4] * 1.15;
    let quiet: Vec<bool> = limits.iter().map(|&l| l <= threshold).collect();
    let nq = quiet.iter().filter(|&&q| q).count();
    println!(
        "{reps} reps: {nq} quiet (pass within 15% of the fastest quarter, {:.3} ns/elem), {} busy",
        threshold * 1e9 / n as f64,
        reps - nq
    );
    for (spec, r) in specs.iter().zip(&ratios) {
        let pick = |want: bool| -> Vec<f64> {
            r.iter()
                .zip(&quiet)
                .filter(|(_, &q)| q == want)
                .map(|(&v, _)| v)
                .collect()
        };
        println!(
            "  {spec:<8} {} | {} | {}",
            summary("all", r),
            summary("quiet", &pick(true)),
            summary("busy", &pick(false))
        );
    }
}
