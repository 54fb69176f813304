//! The `simdnn train lenet5` / `simdnn eval lenet5` contract on a small embedded dataset:
//! JSON keys, the files written (atomically: no temporary files left), resume, evaluation,
//! the stop on a non-finite loss, and errors for bad data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn simdnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simdnn"))
        .args(args)
        .env_remove("SIMDNN_ISA")
        .env_remove("SIMDNN_THREADS")
        .output()
        .expect("simdnn runs")
}

fn last_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("output")).expect("a JSON object last")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simdnn-train-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const SMALL: [&str; 6] = ["--synthetic-train", "600", "--synthetic-test", "200", "--threads", "2"];

fn train(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "lenet5", "--out", out.to_str().unwrap(), "--json"];
    args.extend_from_slice(&SMALL);
    args.extend_from_slice(extra);
    simdnn(&args)
}

#[test]
fn train_resume_and_eval() {
    let dir = scratch("resume");
    let first = last_json(&train(&dir, &["--epochs", "1"]));
    for key in ["test_accuracy", "epochs", "seconds_per_epoch", "params", "checkpoint"] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert_eq!(first["epochs"], 1);
    assert_eq!(first["params"], 61_706);
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    for f in ["checkpoint.safetensors", "metrics.jsonl", "training.png"] {
        assert!(names.contains(&f.to_string()), "{f} missing from {names:?}");
    }
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "temporary files left: {names:?}");

    let resumed = train(&dir, &["--epochs", "3", "--resume"]);
    let v = last_json(&resumed);
    assert_eq!(v["epochs"], 3);
    let epoch_lines = String::from_utf8_lossy(&resumed.stdout).lines().filter(|l| l.contains("\"epoch\"")).count();
    assert_eq!(epoch_lines, 2, "epochs 2 and 3 run after resuming");
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "one line per epoch, the first kept from before the resume");
    assert!(v["test_accuracy"].as_f64().unwrap() > 0.5, "three epochs on 600 images learn something: {v}");

    let weights = dir.join("checkpoint.safetensors");
    let mut args = vec!["eval", "lenet5", "--weights", weights.to_str().unwrap(), "--json"];
    args.extend_from_slice(&SMALL);
    let e = last_json(&simdnn(&args));
    assert_eq!(e["test_accuracy"], v["test_accuracy"], "eval reproduces the training run's test accuracy");
    let confusion = e["confusion"].as_array().unwrap();
    let (planned, unshared) =
        (e["activation_bytes"].as_u64().unwrap(), e["activation_bytes_unshared"].as_u64().unwrap());
    assert!(planned > 0 && planned < unshared, "{e}");
    assert_eq!(confusion.len(), 10);
    let total: u64 = confusion.iter().flat_map(|r| r.as_array().unwrap()).map(|c| c.as_u64().unwrap()).sum();
    assert_eq!(total, 200);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_finite_loss_stops_with_a_clear_error_and_keeps_the_checkpoint() {
    let dir = scratch("nan");
    assert!(train(&dir, &["--epochs", "1"]).status.success());
    let before = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    let out = train(&dir, &["--epochs", "3", "--resume", "--lr", "1e38"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("epoch 2") && err.contains("batch") && err.contains("checkpoint"), "{err}");
    assert_eq!(std::fs::read(dir.join("checkpoint.safetensors")).unwrap(), before, "the last good checkpoint stays");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = scratch("bad");
    let out = simdnn(&["train", "lenet5", "--data", "/nonexistent/mnist", "--out", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/mnist"));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("bogus.safetensors");
    std::fs::write(&bogus, b"not a checkpoint").unwrap();
    let out = simdnn(&["eval", "lenet5", "--weights", bogus.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("safetensors"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = train(&dir, &["--resume", "--out", dir.join("empty").to_str().unwrap()]);
    assert!(!out.status.success(), "resume without a checkpoint");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn trains_on_mnist_idx_files_when_present() {
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    if !mnist.join("train-images-idx3-ubyte.gz").exists() {
        eprintln!("skipping: MNIST not found at {}", mnist.display());
        return;
    }
    let dir = scratch("mnist");
    let args = ["train", "lenet5", "--data", mnist.to_str().unwrap(), "--epochs", "1", "--out", dir.to_str().unwrap()];
    let v = last_json(&simdnn(&[&args[..], &["--json", "--threads", "2"]].concat()));
    assert!(v["test_accuracy"].as_f64().unwrap() > 0.97, "one MNIST epoch: {v}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Zoo models train through the same command at a reduced input (the digits resized to
/// it), and `eval` rebuilds them from the checkpoint's recorded shape.
#[test]
fn zoo_models_train_and_evaluate_from_the_command_line() {
    let tiny = ["--synthetic-train", "48", "--synthetic-test", "16", "--threads", "2", "--epochs", "1", "--json"];
    for (model, extra) in [
        ("lenet5-paper", &[][..]),
        ("resnet18", &["--input", "32", "32"][..]),
        ("densenet121", &["--input", "32", "32", "--in-channels", "3"][..]),
        ("squeezenodule_v2", &[][..]),
    ] {
        let dir = scratch(model);
        let mut args = vec!["train", model, "--out", dir.to_str().unwrap()];
        args.extend_from_slice(&tiny);
        args.extend_from_slice(extra);
        let v = last_json(&simdnn(&args));
        assert_eq!(v["epochs"], 1, "{model}: {v}");
        let checkpoint = dir.join("checkpoint.safetensors");
        let mut args = vec!["eval", model, "--weights", checkpoint.to_str().unwrap()];
        args.extend_from_slice(&tiny[..6]);
        args.push("--json");
        let e = last_json(&simdnn(&args));
        assert_eq!(e["test_accuracy"], v["test_accuracy"], "{model}: eval reproduces the run's accuracy");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The graph family's summary keys: `--seeds` (the GCN's `test_accuracy_mean` and
/// `_std`), `--folds` (the graph classifier's `accuracy` and `accuracy_std`), and the
/// auto-encoder's `auc` and `ap`, on the embedded data.
#[test]
fn graph_models_report_their_contracted_keys() {
    let dir = scratch("graphs");
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--out", dir.to_str().unwrap(), "--json", "--threads", "2"]);
        last_json(&simdnn(&all))
    };
    let gcn = run(&["train", "gcn", "--seeds", "2", "--epochs", "3"]);
    for key in ["test_accuracy_mean", "test_accuracy_std"] {
        assert!(gcn[key].is_f64(), "{key} in {gcn}");
    }
    assert_eq!(gcn["seeds"], serde_json::json!([1, 2]));
    let cls = run(&["train", "graphcls", "--folds", "2", "--epochs", "2"]);
    assert!(cls["accuracy"].is_f64() && cls["accuracy_std"].is_f64(), "{cls}");
    assert_eq!(cls["folds"], 2);
    let gae = run(&["train", "gae", "--epochs", "2"]);
    assert!(gae["auc"].is_f64() && gae["ap"].is_f64(), "{gae}");
    let rec = run(&["train", "recgnn", "--epochs", "2", "--seeds", "2"]);
    assert!(rec["test_iterations_mean"].is_f64(), "{rec}");
    let ggnn = run(&["train", "graphcls", "--conv", "ggnn", "--readout", "gated", "--folds", "2", "--epochs", "1"]);
    assert!(ggnn["accuracy"].is_f64(), "{ggnn}");
    let _ = std::fs::remove_dir_all(&dir);
}
