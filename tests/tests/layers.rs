//! The engine's 1-D layers (`margay::nn::{Conv1d, Depthwise1d, Pointwise}`, ReLU6, pooling)
//! against central finite differences in f64, over a macro-generated set of shapes (stride,
//! padding and kernel sizes that leave positions in the padding and windows that skip inputs).
//! The loss is `L = Σ r·y` with fixed random `r`, so `dy = r` and, the layers being linear in
//! each argument, the differences are exact but for rounding: tolerance 1e-7.

use margay::math::SplitMix64;
use margay::nn::{
    avg_pool, avg_pool_backward, conv_out_len, flatten, global_avg_pool, global_avg_pool_backward,
    relu6, relu6_backward, Conv1d, Depthwise1d, Pointwise, Saturations,
};

const H: f64 = 1e-4;
const TOL: f64 = 1e-7;

fn fill(rng: &mut SplitMix64, xs: &mut [f64]) {
    for x in xs {
        *x = rng.next_f32() as f64 * 2.0 - 1.0;
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Checks `analytic[i]` against `(L(v + h·eᵢ) − L(v − h·eᵢ)) / 2h` for every i of `v`.
fn check(what: &str, v: &mut [f64], analytic: &[f64], mut loss: impl FnMut(&[f64]) -> f64) {
    assert_eq!(v.len(), analytic.len());
    for i in 0..v.len() {
        let x0 = v[i];
        v[i] = x0 + H;
        let lp = loss(v);
        v[i] = x0 - H;
        let lm = loss(v);
        v[i] = x0;
        let fd = (lp - lm) / (2.0 * H);
        assert!(
            (fd - analytic[i]).abs() <= TOL * (1.0 + fd.abs()),
            "{what}[{i}]: finite difference {fd}, backward {}",
            analytic[i]
        );
    }
}

macro_rules! conv_case {
    ($name:ident, cin $cin:literal, cout $cout:literal, k $k:literal, s $s:literal, p $p:literal, l $l:literal) => {
        #[test]
        fn $name() {
            const LOUT: usize = conv_out_len($l, $k, $s, $p);
            type C = Conv1d<f64, $cin, $cout, $k, $s, $p>;
            let mut rng = SplitMix64::new(($cin * 1000 + $cout * 100 + $k * 10 + $s) as u64);
            let mut conv = C::zeroed();
            fill(&mut rng, conv.w.as_flattened_mut().as_flattened_mut());
            fill(&mut rng, &mut conv.b);
            let mut x = [[0.0f64; $l]; $cin];
            fill(&mut rng, x.as_flattened_mut());
            let mut r = [[0.0f64; LOUT]; $cout];
            fill(&mut rng, r.as_flattened_mut());
            let mut sat = Saturations::default();
            let loss = |conv: &C, x: &[[f64; $l]; $cin]| {
                let mut y = [[0.0f64; LOUT]; $cout];
                conv.forward::<$l, LOUT>(x, &mut y, &mut Saturations::default());
                dot(y.as_flattened(), r.as_flattened())
            };
            // Input gradient.
            let mut dx = [[0.0f64; $l]; $cin];
            conv.backward_input::<$l, LOUT>(&r, &mut dx, &mut sat);
            let mut xv = x.as_flattened().to_vec();
            check("dx", &mut xv, dx.as_flattened(), |v| {
                let mut xx = [[0.0f64; $l]; $cin];
                xx.as_flattened_mut().copy_from_slice(v);
                loss(&conv, &xx)
            });
            // Parameter gradients.
            let mut dw = [[[0.0f64; $k]; $cin]; $cout];
            let mut db = [0.0f64; $cout];
            C::param_grads::<$l, LOUT>(&x, &r, &mut dw, &mut db, &mut sat);
            let mut wv = conv.w.as_flattened().as_flattened().to_vec();
            check("dw", &mut wv, dw.as_flattened().as_flattened(), |v| {
                let mut c = conv;
                c.w.as_flattened_mut().as_flattened_mut().copy_from_slice(v);
                loss(&c, &x)
            });
            let mut bv = conv.b.to_vec();
            check("db", &mut bv, &db, |v| {
                let mut c = conv;
                c.b.copy_from_slice(v);
                loss(&c, &x)
            });
            assert_eq!(sat, Saturations::default());
        }
    };
}

conv_case!(conv_1_1_k1, cin 1, cout 1, k 1, s 1, p 0, l 5);
conv_case!(conv_2_3_k3, cin 2, cout 3, k 3, s 1, p 0, l 8);
conv_case!(conv_2_3_k3_pad, cin 2, cout 3, k 3, s 1, p 1, l 8);
conv_case!(conv_3_2_k3_stride2_pad1, cin 3, cout 2, k 3, s 2, p 1, l 9);
conv_case!(conv_1_4_k5_stride3_pad2, cin 1, cout 4, k 5, s 3, p 2, l 11);
conv_case!(conv_4_2_k2_stride2, cin 4, cout 2, k 2, s 2, p 0, l 7);
conv_case!(conv_2_2_k4_stride1_pad3, cin 2, cout 2, k 4, s 1, p 3, l 3);

macro_rules! depthwise_case {
    ($name:ident, c $c:literal, k $k:literal, s $s:literal, p $p:literal, l $l:literal) => {
        #[test]
        fn $name() {
            const LOUT: usize = conv_out_len($l, $k, $s, $p);
            type D = Depthwise1d<f64, $c, $k, $s, $p>;
            let mut rng = SplitMix64::new(($c * 100 + $k * 10 + $s) as u64);
            let mut dw_layer = D::zeroed();
            fill(&mut rng, dw_layer.w.as_flattened_mut());
            fill(&mut rng, &mut dw_layer.b);
            let mut x = [[0.0f64; $l]; $c];
            fill(&mut rng, x.as_flattened_mut());
            let mut r = [[0.0f64; LOUT]; $c];
            fill(&mut rng, r.as_flattened_mut());
            let mut sat = Saturations::default();
            let loss = |d: &D, x: &[[f64; $l]; $c]| {
                let mut y = [[0.0f64; LOUT]; $c];
                d.forward::<$l, LOUT>(x, &mut y, &mut Saturations::default());
                dot(y.as_flattened(), r.as_flattened())
            };
            let mut dx = [[0.0f64; $l]; $c];
            dw_layer.backward_input::<$l, LOUT>(&r, &mut dx, &mut sat);
            let mut xv = x.as_flattened().to_vec();
            check("dx", &mut xv, dx.as_flattened(), |v| {
                let mut xx = [[0.0f64; $l]; $c];
                xx.as_flattened_mut().copy_from_slice(v);
                loss(&dw_layer, &xx)
            });
            let mut gw = [[0.0f64; $k]; $c];
            let mut gb = [0.0f64; $c];
            D::param_grads::<$l, LOUT>(&x, &r, &mut gw, &mut gb, &mut sat);
            let mut wv = dw_layer.w.as_flattened().to_vec();
            check("dw", &mut wv, gw.as_flattened(), |v| {
                let mut d = dw_layer;
                d.w.as_flattened_mut().copy_from_slice(v);
                loss(&d, &x)
            });
            let mut bv = dw_layer.b.to_vec();
            check("db", &mut bv, &gb, |v| {
                let mut d = dw_layer;
                d.b.copy_from_slice(v);
                loss(&d, &x)
            });
        }
    };
}

depthwise_case!(depthwise_1_k3, c 1, k 3, s 1, p 1, l 6);
depthwise_case!(depthwise_4_k3_stride2, c 4, k 3, s 2, p 1, l 9);
depthwise_case!(depthwise_3_k5_stride1, c 3, k 5, s 1, p 0, l 7);
depthwise_case!(depthwise_2_k2_stride3_pad1, c 2, k 2, s 3, p 1, l 10);

/// Pointwise is the K = 1 convolution: a channel-mixing dense layer at each position.
#[test]
fn pointwise_is_a_dense_layer_per_position() {
    let mut pw = Pointwise::<f64, 3, 2>::zeroed();
    pw.w = [[[1.0], [2.0], [3.0]], [[-1.0], [0.5], [0.0]]];
    pw.b = [0.25, -0.5];
    let x = [[1.0, 2.0], [0.0, -1.0], [4.0, 1.0]];
    let mut y = [[0.0f64; 2]; 2];
    pw.forward::<2, 2>(&x, &mut y, &mut Saturations::default());
    assert_eq!(
        y,
        [
            [0.25 + 1.0 + 12.0, 0.25 + 2.0 - 2.0 + 3.0],
            [-0.5 - 1.0, -0.5 - 2.0 - 0.5]
        ]
    );
}

macro_rules! pool_case {
    ($name:ident, c $c:literal, k $k:literal, s $s:literal, l $l:literal) => {
        #[test]
        fn $name() {
            const LOUT: usize = conv_out_len($l, $k, $s, 0);
            let mut rng = SplitMix64::new(($c * 100 + $k * 10 + $s) as u64);
            let mut x = [[0.0f64; $l]; $c];
            fill(&mut rng, x.as_flattened_mut());
            let mut r = [[0.0f64; LOUT]; $c];
            fill(&mut rng, r.as_flattened_mut());
            let mut dx = [[0.0f64; $l]; $c];
            avg_pool_backward::<f64, $c, $l, LOUT, $k, $s>(
                &r,
                &mut dx,
                &mut Saturations::default(),
            );
            let mut xv = x.as_flattened().to_vec();
            check("avg pool dx", &mut xv, dx.as_flattened(), |v| {
                let mut xx = [[0.0f64; $l]; $c];
                xx.as_flattened_mut().copy_from_slice(v);
                let mut y = [[0.0f64; LOUT]; $c];
                avg_pool::<f64, $c, $l, LOUT, $k, $s>(&xx, &mut y, &mut Saturations::default());
                dot(y.as_flattened(), r.as_flattened())
            });
            // Global average pooling of the same input.
            let mut rg = [0.0f64; $c];
            fill(&mut rng, &mut rg);
            let mut dg = [[0.0f64; $l]; $c];
            global_avg_pool_backward::<f64, $c, $l>(&rg, &mut dg);
            check("global pool dx", &mut xv, dg.as_flattened(), |v| {
                let mut xx = [[0.0f64; $l]; $c];
                xx.as_flattened_mut().copy_from_slice(v);
                let mut y = [0.0f64; $c];
                global_avg_pool::<f64, $c, $l>(&xx, &mut y, &mut Saturations::default());
                dot(&y, &rg)
            });
        }
    };
}

pool_case!(pool_k2_s2, c 2, k 2, s 2, l 8);
pool_case!(pool_k3_s1, c 3, k 3, s 1, l 7);
pool_case!(pool_k3_s2_ragged, c 1, k 3, s 2, l 8);
pool_case!(pool_k4_s3, c 2, k 4, s 3, l 11);

/// ReLU6's derivative: 1 strictly inside (0, 6), 0 outside; checked by finite differences at
/// points away from the kinks.
#[test]
fn relu6_backward_matches_finite_differences() {
    let x0 = [-2.0f64, -0.3, 0.4, 2.5, 5.9, 6.2, 9.0];
    let mut y = x0;
    relu6(&mut y);
    assert_eq!(y, [0.0, 0.0, 0.4, 2.5, 5.9, 6.0, 6.0]);
    let r = [0.3f64, -1.0, 0.7, 1.5, -0.2, 0.9, 2.0];
    let mut dx = r;
    relu6_backward(&y, &mut dx);
    let mut xv = x0.to_vec();
    check("relu6", &mut xv, &dx, |v| {
        let mut yy = v.to_vec();
        relu6(&mut yy);
        dot(&yy, &r)
    });
}

/// The same layer in f32 and in fixed point follows the f64 result (same code, other `Num`).
#[test]
fn f32_and_fixed_point_follow_f64() {
    use margay::quant::{Scalar, I16F16};
    let mut c64 = Conv1d::<f64, 2, 2, 3, 2, 1>::zeroed();
    let mut rng = SplitMix64::new(9);
    fill(&mut rng, c64.w.as_flattened_mut().as_flattened_mut());
    fill(&mut rng, &mut c64.b);
    let mut x = [[0.0f64; 9]; 2];
    fill(&mut rng, x.as_flattened_mut());
    let mut y64 = [[0.0f64; 5]; 2];
    c64.forward::<9, 5>(&x, &mut y64, &mut Saturations::default());
    let mut c32 = Conv1d::<f32, 2, 2, 3, 2, 1>::zeroed();
    let mut cfx = Conv1d::<I16F16, 2, 2, 3, 2, 1>::zeroed();
    for (o, (a, b)) in c32.w.iter_mut().zip(cfx.w.iter_mut()).enumerate() {
        for (c, (a, b)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
            for k in 0..3 {
                a[k] = c64.w[o][c][k] as f32;
                b[k] = I16F16::from_f32(c64.w[o][c][k] as f32);
            }
        }
        c32.b[o] = c64.b[o] as f32;
        cfx.b[o] = I16F16::from_f32(c64.b[o] as f32);
    }
    let x32 = x.map(|r| r.map(|v| v as f32));
    let xfx = x.map(|r| r.map(|v| I16F16::from_f32(v as f32)));
    let (mut y32, mut yfx) = ([[0.0f32; 5]; 2], [[I16F16::ZERO; 5]; 2]);
    let mut sat = Saturations::default();
    c32.forward::<9, 5>(&x32, &mut y32, &mut sat);
    cfx.forward::<9, 5>(&xfx, &mut yfx, &mut sat);
    for o in 0..2 {
        for t in 0..5 {
            assert!((y32[o][t] as f64 - y64[o][t]).abs() < 1e-6);
            assert!((yfx[o][t].to_f32() as f64 - y64[o][t]).abs() < 1e-3);
        }
    }
    assert_eq!(sat, Saturations::default());
    let mut flat = [0.0f32; 10];
    flatten(&y32, &mut flat);
    assert_eq!(flat[5..], y32[1]);
}
