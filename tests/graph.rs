//! The model API: graphs of named nodes with several inputs and outputs, shared and tied
//! weights (an RNN cell unrolled over 20 steps), concurrent inference on one copy of the
//! weights, planned activation memory, frozen parameters, two models with two optimizers
//! in one checkpoint, views, integer inputs, batch-norm folding in any graph shape, and the
//! errors a bad graph gives when it is built.

mod common;

use common::gemm_configs;
use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::gradcheck::{check_model, random_tensor, CheckInputs};
use simdnn::layers::ops::*;
use simdnn::layers::*;
use simdnn::models::checkpoint::{self, Checkpoint, CheckpointError, Part};
use std::collections::HashMap;

fn ctx() -> Ctx {
    Ctx::train(GemmConfig::new(Isa::current().unwrap(), 1).unwrap())
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
    }
}

/// Two inputs, two outputs, nodes declared out of order, a node with three outputs, a
/// node with two inputs: values against a hand computation.
#[test]
fn a_dag_with_several_inputs_and_outputs() {
    let mut g = GraphBuilder::new(1);
    g.input("a", &[2, 3])
        .input("b", &[2, 3])
        .add("prod", Mul::new(), &["sum", "b"]) // declared before what it reads
        .add("sum", Add::new(), &["a", "b"])
        .add("parts", Split::new(1, &[1, 1, 1]), &["prod"])
        .add("joined", Concat::new(1), &["parts:2", "parts:0"])
        .output("joined", "joined")
        .output("middle", "parts:1");
    let model = g.build().unwrap();
    assert_eq!(model.input_names(), ["a", "b"]);
    assert_eq!(model.output_names(), ["joined", "middle"]);
    let a = Tensor::from_slice(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let b = Tensor::from_slice(&[2, 3], &[1.0, -1.0, 2.0, 0.5, 0.0, -2.0]).unwrap();
    let mut state = State::new();
    model.forward(&ctx(), &mut state, &[("b", Feed::from(&b)), ("a", Feed::from(&a))]).unwrap();
    // (a + b) * b = [2, -1, 10; 2.25, 0, -8]
    assert_eq!(model.output(&state, "joined").unwrap().data, &[10.0, 2.0, -8.0, 2.25]);
    assert_eq!(model.output(&state, "joined").unwrap().shape, &[2, 2]);
    assert_eq!(model.output(&state, "middle").unwrap().data, &[-1.0, 0.0]);
    let mut inputs = CheckInputs::new().with("a", random_tensor(&[2, 3], 1)).with("b", random_tensor(&[2, 3], 2));
    let mut m = model;
    let r = check_model(&mut m, &ctx(), &mut inputs, "joined", 1e-2, 50, 3).unwrap();
    assert!(r.max_error < 5e-3, "{}", r.worst);
}

const STEPS: usize = 20;

/// The course's cell `h_t = tanh(W [x_t; h_{t-1}] + b)` unrolled over `STEPS` steps with one
/// `W` and one `b`, and a readout `y_t = V h_t` shared too; output all `y_t`, `[T * n, o]`.
fn unrolled_rnn(n: usize, d: usize, h: usize, o: usize) -> Model {
    let mut g = GraphBuilder::new(11);
    g.input("x", &[STEPS, n, d]).input("h_init", &[n, h]);
    let w = g
        .param("cell.weight", &[h, d + h], Fill::Random { init: Init::Glorot, fan_in: d + h, fan_out: h }, true)
        .unwrap();
    let b = g.param("cell.bias", &[h], Fill::Constant(0.1), false).unwrap();
    let v =
        g.param("readout.weight", &[o, h], Fill::Random { init: Init::Glorot, fan_in: h, fan_out: o }, true).unwrap();
    g.add("steps", Split::new(0, &[1; STEPS]), &["x"]);
    let mut prev = "h_init".to_string();
    let mut ys = Vec::new();
    for t in 0..STEPS {
        let step = if t == 0 { "steps".to_string() } else { format!("steps:{t}") };
        let cell = Linear::from_params(g.params(), w, Some(b)).unwrap();
        let readout = Linear::from_params(g.params(), v, None).unwrap();
        g.add(&format!("x{t}"), Reshape::new(&[n, d]), &[&step])
            .add(&format!("xh{t}"), Concat::new(1), &[&format!("x{t}"), &prev])
            .add(&format!("pre{t}"), cell, &[&format!("xh{t}")])
            .add(&format!("h{t}"), Activation::tanh(), &[&format!("pre{t}")])
            .add(&format!("y{t}"), readout, &[&format!("h{t}")]);
        prev = format!("h{t}");
        ys.push(format!("y{t}"));
    }
    let ys: Vec<&str> = ys.iter().map(String::as_str).collect();
    g.add("ys", Concat::new(0), &ys).output("ys", "ys").output("h_last", &prev);
    g.build().unwrap()
}

#[test]
fn one_weight_shared_by_twenty_steps_is_checked_by_finite_differences() {
    let (n, d, h, o) = (2, 3, 4, 2);
    let mut model = unrolled_rnn(n, d, h, o);
    assert_eq!(model.params().len(), 3, "one W, one b, one V for all steps");
    assert_eq!(model.params().count(), h * (d + h) + h + o * h);
    let summary = model.summary(&[]).unwrap();
    assert_eq!(summary.iter().map(|s| s.params).sum::<usize>(), model.params().count(), "shared weights count once");
    for ctx in gemm_configs(1).into_iter().map(Ctx::train) {
        let mut inputs =
            CheckInputs::new().with("x", random_tensor(&[STEPS, n, d], 4)).with("h_init", random_tensor(&[n, h], 5));
        let r = check_model(&mut model, &ctx, &mut inputs, "ys", 1e-2, 40, 6).unwrap();
        assert!(r.max_error < 5e-3, "{:?}: {} ({:.2e})", ctx.isa(), r.worst, r.max_error);
    }
}

#[test]
fn gradients_of_every_use_of_a_parameter_add_up() {
    // y = W x1 + W x2 equals W (x1 + x2): the same W gradient.
    let shared = |twice: bool| {
        let mut g = GraphBuilder::new(2);
        g.input("x1", &[3, 4]).input("x2", &[3, 4]);
        let w = g.param("w", &[5, 4], Fill::Random { init: Init::He, fan_in: 4, fan_out: 5 }, true).unwrap();
        let lin = || Linear::from_params(g.params(), w, None).unwrap();
        if twice {
            let (l1, l2) = (lin(), lin());
            g.add("a", l1, &["x1"]).add("b", l2, &["x2"]).add("y", Add::new(), &["a", "b"]);
        } else {
            let l = lin();
            g.add("s", Add::new(), &["x1", "x2"]).add("y", l, &["s"]);
        }
        g.output("y", "y");
        let model = g.build().unwrap();
        let (x1, x2) = (random_tensor(&[3, 4], 1), random_tensor(&[3, 4], 2));
        let mut state = State::new();
        model.forward(&ctx(), &mut state, &[("x1", Feed::from(&x1)), ("x2", Feed::from(&x2))]).unwrap();
        let dy = random_tensor(&[3, 5], 3);
        let mut grads = Grads::new(model.params());
        model.backward(&ctx(), &mut state, &mut grads, &[("y", dy.as_ref())]).unwrap();
        grads.get(model.params().id("w").unwrap()).unwrap().data().to_vec()
    };
    assert_close(&shared(true), &shared(false), 1e-5, "W used twice");
}

/// Tied input and output embeddings: one table read by an Embedding and by a Linear.
#[test]
fn tied_weights() {
    let mut g = GraphBuilder::new(3);
    g.int_input("ids", &[2, 3]);
    let table = g.param("table", &[7, 4], Fill::Random { init: Init::Glorot, fan_in: 4, fan_out: 4 }, true).unwrap();
    let (embed, unembed) =
        (Embedding::from_params(g.params(), table).unwrap(), Linear::from_params(g.params(), table, None).unwrap());
    g.add("e", embed, &["ids"])
        .add("t", Activation::tanh(), &["e"])
        .add("logits", unembed, &["t"])
        .output("logits", "logits");
    let mut model = g.build().unwrap();
    assert_eq!(model.params().count(), 28);
    let ids = IntTensor::from_slice(&[2, 3], &[1, 6, 0, 6, 2, 5]).unwrap();
    let mut inputs = CheckInputs::new().with_int("ids", ids);
    let r = check_model(&mut model, &ctx(), &mut inputs, "logits", 1e-2, 40, 8).unwrap();
    assert!(r.checked >= 28 && r.max_error < 5e-3, "{} ({:.2e})", r.worst, r.max_error);
}

/// A small CNN with every kind of node inference meets.
fn cnn(seed: u64) -> Model {
    let (mut g, last) = Sequential::new("image", &[2, 3, 20, 20], seed)
        .layer("c1", |p| Ok(Conv2d::new(p, Conv2dSpec::new(3, 16, 3).pad(1), Init::He)?.with_relu()))
        .layer("c2", |p| Conv2d::new(p, Conv2dSpec::new(16, 16, 3).pad(1), Init::He))
        .layer("bn", |p| BatchNorm::new(p, 16))
        .add("relu", Activation::relu())
        .add("pool", MaxPool2d::new(PoolSpec::new(2, 2)))
        .add("drop", Dropout::new(0.5, 1).unwrap())
        .add("flat", Flatten::new())
        .layer("fc", |p| Linear::new(p, 16 * 10 * 10, 10, Init::Glorot))
        .into_graph()
        .unwrap();
    g.add("probs", Softmax::new(), &[&last]).output("probs", "probs");
    g.build().unwrap()
}

#[test]
fn concurrent_inference_on_one_copy_of_the_weights() {
    for kernel_threads in [1, 2] {
        let ctx = Ctx::eval(GemmConfig::new(Isa::current().unwrap(), kernel_threads).unwrap());
        let model = cnn(4);
        let images: Vec<Tensor> = (0..6).map(|i| random_tensor(&[1 + i % 3, 3, 20, 20], 40 + i as u64)).collect();
        let run = |state: &mut State, x: &Tensor| {
            model.forward(&ctx, state, &[("image", Feed::from(x))]).unwrap();
            model.output(state, "probs").unwrap().data.to_vec()
        };
        let mut state = State::new();
        let want: Vec<Vec<f32>> = images.iter().map(|x| run(&mut state, x)).collect();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (images, want, run) = (&images, &want, &run);
                s.spawn(move || {
                    let mut state = State::new(); // each caller's own buffers
                    for round in 0..5 {
                        for k in 0..images.len() {
                            let i = (k + t + round) % images.len();
                            assert_eq!(
                                run(&mut state, &images[i]),
                                want[i],
                                "thread {t}, image {i}, {kernel_threads} kernel threads"
                            );
                        }
                    }
                });
            }
        });
    }
}

