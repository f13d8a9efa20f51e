//! FSQ: finite scalar quantization (Mentzer et al. 2023, arXiv 2309.15505; kexue 9826).
//!
//! Intuition: squash each of a few channels into a bounded range and round it to one of
//! `Lᵢ` integer levels; the codebook is the grid of all level combinations (∏ Lᵢ codes), so
//! there is nothing to learn or store, and no codebook collapse.
//!
//! Per channel, following vector-quantize-pytorch (`FSQ`, the golden vectors' reference):
//! ```text
//! half_l = (L−1)(1+ε)/2      offset = 0.5 if L even else 0      shift = atanh(offset/half_l)
//! b = tanh(z + shift)·half_l − offset
//! q = round(b)               ties to even; q ∈ {−⌊L/2⌋ … ⌊L/2⌋} (odd L), {−L/2 … L/2−1} (even L)
//! code = q / ⌊L/2⌋           the normalized code
//! k = q + ⌊L/2⌋ ∈ 0 … L−1    index = Σ kᵢ·basisᵢ, basis = [1, L₀, L₀L₁, …] (channel 0 least significant)
//! ```
//! **Even L is asymmetric**: codes span [−1, 1 − 2/L] (for L = 8: [−1, 0.75]), because the
//! integer levels are {−L/2 … L/2−1}. The official notebook uses `(1−ε)` and `tan` for the
//! shift; both give the same level sets for L ≥ 3 (the reference's table).
//!
//! [`FsqVariant::Symmetric`] (`preserve_symmetry`, arXiv 2411.19842): `k = ⌊(L−1)(tanh z + 1)/2
//! + 0.5⌋`, code `2k/(L−1) − 1`: a symmetric grid on [−1, 1] for every L, including 2.
//!
//! Bad input: NaN is quantized as `z = 0` (the centre code of the standard variant); its
//! gradient is 0. ±Inf saturates to the extreme code. Indices are computed from the integer
//! levels, never from normalized floats, so index ↔ codes round-trips exactly.
//!
//! ```
//! use margay::quant::FsqConfig;
//! let fsq = FsqConfig::new([3, 5, 4]).build().unwrap();
//! let (codes, index) = fsq.quantize(&[0.25, 0.6, -7.0]);
//! assert_eq!((codes, index), ([0.0, 0.5, -1.0], 10)); // the paper's example
//! assert_eq!(fsq.decode(10), Ok(codes));
//! ```

use super::QuantError;
use crate::math::{atanh, order_key, round_ties_even_small, round_to_i32_small, tanh, tanh_fast};

/// The recommended level sets of the FSQ paper (Table 1), by target codebook size.
pub mod levels {
    /// ≈ 2⁸: 240 codes.
    pub const L2_8: [u32; 3] = [8, 6, 5];
    /// ≈ 2¹⁰: 1,000 codes.
    pub const L2_10: [u32; 4] = [8, 5, 5, 5];
    /// ≈ 2¹²: 4,375 codes.
    pub const L2_12: [u32; 5] = [7, 5, 5, 5, 5];
    /// ≈ 2¹⁴: 15,360 codes.
    pub const L2_14: [u32; 5] = [8, 8, 8, 6, 5];
    /// ≈ 2¹⁶: 64,000 codes.
    pub const L2_16: [u32; 6] = [8, 8, 8, 5, 5, 5];
}

/// Which FSQ grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FsqVariant {
    /// The paper's bound and rounding (vector-quantize-pytorch's default). L ≥ 3.
    Standard,
    /// `preserve_symmetry`: a symmetric grid on [−1, 1]; L ≥ 2.
    Symmetric,
}

