// A convolution of kernel 3 over 8 positions (no padding, stride 1) has 6 outputs, not 7.
use margay::nn::engine::Conv;

fn main() {
    let _ = Conv::<f32, 1, 2, 3, 1, 0, 8, 7>::zeroed();
}
