//! `simdnn summary MODEL`: layer by layer, the output shape, the parameters and the
//! multiply-accumulates of a registered model, then the totals, counted torchvision's way
//! or Keras's (which adds batch-norm moving statistics and, for ResNet, the convolutions'
//! biases).

use crate::model_cmd::{gemm_config, input_size, ModelArgs, ModelCommand};
use clap::{Args, ValueEnum};
use serde_json::json;
use simdnn::layers::Mode;
use simdnn::models::registry::{Head, ModelEntry, Options, Shape};
use simdnn::models::zoo::Convention;
use std::error::Error;

#[derive(Clone, Copy, ValueEnum)]
enum CountArg {
    Torchvision,
    Keras,
}

#[derive(Args)]
pub struct SummaryArgs {
    /// Input channels [default: the model's, 3 for the ImageNet models].
    #[arg(long)]
    in_channels: Option<usize>,
    /// Classes [default: the model's, 1000 for the ImageNet models].
    #[arg(long)]
    classes: Option<usize>,
    /// Input height and width [default: the model's, e.g. 224 224].
    #[arg(long, num_args = 2, value_names = ["H", "W"])]
    input: Option<Vec<usize>>,
    /// How parameters are counted: Keras adds batch-norm moving statistics (and builds
    /// ResNet's convolutions with biases, as Keras does).
    #[arg(long, value_enum, default_value = "torchvision")]
    count: CountArg,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

impl ModelArgs for SummaryArgs {
    const TAKES_OPTIONS: bool = true;
}

pub fn summary(cmd: ModelCommand<SummaryArgs>) -> Result<(), Box<dyn Error>> {
    let (entry, args, options) = cmd.into_parts();
    let options = entry.options(options.iter().map(|(n, v)| (*n, v.as_str())))?;
    let Ok(image) = entry.image("simdnn summary") else { return family_summary(entry, options, args.json) };
    let native = image.native;
    let shape = Shape {
        in_channels: args.in_channels.unwrap_or(native.in_channels),
        classes: args.classes.unwrap_or(native.classes),
        input: input_size(&args.input).unwrap_or(native.input),
    };
    let (convention, count_name) = match args.count {
        CountArg::Torchvision => (Convention::Torchvision, "torchvision"),
        CountArg::Keras => (Convention::Keras, "keras"),
    };
    let model = entry.build(&options, &shape, 1, 0, convention, Head::Logits)?;
    let keras = convention == Convention::Keras;
    let layers = model.summary(&[])?;
    let counted = |params: usize, buffers: usize| params + if keras { buffers } else { 0 };
    let params: usize = layers.iter().map(|l| counted(l.params, l.buffers)).sum();
    let macs: u64 = layers.iter().map(|l| l.macs).sum();
    let p = model.params();
    let trainable = p.trainable_count();
    let memory = model.memory_plan(&[], Mode::Eval)?;
    let input = [shape.in_channels, shape.input.0, shape.input.1];
    if args.json {
        // Every weight tensor by name (parameters, then buffers): a weights file's contents.
        let mut tensors = serde_json::Map::new();
        p.visit(&mut |name, t| {
            tensors.insert(name.to_string(), json!(t.shape()));
        });
        let rows: Vec<_> = layers
            .iter()
            .map(|l| {
                json!({
                    "name": l.name,
                    "op": l.op,
                    "output": l.output_shapes.first(),
                    "params": counted(l.params, l.buffers),
                    "macs": l.macs,
                })
            })
            .collect();
        let out = json!({
            "model": entry.name,
            "params": params,
            "trainable_params": trainable,
            "macs": macs,
            "count": count_name,
            "input": input,
            "classes": shape.classes,
            "activation_bytes": memory.peak_bytes,
            "layers": rows,
            "tensors": tensors,
            "note": entry.note,
        });
        println!("{out}");
        return Ok(());
    }
    println!("{}: input {input:?}, {} classes, counted as {count_name} counts", entry.title, shape.classes);
    println!("{:<52} {:<22} {:>12} {:>14}", "layer", "output", "params", "MACs");
    for l in &layers {
        let shape = l.output_shapes.first().map_or(String::new(), |s| format!("{s:?}"));
        let name = format!("{}  {}", l.name, l.op);
        let name =
            if name.chars().count() > 52 { format!("{}…", name.chars().take(51).collect::<String>()) } else { name };
        println!("{name:<52} {shape:<22} {:>12} {:>14}", counted(l.params, l.buffers), l.macs);
    }
    println!(
        "total: {params} parameters ({trainable} trainable), {:.3} GMACs per image; planned activation memory {:.1} MiB per image",
        macs as f64 / 1e9,
        memory.peak_bytes as f64 / (1 << 20) as f64
    );
    if let Some(note) = entry.note {
        println!("note: {note}");
    }
    Ok(())
}

/// The summary of a family that is not images: each of its networks, layer by layer, as
/// its embedded default data sizes them.
fn family_summary(entry: &ModelEntry, options: Options, json_out: bool) -> Result<(), Box<dyn Error>> {
    let step = entry.untrained(options, gemm_config(None)?)?;
    let mut models = Vec::new();
    for (name, model) in step.models() {
        let layers = model.summary(&[])?;
        let macs: u64 = layers.iter().map(|l| l.macs).sum();
        let p = model.params();
        if !json_out {
            println!(
                "{} / {name}: {} parameters ({} trainable), {macs} MACs",
                entry.title,
                p.count(),
                p.trainable_count()
            );
            for l in &layers {
                let shape = l.output_shapes.first().map_or(String::new(), |s| format!("{s:?}"));
                println!("  {:<40} {:<22} {:>12} {:>14}", format!("{}  {}", l.name, l.op), shape, l.params, l.macs);
            }
        }
        let rows: Vec<_> = layers
            .iter()
            .map(|l| json!({"name": l.name, "op": l.op, "output": l.output_shapes.first(), "params": l.params, "macs": l.macs}))
            .collect();
        models.push(json!({"name": name, "params": p.count(), "trainable_params": p.trainable_count(), "macs": macs, "layers": rows}));
    }
    if json_out {
        let params: u64 = models.iter().filter_map(|m| m["params"].as_u64()).sum();
        let trainable: u64 = models.iter().filter_map(|m| m["trainable_params"].as_u64()).sum();
        let macs: u64 = models.iter().filter_map(|m| m["macs"].as_u64()).sum();
        let out = json!({
            "model": entry.name,
            "params": params,
            "trainable_params": trainable,
            "macs": macs,
            "models": models,
            "note": entry.note,
        });
        println!("{out}");
    }
    Ok(())
}
