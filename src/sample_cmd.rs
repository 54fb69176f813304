//! `simdnn sample charlm --weights W --prompt TEXT`: text from a trained language model.

use crate::model_cmd::{gemm_config, ModelArgs, ModelCommand};
use clap::Args;
use serde_json::json;
use simdnn::models::checkpoint::{Checkpoint, Part};
use simdnn::models::registry::Kind;
use simdnn::models::sequence::charlm::{self, CharLmSpec};
use simdnn::models::train::MODEL_PREFIX;
use std::error::Error;
use std::path::PathBuf;

#[derive(Args)]
pub struct SampleArgs {
    /// A checkpoint written by `simdnn train charlm`.
    #[arg(long)]
    weights: PathBuf,
    /// The text to continue (characters of the model's vocabulary); empty: a new line.
    #[arg(long, default_value = "")]
    prompt: String,
    /// Softmax temperature: below 1 more conservative, above 1 more varied.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Characters to generate.
    #[arg(long, default_value_t = 500)]
    length: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object (`prompt`, `text`, `chars_per_second`).
    #[arg(long)]
    json: bool,
}

impl ModelArgs for SampleArgs {
    const TAKES_OPTIONS: bool = false;
}

pub fn sample(cmd: ModelCommand<SampleArgs>) -> Result<(), Box<dyn Error>> {
    let (entry, args, _) = cmd.into_parts();
    if !matches!(entry.kind, Kind::Family(_)) || entry.name != charlm::ENTRY.name {
        return Err(format!("{} does not generate text: sample applies to {}", entry.name, charlm::ENTRY.name).into());
    }
    let gemm = gemm_config(args.threads)?;
    let ck = Checkpoint::read(&args.weights)?;
    let meta = ck.metadata()?;
    let in_file = |e: &dyn std::fmt::Display| format!("{}: {e}", args.weights.display());
    let config = entry.family().configure(entry, entry.options([])?, &[], Some(&meta)).map_err(|e| in_file(&e))?;
    let spec = CharLmSpec::of(&config).map_err(|e| in_file(&e))?;
    let mut model = spec.build(1, 0)?;
    ck.load(&mut [Part::Params(MODEL_PREFIX, model.params_mut())])?;
    let start = std::time::Instant::now();
    let text = charlm::sample(&spec, &mut model, &args.prompt, args.length, args.temperature, args.seed, gemm)?;
    let per_second = args.length as f64 / start.elapsed().as_secs_f64().max(1e-9);
    if args.json {
        println!("{}", json!({ "prompt": args.prompt, "text": text, "chars_per_second": per_second }));
    } else {
        println!("{}{text}", args.prompt);
    }
    Ok(())
}
