//! The recurrent family's models and data: text streams and their carried state, the
//! language model learning, sampling, the adding problem, the gradient study, forecasting,
//! gradient clipping; and the commands `train charlm|adding|forecast`, `sample`,
//! `gradients` with their JSON contracts and errors.

use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::{Ctx, Feed, Grads, GraphBuilder, Inputs, LrSchedule, State, Tensor};
use simdnn::models::dataset::Dataset;
use simdnn::models::registry::{self, Config, DataRequest};
use simdnn::models::sequence::adding::{AddingProblem, AddingSpec};
use simdnn::models::sequence::charlm::{self, CharLmSpec};
use simdnn::models::sequence::forecast::{read_csv_series, rmse, Series};
use simdnn::models::sequence::gradients::gradient_profile;
use simdnn::models::sequence::text::{read_text, TextStreams, Vocabulary, IDS, TARGETS};
use simdnn::models::train::{self, OptimizerKind, Silent, TrainConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gemm(threads: usize) -> GemmConfig {
    GemmConfig::new(Isa::current().unwrap(), threads).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simdnn-sequence-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn shared(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(path);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent (the shared data folder holds it)", p.display());
        None
    }
}

#[test]
fn text_streams_cut_a_text_into_windows_that_continue_one_another() {
    let ids: Vec<i64> = (0..43).collect();
    // 3 streams of 14: windows of 4 (inputs 0..4, targets 1..5 of each stream), 3 whole ones.
    let set = TextStreams::new(ids.clone(), 3, 4, false).unwrap();
    assert_eq!(set.len(), 9);
    assert!(set.is_stream());
    assert_eq!(set.stream_position(7), Some((1, 2)));
    let mut inputs = Inputs::new();
    set.fill(&[3, 4, 5], &mut inputs).unwrap(); // window 1 of streams 0, 1, 2
    let x = inputs.int(IDS).unwrap();
    assert_eq!(x.shape(), &[4, 3]);
    assert_eq!(&x.data()[..3], &[4, 18, 32], "row 0: each stream's 5th character");
    assert_eq!(&inputs.int(TARGETS).unwrap().data()[..3], &[5, 19, 33]);
    // With the partial last window every character but each stream's first is predicted.
    let all = TextStreams::new(ids, 3, 4, true).unwrap();
    assert_eq!(all.len(), 12);
    assert_eq!(all.predicted(), 3 * 13);
    all.fill(&[9, 10, 11], &mut inputs).unwrap();
    assert_eq!(inputs.int(IDS).unwrap().shape(), &[1, 3]);
    assert!(all.fill(&[8, 9], &mut inputs).is_err(), "windows of two lengths in one batch");
    assert!(TextStreams::new(vec![1, 2, 3], 2, 4, false).err().unwrap().to_string().contains("window"));
}

#[test]
fn a_vocabulary_round_trips_and_bad_text_is_a_clear_error() {
    let v = Vocabulary::of("hello, world\n");
    assert_eq!(v.as_string(), "\n ,dehlorw");
    assert_eq!(Vocabulary::parse(&v.as_string()).unwrap(), v);
    assert!(Vocabulary::parse("ba").is_err(), "unsorted");
    assert!(v.encode("help!").unwrap_err().contains("'p'"));
    let dir = scratch("text");
    let bad = dir.join("latin1.txt");
    std::fs::write(&bad, [b'c', b'a', 0xe9, b'!']).unwrap();
    let err = read_text(&bad).unwrap_err().to_string();
    assert!(err.contains("not UTF-8") && err.contains("offset 2"), "{err}");
}

fn small_charlm(cell: &str) -> (CharLmSpec, Config) {
    let entry = registry::find("charlm").unwrap();
    let given =
        [("cell", cell), ("layers", "2"), ("hidden", "24"), ("embedding", "8"), ("seq", "12"), ("dropout", "0")];
    let mut config = Config::new(entry.options(given).unwrap());
    config.set_size("vocab", Vocabulary::of("abcdefgh \n").as_string());
    (CharLmSpec::of(&config).unwrap(), config)
}

/// Truncated BPTT carries the state: the logits of a text read in two windows, the second
/// starting from the first's final states, equal those of one window over the whole text.
#[test]
fn carried_state_continues_the_text_exactly() {
    for cell in ["lstm", "gru"] {
        let (spec, _) = small_charlm(cell);
        let mut model = spec.build(2, 3).unwrap();
        let plan = model
            .plan(|mut g| {
                spec.declare(&mut g, 2, 6, false, 3).unwrap();
                g
            })
            .unwrap();
        let run = model.with(&plan).unwrap();
        let ids: Vec<i64> = (0..24).map(|i| (i * 7 % 10) as i64).collect();
        let ctx = Ctx::eval(gemm(1));
        let states = spec.stack.states();
        let zeros: Vec<Tensor> = states.iter().map(|_| Tensor::zeros(&[1, 2, 24])).collect();
        let forward = |state: &mut State, ids: &[i64], initial: &[Tensor]| {
            let t = simdnn::layers::IntTensor::from_slice(&[ids.len() / 2, 2], ids).unwrap();
            let mut feed = vec![(IDS, Feed::from(&t))];
            feed.extend(states.iter().zip(initial).map(|((n, _), s)| (n.as_str(), Feed::from(s))));
            run.forward(&ctx, state, &feed[..]).unwrap();
        };
        let mut whole = State::new();
        forward(&mut whole, &ids, &zeros);
        let mut first = State::new();
        forward(&mut first, &ids[..12], &zeros);
        let carried: Vec<Tensor> = states
            .iter()
            .map(|(_, out)| Tensor::from_slice(&[1, 2, 24], run.output(&first, out).unwrap().data).unwrap())
            .collect();
        let mut second = State::new();
        forward(&mut second, &ids[12..], &carried);
        let (a, b) = (run.output(&whole, "logits").unwrap(), run.output(&second, "logits").unwrap());
        let tail = &a.data[a.data.len() - b.data.len()..];
        let diff = tail.iter().zip(b.data).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff < 1e-5, "{cell}: the second window differs by {diff}");
    }
}

