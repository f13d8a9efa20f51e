//! Back-end choice: flex (CPU) by default, wgpu or CUDA when built with those features. CUDA
//! is probed (libcuda present?) before any burn device is made, because burn panics without
//! it; a missing driver falls back to the CPU with a message.

use super::run::{self, Report, RunOptions, TrainConfig};

/// What `--device` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceKind {
    /// CUDA when built with it and a driver is present, else the CPU.
    Auto,
    /// flex, the pure-Rust CPU back end.
    Cpu,
    /// wgpu (Vulkan/Metal/GL; Mesa lavapipe in CI), feature `wgpu`.
    Wgpu,
    /// CUDA (libcuda and libnvrtc loaded at run time), feature `cuda`.
    Cuda,
}

/// The back end a run will use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// flex.
    Cpu,
    /// wgpu.
    Wgpu,
    /// CUDA device 0.
    Cuda,
}

/// `true` when the CUDA driver library can be loaded.
pub fn cuda_present() -> bool {
    #[cfg(feature = "cuda")]
    {
        // SAFETY: only tries to dlopen libcuda and drops it.
        unsafe { cudarc::driver::sys::is_culib_present() }
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}

/// Resolves `kind` for this binary and machine; prints why when it falls back.
pub fn resolve(kind: DeviceKind) -> Result<Resolved, String> {
    match kind {
        DeviceKind::Cpu => Ok(Resolved::Cpu),
        DeviceKind::Auto => Ok(if cfg!(feature = "cuda") && cuda_present() {
            Resolved::Cuda
        } else {
            Resolved::Cpu
        }),
        DeviceKind::Wgpu if cfg!(feature = "wgpu") => Ok(Resolved::Wgpu),
        DeviceKind::Wgpu => Err("this margay was built without wgpu; rebuild with \
             `cargo build --release -p margay-host --features wgpu`"
            .into()),
        DeviceKind::Cuda if !cfg!(feature = "cuda") => Err("this margay was built without CUDA; \
             rebuild with `cargo build --release -p margay-host --features cuda`"
            .into()),
        DeviceKind::Cuda if cuda_present() => Ok(Resolved::Cuda),
        DeviceKind::Cuda => {
            eprintln!("no CUDA driver (libcuda.so.1) found: training on the CPU (flex) instead");
            Ok(Resolved::Cpu)
        }
    }
}

/// Trains on the resolved back end.
pub fn train(cfg: &TrainConfig, opts: &RunOptions, kind: DeviceKind) -> Result<Report, String> {
    use burn::backend::Autodiff;
    match resolve(kind)? {
        Resolved::Cpu => {
            run::train::<Autodiff<burn::backend::Flex>>(cfg, opts, &Default::default())
        }
        #[cfg(feature = "wgpu")]
        Resolved::Wgpu => {
            run::train::<Autodiff<burn::backend::Wgpu>>(cfg, opts, &Default::default())
        }
        #[cfg(feature = "cuda")]
        Resolved::Cuda => run::train::<Autodiff<burn::backend::Cuda>>(
            cfg,
            opts,
            &burn::backend::cuda::CudaDevice::new(0),
        ),
        #[allow(unreachable_patterns)]
        other => Err(format!("{other:?} is not built into this binary")),
    }
}

/// Samples on the resolved back end (see [`run::sample`]).
pub fn sample(
    kind: DeviceKind,
    path: &std::path::Path,
    prompt: &str,
    len: usize,
    temperature: f32,
    top_k: usize,
    seed: u64,
) -> Result<String, String> {
    match resolve(kind)? {
        Resolved::Cpu => run::sample::<burn::backend::Flex>(
            path,
            prompt,
            len,
            temperature,
            top_k,
            seed,
            &Default::default(),
        ),
        #[cfg(feature = "wgpu")]
        Resolved::Wgpu => run::sample::<burn::backend::Wgpu>(
            path,
            prompt,
            len,
            temperature,
            top_k,
            seed,
            &Default::default(),
        ),
        #[cfg(feature = "cuda")]
        Resolved::Cuda => run::sample::<burn::backend::Cuda>(
            path,
            prompt,
            len,
            temperature,
            top_k,
            seed,
            &burn::backend::cuda::CudaDevice::new(0),
        ),
        #[allow(unreachable_patterns)]
        other => Err(format!("{other:?} is not built into this binary")),
    }
}
