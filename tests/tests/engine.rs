//! The on-device engine (`margay::nn::engine`): composed models' gradients against finite
//! differences (f64), the digits model on the engine bit for bit against the hand-written
//! trainer it replaces, the memory plan against `size_of`, forward-only (zeroth-order)
//! steps, int8 layers against their float definition, and the blob's checks.

use margay::nn::engine::*;
use margay::nn::{BaseModel, BlobError, Conv1d, Dense, Depthwise1d, Num, Saturations};
use margay::optim::{
    DirectionSource, Optimizer, Outcome, SgdConfig, TensorSpec, TigerConfig, ZoConfig,
};
use margay::quant::{Scalar, I8F24};
use margay_host::digits as d;

fn committed_v1() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/model/digits.mgyb"
    ))
    .unwrap()
}

/// The engine blob holding the same weights as the committed version-1 blob.
fn engine_blob_from_v1(v1: &[u8]) -> Vec<u8> {
    let base = BaseModel::<{ d::IN }, { d::HID }, { d::OUT }>::parse(v1).unwrap();
    let scale = core::array::from_fn(|o| base.scale(o));
    let b1 = core::array::from_fn(|o| base.b1(o));
    let mut head = Dense::<f32, { d::HID }, { d::OUT }>::zeroed();
    for o in 0..d::OUT {
        head.b[o] = base.b2(o);
        for i in 0..d::HID {
            head.w[o][i] = base.w2(o, i);
        }
    }
    d::engine_blob(base.q(), &scale, &b1, &head)
}

fn same_run<T: Num>()
where
    margay::optim::Tiger: Optimizer<T::Moment, T>,
{
    let v1 = committed_v1();
    let blob = engine_blob_from_v1(&v1);
    let base = BaseModel::parse(&v1).unwrap();
    let split = d::load(&d::data_path()).unwrap();
    let stream = split.train.mirrored();
    let tiger = d::device_tiger().build().unwrap();
    let mut old = d::DeviceTrainer::<T>::new(&base, d::SEED);
    let mut new = Box::new(d::DigitsBackprop::<T>::new(d::digits_model()));
    ModelBlob::load(&mut new.model, &blob).unwrap();
    assert_eq!(old.model.train.fingerprint(), new.fingerprint());
    let mut sat = Saturations::default();
    for (i, (x, &y)) in stream.x.iter().zip(&stream.y).take(600).enumerate() {
        let r = x.map(|p| p as f32);
        let a = old.train(&tiger, &r, y as usize).unwrap();
        let b = new.train(&tiger, &r, y as usize).unwrap();
        assert_eq!(a, b, "sample {i}");
        if i % 97 == 0 {
            assert_eq!(
                old.model.train.fingerprint(),
                new.fingerprint(),
                "sample {i}"
            );
            assert_eq!(old.model.predict(&r, &mut sat), new.predict(&r, &mut sat));
        }
    }
    let nan = [f32::NAN; d::IN];
    assert_eq!(
        old.train(&tiger, &nan, 0).unwrap(),
        new.train(&tiger, &nan, 0).unwrap()
    );
    assert_eq!(old.stats, new.stats);
    assert_eq!(old.model.train.fingerprint(), new.fingerprint());
}

#[test]
fn digits_on_the_engine_equals_the_hand_written_trainer_bit_for_bit_f32() {
    same_run::<f32>();
}

#[test]
fn digits_on_the_engine_equals_the_hand_written_trainer_bit_for_bit_i8f24() {
    same_run::<I8F24>();
}