#[test]
fn the_language_model_learns_the_embedded_text_and_samples_from_it() {
    let entry = registry::find("charlm").unwrap();
    let family = entry.family();
    let given = [("hidden", "64"), ("layers", "1"), ("embedding", "16"), ("seq", "32")];
    let mut config = family.configure(entry, entry.options(given).unwrap(), &[], None).unwrap();
    let request = DataRequest {
        fold: None,
        dir: None,
        synthetic_train: 0,
        synthetic_test: 0,
        input: (0, 0),
        channels: 0,
        keep_classes: Vec::new(),
        batch: 8,
    };
    let splits = family.load_data(entry, &config, &request).unwrap();
    family.fit_data(entry, &mut config, &splits).unwrap();
    let cfg = TrainConfig {
        epochs: 6,
        batch: 8,
        lr: 1e-2,
        optimizer: OptimizerKind::Adam,
        weight_decay: 0.0,
        schedule: LrSchedule::Constant,
        seed: 1,
        checkpoint: None,
        resume: false,
        metadata: HashMap::new(),
        clip_norm: Some(5.0),
    };
    let mut step = family.step(entry, &config, 8, 1, Some(&cfg), gemm(2)).unwrap();
    let history = train::train(step.as_mut(), &*splits.train, &*splits.test, &cfg, &mut Silent).unwrap();
    let (first, last) = (&history[0], history.last().unwrap());
    let uniform = (splits.classes as f64).ln();
    assert!(first.train_loss() < uniform + 0.1, "starts near ln(vocab) = {uniform}");
    assert!(last.test_loss() < 2.8, "held-out loss {} after 6 epochs", last.test_loss());
    assert!(last.train.get("grad_norm").is_some(), "clipping reports the norm");
    let report = family.report(entry, &config, step.as_mut(), &splits, Some(last)).unwrap();
    let value = |n: &str| report.values.iter().find(|(k, _)| *k == n).map(|&(_, v)| v).unwrap();
    assert!((value("bits_per_char") - last.test_loss() / std::f64::consts::LN_2).abs() < 1e-9);
    assert!(value("chars_per_second") > 0.0);

    // The trained weights, copied by name into a model of one stream.
    let spec = CharLmSpec::of(&config).unwrap();
    let mut model = spec.build(1, 0).unwrap();
    let trained = step.models()[0].1.params();
    model
        .params_mut()
        .visit_mut(&mut |name, t| t.data_mut().copy_from_slice(trained.value(trained.id(name).unwrap()).data()));
    let a = charlm::sample(&spec, &mut model, "Shall I", 60, 0.5, 7, gemm(1)).unwrap();
    let b = charlm::sample(&spec, &mut model, "Shall I", 60, 0.5, 7, gemm(1)).unwrap();
    assert_eq!(a, b, "a seed fixes the sample");
    assert_eq!(a.chars().count(), 60);
    assert!(a.contains(' '), "a trained model writes words: {a:?}");
    assert!(charlm::sample(&spec, &mut model, "Shall I {", 5, 0.5, 7, gemm(1)).is_err(), "{{ is not in the sonnets");
    assert!(charlm::sample(&spec, &mut model, "", 5, 0.0, 7, gemm(1)).is_err(), "temperature 0");
}

