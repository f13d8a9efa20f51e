//! The `margay` command-line tool.

use clap::{Parser, Subcommand};
use margay_host::demo::{bf16_drift, run, runners, Problem, Quadratic, Rosenbrock};

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
    /// Compare bf16 against f32 optimizer state on the demo problems.
    Drift {
        /// Steps per run.
        #[arg(long, default_value_t = 3000)]
        steps: u64,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Demo { steps } => demo(steps),
        Cmd::Drift { steps } => drift(steps),
    }
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
