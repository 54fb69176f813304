//! A character-level language model (Karpathy's char-rnn; Graves 2013): an embedding, a
//! stack of LSTM or GRU layers and a linear decoder to the next character's logits, trained
//! by truncated backpropagation through time on parallel streams of a text, the state
//! carried from one window to the next. `simdnn train charlm` on a text (`--data FILE`, by
//! default a few embedded sonnets), `simdnn sample charlm` to generate.

use super::stack::{Carry, Stack};
use super::text::{read_text, split_point, TextStreams, Vocabulary, IDS, TARGETS};
use crate::checkpoint::Part;
use crate::data::DataError;
use crate::dataset::{Dataset, Splits};
use crate::registry::{
    Config, DataRequest, Family, Kind, ModelEntry, ModelOption, OptionValues, Options, RegistryError, TrainDefaults,
};
use crate::report::Report;
use crate::step::{Evaluation, Metrics, Step};
use crate::train::{clip_and_step, make_optimizer, model_parts, EpochMetrics, TrainConfig, TrainError, MODEL_PREFIX};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::init::{rng, uniform, Rng};
use simdnn_layers::ops::{Cell, Embedding, Linear, SoftmaxCrossEntropy};
use simdnn_layers::{Ctx, Feed, Grads, GraphBuilder, Init, Inputs, LayerError, Model, Optimizer, State, Tensor};
use std::collections::HashMap;

/// The embedded default text: sonnets of Shakespeare (public domain), enough to watch the
/// model learn words; tiny-shakespeare or any UTF-8 file is `--data FILE`.
const EMBEDDED: &str = include_str!("sonnets.txt");
/// The held-out tail of the text.
const HELD_OUT: f64 = 0.1;
/// Streams the held-out text is read in (PyTorch's comparison script reads it the same way).
const VALIDATION_STREAMS: usize = 32;

/// The family of [`ENTRY`].
pub struct CharLm;

const OPTIONS: &[ModelOption] = &[
    ModelOption {
        name: "cell",
        help: "Recurrent cell",
        values: OptionValues::OneOf(&["lstm", "gru"]),
        default: "lstm",
    },
    ModelOption {
        name: "layers",
        help: "Recurrent layers",
        values: OptionValues::Number { min: 1, max: 8 },
        default: "2",
    },
    ModelOption {
        name: "hidden",
        help: "Hidden units per layer",
        values: OptionValues::Number { min: 1, max: 4096 },
        default: "256",
    },
    ModelOption {
        name: "embedding",
        help: "Embedding size of a character",
        values: OptionValues::Number { min: 1, max: 1024 },
        default: "64",
    },
    ModelOption {
        name: "dropout",
        help: "Dropout between the recurrent layers, in percent",
        values: OptionValues::Number { min: 0, max: 90 },
        default: "25",
    },
    ModelOption {
        name: "seq",
        help: "Characters per window of truncated backpropagation through time",
        values: OptionValues::Number { min: 1, max: 10_000 },
        default: "100",
    },
];

/// `simdnn train charlm`.
pub const ENTRY: ModelEntry = ModelEntry {
    name: "charlm",
    title: "Character-level language model",
    about: "char-rnn: embedding, stacked LSTM or GRU, next-character softmax; truncated BPTT over 32 streams",
    options: OPTIONS,
    default_epochs: (20, 10),
    adam_lr: 2e-3,
    note: None,
    defaults: TrainDefaults { batch: 32, clip_norm: Some(5.0), schedule: "cosine", weight_decay: 0.0, folds: 1 },
    kind: Kind::Family(&CharLm),
};

/// The model a configuration describes.
#[derive(Clone, Debug)]
pub struct CharLmSpec {
    pub vocab: Vocabulary,
    pub embedding: usize,
    pub stack: Stack,
    /// Characters per window of truncated backpropagation through time.
    pub window: usize,
}

impl CharLmSpec {
    pub fn of(config: &Config) -> Result<CharLmSpec, RegistryError> {
        let vocab = config.size("vocab").ok_or(RegistryError::BadMetadata { key: "vocab", value: String::new() })?;
        let vocab =
            Vocabulary::parse(vocab).map_err(|_| RegistryError::BadMetadata { key: "vocab", value: vocab.into() })?;
        let number = |name: &str| config.options.get(name).parse::<usize>().unwrap_or(1);
        let cell = if config.options.get("cell") == "gru" { Cell::Gru } else { Cell::Lstm };
        let embedding = number("embedding");
        let stack = Stack {
            cell,
            input: embedding,
            hidden: number("hidden"),
            layers: number("layers"),
            dropout: number("dropout") as f32 / 100.0,
        };
        Ok(CharLmSpec { vocab, embedding, stack, window: number("seq") })
    }

