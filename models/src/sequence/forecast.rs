//! Forecasting a univariate series: a recurrent regressor reads the last `window` values
//! (log-transformed and standardised by the training part) and predicts the next one. The
//! held-out tail is forecast two ways, one step ahead from the actual values and
//! recursively from the model's own predictions, and scored against the naive forecast (the
//! last value) and the seasonal naive one (the value a season before), in the series' units.
//! `--data FILE` reads a CSV whose last column holds the values (airline passengers,
//! sunspots, the Nile); by default a generated seasonal series with trend.

use super::regressor::{Regressor, CELL_OPTION, TARGET, X};
use crate::classifier::{ClassifierStep, Objective};
use crate::data::DataError;
use crate::dataset::{Dataset, Splits};
use crate::registry::{
    Config, DataRequest, Family, Kind, ModelEntry, ModelOption, OptionValues, RegistryError, TrainDefaults,
};
use crate::report::{Chart, Line, Report};
use crate::step::Step;
use crate::train::{EpochMetrics, TrainConfig};
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::init::{rng, uniform};
use simdnn_layers::{Ctx, Feed, Inputs, LayerError, Model, State, Tensor};
use std::path::Path;

/// A series, transformed and standardised by its training part, with its held-out tail.
pub struct Series {
    /// The values as read.
    pub raw: Vec<f64>,
    /// The standardised (log-)values the model sees.
    pub z: Vec<f32>,
    pub log: bool,
    pub mean: f64,
    pub std: f64,
    /// The length of the training part; the rest is the held-out tail.
    pub train_len: usize,
    pub window: usize,
    pub name: String,
}

impl Series {
    pub fn new(raw: Vec<f64>, tail: usize, window: usize, log: bool, name: String) -> Result<Series, DataError> {
        let invalid = |reason: String| DataError::Invalid { what: name.clone(), reason };
        if raw.len() < tail + window + 2 || tail == 0 {
            return Err(invalid(format!(
                "{} values do not make a held-out tail of {tail} after at least two windows of {window}",
                raw.len()
            )));
        }
        if log && raw.iter().any(|&v| v <= 0.0) {
            return Err(invalid("a log transform needs positive values (use --transform none)".into()));
        }
        let t: Vec<f64> = raw.iter().map(|&v| if log { v.ln() } else { v }).collect();
        let train_len = raw.len() - tail;
        let mean = t[..train_len].iter().sum::<f64>() / train_len as f64;
        let var = t[..train_len].iter().map(|v| (v - mean).powi(2)).sum::<f64>() / train_len as f64;
        let std = var.sqrt().max(1e-12);
        let z = t.iter().map(|v| ((v - mean) / std) as f32).collect();
        Ok(Series { raw, z, log, mean, std, train_len, window, name })
    }

    /// A standardised value back in the series' units.
    pub fn unscale(&self, z: f32) -> f64 {
        let t = z as f64 * self.std + self.mean;
        if self.log {
            t.exp()
        } else {
            t
        }
    }
}

/// Examples of one part of a series: predict value `j` from the `window` before it, for
/// `j` in `targets`.
pub struct SeriesWindows {
    series: std::sync::Arc<Series>,
    targets: std::ops::Range<usize>,
}

impl Dataset for SeriesWindows {
    fn len(&self) -> usize {
        self.targets.len()
    }

