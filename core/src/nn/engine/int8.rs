//! Frozen int8 layers for a model's inference-only prefix, as TFLite / CMSIS-NN run them:
//! int8 activations with a zero point, symmetric int8 weights with one scale per output
//! channel, int32 biases and accumulators, and requantization by a per-channel Q31
//! multiplier and shift ([`Requantize`]).
//!
//! ```text
//! acc[o]  = bias[o] + Σ (x − in_zp)·q[o][…]                 (int32; padding adds nothing)
//! y[o]    = clamp(requant[o](acc[o]) + out_zp, act_min, act_max)
//! requant = in_scale · w_scale[o] / out_scale               (as a Q31 multiplier and a shift)
//! bias[o] = round(b[o] / (in_scale · w_scale[o]))
//! ```
//! A fused ReLU / ReLU6 is the activation range (`act_min = out_zp`, `act_max =
//! out_zp + round(6/out_scale)`). [`QInput`] quantizes readings, [`Dequantize`] hands the
//! prefix's output to the float part. Each layer's `from_float` quantizes float weights on
//! the host (a zero row gets scale 0; a multiplier outside Q31's range is an error).

use super::blob::{record_bytes, BlobReader, BlobWriter, LayerDesc, LayerKind, Persist, Record};
use super::{Cell, Infer};
use crate::math::round_ties_away;
use crate::nn::conv::conv_out_len;
use crate::nn::num::{Num, Saturations};
use crate::quant::{quantize_rows, QuantError, Requantize};

/// Zero points and activation range of an int8 layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QParams {
    /// The input's zero point.
    pub in_zp: i32,
    /// The output's zero point.
    pub out_zp: i32,
    /// The least output (−128, or `out_zp` for a fused ReLU).
    pub act_min: i8,
    /// The largest output.
    pub act_max: i8,
}

impl QParams {
    /// No activation: the full int8 range.
    pub const fn linear(in_zp: i32, out_zp: i32) -> Self {
        QParams {
            in_zp,
            out_zp,
            act_min: -128,
            act_max: 127,
        }
    }
    /// A fused ReLU: outputs below the zero point clamp to it.
    pub const fn relu(in_zp: i32, out_zp: i32) -> Self {
        QParams {
            in_zp,
            out_zp,
            act_min: if out_zp < -128 { -128 } else { out_zp as i8 },
            act_max: 127,
        }
    }
    const EMPTY: QParams = QParams::linear(0, 0);
    fn finish(&self, acc: i32, r: &Requantize) -> i8 {
        let v = r.apply(acc).saturating_add(self.out_zp);
        v.clamp(self.act_min as i32, self.act_max as i32) as i8
    }
}

const NO_REQUANT: Requantize = Requantize {
    multiplier: 0,
    shift: 0,
};

/// Per-channel int8 weights, int32 biases and requantization from float weights: the
/// host-side quantization of every int8 layer. `w` holds `rows` rows of `cols`.
#[allow(clippy::too_many_arguments)]
fn quantize_channels(
    w: &[f32],
    b: &[f32],
    cols: usize,
    in_scale: f32,
    out_scale: f32,
    q: &mut [u8],
    bias: &mut [i32],
    requant: &mut [Requantize],
) -> Result<(), QuantError> {
    let rows = b.len();
    let mut qi = [0i8; 1024];
    let mut scales = [0.0f32; 1];
    if !(in_scale > 0.0 && out_scale > 0.0 && in_scale.is_finite() && out_scale.is_finite()) {
        return Err(QuantError::NonFinite { at: 0 });
    }
    if q.len() != w.len() || w.len() != rows * cols || cols > qi.len() {
        return Err(QuantError::LengthMismatch {
            expected: rows * cols,
            got: w.len(),
        });
    }
    for o in 0..rows {
        let row = &w[o * cols..(o + 1) * cols];
        quantize_rows(row, cols, &mut qi[..cols], &mut scales)?;
        for (d, &v) in q[o * cols..(o + 1) * cols].iter_mut().zip(&qi[..cols]) {
            *d = v as u8;
        }
        let s = in_scale as f64 * scales[0] as f64;
        bias[o] = if s == 0.0 {
            0
        } else {
            libm::round(b[o] as f64 / s).clamp(i32::MIN as f64, i32::MAX as f64) as i32
        };
        requant[o] =
            Requantize::new(s / out_scale as f64).ok_or(QuantError::NonFinite { at: o })?;
    }
    Ok(())
}

