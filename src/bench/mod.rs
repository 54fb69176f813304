//! `simdnn bench ...`: median timings of the kernels, as text or one JSON object.

use clap::{Args, Subcommand};
use serde_json::json;
use simdnn::kernels::conv::{conv2d_forward, conv2d_forward_prepared, Conv2dGeom, ConvAlgo, PreparedConv};
use simdnn::kernels::gemm::{self, sgemm, sgemm_packed, Epilogue, GemmConfig, MatMut, MatRef, PackedB};
use simdnn::kernels::isa::Instance;
use simdnn::kernels::optim::{adam_update, AdamStep};
use simdnn::kernels::pool::{self, Pool2dGeom};
use simdnn::kernels::threading::default_threads;
use simdnn::kernels::{eltwise, peak, Isa, KernelError};
use simdnn::layers::ops::Add;
use simdnn::layers::{Ctx, Feed, Grads, GraphBuilder, LayerError, State, Tensor};
use simdnn::models::registry::{self, Head, RegistryError, Shape, IMAGE_INPUT};
use simdnn::models::zoo::Convention;
use std::time::{Duration, Instant};

mod gnn;
mod rnn;
pub use gnn::{GcnArgs, SpmmArgs};
pub use rnn::RnnArgs;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// SGEMM C = A*B (GFLOP/s = 2*M*N*K / median time).
    Gemm(GemmArgs),
    /// The FP32 FMA peak, from independent FMA chains on every thread.
    Peak(CommonArgs),
    /// 2-D convolution forward, NCHW (GFLOP/s = 2*N*K*C*R*S*Hout*Wout / median time,
    /// direct-equivalent whatever the algorithm).
    Conv(ConvArgs),
    /// Max pooling (optionally fused with ReLU) or average pooling, in GB/s of input read
    /// plus output written, beside a plain copy of the input's bytes in the same run.
    Pool(PoolArgs),
    /// ReLU over a slice, in GB/s read plus written, beside a plain copy of the same bytes.
    Relu(ReluArgs),
    /// One Adam step over a parameter of --len values, in GB/s of the weights, gradient and
    /// both moments read plus the weights and moments written, beside a plain copy.
    Adam(ReluArgs),
    /// Inference of a zoo model (random weights) on a batch: milliseconds per batch, images
    /// per second, GFLOP/s from its multiply-accumulates.
    Model(ModelArgs),
    /// The graph's own cost per node: a chain of --nodes tiny nodes (each `y = prev + x` on
    /// `[1, --width]`, an op of a few nanoseconds), forward or forward + backward.
    Graph(GraphArgs),
    /// A fused recurrent layer (RNN, LSTM, GRU) over a whole sequence, forward or forward +
    /// backward through time (GFLOP/s = the products' 2 T N G H (in + H) per layer and
    /// direction, times 3 with backward).
    Rnn(RnnArgs),
    /// One full-batch training step of the GCN (forward, loss, backward, Adam) on a graph:
    /// `median_ms`.
    Gcn(GcnArgs),
    /// A random CSR matrix times a dense one (GFLOP/s = 2 * nnz * features / median time;
    /// GB/s of the entries, row pointers, X and Y moved, beside a plain copy).
    Spmm(SpmmArgs),
}

#[derive(Args)]
pub struct GraphArgs {
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Values per node.
    #[arg(long, default_value_t = 4)]
    width: usize,
    /// Forward and backward (an input gradient through every node).
    #[arg(long)]
    backward: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args)]
pub struct ModelArgs {
    /// A registered model, e.g. resnet50 (`simdnn summary MODEL` describes it).
    model: String,
    /// Images per batch.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Input channels [default: the model's].
    #[arg(long)]
    in_channels: Option<usize>,
    /// Classes [default: the model's].
    #[arg(long)]
    classes: Option<usize>,
    /// Input height and width [default: the model's].
    #[arg(long, num_args = 2, value_names = ["H", "W"])]
    input: Option<Vec<usize>>,
    /// Run the graph as built, without folding batch norms and fusing ReLUs into the
    /// convolutions before them (as `infer` does).
    #[arg(long)]
    unfused: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args)]