#[test]
fn a_chain_needs_about_its_largest_input_plus_output() {
    // Thirty layers, each value 32 x 64 floats (8 KiB): two buffers suffice.
    let mut chain = Sequential::new("x", &[32, 64], 1);
    for i in 0..30 {
        chain = chain
            .layer(&format!("l{i}"), |p| Linear::new(p, 64, 64, Init::Glorot))
            .add(&format!("t{i}"), Activation::tanh());
    }
    let model = chain.build("y").unwrap();
    let value = 32 * 64 * 4;
    let plan = model.memory_plan(&[], Mode::Eval).unwrap();
    assert_eq!(plan.total_bytes, 61 * value);
    assert_eq!((plan.peak_bytes, plan.buffers), (2 * value, 2), "{plan:?}");
    let train = model.memory_plan(&[], Mode::Train).unwrap();
    assert_eq!(train.peak_bytes, train.total_bytes, "training keeps every value for backward");
    // Larger batches plan larger; the report of a pass is the plan of its shapes.
    let x = random_tensor(&[100, 64], 1);
    let mut state = State::new();
    model.forward(&Ctx::eval(ctx().cfg), &mut state, &[("x", Feed::from(&x))]).unwrap();
    assert_eq!(state.memory().unwrap(), model.memory_plan(&[("x", &[100, 64])], Mode::Eval).unwrap());
    assert_eq!(state.memory().unwrap().peak_bytes, 2 * 100 * 64 * 4);

    // Channels that grow and shrink: the largest input plus output, (32 + 64) channels.
    let mut net = Sequential::new("x", &[1, 3, 32, 32], 1);
    for (i, (cin, cout)) in [(3, 16), (16, 32), (32, 64), (64, 32), (32, 16), (16, 8)].into_iter().enumerate() {
        net = net.layer(&format!("c{i}"), move |p| Conv2d::new(p, Conv2dSpec::new(cin, cout, 3).pad(1), Init::He));
    }
    let plan = net.build("y").unwrap().memory_plan(&[], Mode::Eval).unwrap();
    assert_eq!(plan.peak_bytes, (32 + 64) * 32 * 32 * 4, "{plan:?}");
    assert_eq!(plan.total_bytes, (3 + 16 + 32 + 64 + 32 + 16 + 8) * 32 * 32 * 4);
}

