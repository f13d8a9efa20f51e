//! The frequency builder: `(inv_freq[r/2], attention_factor)` for every scaling, in f64.
//!
//! A pure function of `(rotary_dim, base, scaling)`, as Hugging Face's `ROPE_INIT_FUNCTIONS`
//! are. Parameters carry Hugging Face's names (`factor`, `original_max_position_embeddings`,
//! `beta_fast`, …). Everything is computed in f64 (Hugging Face computes `inv_freq` in f32);
//! [`super::Rope`] turns each value into an exact per-position angle step.
//!
//! | scaling | θ′ᵢ (θᵢ = base^(−2i/r)) | attention factor | file |
//! |---|---|---|---|
//! | [`Scaling::Default`] | θᵢ | 1 | here |
//! | [`Scaling::Linear`] (position interpolation) | θᵢ / s | 1 | here |
//! | [`Scaling::Ntk`], [`Scaling::Dynamic`] | base′ = base·κ^(r/(r−2)) | 1 | `ntk.rs` |
//! | [`Scaling::Yarn`] | ramp between θᵢ/s and θᵢ | 0.1·ln s + 1 | `yarn.rs` |
//! | [`Scaling::Llama3`] | by wavelength: θᵢ, blend, θᵢ/s | 1 | `llama3.rs` |
//! | [`Scaling::LongRope`], [`Scaling::PerPair`] | θᵢ / cᵢ | √(1 + ln s / ln L₀) / given | `longrope.rs` |

use super::{llama3, longrope, ntk, yarn, RopeError};
use heapless::Vec;

pub use llama3::Llama3;
pub use longrope::LongRope;
pub use yarn::Yarn;

/// How the frequencies are stretched for long contexts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scaling<'a> {
    /// θᵢ = base^(−2i/r) (RoFormer).
    Default,
    /// Position interpolation (Hugging Face `linear`): θᵢ / `factor`.
    Linear {
        /// s > 0, usually the context extension ratio.
        factor: f64,
    },
    /// Static NTK-aware scaling (kexue 9675): base′ = base · s^(r/(r−2)).
    Ntk {
        /// s > 0.
        factor: f64,
    },
    /// Dynamic NTK (Hugging Face `dynamic`): for ℓ = `seq_len` > L₀,
    /// base′ = base · (s·ℓ/L₀ − (s − 1))^(r/(r−2)); unchanged when ℓ ≤ L₀. Rebuild the
    /// [`super::Rope`] as ℓ grows (keys cached earlier keep their old rotation).
    Dynamic {
        /// s > 0.
        factor: f64,
        /// L₀ > 0, the training context.
        max_position_embeddings: u32,
        /// The current sequence length ℓ.
        seq_len: u32,
    },
    /// YaRN (Hugging Face `yarn`).
    Yarn(Yarn),
    /// Llama 3 / 3.1 (Hugging Face `llama3`).
    Llama3(Llama3),
    /// LongRoPE (Hugging Face `longrope`): per-pair divisors chosen by sequence length.
    LongRope(LongRope<'a>),
    /// Per-pair divisors θᵢ / cᵢ as given (ggml `freq_factors`), with an attention factor.
    PerPair {
        /// One divisor per pair, each finite and > 0.
        factors: &'a [f64],
        /// Multiplies cos and sin; finite and > 0.
        attention_factor: f64,
    },
}

/// The output of the builder: one inverse frequency per pair and the factor that multiplies
/// cos and sin (so attention logits scale by its square, as in Hugging Face).
#[derive(Debug, Clone, PartialEq)]
pub struct Frequencies<const CAP: usize> {
    /// θ′ᵢ for i = 0 … r/2 − 1, radians per position.
    pub inv_freq: Vec<f64, CAP>,
    /// Multiplies cos and sin (1 except YaRN and LongRoPE).
    pub attention_factor: f64,
}

