//! `simdnn infer MODEL --weights W --input X --output Y`: the logits of a batch of images,
//! from and to safetensors files (tensors `input`, NCHW, and `output`, `[N, classes]`),
//! with weights trained elsewhere (`scripts/convert_pytorch.py`) or by `simdnn train`.

use crate::model_cmd::{gemm_config, ModelArgs, ModelCommand};
use clap::Args;
use serde_json::json;
use simdnn::layers::{Ctx, Feed, Model, State, Tensor};
use simdnn::models::checkpoint::{save_tensors, Checkpoint};
use simdnn::models::registry::{Head, ModelEntry, Options, Shape, IMAGE_INPUT};
use simdnn::models::weights::Weights;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The options that every command running trained weights shares.
#[derive(Args)]
pub struct WeightsArgs {
    /// Weights: safetensors with the model's tensor names (torchvision's state-dict names
    /// for the models it has; `simdnn summary MODEL --json` lists them), or a checkpoint of
    /// `simdnn train`.
    #[arg(long)]
    pub weights: PathBuf,
    /// Classes, for a weights file that does not record them [default: the file's, else
    /// the model's].
    #[arg(long)]
    pub classes: Option<usize>,
    /// Worker threads [default: the cores available].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// A model built for inference with loaded weights.
pub struct Loaded {
    pub model: Model,
    pub shape: Shape,
    pub ctx: Ctx,
}

impl WeightsArgs {
    /// The weights file, the options and shape it records (its classes overridden by
    /// `--classes`) and the context to run in.
    pub fn open(&self, entry: &ModelEntry) -> Result<(Weights, Options, Shape, Ctx), Box<dyn Error>> {
        let weights = Weights::read(&self.weights)?;
        let (options, mut shape) = weights.recorded(entry)?;
        if let Some(classes) = self.classes {
            shape.classes = classes;
        }
        Ok((weights, options, shape, Ctx::eval(gemm_config(self.threads)?)))
    }

    /// [`WeightsArgs::open`], then the model for `shape` (`adjust`ed) with the weights in it.
    pub fn load(&self, entry: &ModelEntry, adjust: impl FnOnce(&mut Shape)) -> Result<Loaded, Box<dyn Error>> {
        let (weights, options, mut shape, ctx) = self.open(entry)?;
        adjust(&mut shape);
        let model = weights.build(entry, &options, &shape, 1, Head::Logits)?;
        Ok(Loaded { model, shape, ctx })
    }
}

/// Runs `model` on `x` and returns its logits.
pub fn logits(model: &Model, ctx: &Ctx, state: &mut State, x: &Tensor) -> Result<Tensor, Box<dyn Error>> {
    model.forward(ctx, state, &[(IMAGE_INPUT, Feed::from(x))])?;
    let out = model.output(state, "logits")?;
    Ok(Tensor::from_slice(out.shape(), out.data())?)
}

#[derive(Args)]
pub struct InferArgs {
    #[command(flatten)]
    weights: WeightsArgs,
    /// Input: a safetensors file with the tensor `input`, `[N, C, H, W]`, f32 (or f16/bf16).
    #[arg(long)]
    input: PathBuf,
    /// Output: a safetensors file, written with the tensor `output`, `[N, classes]`.
    #[arg(long)]
    output: PathBuf,
    /// Print one JSON object (output shape, seconds).
    #[arg(long)]
    json: bool,
}

impl ModelArgs for InferArgs {
    const TAKES_OPTIONS: bool = false;
}

pub fn infer(cmd: ModelCommand<InferArgs>) -> Result<(), Box<dyn Error>> {
    let (entry, args, _) = cmd.into_parts();
    let x = read_input(&args.input)?;
    let &[n, c, h, w] = x.shape() else {
        return Err(
            format!("{}: tensor input has shape {:?}, not [N, C, H, W]", args.input.display(), x.shape()).into()
        );
    };
    let loaded = args.weights.load(entry, |shape| {
        shape.in_channels = c;
        shape.input = (h, w);
    })?;
    let start = Instant::now();
    let y = logits(&loaded.model, &loaded.ctx, &mut State::new(), &x)?;
    let seconds = start.elapsed().as_secs_f64();
    save_tensors(&args.output, &[("output", &y)])?;
    if args.json {
        println!("{}", json!({ "model": entry.name, "input": [n, c, h, w], "output": y.shape(), "seconds": seconds }));
    } else {
        println!(
            "{}: {:?} -> {:?} in {:.3} s, written to {}",
            entry.name,
            x.shape(),
            y.shape(),
            seconds,
            args.output.display()
        );
    }
    Ok(())
}

fn read_input(path: &Path) -> Result<Tensor, Box<dyn Error>> {
    Ok(Checkpoint::read(path)?.tensor("input")?)
}
