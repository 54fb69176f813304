//! `simdnn show MODEL --weights W --image FILE --layer NAME --out FILE.png`: what a layer
//! sees of an image, its feature maps as a grid of grey tiles (each map stretched to its own
//! range), and with `--filters FILE.png` the first convolution's filters (in colour for an
//! RGB input).

use crate::infer_cmd::WeightsArgs;
use crate::model_cmd::{ModelArgs, ModelCommand};
use crate::plot::encode_png;
use clap::Args;
use simdnn::layers::ops::Conv2d;
use simdnn::layers::{Feed, Model, State};
use simdnn::models::checkpoint::write_atomic;
use simdnn::models::data::{picture_tensor, read_picture};
use simdnn::models::registry::{Head, IMAGE_INPUT};
use simdnn::models::zoo::Convention;
use std::error::Error;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    weights: WeightsArgs,
    /// A PNG or JPEG, prepared as `simdnn classify` prepares it.
    #[arg(long)]
    image: PathBuf,
    /// The layer (node) whose output to draw, e.g. `features.0` or `layer1.0.conv1`
    /// (`simdnn summary MODEL` lists them).
    #[arg(long)]
    layer: String,
    /// The PNG to write the feature maps to.
    #[arg(long)]
    out: PathBuf,
    /// Also write the first convolution's filters to this PNG.
    #[arg(long)]
    filters: Option<PathBuf>,
}

impl ModelArgs for ShowArgs {
    const TAKES_OPTIONS: bool = false;
}

/// Tiles are drawn at least this many pixels high, nearest-neighbour enlarged.
const MIN_TILE: usize = 48;
const GAP: usize = 2;
const BACKGROUND: [u8; 3] = [32, 40, 64];

pub fn show(cmd: ModelCommand<ShowArgs>) -> Result<(), Box<dyn Error>> {
    let (entry, args, _) = cmd.into_parts();
    let picture = read_picture(&args.image)?;
    let (weights, options, shape, ctx) = args.weights.open(entry)?;
    // The model as trained, and a second plan over the same weights exposing the layer.
    let mut model = entry.build(&options, &shape, 1, 0, Convention::Torchvision, Head::Logits)?;
    weights.load(&mut model)?;
    let plan = entry.image("simdnn show")?.plan(entry, &mut model, &options, &shape, |g| {
        g.output("shown", &args.layer);
    });
    let plan = match plan {
        Ok(plan) => plan,
        Err(_) => return Err(unknown_layer(model, &args.layer)),
    };
    let shown = model.with(&plan)?;
    let x = picture_tensor(&picture, shape.in_channels, shape.input)?;
    let mut state = State::new();
    shown.forward(&ctx, &mut state, &[(IMAGE_INPUT, Feed::from(&x))])?;
    let maps = shown.output(&state, "shown")?;
    // [1, C, H, W] maps, or [1, F] features drawn as one row of F one-pixel maps.
    let (c, h, w) = match *maps.shape() {
        [_, c, h, w] => (c, h, w),
        [_, f] => (1, 1, f),
        ref s => return Err(format!("layer {} has output shape {s:?}: nothing to draw", args.layer).into()),
    };
    let tiles: Vec<Tile> = maps.data().chunks_exact(h * w).take(c).map(|m| Tile::grey(m, h, w)).collect();
    write_grid(&args.out, &tiles)?;
    println!("{}: {c} maps of {h}x{w} written to {}", args.layer, args.out.display());
    if let Some(path) = &args.filters {
        let (name, count) = write_filters(&model, path)?;
        println!("{name}: {count} filters written to {}", path.display());
    }
    Ok(())
}

/// The error for a layer the model lacks, listing the ones it has.
fn unknown_layer(model: Model, layer: &str) -> Box<dyn Error> {
    let names: Vec<&str> = model.nodes().map(|(n, _)| n).collect();
    let shown = names.iter().take(40).copied().collect::<Vec<_>>().join(", ");
    let more = if names.len() > 40 { format!(", ... ({} in all)", names.len()) } else { String::new() };
    format!("the model has no layer {layer:?}; its layers: {shown}{more}").into()
}

/// One tile of the grid: RGB pixels.
struct Tile {
    h: usize,
    w: usize,
    rgb: Vec<[u8; 3]>,
}

impl Tile {
    /// A map stretched from its own minimum (black) to its maximum (white).
    fn grey(values: &[f32], h: usize, w: usize) -> Tile {
        let (lo, hi) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &v| (l.min(v), u.max(v)));
        let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
        let rgb = values.iter().map(|&v| [((v - lo) * scale) as u8; 3]).collect();
        Tile { h, w, rgb }
    }
}

/// The first convolution's filters: RGB tiles for three input channels (zero grey, one
/// scale for all), else one grey tile per input channel.
fn write_filters(model: &Model, path: &Path) -> Result<(String, usize), Box<dyn Error>> {
    let (name, conv) = model
        .nodes()
        .find_map(|(n, _)| Some((n, model.op(n)?.as_any().downcast_ref::<Conv2d>()?)))
        .ok_or("the model has no convolution")?;
    let [o, i, kh, kw] = conv.spec().weight_shape();
    let weights = model.params().value(conv.weight()).data();
    let tiles: Vec<Tile> = if i == 3 {
        let bound = weights.iter().fold(0f32, |m, &v| m.max(v.abs())).max(f32::MIN_POSITIVE);
        let level = |v: f32| (127.5 + 127.5 * v / bound) as u8;
        weights
            .chunks_exact(3 * kh * kw)
            .map(|f| {
                let rgb =
                    (0..kh * kw).map(|p| [level(f[p]), level(f[kh * kw + p]), level(f[2 * kh * kw + p])]).collect();
                Tile { h: kh, w: kw, rgb }
            })
            .collect()
    } else {
        weights.chunks_exact(kh * kw).map(|k| Tile::grey(k, kh, kw)).collect()
    };
    write_grid(path, &tiles)?;
    Ok((name.to_string(), o))
}

/// Writes `tiles` (all of one size) as a near-square grid, each enlarged to at least
/// [`MIN_TILE`] pixels high.
fn write_grid(path: &Path, tiles: &[Tile]) -> Result<(), Box<dyn Error>> {
    let Some(first) = tiles.first() else { return Err("no maps to draw".into()) };
    let zoom = MIN_TILE.div_ceil(first.h).max(1);
    let (th, tw) = (first.h * zoom, first.w * zoom);
    let cols = (tiles.len() as f64).sqrt().ceil() as usize;
    let rows = tiles.len().div_ceil(cols);
    let (width, height) = (GAP + cols * (tw + GAP), GAP + rows * (th + GAP));
    let mut pixels: Vec<u8> = BACKGROUND.iter().copied().cycle().take(width * height * 3).collect();
    for (k, tile) in tiles.iter().enumerate() {
        let (x0, y0) = (GAP + (k % cols) * (tw + GAP), GAP + (k / cols) * (th + GAP));
        for y in 0..th {
            for x in 0..tw {
                let at = ((y0 + y) * width + x0 + x) * 3;
                pixels[at..at + 3].copy_from_slice(&tile.rgb[(y / zoom) * tile.w + x / zoom]);
            }
        }
    }
    write_atomic(path, &encode_png(width, height, &pixels)?)?;
    Ok(())
}