pub struct PoolArgs {
    #[arg(long, default_value_t = 1)]
    n: usize,
    #[arg(long)]
    c: usize,
    #[arg(long)]
    h: usize,
    #[arg(long)]
    w: usize,
    /// Window size, both axes.
    #[arg(long, default_value_t = 3)]
    kernel: usize,
    #[arg(long, default_value_t = 2)]
    stride: usize,
    #[arg(long, default_value_t = 0)]
    pad: usize,
    /// Fuse a ReLU before the max pooling.
    #[arg(long)]
    relu: bool,
    /// Average instead of max pooling.
    #[arg(long, conflicts_with = "relu")]
    avg: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args)]
pub struct ReluArgs {
    /// Elements.
    #[arg(long)]
    len: usize,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args)]
pub struct ConvArgs {
    /// Batch size.
    #[arg(long)]
    n: usize,
    /// Input channels.
    #[arg(long)]
    c: usize,
    /// Input height.
    #[arg(long)]
    h: usize,
    /// Input width.
    #[arg(long)]
    w: usize,
    /// Output channels.
    #[arg(long)]
    k: usize,
    /// Kernel height.
    #[arg(long)]
    r: usize,
    /// Kernel width (default: R).
    #[arg(long)]
    s: Option<usize>,
    /// Stride, both axes.
    #[arg(long, default_value_t = 1)]
    stride: usize,
    /// Zero padding, both axes.
    #[arg(long, default_value_t = 0)]
    pad: usize,
    /// Algorithm: auto, im2col, winograd, direct or direct-rows.
    #[arg(long, default_value = "auto")]
    algo: String,
    /// Prepare the weights once before timing (the Winograd filter transform done once per
    /// weight set, as inference runtimes prepack weights when a model loads).
    #[arg(long)]
    prepared: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args)]
pub struct CommonArgs {
    /// Threads (default: SIMDNN_THREADS, else all CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Instruction set: portable, avx2 or avx512 (default: SIMDNN_ISA, else the best).
    #[arg(long)]
    isa: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Minimum measuring time per benchmark, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    min_ms: u64,
}

#[derive(Args)]
pub struct GemmArgs {
    #[arg(long)]
    m: usize,
    #[arg(long)]
    n: usize,
    #[arg(long)]
    k: usize,
    /// Use op(A) = A^T (A stored k x m).
    #[arg(long)]
    transa: bool,
    /// Use op(B) = B^T (B stored n x k).
    #[arg(long)]
    transb: bool,
    /// Pack B once, before timing (weights reused across calls).
    #[arg(long)]
    packed: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Model(#[from] RegistryError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Train(#[from] simdnn::models::train::TrainError),
    #[error("unknown or not yet implemented convolution algorithm {0:?} (available: auto, im2col, winograd, direct, direct-rows)")]
    UnknownAlgo(String),
}

impl CommonArgs {
    fn config(&self) -> Result<GemmConfig, KernelError> {
        let isa = match &self.isa {
            Some(name) => name.parse::<Isa>()?.checked()?,
            None => Isa::current()?,
        };
        let threads = match self.threads {
            Some(t) => t,
            None => default_threads()?,
        };
        GemmConfig::new(isa, threads)
    }
}

/// Timings of repeated runs.
struct Timing {
    median: Duration,
    fastest: Duration,
    runs: usize,
}

/// Runs `f` once to warm up, then until `min` has passed (at least 5 times).
fn time_runs<E>(min: Duration, mut f: impl FnMut() -> Result<(), E>) -> Result<Timing, E> {
    f()?;
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed() < min && times.len() < 100_000) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(Timing { median: times[times.len() / 2], fastest: times[0], runs: times.len() })
}

