//! `simdnn train MODEL ...` and `simdnn eval MODEL ...` for every model of the registry,
//! whatever its family (`simdnn_models::registry::Family`): data from `--data` or, without
//! it, the model's embedded default; progress bars, `metrics.jsonl`, the plot, checkpoints.

use crate::model_cmd::{gemm_config, input_size, ModelArgs, ModelCommand};
use crate::plot::{write_line_plot, write_training_plot, EpochPoint, LineChart, Series};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use simdnn::layers::{LrSchedule, Mode};
use simdnn::models::checkpoint::{write_atomic, Checkpoint, Part};
use simdnn::models::registry::{DataRequest, ModelEntry, RegistryError};
use simdnn::models::report::Report;
use simdnn::models::step::Metrics;
use simdnn::models::train::{self, checkpoint_epoch, EpochMetrics, Observer, OptimizerKind, TrainConfig};
use std::error::Error;
use std::path::{Path, PathBuf};

type CmdResult = Result<(), Box<dyn Error>>;

#[derive(Args)]
pub struct DataArgs {
    /// A directory with the model's data (MNIST-format IDX files for the digit models:
    /// train-images-idx3-ubyte[.gz], ...). Without it, the model's embedded default is used.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Size of the embedded dataset's training split.
    #[arg(long, default_value_t = 12_000)]
    synthetic_train: usize,
    /// Size of the embedded dataset's held-out split.
    #[arg(long, default_value_t = 2_000)]
    synthetic_test: usize,
    /// Train and test on these classes only, relabelled 0, 1, ... in the order given
    /// (e.g. `--keep-classes 0,6`: Fashion-MNIST's T-shirts against shirts).
    #[arg(long, value_delimiter = ',')]
    keep_classes: Vec<u8>,
}

impl DataArgs {
    /// What the data arguments ask for (an image family fills in its model's input).
    fn request(&self, batch: usize) -> DataRequest {
        DataRequest {
            fold: None,
            dir: self.data.clone(),
            synthetic_train: self.synthetic_train,
            synthetic_test: self.synthetic_test,
            input: (0, 0),
            channels: 0,
            keep_classes: self.keep_classes.clone(),
            batch,
        }
    }
}

/// The checkpoint metadata recording `--keep-classes`.
const KEEP_CLASSES: &str = "keep_classes";

fn join_classes(classes: &[u8]) -> String {
    classes.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Sgd,
    Adam,
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
    /// Epochs in total (a resumed run continues up to this count) [default: the model's, 10 for LeNet-5 on --data, 4 on the embedded set].
    #[arg(long)]
    epochs: Option<usize>,
    /// Examples per batch [default: the model's; 16 for the image classifiers].
    #[arg(long)]
    batch: Option<usize>,
    /// Learning rate [default: for adam 0.003 for LeNet-5, 0.0003 for the deeper zoo models;
    /// 0.01 for sgd].
    #[arg(long)]
    lr: Option<f32>,
    /// SGD is Nesterov momentum 0.9.
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,
    /// [default: the model's; sgdr for the image classifiers]
    #[arg(long, value_enum)]
    schedule: Option<ScheduleArg>,
    /// L2 weight decay on the weights that take it [default: the model's; 5e-4 for the GCN, else 0].
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Rescale each step's gradients to at most this L2 norm [default: the model's; 5 for
    /// the language model, none for the image classifiers].
    #[arg(long)]
    clip_norm: Option<f32>,
    /// Threads [default: SIMDNN_THREADS, else all CPUs].
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the weights and of the shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train this many times, from seeds SEED, SEED + 1, ... (each run in OUT/seed-S), and
    /// end with the mean and standard deviation of each test metric (`--json`:
    /// `test_accuracy_mean`, `test_accuracy_std`, ...; a graph auto-encoder's `auc_mean`).
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Cross-validate: train once per fold of the data, each holding out one fold, and end
    /// with `accuracy` (the mean over folds) and `accuracy_std` [default: the model's; 10
    /// for graphcls, else 1].
    #[arg(long)]
    folds: Option<usize>,
    /// Directory for checkpoint.safetensors, metrics.jsonl and training.png [default: runs/MODEL].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from OUT/checkpoint.safetensors (its model configuration is used).
    #[arg(long)]
    resume: bool,
    /// Print JSON lines (one per epoch) and a final JSON object instead of text and progress bars.
    #[arg(long)]
    json: bool,
    /// The model's input height and width; images are resized to it [default: the model's, e.g. 32 32 for LeNet-5, 224 224 for ResNet].
    #[arg(long, num_args = 2, value_names = ["H", "W"])]
    input: Option<Vec<usize>>,
    /// Input channels of the model (greyscale images are repeated into each).
    #[arg(long, default_value_t = 1)]
    in_channels: usize,
}

