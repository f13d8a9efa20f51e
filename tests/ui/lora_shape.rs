// A LoRA adapter's CIN must be the base layer's input width.
use margay::nn::engine::Lora;
use margay::nn::Dense;

fn main() {
    let _ = Lora::<Dense<f32, 5, 4>, f32, 6, 4, 2>::new(Dense::zeroed(), [[0.0; 6]; 2]);
}
