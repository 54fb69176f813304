//! Training gives the same bits on any number of threads: LeNet-5 and a ResNet trained for a
//! few steps on 1, 2 and 3 threads end with identical weights, and `simdnn train --threads 1`
//! and `--threads 2` write identical checkpoints.

use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::LrSchedule;
use simdnn::models::checkpoint::Checkpoint;
use simdnn::models::classifier::ClassifierStep;
use simdnn::models::registry::{self, DataRequest, Head};
use simdnn::models::step::{Metrics, Step};
use simdnn::models::train::{OptimizerKind, TrainConfig};
use simdnn::models::zoo::Convention;
use std::collections::HashMap;
use std::process::Command;

/// Every weight of `model` (registry name) after `steps` Adam steps of batch `batch` on the
/// embedded digits at `side`x`side`, on `threads` threads.
fn trained(model: &str, side: usize, batch: usize, steps: usize, threads: usize) -> Vec<(String, Vec<u32>)> {
    let entry = registry::find(model).unwrap();
    let options = entry.options([]).unwrap();
    let shape = registry::Shape { in_channels: 1, classes: 10, input: (side, side) };
    let net = entry.build(&options, &shape, batch, 7, Convention::Torchvision, Head::Loss).unwrap();
    let request = DataRequest {
        fold: None,
        dir: None,
        synthetic_train: (batch * steps).max(1),
        synthetic_test: 10,
        input: (side, side),
        channels: 1,
        keep_classes: Vec::new(),
        batch: 16,
    };
    let data = entry.load_data(&request).unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        batch,
        lr: 1e-3,
        optimizer: OptimizerKind::Adam,
        weight_decay: 1e-4,
        schedule: LrSchedule::Constant,
        seed: 1,
        checkpoint: None,
        resume: false,
        metadata: HashMap::new(),
        clip_norm: None,
    };
    let gemm = GemmConfig::new(Isa::current().unwrap(), threads).unwrap();
    let mut step = ClassifierStep::new(net, entry.objective(&shape), gemm, Some(&cfg)).unwrap();
    let mut metrics = Metrics::new();
    for s in 0..steps {
        let indices: Vec<usize> = (s * batch..(s + 1) * batch).collect();
        step.train_batch(data.train.as_ref(), &indices, cfg.lr, &mut metrics).unwrap();
        assert!(metrics.get("loss").is_some_and(f64::is_finite));
    }
    let net = step.into_model();
    let mut weights = Vec::new();
    net.params().visit(&mut |n, t| weights.push((n.to_string(), t.data().iter().map(|v| v.to_bits()).collect())));
    weights
}

fn assert_same_on_any_thread_count(model: &str, side: usize, batch: usize, steps: usize) {
    let one = trained(model, side, batch, steps, 1);
    for threads in [2, 3] {
        let other = trained(model, side, batch, steps, threads);
        let differ: Vec<String> = one
            .iter()
            .zip(&other)
            .filter_map(|((name, a), (_, b))| {
                let n = a.iter().zip(b).filter(|(x, y)| x != y).count();
                (n > 0).then(|| format!("{name} ({n} of {})", a.len()))
            })
            .collect();
        assert!(differ.is_empty(), "{model}: 1 and {threads} threads differ in {differ:?}");
    }
    let moved = trained(model, side, batch, 0, 1);
    assert!(one.iter().zip(&moved).any(|(a, b)| a.1 != b.1), "{model}: training changed nothing");
}

#[test]
fn lenet5_trains_to_the_same_bits_on_any_thread_count() {
    assert_same_on_any_thread_count("lenet5", 32, 16, 4);
    assert_same_on_any_thread_count("lenet5-paper", 32, 12, 3);
}

#[test]
fn a_resnet_trains_to_the_same_bits_on_any_thread_count() {
    assert_same_on_any_thread_count("resnet18", 32, 6, 2);
}

#[test]
fn the_command_line_writes_the_same_checkpoint_on_one_and_two_threads() {
    let run = |threads: &str| {
        let dir = std::env::temp_dir().join(format!("simdnn-determinism-{threads}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(env!("CARGO_BIN_EXE_simdnn"))
            .args(["train", "lenet5", "--epochs", "1", "--synthetic-train", "300", "--synthetic-test", "50"])
            .args(["--threads", threads, "--out", dir.to_str().unwrap(), "--json"])
            .env_remove("SIMDNN_THREADS")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let ck = Checkpoint::read(&dir.join("checkpoint.safetensors")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let tensors: Vec<(String, Vec<u32>)> = ck
            .names()
            .unwrap()
            .into_iter()
            .map(|n| {
                let bits = ck.tensor(&n).unwrap().data().iter().map(|v| v.to_bits()).collect();
                (n, bits)
            })
            .collect();
        (tensors, ck.metadata().unwrap())
    };
    let (one, two) = (run("1"), run("2"));
    assert!(!one.0.is_empty());
    for ((name, a), (_, b)) in one.0.iter().zip(&two.0) {
        assert!(a == b, "checkpoint tensor {name} differs between 1 and 2 threads");
    }
    assert_eq!(one.1, two.1, "metadata");
}
