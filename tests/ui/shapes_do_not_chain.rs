// A dense layer of 3 outputs cannot feed one of 5 inputs: the types do not chain.
use margay::nn::engine::{Chain, Full};
use margay::nn::Dense;

fn main() {
    let _ = Chain::new(
        Full(Dense::<f32, 4, 3>::zeroed()),
        Full(Dense::<f32, 5, 2>::zeroed()),
    );
}
