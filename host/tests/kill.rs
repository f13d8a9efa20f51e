//! A run killed with SIGKILL at arbitrary moments (most of them during a checkpoint write,
//! since this run saves after every step) always leaves a checkpoint that loads, and
//! `--resume` carries on from it.

#![cfg(feature = "train")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use margay_host::train::burn::backend::{Autodiff, Flex};
use margay_host::train::run;

#[test]
fn kill_9_during_saves_leaves_a_loadable_checkpoint() {
    let out = std::env::temp_dir().join(format!("margay-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let ckpt = run::checkpoint_path(&out);
    let mut last_step = 0;
    for (round, delay_ms) in [40u64, 95, 150, 230, 310].into_iter().enumerate() {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_margay"));
        cmd.args([
            "train",
            "--preset",
            "tiny",
            "--steps",
            "100000",
            "--eval-interval",
            "1",
        ])
        .args(["--eval-iters", "1", "--device", "cpu", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if round > 0 {
            cmd.arg("--resume");
        }
        let mut child = cmd.spawn().expect("the margay binary runs");
        // Wait for a first checkpoint of this round, then a little more, then SIGKILL.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(l) = margay_host::train::checkpoint::read(&ckpt) {
                if l.meta.step > last_step {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let (meta, model) = run::load_model::<Autodiff<Flex>>(&ckpt, &Default::default())
            .unwrap_or_else(|e| panic!("round {round}: the checkpoint does not load: {e}"));
        assert!(
            meta.step > last_step,
            "round {round}: no progress ({} <= {last_step})",
            meta.step
        );
        assert!(run::flat_params(&model)
            .iter()
            .flatten()
            .all(|x| x.is_finite()));
        last_step = meta.step;
    }
    let _ = std::fs::remove_dir_all(&out);
}