/// A branching graph whose values live across other nodes (a skip connection, a value read
/// by three nodes): planned buffers are shared only between values whose lives do not
/// overlap, so evaluation (reusing) equals training (keeping everything) exactly.
#[test]
fn a_branching_graph_reuses_buffers_only_when_values_are_dead() {
    let mut g = GraphBuilder::new(5);
    g.input("x", &[4, 16])
        .layer("a", |p| Linear::new(p, 16, 16, Init::Glorot), &["x"])
        .add("ta", Activation::tanh(), &["a"])
        .layer("b1", |p| Linear::new(p, 16, 16, Init::Glorot), &["ta"])
        .layer("b2", |p| Linear::new(p, 16, 8, Init::Glorot), &["ta"])
        .add("t1", Activation::sigmoid(), &["b1"])
        .layer("c", |p| Linear::new(p, 16, 8, Init::Glorot), &["t1"])
        .add("m", Mul::new(), &["c", "b2"])
        .add("cat", Concat::new(1), &["m", "ta", "m"])
        .layer("d", |p| Linear::new(p, 32, 16, Init::Glorot), &["cat"])
        .add("skip", Add::new(), &["d", "ta"])
        .output("y", "skip")
        .output("side", "b2");
    let model = g.build().unwrap();
    let plan = model.memory_plan(&[], Mode::Eval).unwrap();
    assert!(plan.buffers < 11 && plan.peak_bytes < plan.total_bytes, "{plan:?}");
    let x = random_tensor(&[4, 16], 9);
    let run = |mode: Mode| {
        let mut state = State::new();
        model.forward(&Ctx { mode, ..ctx() }, &mut state, &[("x", Feed::from(&x))]).unwrap();
        (model.output(&state, "y").unwrap().data.to_vec(), model.output(&state, "side").unwrap().data.to_vec())
    };
    assert_eq!(run(Mode::Eval), run(Mode::Train));
}

