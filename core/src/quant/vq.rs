//! VQ: vector quantization against a learned codebook (VQ-VAE, van den Oord et al. 2017),
//! with the EMA codebook update (Sonnet's `VectorQuantizerEMA`).
//!
//! Intuition: each input row snaps to its nearest codebook entry; the forward pass outputs
//! that entry and the backward pass copies the gradient straight through to the input
//! (STE), plus a commitment term that pulls inputs toward their codes. The codebook itself
//! either learns by gradient (the codebook loss) or, more stably, tracks the running mean of
//! the rows assigned to each code (EMA).
//!
//! ```text
//! k*   = argmin_k ‖z − e_k‖²                  ties: the first (lowest) index, as torch.argmin
//! z_q  = e_k*  (forward)      ∂L/∂z = ∂L/∂z_q + β·2(z − e_k*)/numel   (STE + commitment)
//! mse  = mean((z − e_k*)²)    commitment loss β·mse; codebook loss mse (gradient to e only)
//! ```
//! **EMA convention: Sonnet's, zero-debiased.** Hidden sums start at 0 and each batch does
//! `h ← γ·h + (1−γ)·x` (for the count of rows per code and for their sum); the reported
//! averages are `h/(1−γᵗ)` after `t` batches. With `N_k` the debiased count and `N = Σ N_k`:
//! ```text
//! Ñ_k = (N_k + ε)/(N + K·ε)·N        (Laplace smoothing)        e_k = m_k / Ñ_k
//! ```
//! So after the first batch a code is exactly (up to the smoothing) the mean of its rows, not
//! a blend with its initial value (lucidrains' non-debiased `lerp` from `cluster_size = 1`
//! keeps `1−γ` of the random initialisation). A consequence shared with Sonnet: **a code that
//! has never been assigned becomes 0** at the first update. Dead-code restarts
//! ([`VqConfig::dead_threshold`] > 0) replace every code whose EMA count falls below the
//! threshold with a row of the batch, which is the usual remedy for codebook collapse.
//!
//! Bad input: a NaN row selects code 0 (no NaN distance is ever "smaller"), and rows with
//! NaN/±Inf are refused by the EMA update and by initialisation (an error, nothing changed),
//! because one NaN in an EMA sum would poison its code for good.
//!
//! ```
//! use margay::quant::{VqConfig, VqState};
//! let vq = VqConfig::new().build::<2, 2>().unwrap();
//! let mut state = VqState::new([[0.0, 0.0], [1.0, 1.0]]);
//! assert_eq!(vq.nearest(&state.codebook, &[0.9, 0.8]).0, 1);
//! assert_eq!(vq.nearest(&state.codebook, &[0.5, 0.5]).0, 0); // a tie: the first index
//! let rows = [0.2, 0.0, 0.8, 1.0, 1.2, 1.0];
//! let mut idx = [0u32; 3];
//! vq.encode_rows(&state.codebook, &rows, &mut idx).unwrap();
//! assert_eq!(idx, [0, 1, 1]);
//! let stats = state.update(&vq, &rows, &idx, &mut margay::math::SplitMix64::new(7)).unwrap();
//! assert_eq!(stats.rows, 3);
//! assert!((state.codebook[1][0] - 1.0).abs() < 1e-4); // the mean of its two rows
//! ```

use super::{check_finite, QuantError};
use crate::math::{ln, powf, SplitMix64};

/// VQ hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VqConfig {
    /// Commitment weight β; 0.25 (the paper, Sonnet).
    pub beta: f32,
    /// EMA decay γ of the codebook statistics; 0.99 (Sonnet's examples). In (0, 1).
    pub decay: f32,
    /// Laplace smoothing ε; 1e-5 (Sonnet). Must be > 0: it keeps every `Ñ_k` non-zero.
    pub eps: f32,
    /// A code whose debiased EMA count falls below this is dead and is restarted from a
    /// batch row by [`VqState::update`]; 0 (off, as Sonnet and vector-quantize-pytorch).
    pub dead_threshold: f32,
}

