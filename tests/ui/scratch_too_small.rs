// The gradient scratch must hold the largest trainable tensor (16 weights here).
use margay::nn::engine::{Backprop, Full, Scale};
use margay::nn::Dense;

fn main() {
    let model = margay::seq!(
        Scale::<f32, [f32; 4]>::new(1.0),
        Full(Dense::<f32, 4, 4>::zeroed()),
    );
    let _ = Backprop::<_, f32, 8, 64>::new(model);
}