/// θᵢ = base^(−2i/r): the RoFormer frequencies every scaling starts from.
pub(super) fn default_inv_freq(base: f64, i: usize, rotary_dim: usize) -> f64 {
    1.0 / libm::pow(base, (2 * i) as f64 / rotary_dim as f64)
}

pub(super) fn positive(x: f64, name: &'static str) -> Result<f64, RopeError> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(RopeError::BadParam { name })
    }
}

/// Builds `(inv_freq, attention_factor)` for `rotary_dim` rotated dims (frequencies use
/// `rotary_dim`, not `head_dim`, as Hugging Face's `partial_rotary_factor` and ggml's
/// `n_dims` do).
///
/// Errors: `rotary_dim` zero or odd, `rotary_dim / 2 > CAP`, `base` not finite or ≤ 1, or a
/// scaling parameter out of range (named in [`RopeError::BadParam`]).
///
/// ```
/// use margay::rope::{frequencies, Scaling, Yarn};
/// let f = frequencies::<64>(128, 10_000.0, &Scaling::Yarn(Yarn::new(4.0, 4096))).unwrap();
/// assert!((f.attention_factor - (0.1 * 4.0_f64.ln() + 1.0)).abs() < 1e-12);
/// assert_eq!(f.inv_freq[0], 1.0); // the fastest pair extrapolates
/// ```
pub fn frequencies<const CAP: usize>(
    rotary_dim: usize,
    base: f64,
    scaling: &Scaling<'_>,
) -> Result<Frequencies<CAP>, RopeError> {
    if rotary_dim == 0 || !rotary_dim.is_multiple_of(2) {
        return Err(RopeError::OddRotaryDim { rotary_dim });
    }
    let pairs = rotary_dim / 2;
    if pairs > CAP {
        return Err(RopeError::Capacity {
            pairs,
            capacity: CAP,
        });
    }
    if !(base.is_finite() && base > 1.0) {
        return Err(RopeError::BadBase);
    }
    let mut inv_freq = Vec::new();
    let mut attention_factor = 1.0;
    let mut fill = |f: &dyn Fn(usize) -> f64| {
        for i in 0..pairs {
            // Cannot fail: pairs <= CAP was checked above.
            let _ = inv_freq.push(f(i));
        }
    };
    match *scaling {
        Scaling::Default => fill(&|i| default_inv_freq(base, i, rotary_dim)),
        Scaling::Linear { factor } => {
            let s = positive(factor, "factor")?;
            fill(&|i| default_inv_freq(base, i, rotary_dim) / s)
        }
        Scaling::Ntk { factor } => {
            let b = ntk::static_base(base, factor, rotary_dim)?;
            fill(&|i| default_inv_freq(b, i, rotary_dim))
        }
        Scaling::Dynamic {
            factor,
            max_position_embeddings,
            seq_len,
        } => {
            let b = ntk::dynamic_base(base, factor, max_position_embeddings, seq_len, rotary_dim)?;
            fill(&|i| default_inv_freq(b, i, rotary_dim))
        }
        Scaling::Yarn(ref y) => {
            let ramp = y.ramp(base, rotary_dim)?;
            fill(&|i| ramp.inv_freq(base, i, rotary_dim));
            attention_factor = ramp.attention_factor;
        }
        Scaling::Llama3(ref l) => {
            l.validate()?;
            fill(&|i| l.inv_freq(default_inv_freq(base, i, rotary_dim)))
        }
        Scaling::LongRope(ref l) => {
            let (factors, attn) = l.select(pairs)?;
            fill(&|i| default_inv_freq(base, i, rotary_dim) / factors[i]);
            attention_factor = attn;
        }
        Scaling::PerPair {
            factors,
            attention_factor: a,
        } => {
            longrope::check_factors(factors, pairs, "factors")?;
            attention_factor = positive(a, "attention_factor")?;
            fill(&|i| default_inv_freq(base, i, rotary_dim) / factors[i]);
        }
    }
    Ok(Frequencies {
        inv_freq,
        attention_factor,
    })
}