/// How the level of a latent is found: through a tanh at run time, or by comparing the
/// latent with precomputed decision thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Tanh {
    /// libm's `tanhf` (about 1 ulp), then the bound and rounding in f32.
    Accurate,
    /// [`crate::math::tanh_fast`]: error at most [`crate::math::TANH_FAST_MAX_ERROR`], so a
    /// code can differ from the accurate path only when `b` lies within
    /// `half_l·TANH_FAST_MAX_ERROR` (plus rounding) of a rounding tie (a tested property).
    Fast,
    /// No tanh at run time. The bound is monotone in `z`, so level `k` is the number of
    /// decision thresholds `Tⱼ` with `z ≥ Tⱼ`: the `L−1` latents where the bound crosses a
    /// rounding point, `atanh((j + ½ + offset)/half_l) − shift` (standard; the symmetric
    /// variant's analogue), computed in f64 when the quantizer is built and rounded up to
    /// f32. The level is that of the exact real-valued bound (correctly rounded: the f32
    /// pipelines of the other two modes differ from it only within a few ulp of a tie, a
    /// tested property), the comparisons are integer compares of [`crate::math::order_key`]s
    /// (no FPU needed), and it is the fastest mode on every chip. Up to
    /// [`MAX_THRESHOLD_LEVELS`] levels per channel (a larger level is a
    /// [`QuantError::TooManyLevels`] at build). [`Fsq::bound`] and [`Fsq::vjp`] use libm's
    /// tanh in this mode.
    Thresholds,
}

/// The most levels per channel that [`Tanh::Thresholds`] stores thresholds for (15 per
/// channel, 60 bytes); every recommended level set ([`levels`]) uses at most 8.
pub const MAX_THRESHOLD_LEVELS: u32 = 16;

/// Thresholds stored per channel.
const MAX_THRESHOLDS: usize = MAX_THRESHOLD_LEVELS as usize - 1;

/// FSQ hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsqConfig<const D: usize> {
    /// Levels per channel (`D` channels).
    pub levels: [u32; D],
    /// ε of the half-width `(L−1)(1+ε)/2`; 1e-3 (vector-quantize-pytorch).
    pub eps: f32,
    /// The grid.
    pub variant: FsqVariant,
    /// The tanh of the bound.
    pub tanh: Tanh,
}

impl<const D: usize> FsqConfig<D> {
    /// The standard variant with ε = 1e-3 and the accurate tanh.
    pub const fn new(levels: [u32; D]) -> Self {
        FsqConfig {
            levels,
            eps: 1e-3,
            variant: FsqVariant::Standard,
            tanh: Tanh::Accurate,
        }
    }

    /// Validates: at least one channel; every level in 2..=65,536 (and ≥ 3 in the standard
    /// variant); ∏ Lᵢ fits a `u32`; ε ∈ [0, 0.1].
    pub fn build(self) -> Result<Fsq<D>, QuantError> {
        if D == 0 {
            return Err(QuantError::EmptyLevels);
        }
        if !(0.0..=0.1).contains(&self.eps) {
            return Err(QuantError::BadEps);
        }
        let min = match self.variant {
            FsqVariant::Standard => 3,
            FsqVariant::Symmetric => 2,
        };
        let mut fsq = Fsq {
            cfg: self,
            half_l: [0.0; D],
            offset: [0.0; D],
            shift: [0.0; D],
            half_width: [0; D],
            basis: [0; D],
            size: 1,
            thresholds: [[i32::MAX; MAX_THRESHOLDS + 1]; D],
        };
        for (i, &l) in self.levels.iter().enumerate() {
            if l < min || l > 65_536 {
                return Err(QuantError::BadLevel {
                    channel: i,
                    level: l,
                });
            }
            fsq.basis[i] = fsq.size;
            fsq.size = fsq
                .size
                .checked_mul(l)
                .ok_or(QuantError::CodebookTooLarge)?;
            let lf = l as f32;
            fsq.half_l[i] = (lf - 1.0) * (1.0 + self.eps) / 2.0;
            fsq.offset[i] = if l % 2 == 0 { 0.5 } else { 0.0 };
            fsq.shift[i] = atanh(fsq.offset[i] / fsq.half_l[i]);
            fsq.half_width[i] = (l / 2) as i32;
            if self.tanh == Tanh::Thresholds {
                if l > MAX_THRESHOLD_LEVELS {
                    return Err(QuantError::TooManyLevels {
                        channel: i,
                        level: l,
                        max: MAX_THRESHOLD_LEVELS,
                    });
                }
                fsq.thresholds[i] = fsq.decision_keys(i);
            }
        }
        Ok(fsq)
    }
}

