//! `simdnn train lenet5 ...` and `simdnn eval lenet5 ...`: LeNet-5 on MNIST-format IDX files
//! or, with no `--data`, on the embedded synthetic digits.

use crate::plot::{write_training_plot, EpochPoint};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::threading::default_threads;
use simdnn::kernels::Isa;
use simdnn::layers::{count_params, LrSchedule, Sequential};
use simdnn::models::checkpoint::{write_atomic, Checkpoint};
use simdnn::models::data::{load_idx_dir, synthetic_digits, ImageSet, Preprocess};
use simdnn::models::train::{
    checkpoint_epoch, evaluate, train_classifier, EpochMetrics, Observer, OptimizerKind, TrainConfig,
};
use simdnn::models::{lenet5, LeNetActivation, LeNetPooling, LENET5_PARAMS};
use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};

type CmdResult = Result<(), Box<dyn Error>>;

/// Seed of the embedded dataset: fixed, so `eval` regenerates the same held-out split.
const SYNTHETIC_SEED: u64 = 2026;
/// Epochs when none are given: 10 on IDX data (MNIST), fewer on the small embedded set.
const EPOCHS_IDX: usize = 10;
const EPOCHS_EMBEDDED: usize = 4;

#[derive(Subcommand)]
pub enum TrainCommand {
    /// LeNet-5 (LeCun et al. 1998) on 32x32 digits.
    Lenet5(TrainArgs),
}

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Test accuracy and confusion matrix of a LeNet-5 checkpoint.
    Lenet5(EvalArgs),
}

#[derive(Args)]
pub struct DataArgs {
    /// Directory with MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...). Without
    /// it, the embedded synthetic digits are used.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Size of the embedded dataset's training split.
    #[arg(long, default_value_t = 12_000)]
    synthetic_train: usize,
    /// Size of the embedded dataset's held-out split.
    #[arg(long, default_value_t = 2_000)]
    synthetic_test: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Sgd,
    Adam,
}

#[derive(Clone, Copy, ValueEnum)]
enum ActivationArg {
    Relu,
    Tanh,
}

#[derive(Clone, Copy, ValueEnum)]
enum PoolingArg {
    Max,
    Avg,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScheduleArg {
    /// Cosine annealing to zero within every epoch, each epoch's peak 0.8 times the last
    /// (SGDR warm restarts): every epoch ends on an annealed model.
    Sgdr,
    /// Cosine annealing to zero over the run.
    Cosine,
    Constant,
    /// Halved every quarter of the run.
    Step,
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Epochs in total (a resumed run continues up to this count) [default: 10 on --data, 4 on the embedded set].
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Learning rate [default: 0.003 for adam, 0.01 for sgd].
    #[arg(long)]
    lr: Option<f32>,
    /// SGD is Nesterov momentum 0.9.
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,
    #[arg(long, value_enum, default_value = "sgdr")]
    schedule: ScheduleArg,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    #[arg(long, value_enum, default_value = "relu")]
    activation: ActivationArg,
    #[arg(long, value_enum, default_value = "max")]
    pooling: PoolingArg,
    /// Threads [default: SIMDNN_THREADS, else all CPUs].
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the weights and of the shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for checkpoint.safetensors, metrics.jsonl and training.png.
    #[arg(long, default_value = "runs/lenet5")]
    out: PathBuf,
    /// Continue from OUT/checkpoint.safetensors (its model configuration is used).
    #[arg(long)]
    resume: bool,
    /// Print JSON lines (one per epoch) and a final JSON object instead of text and progress bars.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    /// A checkpoint written by `simdnn train lenet5`.
    #[arg(long)]
    weights: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn gemm_config(threads: Option<usize>) -> Result<GemmConfig, Box<dyn Error>> {
    Ok(GemmConfig::new(Isa::current()?, threads.map_or_else(default_threads, Ok)?)?)
}

/// `(train, test, description)` of the requested data.
fn load_data(args: &DataArgs) -> Result<(ImageSet, ImageSet, String), Box<dyn Error>> {
    match &args.data {
        Some(dir) => {
            let (train, test) = load_idx_dir(dir)?;
            Ok((train, test, format!("idx:{}", dir.display())))
        }
        None => {
            if args.synthetic_train == 0 || args.synthetic_test == 0 {
                return Err("the embedded dataset's splits must not be empty".into());
            }
            let (train, test) = synthetic_digits(args.synthetic_train, args.synthetic_test, SYNTHETIC_SEED);
            Ok((train, test, "embedded synthetic digits".into()))
        }
    }
}

fn activation_name(a: LeNetActivation) -> &'static str {
    match a {
        LeNetActivation::Relu => "relu",
        LeNetActivation::Tanh => "tanh",
    }
}

fn pooling_name(p: LeNetPooling) -> &'static str {
    match p {
        LeNetPooling::Max => "max",
        LeNetPooling::Avg => "avg",
    }
}

