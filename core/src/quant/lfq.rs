//! LFQ: lookup-free quantization (MAGVIT-v2, Yu et al. 2023, arXiv 2310.05737), following
//! vector-quantize-pytorch's `LFQ` (the golden vectors' reference).
//!
//! Intuition: every channel is one bit. The code is `±s` per channel, the index is the bits
//! read **channel 0 first (most significant)**, the opposite of FSQ's basis order. The
//! codebook (all 2ᴰ sign patterns) is implicit. Training adds an entropy penalty: each sample
//! should pick its code confidently (low per-sample entropy) while the batch uses many codes
//! (high codebook entropy).
//!
//! ```text
//! code_j = s if z_j > 0 else −s          (0 and NaN give −s)
//! index  = Σ_j 2^(D−1−j)·[z_j > 0]
//! p(c|z) = softmax_c(2τ·z·c)             over the 2ᴰ codes; it factorizes per channel:
//!          p_j(+s) = σ(4τs·z_j), p(c|z) = ∏_j p_j(c_j)
//! H(p)   = −Σ_c p_c·ln(max(p_c, 1e-5))   (the reference clamps inside the log)
//! aux    = mean_b H(p(·|z_b)) − γ·H(mean_b p(·|z_b))
//! loss   = entropy_weight·aux + commitment_weight·mean((z − code)²)
//! ```
//! The per-code probabilities are products of per-channel sigmoids, so the entropy needs no
//! softmax over 2ᴰ logits; the batch average needs a caller-provided scratch of 2ᴰ floats
//! (no heap). Forward and backward match vector-quantize-pytorch in float64 to the tolerances
//! of `tests/vectors/lfq.json`.
//!
//! ```
//! use margay::quant::LfqConfig;
//! let lfq = LfqConfig::new().build::<3>().unwrap();
//! let (codes, index) = lfq.quantize(&[0.3, 0.0, -2.0]);
//! assert_eq!((codes, index), ([1.0, -1.0, -1.0], 0b100)); // channel 0 is the top bit
//! assert_eq!(lfq.decode(0b100), Ok(codes));
//! ```

use super::{check_finite, QuantError};
use crate::math::{exp, ln};

/// The clamp inside the entropy's logarithm (vector-quantize-pytorch).
pub const LFQ_LOG_CLAMP: f32 = 1e-5;

/// LFQ hyper-parameters (vector-quantize-pytorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LfqConfig {
    /// Code magnitude `s` (`codebook_scale`); 1.
    pub scale: f32,
    /// Inverse temperature τ of the code distribution; 100.
    pub inv_temperature: f32,
    /// γ, the weight of the codebook entropy inside `aux` (`diversity_gamma`); 1.
    pub diversity_gamma: f32,
    /// Weight of `aux` in the loss (`entropy_loss_weight`); 0.1.
    pub entropy_weight: f32,
    /// Weight of the commitment MSE (`commitment_loss_weight`); 0.
    pub commitment_weight: f32,
}

impl Default for LfqConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl LfqConfig {
    /// The defaults above.
    pub const fn new() -> Self {
        LfqConfig {
            scale: 1.0,
            inv_temperature: 100.0,
            diversity_gamma: 1.0,
            entropy_weight: 0.1,
            commitment_weight: 0.0,
        }
    }

    /// Validates for `D` channels: `1 ≤ D ≤ 32` (a `u32` index), `s, τ > 0`, the weights and
    /// γ ≥ 0, all finite.
    pub fn build<const D: usize>(self) -> Result<Lfq<D>, QuantError> {
        if D == 0 {
            return Err(QuantError::EmptyCodebook);
        }
        if D > 32 {
            return Err(QuantError::CodebookTooLarge);
        }
        let pos = |x: f32| x > 0.0 && x.is_finite();
        let non_neg = |x: f32| x >= 0.0 && x.is_finite();
        for (ok, name) in [
            (pos(self.scale), "scale"),
            (pos(self.inv_temperature), "inv_temperature"),
            (non_neg(self.diversity_gamma), "diversity_gamma"),
            (non_neg(self.entropy_weight), "entropy_weight"),
            (non_neg(self.commitment_weight), "commitment_weight"),
        ] {
            if !ok {
                return Err(QuantError::BadParam { name });
            }
        }
        Ok(Lfq { cfg: self })
    }
}

/// A validated LFQ over `D` channels (2ᴰ codes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lfq<const D: usize> {
    cfg: LfqConfig,
}

/// The entropy terms and loss of one batch ([`Lfq::entropy`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LfqEntropy {
    /// Mean over samples of the entropy of `p(·|z)`.
    pub per_sample: f32,
    /// Entropy of the batch-mean distribution.
    pub codebook: f32,
    /// `per_sample − γ·codebook` (vector-quantize-pytorch's `entropy_aux_loss`).
    pub aux: f32,
    /// `mean((z − code)²)`.
    pub commitment: f32,
    /// `entropy_weight·aux + commitment_weight·commitment`.
    pub loss: f32,
}

