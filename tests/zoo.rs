//! The CNN zoo: every model's parameter count (torchvision's figures, Keras's, the
//! course's table) and that every model trains, forward and backward through every block.

use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::gradcheck::random_tensor;
use simdnn::layers::{Adam, Ctx, Feed, Grads, IntTensor, Optimizer, Select, State};
use simdnn::models::registry::{self, Head, Kind, ModelEntry, Shape, MODELS};
use simdnn::models::zoo::Convention;

/// Parameters as `simdnn summary` counts them: Keras adds the batch norms' moving statistics.
fn count(entry: &ModelEntry, shape: &Shape, convention: Convention) -> (usize, usize) {
    let model = entry.build(&entry.options([]).unwrap(), shape, 1, 0, convention, Head::Logits).unwrap();
    let layers = model.summary(&[]).unwrap();
    let keras = convention == Convention::Keras;
    let total = layers.iter().map(|l| l.params + if keras { l.buffers } else { 0 }).sum();
    (total, model.params().trainable_count())
}

#[test]
fn every_model_has_its_published_parameter_count() {
    for entry in MODELS.iter().filter(|e| matches!(e.kind, Kind::Image(_))) {
        let (total, _) = count(entry, &entry.image("test").unwrap().native, Convention::Torchvision);
        assert_eq!(Some(total), entry.image("test").unwrap().params, "{}", entry.name);
    }
}

/// The course's table, each figure with the specification that yields it.
#[test]
fn the_courses_table() {
    let find = |name: &str| registry::find(name).unwrap();
    let native = |name: &str| find(name).image("test").unwrap().native;
    // LeNet-5: 60,000 trainable parameters in the paper's form (its RBF prototypes fixed).
    assert_eq!(count(find("lenet5-paper"), &native("lenet5-paper"), Convention::Torchvision).1, 60_000);
    assert_eq!(count(find("lenet5"), &native("lenet5"), Convention::Torchvision).1, 61_706);
    // AlexNet, ungrouped 96/256/384/384/256 on 227x227.
    assert_eq!(count(find("alexnet"), &native("alexnet"), Convention::Torchvision).0, 62_378_344);
    // The table's "VGG-11" row is VGG-16's count (VGG-11 has 132,863,336).
    assert_eq!(count(find("vgg16"), &native("vgg16"), Convention::Torchvision).0, 138_357_544);
    // ResNet-50 the Keras way: convolution biases and moving statistics.
    assert_eq!(count(find("resnet50"), &native("resnet50"), Convention::Keras).0, 25_636_712);
    // DenseNet-121 on one channel with two classes, counted the Keras way.
    let densenet = Shape { in_channels: 1, classes: 2, input: (224, 224) };
    assert_eq!(count(find("densenet121"), &densenet, Convention::Keras).0, 7_033_282);
    // SqueezeNet 1.0, and SqueezeNet 1.1 on one grey channel with two classes: 722,370,
    // six short of the slide's 722,376 for SqueezeNodule-Net V1 (see zoo/squeezenet.rs).
    assert_eq!(count(find("squeezenet1_0"), &native("squeezenet1_0"), Convention::Torchvision).0, 1_248_424);
    let grey = Shape { in_channels: 1, classes: 2, input: (224, 224) };
    assert_eq!(count(find("squeezenet1_1"), &grey, Convention::Torchvision).0, 722_370);
    assert_eq!(count(find("squeezenodule_v1"), &grey, Convention::Torchvision).0, 363_058);
    // Keras's DenseNet convolutions have no bias either: its count adds only statistics.
    let (torch, _) = count(find("densenet121"), &native("densenet121"), Convention::Torchvision);
    assert_eq!(torch, 7_978_856);
}

/// A small input each family runs at (AlexNet's unpadded 11x11 stride-4 stem and three
/// pools need about 99 pixels; the rest reach 1x1 maps at 32, where SqueezeNet's ReLU'd
/// class maps learn slowly: it gets 64).
fn small_input(entry: &ModelEntry) -> (usize, usize) {
    if entry.name.starts_with("alexnet") {
        (99, 99)
    } else if entry.name.starts_with("squeeze") {
        (64, 64)
    } else {
        (32, 32)
    }
}

/// Trains `entry` on one batch of four random images of four classes until it fits them
/// (a loss under 0.1: every image's class has about nine tenths of the probability). Adam's
/// first steps move every weight by the full rate, which throws the deep plain networks (VGG-19,
/// AlexNet) off: the rate warms up over ten steps. Returns the losses.
fn overfit(entry: &ModelEntry) -> Result<Vec<f32>, String> {
    let shape = Shape { in_channels: 3, classes: 4, input: small_input(entry) };
    let options = entry.options([]).unwrap();
    let mut model = entry.build(&options, &shape, 4, 3, Convention::Torchvision, Head::Loss).unwrap();
    let ctx = Ctx::train(GemmConfig::new(Isa::current().unwrap(), 2).unwrap());
    let x = random_tensor(&[4, 3, shape.input.0, shape.input.1], 5);
    let labels = IntTensor::from_slice(&[4], &[0, 1, 2, 3]).unwrap();
    let mut opt = Adam::new().attach(model.params(), Select::Trainable).unwrap();
    let (mut state, mut grads) = (State::new(), Grads::new(model.params()));
    let mut losses = Vec::new();
    for step in 0..80 {
        model.forward(&ctx, &mut state, &[("image", Feed::from(&x)), ("label", Feed::from(&labels))]).unwrap();
        let loss = model.output(&state, "loss").unwrap().data[0];
        losses.push(loss);
        if !loss.is_finite() || loss < 0.1 {
            break;
        }
        grads.zero();
        model.backward_from(&ctx, &mut state, &mut grads, "loss").unwrap();
        // Every trainable parameter got a gradient: backward reached every block.
        if step == 0 {
            for id in model.params().ids().filter(|&id| model.params().is_trainable(id)) {
                if grads.get(id).unwrap().data().iter().all(|&v| v == 0.0) {
                    return Err(format!("no gradient for {}", model.params().name(id)));
                }
            }
        }
        opt.step(model.params_mut(), &grads, 3e-4 * ((step + 1) as f32 / 10.0).min(1.0)).unwrap();
    }
    match losses.last() {
        Some(&l) if l < 0.1 => Ok(losses),
        _ => Err(format!("did not fit one batch: {losses:?}")),
    }
}

#[test]
fn every_model_fits_one_batch() {
    let mut failures = Vec::new();
    for entry in MODELS.iter().filter(|e| matches!(e.kind, Kind::Image(_))) {
        let start = std::time::Instant::now();
        let result = overfit(entry);
        let secs = start.elapsed().as_secs_f64();
        match result {
            Ok(losses) => eprintln!("{}: {} steps, {secs:.1} s", entry.name, losses.len()),
            Err(e) => failures.push(format!("{}: {e}", entry.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