/// The model configuration stored in a checkpoint's metadata.
fn model_from_metadata(
    meta: &HashMap<String, String>,
    path: &Path,
) -> Result<(LeNetActivation, LeNetPooling), Box<dyn Error>> {
    if meta.get("model").map(String::as_str) != Some("lenet5") {
        return Err(
            format!("{}: not a LeNet-5 checkpoint (metadata model = {:?})", path.display(), meta.get("model")).into()
        );
    }
    let activation = match meta.get("activation").map(String::as_str) {
        Some("tanh") => LeNetActivation::Tanh,
        Some("relu") => LeNetActivation::Relu,
        other => return Err(format!("{}: unknown activation {other:?}", path.display()).into()),
    };
    let pooling = match meta.get("pooling").map(String::as_str) {
        Some("avg") => LeNetPooling::Avg,
        Some("max") => LeNetPooling::Max,
        other => return Err(format!("{}: unknown pooling {other:?}", path.display()).into()),
    };
    Ok((activation, pooling))
}

fn metrics_json(m: &EpochMetrics) -> Value {
    json!({
        "epoch": m.epoch,
        "train_loss": m.train_loss,
        "train_accuracy": m.train_accuracy,
        "test_loss": m.test_loss,
        "test_accuracy": m.test_accuracy,
        "seconds": m.train_seconds,
        "images_per_second": m.images_per_second,
        "lr": m.lr,
    })
}

fn point(v: &Value) -> Option<EpochPoint> {
    Some(EpochPoint {
        epoch: v["epoch"].as_u64()? as usize,
        train_loss: v["train_loss"].as_f64()?,
        test_loss: v["test_loss"].as_f64()?,
        train_accuracy: v["train_accuracy"].as_f64()?,
        test_accuracy: v["test_accuracy"].as_f64()?,
    })
}

/// Progress bars on the terminal, metrics.jsonl and the plot after every epoch.
struct CliObserver {
    json: bool,
    batch: usize,
    epochs: usize,
    bar: Option<ProgressBar>,
    lines: Vec<Value>,
    metrics_path: PathBuf,
    plot_path: PathBuf,
    error: Option<std::io::Error>,
}

impl CliObserver {
    fn write_files(&mut self) -> std::io::Result<()> {
        let text: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        write_atomic(&self.metrics_path, text.as_bytes())?;
        let points: Vec<EpochPoint> = self.lines.iter().filter_map(point).collect();
        write_training_plot(&self.plot_path, "LENET-5", &points)
    }
}