/// Readings → int8: `q = clamp(round(r / scale) + zp, −128, 127)` (ties away from zero, as
/// TFLite). A NaN/±Inf reading is refused by the trainer before the forward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QInput<X> {
    /// The input scale.
    pub scale: f32,
    /// The input zero point.
    pub zp: i32,
    _x: core::marker::PhantomData<X>,
}

impl<X: Cell<Scalar = f32>> QInput<X> {
    /// The quantizer.
    pub const fn new(scale: f32, zp: i32) -> Self {
        QInput {
            scale,
            zp,
            _x: core::marker::PhantomData,
        }
    }
}

impl<X: Cell<Scalar = f32>> Infer for QInput<X> {
    type Input = X;
    type Output = X::With<i8>;
    fn forward(&mut self, x: &X, y: &mut X::With<i8>, sat: &mut Saturations) {
        for (y, &r) in y.flat_mut().iter_mut().zip(x.flat()) {
            let v = if r.is_finite() {
                round_ties_away(r / self.scale) + self.zp as f32
            } else {
                0.0
            };
            if !(-128.0..=127.0).contains(&v) {
                sat.0 = sat.0.saturating_add(1);
            }
            *y = v.clamp(-128.0, 127.0) as i8;
        }
    }
}

/// Int8 → the float part: `y = (q − zp)·scale`, rounded once to `T`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dequantize<T, X> {
    /// The scale.
    pub scale: f32,
    /// The zero point.
    pub zp: i32,
    _x: core::marker::PhantomData<(T, X)>,
}

impl<T: Num, X: Cell<Scalar = i8>> Dequantize<T, X> {
    /// The dequantizer.
    pub const fn new(scale: f32, zp: i32) -> Self {
        Dequantize {
            scale,
            zp,
            _x: core::marker::PhantomData,
        }
    }
}

impl<T: Num, X: Cell<Scalar = i8>> Infer for Dequantize<T, X> {
    type Input = X;
    type Output = X::With<T>;
    fn forward(&mut self, x: &X, y: &mut X::With<T>, _: &mut Saturations) {
        for (y, &q) in y.flat_mut().iter_mut().zip(x.flat()) {
            *y = T::from_f32((q as i32 - self.zp) as f32 * self.scale);
        }
    }
}

/// A frozen int8 dense layer (weights borrowed, so they stay in flash).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QDense<'a, const IN: usize, const OUT: usize> {
    /// Int8 weights as bytes, `OUT·IN`, row-major.
    pub q: &'a [u8],
    /// Int32 biases.
    pub bias: [i32; OUT],
    /// Per-output-channel requantization.
    pub requant: [Requantize; OUT],
    /// Zero points and range.
    pub params: QParams,
}

impl<'a, const IN: usize, const OUT: usize> QDense<'a, IN, OUT> {
    /// No weights: a placeholder for a `static`, loaded from a blob in place.
    pub const fn empty() -> Self {
        QDense {
            q: &[],
            bias: [0; OUT],
            requant: [NO_REQUANT; OUT],
            params: QParams::EMPTY,
        }
    }

    /// Quantizes float weights `w` (`OUT` rows of `IN`) and biases for inputs of scale
    /// `in_scale` and outputs of scale `out_scale`; the int8 weights go to `q` (`OUT·IN`
    /// bytes, which the layer borrows).
    pub fn from_float(
        w: &[[f32; IN]; OUT],
        b: &[f32; OUT],
        in_scale: f32,
        out_scale: f32,
        params: QParams,
        q: &'a mut [u8],
    ) -> Result<Self, QuantError> {
        let mut l = Self::empty();
        quantize_channels(
            w.as_flattened(),
            b,
            IN,
            in_scale,
            out_scale,
            q,
            &mut l.bias,
            &mut l.requant,
        )?;
        l.params = params;
        l.q = q;
        Ok(l)
    }
}

