//! `simdnn gradients --cell rnn|lstm|gru --seq T --out FILE.png`: the vanishing-gradient
//! demonstration. The norm of `∂C_T/∂h_t` against `T - t` for a cell on the adding problem,
//! at initialisation and after training, as a table, JSON and a plot with a log axis.

use crate::model_cmd::gemm_config;
use crate::plot::{write_line_plot, LineChart, Series};
use clap::Args;
use serde_json::json;
use simdnn::layers::LrSchedule;
use simdnn::models::classifier::{ClassifierStep, Objective};
use simdnn::models::registry::{Config, Options};
use simdnn::models::sequence::adding::{self, AddingProblem, AddingSpec};
use simdnn::models::sequence::gradients::{gradient_profile, GradientProfile};
use simdnn::models::train::{self, OptimizerKind, Silent, TrainConfig};
use std::collections::HashMap;
use std::error::Error;
use std::path::PathBuf;

#[derive(Args)]
pub struct GradientsArgs {
    /// The cell: rnn (the simple tanh cell), lstm or gru.
    #[arg(long, default_value = "rnn")]
    cell: String,
    /// Sequence length T.
    #[arg(long, default_value_t = 100)]
    seq: usize,
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Epochs of training on the adding problem between the two measurements.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Training sequences.
    #[arg(long, default_value_t = 4000)]
    train: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Sequences the gradient is averaged over (the loss is their mean).
    #[arg(long, default_value_t = 64)]
    probe: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    threads: Option<usize>,
    /// The plot.
    #[arg(long, default_value = "gradients.png")]
    out: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn gradients(args: GradientsArgs) -> Result<(), Box<dyn Error>> {
    let gemm = gemm_config(args.threads)?;
    let entry = &adding::ENTRY;
    let given = [("cell", args.cell.as_str()), ("seq", &args.seq.to_string()), ("hidden", &args.hidden.to_string())];
    let options: Options = entry.options(given.iter().map(|(n, v)| (*n, *v)))?;
    let spec = AddingSpec::of(&Config::new(options));
    let probe = AddingProblem::generate(args.probe.max(1), args.seq, 77);
    let train_set = AddingProblem::generate(args.train.max(1), args.seq, 1997);
    let test_set = AddingProblem::generate(1000, args.seq, 2015);

    let mut model = spec.regressor.build(args.batch.max(1), args.seq, args.seed)?;
    let initial = gradient_profile(&spec, &mut model, &probe, args.probe, gemm)?;
    let cfg = TrainConfig {
        epochs: args.epochs,
        batch: args.batch.max(1),
        lr: args.lr,
        optimizer: OptimizerKind::Adam,
        weight_decay: 0.0,
        schedule: LrSchedule::Constant,
        seed: args.seed,
        checkpoint: None,
        resume: false,
        metadata: HashMap::new(),
        clip_norm: entry.defaults.clip_norm,
    };
    let mut step =
        ClassifierStep::new(model, Objective { loss: "loss", classify: None, report: &[] }, gemm, Some(&cfg))?;
    let history = train::train(&mut step, &train_set, &test_set, &cfg, &mut Silent)?;
    let test_mse = history.last().map_or(f64::NAN, |m| m.test_loss());
    let mut model = step.into_model();
    let trained = gradient_profile(&spec, &mut model, &probe, args.probe, gemm)?;

    let series = |label: &str, p: &GradientProfile| Series {
        label: label.into(),
        points: p.norms.iter().map(|&(d, n)| (d as f64, n)).collect(),
    };
    let chart = LineChart {
        title: format!("{} on the adding problem, T = {}: gradient of the last loss", args.cell, args.seq),
        x_label: "T - t".into(),
        y_label: "norm of dC_T/dh_t".into(),
        series: vec![series("initialisation", &initial), series(&format!("after {} epochs", args.epochs), &trained)],
        log_y: true,
        scatter: false,
    };
    write_line_plot(&args.out, &chart)?;
    if args.json {
        let rows: Vec<_> = initial
            .norms
            .iter()
            .zip(&trained.norms)
            .map(|(&(d, a), &(_, b))| json!({ "distance": d, "initial": a, "trained": b }))
            .collect();
        let out = json!({
            "cell": args.cell,
            "seq": args.seq,
            "hidden": args.hidden,
            "epochs": args.epochs,
            "test_mse": test_mse,
            "norms": rows,
            "plot": args.out.display().to_string(),
        });
        println!("{out}");
        return Ok(());
    }
    println!("{} on the adding problem, T = {}, hidden {}: |dC_T/dh_t| by T - t", args.cell, args.seq, args.hidden);
    println!("{:>8}  {:>14}  {:>14}", "T - t", "initialisation", format!("after {} ep.", args.epochs));
    let shown = |d: usize| d <= 5 || d.is_power_of_two() || d.is_multiple_of(25) || d == args.seq;
    for (&(d, a), &(_, b)) in initial.norms.iter().zip(&trained.norms).filter(|(&(d, _), _)| shown(d)) {
        println!("{d:>8}  {a:>14.4e}  {b:>14.4e}");
    }
    println!("test mse after training {test_mse:.4} (answering 1.0: about 0.167) | wrote {}", args.out.display());
    Ok(())
}
