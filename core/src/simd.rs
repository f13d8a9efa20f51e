//! Runtime CPU dispatch for the vector loops (x86_64 only; a plain call elsewhere).
//!
//! Why this module allows `unsafe`: a function compiled with `#[target_feature(enable =
//! "avx2")]` may only be called once the CPU is known to support AVX2, and Rust marks that
//! call `unsafe`. The check ([`cpufeatures`], cached in an atomic) is made right before each
//! call. Nothing else here is unsafe except the explicit AVX2 loads and stores of
//! `adamw_f32`, which stay inside the slices' bounds, and the cache hint of
//! `prefetch_l2`, which cannot fault.
//!
//! Levels: every loop runs under AVX2 where the CPU has it; the RoPE loops also have an
//! AVX-512 build (F, VL, BW, DQ), which ran them closer to the memory limit on the bench
//! machine (README, "Speed, host"). [`set_max_level`] caps the level, e.g. to compare them or
//! to keep 512-bit instructions off a CPU that slows its clock for them.
//!
//! Bit-exactness: AVX2 and AVX-512 without FMA perform the same IEEE single-precision
//! operations, in the same order, as the scalar loop (Rust never contracts `a * b + c` into
//! an FMA, and the vector square root is correctly rounded like the scalar one), so every
//! level and every target produces identical bits.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
cpufeatures::new!(avx2_cpuid, "avx2");
#[cfg(target_arch = "x86_64")]
cpufeatures::new!(avx512_cpuid, "avx512f", "avx512vl", "avx512bw", "avx512dq");

/// An instruction-set level of the dispatch, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Whatever the build targets (SSE2 on x86_64; every non-x86 target).
    Baseline,
    /// AVX2 (x86_64).
    Avx2,
    /// AVX-512 F, VL, BW and DQ (x86_64); used by the RoPE loops, AVX2 elsewhere.
    Avx512,
}

/// The cap set by [`set_max_level`], as `Level as u8`.
#[cfg(target_arch = "x86_64")]
static MAX_LEVEL: core::sync::atomic::AtomicU8 =
    core::sync::atomic::AtomicU8::new(Level::Avx512 as u8);