/// `−p·ln(max(p, clamp))` and its derivative in `p` (the clamp has no gradient).
#[inline(always)]
fn h_and_dh(p: f32) -> (f32, f32) {
    if p > LFQ_LOG_CLAMP {
        let l = ln(p);
        (-p * l, -(l + 1.0))
    } else {
        let l = ln(LFQ_LOG_CLAMP);
        (-p * l, -l)
    }
}

impl<const D: usize> Lfq<D> {
    /// The validated configuration.
    pub const fn config(&self) -> &LfqConfig {
        &self.cfg
    }

    /// Number of codes, 2ᴰ (as `u64`: 2³² does not fit a `u32`).
    pub const fn codebook_size(&self) -> u64 {
        1u64 << D
    }

    /// The code of one channel value: `s` if `x > 0`, else `−s` (0 and NaN included).
    #[inline(always)]
    fn code(&self, x: f32) -> f32 {
        if x > 0.0 {
            self.cfg.scale
        } else {
            -self.cfg.scale
        }
    }

    /// The codes and index of one vector.
    #[inline]
    pub fn quantize(&self, z: &[f32; D]) -> ([f32; D], u32) {
        let mut c = [0.0f32; D];
        let mut idx = 0u32;
        for (j, (&x, out)) in z.iter().zip(c.iter_mut()).enumerate() {
            *out = self.code(x);
            idx |= ((x > 0.0) as u32) << (D - 1 - j);
        }
        (c, idx)
    }

    /// The index of one vector.
    #[inline]
    pub fn encode(&self, z: &[f32; D]) -> u32 {
        self.quantize(z).1
    }

    /// The codes of an index; an index ≥ 2ᴰ is an error.
    pub fn decode(&self, index: u32) -> Result<[f32; D], QuantError> {
        if (index as u64) >= self.codebook_size() {
            return Err(QuantError::IndexOutOfRange {
                index,
                size: self.codebook_size() as u32,
            });
        }
        let s = self.cfg.scale;
        let mut c = [0.0f32; D];
        for (j, out) in c.iter_mut().enumerate() {
            *out = if index >> (D - 1 - j) & 1 == 1 { s } else { -s };
        }
        Ok(c)
    }

    /// Per-channel `(p⁺, p⁻)`: the probabilities of `+s` and `−s`, each from its own
    /// exponential so that tiny values keep their relative precision.
    #[inline]
    fn channel_probs(&self, z: &[f32]) -> [(f32, f32); D] {
        let k = 4.0 * self.cfg.inv_temperature * self.cfg.scale;
        let mut p = [(0.0f32, 0.0f32); D];
        for (pj, &x) in p.iter_mut().zip(z) {
            let t = k * x;
            *pj = (1.0 / (1.0 + exp(-t)), 1.0 / (1.0 + exp(t)));
        }
        p
    }

    /// `p(c|z)` from the per-channel probabilities (channel 0 is bit D−1 of `c`).
    #[inline(always)]
    fn code_prob(p: &[(f32, f32); D], c: usize) -> f32 {
        let mut prob = 1.0f32;
        for (j, pj) in p.iter().enumerate() {
            prob *= if c >> (D - 1 - j) & 1 == 1 {
                pj.0
            } else {
                pj.1
            };
        }
        prob
    }

    fn check(&self, z: &[f32], scratch: &[f32]) -> Result<usize, QuantError> {
        if z.is_empty() || !z.len().is_multiple_of(D) {
            return Err(QuantError::LengthMismatch {
                expected: D * (z.len() / D).max(1),
                got: z.len(),
            });
        }
        if D > 24 || scratch.len() as u64 != self.codebook_size() {
            return Err(QuantError::LengthMismatch {
                expected: 1usize << D.min(24),
                got: scratch.len(),
            });
        }
        check_finite(z)?;
        Ok(z.len() / D)
    }

    /// Fills `scratch[c]` with the batch-mean probability of code `c`; returns the summed
    /// per-sample entropy.
    fn batch_mean(&self, z: &[f32], scratch: &mut [f32], n: usize) -> f32 {
        scratch.iter_mut().for_each(|q| *q = 0.0);
        let inv_n = 1.0 / n as f32;
        let mut h_sum = 0.0f32;
        for row in z.chunks_exact(D) {
            let p = self.channel_probs(row);
            let mut h = 0.0f32;
            for (c, q) in scratch.iter_mut().enumerate() {
                let pc = Self::code_prob(&p, c);
                h += h_and_dh(pc).0;
                *q += pc * inv_n;
            }
            h_sum += h;
        }
        h_sum
    }

    /// Entropy terms and loss of a batch of rows `z` (`D` values each). `scratch` holds 2ᴰ
    /// floats (D ≤ 24). No rows, a length mismatch or a NaN/±Inf value is an error.
    pub fn entropy(&self, z: &[f32], scratch: &mut [f32]) -> Result<LfqEntropy, QuantError> {
        let n = self.check(z, scratch)?;
        let per_sample = self.batch_mean(z, scratch, n) / n as f32;
        let codebook = scratch.iter().map(|&q| h_and_dh(q).0).sum::<f32>();
        let aux = per_sample - self.cfg.diversity_gamma * codebook;
        let commit_sum: f32 = z
            .iter()
            .map(|&x| {
                let d = x - self.code(x);
                d * d
            })
            .sum();
        let commitment = commit_sum / z.len() as f32;
        Ok(LfqEntropy {
            per_sample,
            codebook,
            aux,
            commitment,
            loss: self.cfg.entropy_weight * aux + self.cfg.commitment_weight * commitment,
        })
    }

