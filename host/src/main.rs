//! The `margay` command-line tool.

use clap::{Parser, Subcommand};
use margay_host::demo::{run, runners, Problem, Quadratic, Rosenbrock};

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
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Demo { steps } => demo(steps),
    }
}

fn demo(steps: u64) {
    if steps == 0 {
        eprintln!("error: --steps must be at least 1");
        std::process::exit(2);
    }
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
