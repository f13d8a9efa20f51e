//! Softmax cross-entropy with its gradient.

use super::num::Num;
use super::NnError;

/// What [`softmax_cross_entropy`] found for one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction<T> {
    /// The arg-max class (the first on ties).
    pub class: usize,
    /// The softmax probability of the label; the loss is `−ln(p_label)`.
    pub p_label: T,
}

/// `p = softmax(z)`, `∂L/∂z = p − onehot(label)` into `dz`, for `L = −ln p_label`. The
/// maximum logit is subtracted first so no exponent overflows. A label outside `0..N`
/// returns an error and writes nothing.
pub fn softmax_cross_entropy<T: Num, const N: usize>(
    z: &[T; N],
    label: usize,
    dz: &mut [T; N],
) -> Result<Prediction<T>, NnError> {
    softmax_cross_entropy_slice(z, label, dz)
}

/// [`softmax_cross_entropy`] on slices (`dz` as long as `z`).
pub fn softmax_cross_entropy_slice<T: Num>(
    z: &[T],
    label: usize,
    dz: &mut [T],
) -> Result<Prediction<T>, NnError> {
    let n = z.len();
    if label >= n {
        return Err(NnError::Label { label, classes: n });
    }
    let class = argmax_slice(z);
    let max = z[class];
    let mut sum = T::ZERO;
    for (d, &v) in dz.iter_mut().zip(z) {
        *d = v.minus(max).exp_nonpos();
        sum = sum.plus(*d);
    }
    let mut p_label = T::ZERO;
    for (i, d) in dz.iter_mut().enumerate() {
        let p = d.div(sum);
        *d = if i == label {
            p_label = p;
            p.minus(T::ONE)
        } else {
            p
        };
    }
    Ok(Prediction { class, p_label })
}

/// The arg-max of `z` (the first on ties).
pub fn argmax<T: Num, const N: usize>(z: &[T; N]) -> usize {
    argmax_slice(z)
}

/// [`argmax`] on a slice (0 for an empty one).
pub fn argmax_slice<T: Num>(z: &[T]) -> usize {
    let mut class = 0;
    for (i, &v) in z.iter().enumerate() {
        if v > z[class] {
            class = i;
        }
    }
    class
}