/// A validated FSQ quantizer over `D` channels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fsq<const D: usize> {
    cfg: FsqConfig<D>,
    half_l: [f32; D],
    offset: [f32; D],
    shift: [f32; D],
    half_width: [i32; D],
    basis: [u32; D],
    size: u32,
    /// [`Tanh::Thresholds`]: the order keys of the `L−1` thresholds of each channel, ascending,
    /// padded with `i32::MAX` (above every key of a non-NaN float).
    thresholds: [[i32; MAX_THRESHOLDS + 1]; D],
}

// Channels index several parallel per-channel arrays.
#[allow(clippy::needless_range_loop)]
impl<const D: usize> Fsq<D> {
    /// The validated configuration.
    pub const fn config(&self) -> &FsqConfig<D> {
        &self.cfg
    }

    /// Number of codes, ∏ Lᵢ.
    pub const fn codebook_size(&self) -> u32 {
        self.size
    }

    #[inline(always)]
    fn th(&self, x: f32) -> f32 {
        match self.cfg.tanh {
            Tanh::Accurate | Tanh::Thresholds => tanh(x),
            Tanh::Fast => tanh_fast(x),
        }
    }

    /// The latents where channel `i`'s exact bound reaches a rounding point, as order keys,
    /// ascending: `z ≥ Tⱼ` ⇔ level > j. In f64 from the stored f32 constants, then rounded up
    /// to the first f32 at or above (a threshold of 0 gets −0's key, so both zeros pass it).
    /// An exact tie (the bound exactly on a rounding point) only happens where the tanh is 0,
    /// and both variants round it up (ties to even at q = 0; ⌊j⌋ = j), hence `≥`.
    fn decision_keys(&self, i: usize) -> [i32; MAX_THRESHOLDS + 1] {
        let mut keys = [i32::MAX; MAX_THRESHOLDS + 1];
        let top = self.cfg.levels[i] as usize - 1;
        let (half_l, offset, shift) = (
            self.half_l[i] as f64,
            self.offset[i] as f64,
            self.shift[i] as f64,
        );
        for (j, key) in keys.iter_mut().enumerate().take(top) {
            let t = match self.cfg.variant {
                // b = q + ½ with q = j − ⌊L/2⌋: tanh(z + shift) = (q + ½ + offset)/half_l.
                FsqVariant::Standard => {
                    let q = j as f64 - self.half_width[i] as f64;
                    libm::atanh((q + 0.5 + offset) / half_l) - shift
                }
                // (L−1)(tanh z + 1)/2 + ½ = j + 1: tanh z = (2j + 1)/(L−1) − 1.
                FsqVariant::Symmetric => libm::atanh((2 * j + 1) as f64 / top as f64 - 1.0),
            };
            let mut f = t as f32;
            if (f as f64) < t {
                f = f.next_up();
            }
            *key = if f == 0.0 {
                order_key(-0.0)
            } else {
                order_key(f)
            };
        }
        keys
    }

    /// The level of `z` on channel `i` by counting the thresholds at or below it (NaN counts
    /// as 0).
    #[inline(always)]
    fn level_by_thresholds(&self, i: usize, z: f32) -> u32 {
        count_at_or_below(&self.thresholds[i][..self.cfg.levels[i] as usize - 1], z)
    }

    /// The bounded value before rounding: `b` of the module docs (standard), or
    /// `(L−1)(tanh z + 1)/2` (symmetric). NaN counts as 0.
    #[inline(always)]
    pub fn bound(&self, channel: usize, z: f32) -> f32 {
        let c = self.channel(channel);
        match self.cfg.variant {
            FsqVariant::Standard => c.bound::<false>(z, |x| self.th(x)),
            FsqVariant::Symmetric => c.bound::<true>(z, |x| self.th(x)),
        }
    }