impl Default for VqConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl VqConfig {
    /// The defaults above.
    pub const fn new() -> Self {
        VqConfig {
            beta: 0.25,
            decay: 0.99,
            eps: 1e-5,
            dead_threshold: 0.0,
        }
    }

    /// Validates for a codebook of `K` codes of `D` channels: `K, D ≥ 1`, `K` fits a `u32`
    /// index, β ≥ 0, γ ∈ (0, 1), ε ∈ (0, 1], threshold ≥ 0, all finite.
    pub fn build<const K: usize, const D: usize>(self) -> Result<Vq<K, D>, QuantError> {
        if K == 0 || D == 0 {
            return Err(QuantError::EmptyCodebook);
        }
        if K as u64 > u32::MAX as u64 {
            return Err(QuantError::CodebookTooLarge);
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return Err(QuantError::BadParam { name: "beta" });
        }
        if !(self.decay > 0.0 && self.decay < 1.0) {
            return Err(QuantError::BadParam { name: "decay" });
        }
        if !(self.eps > 0.0 && self.eps <= 1.0) {
            return Err(QuantError::BadParam { name: "eps" });
        }
        if !(self.dead_threshold >= 0.0 && self.dead_threshold.is_finite()) {
            return Err(QuantError::BadParam {
                name: "dead_threshold",
            });
        }
        Ok(Vq { cfg: self })
    }
}

/// A validated VQ quantizer for `K` codes of `D` channels. Stateless: the codebook lives in
/// a [`VqState`] (training) or any `[[f32; D]; K]` (inference, e.g. a `const` in flash).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vq<const K: usize, const D: usize> {
    cfg: VqConfig,
}

/// Losses of one batch ([`Vq::loss`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VqLoss {
    /// `mean((z − e_k*)²)` over all elements.
    pub mse: f32,
    /// `β·mse`, whose gradient goes to the inputs.
    pub commitment: f32,
    /// `mse`, whose gradient goes to the codebook (unused with the EMA update).
    pub codebook: f32,
    /// `exp(−Σ p̄ ln p̄)` of the batch's code usage p̄: 1 when one code takes every row, K
    /// when all are used equally.
    pub perplexity: f32,
}

/// Squared distance, summed in channel order.
#[inline(always)]
fn dist2<const D: usize>(z: &[f32; D], e: &[f32; D]) -> f32 {
    let mut d = 0.0f32;
    for (a, b) in z.iter().zip(e) {
        let t = a - b;
        d += t * t;
    }
    d
}

fn row<const D: usize>(s: &[f32]) -> [f32; D] {
    let mut v = [0.0f32; D];
    v.copy_from_slice(s);
    v
}

fn check_rows<const D: usize>(z: &[f32], n: usize) -> Result<(), QuantError> {
    if z.len() != D * n {
        return Err(QuantError::LengthMismatch {
            expected: D * n,
            got: z.len(),
        });
    }
    Ok(())
}

fn check_indices<const K: usize>(idx: &[u32]) -> Result<(), QuantError> {
    match idx.iter().find(|&&i| i as usize >= K) {
        Some(&index) => Err(QuantError::IndexOutOfRange {
            index,
            size: K as u32,
        }),
        None => Ok(()),
    }
}

/// `exp(entropy)` of counts.
fn perplexity(counts: &[u32], total: u32) -> f32 {
    if total == 0 {
        return 1.0;
    }
    let mut h = 0.0f32;
    for &c in counts {
        if c > 0 {
            let p = c as f32 / total as f32;
            h -= p * ln(p);
        }
    }
    crate::math::exp(h)
}

impl<const K: usize, const D: usize> Vq<K, D> {
    /// The validated configuration.
    pub const fn config(&self) -> &VqConfig {
        &self.cfg
    }