/// Three linear layers; the middle one frozen, or the first two.
fn mlp() -> Model {
    Sequential::new("x", &[8, 6], 3)
        .layer("l1", |p| Linear::new(p, 6, 6, Init::Glorot))
        .add("t1", Activation::tanh())
        .layer("l2", |p| Linear::new(p, 6, 6, Init::Glorot))
        .add("t2", Activation::tanh())
        .layer("l3", |p| Linear::new(p, 6, 2, Init::Glorot))
        .build("y")
        .unwrap()
}

/// The gradients of a backward pass from a fixed seed, and how many weight gradients it
/// computed.
fn backward(model: &Model) -> (Grads, usize) {
    let x = random_tensor(&[8, 6], 1);
    let mut state = State::new();
    model.forward(&ctx(), &mut state, &[("x", Feed::from(&x))]).unwrap();
    let mut grads = Grads::new(model.params());
    model.backward(&ctx(), &mut state, &mut grads, &[("y", random_tensor(&[8, 2], 2).as_ref())]).unwrap();
    let n = grads.handed_out();
    (grads, n)
}

#[test]
fn frozen_parameters_get_no_weight_gradient_work() {
    let full = mlp();
    let (all, n_all) = backward(&full);
    assert_eq!(n_all, 6, "three weights and three biases");
    let mut frozen = mlp();
    assert_eq!(frozen.params_mut().set_trainable("l2", false), 2);
    let (some, n_some) = backward(&frozen);
    assert_eq!(n_some, 4, "l2's weight gradients are not computed");
    let p = frozen.params();
    for name in ["l2.weight", "l2.bias"] {
        assert!(some.get(p.id(name).unwrap()).is_none(), "{name}");
    }
    for name in ["l1.weight", "l1.bias", "l3.weight"] {
        let id = p.id(name).unwrap();
        assert_eq!(
            some.get(id).unwrap().data(),
            all.get(id).unwrap().data(),
            "{name}: the input gradient still flows through l2"
        );
    }
    // With everything before l3 frozen, backward stops at l3.
    frozen.params_mut().set_trainable("l1", false);
    let x = random_tensor(&[8, 6], 1);
    let mut state = State::new();
    state.profile(true);
    frozen.forward(&ctx(), &mut state, &[("x", Feed::from(&x))]).unwrap();
    let mut grads = Grads::new(frozen.params());
    frozen.backward(&ctx(), &mut state, &mut grads, &[("y", random_tensor(&[8, 2], 2).as_ref())]).unwrap();
    assert_eq!(grads.handed_out(), 2);
    let times = frozen.node_times(&state);
    assert!(
        times.iter().filter(|(n, _, _)| *n != "l3").all(|(_, _, b)| b.is_zero()),
        "no backward before l3: {times:?}"
    );
    // An optimizer cannot be given a frozen parameter by name.
    let err = Adam::new().attach(frozen.params(), Select::Names(&["l3.weight", "l2.weight"])).err();
    assert!(matches!(err, Some(LayerError::FrozenParam { ref name }) if name == "l2.weight"), "{err:?}");
    assert!(matches!(
        Sgd::new().attach(frozen.params(), Select::Names(&["l9.weight"])),
        Err(LayerError::UnknownParam { .. })
    ));
    // Selecting by prefix or all trainable ones skips the frozen.
    let mut opt = Sgd::new().attach(frozen.params(), Select::Trainable).unwrap();
    let mut names = Vec::new();
    opt.visit_state(&mut |n, _| names.push(n.to_string()));
    assert!(names.is_empty(), "plain SGD keeps no state: {names:?}");
}

