// The same layers with shapes that chain build (and run one step): the compile-fail cases
// beside this one differ from it by one number each.
use margay::nn::engine::{Backprop, Conv, Flatten, Full, Lora, Relu6, Scale};
use margay::nn::Dense;

fn main() {
    let model = margay::seq!(
        Scale::<f32, [[f32; 8]; 1]>::new(1.0),
        Full(Conv::<f32, 1, 2, 3, 1, 0, 8, 6>::zeroed()),
        Relu6::<[[f32; 6]; 2]>::new(),
        Flatten::<f32, 2, 6, 12>::new(),
        Lora::<Dense<f32, 12, 4>, f32, 12, 4, 2>::new(Dense::zeroed(), [[0.1; 12]; 2]),
        Full(Dense::<f32, 4, 2>::zeroed()),
    );
    let mut tr = Box::new(Backprop::<_, f32, 24, 64>::new(model));
    let lion = margay::optim::LionConfig::new(1e-3).build().unwrap();
    tr.train(&lion, &[[0.5; 8]], 1).unwrap();
}
