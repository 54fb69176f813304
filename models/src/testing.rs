//! Checks shared by the fuzz targets (`fuzz/`) and their corpus replay in `tests/`.

use crate::registry::{self, Head};
use crate::weights::Weights;
use simdnn_kernels::gemm::GemmConfig;
use simdnn_kernels::Isa;
use simdnn_layers::{Ctx, Feed, State, Tensor};
use std::path::Path;

/// Arbitrary bytes as a LeNet-5 weights file: reading, the recorded shape, loading and one
/// forward pass must each succeed or return an error, never panic.
pub fn fuzz_weights(data: &[u8]) {
    let Ok(weights) = Weights::from_bytes(Path::new("fuzz.safetensors"), data.to_vec()) else { return };
    let entry = registry::find("lenet5").expect("registered");
    let Ok((options, shape)) = weights.recorded(entry) else { return };
    // Large but valid recorded inputs are legal; the fuzzer need not spend its time on them.
    if shape.input.0 * shape.input.1 * shape.in_channels > 64 * 64 * 4 || shape.classes > 1000 {
        return;
    }
    let Ok(model) = weights.build(entry, &options, &shape, 1, Head::Logits) else { return };
    let Ok(cfg) = Isa::current().and_then(|isa| GemmConfig::new(isa, 1)) else { return };
    let x = Tensor::zeros(&[1, shape.in_channels, shape.input.0, shape.input.1]);
    let _ = model.forward(&Ctx::eval(cfg), &mut State::new(), &[("image", Feed::from(&x))]);
}
