//! `simdnn classify MODEL --weights W --image FILE [--labels FILE] [--top K]`: the most
//! probable classes of one PNG or JPEG.

use crate::infer_cmd::{logits, WeightsArgs};
use crate::model_cmd::{ModelArgs, ModelCommand};
use clap::Args;
use serde_json::json;
use simdnn::layers::State;
use simdnn::models::data::{picture_tensor, read_picture};
use std::error::Error;
use std::path::PathBuf;

#[derive(Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    weights: WeightsArgs,
    /// A PNG or JPEG: colour models see it resized and centre-cropped the torchvision way
    /// with ImageNet's normalisation, one-channel models see it whole, grey, normalised as
    /// MNIST (light ink on a dark ground).
    #[arg(long)]
    image: PathBuf,
    /// Class names, one per line in class order [default: the class numbers].
    #[arg(long)]
    labels: Option<PathBuf>,
    /// How many classes to list.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print one JSON object: `top`, a list of `{class, label, probability}`.
    #[arg(long)]
    json: bool,
}

impl ModelArgs for ClassifyArgs {
    const TAKES_OPTIONS: bool = false;
}

pub fn classify(cmd: ModelCommand<ClassifyArgs>) -> Result<(), Box<dyn Error>> {
    let (entry, args, _) = cmd.into_parts();
    let picture = read_picture(&args.image)?;
    let loaded = args.weights.load(entry, |_| {})?;
    let labels = match &args.labels {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let labels: Vec<String> = text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
            if labels.len() != loaded.shape.classes {
                return Err(format!(
                    "{}: {} labels for a model of {} classes",
                    path.display(),
                    labels.len(),
                    loaded.shape.classes
                )
                .into());
            }
            labels
        }
        None => (0..loaded.shape.classes).map(|c| c.to_string()).collect(),
    };
    let x = picture_tensor(&picture, loaded.shape.in_channels, loaded.shape.input)?;
    let z = logits(&loaded.model, &loaded.ctx, &mut State::new(), &x)?;
    let probabilities = softmax(z.data());
    let mut ranked: Vec<usize> = (0..probabilities.len()).collect();
    ranked.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    ranked.truncate(args.top);
    if args.json {
        let top: Vec<_> = ranked
            .iter()
            .map(|&c| json!({ "class": c, "label": labels[c], "probability": probabilities[c] }))
            .collect();
        println!("{}", json!({ "model": entry.name, "image": args.image, "top": top }));
    } else {
        for (rank, &c) in ranked.iter().enumerate() {
            println!("{:>2}. {:>6.2}%  {}", rank + 1, 100.0 * probabilities[c], labels[c]);
        }
    }
    Ok(())
}

/// Probabilities from logits, in f64 so that no class underflows to an exact tie.
fn softmax(z: &[f32]) -> Vec<f64> {
    let max = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let e: Vec<f64> = z.iter().map(|&v| (v as f64 - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}
