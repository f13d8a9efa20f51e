//! The `margay` command-line tool.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use margay::quant::I8F24;
use margay_host::demo::{bf16_drift, run, runners, Problem, Quadratic, Rosenbrock};
use margay_host::digits;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "margay",
    version,
    about = "margay: training math that runs on every chip"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Minimise a quadratic and Rosenbrock with Lion, Tiger and AdamW from the core.
    Demo {
        /// Steps per run.
        #[arg(long, default_value_t = 3000)]
        steps: u64,
    },
    /// The on-device fine-tuning demo (UCI digits): pretrain the base, or replay the device run.
    #[command(subcommand)]
    Digits(DigitsCmd),
    /// Train the RoPE transformer on tinyshakespeare (burn; CPU by default, CUDA when present).
    #[cfg(feature = "train")]
    Train(Box<TrainArgs>),
    /// Generate text from a `train` checkpoint.
    #[cfg(feature = "train")]
    Sample(SampleArgs),
    /// Compare bf16 against f32 optimizer state on the demo problems.
    Drift {
        /// Steps per run.
        #[arg(long, default_value_t = 3000)]
        steps: u64,
    },
}

#[cfg(feature = "train")]
#[derive(clap::Args)]
struct TrainArgs {
    /// Starting configuration: quick (a few minutes on 2 CPU cores), nanogpt-cpu, baby-gpt, tiny.
    #[arg(long, default_value = "quick")]
    preset: String,
    /// JSON config file (its fields replace the preset's; flags replace both).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the resolved configuration as JSON and exit.
    #[arg(long)]
    print_config: bool,
    /// Output directory: ckpt.safetensors (every evaluation) and loss.png.
    #[arg(long, default_value = "runs/shakespeare")]
    out: PathBuf,
    /// Continue bit-exactly from OUT/ckpt.safetensors.
    #[arg(long)]
    resume: bool,
    /// Training text (UTF-8); default: the shipped tinyshakespeare.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Back end.
    #[arg(long, value_enum, default_value = "auto")]
    device: margay_host::train::backend::DeviceKind,
    /// Optimizer.
    #[arg(long, value_enum)]
    optimizer: Option<margay_host::train::run::OptimKind>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f32>,
    /// Final learning rate of the cosine decay.
    #[arg(long)]
    min_lr: Option<f32>,
    /// Warmup steps.
    #[arg(long)]
    warmup: Option<u64>,
    /// Weight decay (matrices only).
    #[arg(long)]
    weight_decay: Option<f32>,
    /// ZO-SGD's perturbation ε (MeZO's 1e-3 when not given).
    #[arg(long)]
    zo_eps: Option<f32>,
    /// β₁ (Tiger: its β).
    #[arg(long)]
    beta1: Option<f32>,
    /// β₂ (AdamW, Lion; not AdaX, whose β₂ is a growth rate).
    #[arg(long)]
    beta2: Option<f32>,
    /// Global-norm clip threshold (0: off).
    #[arg(long)]
    grad_clip: Option<f32>,
    /// Micro-batches per step (Tiger accumulates in its momentum for free).
    #[arg(long)]
    accumulation: Option<u32>,
    /// Sequences per micro-batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Optimizer steps.
    #[arg(long)]
    steps: Option<u64>,
    /// Steps between evaluations and checkpoints.
    #[arg(long)]
    eval_interval: Option<u64>,
    /// Batches per evaluation.
    #[arg(long)]
    eval_iters: Option<usize>,
    /// Transformer blocks.
    #[arg(long)]
    n_layer: Option<usize>,
    /// Attention heads.
    #[arg(long)]
    n_head: Option<usize>,
    /// Width.
    #[arg(long)]
    n_embd: Option<usize>,
    /// Context length.
    #[arg(long)]
    block_size: Option<usize>,
    /// RoPE base.
    #[arg(long)]
    rope_base: Option<f64>,
    /// Rotated dims per head (partial RoPE).
    #[arg(long)]
    rotary_dim: Option<usize>,
    /// RoPE scaling: none, linear:S, ntk:S, yarn:S:L0, llama3:S:L0.
    #[arg(long)]
    rope_scaling: Option<String>,
    /// Positions: rope (margay's RoPE) or learned (nanoGPT's absolute embedding).
    #[arg(long, value_enum)]
    positions: Option<margay_host::train::model::Positions>,
    /// Seed of initialisation and batches.
    #[arg(long)]
    seed: Option<u64>,
    /// Testing: make the loss NaN at this step.
    #[arg(long, hide = true)]
    fault_nan_step: Option<u64>,
    /// Testing: stop after the first checkpoint at or past this step.
    #[arg(long, hide = true)]
    stop_after: Option<u64>,
}

