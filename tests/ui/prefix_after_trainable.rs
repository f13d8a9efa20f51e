// Gradients stop at a Prefix: nothing before it may train.
use margay::nn::engine::{Backprop, Full, Prefix, Relu, Scale};
use margay::nn::Dense;

fn main() {
    let model = margay::seq!(
        Scale::<f32, [f32; 4]>::new(1.0),
        Full(Dense::<f32, 4, 4>::zeroed()),
        Prefix(Relu::<[f32; 4]>::new()),
        Full(Dense::<f32, 4, 2>::zeroed()),
    );
    let _ = Backprop::<_, f32, 16, 64>::new(model);
}
