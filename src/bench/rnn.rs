//! `simdnn bench rnn`: a fused recurrent layer over a whole sequence, forward or forward +
//! backward (weight and input gradients), at PyTorch's layouts and FLOP count.

use super::{fill, time_runs, BenchError, CommonArgs};
use clap::{Args, ValueEnum};
use serde_json::json;
use simdnn::layers::ops::{Cell, RecurrentSpec};
use simdnn::layers::{Ctx, Feed, Grads, GraphBuilder, LayerError, State, Tensor};
use std::time::Duration;

/// The cell of `simdnn bench rnn --cell`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CellArg {
    /// The simple RNN with tanh.
    Rnn,
    Lstm,
    Gru,
}

impl CellArg {
    pub fn cell(self) -> Cell {
        match self {
            CellArg::Rnn => Cell::Tanh,
            CellArg::Lstm => Cell::Lstm,
            CellArg::Gru => Cell::Gru,
        }
    }
}

#[derive(Args)]
pub struct RnnArgs {
    #[arg(long, value_enum, default_value = "lstm")]
    cell: CellArg,
    /// Input features.
    #[arg(long, default_value_t = 128)]
    input: usize,
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    /// Sequence length T.
    #[arg(long, default_value_t = 100)]
    seq: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 1)]
    layers: usize,
    #[arg(long)]
    bidirectional: bool,
    /// Forward and backward through time (weight gradients and the input's gradient).
    #[arg(long)]
    backward: bool,
    #[command(flatten)]
    common: CommonArgs,
}

/// Floating-point operations of one forward pass: per layer and direction
/// `2 T N G H (in + H)` (the two products; the elementwise work is not counted).
pub fn forward_flops(spec: &RecurrentSpec, seq: usize, batch: usize) -> f64 {
    let (h, d) = (spec.hidden, spec.directions());
    let gh = spec.cell.gates() * h;
    (0..spec.layers)
        .map(|l| {
            let fin = if l == 0 { spec.input } else { d * h };
            (d * 2 * seq * batch * gh * (fin + h)) as f64
        })
        .sum()
}

pub fn bench_rnn(args: RnnArgs) -> Result<(), BenchError> {
    let cfg = args.common.config()?;
    let spec = RecurrentSpec::new(args.cell.cell(), args.input, args.hidden)
        .layers(args.layers)
        .bidirectional(args.bidirectional);
    let (t, n) = (args.seq, args.batch);
    let mut g = GraphBuilder::new(1);
    g.input("x", &[t, n, args.input]).layer("rnn", |p| spec.build(p), &["x"]).output("y", "rnn");
    let model = g.build()?;
    let x = Tensor::from_slice(&[t, n, args.input], &fill(t * n * args.input, 1))?;
    let y_len = t * n * spec.directions() * args.hidden;
    let dy = Tensor::from_slice(&[t, n, spec.directions() * args.hidden], &fill(y_len, 2))?;
    let ctx = if args.backward { Ctx::train(cfg) } else { Ctx::eval(cfg) };
    let (mut state, mut grads) = (State::new(), Grads::new(model.params()));
    state.keep_input_grads(args.backward);
    let timing = time_runs(Duration::from_millis(args.common.min_ms), || -> Result<(), LayerError> {
        model.forward(&ctx, &mut state, &[("x", Feed::from(&x))])?;
        if args.backward {
            grads.zero();
            model.backward(&ctx, &mut state, &mut grads, &[("y", dy.as_ref())])?;
        }
        Ok(())
    })?;
    let secs = timing.median.as_secs_f64();
    let flops = forward_flops(&spec, t, n) * if args.backward { 3.0 } else { 1.0 };
    let gflops = flops / secs / 1e9;
    if args.common.json {
        let v = json!({
            "op": "rnn",
            "cell": spec.cell.name(),
            "input": args.input,
            "hidden": args.hidden,
            "seq": t,
            "batch": n,
            "layers": args.layers,
            "bidirectional": args.bidirectional,
            "backward": args.backward,
            "threads": cfg.threads(),
            "isa": cfg.isa().name(),
            "median_ms": secs * 1e3,
            "fastest_ms": timing.fastest.as_secs_f64() * 1e3,
            "gflops": gflops,
            "runs": timing.runs,
        });
        println!("{v}");
    } else {
        let pass = if args.backward { "forward + backward" } else { "forward" };
        println!(
            "{} {}->{} x{} layers, T {t}, batch {n}, {pass} on {} thread(s): median {:.3} ms, {gflops:.1} GFLOP/s, {} runs",
            spec.cell.name(),
            args.input,
            args.hidden,
            args.layers,
            cfg.threads(),
            secs * 1e3,
            timing.runs
        );
    }
    Ok(())
}
