//! The `margay` command-line tool.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use margay::nn::BaseModel;
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
    /// Compare bf16 against f32 optimizer state on the demo problems.
    Drift {
        /// Steps per run.
        #[arg(long, default_value_t = 3000)]
        steps: u64,
    },
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
    let base = BaseModel::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let (stream, test) = (split.stream.mirrored(), split.test.mirrored());
    println!(
        "device: mirrored sensor; {} stream samples x {} passes, {} held-out; clean held-out with the base: {:.2}%",
        stream.x.len(),
        digits::EPOCHS,
        test.x.len(),
        100.0 * digits::base_accuracy::<f32>(&base, &split.test)
    );
    let (r32, t32) = digits::finetune::<f32>(&base, &stream, &test);
    let (rq, tq) = digits::finetune::<I8F24>(&base, &stream, &test);
    for (name, r) in [("f32 (M4F)", r32), ("I8F24 (M0)", rq)] {
        println!(
            "{name:<11} before {:>6.2}%  after {:>6.2}%  updates {}  guarded {}  saturated {}  fingerprint {:#010x}",
            100.0 * r.before as f64 / r.total as f64,
            100.0 * r.after as f64 / r.total as f64,
            r.stats.updates,
            r.stats.guarded,
            r.stats.saturated,
            r.fingerprint
        );
    }
    let (worst, _) = digits::weight_gap(&t32.model.train, &tq.model.train);
    println!("max |w_fixed - w_f32| over the trained tensors: {worst:.3e}");
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