impl Observer for CliObserver {
    fn batch_done(&mut self, epoch: usize, batch: usize, batches: usize, loss: f32, accuracy: f64) {
        if self.json {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr_with_hz(8));
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
            bar
        });
        bar.set_position(batch as u64);
        if batch.is_multiple_of(8) || batch == batches {
            let rate = (batch * self.batch) as f64 / bar.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("loss {loss:.4} acc {:.2}% {rate:.0} img/s", 100.0 * accuracy));
        }
    }

    fn epoch_done(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let line = metrics_json(m);
        if self.json {
            println!("{line}");
        } else {
            println!(
                "epoch {:>2}/{}  train loss {:.4} acc {:.2}%  test loss {:.4} acc {:.2}%  {:.1} s ({:.0} img/s)",
                m.epoch,
                self.epochs,
                m.train_loss,
                100.0 * m.train_accuracy,
                m.test_loss,
                100.0 * m.test_accuracy,
                m.train_seconds,
                m.images_per_second
            );
        }
        self.lines.push(line);
        if let Err(e) = self.write_files() {
            self.error.get_or_insert(e);
        }
    }
}

pub fn train(cmd: TrainCommand) -> CmdResult {
    let TrainCommand::Lenet5(args) = cmd;
    let gemm = gemm_config(args.threads)?;
    let (train_set, test_set, source) = load_data(&args.data)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let checkpoint = args.out.join("checkpoint.safetensors");
    let metrics_path = args.out.join("metrics.jsonl");

    let mut activation = match args.activation {
        ActivationArg::Relu => LeNetActivation::Relu,
        ActivationArg::Tanh => LeNetActivation::Tanh,
    };
    let mut pooling = match args.pooling {
        PoolingArg::Max => LeNetPooling::Max,
        PoolingArg::Avg => LeNetPooling::Avg,
    };
    let mut previous = Vec::new();
    if args.resume {
        let meta = Checkpoint::read(&checkpoint)?.metadata()?;
        (activation, pooling) = model_from_metadata(&meta, &checkpoint)?;
        let done = checkpoint_epoch(&meta);
        // Keep the metric lines of the epochs the checkpoint holds.
        if let Ok(text) = std::fs::read_to_string(&metrics_path) {
            previous = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v["epoch"].as_u64().is_some_and(|e| e as usize <= done))
                .collect();
        }
    }
    let epochs = args.epochs.unwrap_or(if args.data.data.is_some() { EPOCHS_IDX } else { EPOCHS_EMBEDDED });
    let (optimizer, default_lr) = match args.optimizer {
        OptimizerArg::Sgd => (OptimizerKind::Sgd, 0.01),
        OptimizerArg::Adam => (OptimizerKind::Adam, 0.003),
    };
    let lr = args.lr.unwrap_or(default_lr);
    let epoch_steps = train_set.len().div_ceil(args.batch.max(1));
    let total_steps = epochs * epoch_steps;
    let schedule = match args.schedule {
        ScheduleArg::Sgdr => LrSchedule::CosineRestarts { period: epoch_steps, decay: 0.8, min: 0.0 },
        ScheduleArg::Cosine => LrSchedule::Cosine { total: total_steps, min: 0.0 },
        ScheduleArg::Constant => LrSchedule::Constant,
        ScheduleArg::Step => LrSchedule::Step { every: total_steps.div_ceil(4), gamma: 0.5 },
    };

    let mut net: Sequential = lenet5(activation, pooling, args.seed)?;
    let params = count_params(&mut net);
    if !args.json {
        println!(
            "LeNet-5 ({}, {} pooling): {params} parameters | data: {source}, {} train / {} test | {} on {} thread(s) | {epochs} epochs, batch {}, {} lr {lr}",
            activation_name(activation),
            pooling_name(pooling),
            train_set.len(),
            test_set.len(),
            gemm.isa(),
            gemm.threads(),
            args.batch,
            match optimizer {
                OptimizerKind::Sgd => "sgd",
                OptimizerKind::Adam => "adam",
            }
        );
    }
    debug_assert_eq!(params, LENET5_PARAMS);
    let metadata = HashMap::from([
        ("model".to_string(), "lenet5".to_string()),
        ("activation".to_string(), activation_name(activation).to_string()),
        ("pooling".to_string(), pooling_name(pooling).to_string()),
        ("data".to_string(), source.clone()),
        ("seed".to_string(), args.seed.to_string()),
    ]);
    let cfg = TrainConfig {
        epochs,
        batch: args.batch,
        lr,
        optimizer,
        weight_decay: args.weight_decay,
        schedule,
        seed: args.seed,
        preprocess: Preprocess::MNIST,
        checkpoint: Some(checkpoint.clone()),
        resume: args.resume,
        metadata,
    };
    let mut observer = CliObserver {
        json: args.json,
        batch: args.batch,
        epochs,
        bar: None,
        lines: previous,
        metrics_path: metrics_path.clone(),
        plot_path: args.out.join("training.png"),
        error: None,
    };
    let history = train_classifier(&mut net, gemm, &train_set, &test_set, &cfg, &mut observer);
    if let Some(bar) = observer.bar.take() {
        bar.abandon();
    }
    let history = history?;
    if let Some(e) = observer.error {
        return Err(format!("writing {} or the plot: {e}", metrics_path.display()).into());
    }
    let last = observer.lines.last().cloned().unwrap_or(Value::Null);
    let seconds_per_epoch = if history.is_empty() {
        0.0
    } else {
        history.iter().map(|m| m.train_seconds).sum::<f64>() / history.len() as f64
    };
    let summary = json!({
        "model": "lenet5",
        "test_accuracy": last["test_accuracy"],
        "test_loss": last["test_loss"],
        "train_accuracy": last["train_accuracy"],
        "epochs": last["epoch"],
        "seconds_per_epoch": seconds_per_epoch,
        "images_per_second": if seconds_per_epoch > 0.0 { train_set.len() as f64 / seconds_per_epoch } else { 0.0 },
        "params": params,
        "data": source,
        "isa": gemm.isa().name(),
        "threads": gemm.threads(),
        "checkpoint": checkpoint.display().to_string(),
        "metrics": metrics_path.display().to_string(),
        "plot": observer.plot_path.display().to_string(),
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "test accuracy {:.2}% after {} epochs, {seconds_per_epoch:.2} s per epoch | wrote {}, {}, {}",
            100.0 * last["test_accuracy"].as_f64().unwrap_or(0.0),
            last["epoch"],
            checkpoint.display(),
            metrics_path.display(),
            observer.plot_path.display()
        );
    }
    Ok(())
}

