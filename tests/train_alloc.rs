//! Training allocates nothing per batch once the first batches (a full one and an epoch's
//! smaller last one) have sized every buffer: LeNet-5 steps through the generic trainer,
//! and inference passes, counted by a global allocator (so this binary holds these tests
//! only).

#[path = "common/counting.rs"]
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::{Ctx, Inputs, LrSchedule, State};
use simdnn::models::classifier::ClassifierStep;
use simdnn::models::data::{epoch_order, synthetic_digits};
use simdnn::models::registry::{self, Head};
use simdnn::models::step::{Metrics, Step};
use simdnn::models::train::{OptimizerKind, TrainConfig};
use simdnn::models::zoo::Convention;
use std::collections::HashMap;

fn config(optimizer: OptimizerKind) -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch: 16,
        lr: 1e-3,
        optimizer,
        weight_decay: 1e-4,
        schedule: LrSchedule::Constant,
        seed: 1,
        checkpoint: None,
        resume: false,
        metadata: HashMap::new(),
        clip_norm: None,
    }
}

#[test]
fn training_steps_allocate_nothing_after_the_first_batches() {
    let _serial = counting::serial();
    let entry = registry::find("lenet5").unwrap();
    let request = registry::DataRequest {
        fold: None,
        dir: None,
        synthetic_train: 40,
        synthetic_test: 8,
        input: (32, 32),
        channels: 1,
        keep_classes: Vec::new(),
        batch: 16,
    };
    let splits = entry.load_data(&request).unwrap();
    for (threads, optimizer, activation) in [(1, OptimizerKind::Adam, "relu"), (2, OptimizerKind::Sgd, "tanh")] {
        let gemm = GemmConfig::new(Isa::current().unwrap(), threads).unwrap();
        let options = entry.options([("activation", activation), ("pooling", "avg")]).unwrap();
        let model = entry
            .build(&options, &entry.image("test").unwrap().native, 16, 1, Convention::Torchvision, Head::Loss)
            .unwrap();
        let objective = entry.objective(&entry.image("test").unwrap().native);
        let mut step = ClassifierStep::new(model, objective, gemm, Some(&config(optimizer))).unwrap();
        let mut metrics = Metrics::new();
        let orders: Vec<Vec<usize>> = (0..3).map(|e| epoch_order(40, 1, e)).collect();
        let mut epoch = |order: &[usize]| {
            for chunk in order.chunks(16) {
                metrics.clear();
                step.train_batch(&*splits.train, chunk, 1e-3, &mut metrics).unwrap();
                assert!(metrics.get("loss").is_some_and(f64::is_finite));
            }
        };
        epoch(&orders[0]); // batches of 16, 16 and 8: every buffer sized
        let (count, ()) = counting::allocations(|| {
            epoch(&orders[1]);
            epoch(&orders[2]);
        });
        assert_eq!(count, 0, "{threads} thread(s), {optimizer:?}, {activation}");
    }
}

#[test]
fn inference_passes_allocate_nothing_after_the_first() {
    let _serial = counting::serial();
    let entry = registry::find("lenet5").unwrap();
    let options = entry.options([]).unwrap();
    let model =
        entry.build(&options, &entry.image("test").unwrap().native, 8, 1, Convention::Torchvision, Head::Loss).unwrap();
    let (_, test) = synthetic_digits(1, 24, 3);
    let data = simdnn::models::data::LabelledImages { set: test, preprocess: simdnn::models::data::Preprocess::MNIST };
    let ctx = Ctx::eval(GemmConfig::new(Isa::current().unwrap(), 2).unwrap());
    let (mut state, mut inputs) = (State::new(), Inputs::new());
    let indices: Vec<usize> = (0..24).collect();
    let mut pass = |chunk: &[usize]| {
        simdnn::models::Dataset::fill(&data, chunk, &mut inputs).unwrap();
        model.forward(&ctx, &mut state, &inputs).unwrap();
    };
    pass(&indices[..8]);
    let (count, ()) = counting::allocations(|| indices.chunks(8).for_each(&mut pass));
    assert_eq!(count, 0);
}

/// The language model's batches (windows of streams, carried states, fused LSTM layers,
/// clipping, Adam) allocate nothing once the first have sized every buffer.
#[test]
fn recurrent_training_steps_allocate_nothing_after_the_first_batches() {
    let _serial = counting::serial();
    let entry = registry::find("charlm").unwrap();
    let family = entry.family();
    let options = entry.options([("hidden", "32"), ("embedding", "8"), ("seq", "16"), ("layers", "2")]).unwrap();
    let mut model_config = family.configure(entry, options, &[], None).unwrap();
    let request = registry::DataRequest {
        fold: None,
        dir: None,
        synthetic_train: 0,
        synthetic_test: 0,
        input: (0, 0),
        channels: 0,
        keep_classes: Vec::new(),
        batch: 4,
    };
    let splits = family.load_data(entry, &model_config, &request).unwrap();
    family.fit_data(entry, &mut model_config, &splits).unwrap();
    let cfg = TrainConfig { clip_norm: Some(1.0), ..config(OptimizerKind::Adam) };
    let gemm = GemmConfig::new(Isa::current().unwrap(), 2).unwrap();
    let mut step = family.step(entry, &model_config, 4, 1, Some(&cfg), gemm).unwrap();
    let mut metrics = Metrics::new();
    let batches: Vec<Vec<usize>> =
        (0..splits.train.len()).collect::<Vec<_>>().chunks(4).map(<[usize]>::to_vec).collect();
    // The warm-up passes every batch counted below once: besides the buffers, the kernel
    // threads' team is made on its first parallel call, which (unless a test run before
    // this one made it) may come only in a later batch.
    for b in &batches[..8] {
        step.train_batch(&*splits.train, b, 1e-3, &mut metrics).unwrap();
    }
    let count = counting::fewest_allocations(3, || {
        for b in &batches[3..8] {
            step.train_batch(&*splits.train, b, 1e-3, &mut metrics).unwrap();
        }
    });
    assert_eq!(count, 0, "allocations in five language-model batches");
}