    /// Declares the network for batches of `batch` streams and windows of `window`: outputs
    /// `logits` (`[T, B, vocab]`), the final states, and with `loss` the mean cross-entropy in
    /// nats per character against `targets`.
    pub fn declare(
        &self,
        g: &mut GraphBuilder,
        batch: usize,
        window: usize,
        loss: bool,
        seed: u64,
    ) -> Result<(), LayerError> {
        let v = self.vocab.len();
        g.int_input(IDS, &[window, batch]);
        g.layer("embed", |p| Embedding::new(p, v, self.embedding), &[IDS]);
        let top = self.stack.declare(g, "embed", batch, seed)?;
        g.layer("decoder", |p| Linear::new(p, self.stack.hidden, v, Init::Glorot), &[&top]).output("logits", "decoder");
        if loss {
            g.int_input(TARGETS, &[window, batch]);
            g.add("loss", SoftmaxCrossEntropy::new(), &["decoder", TARGETS]).output("loss", "loss");
        }
        Ok(())
    }

    pub fn build(&self, batch: usize, seed: u64) -> Result<Model, LayerError> {
        let mut g = GraphBuilder::new(seed);
        self.declare(&mut g, batch, self.window, true, seed)?;
        g.build()
    }
}

fn text_error(e: String) -> RegistryError {
    RegistryError::Data(DataError::Invalid { what: "text".into(), reason: e })
}