    fn fill(&self, indices: &[usize], inputs: &mut Inputs) -> Result<(), LayerError> {
        let (b, w) = (indices.len(), self.series.window);
        let x = inputs.f32_mut(X);
        x.resize(&[w, b, 1]);
        let data = x.data_mut();
        for (col, &i) in indices.iter().enumerate() {
            let j = self.targets.start + i;
            for t in 0..w {
                data[t * b + col] = self.series.z[j - w + t];
            }
        }
        let target = inputs.f32_mut(TARGET);
        target.resize(&[b, 1]);
        for (dst, &i) in target.data_mut().iter_mut().zip(indices) {
            *dst = self.series.z[self.targets.start + i];
        }
        Ok(())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// The values of a CSV file's last column, after a header line (quotes allowed).
pub fn read_csv_series(path: &Path) -> Result<Vec<f64>, DataError> {
    let text = super::text::read_text(path)?;
    let what = path.display().to_string();
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let field = line.rsplit(',').next().unwrap_or("").trim().trim_matches('"');
        let v: f64 = field.parse().map_err(|_| DataError::Invalid {
            what: what.clone(),
            reason: format!("line {}: {field:?} is not a number", n + 1),
        })?;
        if !v.is_finite() {
            return Err(DataError::Invalid {
                what: what.clone(),
                reason: format!("line {}: {v} is not finite", n + 1),
            });
        }
        values.push(v);
    }
    Ok(values)
}

/// The embedded default: 12 years of a monthly series with a growing trend, a yearly season
/// whose swing grows with the level (as the airline passengers'), and noise.
pub fn generated_series() -> Vec<f64> {
    let mut r = rng(1949);
    (0..144)
        .map(|t| {
            let level = 120.0 * (0.01 * t as f64).exp();
            let season = 1.0 + 0.18 * (2.0 * std::f64::consts::PI * t as f64 / 12.0).sin();
            level * season * (1.0 + 0.03 * (uniform(&mut r) as f64 - 0.5))
        })
        .collect()
}

/// The family of [`ENTRY`].
pub struct Forecast;

const OPTIONS: &[ModelOption] = &[
    CELL_OPTION,
    ModelOption {
        name: "hidden",
        help: "Hidden units",
        values: OptionValues::Number { min: 1, max: 1024 },
        default: "32",
    },
    ModelOption {
        name: "window",
        help: "Past values the model reads",
        values: OptionValues::Number { min: 1, max: 10_000 },
        default: "24",
    },
    ModelOption {
        name: "tail",
        help: "Held-out values at the end of the series",
        values: OptionValues::Number { min: 1, max: 100_000 },
        default: "24",
    },
    ModelOption {
        name: "season",
        help: "Season length of the seasonal naive forecast (12 for monthly data, 11 for sunspots)",
        values: OptionValues::Number { min: 1, max: 10_000 },
        default: "12",
    },
    ModelOption {
        name: "transform",
        help: "Log-transform the values first (for a season that grows with the level)",
        values: OptionValues::OneOf(&["log", "none"]),
        default: "log",
    },
];

/// `simdnn train forecast`.
pub const ENTRY: ModelEntry = ModelEntry {
    name: "forecast",
    title: "Series forecaster",
    about: "a recurrent regressor of the next value from a window of past ones, against naive forecasts",
    options: OPTIONS,
    default_epochs: (300, 300),
    adam_lr: 3e-3,
    note: None,
    defaults: TrainDefaults { batch: 16, clip_norm: Some(1.0), schedule: "cosine", weight_decay: 0.0, folds: 1 },
    kind: Kind::Family(&Forecast),
};

fn number(config: &Config, name: &str) -> usize {
    config.options.get(name).parse().unwrap_or(1)
}

fn regressor(config: &Config) -> Regressor {
    Regressor { cell: Regressor::cell_named(config.options.get("cell")), features: 1, hidden: number(config, "hidden") }
}

/// The forecasts of the held-out tail, in the series' units.
pub struct Forecasts {
    pub one_step: Vec<f64>,
    pub recursive: Vec<f64>,
    pub naive: Vec<f64>,
    pub seasonal_naive: Vec<f64>,
}

/// Runs `model` over the tail of `series`: one step ahead from the actual values, and
/// recursively from its own predictions; the naive forecasts beside them.
pub fn forecast(model: &Model, series: &Series, season: usize, gemm: GemmConfig) -> Result<Forecasts, LayerError> {
    let (w, n, start) = (series.window, series.raw.len(), series.train_len);
    let ctx = Ctx::eval(gemm);
    let mut state = State::new();
    let (mut x, target) = (Tensor::zeros(&[w, 1, 1]), Tensor::zeros(&[1, 1]));
    let mut predict = |window: &[f32]| -> Result<f32, LayerError> {
        x.data_mut().copy_from_slice(window);
        model.forward(&ctx, &mut state, &[(X, Feed::from(&x)), (TARGET, Feed::from(&target))])?;
        Ok(model.output(&state, "prediction")?.data[0])
    };
    let mut one_step = Vec::new();
    for j in start..n {
        one_step.push(series.unscale(predict(&series.z[j - w..j])?));
    }
    let mut own: Vec<f32> = series.z[..start].to_vec();
    for j in start..n {
        let next = predict(&own[j - w..j])?;
        own.push(next);
    }
    let recursive = own[start..].iter().map(|&z| series.unscale(z)).collect();
    let last = series.raw[start - 1];
    let naive = vec![last; n - start];
    let season = season.min(start);
    let seasonal_naive = (start..n).map(|j| series.raw[start - season + (j - start) % season]).collect();
    Ok(Forecasts { one_step, recursive, naive, seasonal_naive })
}

/// Root mean squared error against the actual tail.
pub fn rmse(forecast: &[f64], actual: &[f64]) -> f64 {
    (forecast.iter().zip(actual).map(|(f, a)| (f - a).powi(2)).sum::<f64>() / actual.len().max(1) as f64).sqrt()
}

impl Family for Forecast {
    fn load_data(&self, _: &ModelEntry, config: &Config, request: &DataRequest) -> Result<Splits, RegistryError> {
        let (raw, source) = match &request.dir {
            Some(path) => (read_csv_series(path)?, format!("csv:{}", path.display())),
            None => (generated_series(), "generated monthly series".to_string()),
        };
        let log = config.options.get("transform") == "log";
        let (tail, window) = (number(config, "tail"), number(config, "window"));
        let name = match &request.dir {
            Some(path) => path.file_name().map_or_else(|| source.clone(), |f| f.to_string_lossy().into_owned()),
            None => source.clone(),
        };
        let series = std::sync::Arc::new(Series::new(raw, tail, window, log, name)?);
        let train = SeriesWindows { series: series.clone(), targets: window..series.train_len };
        let test = SeriesWindows { targets: series.train_len..series.raw.len(), series };
        Ok(Splits { train: Box::new(train), test: Box::new(test), source, classes: 0, fixed: Vec::new() })
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
        let model = regressor(config).build(batch.max(1), number(config, "window"), seed)?;
        let objective = Objective { loss: "loss", classify: None, report: &[] };
        Ok(Box::new(ClassifierStep::new(model, objective, gemm, train)?))
    }