impl<const IN: usize, const OUT: usize> Infer for QDense<'_, IN, OUT> {
    type Input = [i8; IN];
    type Output = [i8; OUT];
    fn forward(&mut self, x: &[i8; IN], y: &mut [i8; OUT], _: &mut Saturations) {
        let zp = self.params.in_zp;
        for (o, y) in y.iter_mut().enumerate() {
            let row = self.q.get(o * IN..(o + 1) * IN).unwrap_or(&[]);
            let mut acc = self.bias[o];
            for (&q, &x) in row.iter().zip(x) {
                acc = acc.wrapping_add((x as i32 - zp) * q as i8 as i32);
            }
            *y = self.params.finish(acc, &self.requant[o]);
        }
    }
}

/// A frozen int8 1-D convolution (TFLite's padding: the padded input is the zero point).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QConv1d<
    'a,
    const CIN: usize,
    const COUT: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const L: usize,
    const LOUT: usize,
> {
    /// Int8 weights as bytes, `w[o][c][k]` flat.
    pub q: &'a [u8],
    /// Int32 biases.
    pub bias: [i32; COUT],
    /// Per-output-channel requantization.
    pub requant: [Requantize; COUT],
    /// Zero points and range.
    pub params: QParams,
}

/// A frozen int8 pointwise (1×1) convolution over length `L`.
pub type QPointwise<'a, const CIN: usize, const COUT: usize, const L: usize> =
    QConv1d<'a, CIN, COUT, 1, 1, 0, L, L>;

impl<
        'a,
        const CIN: usize,
        const COUT: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > QConv1d<'a, CIN, COUT, K, S, P, L, LOUT>
{
    /// No weights; `LOUT` must be [`conv_out_len`]`(L, K, S, P)` (a build error otherwise).
    pub const fn empty() -> Self {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, P) && LOUT > 0) };
        QConv1d {
            q: &[],
            bias: [0; COUT],
            requant: [NO_REQUANT; COUT],
            params: QParams::EMPTY,
        }
    }

    /// Quantizes float weights `w[o][c][k]` (see [`QDense::from_float`]).
    pub fn from_float(
        w: &[[[f32; K]; CIN]; COUT],
        b: &[f32; COUT],
        in_scale: f32,
        out_scale: f32,
        params: QParams,
        q: &'a mut [u8],
    ) -> Result<Self, QuantError> {
        let mut l = Self::empty();
        quantize_channels(
            w.as_flattened().as_flattened(),
            b,
            CIN * K,
            in_scale,
            out_scale,
            q,
            &mut l.bias,
            &mut l.requant,
        )?;
        l.params = params;
        l.q = q;
        Ok(l)
    }
}

impl<
        const CIN: usize,
        const COUT: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Infer for QConv1d<'_, CIN, COUT, K, S, P, L, LOUT>
{
    type Input = [[i8; L]; CIN];
    type Output = [[i8; LOUT]; COUT];
    fn forward(&mut self, x: &Self::Input, y: &mut Self::Output, _: &mut Saturations) {
        let zp = self.params.in_zp;
        for (o, y) in y.iter_mut().enumerate() {
            let w = self.q.get(o * CIN * K..(o + 1) * CIN * K).unwrap_or(&[]);
            for (t, y) in y.iter_mut().enumerate() {
                let mut acc = self.bias[o];
                for (c, x) in x.iter().enumerate() {
                    for k in 0..K {
                        let Some(i) = (t * S + k).checked_sub(P).filter(|&i| i < L) else {
                            continue;
                        };
                        let q = w.get(c * K + k).map_or(0, |&q| q as i8 as i32);
                        acc = acc.wrapping_add((x[i] as i32 - zp) * q);
                    }
                }
                *y = self.params.finish(acc, &self.requant[o]);
            }
        }
    }
}

/// A frozen int8 depthwise 1-D convolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QDepthwise1d<
    'a,
    const C: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const L: usize,
    const LOUT: usize,