    /// The constants of channel `i`, for loops that keep them in registers.
    #[inline(always)]
    fn channel(&self, i: usize) -> Channel {
        Channel {
            shift: self.shift[i],
            half_l: self.half_l[i],
            offset: self.offset[i],
            half_width: self.half_width[i],
            top: self.cfg.levels[i] as i32 - 1,
        }
    }

    /// [`Channel::level`] of channel `i` for the configured variant and tanh.
    #[inline(always)]
    fn level(&self, i: usize, z: f32) -> u32 {
        let c = self.channel(i);
        match (self.cfg.tanh, self.cfg.variant) {
            (Tanh::Thresholds, _) => self.level_by_thresholds(i, z),
            (_, FsqVariant::Standard) => c.level::<false>(z, |x| self.th(x)),
            (_, FsqVariant::Symmetric) => c.level::<true>(z, |x| self.th(x)),
        }
    }

    /// The integer level `kᵢ ∈ 0 … Lᵢ−1` of every channel.
    #[inline]
    pub fn quantize_levels(&self, z: &[f32; D]) -> [u32; D] {
        let mut k = [0u32; D];
        for i in 0..D {
            k[i] = self.level(i, z[i]);
        }
        k
    }

    /// The normalized codes of integer levels.
    #[inline]
    pub fn codes_of_levels(&self, k: &[u32; D]) -> [f32; D] {
        let mut c = [0.0f32; D];
        for i in 0..D {
            c[i] = match self.cfg.variant {
                FsqVariant::Standard => {
                    (k[i] as i32 - self.half_width[i]) as f32 / self.half_width[i] as f32
                }
                FsqVariant::Symmetric => {
                    let top = self.cfg.levels[i] as i32 - 1;
                    (2 * k[i] as i32 - top) as f32 / top as f32
                }
            };
        }
        c
    }

    /// The index of integer levels (mixed radix, channel 0 least significant).
    #[inline]
    pub fn index_of_levels(&self, k: &[u32; D]) -> u32 {
        let mut idx = 0u32;
        for i in 0..D {
            idx += k[i] * self.basis[i];
        }
        idx
    }

    /// The integer levels of an index; an index ≥ the codebook size is an error.
    pub fn levels_of_index(&self, index: u32) -> Result<[u32; D], QuantError> {
        if index >= self.size {
            return Err(QuantError::IndexOutOfRange {
                index,
                size: self.size,
            });
        }
        let mut k = [0u32; D];
        for i in 0..D {
            k[i] = (index / self.basis[i]) % self.cfg.levels[i];
        }
        Ok(k)
    }

    /// Codes and index of one vector.
    #[inline]
    pub fn quantize(&self, z: &[f32; D]) -> ([f32; D], u32) {
        let k = self.quantize_levels(z);
        (self.codes_of_levels(&k), self.index_of_levels(&k))
    }

    /// The index of one vector.
    #[inline]
    pub fn encode(&self, z: &[f32; D]) -> u32 {
        self.index_of_levels(&self.quantize_levels(z))
    }

    /// The codes of an index.
    pub fn decode(&self, index: u32) -> Result<[f32; D], QuantError> {
        Ok(self.codes_of_levels(&self.levels_of_index(index)?))
    }

    /// The nearest grid point to a vector given in code space (each channel rounded to its
    /// nearest code, clamped to the grid): the identity on codes, so quantization is
    /// idempotent there. NaN snaps to the centre level.
    pub fn snap_levels(&self, codes: &[f32; D]) -> [u32; D] {
        let mut k = [0u32; D];
        for i in 0..D {
            let c = if codes[i].is_nan() { 0.0 } else { codes[i] };
            let top = self.cfg.levels[i] as i32 - 1;
            let ki = match self.cfg.variant {
                FsqVariant::Standard => {
                    let hw = self.half_width[i] as f32;
                    round_ties_even_small(c.clamp(-2.0, 2.0) * hw) as i32 + self.half_width[i]
                }
                FsqVariant::Symmetric => {
                    round_ties_even_small((c.clamp(-2.0, 2.0) + 1.0) * top as f32 / 2.0) as i32
                }
            };
            k[i] = ki.clamp(0, top) as u32;
        }
        k
    }

