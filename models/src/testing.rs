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

/// Arbitrary bytes as a recurrent layer and its inputs (cell, sizes, layers, directions,
/// layout, initial states of possibly wrong shapes, lengths possibly out of range, NaNs):
/// building, forward and backward must each succeed or return an error, never panic.
pub fn fuzz_recurrent(data: &[u8]) {
    use simdnn_layers::ops::{Cell, RecurrentSpec};
    use simdnn_layers::{Grads, GraphBuilder, IntTensor};
    let byte = |i: usize| data.get(i).copied().unwrap_or(0) as usize;
    let cell = [Cell::Tanh, Cell::Relu, Cell::Lstm, Cell::Gru][byte(0) % 4];
    let (t, n, f, h) = (byte(1) % 7, byte(2) % 5, byte(3) % 6, byte(4) % 9);
    let spec = RecurrentSpec::new(cell, f, h)
        .layers(byte(5) % 3)
        .bidirectional(byte(6) & 1 == 1)
        .batch_first(byte(6) & 2 == 2);
    let (with_state, with_lengths) = (byte(7) & 1 == 1, byte(7) & 2 == 2);
    // The inputs' shapes may disagree with the layer's: the build must say so.
    let x_shape = if spec.batch_first { [n, t, byte(8) % 6] } else { [t, n, byte(8) % 6] };
    let state_shape = [byte(9) % 5, n, h];
    let mut g = GraphBuilder::new(byte(10) as u64);
    g.input("x", &x_shape);
    let mut inputs = vec!["x"];
    if with_state {
        g.input("h0", &state_shape);
        inputs.push("h0");
        if cell == Cell::Lstm {
            g.input("c0", &state_shape);
            inputs.push("c0");
        }
    }
    if with_lengths {
        g.int_input("lengths", &[n]);
        inputs.push("lengths");
    }
    g.layer("rnn", |p| spec.build(p), &inputs).output("y", "rnn");
    let Ok(model) = g.build() else { return };
    let Ok(cfg) = Isa::current().and_then(|isa| GemmConfig::new(isa, 1 + byte(11) % 2)) else { return };
    let mut x = Tensor::zeros(&x_shape);
    for (i, v) in x.data_mut().iter_mut().enumerate() {
        *v = match byte(12 + i % 8) {
            255 => f32::NAN,
            b => b as f32 / 64.0 - 2.0,
        };
    }
    let states = Tensor::zeros(&state_shape);
    let lengths: Vec<i64> = (0..n).map(|i| byte(20 + i) as i64 % 9 - 1).collect();
    let lengths = IntTensor::from_slice(&[n], &lengths).expect("n values");
    let mut feed = vec![("x", Feed::from(&x))];
    if with_state {
        feed.push(("h0", Feed::from(&states)));
        if cell == Cell::Lstm {
            feed.push(("c0", Feed::from(&states)));
        }
    }
    if with_lengths {
        feed.push(("lengths", Feed::from(&lengths)));
    }
    let ctx = Ctx::train(cfg);
    let mut state = State::new();
    state.keep_input_grads(true);
    if model.forward(&ctx, &mut state, &feed[..]).is_err() {
        return;
    }
    let Ok(y) = model.output(&state, "y") else { return };
    let dy = Tensor::zeros(y.shape);
    let mut grads = Grads::new(model.params());
    let _ = model.backward(&ctx, &mut state, &mut grads, &[("y", dy.as_ref())]);
}