/// Caps the level the dispatch uses from the next call on (for every thread); the default
/// is no cap. Results do not depend on the level (same bits), only speed does. No effect off
/// x86_64.
pub fn set_max_level(max: Level) {
    #[cfg(target_arch = "x86_64")]
    MAX_LEVEL.store(max as u8, core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = max;
}

/// The level the dispatch uses now: the highest the CPU supports, within [`set_max_level`].
pub fn level() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let max = MAX_LEVEL.load(core::sync::atomic::Ordering::Relaxed);
        if max >= Level::Avx512 as u8 && avx512_cpuid::get() {
            return Level::Avx512;
        }
        if max >= Level::Avx2 as u8 && avx2_cpuid::get() {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// A loop to run in [`vectorized`]: `run` must be `#[inline(always)]` and call only
/// `#[inline(always)]` code, so that its whole body is compiled (and vectorized) inside the
/// AVX2 function. (A closure would not do: LLVM keeps it as a separate, baseline function.)
pub(crate) trait Kernel {
    /// What the loop returns.
    type Out;
    /// Whether the loop also has an AVX-512 build (only where it was measured faster).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 only
    const AVX512: bool = false;
    /// The loop.
    fn run(self) -> Self::Out;
}

/// Runs `k`, compiled for the highest [`level`] (AVX-512 only for kernels that opt in).
#[inline(always)]
pub(crate) fn vectorized<K: Kernel>(k: K) -> K::Out {
    #[cfg(target_arch = "x86_64")]
    {
        match level() {
            // SAFETY: `level` returned Avx512 only after checking the CPU supports it.
            Level::Avx512 if K::AVX512 => return unsafe { with_avx512(k) },
            // SAFETY: Avx2 or Avx512 means the CPU supports AVX2 (AVX-512 F implies it).
            Level::Avx2 | Level::Avx512 => return unsafe { with_avx2(k) },
            Level::Baseline => {}
        }
    }
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<K: Kernel>(k: K) -> K::Out {
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512bw,avx512dq")]
unsafe fn with_avx512<K: Kernel>(k: K) -> K::Out {
    k.run()
}

/// Asks the CPU to bring the cache lines of `xs` into L2 ahead of use (x86_64
/// `prefetcht1`, one per 64-byte line); nothing elsewhere. A prefetch never faults and
/// changes no value, and the pointers stay inside `xs`.
#[inline(always)]
pub(crate) fn prefetch_l2(xs: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for first in xs.iter().step_by(16) {
        // SAFETY: a prefetch is a hint: it reads nothing architecturally and cannot fault;
        // the address is in bounds anyway (SSE is part of the x86_64 baseline).
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T1 }>(
                (first as *const f32).cast::<i8>(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = xs;
}

/// Tiger's f32 update on Cortex-M4F (hand-scheduled assembly; see [`tiger_update_f32`]).
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
mod m4f {
    /// Arguments of `margay_tiger_m4f` after the three pointers, read through r3.
    #[repr(C)]
    pub(super) struct Args {
        pub b: f32,
        pub a: f32,
        pub decay: f32,
        pub eta: f32,
        /// 2¹²⁷: two multiplications lift every non-zero |m| (subnormals included) past the
        /// saturation point of the fixed-point conversion, which then yields ±1 exactly.
        pub two127: f32,
        pub zero: f32,
        /// Iterations of 12 parameters.
        pub blocks: u32,
    }

    extern "C" {
        /// Returns Σ m'·0: NaN when some new momentum is NaN or ±Inf, else ±0.
        pub(super) fn margay_tiger_m4f(
            p: *mut f32,
            g: *const f32,
            m: *mut f32,
            args: *const Args,
        ) -> f32;
    }

    // Per parameter: vmul + vmla (momentum; VMLA is not fused, so it rounds like the Rust
    // `b * m + a * g`), vmla (the NaN/Inf detector), vmul ×2 + vcvt ×2 (sign: saturating
    // conversion to fixed point with 32 fraction bits, then back with 31 fraction bits:
    // ±(2³¹−1) → ±1.0, 0 → +0), vmul + vmls (θ·decay − η·s, not fused). Per 12 parameters:
    // three VLDM, two VSTM, a subtract and a branch. s16–s31 are callee-saved (AAPCS-VFP).
    // Registers: s0–s11 momentum then sign, s12–s23 gradient then θ, s24 b, s25 a,
    // s26 decay, s27 η, s28 2¹²⁷, s29 0, s30 the detector.
    core::arch::global_asm!(
        ".syntax unified",
        ".thumb",
        ".fpu fpv4-sp-d16",
        ".section .text.margay_tiger_m4f,\"ax\",%progbits",
        ".global margay_tiger_m4f",
        ".type margay_tiger_m4f,%function",
        ".thumb_func",
        "margay_tiger_m4f:",
        "    push {{r4, lr}}",
        "    vpush {{s16-s31}}",
        "    vldm r3, {{s24-s29}}",
        "    ldr r4, [r3, #24]",
        "    vmov.f32 s30, s29",
        "    cmp r4, #0",
        "    beq 2f",
        "1:",
        "    vldm r2, {{s0-s11}}",
        "    vldm r1!, {{s12-s23}}",
        "    .irp r, s0,s1,s2,s3,s4,s5,s6,s7,s8,s9,s10,s11",
        "    vmul.f32 \\r, \\r, s24",
        "    .endr",
        "    vmla.f32 s0, s25, s12",
        "    vmla.f32 s1, s25, s13",
        "    vmla.f32 s2, s25, s14",
        "    vmla.f32 s3, s25, s15",
        "    vmla.f32 s4, s25, s16",
        "    vmla.f32 s5, s25, s17",
        "    vmla.f32 s6, s25, s18",
        "    vmla.f32 s7, s25, s19",
        "    vmla.f32 s8, s25, s20",
        "    vmla.f32 s9, s25, s21",
        "    vmla.f32 s10, s25, s22",
        "    vmla.f32 s11, s25, s23",
        "    vstm r2!, {{s0-s11}}",
        "    vldm r0, {{s12-s23}}",
        "    .irp r, s0,s1,s2,s3,s4,s5,s6,s7,s8,s9,s10,s11",
        "    vmla.f32 s30, \\r, s29",
        "    .endr",
        "    .irp r, s0,s1,s2,s3,s4,s5,s6,s7,s8,s9,s10,s11",
        "    vmul.f32 \\r, \\r, s28",
        "    .endr",
        "    .irp r, s0,s1,s2,s3,s4,s5,s6,s7,s8,s9,s10,s11",
        "    vmul.f32 \\r, \\r, s28",
        "    .endr",
        "    .irp r, s0,s1,s2,s3,s4,s5,s6,s7,s8,s9,s10,s11",
        "    vcvt.s32.f32 \\r, \\r, #32",
        "    .endr",
        "    .irp r, s0,s1,s2,s3,s4,s5,s6,s7,s8,s9,s10,s11",
        "    vcvt.f32.s32 \\r, \\r, #31",
        "    .endr",
        "    .irp r, s12,s13,s14,s15,s16,s17,s18,s19,s20,s21,s22,s23",
        "    vmul.f32 \\r, \\r, s26",
        "    .endr",
        "    vmls.f32 s12, s27, s0",
        "    vmls.f32 s13, s27, s1",
        "    vmls.f32 s14, s27, s2",
        "    vmls.f32 s15, s27, s3",
        "    vmls.f32 s16, s27, s4",
        "    vmls.f32 s17, s27, s5",
        "    vmls.f32 s18, s27, s6",
        "    vmls.f32 s19, s27, s7",
        "    vmls.f32 s20, s27, s8",
        "    vmls.f32 s21, s27, s9",
        "    vmls.f32 s22, s27, s10",
        "    vmls.f32 s23, s27, s11",
        "    vstm r0!, {{s12-s23}}",
        "    subs r4, r4, #1",
        "    bne 1b",
        "2:",
        "    vmov.f32 s0, s30",
        "    vpop {{s16-s31}}",
        "    pop {{r4, pc}}",
        ".size margay_tiger_m4f, . - margay_tiger_m4f",
    );

    extern "C" {
        /// Σ x·0 over `16·blocks` floats: NaN when one of them is NaN or ±Inf, else ±0.
        pub(super) fn margay_nonfinite_m4f(xs: *const f32, blocks: u32) -> f32;
    }

    // One VLDM, sixteen VMLA (acc += x·0), a subtract and a branch per 16 floats.
    core::arch::global_asm!(
        ".syntax unified",
        ".thumb",
        ".fpu fpv4-sp-d16",
        ".section .text.margay_nonfinite_m4f,\"ax\",%progbits",
        ".global margay_nonfinite_m4f",
        ".type margay_nonfinite_m4f,%function",
        ".thumb_func",
        "margay_nonfinite_m4f:",
        "    vpush {{s16-s17}}",
        "    vmov.f32 s16, #1.0",
        "    vsub.f32 s16, s16, s16",
        "    vmov.f32 s17, s16",
        "    cmp r1, #0",
        "    beq 2f",
        "1:",
        "    vldm r0!, {{s0-s15}}",
        "    .irp r, s0,s1,s2,s3,s4,s5,s6,s7,s8,s9,s10,s11,s12,s13,s14,s15",
        "    vmla.f32 s17, \\r, s16",
        "    .endr",
        "    subs r1, r1, #1",
        "    bne 1b",
        "2:",
        "    vmov.f32 s0, s17",
        "    vpop {{s16-s17}}",
        "    bx lr",
        ".size margay_nonfinite_m4f, . - margay_nonfinite_m4f",
    );
}

/// `true` when some element of `xs[..done]` is NaN or ±Inf, where `done` (returned) is what
/// the Cortex-M4F assembly loop covered (whole blocks of 16); 0 elsewhere.
#[inline(always)]
pub(crate) fn any_non_finite_f32(xs: &[f32]) -> (bool, usize) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    {
        let blocks = xs.len() / 16;
        // SAFETY: the loop reads 16·blocks <= xs.len() elements.
        let acc = unsafe { m4f::margay_nonfinite_m4f(xs.as_ptr(), blocks as u32) };
        (acc.is_nan(), blocks * 16)
    }
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
    {
        let _ = xs;
        (false, 0)
    }
}

/// Tiger's update `m ← b·m + a·g;  θ ← θ·decay − η·sign(m)` over f32 momentum, with the same
/// roundings as the scalar loop. On Cortex-M4F (and other bare-metal hard-float Arm cores)
/// it runs the assembly kernel above on whole blocks of 12 and returns how many parameters
/// it handled; elsewhere it returns 0 and the caller's loop does everything.
///
/// NaN: the conversion maps a NaN momentum to sign 0, where the scalar loop gives
/// `θ = NaN` (the momentum's NaN). The kernel's detector reports any NaN or ±Inf momentum,
/// and then the affected weights are set to the scalar loop's result, so the bits agree.
#[inline(always)]
pub(crate) fn tiger_update_f32(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    b: f32,
    a: f32,
    decay: f32,
    eta: f32,
) -> usize {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    {
        let n = p.len().min(g.len()).min(m.len());
        let blocks = n / 12;
        let args = m4f::Args {
            b,
            a,
            decay,
            eta,
            two127: f32::from_bits(0x7f00_0000),
            zero: 0.0,
            blocks: blocks as u32,
        };
        // SAFETY: the kernel reads and writes 12·blocks <= n elements of each slice, and
        // `args` outlives the call.
        let detector =
            unsafe { m4f::margay_tiger_m4f(p.as_mut_ptr(), g.as_ptr(), m.as_mut_ptr(), &args) };
        let done = blocks * 12;
        if detector.is_nan() {
            // The scalar loop: θ·decay − η·NaN is the momentum's (quiet) NaN unless θ was
            // already NaN, which the kernel kept.
            for (p, &m) in p[..done].iter_mut().zip(&m[..done]) {
                if m.is_nan() && !p.is_nan() {
                    *p = m;
                }
            }
        }
        done
    }
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
    {
        let _ = (p, g, m, b, a, decay, eta);
        0
    }
}

/// AdamW's update over f32 moments, eight lanes at a time with `vsqrtps` where the CPU has
/// AVX2 (the scalar `libm` square root does not vectorize). Returns `false`, having done
/// nothing, when AVX2 is missing; the caller then runs its scalar loop.
///
/// Per element, in this order (the scalar loop's): `m ← β₁m + c₁g`, `v ← β₂v + c₂g²`,
/// `θ ← θ·decay − step·(m / (√v / bc2 + ε))`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn adamw_f32(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    k: &AdamWConsts,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if level() >= Level::Avx2 {
            // SAFETY: the CPU supports AVX2 (`level` checked it).
            unsafe { adamw_avx2(p, g, m, v, k) };
            return true;
        }
    }
    let _ = (p, g, m, v, k);
    false
}

/// The per-step scalars of AdamW's update.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamWConsts {
    pub beta1: f32,
    pub c1: f32,
    pub beta2: f32,
    pub c2: f32,
    pub bias2_sqrt: f32,
    pub eps: f32,
    pub step_size: f32,
    pub decay: f32,
}

impl AdamWConsts {
    /// One element, scalar (the definition the vector loop reproduces).
    #[inline(always)]
    pub fn scalar(&self, p: &mut f32, g: f32, m: f32, v: f32) -> (f32, f32) {
        let mt = self.beta1 * m + self.c1 * g;
        let vt = self.beta2 * v + self.c2 * (g * g);
        let denom = crate::math::sqrt(vt) / self.bias2_sqrt + self.eps;
        *p = *p * self.decay - self.step_size * (mt / denom);
        (mt, vt)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adamw_avx2(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &AdamWConsts) {
    use core::arch::x86_64::*;
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    let body = n - n % 8;
    let b1 = _mm256_set1_ps(k.beta1);
    let c1 = _mm256_set1_ps(k.c1);
    let b2 = _mm256_set1_ps(k.beta2);
    let c2 = _mm256_set1_ps(k.c2);
    let bc2 = _mm256_set1_ps(k.bias2_sqrt);
    let eps = _mm256_set1_ps(k.eps);
    let step = _mm256_set1_ps(k.step_size);
    let decay = _mm256_set1_ps(k.decay);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 <= body <= the length of every slice.
        unsafe {
            let gi = _mm256_loadu_ps(g.as_ptr().add(i));
            let mi = _mm256_loadu_ps(m.as_ptr().add(i));
            let vi = _mm256_loadu_ps(v.as_ptr().add(i));
            let pi = _mm256_loadu_ps(p.as_ptr().add(i));
            let mt = _mm256_add_ps(_mm256_mul_ps(b1, mi), _mm256_mul_ps(c1, gi));
            let gg = _mm256_mul_ps(gi, gi);
            let vt = _mm256_add_ps(_mm256_mul_ps(b2, vi), _mm256_mul_ps(c2, gg));
            let denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vt), bc2), eps);
            let upd = _mm256_mul_ps(step, _mm256_div_ps(mt, denom));
            let pt = _mm256_sub_ps(_mm256_mul_ps(pi, decay), upd);
            _mm256_storeu_ps(m.as_mut_ptr().add(i), mt);
            _mm256_storeu_ps(v.as_mut_ptr().add(i), vt);
            _mm256_storeu_ps(p.as_mut_ptr().add(i), pt);
        }
        i += 8;
    }
    for j in body..n {
        let (mt, vt) = k.scalar(&mut p[j], g[j], m[j], v[j]);
        m[j] = mt;
        v[j] = vt;
    }
}