/// A GAN's pieces: a generator and a discriminator as two models with two optimizers; the
/// discriminator runs on real and generated data with one copy of its weights, and stays
/// fixed (no weight-gradient work) during the generator's step.
struct Gan {
    generator: Model,
    discriminator: Model,
    opt_g: Adam,
    opt_d: Sgd,
}

fn gan(hidden: usize, seed: u64) -> Gan {
    let generator = Sequential::new("z", &[4, 3], seed)
        .layer("fc", |p| Linear::new(p, 3, 5, Init::Glorot))
        .add("t", Activation::tanh())
        .build("fake")
        .unwrap();
    let (mut g, last) = Sequential::new("x", &[4, 5], seed + 1)
        .layer("fc", |p| Linear::new(p, 5, hidden, Init::He))
        .add("act", Activation::leaky_relu(0.2))
        .layer("out", |p| Linear::new(p, hidden, 1, Init::Glorot))
        .into_graph()
        .unwrap();
    g.input("target", &[4, 1]).add("loss", BceWithLogits::new(), &[&last, "target"]).output("loss", "loss");
    let discriminator = g.build().unwrap();
    let opt_g = Adam::new().attach(generator.params(), Select::Trainable).unwrap();
    let opt_d =
        Sgd::new().with_momentum(0.9, false).unwrap().attach(discriminator.params(), Select::Trainable).unwrap();
    Gan { generator, discriminator, opt_g, opt_d }
}

impl Gan {
    fn step(&mut self, real: &Tensor, z: &Tensor) -> usize {
        let ctx = ctx();
        let (ones, zeros) = (Tensor::from_slice(&[4, 1], &[1.0; 4]).unwrap(), Tensor::zeros(&[4, 1]));
        let (mut sg, mut sd) = (State::new(), State::new());
        self.generator.forward(&ctx, &mut sg, &[("z", Feed::from(z))]).unwrap();
        let fake = self.generator.output(&sg, "fake").unwrap();
        // Discriminator step: real and generated data, gradients of both added up.
        let mut gd = Grads::new(self.discriminator.params());
        for (x, t) in [(real.as_ref(), &ones), (fake, &zeros)] {
            self.discriminator.forward(&ctx, &mut sd, &[("x", Feed::F32(x)), ("target", Feed::from(t))]).unwrap();
            self.discriminator.backward_from(&ctx, &mut sd, &mut gd, "loss").unwrap();
        }
        self.opt_d.step(self.discriminator.params_mut(), &gd, 0.05).unwrap();
        // Generator step through the frozen discriminator.
        self.discriminator.params_mut().set_trainable("", false);
        let mut gd = Grads::new(self.discriminator.params());
        sd.keep_input_grads(true);
        self.discriminator.forward(&ctx, &mut sd, &[("x", Feed::F32(fake)), ("target", Feed::from(&ones))]).unwrap();
        self.discriminator.backward_from(&ctx, &mut sd, &mut gd, "loss").unwrap();
        let d_fake = self.discriminator.input_grad(&sd, "x").unwrap();
        let mut gg = Grads::new(self.generator.params());
        self.generator.backward(&ctx, &mut sg, &mut gg, &[("fake", d_fake)]).unwrap();
        self.opt_g.step(self.generator.params_mut(), &gg, 0.01).unwrap();
        self.discriminator.params_mut().set_trainable("", true);
        gd.handed_out()
    }