#[cfg(feature = "train")]
#[derive(clap::Args)]
struct SampleArgs {
    /// Checkpoint written by `margay train`.
    #[arg(long, default_value = "runs/shakespeare/ckpt.safetensors")]
    checkpoint: PathBuf,
    /// Text to continue.
    #[arg(long, default_value = "")]
    prompt: String,
    /// Characters to generate.
    #[arg(long, default_value_t = 500)]
    len: usize,
    /// Softmax temperature.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Keep the k most likely characters (0: all).
    #[arg(long, default_value_t = 20)]
    top_k: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Back end.
    #[arg(long, value_enum, default_value = "auto")]
    device: margay_host::train::backend::DeviceKind,
}

#[derive(Subcommand)]
enum DigitsCmd {
    /// Pretrain 64→32→10 on the clean split with Tiger, quantize to int8, write the blob.
    Pretrain {
        /// Where to write the blob (atomically).
        #[arg(long, default_value = "firmware/model/digits.mgyb")]
        out: PathBuf,
        /// Do not write: fail unless the file at --out holds exactly these bytes.
        #[arg(long)]
        check: bool,
    },
    /// Replay the device's fine-tuning on the host, in f32 (M4F) and I8F24 fixed point (M0).
    Finetune {
        /// The blob to start from.
        #[arg(long, default_value = "firmware/model/digits.mgyb")]
        blob: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Demo { steps } => {
            demo(steps);
            Ok(())
        }
        Cmd::Drift { steps } => {
            drift(steps);
            Ok(())
        }
        Cmd::Digits(DigitsCmd::Pretrain { out, check }) => pretrain(&out, check),
        Cmd::Digits(DigitsCmd::Finetune { blob }) => finetune(&blob),
        #[cfg(feature = "train")]
        Cmd::Train(args) => train(*args),
        #[cfg(feature = "train")]
        Cmd::Sample(a) => margay_host::train::backend::sample(
            a.device,
            &a.checkpoint,
            &a.prompt,
            a.len,
            a.temperature,
            a.top_k,
            a.seed,
        )
        .map(|text| println!("{text}")),
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn pretrain(out: &Path, check: bool) -> Result<(), String> {
    let split = digits::load(&digits::data_path())?;
    let bar = ProgressBar::new(digits::PRETRAIN_EPOCHS as u64).with_style(
        ProgressStyle::with_template("pretrain {bar:30} {pos}/{len} epochs, loss {msg}")
            .expect("valid template"),
    );
    let p = digits::pretrain(&split, |_, loss| {
        bar.set_message(format!("{loss:.4}"));
        bar.inc(1);
    });
    bar.finish();
    println!(
        "pretrained on {} clean rows: final loss {:.4}; held-out accuracy f32 {:.2}%, int8 base {:.2}% ({} rows)",
        split.train.x.len(),
        p.last_loss,
        100.0 * p.f32_test,
        100.0 * p.int8_test,
        split.test.x.len()
    );
    if check {
        let old = std::fs::read(out).map_err(|e| format!("{}: {e}", out.display()))?;
        if old != p.blob {
            return Err(format!(
                "{}: stale (differs from a fresh pretraining); run `cargo run --release -p margay-host -- digits pretrain` and commit it",
                out.display()
            ));
        }
        println!("{}: up to date ({} bytes)", out.display(), p.blob.len());
        return Ok(());
    }
    digits::write_atomic(out, &p.blob)?;
    println!(
        "wrote {} ({} bytes, checksum FNV-1a)",
        out.display(),
        p.blob.len()
    );
    Ok(())
}

fn finetune(path: &Path) -> Result<(), String> {
    let split = digits::load(&digits::data_path())?;
    let bytes = digits::read_blob(path)?;
    let base = &bytes[..];
    let (stream, test) = (split.stream.mirrored(), split.test.mirrored());
    println!(
        "device: mirrored sensor; {} stream samples x {} passes, {} held-out; clean held-out with the base: {:.2}%",
        stream.x.len(),
        digits::EPOCHS,
        test.x.len(),
        100.0 * digits::base_accuracy::<f32>(base, &split.test)
    );
    let (r32, mut t32) = digits::finetune::<f32>(base, &stream, &test);
    let (rq, mut tq) = digits::finetune::<I8F24>(base, &stream, &test);
    let (z32, _) = digits::finetune_zo::<f32>(base, &stream, &test);
    let (zq, _) = digits::finetune_zo::<I8F24>(base, &stream, &test);
    for (name, r) in [
        ("backprop f32 (M4F)", r32),
        ("backprop I8F24 (M0)", rq),
        ("forward-only f32 (M4F)", z32),
        ("forward-only I8F24 (M0)", zq),
    ] {
        println!(
            "{name:<24} before {:>6.2}%  after {:>6.2}%  updates {}  guarded {}  saturated {}  fingerprint {:#010x}",
            100.0 * r.before as f64 / r.total as f64,
            100.0 * r.after as f64 / r.total as f64,
            r.stats.updates,
            r.stats.guarded,
            r.stats.saturated,
            r.fingerprint
        );
    }
    let (worst, _) = digits::weight_gap(&mut t32.model, &mut tq.model);
    println!("max |w_fixed - w_f32| over the trained tensors: {worst:.3e}");
    println!(
        "the same fine-tuning with other optimizers of the interface (host, f32, bf16 state):"
    );
    for (name, r) in digits::other_optimizers(base, &stream, &test) {
        println!(
            "{name:<28} before {:>6.2}%  after {:>6.2}%  updates {}  guarded {}",
            100.0 * r.before as f64 / r.total as f64,
            100.0 * r.after as f64 / r.total as f64,
            r.stats.updates,
            r.stats.guarded,
        );
    }
    Ok(())
}

fn require_steps(steps: u64) {
    if steps == 0 {
        eprintln!("error: --steps must be at least 1 (e.g. --steps 3000)");
        std::process::exit(2);
    }
}

fn drift(steps: u64) {
    require_steps(steps);
    println!("bf16 vs f32 optimizer state, {steps} steps (AdamW: m in bf16, v in f32)");
    println!(
        "{:<11} {:<6} {:>12} {:>12} {:>14}",
        "problem", "opt", "loss f32", "loss bf16", "max|dθ|"
    );
    for r in bf16_drift(steps) {
        println!(
            "{:<11} {:<6} {:>12.3e} {:>12.3e} {:>14.3e}",
            r.problem, r.optimizer, r.loss_f32, r.loss_bf16, r.max_param_diff
        );
    }
}

fn demo(steps: u64) {
    require_steps(steps);
    let checkpoints = [1, steps / 10, steps / 2, steps].map(|c| c.max(1));
    let problems: [&dyn Problem; 2] = [&Quadratic { dim: 64 }, &Rosenbrock];
    println!("margay demo: loss after step (lr decays linearly to 1%)");
    print!("{:<11} {:<10}", "problem", "opt");
    for c in checkpoints {
        print!(" {:>12}", format!("t={c}"));
    }
    println!();
    for p in problems {
        for (mut r, lr) in runners(p.dim()) {
            let vals = run(p, r.as_mut(), lr, steps, &checkpoints);
            print!("{:<11} {:<10}", p.name(), r.name());
            for v in vals {
                print!(" {v:>12.3e}");
            }
            println!();
        }
    }
}

/// The process's peak resident memory (`VmHWM` of `/proc/self/status`, Linux), measured.
#[cfg(feature = "train")]
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "n/a (no /proc/self/status)".into())
}