    /// The straight-through gradient (a vector-Jacobian product): given `∂L/∂codes`, returns
    /// `∂L/∂z`, the gradient of the bounded value (rounding counts as the identity):
    /// `∂codeᵢ/∂zᵢ = half_l·(1 − tanh²(zᵢ + shift))/⌊L/2⌋` (standard) or `1 − tanh² zᵢ`
    /// (symmetric). 0 where `z` is NaN.
    pub fn vjp(&self, z: &[f32; D], grad_codes: &[f32; D]) -> [f32; D] {
        let mut g = [0.0f32; D];
        for i in 0..D {
            if z[i].is_nan() {
                continue;
            }
            let d = match self.cfg.variant {
                FsqVariant::Standard => {
                    let t = self.th(z[i] + self.shift[i]);
                    self.half_l[i] * (1.0 - t * t) / self.half_width[i] as f32
                }
                FsqVariant::Symmetric => {
                    let t = self.th(z[i]);
                    1.0 - t * t
                }
            };
            g[i] = grad_codes[i] * d;
        }
        g
    }

    /// Encodes rows of `D` values (`z.len() == D·indices.len()`, else an error and nothing
    /// written). Rows go through in blocks of 8, channel by channel, so that on x86-64 with
    /// AVX2 the bound and rounding run on 8 lanes at once (with [`Tanh::Fast`]; libm's tanh
    /// stays scalar). Same operations per element as [`Fsq::encode`]: the same indices.
    pub fn encode_rows(&self, z: &[f32], indices: &mut [u32]) -> Result<(), QuantError> {
        if z.len() != D * indices.len() {
            return Err(QuantError::LengthMismatch {
                expected: D * indices.len(),
                got: z.len(),
            });
        }
        let blocks = indices.len() / LANES;
        let (zb, zt) = z.split_at(blocks * LANES * D);
        let (ib, it) = indices.split_at_mut(blocks * LANES);
        crate::simd::vectorized(EncodeBlocks(self, zb, ib));
        for (row, idx) in zt.chunks_exact(D).zip(it.iter_mut()) {
            let mut v = [0.0f32; D];
            v.copy_from_slice(row);
            *idx = self.encode(&v);
        }
        Ok(())
    }

    /// Whole blocks of `LANES` rows: channel-major inner loops over the lanes, with the
    /// variant and the tanh chosen outside the loops so that the loop bodies are branch-free.
    #[inline(always)]
    fn encode_blocks(&self, z: &[f32], indices: &mut [u32]) {
        match (self.cfg.variant, self.cfg.tanh) {
            (_, Tanh::Thresholds) => self.blocks_by_thresholds(z, indices),
            (FsqVariant::Standard, Tanh::Fast) => self.blocks_with::<false>(z, indices, tanh_fast),
            (FsqVariant::Standard, Tanh::Accurate) => self.blocks_with::<false>(z, indices, tanh),
            (FsqVariant::Symmetric, Tanh::Fast) => self.blocks_with::<true>(z, indices, tanh_fast),
            (FsqVariant::Symmetric, Tanh::Accurate) => self.blocks_with::<true>(z, indices, tanh),
        }
    }

    #[inline(always)]
    fn blocks_with<const SYM: bool>(
        &self,
        z: &[f32],
        indices: &mut [u32],
        th: impl Fn(f32) -> f32 + Copy,
    ) {
        for (zb, ib) in z
            .chunks_exact(LANES * D)
            .zip(indices.chunks_exact_mut(LANES))
        {
            let mut acc = [0u32; LANES];
            for i in 0..D {
                let (c, basis) = (self.channel(i), self.basis[i]);
                for (r, a) in acc.iter_mut().enumerate() {
                    *a += c.level::<SYM>(zb[r * D + i], th) * basis;
                }
            }
            ib.copy_from_slice(&acc);
        }
    }