    fn parts(&mut self) -> [Part<'_>; 4] {
        [
            Part::Params("generator", self.generator.params_mut()),
            Part::Params("discriminator", self.discriminator.params_mut()),
            Part::Optimizer("opt_g", &mut self.opt_g),
            Part::Optimizer("opt_d", &mut self.opt_d),
        ]
    }

    /// Every tensor of the four parts, by name.
    fn tensors(&mut self) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        for mut part in self.parts() {
            match &mut part {
                Part::Params(prefix, p) => p.visit(&mut |n, t| out.push((format!("{prefix}.{n}"), t.data().to_vec()))),
                Part::Optimizer(prefix, o) => {
                    o.visit_state(&mut |n, t| out.push((format!("{prefix}.{n}"), t.data().to_vec())))
                }
            }
        }
        out
    }
}

#[test]
fn two_models_two_optimizers_one_checkpoint() {
    let mut a = gan(6, 1);
    let (real, z) = (random_tensor(&[4, 5], 1), random_tensor(&[4, 3], 2));
    for _ in 0..3 {
        assert_eq!(a.step(&real, &z), 0, "the frozen discriminator computed no weight gradient");
    }
    let dir = std::env::temp_dir().join(format!("simdnn-graph-gan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gan.safetensors");
    checkpoint::save(&path, &mut a.parts(), HashMap::from([("model".into(), "gan".into())])).unwrap();
    let names: Vec<String> = a.tensors().into_iter().map(|(n, _)| n).collect();
    for want in
        ["generator.fc.weight", "discriminator.out.bias", "opt_g.adam_m.fc.weight", "opt_d.sgd_velocity.out.weight"]
    {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }

    // A fresh pair with other weights loads everything back.
    let mut b = gan(6, 9);
    assert_ne!(a.tensors(), b.tensors());
    let ck = Checkpoint::read(&path).unwrap();
    ck.load(&mut b.parts()).unwrap();
    assert_eq!(a.tensors(), b.tensors());
    assert_eq!(ck.metadata().unwrap()["model"], "gan");
    // Training on from the loaded state matches training on from the original.
    a.step(&real, &z);
    b.step(&real, &z);
    assert_eq!(a.tensors(), b.tensors());

    // A discriminator of another width: the first mismatch is named, nothing is loaded.
    let mut c = gan(7, 9);
    let before = c.tensors();
    let err = ck.load(&mut c.parts()).unwrap_err();
    assert!(matches!(&err, CheckpointError::Mismatch { name, .. } if name == "discriminator.fc.weight"), "{err}");
    assert_eq!(c.tensors(), before);
    // A model lacking a tensor the checkpoint holds, or holding one it lacks.
    let mut small =
        Sequential::new("z", &[4, 3], 1).layer("fc", |p| Linear::new(p, 3, 5, Init::Glorot)).build("y").unwrap();
    let extra = Sequential::new("z", &[4, 3], 1).layer("fc", |p| Linear::new(p, 3, 5, Init::Glorot));
    let mut extra = extra.layer("more", |p| Linear::new(p, 5, 5, Init::Glorot)).build("y").unwrap();
    ck.load(&mut [Part::Params("generator", small.params_mut())]).unwrap();
    let err = ck.load(&mut [Part::Params("generator", extra.params_mut())]).unwrap_err();
    assert!(matches!(&err, CheckpointError::Missing { name, .. } if name == "generator.more.weight"), "{err}");
    let mut d = gan(6, 1);
    let err = ck.load(&mut [Part::Params("discriminator", d.generator.params_mut())]).unwrap_err();
    assert!(err.to_string().contains("discriminator."), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn views_share_storage_and_integer_inputs_flow() {
    let t = Tensor::from_slice(&[2, 6], &[1.0; 12]).unwrap();
    let v = t.view(&[3, 4]).unwrap();
    assert_eq!(v.data.as_ptr(), t.data().as_ptr(), "a view is the same storage");
    assert!(t.view(&[5]).is_err());
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, 3, 4])
        .add("flat", Flatten::new(), &["x"])
        .add("shaped", Reshape::new(&[0, 4, 3]), &["flat"])
        .output("x", "x")
        .output("flat", "flat")
        .output("shaped", "shaped");
    let model = g.build().unwrap();
    let x = random_tensor(&[2, 3, 4], 1);
    let mut state = State::new();
    model.forward(&Ctx::eval(ctx().cfg), &mut state, &[("x", Feed::from(&x))]).unwrap();
    let (a, b, c) = (
        model.output(&state, "x").unwrap(),
        model.output(&state, "flat").unwrap(),
        model.output(&state, "shaped").unwrap(),
    );
    assert_eq!((b.shape, c.shape), (&[2, 12][..], &[2, 4, 3][..]));
    assert!(a.data.as_ptr() == b.data.as_ptr() && b.data.as_ptr() == c.data.as_ptr(), "no copies");
    assert_eq!(model.memory_plan(&[], Mode::Eval).unwrap().buffers, 1);
    // Integer inputs: a type or rank that does not fit is an error naming the input.
    let mut g = GraphBuilder::new(1);
    g.int_input("ids", &[4]).layer("e", |p| Embedding::new(p, 10, 3), &["ids"]).output("e", "e");
    let model = g.build().unwrap();
    let ids = IntTensor::from_slice(&[4], &[9, 0, 3, 3]).unwrap();
    model.forward(&ctx(), &mut state, &[("ids", Feed::from(&ids))]).unwrap();
    let table = model.params().value(model.params().id("e.weight").unwrap());
    assert_eq!(&model.output(&state, "e").unwrap().data[..3], &table.data()[27..30]);
    let err = model.forward(&ctx(), &mut state, &[("ids", Feed::from(&x))]).unwrap_err();
    assert!(matches!(&err, LayerError::InputMismatch { name, .. } if name == "ids"), "{err}");
    let bad = IntTensor::from_slice(&[1], &[10]).unwrap();
    assert!(model.forward(&ctx(), &mut state, &[("ids", Feed::from(&bad))]).is_err(), "id out of range");
    assert!(matches!(model.forward(&ctx(), &mut state, &[]), Err(LayerError::MissingInput { .. })));
    let extra = [("ids", Feed::from(&ids)), ("idz", Feed::from(&ids))];
    assert!(matches!(model.forward(&ctx(), &mut state, &extra), Err(LayerError::UnknownInput { .. })));
}

/// A residual block and a concatenation, each convolution followed by batch norm.
fn bn_graph() -> Model {
    let conv = |cin: usize, cout: usize, k: usize| {
        move |p: &mut ParamScope| Conv2d::new(p, Conv2dSpec::new(cin, cout, k).pad(k / 2).no_bias(), Init::He)
    };
    let bn = |c: usize| move |p: &mut ParamScope| BatchNorm::new(p, c);
    let mut g = GraphBuilder::new(4);
    g.input("x", &[2, 4, 6, 6])
        // Residual block: conv-bn-relu-conv-bn, plus a projected shortcut conv-bn, then add+relu.
        .layer("a1", conv(4, 8, 3), &["x"])
        .layer("a1_bn", bn(8), &["a1"])
        .add("a1_relu", Activation::relu(), &["a1_bn"])
        .layer("a2", conv(8, 8, 3), &["a1_relu"])
        .layer("a2_bn", bn(8), &["a2"])
        .layer("proj", conv(4, 8, 1), &["x"])
        .layer("proj_bn", bn(8), &["proj"])
        .add("sum", Add::new().with_relu(), &["a2_bn", "proj_bn"])
        // Fire-like concatenation of two convolutions with batch norm.
        .layer("e1", conv(8, 4, 1), &["sum"])
        .layer("e1_bn", bn(4), &["e1"])
        .layer("e3", conv(8, 4, 3), &["sum"])
        .layer("e3_bn", bn(4), &["e3"])
        .add("cat", Concat::new(1), &["e1_bn", "e3_bn"])
        .output("y", "cat");
    g.build().unwrap()
}

#[test]
fn batch_norms_fold_inside_residual_blocks_and_concatenations() {
    let mut model = bn_graph();
    let x = random_tensor(&[2, 4, 6, 6], 3);
    let mut state = State::new();
    for _ in 0..3 {
        model.forward(&ctx(), &mut state, &[("x", Feed::from(&x))]).unwrap(); // running statistics move
    }
    for id in model.params().ids().collect::<Vec<_>>() {
        if model.params().name(id).ends_with("_bn.weight") {
            model
                .params_mut()
                .value_mut(id)
                .data_mut()
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = 0.5 + 0.25 * i as f32);
        }
    }
    let eval = Ctx::eval(ctx().cfg);
    model.forward(&eval, &mut state, &[("x", Feed::from(&x))]).unwrap();
    let want = model.output(&state, "y").unwrap().data.to_vec();
    let nodes = model.nodes().count();
    assert_eq!(model.fold_batch_norms().unwrap(), 5);
    assert_eq!(model.nodes().count(), nodes - 5);
    assert!(model.nodes().all(|(_, d)| !d.contains("batch")), "{:?}", model.nodes().collect::<Vec<_>>());
    let mut state = State::new();
    model.forward(&eval, &mut state, &[("x", Feed::from(&x))]).unwrap();
    assert_close(model.output(&state, "y").unwrap().data, &want, 1e-4, "folded");
    // The ReLU after a1 (its batch norm folded) fuses into the convolution; the add's own
    // ReLU stays, having no convolution before it.
    assert_eq!(model.fuse_relus().unwrap(), 1);
    assert_eq!(model.fuse_relus().unwrap(), 0);
    assert_eq!(model.nodes().count(), nodes - 6);
    assert!(model.nodes().all(|(n, _)| n != "a1_relu"));
    let mut state = State::new();
    model.forward(&eval, &mut state, &[("x", Feed::from(&x))]).unwrap();
    assert_close(model.output(&state, "y").unwrap().data, &want, 1e-4, "fused");
}

