//! AdamW with gradient accumulation hidden in its moments (kexue 8634, the Adam variant).
//!
//! As [`super::Sgdm`] and Tiger: no gradient buffer. On the first micro-step of each window
//! of k the moments decay by β₁, β₂; every micro-step adds `(1−β₁)/k·g` and `(1−β₂)/k·g²`;
//! the last micro-step updates θ as AdamW with the window count `T = t/k` in the bias
//! corrections:
//! ```text
//! m ← b₁·m + (1−β₁)/k·g          b₁ = β₁ on a window's first micro-step, else 1
//! v ← b₂·v + (1−β₂)/k·g²         b₂ likewise
//! if t ≡ 0 (mod k), T = t/k:
//!     θ ← θ·(1 − γ·λ) − (γ/(1−β₁ᵀ)) · m / ( √v/√(1−β₂ᵀ) + ε )
//! ```
//! The one approximation (Su's): v accumulates the window's mean of g², where AdamW on the
//! window's mean gradient would use the square of the mean. With k = 1 this is
//! [`super::AdamW`] bit for bit (tested). State: `m`, `v` and the micro-step index.
//!
//! ```
//! use margay::optim::{AdamWAccumConfig, AdamWConfig};
//! let acc = AdamWAccumConfig { accumulation: 2, ..AdamWAccumConfig::new(AdamWConfig::new(0.1)) }
//!     .build()
//!     .unwrap();
//! let (mut p, mut m, mut v) = ([1.0_f32], [0.0_f32], [0.0_f32]);
//! acc.step(acc.at(1), &mut p, &[1.0], &mut m, &mut v).unwrap();
//! assert_eq!(p, [1.0]); // accumulating
//! acc.step(acc.at(2), &mut p, &[3.0], &mut m, &mut v).unwrap();
//! assert!(p[0] < 1.0);
//! ```

use super::error::{ConfigError, StepError};
use super::{
    check_lengths, is_window_end, window_decay, AdamW, AdamWConfig, Moment, Schedule, Step,
};
use crate::math::{powf, sqrt};
use crate::simd::AdamWConsts;

/// Hyper-parameters: AdamW's plus the window length k.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWAccumConfig {
    /// AdamW's hyper-parameters (PyTorch semantics).
    pub adamw: AdamWConfig,
    /// Micro-steps per update k (>= 1).
    pub accumulation: u32,
}

impl AdamWAccumConfig {
    /// `adamw` with k = 1.
    pub const fn new(adamw: AdamWConfig) -> Self {
        AdamWAccumConfig {
            adamw,
            accumulation: 1,
        }
    }

    /// Validates AdamW's rules and `k >= 1`.
    pub fn build(self) -> Result<AdamWAccum, ConfigError> {
        let inner = self.adamw.build()?;
        if self.accumulation == 0 {
            return Err(ConfigError::Zero {
                field: "accumulation",
            });
        }
        Ok(AdamWAccum {
            inner,
            k: self.accumulation,
        })
    }
}

/// A validated AdamW with hidden accumulation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWAccum {
    inner: AdamW,
    k: u32,
}

impl AdamWAccum {
    /// The validated AdamW hyper-parameters.
    pub const fn config(&self) -> &AdamWConfig {
        self.inner.config()
    }

    /// Micro-step `t` at the configured learning rate.
    pub const fn at(&self, t: u64) -> Step {
        self.inner.at(t)
    }

    /// Micro-step `t` at the configured learning rate times `schedule.factor(t)`.
    pub fn at_scheduled<S: Schedule>(&self, t: u64, schedule: &S) -> Step {
        self.inner.at_scheduled(t, schedule)
    }

    /// `true` when micro-step `t` updates the parameters.
    pub const fn is_update_step(&self, t: u64) -> bool {
        is_window_end(t, self.k)
    }