    /// [`Tanh::Thresholds`] over whole blocks: per channel, the lanes' order keys are
    /// compared with each threshold in turn (integer compares on 8 lanes).
    #[inline(always)]
    fn blocks_by_thresholds(&self, z: &[f32], indices: &mut [u32]) {
        for (zb, ib) in z
            .chunks_exact(LANES * D)
            .zip(indices.chunks_exact_mut(LANES))
        {
            let mut acc = [0u32; LANES];
            for i in 0..D {
                let mut kz = [0i32; LANES];
                for (r, k) in kz.iter_mut().enumerate() {
                    *k = latent_key(zb[r * D + i]);
                }
                let mut level = [0u32; LANES];
                // Whole groups of 4 thresholds (the padding keys, i32::MAX, never pass): the
                // group's body is straight-line code over the lanes, so the lanes vectorize.
                let groups = (self.cfg.levels[i] as usize - 1).div_ceil(4);
                for ts in self.thresholds[i][..4 * groups].chunks_exact(4) {
                    for &t in ts {
                        for (l, &k) in level.iter_mut().zip(&kz) {
                            *l += (k >= t) as u32;
                        }
                    }
                }
                for (a, &l) in acc.iter_mut().zip(&level) {
                    *a += l * self.basis[i];
                }
            }
            ib.copy_from_slice(&acc);
        }
    }

    /// Quantizes rows: codes into `codes` (same length as `z`) and one index per row.
    pub fn quantize_rows(
        &self,
        z: &[f32],
        codes: &mut [f32],
        indices: &mut [u32],
    ) -> Result<(), QuantError> {
        if z.len() != D * indices.len() || codes.len() != z.len() {
            return Err(QuantError::LengthMismatch {
                expected: D * indices.len(),
                got: if codes.len() != z.len() {
                    codes.len()
                } else {
                    z.len()
                },
            });
        }
        let rows = z.chunks_exact(D).zip(codes.chunks_exact_mut(D));
        for ((row, out), idx) in rows.zip(indices.iter_mut()) {
            let mut v = [0.0f32; D];
            v.copy_from_slice(row);
            let (c, i) = self.quantize(&v);
            out.copy_from_slice(&c);
            *idx = i;
        }
        Ok(())
    }
}

/// The per-channel constants of one FSQ channel, and its bound and level.
#[derive(Clone, Copy)]
struct Channel {
    shift: f32,
    half_l: f32,
    offset: f32,
    half_width: i32,
    /// L − 1.
    top: i32,
}

impl Channel {
    /// The bounded value before rounding, for a variant (`SYM`) and a tanh fixed by the
    /// caller, so that loops can choose both once, outside. NaN counts as 0.
    #[inline(always)]
    fn bound<const SYM: bool>(&self, z: f32, th: impl Fn(f32) -> f32) -> f32 {
        let z = if z.is_nan() { 0.0 } else { z };
        if SYM {
            self.top as f32 * (th(z) + 1.0) / 2.0
        } else {
            th(z + self.shift) * self.half_l - self.offset
        }
    }

    /// The integer level: `q = round(b)`, then `k = q + ⌊L/2⌋` (standard) or `k = ⌊b + 0.5⌋`
    /// (symmetric); the clamp only guards the extremes.
    #[inline(always)]
    fn level<const SYM: bool>(&self, z: f32, th: impl Fn(f32) -> f32) -> u32 {
        let b = self.bound::<SYM>(z, th);
        let k = if SYM {
            floor_small(b + 0.5)
        } else {
            round_to_i32_small(b) + self.half_width
        };
        k.clamp(0, self.top) as u32
    }
}

/// How many of the ascending threshold keys `keys` are at or below `z` (NaN counts as 0).
/// One copy for every `D` and call site: the row-at-a-time paths are not the hot loop (that
/// is [`Fsq::encode_rows`]), and inlined copies cost microcontroller flash.
#[inline(never)]
fn count_at_or_below(keys: &[i32], z: f32) -> u32 {
    let kz = latent_key(z);
    let mut k = 0;
    for &t in keys {
        k += (kz >= t) as u32;
    }
    k
}

/// The order key a latent is compared by in [`Tanh::Thresholds`]: NaN counts as 0 (the
/// centre code, as in the other modes).
#[inline(always)]
fn latent_key(z: f32) -> i32 {
    if z.is_nan() {
        0
    } else {
        order_key(z)
    }
}

