//! Per-node forward and backward times of one LeNet-5 training step (batch 64), the median
//! over 300 steps: `cargo run --release --example profile_lenet [THREADS]`.

use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::gradcheck::random_tensor;
use simdnn::layers::{Adam, Ctx, Feed, Grads, IntTensor, Optimizer, Select, State};
use simdnn::models::registry::{self, Head};
use simdnn::models::zoo::Convention;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads = std::env::args().nth(1).map_or(Ok(2), |s| s.parse())?;
    let ctx = Ctx::train(GemmConfig::new(Isa::current()?, threads)?);
    let batch = 64;
    let entry = registry::find("lenet5")?;
    let mut model = entry.build(
        &entry.options([])?,
        &entry.image("test").unwrap().native,
        batch,
        1,
        Convention::Torchvision,
        Head::Loss,
    )?;
    let x = random_tensor(&[batch, 1, 32, 32], 1);
    let labels = IntTensor::from_slice(&[batch], &(0..batch as i64).map(|i| i % 10).collect::<Vec<_>>())?;
    let mut opt = Adam::new().attach(model.params(), Select::Trainable)?;
    let (mut state, mut grads) = (State::new(), Grads::new(model.params()));
    state.profile(true);
    let steps = 300;
    let mut times: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    for _ in 0..steps {
        grads.zero();
        model.forward(&ctx, &mut state, &[("image", Feed::from(&x)), ("label", Feed::from(&labels))])?;
        model.backward_from(&ctx, &mut state, &mut grads, "loss")?;
        for (i, (name, f, b)) in model.node_times(&state).into_iter().enumerate() {
            if times.len() <= i {
                times.push((name.to_string(), Vec::new(), Vec::new()));
            }
            times[i].1.push(f.as_secs_f64());
            times[i].2.push(b.as_secs_f64());
        }
        opt.step(model.params_mut(), &grads, 1e-3)?;
    }
    let mut total = 0.0;
    for (name, f, b) in &mut times {
        let (f, b) = (median(f), median(b));
        total += f + b;
        println!("{name:<8} forward {:8.1} us  backward {:8.1} us", 1e6 * f, 1e6 * b);
    }
    println!("nodes in all: {:.1} us per step of {batch} images on {threads} thread(s)", 1e6 * total);
    Ok(())
}