> {
    /// Int8 weights as bytes, `w[c][k]` flat.
    pub q: &'a [u8],
    /// Int32 biases.
    pub bias: [i32; C],
    /// Per-channel requantization.
    pub requant: [Requantize; C],
    /// Zero points and range.
    pub params: QParams,
}

impl<
        'a,
        const C: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > QDepthwise1d<'a, C, K, S, P, L, LOUT>
{
    /// No weights; `LOUT` must be [`conv_out_len`]`(L, K, S, P)` (a build error otherwise).
    pub const fn empty() -> Self {
        const { assert!(S > 0 && K > 0 && LOUT == conv_out_len(L, K, S, P) && LOUT > 0) };
        QDepthwise1d {
            q: &[],
            bias: [0; C],
            requant: [NO_REQUANT; C],
            params: QParams::EMPTY,
        }
    }

    /// Quantizes float weights `w[c][k]` (see [`QDense::from_float`]).
    pub fn from_float(
        w: &[[f32; K]; C],
        b: &[f32; C],
        in_scale: f32,
        out_scale: f32,
        params: QParams,
        q: &'a mut [u8],
    ) -> Result<Self, QuantError> {
        let mut l = Self::empty();
        quantize_channels(
            w.as_flattened(),
            b,
            K,
            in_scale,
            out_scale,
            q,
            &mut l.bias,
            &mut l.requant,
        )?;
        l.params = params;
        l.q = q;
        Ok(l)
    }
}

impl<
        const C: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Infer for QDepthwise1d<'_, C, K, S, P, L, LOUT>
{
    type Input = [[i8; L]; C];
    type Output = [[i8; LOUT]; C];
    fn forward(&mut self, x: &Self::Input, y: &mut Self::Output, _: &mut Saturations) {
        let zp = self.params.in_zp;
        for (c, (y, x)) in y.iter_mut().zip(x).enumerate() {
            let w = self.q.get(c * K..(c + 1) * K).unwrap_or(&[]);
            for (t, y) in y.iter_mut().enumerate() {
                let mut acc = self.bias[c];
                for (k, &q) in w.iter().enumerate() {
                    if let Some(i) = (t * S + k).checked_sub(P).filter(|&i| i < L) {
                        acc = acc.wrapping_add((x[i] as i32 - zp) * q as i8 as i32);
                    }
                }
                *y = self.params.finish(acc, &self.requant[c]);
            }
        }
    }
}

// ---------------------------------------------------------------- blob records

/// Payload of an int8 layer: weights, then bias, multiplier and shift per channel, then
/// in_zp, out_zp, act_min, act_max (i32 each).
const fn q_payload(weights: usize, channels: usize) -> usize {
    weights + 12 * channels + 16
}

fn save_q(w: &mut BlobWriter<'_>, q: &[u8], bias: &[i32], req: &[Requantize], p: &QParams) {
    w.bytes(q);
    for &b in bias {
        w.i32(b);
    }
    for r in req {
        w.i32(r.multiplier);
    }
    for r in req {
        w.i32(r.shift);
    }
    for v in [p.in_zp, p.out_zp, p.act_min as i32, p.act_max as i32] {
        w.i32(v);
    }
}

fn load_q<'a>(
    r: &mut BlobReader<'a>,
    weights: usize,
    bias: &mut [i32],
    req: &mut [Requantize],
    p: &mut QParams,
) -> &'a [u8] {
    let mut pl = r.record();
    let q = pl.bytes(weights);
    for b in bias.iter_mut() {
        *b = pl.i32();
    }
    for r in req.iter_mut() {
        r.multiplier = pl.i32();
    }
    for r in req.iter_mut() {
        r.shift = pl.i32();
    }
    p.in_zp = pl.i32();
    p.out_zp = pl.i32();
    p.act_min = pl.i32().clamp(-128, 127) as i8;
    p.act_max = pl.i32().clamp(-128, 127) as i8;
    q
}

impl<'a, const IN: usize, const OUT: usize> QDense<'a, IN, OUT> {
    const RECORD: Record = Record {
        desc: LayerDesc::new(LayerKind::QDense, [IN, OUT, 0, 0]),
        len: q_payload(IN * OUT, OUT),
        floats: (0, 0),
    };
}