/// `⌊x⌋` for `0 ≤ x < 2²²`, without a float-to-int `as` (which does not vectorize).
#[inline(always)]
fn floor_small(x: f32) -> i32 {
    let n = round_to_i32_small(x);
    n - ((n as f32) > x) as i32
}

/// Rows per block of [`Fsq::encode_rows`] (8 f32 lanes of AVX2).
const LANES: usize = 8;

/// [`Fsq::encode_blocks`] as a [`crate::simd::Kernel`].
struct EncodeBlocks<'a, const D: usize>(&'a Fsq<D>, &'a [f32], &'a mut [u32]);

impl<const D: usize> crate::simd::Kernel for EncodeBlocks<'_, D> {
    type Out = ();
    #[inline(always)]
    fn run(self) {
        self.0.encode_blocks(self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsq_rejects_bad_levels() {
        assert_eq!(
            FsqConfig::<0>::new([]).build(),
            Err(QuantError::EmptyLevels)
        );
        assert_eq!(
            FsqConfig::new([5, 1]).build(),
            Err(QuantError::BadLevel {
                channel: 1,
                level: 1
            })
        );
        assert_eq!(
            FsqConfig::new([2, 5]).build(),
            Err(QuantError::BadLevel {
                channel: 0,
                level: 2
            })
        );
        let sym = FsqConfig {
            variant: FsqVariant::Symmetric,
            ..FsqConfig::new([2, 5])
        };
        assert!(sym.build().is_ok());
        assert_eq!(
            FsqConfig::new([65_536, 65_536, 2]).build(),
            Err(QuantError::CodebookTooLarge)
        );
        assert_eq!(
            FsqConfig {
                eps: f32::NAN,
                ..FsqConfig::new([5])
            }
            .build(),
            Err(QuantError::BadEps)
        );
    }

    #[test]
    fn fsq_nan_is_the_centre_and_inf_saturates() {
        let fsq = FsqConfig::new([8, 5]).build().unwrap();
        assert_eq!(fsq.quantize(&[f32::NAN, f32::NAN]).0, [0.0, 0.0]);
        assert_eq!(
            fsq.quantize(&[f32::INFINITY, f32::NEG_INFINITY]).0,
            [0.75, -1.0]
        );
        assert_eq!(fsq.vjp(&[f32::NAN, 0.0], &[1.0, 1.0])[0], 0.0);
    }

    #[test]
    fn fsq_decode_rejects_out_of_range_index() {
        let fsq = FsqConfig::new(levels::L2_10).build().unwrap();
        assert_eq!(
            fsq.decode(1000),
            Err(QuantError::IndexOutOfRange {
                index: 1000,
                size: 1000
            })
        );
    }

    #[test]
    fn fsq_even_levels_are_asymmetric() {
        let fsq = FsqConfig::new([8]).build().unwrap();
        assert_eq!(fsq.decode(0), Ok([-1.0]));
        assert_eq!(fsq.decode(7), Ok([0.75]));
        let sym = FsqConfig {
            variant: FsqVariant::Symmetric,
            ..FsqConfig::new([8])
        }
        .build()
        .unwrap();
        assert_eq!(sym.decode(0), Ok([-1.0]));
        assert_eq!(sym.decode(7), Ok([1.0]));
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn fsq_vjp_matches_finite_differences_of_the_bound() {
        let fsq = FsqConfig::new([8, 5]).build().unwrap();
        for &z in &[-1.3f32, -0.2, 0.0, 0.4, 1.7] {
            let g = fsq.vjp(&[z, z], &[1.0, 1.0]);
            for i in 0..2 {
                let h = 1e-2f32;
                let hw = fsq.half_width[i] as f32;
                let fd = (fsq.bound(i, z + h) - fsq.bound(i, z - h)) / (2.0 * h) / hw;
                assert!(
                    (g[i] - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                    "{z}: {} vs {fd}",
                    g[i]
                );
            }
        }
    }
}
