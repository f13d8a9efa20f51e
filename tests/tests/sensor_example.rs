//! The user example of `docs/on-device.md` (the sensor-net firmware's model and its host
//! side, `firmware/src/sensor_net/`) on the host: it pretrains, fine-tunes in f32 and in
//! I16F16 with the margin the firmware demands, refuses a corrupt blob, and the code the docs
//! show is the code the firmware builds.

#[path = "../../firmware/src/sensor_net/host.rs"]
mod sensor_host;
#[allow(dead_code)]
#[path = "../../firmware/src/sensor_net/model.rs"]
mod sensor_model;

use margay::nn::engine::{Backprop, ModelBlob};
use margay::nn::BlobError;
use margay::quant::I16F16;
use sensor_host::*;
use sensor_model::*;

/// The firmware's margin (`firmware/src/bin/sensor_net.rs`).
const MARGIN_PERCENT: usize = 40;

#[test]
fn the_sensor_example_pretrains_and_fine_tunes_in_f32_and_fixed_point() {
    let (clean, stream, test) = data();
    let check = samples(TEST_WINDOWS, false, 0x5e45_0004);
    let (blob, pretrained) = pretrain(&clean, &check);
    assert!(
        pretrained * 10 >= check.y.len() * 9,
        "pretrained {pretrained}"
    );
    let n = test.y.len();
    let f32_run = finetune::<f32>(&blob, &stream, &test);
    // The firmware compares its fingerprint with the host's: a replay must repeat it exactly.
    assert_eq!(
        finetune::<f32>(&blob, &stream, &test).fingerprint,
        f32_run.fingerprint,
        "the f32 replay is deterministic"
    );
    for (name, run) in [
        ("f32", f32_run),
        ("I16F16", finetune::<I16F16>(&blob, &stream, &test)),
    ] {
        assert!(
            run.after >= run.before + MARGIN_PERCENT * n / 100,
            "{name}: {} → {} of {n}",
            run.before,
            run.after
        );
        assert_eq!(run.stats.guarded, 1, "{name}: the NaN window is guarded");
        assert_eq!(run.stats.saturated, 0, "{name}");
        assert_eq!(
            run.stats.updates as usize,
            (EPOCHS * STREAM_WINDOWS + 1) / ACCUMULATION as usize
        );
    }
}

#[test]
fn a_corrupt_sensor_blob_is_refused_and_changes_nothing() {
    let (clean, _, _) = data();
    let (mut blob, _) = pretrain(&clean, &samples(3, false, 1));
    let mut tr = Box::new(Backprop::<SensorNet<f32>, f32, SCRATCH, PARAMS>::new(
        sensor_net(),
    ));
    let empty = tr.fingerprint();
    let mid = blob.len() / 2;
    blob[mid] ^= 1;
    assert!(matches!(
        ModelBlob::load(&mut tr.model, &blob),
        Err(BlobError::Checksum { .. })
    ));
    assert_eq!(tr.fingerprint(), empty);
}

/// Every ```rust block of docs/on-device.md marked `<!-- file: PATH -->` is PATH's text, so
/// the example the docs show is what CI compiles and runs.
#[test]
fn the_docs_show_the_example_files_as_they_are() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/on-device.md")).unwrap();
    let mut shown = 0;
    let mut rest = doc.as_str();
    while let Some(at) = rest.find("<!-- file: ") {
        rest = &rest[at + "<!-- file: ".len()..];
        let path = &rest[..rest.find(" -->").expect("a closed marker")];
        let open = rest
            .find("```rust\n")
            .expect("a rust block after the marker")
            + 8;
        let len = rest[open..].find("\n```\n").expect("a closed block") + 1;
        let block = &rest[open..open + len];
        let file = std::fs::read_to_string(root.join(path))
            .unwrap_or_else(|e| panic!("docs/on-device.md names {path}: {e}"));
        assert!(
            block == file,
            "docs/on-device.md's block for {path} is not the file: copy the file into the docs"
        );
        shown += 1;
        rest = &rest[open + len..];
    }
    assert!(
        shown >= 3,
        "the docs show the model, the host side and the firmware loop"
    );
}