    fn report(
        &self,
        _: &ModelEntry,
        config: &Config,
        step: &mut dyn Step,
        splits: &Splits,
        _: Option<&EpochMetrics>,
    ) -> Result<Report, RegistryError> {
        let windows = splits.test.as_any().and_then(|a| a.downcast_ref::<SeriesWindows>());
        let Some(series) = windows.map(|w| w.series.clone()) else { return Ok(Report::default()) };
        let models = step.models();
        let Some(&(_, model)) = models.first() else { return Ok(Report::default()) };
        let season = number(config, "season");
        let f = forecast(model, &series, season, GemmConfig::from_env().map_err(LayerError::from)?)?;
        let actual = &series.raw[series.train_len..];
        let values = vec![
            ("one_step_rmse", rmse(&f.one_step, actual)),
            ("recursive_rmse", rmse(&f.recursive, actual)),
            ("naive_rmse", rmse(&f.naive, actual)),
            ("seasonal_naive_rmse", rmse(&f.seasonal_naive, actual)),
        ];
        let at = |offset: usize, v: &[f64]| -> Vec<(f64, f64)> {
            v.iter().enumerate().map(|(i, &y)| ((offset + i) as f64, y)).collect()
        };
        let tail = series.train_len;
        let line = |label: &str, points| Line { label: label.into(), points };
        let chart = Chart {
            title: format!("{}: the last {} values held out", series.name, actual.len()),
            x_label: "time step".into(),
            y_label: "value".into(),
            lines: vec![
                line("actual", at(0, &series.raw)),
                line("one step ahead", at(tail, &f.one_step)),
                line("recursive", at(tail, &f.recursive)),
                line("naive", at(tail, &f.naive)),
                line("seasonal naive", at(tail, &f.seasonal_naive)),
            ],
            log_y: false,
            scatter: false,
        };
        Ok(Report { values, charts: vec![("forecast.png".into(), chart)] })
    }
}