    /// `∂aux/∂z` (unweighted) into `grad` (same length as `z`); `scratch` as in
    /// [`Lfq::entropy`] (overwritten). Cost: two passes of 2ᴰ·D products per row.
    pub fn entropy_grad(
        &self,
        z: &[f32],
        scratch: &mut [f32],
        grad: &mut [f32],
    ) -> Result<(), QuantError> {
        let n = self.check(z, scratch)?;
        if grad.len() != z.len() {
            return Err(QuantError::LengthMismatch {
                expected: z.len(),
                got: grad.len(),
            });
        }
        self.batch_mean(z, scratch, n);
        // Reuse the scratch for γ·dH/dq of each code.
        let gamma = self.cfg.diversity_gamma;
        for q in scratch.iter_mut() {
            *q = gamma * h_and_dh(*q).1;
        }
        let k = 4.0 * self.cfg.inv_temperature * self.cfg.scale;
        let inv_n = 1.0 / n as f32;
        for (row, g) in z.chunks_exact(D).zip(grad.chunks_exact_mut(D)) {
            let p = self.channel_probs(row);
            let mut acc = [0.0f32; D];
            for (c, dq) in scratch.iter().enumerate() {
                let pc = Self::code_prob(&p, c);
                let w = (h_and_dh(pc).1 - dq) * pc;
                // ∂ln p(c)/∂z_j = k·p⁻ for a positive bit, −k·p⁺ for a negative one.
                for (j, (a, pj)) in acc.iter_mut().zip(&p).enumerate() {
                    *a += if c >> (D - 1 - j) & 1 == 1 {
                        w * pj.1
                    } else {
                        -w * pj.0
                    };
                }
            }
            for (gj, a) in g.iter_mut().zip(acc) {
                *gj = a * k * inv_n;
            }
        }
        Ok(())
    }

    /// Backward pass to the inputs: `grad_z = grad_out` (straight through) `+
    /// entropy_weight·∂aux/∂z + commitment_weight·2(z − code)/numel`.
    pub fn backward(
        &self,
        z: &[f32],
        grad_out: &[f32],
        scratch: &mut [f32],
        grad_z: &mut [f32],
    ) -> Result<(), QuantError> {
        if grad_out.len() != z.len() {
            return Err(QuantError::LengthMismatch {
                expected: z.len(),
                got: grad_out.len(),
            });
        }
        self.entropy_grad(z, scratch, grad_z)?;
        let (we, wc) = (self.cfg.entropy_weight, self.cfg.commitment_weight);
        let c = 2.0 * wc / z.len() as f32;
        for ((g, &go), &x) in grad_z.iter_mut().zip(grad_out).zip(z) {
            *g = go + we * *g + c * (x - self.code(x));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfq_rejects_bad_config() {
        assert_eq!(
            LfqConfig::new().build::<0>(),
            Err(QuantError::EmptyCodebook)
        );
        assert_eq!(
            LfqConfig::new().build::<33>(),
            Err(QuantError::CodebookTooLarge)
        );
        assert_eq!(
            LfqConfig {
                inv_temperature: 0.0,
                ..LfqConfig::new()
            }
            .build::<4>(),
            Err(QuantError::BadParam {
                name: "inv_temperature"
            })
        );
    }

    #[test]
    fn lfq_index_is_msb_first_and_round_trips() {
        let lfq = LfqConfig::new().build::<4>().unwrap();
        for idx in 0..16u32 {
            let codes = lfq.decode(idx).unwrap();
            assert_eq!(lfq.quantize(&codes), (codes, idx));
        }
        assert_eq!(lfq.encode(&[1.0, -1.0, -1.0, -1.0]), 8);
        assert_eq!(lfq.encode(&[f32::NAN, 0.0, -0.0, f32::INFINITY]), 1);
        assert!(lfq.decode(16).is_err());
    }

    #[test]
    fn lfq_entropy_checks_lengths_and_values() {
        let lfq = LfqConfig::new().build::<2>().unwrap();
        let mut scratch = [0.0f32; 4];
        assert!(lfq.entropy(&[0.1, 0.2, 0.3], &mut scratch).is_err());
        assert!(lfq.entropy(&[0.1, 0.2], &mut [0.0; 3]).is_err());
        assert_eq!(
            lfq.entropy(&[0.1, f32::NAN], &mut scratch),
            Err(QuantError::NonFinite { at: 1 })
        );
        let e = lfq.entropy(&[0.0, 0.0], &mut scratch).unwrap();
        // z = 0: every code has probability 1/4, both entropies are ln 4.
        assert!((e.per_sample - 4f32.ln()).abs() < 1e-6);
        assert!((e.codebook - 4f32.ln()).abs() < 1e-6);
    }
}
