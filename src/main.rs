//! The `simdnn` command line.

mod bench;
mod classify_cmd;
mod gradients_cmd;
mod infer_cmd;
mod model_cmd;
mod plot;
mod sample_cmd;
mod show_cmd;
mod summary_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "simdnn", version, about = "A deep-learning engine on hand-vectorised CPU kernels")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure kernel speed (median of repeated runs).
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
    /// Train a registered model on its embedded default data or on --data.
    Train {
        #[command(subcommand)]
        model: model_cmd::ModelCommand<train_cmd::TrainArgs>,
    },
    /// Evaluate a trained checkpoint: test loss, accuracy and confusion matrix.
    Eval {
        #[command(subcommand)]
        model: model_cmd::ModelCommand<train_cmd::EvalArgs>,
    },
    /// Layer by layer: output shapes, parameters and multiply-accumulates of a model.
    Summary {
        #[command(subcommand)]
        model: model_cmd::ModelCommand<summary_cmd::SummaryArgs>,
    },
    /// Logits of a batch of images (safetensors in and out) with trained weights.
    Infer {
        #[command(subcommand)]
        model: model_cmd::ModelCommand<infer_cmd::InferArgs>,
    },
    /// The most probable classes of a PNG or JPEG image.
    Classify {
        #[command(subcommand)]
        model: model_cmd::ModelCommand<classify_cmd::ClassifyArgs>,
    },
    /// Draw a layer's feature maps for an image (and the first layer's filters) as PNG grids.
    Show {
        #[command(subcommand)]
        model: model_cmd::ModelCommand<show_cmd::ShowArgs>,
    },
    /// Generate text from a trained language model: `simdnn sample charlm --weights W --prompt TEXT`.
    Sample {
        #[command(subcommand)]
        model: model_cmd::ModelCommand<sample_cmd::SampleArgs>,
    },
    /// The vanishing-gradient demonstration: the norm of dC_T/dh_t against T - t for a
    /// recurrent cell on the adding problem, at initialisation and after training.
    Gradients(gradients_cmd::GradientsArgs),
    /// Show the instruction sets this CPU supports and the one in use.
    Info {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench { what } => bench::run(what).map_err(Into::into),
        Command::Info { json } => bench::info(json).map_err(Into::into),
        Command::Train { model } => train_cmd::train(model),
        Command::Eval { model } => train_cmd::eval(model),
        Command::Summary { model } => summary_cmd::summary(model),
        Command::Infer { model } => infer_cmd::infer(model),
        Command::Classify { model } => classify_cmd::classify(model),
        Command::Show { model } => show_cmd::show(model),
        Command::Sample { model } => sample_cmd::sample(model),
        Command::Gradients(args) => gradients_cmd::gradients(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
