// Flatten of 2 channels × 3 positions has 6 values, not 7.
use margay::nn::engine::Flatten;

fn main() {
    let _ = Flatten::<f32, 2, 3, 7>::new();
}