#[test]
fn the_adding_problem_marks_one_value_in_each_half() {
    let set = AddingProblem::generate(2000, 50, 3);
    let mut inputs = Inputs::new();
    let all: Vec<usize> = (0..set.len()).collect();
    set.fill(&all, &mut inputs).unwrap();
    let (x, target) = (inputs.f32("x").unwrap(), inputs.f32("target").unwrap());
    assert_eq!(x.shape(), &[50, 2000, 2]);
    for n in [0, 1, 1999] {
        let marked: Vec<usize> = (0..50).filter(|&t| x.data()[(t * 2000 + n) * 2 + 1] == 1.0).collect();
        assert_eq!(marked.len(), 2);
        assert!(marked[0] < 25 && marked[1] >= 25);
        let sum: f32 = marked.iter().map(|&t| x.data()[(t * 2000 + n) * 2]).sum();
        assert_eq!(sum, target.data()[n]);
    }
    let baseline = target.data().iter().map(|&y| (y as f64 - 1.0).powi(2)).sum::<f64>() / 2000.0;
    assert!((baseline - 1.0 / 6.0).abs() < 0.02, "answering 1.0 scores about 1/6, got {baseline}");
}

/// At initialisation the simple RNN's gradient fades with the distance far faster than the
/// LSTM's, whose forget gate starts open.
#[test]
fn the_simple_rnns_gradient_vanishes_and_the_lstms_does_not() {
    let entry = registry::find("adding").unwrap();
    let data = AddingProblem::generate(16, 60, 5);
    let ratio = |cell: &str| {
        let options = entry.options([("cell", cell), ("seq", "60"), ("hidden", "32")]).unwrap();
        let spec = AddingSpec::of(&Config::new(options));
        let mut model = spec.regressor.build(16, 60, 3).unwrap();
        let p = gradient_profile(&spec, &mut model, &data, 16, gemm(1)).unwrap();
        assert_eq!(p.norms.len(), 60);
        assert_eq!(p.norms[0].0, 1);
        assert!(p.norms.iter().all(|&(_, n)| n.is_finite() && n > 0.0), "{cell}: {:?}", p.norms);
        p.norms[59].1 / p.norms[0].1
    };
    let (rnn, lstm) = (ratio("rnn"), ratio("lstm"));
    assert!(rnn < 1e-4, "the simple RNN keeps {rnn:e} of its gradient over 60 steps");
    assert!(lstm > 100.0 * rnn, "the LSTM keeps {lstm:e}, the RNN {rnn:e}");
}

#[test]
fn gradient_clipping_rescales_to_the_norm_asked() {
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, 3]).layer("fc", |p| simdnn::layers::ops::Linear::new(p, 3, 2, simdnn::layers::Init::He), &["x"]);
    g.output("y", "fc");
    let model = g.build().unwrap();
    let mut grads = Grads::new(model.params());
    let mut state = State::new();
    let x = Tensor::from_slice(&[2, 3], &[1.0, 2.0, 3.0, -1.0, 0.5, 2.0]).unwrap();
    model.forward(&Ctx::train(gemm(1)), &mut state, &[("x", Feed::from(&x))]).unwrap();
    let dy = Tensor::from_slice(&[2, 2], &[3.0, -4.0, 1.0, 2.0]).unwrap();
    model.backward(&Ctx::train(gemm(1)), &mut state, &mut grads, &[("y", dy.as_ref())]).unwrap();
    let norm = grads.norm();
    assert!(norm > 1.0);
    assert_eq!(grads.clip_norm(1.0), norm, "returns the norm before");
    assert!((grads.norm() - 1.0).abs() < 1e-6);
    assert_eq!(grads.clip_norm(5.0), grads.norm(), "below the bound nothing changes");
}