    /// The nearest code and its squared distance; the first index on ties, code 0 for a NaN
    /// row.
    #[inline]
    pub fn nearest(&self, codebook: &[[f32; D]; K], z: &[f32; D]) -> (u32, f32) {
        let mut best = (0u32, dist2(z, &codebook[0]));
        for (k, e) in codebook.iter().enumerate().skip(1) {
            let d = dist2(z, e);
            if d < best.1 {
                best = (k as u32, d);
            }
        }
        best
    }

    /// The forward output (the nearest code itself, exactly) and its index.
    #[inline]
    pub fn quantize(&self, codebook: &[[f32; D]; K], z: &[f32; D]) -> ([f32; D], u32) {
        let k = self.nearest(codebook, z).0;
        (codebook[k as usize], k)
    }

    /// The nearest code of each row (`z.len() == D·indices.len()`, else an error and nothing
    /// written).
    pub fn encode_rows(
        &self,
        codebook: &[[f32; D]; K],
        z: &[f32],
        indices: &mut [u32],
    ) -> Result<(), QuantError> {
        check_rows::<D>(z, indices.len())?;
        for (r, i) in z.chunks_exact(D).zip(indices.iter_mut()) {
            *i = self.nearest(codebook, &row(r)).0;
        }
        Ok(())
    }

    /// The codes of indices, row by row (an index ≥ K is an error and nothing is written).
    pub fn decode_rows(
        &self,
        codebook: &[[f32; D]; K],
        indices: &[u32],
        out: &mut [f32],
    ) -> Result<(), QuantError> {
        check_rows::<D>(out, indices.len())?;
        check_indices::<K>(indices)?;
        for (o, &i) in out.chunks_exact_mut(D).zip(indices) {
            o.copy_from_slice(&codebook[i as usize]);
        }
        Ok(())
    }

    /// The batch losses for rows `z` assigned to `indices`.
    pub fn loss(
        &self,
        codebook: &[[f32; D]; K],
        z: &[f32],
        indices: &[u32],
    ) -> Result<VqLoss, QuantError> {
        check_rows::<D>(z, indices.len())?;
        check_indices::<K>(indices)?;
        let mut counts = [0u32; K];
        let mut sum = 0.0f32;
        for (r, &i) in z.chunks_exact(D).zip(indices) {
            sum += dist2(&row(r), &codebook[i as usize]);
            counts[i as usize] += 1;
        }
        let mse = if z.is_empty() {
            0.0
        } else {
            sum / z.len() as f32
        };
        Ok(VqLoss {
            mse,
            commitment: self.cfg.beta * mse,
            codebook: mse,
            perplexity: perplexity(&counts, indices.len() as u32),
        })
    }

    /// Backward pass to the inputs: `grad_z = grad_out + β·2(z − e_k)/numel` (the STE copy
    /// of the output gradient plus the commitment term's gradient). All slices hold
    /// `D·indices.len()` values.
    pub fn backward(
        &self,
        codebook: &[[f32; D]; K],
        z: &[f32],
        indices: &[u32],
        grad_out: &[f32],
        grad_z: &mut [f32],
    ) -> Result<(), QuantError> {
        check_rows::<D>(z, indices.len())?;
        check_rows::<D>(grad_out, indices.len())?;
        check_rows::<D>(grad_z, indices.len())?;
        check_indices::<K>(indices)?;
        let c = 2.0 * self.cfg.beta / z.len().max(1) as f32;
        let rows = z.chunks_exact(D).zip(grad_out.chunks_exact(D));
        for (((zr, gr), out), &i) in rows.zip(grad_z.chunks_exact_mut(D)).zip(indices) {
            let e = &codebook[i as usize];
            for j in 0..D {
                out[j] = gr[j] + c * (zr[j] - e[j]);
            }
        }
        Ok(())
    }