pub fn eval(cmd: EvalCommand) -> CmdResult {
    let EvalCommand::Lenet5(args) = cmd;
    let gemm = gemm_config(args.threads)?;
    let ck = Checkpoint::read(&args.weights)?;
    let meta = ck.metadata()?;
    let (activation, pooling) = model_from_metadata(&meta, &args.weights)?;
    let mut net = lenet5(activation, pooling, 0)?;
    ck.load_into(&mut net, None)?;
    let (_, test_set, source) = load_data(&args.data)?;
    let e = evaluate(&mut net, gemm, &test_set, &Preprocess::MNIST, args.batch)?;
    if args.json {
        let out = json!({
            "model": "lenet5",
            "test_accuracy": e.accuracy,
            "test_loss": e.loss,
            "images": test_set.len(),
            "data": source,
            "confusion": e.confusion,
        });
        println!("{out}");
        return Ok(());
    }
    println!("LeNet-5 {} on {source}: {} test images", args.weights.display(), test_set.len());
    println!("test accuracy {:.2}%  loss {:.4}", 100.0 * e.accuracy, e.loss);
    println!("confusion matrix (rows: true class, columns: predicted)");
    print!("     ");
    (0..e.confusion.len()).for_each(|c| print!("{c:>6}"));
    println!();
    for (t, row) in e.confusion.iter().enumerate() {
        print!("{t:>4} ");
        row.iter().for_each(|n| print!("{n:>6}"));
        println!();
    }
    Ok(())
}