impl<'a, const IN: usize, const OUT: usize> Persist<'a> for QDense<'a, IN, OUT> {
    const RECORDS: usize = 1;
    const BYTES: usize = record_bytes(Self::RECORD.len);
    fn records(f: &mut dyn FnMut(Record)) {
        f(Self::RECORD)
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        w.record(&Self::RECORD);
        save_q(w, self.q, &self.bias, &self.requant, &self.params);
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        self.q = load_q(
            r,
            IN * OUT,
            &mut self.bias,
            &mut self.requant,
            &mut self.params,
        );
    }
}

impl<
        'a,
        const CIN: usize,
        const COUT: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > QConv1d<'a, CIN, COUT, K, S, P, L, LOUT>
{
    const RECORD: Record = Record {
        desc: LayerDesc::new(LayerKind::QConv, [CIN, COUT, K, S * 256 + P]),
        len: q_payload(COUT * CIN * K, COUT),
        floats: (0, 0),
    };
}

impl<
        'a,
        const CIN: usize,
        const COUT: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Persist<'a> for QConv1d<'a, CIN, COUT, K, S, P, L, LOUT>
{
    const RECORDS: usize = 1;
    const BYTES: usize = record_bytes(Self::RECORD.len);
    fn records(f: &mut dyn FnMut(Record)) {
        f(Self::RECORD)
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        w.record(&Self::RECORD);
        save_q(w, self.q, &self.bias, &self.requant, &self.params);
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        self.q = load_q(
            r,
            COUT * CIN * K,
            &mut self.bias,
            &mut self.requant,
            &mut self.params,
        );
    }
}

impl<
        'a,
        const C: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > QDepthwise1d<'a, C, K, S, P, L, LOUT>
{
    const RECORD: Record = Record {
        desc: LayerDesc::new(LayerKind::QDepthwise, [C, K, S, P]),
        len: q_payload(C * K, C),
        floats: (0, 0),
    };
}

impl<
        'a,
        const C: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const L: usize,
        const LOUT: usize,
    > Persist<'a> for QDepthwise1d<'a, C, K, S, P, L, LOUT>
{
    const RECORDS: usize = 1;
    const BYTES: usize = record_bytes(Self::RECORD.len);
    fn records(f: &mut dyn FnMut(Record)) {
        f(Self::RECORD)
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        w.record(&Self::RECORD);
        save_q(w, self.q, &self.bias, &self.requant, &self.params);
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        self.q = load_q(
            r,
            C * K,
            &mut self.bias,
            &mut self.requant,
            &mut self.params,
        );
    }
}

impl<'a, X: Cell<Scalar = f32>> Persist<'a> for QInput<X> {
    const RECORDS: usize = 1;
    const BYTES: usize = record_bytes(8);
    fn records(f: &mut dyn FnMut(Record)) {
        f(Record {
            desc: LayerDesc::new(LayerKind::QInput, [X::WIDTH, 0, 0, 0]),
            len: 8,
            floats: (0, 4),
        })
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        Self::records(&mut |r| w.record(&r));
        w.f32(self.scale);
        w.i32(self.zp);
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        let mut p = r.record();
        self.scale = p.f32();
        self.zp = p.i32();
    }
}

impl<'a, T: Num, X: Cell<Scalar = i8>> Persist<'a> for Dequantize<T, X> {
    const RECORDS: usize = 1;
    const BYTES: usize = record_bytes(8);
    fn records(f: &mut dyn FnMut(Record)) {
        f(Record {
            desc: LayerDesc::new(LayerKind::Dequantize, [X::WIDTH, 0, 0, 0]),
            len: 8,
            floats: (0, 4),
        })
    }
    fn save(&self, w: &mut BlobWriter<'_>) {
        Self::records(&mut |r| w.record(&r));
        w.f32(self.scale);
        w.i32(self.zp);
    }
    fn load(&mut self, r: &mut BlobReader<'a>) {
        let mut p = r.record();
        self.scale = p.f32();
        self.zp = p.i32();
    }
}
