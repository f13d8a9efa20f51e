//! `conformance DIR|FILE...`: checks margay against every golden-vector file given (a
//! directory means its `*.json` files). Prints one line per case and ends with
//! `N passed, M failed`; exits 1 on any failed case, 2 on a malformed or unreadable file.

use margay_tests::vectors::{load_file, run_file, vector_files};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("usage: conformance DIR|FILE...  (golden vectors of format margay-vectors/1)");
        return ExitCode::from(2);
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut malformed = false;
    for arg in &args {
        let files = match vector_files(arg) {
            Ok(f) if f.is_empty() => {
                eprintln!("error: {}: no *.json vector files there", arg.display());
                malformed = true;
                continue;
            }
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                malformed = true;
                continue;
            }
        };
        for path in files {
            let results = match load_file(&path).and_then(|f| run_file(&f)) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    malformed = true;
                    continue;
                }
            };
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            for r in results {
                let worst = r
                    .worst
                    .map(|(e, b)| format!("max_err={e:.2e} bound={b:.2e}"))
                    .unwrap_or_default();
                if r.passed {
                    passed += 1;
                    println!("PASS {file} {} {worst}", r.name);
                } else {
                    failed += 1;
                    println!("FAIL {file} {} {worst} {}", r.name, r.detail);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if malformed {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