    /// One micro-step. A length mismatch returns an error and modifies nothing.
    pub fn step<M: Moment, V: Moment>(
        &self,
        s: Step,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [M],
        v: &mut [V],
    ) -> Result<(), StepError> {
        check_lengths(params.len(), grads.len(), m.len())?;
        check_lengths(params.len(), grads.len(), v.len())?;
        let c = self.inner.config();
        let k = self.k;
        let (b1, b2) = (window_decay(s.t, k, c.beta1), window_decay(s.t, k, c.beta2));
        let (a1, a2) = ((1.0 - c.beta1) / k as f32, (1.0 - c.beta2) / k as f32);
        if !is_window_end(s.t, k) {
            for ((&g, m), v) in grads.iter().zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = M::store(b1 * m.load() + a1 * g);
                *v = V::store(b2 * v.load() + a2 * (g * g));
            }
            return Ok(());
        }
        let windows = (s.t / k as u64) as f32;
        let lr = s.lr;
        let consts = AdamWConsts {
            beta1: b1,
            c1: a1,
            beta2: b2,
            c2: a2,
            bias2_sqrt: sqrt(1.0 - powf(c.beta2, windows)),
            eps: c.eps,
            step_size: lr / (1.0 - powf(c.beta1, windows)),
            decay: 1.0 - lr * c.weight_decay,
        };
        super::adamw::apply(&consts, params, grads, m, v);
        Ok(())
    }
}

// AdamW with hidden accumulation through the interface: state `[m | gap | v]`; micro-steps
// that close a window of k update the parameters.
super::interface::moment_optimizer!(
    AdamWAccum,
    "adamw-accum",
    moments: 2,
    lr: |o| o.inner.config().lr,
    accumulation: |o| o.k,
    updates: |o, t| o.is_update_step(t)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k1_is_adamw_bit_for_bit() {
        let cfg = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::new(1e-2)
        };
        let (a, b) = (
            AdamWAccumConfig::new(cfg).build().unwrap(),
            cfg.build().unwrap(),
        );
        let (mut p, mut m, mut v) = ([0.5f32, -1.0, 2.0], [0.0f32; 3], [0.0f32; 3]);
        let (mut q, mut n, mut w) = (p, m, v);
        for t in 1..20u64 {
            let g = [0.1 * t as f32, -0.3, (t as f32).sin()];
            a.step(a.at(t), &mut p, &g, &mut m, &mut v).unwrap();
            b.step(b.at(t), &mut q, &g, &mut n, &mut w).unwrap();
            assert_eq!(p.map(f32::to_bits), q.map(f32::to_bits), "t = {t}");
        }
    }

    /// A window of k equals one AdamW step fed the window's mean g for m and mean g² for v.
    #[test]
    fn a_window_is_adamw_on_the_window_means() {
        let cfg = AdamWConfig::new(1e-2);
        let acc = AdamWAccumConfig {
            accumulation: 3,
            ..AdamWAccumConfig::new(cfg)
        }
        .build()
        .unwrap();
        let grads = [[0.3f32, -1.0], [0.6, 0.5], [-0.3, 2.0]];
        let (mut p, mut m, mut v) = ([1.0f32, -1.0], [0.0f32; 2], [0.0f32; 2]);
        for (i, g) in grads.iter().enumerate() {
            acc.step(acc.at(i as u64 + 1), &mut p, g, &mut m, &mut v)
                .unwrap();
        }
        for j in 0..2 {
            let mean: f32 = grads.iter().map(|g| g[j]).sum::<f32>() / 3.0;
            let mean_sq: f32 = grads.iter().map(|g| g[j] * g[j]).sum::<f32>() / 3.0;
            let (mt, vt) = (0.1 * mean, 0.001 * mean_sq);
            let want = [1.0f32, -1.0][j] * (1.0 - 1e-2 * 1e-2)
                - 1e-2 / 0.1 * mt / (vt.sqrt() / 0.001f32.sqrt() + 1e-8);
            assert!((p[j] - want).abs() < 1e-6, "{} vs {want}", p[j]);
        }
    }

    #[test]
    fn zero_accumulation_is_refused() {
        let c = AdamWAccumConfig {
            accumulation: 0,
            ..AdamWAccumConfig::new(AdamWConfig::new(1e-3))
        };
        assert!(c.build().is_err());
    }
}