#[test]
fn a_series_is_read_standardised_and_scored_against_naive_forecasts() {
    let s = Series::new((1..=40).map(|v| v as f64).collect(), 8, 6, true, "ramp".into()).unwrap();
    assert_eq!(s.train_len, 32);
    assert!((s.unscale(s.z[10]) - 11.0).abs() < 1e-4);
    assert!(Series::new(vec![1.0; 10], 8, 6, false, "short".into()).err().unwrap().to_string().contains("held-out"));
    assert!(Series::new(vec![-1.0; 40], 8, 6, true, "negative".into()).err().unwrap().to_string().contains("log"));
    assert_eq!(rmse(&[1.0, 3.0], &[2.0, 2.0]), 1.0);
    if let Some(path) = shared("timeseries/airline_passengers.csv") {
        let v = read_csv_series(&path).unwrap();
        assert_eq!((v.len(), v[0], v[143]), (144, 112.0, 432.0));
    }
    if let Some(path) = shared("timeseries/sunspots_yearly.csv") {
        assert_eq!(read_csv_series(&path).unwrap().len(), 309, "quoted header");
    }
    let dir = scratch("csv");
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "t,v\n1,2\n2,x\n").unwrap();
    assert!(read_csv_series(&bad).unwrap_err().to_string().contains("line 3"));
}

fn simdnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simdnn")).args(args).env_remove("SIMDNN_ISA").output().expect("simdnn runs")
}

fn last_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("output")).expect("a JSON object last")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn charlm_trains_evaluates_and_samples_from_the_command_line() {
    let dir = scratch("charlm-cli");
    let small = ["--hidden", "32", "--layers", "1", "--embedding", "8", "--seq", "24", "--threads", "2"];
    let mut args = vec!["train", "charlm", "--epochs", "2", "--batch", "8", "--out", path(&dir), "--json"];
    args.extend(small);
    let v = last_json(&simdnn(&args));
    for key in ["val_loss_nats", "bits_per_char", "chars_per_second", "test_loss", "train_grad_norm"] {
        assert!(v[key].as_f64().is_some_and(f64::is_finite), "{key} in {v}");
    }
    let ck = dir.join("checkpoint.safetensors");
    let e = last_json(&simdnn(&["eval", "charlm", "--weights", path(&ck), "--json"]));
    assert!((e["test_loss"].as_f64().unwrap() - v["val_loss_nats"].as_f64().unwrap()).abs() < 1e-6);
    let s = last_json(&simdnn(&[
        "sample",
        "charlm",
        "--weights",
        path(&ck),
        "--prompt",
        "When",
        "--length",
        "40",
        "--json",
    ]));
    assert_eq!(s["text"].as_str().unwrap().chars().count(), 40);
    let out = simdnn(&["sample", "charlm", "--weights", path(&ck), "--prompt", "Zebra {"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("vocabulary"));
    let out = simdnn(&["sample", "adding", "--weights", path(&ck)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("sample applies to charlm"));
    let bad = dir.join("latin1.txt");
    std::fs::write(&bad, [b'a', 0xff, b'b']).unwrap();
    let out = simdnn(&["train", "charlm", "--data", path(&bad), "--out", path(&dir.join("bad"))]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn adding_forecast_and_gradients_from_the_command_line() {
    let dir = scratch("adding-cli");
    let args = ["train", "adding", "--cell", "gru", "--seq", "20", "--hidden", "16", "--epochs", "1"];
    let v = last_json(&simdnn(
        &[&args[..], &["--synthetic-train", "256", "--synthetic-test", "128", "--out", path(&dir), "--json"]].concat(),
    ));
    assert!(v["test_mse"].as_f64().is_some_and(f64::is_finite), "{v}");
    assert!((v["baseline_mse"].as_f64().unwrap() - 1.0 / 6.0).abs() < 0.05);

    let forecast = dir.join("forecast");
    let v = last_json(&simdnn(&["train", "forecast", "--epochs", "150", "--out", path(&forecast), "--json"]));
    for key in ["one_step_rmse", "recursive_rmse", "naive_rmse", "seasonal_naive_rmse"] {
        assert!(v[key].as_f64().is_some_and(f64::is_finite), "{key} in {v}");
    }
    assert!(v["one_step_rmse"].as_f64() < v["naive_rmse"].as_f64(), "beats the last value: {v}");
    assert!(forecast.join("forecast.png").exists());

    let png = dir.join("grad.png");
    let g = last_json(&simdnn(&[
        "gradients",
        "--cell",
        "rnn",
        "--seq",
        "30",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--train",
        "128",
        "--out",
        path(&png),
        "--json",
    ]));
    assert_eq!(g["norms"].as_array().unwrap().len(), 30);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
}
