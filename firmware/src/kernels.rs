//! The hand-written Cortex-M4F Tiger kernel against a plain Rust loop, bit for bit, on the
//! values that trip sign tricks: ±0, subnormal momenta (down to 2⁻¹⁴⁹), ±Inf and NaN
//! momenta, NaN weights, and a length that is not a multiple of the kernel's block of 12.
//! (On Cortex-M0 the same check runs the portable loop against itself.)

use crate::scenarios::Must;
use margay::math::sign;
use margay::optim::TigerConfig;

const N: usize = 37;

fn special(i: usize) -> f32 {
    const S: [f32; 12] = [
        0.0,
        -0.0,
        1.0e-45, // 2^-149, the smallest subnormal
        -1.0e-45,
        1.0e-39,
        -2.0e-38,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        3.0e38,
        -0.25,
        0.75,
    ];
    S[i % S.len()]
}

/// Returns `true` when the optimizer's step equals the reference loop bit for bit.
pub fn tiger_kernel_matches_scalar_loop() -> bool {
    let tiger = TigerConfig::new(1e-2).build().must();
    let cfg = *tiger.config();
    let mut p = [0.0f32; N];
    let mut g = [0.0f32; N];
    let mut m = [0.0f32; N];
    for i in 0..N {
        p[i] = if i == 5 {
            f32::NAN
        } else {
            0.5 - i as f32 / 16.0
        };
        // Finite gradients (the guard would otherwise fire), zero where the momentum is tiny
        // so that the new momentum stays subnormal.
        g[i] = match i % 12 {
            2..=5 => 0.0,
            _ => ((i * 7) % 11) as f32 / 10.0 - 0.5,
        };
        m[i] = special(i * 5 % 12 + i / 12);
    }
    let (mut pr, mut mr) = (p, m);
    let outcome = tiger.step(tiger.at(1), &mut p, &g, &mut m);
    let a = 1.0 - cfg.beta;
    let decay = 1.0 - cfg.lr * cfg.weight_decay;
    for i in 0..N {
        let mt = cfg.beta * mr[i] + a * g[i];
        mr[i] = mt;
        pr[i] = pr[i] * decay - cfg.lr * sign(mt);
    }
    let mut ok = outcome.is_ok();
    for i in 0..N {
        if p[i].to_bits() != pr[i].to_bits() || m[i].to_bits() != mr[i].to_bits() {
            defmt::error!(
                "tiger kernel [{=usize}]: p {=u32:#010x} vs {=u32:#010x}, m {=u32:#010x} vs {=u32:#010x}",
                i,
                p[i].to_bits(),
                pr[i].to_bits(),
                m[i].to_bits(),
                mr[i].to_bits()
            );
            ok = false;
        }
    }
    ok
}

/// Tiger's guard sees a NaN or ±Inf gradient wherever it sits: inside the assembly scan's
/// blocks of 16, on their edges, or in the tail the Rust loop scans.
pub fn guard_sees_every_position() -> bool {
    use margay::optim::TigerOutcome;
    let tiger = TigerConfig::new(1e-2).build().must();
    let mut ok = true;
    for pos in [0usize, 15, 16, 31, 32, 36] {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut g = [0.25f32; N];
            g[pos] = bad;
            let (mut p, mut m) = ([1.0f32; N], [0.0f32; N]);
            if tiger.step(tiger.at(1), &mut p, &g, &mut m) != Ok(TigerOutcome::Guarded) {
                defmt::error!("guard missed a non-finite gradient at {=usize}", pos);
                ok = false;
            }
        }
    }
    ok
}