#[cfg(feature = "train")]
fn train(a: TrainArgs) -> Result<(), String> {
    use margay_host::train::{backend, data::Source, model::RopeScaling, run};
    let mut c = match &a.config {
        Some(p) => run::TrainConfig::from_file(p)?,
        None => run::TrainConfig::preset(&a.preset)?,
    };
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { c.$f = v; } )* };
    }
    set!(
        optimizer,
        lr,
        min_lr,
        warmup,
        grad_clip,
        accumulation,
        batch_size,
        steps
    );
    set!(
        eval_interval,
        eval_iters,
        n_layer,
        n_head,
        n_embd,
        block_size,
        rope_base,
        seed,
        positions
    );
    if a.zo_eps.is_some() {
        c.zo_eps = a.zo_eps;
    }
    if a.weight_decay.is_some() {
        c.weight_decay = a.weight_decay;
    }
    if a.beta1.is_some() {
        c.beta1 = a.beta1;
    }
    if a.beta2.is_some() {
        c.beta2 = a.beta2;
    }
    if a.rotary_dim.is_some() {
        c.rotary_dim = a.rotary_dim;
    }
    if let Some(s) = &a.rope_scaling {
        c.rope_scaling = RopeScaling::parse(s)?;
    }
    if a.print_config {
        println!(
            "{}",
            serde_json::to_string_pretty(&c).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    c.validate()?;
    let opts = run::RunOptions {
        out: a.out.clone(),
        resume: a.resume,
        data: a.data.clone().map_or(Source::Shipped, Source::File),
        progress: true,
        fault_nan_step: a.fault_nan_step,
        stop_after: a.stop_after,
    };
    let backend = backend::resolve(a.device)?;
    println!(
        "margay train: {} layers, {} heads, {} wide, context {}, {} ({} steps, batch {} x {}), back end {:?}",
        c.n_layer, c.n_head, c.n_embd, c.block_size, c.optimizer.name(), c.steps,
        c.batch_size, c.accumulation, backend
    );
    let r = backend::train(&c, &opts, a.device)?;
    let val = r.meta.val_loss.last().map_or(f32::NAN, |v| v.1);
    let train = r.meta.train_loss.last().map_or(f32::NAN, |v| v.1);
    println!(
        "result: optimizer {} | steps {} | val loss {val:.4} | last batch loss {train:.4} | {:.0} tokens/s | params {} | optimizer state {} bytes | guarded steps {} | peak memory {}",
        c.optimizer.name(),
        r.meta.step,
        r.meta.tokens_per_s,
        r.params,
        r.state_bytes,
        r.meta.guarded,
        peak_memory()
    );
    println!(
        "wrote {} and {}",
        r.checkpoint.display(),
        a.out.join("loss.png").display()
    );
    Ok(())
}