    /// Gradient of the codebook loss for codebook training by gradient descent (instead of
    /// EMA): `grad[k] += 2(e_k − z)/numel` over the rows assigned to `k`. Accumulates.
    pub fn codebook_grad(
        &self,
        codebook: &[[f32; D]; K],
        z: &[f32],
        indices: &[u32],
        grad: &mut [[f32; D]; K],
    ) -> Result<(), QuantError> {
        check_rows::<D>(z, indices.len())?;
        check_indices::<K>(indices)?;
        let c = 2.0 / z.len().max(1) as f32;
        for (zr, &i) in z.chunks_exact(D).zip(indices) {
            let (e, g) = (&codebook[i as usize], &mut grad[i as usize]);
            for j in 0..D {
                g[j] += c * (e[j] - zr[j]);
            }
        }
        Ok(())
    }
}

/// Statistics of one EMA batch ([`EmaBatch::finish`], [`VqState::update`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmaStats {
    /// Rows in the batch.
    pub rows: u32,
    /// Perplexity of the batch's code usage (see [`VqLoss::perplexity`]).
    pub perplexity: f32,
    /// Codes whose debiased EMA count is below the dead threshold after this batch
    /// (before any restart).
    pub dead: u32,
    /// Codes restarted from batch rows ([`VqState::update`] only).
    pub restarted: u32,
}

/// The trainable state of a VQ: the codebook and its EMA statistics (Sonnet's convention,
/// see the module docs). `2·K·D + K` floats.
#[derive(Debug, Clone, PartialEq)]
pub struct VqState<const K: usize, const D: usize> {
    /// The codebook, row `k` is code `k`.
    pub codebook: [[f32; D]; K],
    /// Hidden (biased) EMA of the number of rows per code.
    ema_count: [f32; K],
    /// Hidden (biased) EMA of the sum of the rows per code.
    ema_sum: [[f32; D]; K],
    /// EMA batches so far (`t`).
    steps: u32,
}

/// One EMA batch in progress: rows are added one at a time (no buffer, for devices that
/// stream their data), then [`EmaBatch::finish`] recomputes the codebook. Created by
/// [`VqState::ema_batch`], which already decayed the statistics; dropping the batch without
/// `finish` leaves the codebook as it was until the next `finish`.
pub struct EmaBatch<'a, const K: usize, const D: usize> {
    state: &'a mut VqState<K, D>,
    cfg: VqConfig,
    counts: [u32; K],
    rows: u32,
}

impl<const K: usize, const D: usize> EmaBatch<'_, K, D> {
    /// Adds row `z` assigned to code `k`. A NaN/±Inf value or `k ≥ K` is an error and the
    /// row is not added.
    pub fn add(&mut self, z: &[f32; D], k: u32) -> Result<(), QuantError> {
        check_finite(z)?;
        check_indices::<K>(&[k])?;
        self.push(z, k);
        Ok(())
    }

    /// [`EmaBatch::add`] for a row and index already checked.
    fn push(&mut self, z: &[f32; D], k: u32) {
        let w = 1.0 - self.cfg.decay;
        let s = &mut *self.state;
        s.ema_count[k as usize] += w;
        for (m, x) in s.ema_sum[k as usize].iter_mut().zip(z) {
            *m += w * x;
        }
        self.counts[k as usize] += 1;
        self.rows += 1;
    }

    /// Recomputes every code from the debiased, Laplace-smoothed statistics and counts the
    /// dead codes. With no row ever seen, the codebook is left unchanged.
    pub fn finish(self) -> EmaStats {
        let s = self.state;
        let bias = s.bias(self.cfg.decay);
        let mut n = 0.0f32;
        for c in &s.ema_count {
            n += c / bias;
        }
        let mut dead = 0;
        if n > 0.0 {
            let eps = self.cfg.eps;
            let denom = n + K as f32 * eps;
            for k in 0..K {
                let nk = s.ema_count[k] / bias;
                let smoothed = (nk + eps) / denom * n;
                for (e, m) in s.codebook[k].iter_mut().zip(&s.ema_sum[k]) {
                    *e = (m / bias) / smoothed;
                }
                if nk < self.cfg.dead_threshold {
                    dead += 1;
                }
            }
        }
        EmaStats {
            rows: self.rows,
            perplexity: perplexity(&self.counts, self.rows),
            dead,
            restarted: 0,
        }
    }
}

