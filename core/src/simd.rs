//! Runtime CPU dispatch for the optimizer loops (x86_64 only; a plain call elsewhere).
//!
//! Why this module allows `unsafe`: a function compiled with `#[target_feature(enable =
//! "avx2")]` may only be called once the CPU is known to support AVX2, and Rust marks that
//! call `unsafe`. The check ([`cpufeatures`], cached in an atomic) is made right before each
//! call. Nothing else here is unsafe except the explicit AVX2 loads and stores of
//! [`adamw_f32`], which stay inside the slices' bounds.
//!
//! Bit-exactness: AVX2 without FMA performs the same IEEE single-precision operations, in the
//! same order, as the scalar loop (Rust never contracts `a * b + c` into an FMA, and the
//! vector square root is correctly rounded like the scalar one), so every target still
//! produces identical bits.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
cpufeatures::new!(avx2_cpuid, "avx2");

/// A loop to run in [`vectorized`]: `run` must be `#[inline(always)]` and call only
/// `#[inline(always)]` code, so that its whole body is compiled (and vectorized) inside the
/// AVX2 function. (A closure would not do: LLVM keeps it as a separate, baseline function.)
pub(crate) trait Kernel {
    /// What the loop returns.
    type Out;
    /// The loop.
    fn run(self) -> Self::Out;
}

/// Runs `k`, compiled for AVX2 when the CPU has it.
#[inline(always)]
pub(crate) fn vectorized<K: Kernel>(k: K) -> K::Out {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2_cpuid::get() {
            // SAFETY: the CPU supports AVX2 (checked on the line above).
            return unsafe { with_avx2(k) };
        }
    }
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<K: Kernel>(k: K) -> K::Out {
    k.run()
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
        if avx2_cpuid::get() {
            // SAFETY: the CPU supports AVX2 (checked on the line above).
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