#[cfg(test)]
mod tests {
    //! The dispatched (AVX2 where present) steps against plain scalar loops written out here,
    //! bit for bit, on lengths that leave a remainder and on special values.
    use crate::math::sign;
    use crate::optim::{AdamWConfig, GradHealth, LionConfig, TigerConfig};
    use std::vec::Vec;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let special = [
            0.0,
            -0.0,
            f32::from_bits(1),
            -1e-39,
            1e30,
            -3.5,
            f32::MIN_POSITIVE,
        ];
        (0..n)
            .map(|i| {
                let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 8;
                if h.is_multiple_of(29) {
                    special[(h as usize / 29) % special.len()]
                } else {
                    (h % 20_001) as f32 / 10_000.0 - 1.0
                }
            })
            .collect()
    }

    fn bits(xs: &[f32]) -> Vec<u32> {
        xs.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn dispatched_lion_tiger_adamw_equal_scalar_loops_bit_for_bit() {
        for n in [1usize, 7, 8, 9, 1003] {
            let g = data(n, 1);
            let p0 = data(n, 2);
            let m0 = data(n, 3);
            let v0: Vec<f32> = data(n, 4).iter().map(|x| x.abs()).collect();

            let lion = LionConfig {
                weight_decay: 0.1,
                ..LionConfig::new(1e-3)
            }
            .build()
            .unwrap();
            let (mut p, mut m) = (p0.clone(), m0.clone());
            lion.step(lion.at(1), &mut p, &g, &mut m).unwrap();
            let c = lion.config();
            let (mut pr, mut mr) = (p0.clone(), m0.clone());
            for i in 0..n {
                let ct = c.beta1 * mr[i] + (1.0 - c.beta1) * g[i];
                pr[i] = pr[i] * (1.0 - c.lr * c.weight_decay) - c.lr * sign(ct);
                mr[i] = c.beta2 * mr[i] + (1.0 - c.beta2) * g[i];
            }
            assert_eq!((bits(&p), bits(&m)), (bits(&pr), bits(&mr)), "lion n={n}");

            let tiger = TigerConfig::new(1e-3).build().unwrap();
            let (mut p, mut m) = (p0.clone(), m0.clone());
            let h = GradHealth::scan(&g);
            tiger
                .step_with_health(tiger.at(1), h, &mut p, &g, &mut m)
                .unwrap();
            let c = tiger.config();
            let (mut pr, mut mr) = (p0.clone(), m0.clone());
            for i in 0..n {
                mr[i] = c.beta * mr[i] + (1.0 - c.beta) * g[i];
                pr[i] = pr[i] * (1.0 - c.lr * c.weight_decay) - c.lr * sign(mr[i]);
            }
            assert_eq!((bits(&p), bits(&m)), (bits(&pr), bits(&mr)), "tiger n={n}");

            let adamw = AdamWConfig::new(1e-3).build().unwrap();
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            adamw.step(adamw.at(3), &mut p, &g, &mut m, &mut v).unwrap();
            let c = adamw.config();
            let (mut pr, mut mr, mut vr) = (p0.clone(), m0.clone(), v0.clone());
            let bias1 = 1.0 - crate::math::powf(c.beta1, 3.0);
            let bc2 = crate::math::sqrt(1.0 - crate::math::powf(c.beta2, 3.0));
            for i in 0..n {
                mr[i] = c.beta1 * mr[i] + (1.0 - c.beta1) * g[i];
                vr[i] = c.beta2 * vr[i] + (1.0 - c.beta2) * (g[i] * g[i]);
                let denom = crate::math::sqrt(vr[i]) / bc2 + c.eps;
                pr[i] = pr[i] * (1.0 - c.lr * c.weight_decay) - (c.lr / bias1) * (mr[i] / denom);
            }
            assert_eq!(
                (bits(&p), bits(&m), bits(&v)),
                (bits(&pr), bits(&mr), bits(&vr)),
                "adamw n={n}"
            );
        }
    }
}