impl<const K: usize, const D: usize> VqState<K, D> {
    /// A state with this initial codebook and empty statistics.
    pub const fn new(codebook: [[f32; D]; K]) -> Self {
        VqState {
            codebook,
            ema_count: [0.0; K],
            ema_sum: [[0.0; D]; K],
            steps: 0,
        }
    }

    /// EMA batches done so far.
    pub const fn steps(&self) -> u32 {
        self.steps
    }

    /// The debiased EMA count `N_k` of code `k` (0 before any batch).
    pub fn count(&self, vq: &Vq<K, D>, k: usize) -> f32 {
        if self.steps == 0 {
            return 0.0;
        }
        self.ema_count[k] / self.bias(vq.cfg.decay)
    }

    /// The debiasing divisor `1 − γᵗ` of the hidden statistics (1 before any batch).
    fn bias(&self, decay: f32) -> f32 {
        if self.steps == 0 {
            1.0
        } else {
            1.0 - powf(decay, self.steps as f32)
        }
    }

    /// Starts an EMA batch: `t ← t+1` and the hidden statistics decay by γ.
    pub fn ema_batch(&mut self, vq: &Vq<K, D>) -> EmaBatch<'_, K, D> {
        let g = vq.cfg.decay;
        self.steps = self.steps.saturating_add(1);
        for (c, m) in self.ema_count.iter_mut().zip(self.ema_sum.iter_mut()) {
            *c *= g;
            for x in m.iter_mut() {
                *x *= g;
            }
        }
        EmaBatch {
            state: self,
            cfg: vq.cfg,
            counts: [0; K],
            rows: 0,
        }
    }

    /// Restarts code `k` at `sample` with the EMA count of the dead threshold (so a restarted
    /// code that attracts no rows is restarted again at the next update).
    pub fn restart(&mut self, vq: &Vq<K, D>, k: usize, sample: &[f32; D]) {
        let c = vq.cfg.dead_threshold * self.bias(vq.cfg.decay);
        self.codebook[k] = *sample;
        self.ema_count[k] = c;
        for (m, x) in self.ema_sum[k].iter_mut().zip(sample) {
            *m = c * x;
        }
    }

    /// One EMA batch from slices: rows `z` (`D` values each) assigned to `indices`, then,
    /// if [`VqConfig::dead_threshold`] > 0, every dead code restarted at a row drawn
    /// uniformly from the batch. A length mismatch, an index ≥ K or a non-finite value is an
    /// error and nothing is changed.
    pub fn update(
        &mut self,
        vq: &Vq<K, D>,
        z: &[f32],
        indices: &[u32],
        rng: &mut SplitMix64,
    ) -> Result<EmaStats, QuantError> {
        check_rows::<D>(z, indices.len())?;
        check_indices::<K>(indices)?;
        check_finite(z)?;
        // Everything is checked above, so the batch cannot stop half-way.
        let mut batch = self.ema_batch(vq);
        for (r, &k) in z.chunks_exact(D).zip(indices) {
            batch.push(&row(r), k);
        }
        let mut stats = batch.finish();
        if vq.cfg.dead_threshold > 0.0 && !indices.is_empty() {
            for k in 0..K {
                if self.count(vq, k) < vq.cfg.dead_threshold {
                    let r = rng.below(indices.len() as u64) as usize;
                    let sample = row(&z[r * D..(r + 1) * D]);
                    self.restart(vq, k, &sample);
                    stats.restarted += 1;
                }
            }
        }
        Ok(stats)
    }
}