impl ModelArgs for TrainArgs {
    const TAKES_OPTIONS: bool = true;
}

#[derive(Args)]
pub struct EvalArgs {
    /// A checkpoint written by `simdnn train MODEL` (the model's options are read from it).
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

impl ModelArgs for EvalArgs {
    const TAKES_OPTIONS: bool = false;
}

/// An epoch's JSON line: `epoch`, every metric of the step as `train_NAME` and `test_NAME`
/// (a classifier's `train_loss`, `train_accuracy`, `test_loss`, `test_accuracy`), the time
/// and the learning rate.
fn metrics_json(m: &EpochMetrics) -> Value {
    let mut line = serde_json::Map::new();
    line.insert("epoch".into(), json!(m.epoch));
    for (prefix, metrics) in [("train", &m.train), ("test", &m.test)] {
        for (name, v) in metrics.iter() {
            line.insert(format!("{prefix}_{name}"), json!(v));
        }
    }
    line.insert("seconds".into(), json!(m.train_seconds));
    line.insert("images_per_second".into(), json!(m.examples_per_second));
    line.insert("examples_per_second".into(), json!(m.examples_per_second));
    line.insert("lr".into(), json!(m.lr));
    Value::Object(line)
}

/// Metrics as `loss 0.1234 acc 98.00%` (accuracy in percent).
fn describe_metrics(metrics: &Metrics) -> String {
    let parts: Vec<String> = metrics
        .iter()
        .map(|(name, v)| if name == "accuracy" { format!("acc {:.2}%", 100.0 * v) } else { format!("{name} {v:.4}") })
        .collect();
    parts.join(" ")
}

/// A plotted epoch: the losses, and the accuracies where the step classifies (else left
/// out of the plot as NaN).
fn point(v: &Value) -> Option<EpochPoint> {
    let or_nan = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    Some(EpochPoint {
        epoch: v["epoch"].as_u64()? as usize,
        train_loss: or_nan("train_loss"),
        test_loss: or_nan("test_loss"),
        train_accuracy: or_nan("train_accuracy"),
        test_accuracy: or_nan("test_accuracy"),
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
    title: String,
    error: Option<std::io::Error>,
}

impl CliObserver {
    fn write_files(&mut self) -> std::io::Result<()> {
        let text: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        write_atomic(&self.metrics_path, text.as_bytes())?;
        let points: Vec<EpochPoint> = self.lines.iter().filter_map(point).collect();
        write_training_plot(&self.plot_path, &self.title, &points)
    }
}

impl Observer for CliObserver {
    fn batch_done(&mut self, epoch: usize, batch: usize, batches: usize, running: &Metrics) {
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
            bar.set_message(format!("{} {rate:.0} examples/s", describe_metrics(running)));
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
                "epoch {:>2}/{}  train {}  test {}  {:.1} s ({:.0} examples/s)",
                m.epoch,
                self.epochs,
                describe_metrics(&m.train),
                describe_metrics(&m.test),
                m.train_seconds,
                m.examples_per_second
            );
        }
        self.lines.push(line);
        if let Err(e) = self.write_files() {
            self.error.get_or_insert(e);
        }
    }
}

pub fn train(cmd: ModelCommand<TrainArgs>) -> CmdResult {
    let (entry, args, options) = cmd.into_parts();
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(entry.name));
    let folds = args.folds.unwrap_or(entry.defaults.folds).max(1);
    if args.seeds <= 1 && folds <= 1 {
        return train_seed(entry, &args, &options, (args.seed, None), out).map(|_| ());
    }
    if args.resume {
        return Err("--resume continues one run: it does not combine with --seeds or --folds".into());
    }
    // Independent runs from seeds seed, seed + 1, ..., and on each fold (OUT/seed-S/fold-K);
    // then the mean and the sample standard deviation of every test metric and family value
    // they all report.
    let seeds: Vec<u64> = (0..args.seeds.max(1) as u64).map(|k| args.seed + k).collect();
    let mut summaries = Vec::new();
    for &seed in &seeds {
        for k in 0..folds {
            let mut dir = if seeds.len() > 1 { out.join(format!("seed-{seed}")) } else { out.clone() };
            if folds > 1 {
                dir = dir.join(format!("fold-{}", k + 1));
            }
            let fold = (folds > 1).then_some((k, folds));
            summaries.push(train_seed(entry, &args, &options, (seed, fold), dir)?);
        }
    }
    let mut combined = serde_json::Map::new();
    combined.insert("model".into(), json!(entry.name));
    combined.insert("seeds".into(), json!(seeds));
    let mut lines = Vec::new();
    if let Some(Value::Object(first)) = summaries.first() {
        for key in first.keys().filter(|k| k.starts_with("test_") || REPORTED.contains(&k.as_str())) {
            let Some(values) = summaries.iter().map(|s| s[key.as_str()].as_f64()).collect::<Option<Vec<f64>>>() else {
                continue;
            };
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let std = (values.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
            combined.insert(format!("{key}_mean"), json!(mean));
            combined.insert(format!("{key}_std"), json!(std));
            combined.insert(format!("{key}_runs"), json!(values));
            lines.push(format!("{key} {mean:.4} ± {std:.4}"));
        }
    }
    if folds > 1 {
        // Cross-validation's summary under its usual names.
        for (name, key) in [("accuracy", "test_accuracy_mean"), ("accuracy_std", "test_accuracy_std")] {
            if let Some(v) = combined.get(key).cloned() {
                combined.insert(name.into(), v);
            }
        }
        combined.insert("folds".into(), json!(folds));
    }
    if args.json {
        println!("{}", Value::Object(combined));
    } else {
        println!("over {} seed(s) x {folds} fold(s): {}", seeds.len(), lines.join(", "));
    }
    Ok(())
}

/// The family values `--seeds` also averages (besides every `test_` metric).
const REPORTED: &[&str] = &["auc", "ap", "bits_per_char", "one_step_rmse", "recursive_rmse"];

/// One training run from `seed` (on fold `k` of `folds` for a cross-validated set), written
/// into `out`; its summary (printed too).
fn train_seed(
    entry: &'static ModelEntry,
    args: &TrainArgs,
    options: &[(&'static str, String)],
    (seed, fold): (u64, Option<(usize, usize)>),
    out: PathBuf,
) -> Result<Value, Box<dyn Error>> {
    let family = entry.family();
    let gemm = gemm_config(args.threads)?;
    let batch = args.batch.unwrap_or(entry.defaults.batch);
    let schedule = match args.schedule {
        Some(s) => s,
        None => ScheduleArg::from_str(entry.defaults.schedule, true)?,
    };
    let checkpoint = out.join("checkpoint.safetensors");
    let metrics_path = out.join("metrics.jsonl");

    let options = entry.options(options.iter().map(|(n, v)| (*n, v.as_str())))?;
    let mut sizes = vec![("in_channels", args.in_channels.to_string())];
    if let Some((h, w)) = input_size(&args.input) {
        sizes.push(("input", format!("{h}x{w}")));
    }
    let mut previous = Vec::new();
    let recorded = if args.resume {
        let meta = Checkpoint::read(&checkpoint)?.metadata()?;
        let done = checkpoint_epoch(&meta);
        // Keep the metric lines of the epochs the checkpoint holds.
        if let Ok(text) = std::fs::read_to_string(&metrics_path) {
            previous = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v["epoch"].as_u64().is_some_and(|e| e as usize <= done))
                .collect();
        }
        Some(meta)
    } else {
        None
    };
    let in_file = |e: RegistryError| format!("{}: {e}", checkpoint.display());
    let mut config = family.configure(entry, options, &sizes, recorded.as_ref()).map_err(in_file)?;
    let splits = family.load_data(entry, &config, &DataRequest { fold, ..args.data.request(batch) })?;
    family.fit_data(entry, &mut config, &splits).map_err(in_file)?;
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let (epochs_on_data, epochs_embedded) = entry.default_epochs;
    let epochs = args.epochs.unwrap_or(if args.data.data.is_some() { epochs_on_data } else { epochs_embedded });
    let (optimizer, default_lr) = match args.optimizer {
        OptimizerArg::Sgd => (OptimizerKind::Sgd, 0.01),
        OptimizerArg::Adam => (OptimizerKind::Adam, entry.adam_lr),
    };
    let lr = args.lr.unwrap_or(default_lr);
    let (train_len, test_len) = (splits.train.len(), splits.test.len());
    let epoch_steps = train_len.div_ceil(batch.max(1));
    let total_steps = epochs * epoch_steps;
    let schedule = match schedule {
        ScheduleArg::Sgdr => LrSchedule::CosineRestarts { period: epoch_steps, decay: 0.8, min: 0.0 },
        ScheduleArg::Cosine => LrSchedule::Cosine { total: total_steps, min: 0.0 },
        ScheduleArg::Constant => LrSchedule::Constant,
        ScheduleArg::Step => LrSchedule::Step { every: total_steps.div_ceil(4), gamma: 0.5 },
    };

    let describe_optimizer = match optimizer {
        OptimizerKind::Sgd => "sgd",
        OptimizerKind::Adam => "adam",
    };
    let mut metadata = config.metadata(entry);
    metadata.insert("data".into(), splits.source.clone());
    metadata.insert("seed".into(), seed.to_string());
    if !args.data.keep_classes.is_empty() {
        metadata.insert(KEEP_CLASSES.into(), join_classes(&args.data.keep_classes));
    }
    let cfg = TrainConfig {
        epochs,
        batch,
        lr,
        optimizer,
        weight_decay: args.weight_decay.unwrap_or(entry.defaults.weight_decay),
        schedule,
        seed,
        checkpoint: Some(checkpoint.clone()),
        resume: args.resume,
        metadata,
        clip_norm: args.clip_norm.or(entry.defaults.clip_norm),
    };
    let mut observer = CliObserver {
        json: args.json,
        batch,
        epochs,
        bar: None,
        lines: previous,
        metrics_path: metrics_path.clone(),
        plot_path: out.join("training.png"),
        title: entry.title.to_uppercase(),
        error: None,
    };
    let mut step = family.step(entry, &config, batch, seed, Some(&cfg), gemm)?;
    let params: usize = step.models().iter().map(|(_, m)| m.params().count()).sum();
    if !args.json {
        println!(
            "{} ({}): {params} parameters | data: {}, {train_len} train / {test_len} test | {} on {} thread(s) | {epochs} epochs, batch {}, {describe_optimizer} lr {lr}",
            entry.title,
            config.describe(),
            splits.source,
            gemm.isa(),
            gemm.threads(),
            batch,
        );
    }
    let history = train::train(step.as_mut(), &*splits.train, &*splits.test, &cfg, &mut observer);
    if let Some(bar) = observer.bar.take() {
        bar.abandon();
    }
    let history = history?;
    let report = family.report(entry, &config, step.as_mut(), &splits, history.last())?;
    let charts = write_charts(&out, &report)?;
    if let Some(e) = observer.error {
        return Err(format!("writing {} or the plot: {e}", metrics_path.display()).into());
    }
    let last = observer.lines.last().cloned().unwrap_or(Value::Null);
    let seconds_per_epoch = if history.is_empty() {
        0.0
    } else {
        history.iter().map(|m| m.train_seconds).sum::<f64>() / history.len() as f64
    };
    let per_second = if seconds_per_epoch > 0.0 { train_len as f64 / seconds_per_epoch } else { 0.0 };
    let mut summary = json!({
        "model": entry.name,
        "test_accuracy": last["test_accuracy"],
        "test_loss": last["test_loss"],
        "train_accuracy": last["train_accuracy"],
        "epochs": last["epoch"],
        "seconds_per_epoch": seconds_per_epoch,
        "images_per_second": per_second,
        "examples_per_second": per_second,
        "params": params,
        "data": splits.source,
        "isa": gemm.isa().name(),
        "threads": gemm.threads(),
        "checkpoint": checkpoint.display().to_string(),
        "metrics": metrics_path.display().to_string(),
        "plot": observer.plot_path.display().to_string(),
    });
    // Every metric of the last epoch, whatever the step reports.
    if let (Some(fields), Value::Object(line)) = (summary.as_object_mut(), &last) {
        for (k, v) in line.iter().filter(|(k, _)| k.starts_with("train_") || k.starts_with("test_")) {
            fields.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    add_report(&mut summary, &report, &charts);
    if args.json {
        println!("{summary}");
    } else {
        print_report(&report, &charts);
        println!(
            "test accuracy {:.2}% after {} epochs, {seconds_per_epoch:.2} s per epoch | wrote {}, {}, {}",
            100.0 * last["test_accuracy"].as_f64().unwrap_or(0.0),
            last["epoch"],
            checkpoint.display(),
            metrics_path.display(),
            observer.plot_path.display()
        );
    }
    Ok(summary)
}

/// Writes the family's charts into `dir`; their paths.
fn write_charts(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut paths = Vec::new();
    for (file, chart) in &report.charts {
        let path = dir.join(file);
        let series = chart.lines.iter().map(|l| Series { label: l.label.clone(), points: l.points.clone() }).collect();
        let line_chart = LineChart {
            title: chart.title.clone(),
            x_label: chart.x_label.clone(),
            y_label: chart.y_label.clone(),
            series,
            log_y: chart.log_y,
            scatter: chart.scatter,
        };
        write_line_plot(&path, &line_chart).map_err(|e| format!("writing {}: {e}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// The family's values as top-level keys of the summary, and its charts under `charts`.
fn add_report(summary: &mut Value, report: &Report, charts: &[PathBuf]) {
    if let Some(fields) = summary.as_object_mut() {
        for (name, v) in &report.values {
            fields.insert(name.to_string(), json!(v));
        }
        if !charts.is_empty() {
            let paths: Vec<String> = charts.iter().map(|p| p.display().to_string()).collect();
            fields.insert("charts".into(), json!(paths));
        }
    }
}

fn print_report(report: &Report, charts: &[PathBuf]) {
    if !report.values.is_empty() {
        let parts: Vec<String> = report.values.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
        println!("{}", parts.join(" | "));
    }
    for path in charts {
        println!("wrote {}", path.display());
    }
}

pub fn eval(cmd: ModelCommand<EvalArgs>) -> CmdResult {
    let (entry, args, _) = cmd.into_parts();
    let family = entry.family();
    let gemm = gemm_config(args.threads)?;
    let ck = Checkpoint::read(&args.weights)?;
    let meta = ck.metadata()?;
    let in_file = |e: RegistryError| format!("{}: {e}", args.weights.display());
    let mut config = family.configure(entry, entry.options([])?, &[], Some(&meta)).map_err(in_file)?;
    let mut request = args.data.request(args.batch);
    // The classes the model was trained on, unless others are asked for.
    if let (true, Some(kept)) = (request.keep_classes.is_empty(), meta.get(KEEP_CLASSES)) {
        request.keep_classes = kept.split(',').map(str::parse).collect::<Result<_, _>>().map_err(|_| {
            format!("{}: metadata {KEEP_CLASSES} = {kept:?} is not a list of classes", args.weights.display())
        })?;
    }
    let splits = family.load_data(entry, &config, &request)?;
    family.fit_data(entry, &mut config, &splits).map_err(in_file)?;
    let mut step = family.step(entry, &config, args.batch, 0, None, gemm)?;
    let mut weights: Vec<Part> = step.parts().into_iter().filter(|p| matches!(p, Part::Params(..))).collect();
    ck.load(&mut weights)?;
    let e = step.evaluate(&*splits.test, args.batch)?;
    let report = family.report(entry, &config, step.as_mut(), &splits, None)?;
    let out_dir = args.weights.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let charts = write_charts(&out_dir, &report)?;
    let models = step.models();
    let model = models.first().map(|(_, m)| *m).ok_or("the model has no network")?;
    let memory = model.memory_plan(&[], Mode::Eval)?;
    if args.json {
        let mut out = json!({
            "model": entry.name,
            "test_accuracy": e.accuracy(),
            "test_loss": e.loss(),
            "images": e.examples,
            "examples": e.examples,
            "data": splits.source,
            "confusion": e.confusion,
            "batch": args.batch,
            "activation_bytes": memory.peak_bytes,
            "activation_bytes_unshared": memory.total_bytes,
        });
        if let Some(fields) = out.as_object_mut() {
            for (name, v) in e.metrics.iter() {
                fields.entry(format!("test_{name}")).or_insert(json!(v));
            }
        }
        add_report(&mut out, &report, &charts);
        println!("{out}");
        return Ok(());
    }
    println!("{} {} on {}: {} test examples", entry.title, args.weights.display(), splits.source, e.examples);
    println!("test {}", describe_metrics(&e.metrics));
    print_report(&report, &charts);
    println!(
        "activation memory at batch {}: {} KiB planned ({} KiB if no value shared a buffer)",
        args.batch,
        memory.peak_bytes / 1024,
        memory.total_bytes / 1024
    );
    if e.confusion.is_empty() {
        return Ok(());
    }
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