/// Deterministic values in [-1, 1): a 32-bit LCG, enough to defeat any data-dependent shortcut.
fn fill(len: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

pub fn run(cmd: BenchCommand) -> Result<(), BenchError> {
    match cmd {
        BenchCommand::Gemm(args) => bench_gemm(args),
        BenchCommand::Peak(args) => bench_peak(args),
        BenchCommand::Conv(args) => bench_conv(args),
        BenchCommand::Pool(args) => bench_pool(args),
        BenchCommand::Relu(args) => bench_relu(args),
        BenchCommand::Adam(args) => bench_adam(args),
        BenchCommand::Model(args) => bench_model(args),
        BenchCommand::Graph(args) => bench_graph(args),
        BenchCommand::Rnn(args) => rnn::bench_rnn(args),
        BenchCommand::Gcn(args) => gnn::bench_gcn(args),
        BenchCommand::Spmm(args) => gnn::bench_spmm(args),
    }
}

fn bench_graph(args: GraphArgs) -> Result<(), BenchError> {
    let cfg = args.common.config()?;
    let (n, w) = (args.nodes.max(1), args.width.max(1));
    let mut g = GraphBuilder::new(1);
    g.input("x", &[1, w]);
    for i in 0..n {
        let prev = if i == 0 { "x".to_string() } else { format!("n{}", i - 1) };
        g.add(&format!("n{i}"), Add::new(), &[&prev, "x"]);
    }
    g.output("y", &format!("n{}", n - 1));
    let model = g.build()?;
    let x = Tensor::from_slice(&[1, w], &fill(w, 1))?;
    let dy = Tensor::from_slice(&[1, w], &fill(w, 2))?;
    let ctx = if args.backward { Ctx::train(cfg) } else { Ctx::eval(cfg) };
    let (mut state, mut grads) = (State::new(), Grads::new(model.params()));
    state.keep_input_grads(true);
    let min = Duration::from_millis(args.common.min_ms);
    let t = time_runs(min, || -> Result<(), LayerError> {
        model.forward(&ctx, &mut state, &[("x", Feed::from(&x))])?;
        if args.backward {
            model.backward(&ctx, &mut state, &mut grads, &[("y", dy.as_ref())])?;
        }
        Ok(())
    })?;
    let secs = t.median.as_secs_f64();
    let per_node_us = secs * 1e6 / n as f64;
    if args.common.json {
        let v = json!({
            "op": "graph",
            "nodes": n,
            "width": w,
            "backward": args.backward,
            "median_ms": secs * 1e3,
            "fastest_ms": t.fastest.as_secs_f64() * 1e3,
            "us_per_node": per_node_us,
            "runs": t.runs,
        });
        println!("{v}");
    } else {
        let pass = if args.backward { "forward + backward" } else { "forward" };
        println!(
            "{n} nodes of {w} values, {pass}: median {:.3} ms, {per_node_us:.3} µs per node, {} runs",
            secs * 1e3,
            t.runs
        );
    }
    Ok(())
}

fn bench_model(args: ModelArgs) -> Result<(), BenchError> {
    let cfg = args.common.config()?;
    let entry = registry::find(&args.model)?;
    let native = entry.image("bench model")?.native;
    let shape = Shape {
        in_channels: args.in_channels.unwrap_or(native.in_channels),
        classes: args.classes.unwrap_or(native.classes),
        input: args.input.as_ref().map_or(native.input, |v| (v[0], v[1])),
    };
    let batch = args.batch.max(1);
    let mut model = entry.build(&entry.options([])?, &shape, batch, 1, Convention::Torchvision, Head::Logits)?;
    let macs: u64 = model.summary(&[])?.iter().map(|l| l.macs).sum();
    if !args.unfused {
        model.prepare_inference()?;
    }
    let dims = [batch, shape.in_channels, shape.input.0, shape.input.1];
    let x = Tensor::from_slice(&dims, &fill(dims.iter().product(), 1))?;
    let (ctx, mut state) = (Ctx::eval(cfg), State::new());
    let min = Duration::from_millis(args.common.min_ms);
    let t = time_runs(min, || model.forward(&ctx, &mut state, &[(IMAGE_INPUT, Feed::from(&x))]))?;
    let secs = t.median.as_secs_f64();
    let (gflops, per_second) = (2.0 * macs as f64 / secs / 1e9, batch as f64 / secs);
    if args.common.json {
        let v = json!({
            "op": "model",
            "model": entry.name,
            "batch": batch,
            "input": dims,
            "median_ms": secs * 1e3,
            "fastest_ms": t.fastest.as_secs_f64() * 1e3,
            "images_per_second": per_second,
            "gflops": gflops,
            "macs": macs,
            "runs": t.runs,
            "isa": cfg.isa().name(),
            "threads": cfg.threads(),
        });
        println!("{v}");
    } else {
        println!(
            "{} inference, batch {batch}, input {dims:?}: median {:.2} ms ({:.1} images/s, {gflops:.1} GFLOP/s), {} runs, {} on {} thread(s)",
            entry.title,
            secs * 1e3,
            per_second,
            t.runs,
            cfg.isa().name(),
            cfg.threads()
        );
    }
    Ok(())
}

/// GB/s of a plain copy of `len` f32 (read + write) split across `cfg`'s threads, the
/// bandwidth yardstick.
fn copy_gbps(cfg: &GemmConfig, len: usize, min: Duration) -> Result<f64, KernelError> {
    let src = fill(len, 9);
    let mut dst = vec![0.0f32; len];
    let t = time_runs(min, || eltwise::copy(cfg, std::hint::black_box(&src), &mut dst))?;
    Ok(2.0 * 4.0 * len as f64 / t.median.as_secs_f64() / 1e9)
}

/// Prints a bandwidth result beside the copy yardstick.
fn report_bandwidth(json_out: bool, mut v: serde_json::Value, t: &Timing, bytes: usize, copy: f64) {
    let secs = t.median.as_secs_f64();
    let gbps = bytes as f64 / secs / 1e9;
    let extra = json!({
        "median_ms": secs * 1e3, "min_ms": t.fastest.as_secs_f64() * 1e3, "reps": t.runs,
        "gbps": gbps, "copy_gbps": copy, "copy_ratio": gbps / copy,
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    if json_out {
        println!("{v}");
    } else {
        println!(
            "{v}\n  median {:.4} ms, {gbps:.1} GB/s, copy of the input bytes {copy:.1} GB/s ({:.0}%)",
            secs * 1e3,
            100.0 * gbps / copy
        );
    }
}

fn bench_pool(args: PoolArgs) -> Result<(), BenchError> {
    let cfg = args.common.config()?;
    let g = Pool2dGeom::new(args.n, args.c, (args.h, args.w), args.kernel, args.stride).pad(args.pad, args.pad);
    g.validate()?;
    let x = fill(g.input_len(), 1);
    let mut y = vec![0.0f32; g.output_len()];
    let min = Duration::from_millis(args.common.min_ms);
    let t = time_runs(min, || match (args.avg, args.relu) {
        (true, _) => pool::avg_pool2d_forward(&cfg, &g, true, &x, &mut y),
        (false, true) => pool::relu_max_pool2d_forward(&cfg, &g, &x, &mut y, None),
        (false, false) => pool::max_pool2d_forward(&cfg, &g, &x, &mut y, None),
    })?;
    let copy = copy_gbps(&cfg, g.input_len(), min)?;
    let op = if args.avg {
        "avg_pool"
    } else if args.relu {
        "relu_max_pool"
    } else {
        "max_pool"
    };
    let v = json!({
        "op": op, "n": args.n, "c": args.c, "h": args.h, "w": args.w, "kernel": args.kernel,
        "stride": args.stride, "pad": args.pad, "out_h": g.out_h(), "out_w": g.out_w(), "isa": cfg.isa().name(), "threads": cfg.threads(),
    });
    report_bandwidth(args.common.json, v, &t, 4 * (g.input_len() + g.output_len()), copy);
    Ok(())
}

fn bench_relu(args: ReluArgs) -> Result<(), BenchError> {
    let cfg = args.common.config()?;
    let x = fill(args.len, 1);
    let mut y = vec![0.0f32; args.len];
    let min = Duration::from_millis(args.common.min_ms);
    let t = time_runs(min, || eltwise::relu(cfg.isa(), &x, &mut y))?;
    // ReLU runs on one thread: so does its yardstick.
    let copy = copy_gbps(&cfg.with_threads(1)?, args.len, min)?;
    let v = json!({ "op": "relu", "len": args.len, "isa": cfg.isa().name() });
    report_bandwidth(args.common.json, v, &t, 8 * args.len, copy);
    Ok(())
}

fn bench_adam(args: ReluArgs) -> Result<(), BenchError> {
    let cfg = args.common.config()?;
    let (mut w, g, mut m) = (fill(args.len, 1), fill(args.len, 2), fill(args.len, 3));
    let mut v: Vec<f32> = fill(args.len, 4).iter().map(|x| x.abs()).collect();
    let h = AdamStep { step: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, inv_sqrt_correct2: 1.0, l2: 0.0, decay: 1.0 };
    let min = Duration::from_millis(args.common.min_ms);
    let t = time_runs(min, || adam_update(&cfg, &h, &mut w, &g, &mut m, &mut v))?;
    let copy = copy_gbps(&cfg, args.len, min)?;
    let v = json!({ "op": "adam", "len": args.len, "isa": cfg.isa().name(), "threads": cfg.threads() });
    report_bandwidth(args.common.json, v, &t, 7 * 4 * args.len, copy);
    Ok(())
}

fn bench_conv(args: ConvArgs) -> Result<(), BenchError> {
    let cfg = args.common.config()?;
    let algo = ConvAlgo::from_name(&args.algo).ok_or_else(|| BenchError::UnknownAlgo(args.algo.clone()))?;
    let geom = Conv2dGeom::new(args.n, args.c, (args.h, args.w), args.k, (args.r, args.s.unwrap_or(args.r)))
        .stride(args.stride, args.stride)
        .pad(args.pad, args.pad);
    geom.validate()?;
    let x = fill(geom.input_len(), 1);
    let w = fill(geom.weight_len(), 2);
    let bias = fill(geom.out_channels, 3);
    let mut y = vec![0.0f32; geom.output_len()];
    let min = Duration::from_millis(args.common.min_ms);
    let t = if args.prepared {
        let p = PreparedConv::new(&cfg, &geom, algo, &w)?;
        time_runs(min, || conv2d_forward_prepared(&cfg, &geom, &p, &x, Some(&bias), false, &mut y))?
    } else {
        time_runs(min, || conv2d_forward(&cfg, &geom, algo, &x, &w, Some(&bias), false, &mut y))?
    };
    let (secs, reps) = (t.median.as_secs_f64(), t.runs);
    let gflops = 2.0 * geom.macs() as f64 / secs / 1e9;
    let resolved = if args.prepared { algo.resolve_prepared(&geom)? } else { algo.resolve(&geom)? };
    let algo_name = match resolved {
        ConvAlgo::Im2colGemm if geom.is_pointwise() => "gemm1x1",
        other => other.name(),
    };
    let (oh, ow) = (geom.out_h(), geom.out_w());
    if args.common.json {
        let v = json!({
            "op": "conv", "n": args.n, "c": args.c, "h": args.h, "w": args.w, "k": args.k,
            "r": geom.kernel_h, "s": geom.kernel_w, "stride": args.stride, "pad": args.pad,
            "out_h": oh, "out_w": ow, "algo": algo_name, "isa": cfg.isa().name(),
            "threads": cfg.threads(), "median_ms": secs * 1e3, "gflops": gflops, "reps": reps,
            "min_ms": t.fastest.as_secs_f64() * 1e3, "prepared": args.prepared,
        });
        println!("{v}");
    } else {
        println!(
            "conv n={} {}x{}x{} -> {}x{}x{} ({}x{} stride {} pad {}) {algo_name} {} threads={}: median {:.4} ms, {gflops:.1} GFLOP/s ({reps} runs)",
            args.n, args.c, args.h, args.w, args.k, oh, ow, geom.kernel_h, geom.kernel_w, args.stride, args.pad,
            cfg.isa(), cfg.threads(), secs * 1e3
        );
    }
    Ok(())
}

fn bench_gemm(args: GemmArgs) -> Result<(), BenchError> {
    let cfg = args.common.config()?;
    let (m, n, k) = (args.m, args.n, args.k);
    let a = fill(m * k, 1);
    let b = fill(k * n, 2);
    let mut c = vec![0.0f32; m * n];
    let a_view = if args.transa { MatRef::named("A", &a, k, m, m)?.t() } else { MatRef::named("A", &a, m, k, k)? };
    let b_view = if args.transb { MatRef::named("B", &b, n, k, k)?.t() } else { MatRef::named("B", &b, k, n, n)? };
    let packed = if args.packed { Some(PackedB::new(cfg.isa(), b_view)?) } else { None };
    let min = Duration::from_millis(args.common.min_ms);
    let t = time_runs(min, || {
        let c_view = MatMut::new(&mut c, m, n, n)?;
        match &packed {
            Some(pb) => sgemm_packed(&cfg, 1.0, a_view, pb, 0.0, c_view, Epilogue::NONE),
            None => sgemm(&cfg, 1.0, a_view, b_view, 0.0, c_view, Epilogue::NONE),
        }
    })?;
    let (secs, reps) = (t.median.as_secs_f64(), t.runs);
    let gflops = 2.0 * (m * n * k) as f64 / secs / 1e9;
    let best_gflops = 2.0 * (m * n * k) as f64 / t.fastest.as_secs_f64() / 1e9;
    let kernel = if args.packed { gemm::kernel_name(cfg.isa()) } else { gemm::kernel_name_for(cfg.isa(), m, n) };
    if args.common.json {
        let v = json!({
            "op": "gemm", "m": m, "n": n, "k": k, "transa": args.transa, "transb": args.transb,
            "packed": args.packed, "isa": cfg.isa().name(), "kernel": kernel,
            "threads": cfg.threads(), "median_ms": secs * 1e3, "gflops": gflops, "reps": reps,
            "min_ms": t.fastest.as_secs_f64() * 1e3, "best_gflops": best_gflops,
        });
        println!("{v}");
    } else {
        println!(
            "gemm {m}x{n}x{k} {kernel} threads={}: median {:.4} ms, {gflops:.1} GFLOP/s (best {best_gflops:.1}, {reps} runs)",
            cfg.threads(),
            secs * 1e3
        );
    }
    Ok(())
}

fn bench_peak(args: CommonArgs) -> Result<(), BenchError> {
    let cfg = args.config()?;
    let iters = 2_000_000;
    let min = Duration::from_millis(args.min_ms);
    let mut sink = 0.0;
    let t = time_runs(min, || {
        sink += peak::fma_chains(cfg.isa(), cfg.threads(), iters)?;
        Ok::<(), KernelError>(())
    })?;
    std::hint::black_box(sink);
    let (secs, reps) = (t.median.as_secs_f64(), t.runs);
    let gflops = peak::flops_per_thread(cfg.isa(), iters) * cfg.threads() as f64 / secs / 1e9;
    if args.json {
        let v = json!({
            "op": "peak", "isa": cfg.isa().name(), "threads": cfg.threads(),
            "median_ms": secs * 1e3, "gflops": gflops, "reps": reps,
        });
        println!("{v}");
    } else {
        println!("peak {} threads={}: {gflops:.1} GFLOP/s (median of {reps} runs)", cfg.isa(), cfg.threads());
    }
    Ok(())
}

pub fn info(json_out: bool) -> Result<(), BenchError> {
    let current = Isa::current()?;
    let available: Vec<&str> = Isa::available().iter().map(|i| i.name()).collect();
    let threads = default_threads()?;
    // The named instance every kernel runs for this process's path.
    let kernels: Vec<&str> = Instance::all().into_iter().filter(|k| k.isa == current).map(|k| k.name).collect();
    if json_out {
        let v = json!({
            "isa": current.name(), "available": available, "threads": threads,
            "gemm_kernel": gemm::kernel_name(current), "kernels": kernels,
        });
        println!("{v}");
    } else {
        println!("isa: {current} (available: {})", available.join(", "));
        println!("gemm kernel: {}", gemm::kernel_name(current));
        println!("threads: {threads}");
        println!("kernels ({}):", kernels.len());
        for chunk in kernels.chunks(4) {
            println!("  {}", chunk.join(", "));
        }
    }
    Ok(())
}
