//! `simdnn bench gcn` (one full-batch training step of the registry's GCN: forward, loss,
//! backward, Adam) and `simdnn bench spmm` (a random CSR matrix times a dense one, beside a
//! plain copy of the bytes it moves).

use super::{copy_gbps, fill, report_bandwidth, time_runs, BenchError, CommonArgs};
use clap::Args;
use serde_json::json;
use simdnn::kernels::sparse::{spmm, Csr};
use simdnn::layers::LrSchedule;
use simdnn::models::gnn::gcn::ENTRY;
use simdnn::models::registry::DataRequest;
use simdnn::models::step::Metrics;
use simdnn::models::train::{OptimizerKind, TrainConfig};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct GcnArgs {
    /// A graph in the plain format (nodes.csv, edges.csv, features.txt), e.g.
    /// ../shared/data/cora [default: the embedded graph].
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args)]
pub struct SpmmArgs {
    #[arg(long, default_value_t = 2708)]
    rows: usize,
    #[arg(long, default_value_t = 2708)]
    cols: usize,
    /// Stored entries, at uniformly random positions.
    #[arg(long, default_value_t = 13264)]
    nnz: usize,
    /// Columns of the dense operand.
    #[arg(long, default_value_t = 16)]
    features: usize,
    #[command(flatten)]
    common: CommonArgs,
}

pub fn bench_gcn(args: GcnArgs) -> Result<(), BenchError> {
    let cfg = args.common.config()?;
    let family = ENTRY.family();
    let request = DataRequest {
        fold: None,
        dir: args.data.clone(),
        synthetic_train: 0,
        synthetic_test: 0,
        input: (0, 0),
        channels: 0,
        keep_classes: Vec::new(),
        batch: ENTRY.defaults.batch,
    };
    let mut config = family.configure(&ENTRY, ENTRY.options([])?, &[], None)?;
    let splits = family.load_data(&ENTRY, &config, &request)?;
    family.fit_data(&ENTRY, &mut config, &splits)?;
    let train = TrainConfig {
        epochs: 1,
        batch: ENTRY.defaults.batch,
        lr: ENTRY.adam_lr,
        optimizer: OptimizerKind::Adam,
        weight_decay: ENTRY.defaults.weight_decay,
        schedule: LrSchedule::Constant,
        seed: 1,
        checkpoint: None,
        resume: false,
        metadata: HashMap::new(),
        clip_norm: None,
    };
    let mut step = family.step(&ENTRY, &config, ENTRY.defaults.batch, 1, Some(&train), cfg)?;
    let nodes: Vec<usize> = (0..splits.train.len()).collect();
    let mut metrics = Metrics::new();
    let timing = time_runs(Duration::from_millis(args.common.min_ms), || {
        step.train_batch(&*splits.train, &nodes, ENTRY.adam_lr, &mut metrics)
    })?;
    let ms = timing.median.as_secs_f64() * 1e3;
    if args.common.json {
        let v = json!({
            "op": "gcn_train_step",
            "data": splits.source,
            "train_nodes": nodes.len(),
            "threads": cfg.threads(),
            "isa": cfg.isa().name(),
            "median_ms": ms,
            "fastest_ms": timing.fastest.as_secs_f64() * 1e3,
            "runs": timing.runs,
        });
        println!("{v}");
    } else {
        println!(
            "GCN training step ({}, {} training nodes) on {} thread(s): median {ms:.3} ms, {} runs",
            splits.source,
            nodes.len(),
            cfg.threads(),
            timing.runs
        );
    }
    Ok(())
}

pub fn bench_spmm(args: SpmmArgs) -> Result<(), BenchError> {
    let cfg = args.common.config()?;
    let (r, c, z, f) = (args.rows, args.cols, args.nnz, args.features);
    // Uniform positions from a fixed LCG (repeats allowed; they are stored and summed).
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |n: usize| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n.max(1) as u64) as u32
    };
    let (rows, cols): (Vec<u32>, Vec<u32>) = (0..z).map(|_| (next(r), next(c))).unzip();
    let values = fill(z, 3);
    let a = Csr::from_coo(r, c, &rows, &cols, Some(&values))?;
    let x = fill(c * f, 4);
    let mut y = vec![0f32; r * f];
    let min = Duration::from_millis(args.common.min_ms);
    let t = time_runs(min, || spmm(&cfg, a.as_ref(), (&x, f), f, (&mut y, f), false))?;
    // Bytes: each entry's value and column (4 + 4), the row pointers (4 each), X read once,
    // Y written once; each entry's row of X is 2 F flops.
    let bytes = z * 8 + (r + 1) * 4 + c * f * 4 + r * f * 4;
    let gflops = 2.0 * (z * f) as f64 / t.median.as_secs_f64() / 1e9;
    let copy = copy_gbps(&cfg, bytes / 8, min)?;
    let v = json!({
        "op": "spmm", "rows": r, "cols": c, "nnz": z, "features": f,
        "threads": cfg.threads(), "isa": cfg.isa().name(), "gflops": gflops,
    });
    report_bandwidth(args.common.json, v, &t, bytes, copy);
    Ok(())
}
