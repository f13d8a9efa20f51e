//! How far RoPE's cos/sin drift from exact at long positions: margay's integer-turn angles
//! against the f32 `pos·θ` path of Hugging Face (`inv_freq` and positions in f32, one f32
//! product, then an accurate cos/sin), both measured against a double-double reference.
//!
//! `cargo run --release -p margay-tests --example rope_accuracy` prints the table in
//! README.md; `tests/tests/rope.rs` asserts the bounds on the same numbers.

use margay::rope::{Direction, RopeConfig};

/// 2π as a double-double (hi + lo).
const TAU_HI: f64 = core::f64::consts::TAU;
const TAU_LO: f64 = 2.449_293_598_294_706_4e-16;

/// cos and sin of `pos·θ` with the product kept exactly (two-product) and the reduction by
/// 2π done in double-double: error ≲ 1e-15 rad at |pos| ≤ 2³¹.
pub fn exact_cos_sin(pos: i32, theta: f64) -> (f64, f64) {
    let p = pos as f64 * theta;
    let e = libm::fma(pos as f64, theta, -p);
    let k = libm::round(p / TAU_HI);
    let r = libm::fma(-k, TAU_HI, p) - k * TAU_LO + e;
    (libm::cos(r), libm::sin(r))
}

/// Worst |cos − exact| and |sin − exact| over the pairs of one position.
#[derive(Debug, Clone, Copy)]
pub struct AccuracyRow {
    /// The position.
    pub position: i32,
    /// margay (any path: table and on-the-fly are bit-equal).
    pub margay: f64,
    /// The Hugging Face-style f32 angle.
    pub hf_f32: f64,
    /// Worst |x′ − exact| over a head of ones rotated by margay at this position.
    pub margay_output: f64,
}

/// Measures head dim `r` (full rotation, base `base`) at `positions`.
pub fn measure(rotary_dim: usize, base: f64, positions: &[i32]) -> Vec<AccuracyRow> {
    let rope = RopeConfig::new(rotary_dim)
        .base(base)
        .build::<256>()
        .expect("valid config");
    let pairs = rotary_dim / 2;
    let thetas: Vec<f64> = rope.frequencies().inv_freq.to_vec();
    let mut cos = vec![0.0_f32; pairs];
    let mut sin = vec![0.0_f32; pairs];
    positions
        .iter()
        .map(|&pos| {
            rope.cos_sin(pos, &mut cos, &mut sin)
                .expect("lengths match");
            let mut margay = 0.0_f64;
            let mut hf = 0.0_f64;
            let mut x = vec![1.0_f32; rotary_dim];
            rope.apply(&mut x, pos, Direction::Forward)
                .expect("length matches");
            let mut out = 0.0_f64;
            for i in 0..pairs {
                let (ec, es) = exact_cos_sin(pos, thetas[i]);
                margay = margay
                    .max((cos[i] as f64 - ec).abs())
                    .max((sin[i] as f64 - es).abs());
                // Hugging Face: inv_freq = 1 / base^(2i/r) in f32, angle = f32(pos)·inv_freq.
                let inv32 = 1.0_f32 / libm::powf(base as f32, (2 * i) as f32 / rotary_dim as f32);
                let a32 = pos as f32 * inv32;
                hf = hf
                    .max((libm::cosf(a32) as f64 - ec).abs())
                    .max((libm::sinf(a32) as f64 - es).abs());
                // Half-split pair (i, i + r/2) of a vector of ones: (c − s, c + s).
                out = out
                    .max((x[i] as f64 - (ec - es)).abs())
                    .max((x[i + pairs] as f64 - (ec + es)).abs());
            }
            AccuracyRow {
                position: pos,
                margay,
                hf_f32: hf,
                margay_output: out,
            }
        })
        .collect()
}

/// The positions the issue asks about.
pub const POSITIONS: [i32; 5] = [1, 4095, 131_071, 1_048_575, i32::MAX];
