//! Per-layer forward and backward times of one LeNet-5 training step (batch 64), the median
//! over 300 steps: `cargo run --release --example profile_lenet [THREADS]`.

use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::{gradcheck::random_tensor, zero_grads, Adam, Ctx, Layer, Optimizer, SoftmaxCrossEntropy, Tensor};
use simdnn::models::{lenet5, LeNetActivation, LeNetPooling};
use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads = std::env::args().nth(1).map_or(Ok(2), |s| s.parse())?;
    let ctx = Ctx::train(GemmConfig::new(Isa::current()?, threads)?);
    let mut net = lenet5(LeNetActivation::Relu, LeNetPooling::Max, 1)?;
    net.skip_input_grad();
    let names: Vec<String> = net.layers().map(|(n, _)| n.to_string()).collect();
    let (n, steps) = (names.len(), 300);
    let (mut fwd, mut bwd) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let x = random_tensor(&[64, 1, 32, 32], 1);
    let labels: Vec<usize> = (0..64).map(|i| i % 10).collect();
    let (mut ce, mut opt) = (SoftmaxCrossEntropy::new(), Adam::new());
    for _ in 0..steps {
        zero_grads(&mut net);
        // Each layer's input is copied out so it can be timed on its own.
        let mut inputs: Vec<Tensor> = vec![x.clone()];
        for (i, times) in fwd.iter_mut().enumerate() {
            let t = Instant::now();
            net.layer_mut(i).forward(&ctx, &inputs[i])?;
            times.push(t.elapsed().as_secs_f64());
            inputs.push(net.layer_mut(i).output().clone());
        }
        let mut grad = ce.forward_backward(ctx.isa(), &inputs[n], &labels)?.1.clone();
        for i in (0..n).rev() {
            let t = Instant::now();
            net.layer_mut(i).backward(&ctx, &inputs[i], &grad)?;
            bwd[i].push(t.elapsed().as_secs_f64());
            grad = net.layer_mut(i).input_grad().clone();
        }
        opt.step(&mut net, 1e-3)?;
    }
    let mut total = 0.0;
    for ((name, f), b) in names.iter().zip(&mut fwd).zip(&mut bwd) {
        let (f, b) = (median(f), median(b));
        total += f + b;
        println!("{name:<8} forward {:8.1} us  backward {:8.1} us", 1e6 * f, 1e6 * b);
    }
    println!("layers in all: {:.1} us per step of 64 images on {threads} thread(s)", 1e6 * total);
    Ok(())
}
