//! Prints RoPE's cos/sin error at long positions (README.md's table).
//! `cargo run --release -p margay-tests --example rope_accuracy`

use margay_tests::rope_accuracy::{measure, POSITIONS};

fn main() {
    for (r, base) in [(128, 10_000.0), (128, 500_000.0)] {
        println!(
            "rotary_dim {r}, base {base}: max |cos/sin − exact| over the {} pairs",
            r / 2
        );
        println!("| position | margay | Hugging Face f32 path | margay output, x = ones |");
        println!("|---:|---:|---:|---:|");
        for row in measure(r, base, &POSITIONS) {
            println!(
                "| {} | {:.2e} | {:.2e} | {:.2e} |",
                row.position, row.margay, row.hf_f32, row.margay_output
            );
        }
        println!();
    }
}