/// Streaming data-sample initialisation (reservoir sampling, Vitter's algorithm R): offer
/// every row of a stream once; afterwards each code is a uniformly drawn row, with no
/// buffer beyond the codebook. With fewer than `K` rows, the remaining codes keep their
/// values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reservoir {
    seen: u64,
}

impl Reservoir {
    /// An empty reservoir.
    pub const fn new() -> Self {
        Reservoir { seen: 0 }
    }

    /// Rows offered so far.
    pub const fn seen(&self) -> u64 {
        self.seen
    }

    /// Offers one row; a non-finite row is an error and is skipped (not counted).
    pub fn offer<const K: usize, const D: usize>(
        &mut self,
        codebook: &mut [[f32; D]; K],
        z: &[f32; D],
        rng: &mut SplitMix64,
    ) -> Result<(), QuantError> {
        check_finite(z)?;
        let slot = if (self.seen as usize) < K {
            self.seen
        } else {
            rng.below(self.seen + 1)
        };
        if (slot as usize) < K {
            codebook[slot as usize] = *z;
        }
        self.seen += 1;
        Ok(())
    }
}

/// k-means++ seeding (Arthur and Vassilvitskii 2007) of a codebook from rows `z`: the first
/// code is a uniform row, each next one a row drawn with probability ∝ its squared distance
/// to the nearest code chosen so far. No buffer: the distances are recomputed for each new
/// code (`O(n·K²·D)` work). When every row already coincides with a chosen code, the rest
/// are drawn uniformly. No rows, a length that is not a multiple of `D`, or a non-finite
/// value is an error and the codebook is unchanged.
pub fn kmeans_pp<const K: usize, const D: usize>(
    codebook: &mut [[f32; D]; K],
    z: &[f32],
    rng: &mut SplitMix64,
) -> Result<(), QuantError> {
    let n = z.len() / D;
    if n == 0 || !z.len().is_multiple_of(D) {
        return Err(QuantError::LengthMismatch {
            expected: D * n.max(1),
            got: z.len(),
        });
    }
    check_finite(z)?;
    let first = rng.below(n as u64) as usize;
    codebook[0] = row(&z[first * D..(first + 1) * D]);
    for c in 1..K {
        let min_dist = |r: &[f32]| {
            let x = row::<D>(r);
            codebook[..c]
                .iter()
                .map(|e| dist2(&x, e))
                .fold(f32::INFINITY, f32::min)
        };
        let total: f64 = z.chunks_exact(D).map(|r| min_dist(r) as f64).sum();
        let pick = if total > 0.0 {
            let u = rng.next_f32() as f64 * total;
            let mut acc = 0.0f64;
            let mut pick = n - 1;
            for (i, r) in z.chunks_exact(D).enumerate() {
                let d = min_dist(r) as f64;
                acc += d;
                if acc > u && d > 0.0 {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            rng.below(n as u64) as usize
        };
        codebook[c] = row(&z[pick * D..(pick + 1) * D]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vq_rejects_bad_config() {
        assert_eq!(
            VqConfig::new().build::<0, 2>(),
            Err(QuantError::EmptyCodebook)
        );
        for (cfg, name) in [
            (
                VqConfig {
                    beta: -1.0,
                    ..VqConfig::new()
                },
                "beta",
            ),
            (
                VqConfig {
                    decay: 1.0,
                    ..VqConfig::new()
                },
                "decay",
            ),
            (
                VqConfig {
                    eps: 0.0,
                    ..VqConfig::new()
                },
                "eps",
            ),
            (
                VqConfig {
                    dead_threshold: f32::NAN,
                    ..VqConfig::new()
                },
                "dead_threshold",
            ),
        ] {
            assert_eq!(cfg.build::<4, 2>(), Err(QuantError::BadParam { name }));
        }
    }
}
