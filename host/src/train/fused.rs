//! The fused sign step on CubeCL back ends (wgpu, CUDA): one kernel reads θ, g, m and writes
//! θ, m, instead of the dozen element-wise passes of the composed version.
//!
//! Same equations and operation order as [`super::optim::composed_sign_step`]. GPU compilers
//! may contract `a·b + c` into a fused multiply-add, so the results agree with the core to
//! a stated tolerance rather than bit for bit (see `tests/tests/host_fused.rs`).

use burn::tensor::{Tensor, TensorPrimitive};
use burn_cubecl::element::{BoolElement, FloatElement, IntElement};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, CubeRuntime};
use cubecl::prelude::*;

use super::optim::{composed_sign_step, SignConsts, SignStepBackend};

/// `k = [b1, c1, b2, c2, −wd, shrink, center]`, `aux = [η, bad]`.
#[cube(launch_unchecked)]
fn sign_step_kernel(
    p: &Array<f32>,
    g: &Array<f32>,
    m: &Array<f32>,
    aux: &Array<f32>,
    k: &Array<f32>,
    p_out: &mut Array<f32>,
    m_out: &mut Array<f32>,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        let eta = aux[0];
        let pi = p[i];
        let mi = m[i];
        let gi = g[i];
        if aux[1] != 0.0f32 {
            // The guard: θ ← (θ − c)·s + c, m unchanged.
            p_out[i] = (pi - k[6]) * k[5] + k[6];
            m_out[i] = mi;
        } else {
            let c = mi * k[0] + gi * k[1];
            let mut s = c;
            if c > 0.0f32 {
                s = 1.0f32;
            } else if c < 0.0f32 {
                s = -1.0f32;
            } else if c == 0.0f32 {
                s = 0.0f32;
            }
            let decay = eta * k[4] + 1.0f32;
            p_out[i] = pi * decay - s * eta;
            m_out[i] = mi * k[2] + gi * k[3];
        }
    }
}

fn cube<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement, const D: usize>(
    t: Tensor<CubeBackend<R, F, I, BT>, D>,
) -> CubeTensor<R> {
    into_contiguous(t.into_primitive().tensor())
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> SignStepBackend
    for CubeBackend<R, F, I, BT>
{
    fn sign_step<const D: usize>(
        p: Tensor<Self, D>,
        g: Tensor<Self, D>,
        m: Tensor<Self, D>,
        aux: Tensor<Self, 1>,
        k: SignConsts,
    ) -> (Tensor<Self, D>, Tensor<Self, D>) {
        // The kernel is written for f32 parameters (what the trainer uses).
        if F::dtype() != burn::tensor::DType::F32 {
            return composed_sign_step(p, g, m, aux, k);
        }
        let shape = p.shape();
        let n = shape.num_elements();
        let consts = Tensor::<Self, 1>::from_floats(
            [k.b1, k.c1, k.b2, k.c2, -k.wd, k.shrink, k.center],
            &p.device(),
        );
        let (p, g, m) = (cube(p), cube(g), cube(m));
        let (aux, consts) = (cube(aux), cube(consts));
        let client = p.client.clone();
        let p_out = empty_device::<R, f32>(client.clone(), p.device.clone(), shape.clone());
        let m_out = empty_device::<R, f32>(client.clone(), p.device.clone(), shape);
        let dim = CubeDim::new(&client, n);
        let count = cubecl::calculate_cube_count_elemwise(&client, n, dim);
        // SAFETY: every array is contiguous f32 with the length given; the kernel checks
        // `i < p.len()`, and `p`, `g`, `m`, `p_out`, `m_out` all hold n elements.
        unsafe {
            sign_step_kernel::launch_unchecked::<R>(
                &client,
                count,
                dim,
                ArrayArg::from_raw_parts(p.handle.clone(), n),
                ArrayArg::from_raw_parts(g.handle.clone(), n),
                ArrayArg::from_raw_parts(m.handle.clone(), n),
                ArrayArg::from_raw_parts(aux.handle.clone(), 2),
                ArrayArg::from_raw_parts(consts.handle.clone(), 7),
                ArrayArg::from_raw_parts(p_out.handle.clone(), n),
                ArrayArg::from_raw_parts(m_out.handle.clone(), n),
            );
        }
        (
            Tensor::from_primitive(TensorPrimitive::Float(p_out)),
            Tensor::from_primitive(TensorPrimitive::Float(m_out)),
        )
    }
}
