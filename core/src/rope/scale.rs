//! Attention logit scales that go with RoPE: the standard 1/√d, the entropy-invariant
//! log-n scale (kexue 8823) and the gradient-maximizing scale (kexue 9812).
//!
//! These multiply q·k in the attention layer (not in RoPE); `n` is the number of attended
//! tokens (for causal decoders, kexue suggests n ≈ L_max/2 for the gradient scale).
//!
//! | function | value | reduces to 1/√d at |
//! |---|---|---|
//! | [`standard_scale`] | 1/√d | always |
//! | [`log_n_scale`] | log₅₁₂(n)/√d = ln n/(ln 512·√d) | n = 512 |
//! | [`log_n_scale_with`] | log_L(n)/√d for a training length L | n = L |
//! | [`log_n_inference_factor`] | max(1, log_L n), a multiplier for q at inference | n ≤ L |
//! | [`grad_max_scale`] | 0.84·√(ln n)/√d | — |
//! | [`grad_max_alpha_mean_field`] | α* solving e^{α²}(1 + 2α²) = n | — |
//!
//! Why log n: softmax entropy grows like ln n when logits keep their scale, so attention
//! blurs on longer inputs than trained; scaling logits by ln n keeps it roughly invariant.
//! Why 0.84·√(ln n): with logits α·s, s ~ N(0, 1) (scores after the usual 1/√d), the L1 norm
//! of the softmax Jacobian is proportional to α(1 − Σp²), which vanishes as α → 0 and α → ∞.
//! kexue approximates Σp² ≈ e^{α²}/n (mean field), whose maximizer solves
//! e^{α²}(1 + 2α²) = n ([`grad_max_alpha_mean_field`]); 0.84·√(ln n) fits it (≈ 2.1 at
//! n = 512, "2.5/√d instead of 1/√d"): within 11 % for n = 64 … 2²⁰ and 5 % from n = 512
//! (asserted in `tests/tests/rope.rs`).
//!
//! **Pitfall.** The mean-field step is what makes the optimum small: a Monte Carlo of the
//! exact E[α(1 − Σp²)] keeps rising far beyond it (the same test asserts its maximizer is more
//! than twice the fit at n = 64 and 512). Treat the scale as kexue's heuristic, not an exact
//! optimum.

use super::RopeError;

fn check(n: usize, head_dim: usize) -> Result<f64, RopeError> {
    if head_dim == 0 {
        return Err(RopeError::BadParam { name: "head_dim" });
    }
    if n == 0 {
        return Err(RopeError::BadParam { name: "n" });
    }
    Ok(libm::sqrt(head_dim as f64))
}

/// 1/√d. Error if `head_dim` is 0.
pub fn standard_scale(head_dim: usize) -> Result<f32, RopeError> {
    Ok((1.0 / check(1, head_dim)?) as f32)
}

/// log₅₁₂(n)/√d: kexue's entropy-invariant scale with his fixed base 512 (kept "blindly"
/// whatever the training length). 0 at n = 1, where softmax over one token is 1 anyway.
/// Errors: `n` or `head_dim` zero.
pub fn log_n_scale(n: usize, head_dim: usize) -> Result<f32, RopeError> {
    log_n_scale_with(n, 512, head_dim)
}

/// log_L(n)/√d for a training length `train_len` = L ≥ 2.
pub fn log_n_scale_with(n: usize, train_len: usize, head_dim: usize) -> Result<f32, RopeError> {
    let sqrt_d = check(n, head_dim)?;
    if train_len < 2 {
        return Err(RopeError::BadParam { name: "train_len" });
    }
    Ok((libm::log(n as f64) / libm::log(train_len as f64) / sqrt_d) as f32)
}

/// max(1, log_L n): multiply q by this at inference on a model not trained with the log-n
/// scale (kexue's ReRoPE experiments), so lengths up to L are unchanged.
pub fn log_n_inference_factor(n: usize, train_len: usize) -> Result<f32, RopeError> {
    check(n, 1)?;
    if train_len < 2 {
        return Err(RopeError::BadParam { name: "train_len" });
    }
    Ok((libm::log(n as f64) / libm::log(train_len as f64)).max(1.0) as f32)
}

/// The fitted coefficient of the gradient-maximizing scale, α* ≈ 0.84·√(ln n).
pub const GRAD_MAX_COEFF: f64 = 0.84;

/// The exact maximizer of kexue's mean-field objective α(1 − e^{α²}/n): the root of
/// e^{u}(1 + 2u) = n in u = α² (bisection in f64). Error if `n < 2`.
pub fn grad_max_alpha_mean_field(n: usize) -> Result<f64, RopeError> {
    if n < 2 {
        return Err(RopeError::BadParam { name: "n" });
    }
    let n = n as f64;
    let (mut lo, mut hi) = (0.0_f64, libm::log(n)); // g(0) = 1 < n, g(ln n) = n(1 + 2 ln n) > n
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if libm::exp(mid) * (1.0 + 2.0 * mid) < n {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(libm::sqrt(0.5 * (lo + hi)))
}

/// 0.84·√(ln n)/√d: the logit scale that maximizes the softmax Jacobian's L1 norm for
/// unit-variance scores, as a multiplier of q·k. Errors: `n < 2` (no softmax to shape) or
/// `head_dim` zero.
pub fn grad_max_scale(n: usize, head_dim: usize) -> Result<f32, RopeError> {
    let sqrt_d = check(n, head_dim)?;
    if n < 2 {
        return Err(RopeError::BadParam { name: "n" });
    }
    Ok((GRAD_MAX_COEFF * libm::sqrt(libm::log(n as f64)) / sqrt_d) as f32)
}