#[test]
fn a_relu_read_elsewhere_or_exposed_is_not_fused() {
    let conv = |p: &mut ParamScope| Conv2d::new(p, Conv2dSpec::new(2, 2, 3).pad(1), Init::He);
    let mut g = GraphBuilder::new(1);
    g.input("x", &[1, 2, 5, 5])
        .layer("c1", conv, &["x"])
        .add("r1", Activation::relu(), &["c1"])
        .add("sum", Add::new(), &["c1", "r1"]) // c1 read twice: r1 cannot move into it
        .layer("c2", conv, &["sum"])
        .add("r2", Activation::relu(), &["c2"])
        .output("y", "r2")
        .output("pre", "c2"); // c2's output exposed: r2 cannot move into it
    let mut model = g.build().unwrap();
    assert_eq!(model.fuse_relus().unwrap(), 0);
}

#[test]
fn bad_graphs_are_errors_when_built() {
    let lin = |p: &mut ParamScope| Linear::new(p, 4, 4, Init::Glorot);
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, 4]).layer("a", lin, &["b"]).layer("b", lin, &["a"]).output("y", "b");
    let err = g.build().unwrap_err();
    assert!(matches!(&err, LayerError::Cycle { nodes } if nodes.len() == 2), "{err}");
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, 4])
        .layer("a", lin, &["x"])
        .layer("b", lin, &["a"])
        .add("c", Add::new(), &["b", "aa"])
        .output("y", "c");
    let err = g.build().unwrap_err();
    assert!(matches!(&err, LayerError::UnknownValue { node, input } if node == "c" && input == "aa"), "{err}");
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, 4]).layer("a", lin, &["x"]).add("s", Split::new(1, &[2, 2]), &["a"]).output("y", "s:2");
    assert!(g.build().is_err(), "an output beyond a node's outputs");
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, 4]).layer("a", lin, &["x"]).layer("a", lin, &["x"]).output("y", "a");
    assert!(g.build().unwrap_err().to_string().contains("used twice"));
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, 5]).layer("a", lin, &["x"]).output("y", "a");
    let err = g.build().unwrap_err();
    assert!(matches!(&err, LayerError::InNode { node, .. } if node == "a"), "shapes that do not fit: {err}");
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, 4]).layer("a", lin, &["x"]).output("y", "nope");
    assert!(matches!(g.build(), Err(LayerError::UnknownOutput { .. })));
}