impl Family for CharLm {
    fn configure(
        &self,
        entry: &ModelEntry,
        options: Options,
        _: &[(&'static str, String)],
        recorded: Option<&HashMap<String, String>>,
    ) -> Result<Config, RegistryError> {
        let mut config = entry.options_config(options, recorded)?;
        let Some(meta) = recorded else { return Ok(config) };
        let vocab = meta.get("vocab").ok_or(RegistryError::BadMetadata { key: "vocab", value: String::new() })?;
        config.set_size("vocab", vocab);
        Ok(config)
    }

    fn load_data(&self, _: &ModelEntry, config: &Config, request: &DataRequest) -> Result<Splits, RegistryError> {
        let (text, source) = match &request.dir {
            Some(path) => (read_text(path)?, format!("text:{}", path.display())),
            None => (EMBEDDED.to_string(), "embedded sonnets".to_string()),
        };
        let vocab = match config.size("vocab") {
            Some(v) => Vocabulary::parse(v).map_err(text_error)?,
            None => Vocabulary::of(&text),
        };
        let ids = vocab.encode(&text).map_err(text_error)?;
        let window = config.options.get("seq").parse::<usize>().unwrap_or(100);
        let cut = split_point(ids.len(), HELD_OUT);
        let streams = request.batch.max(1);
        let held_out = ids[cut..].to_vec();
        let val_streams = VALIDATION_STREAMS.min(held_out.len() / (window + 1)).max(1);
        let train = TextStreams::new(ids[..cut].to_vec(), streams, window, false)?;
        let test = TextStreams::new(held_out, val_streams, window, true)?;
        let fixed = vec![("vocab", vocab.as_string())];
        Ok(Splits { train: Box::new(train), test: Box::new(test), source, classes: vocab.len(), fixed })
    }

    fn step(
        &self,
        _: &ModelEntry,
        config: &Config,
        batch: usize,
        seed: u64,
        train: Option<&TrainConfig>,
        gemm: GemmConfig,
    ) -> Result<Box<dyn Step>, RegistryError> {
        let spec = CharLmSpec::of(config)?;
        Ok(Box::new(CharLmStep::new(&spec, batch, seed, train, gemm)?))
    }

    fn report(
        &self,
        _: &ModelEntry,
        config: &Config,
        _: &mut dyn Step,
        _: &Splits,
        last: Option<&EpochMetrics>,
    ) -> Result<Report, RegistryError> {
        let Some(last) = last else { return Ok(Report::default()) };
        let window = config.options.get("seq").parse::<f64>().unwrap_or(100.0);
        let loss = last.test.get("loss").unwrap_or(f64::NAN);
        Ok(Report {
            values: vec![
                ("val_loss_nats", loss),
                ("bits_per_char", loss / std::f64::consts::LN_2),
                ("chars_per_second", last.examples_per_second * window),
            ],
            charts: Vec::new(),
        })
    }
}

/// Training and evaluation of the language model: windows of streams with their state
/// carried, one optimizer, gradient clipping.
pub struct CharLmStep {
    spec: CharLmSpec,
    model: Model,
    optimizer: Option<Box<dyn Optimizer>>,
    clip_norm: Option<f32>,
    gemm: GemmConfig,
    state: State,
    grads: Grads,
    inputs: Inputs,
    carry: Carry,
    positions: Vec<Option<(usize, usize)>>,
    /// The stack's `(input, output)` state names.
    states: Vec<(String, String)>,
}

impl CharLmStep {
    pub fn new(
        spec: &CharLmSpec,
        batch: usize,
        seed: u64,
        train: Option<&TrainConfig>,
        gemm: GemmConfig,
    ) -> Result<CharLmStep, TrainError> {
        let model = spec.build(batch.max(1), seed)?;
        let optimizer = train.map(|cfg| make_optimizer(cfg, gemm, &model)).transpose()?;
        let grads = Grads::new(model.params());
        Ok(CharLmStep {
            spec: spec.clone(),
            model,
            optimizer,
            clip_norm: train.and_then(|c| c.clip_norm),
            gemm,
            state: State::new(),
            grads,
            inputs: Inputs::new(),
            carry: Carry::default(),
            positions: Vec::new(),
            states: spec.stack.states(),
        })
    }

    /// Runs the model forward over a batch of windows, the carried states as initial
    /// states, and keeps the final ones: the mean loss per character.
    fn forward(&mut self, data: &dyn Dataset, indices: &[usize], ctx: &Ctx) -> Result<f32, LayerError> {
        data.fill(indices, &mut self.inputs)?;
        self.positions.clear();
        self.positions.extend(indices.iter().map(|&i| data.stream_position(i)));
        let hidden = self.spec.stack.hidden;
        for (k, (name, _)) in self.states.iter().enumerate() {
            self.carry.initial(k, &self.positions, hidden, self.inputs.f32_mut(name));
        }
        self.model.forward(ctx, &mut self.state, &self.inputs)?;
        for (k, (_, out)) in self.states.iter().enumerate() {
            let values = self.model.output(&self.state, out)?.data;
            self.carry.keep(k, self.states.len(), &self.positions, hidden, values);
        }
        let loss = self.model.output(&self.state, "loss")?;
        Ok(loss.data.first().copied().unwrap_or(f32::NAN))
    }
}

impl Step for CharLmStep {
    fn train_batch(
        &mut self,
        data: &dyn Dataset,
        indices: &[usize],
        lr: f32,
        out: &mut Metrics,
    ) -> Result<(), TrainError> {
        if indices.first().and_then(|&i| data.stream_position(i)).is_some_and(|(_, w)| w == 0) {
            self.carry.clear(); // a new pass over the text starts from zero states
        }
        let loss = self.forward(data, indices, &Ctx::train(self.gemm))?;
        out.set("loss", loss as f64);
        out.set("bits_per_char", loss as f64 / std::f64::consts::LN_2);
        if !loss.is_finite() {
            return Ok(());
        }
        let optimizer = self.optimizer.as_mut().ok_or_else(|| TrainError::Config("this step only evaluates".into()))?;
        self.grads.zero();
        self.model.backward_from(&Ctx::train(self.gemm), &mut self.state, &mut self.grads, "loss")?;
        clip_and_step(optimizer.as_mut(), &mut self.model, &mut self.grads, self.clip_norm, lr, out)?;
        Ok(())
    }

    /// The mean cross-entropy over every character of `data`, read window after window with
    /// the state carried from zero (the whole held-out text as one long context).
    fn evaluate(&mut self, data: &dyn Dataset, _: usize) -> Result<Evaluation, TrainError> {
        let mut train_carry = std::mem::take(&mut self.carry);
        let ctx = Ctx::eval(self.gemm);
        let (mut sum, mut chars) = (0.0f64, 0usize);
        let mut start = 0;
        let mut batch = Vec::new();
        while start < data.len() {
            let window = data.stream_position(start).map(|(_, w)| w);
            batch.clear();
            batch.extend((start..data.len()).take_while(|&i| data.stream_position(i).map(|(_, w)| w) == window));
            let result = self.forward(data, &batch, &ctx);
            let loss = match result {
                Ok(l) => l,
                Err(e) => {
                    self.carry = train_carry;
                    return Err(e.into());
                }
            };
            let n = self.inputs.int(TARGETS).map_or(0, |t| t.data().len());
            sum += loss as f64 * n as f64;
            chars += n;
            start += batch.len();
        }
        std::mem::swap(&mut self.carry, &mut train_carry);
        let loss = sum / chars.max(1) as f64;
        let mut metrics = Metrics::new();
        metrics.set("loss", loss);
        metrics.set("bits_per_char", loss / std::f64::consts::LN_2);
        Ok(Evaluation { metrics, examples: chars, confusion: Vec::new() })
    }

    fn parts(&mut self) -> Vec<Part<'_>> {
        model_parts(&mut self.model, &mut self.optimizer)
    }

    fn models(&self) -> Vec<(&'static str, &Model)> {
        vec![(MODEL_PREFIX, &self.model)]
    }
}

/// Generates `length` characters after `prompt` from a trained model: the prompt is read in
/// one pass, then each character is drawn from the softmax of the logits divided by
/// `temperature` and fed back, the state carried (a second plan over the same weights, for
/// one stream and no loss).
pub fn sample(
    spec: &CharLmSpec,
    model: &mut Model,
    prompt: &str,
    length: usize,
    temperature: f32,
    seed: u64,
    gemm: GemmConfig,
) -> Result<String, RegistryError> {
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(RegistryError::Mismatch(format!("the temperature must be a positive number, got {temperature}")));
    }
    let mut ids = spec.vocab.encode(prompt).map_err(text_error)?;
    if ids.is_empty() {
        ids.push(spec.vocab.id('\n').unwrap_or(0));
    }
    let plan = model.plan(|mut g| {
        if let Err(e) = spec.declare(&mut g, 1, 1, false, seed) {
            g.fail(e);
        }
        g
    })?;
    let model = model.with(&plan)?;
    let ctx = Ctx::eval(gemm);
    let mut state = State::new();
    let states = spec.stack.states();
    let hidden = spec.stack.hidden;
    let mut carried: Vec<Tensor> = states.iter().map(|_| Tensor::zeros(&[1, 1, hidden])).collect();
    let mut rng: Rng = rng(seed);
    let mut out = String::new();
    let mut probs = vec![0f64; spec.vocab.len()];
    let mut feed_ids = simdnn_layers::IntTensor::from_slice(&[ids.len(), 1], &ids)?;
    for _ in 0..length {
        let mut feed: Vec<(&str, Feed)> = vec![(IDS, Feed::from(&feed_ids))];
        feed.extend(states.iter().zip(&carried).map(|((name, _), t)| (name.as_str(), Feed::from(t))));
        model.forward(&ctx, &mut state, &feed[..])?;
        for ((_, out_name), t) in states.iter().zip(carried.iter_mut()) {
            t.data_mut().copy_from_slice(model.output(&state, out_name)?.data);
        }
        let logits = model.output(&state, "logits")?;
        let last = &logits.data[logits.data.len() - spec.vocab.len()..];
        let id = draw(last, temperature, &mut probs, &mut rng);
        out.push(spec.vocab.char(id).unwrap_or('?'));
        feed_ids = simdnn_layers::IntTensor::from_slice(&[1, 1], &[id as i64])?;
    }
    Ok(out)
}

/// An index drawn from `softmax(logits / temperature)`.
fn draw(logits: &[f32], temperature: f32, probs: &mut [f64], rng: &mut Rng) -> usize {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let t = temperature as f64;
    for (p, &l) in probs.iter_mut().zip(logits) {
        *p = ((l as f64 - max) / t).exp();
    }
    let total: f64 = probs.iter().sum();
    let mut u = uniform(rng) as f64 * total;
    for (i, &p) in probs.iter().enumerate() {
        if u < p {
            return i;
        }
        u -= p;
    }
    probs.len() - 1
}
