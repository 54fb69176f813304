//! Every operation's backward pass against finite differences (on every ISA path and on two
//! threads), each run as a node of a graph; fused epilogues against separate nodes; the
//! losses, optimizers against hand-computed updates, schedules, dropout, batch
//! normalisation, and bad-input errors.

mod common;

use common::gemm_configs;
use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::gradcheck::{check_model, random_tensor, CheckInputs};
use simdnn::layers::ops::*;
use simdnn::layers::*;

/// Finite differences in f32 with `eps = 1e-2` agree to about 1e-3 on smooth ops.
const TOL: f64 = 5e-3;

fn contexts() -> Vec<Ctx> {
    let mut c: Vec<Ctx> = gemm_configs(1).into_iter().map(Ctx::train).collect();
    c.push(Ctx::train(GemmConfig::new(Isa::current().unwrap(), 2).unwrap()));
    c
}

/// Builds a graph reading input `x` of `x`'s shape into output `y`, with `body` adding the
/// nodes (the last one named `op`), and checks its gradients on every context.
fn check_with(name: &str, inputs: CheckInputs, body: &dyn Fn(&mut GraphBuilder)) {
    for ctx in contexts() {
        let mut g = GraphBuilder::new(7);
        for (n, t) in &inputs.f32 {
            g.input(n, t.shape());
        }
        for (n, t) in &inputs.int {
            g.int_input(n, t.shape());
        }
        body(&mut g);
        g.output("y", "op");
        let mut model = g.build().unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut inputs = CheckInputs { f32: inputs.f32.clone(), int: inputs.int.clone() };
        let r = check_model(&mut model, &ctx, &mut inputs, "y", 1e-2, 60, 99).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.checked > 0, "{name}: nothing checked");
        assert!(
            r.max_error < TOL,
            "{name} on {:?} x{}: {} (error {:.2e})",
            ctx.isa(),
            ctx.cfg.threads(),
            r.worst,
            r.max_error
        );
    }
}

/// [`check_with`] for an op of one input.
fn check(name: &str, x: &Tensor, body: &dyn Fn(&mut GraphBuilder)) {
    check_with(name, CheckInputs::new().with("x", x.clone()), body)
}

/// Values spread at least 0.02 apart and away from zero, so `±eps` nudges cross no kink of
/// ReLU or max pooling.
fn separated(shape: &[usize], seed: u64) -> Tensor {
    let mut t = random_tensor(shape, seed);
    let n = t.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| t.data()[a].total_cmp(&t.data()[b]));
    for (rank, &i) in order.iter().enumerate() {
        let v = 0.05 + 0.03 * rank as f32;
        t.data_mut()[i] = if rank % 2 == 0 { v } else { -v };
    }
    t
}

#[test]
fn conv2d_gradients() {
    let specs = [
        Conv2dSpec::new(3, 4, 3).pad(1),
        Conv2dSpec::new(2, 3, 5).stride(2).pad(2),
        Conv2dSpec::new(4, 6, 3).groups(2).dilation(2).pad(1),
        Conv2dSpec::new(3, 5, 1).no_bias(),
    ];
    for spec in specs {
        let x = random_tensor(&[2, spec.in_channels, 7, 6], 1);
        check(&format!("{spec:?}"), &x, &|g| {
            g.layer("op", |p| Conv2d::new(p, spec, Init::He), &["x"]);
        });
    }
}

/// Fused ReLU epilogues (convolution, linear, add, max pooling) against the same op
/// followed by a ReLU node: finite differences would straddle the kink wherever a
/// pre-activation is near 0, so the fused ops are checked by equality instead.
#[test]
fn fused_relu_equals_op_then_relu() {
    type Body = fn(&mut GraphBuilder, bool);
    let cases: [(&str, Body, Vec<usize>); 4] = [
        (
            "conv",
            |g, fused| {
                g.layer(
                    "a",
                    |p| {
                        Conv2d::new(p, Conv2dSpec::new(3, 4, 3), Init::He)
                            .map(|c| if fused { c.with_relu() } else { c })
                    },
                    &["x"],
                );
            },
            vec![2, 3, 6, 6],
        ),
        (
            "linear",
            |g, fused| {
                g.layer("a", |p| Linear::new(p, 6, 5, Init::He).map(|l| if fused { l.with_relu() } else { l }), &["x"]);
            },
            vec![2, 3, 6],
        ),
        (
            "add",
            |g, fused| {
                g.add("a", if fused { Add::new().with_relu() } else { Add::new() }, &["x", "x2"]);
            },
            vec![2, 3, 6],
        ),
        (
            "maxpool",
            |g, fused| {
                let pool = MaxPool2d::new(PoolSpec::new(2, 2));
                g.add("a", if fused { pool.with_relu() } else { pool }, &["x"]);
            },
            vec![2, 3, 6, 6],
        ),
    ];
    for ctx in contexts() {
        for (name, body, shape) in &cases {
            let run = |fused: bool| {
                let mut g = GraphBuilder::new(3);
                g.input("x", shape).input("x2", shape);
                body(&mut g, fused);
                if fused {
                    g.add("y", Identity::new(), &["a"]);
                } else {
                    g.add("y", Activation::relu(), &["a"]);
                }
                g.output("y", "y");
                let model = g.build().unwrap();
                let (x, x2) = (random_tensor(shape, 2), random_tensor(shape, 4));
                let mut state = State::new();
                state.keep_input_grads(true);
                model.forward(&ctx, &mut state, &[("x", Feed::from(&x)), ("x2", Feed::from(&x2))]).unwrap();
                let y = model.output(&state, "y").unwrap().data.to_vec();
                let dy = random_tensor(model.output(&state, "y").unwrap().shape, 3);
                let mut grads = Grads::new(model.params());
                model.backward(&ctx, &mut state, &mut grads, &[("y", dy.as_ref())]).unwrap();
                let dx = model.input_grad(&state, "x").unwrap().data.to_vec();
                let dw: Vec<Vec<f32>> = model.params().ids().map(|id| grads.get(id).unwrap().data().to_vec()).collect();
                (y, dx, dw)
            };
            assert_eq!(run(true), run(false), "{name} on {:?}", ctx.isa());
        }
    }
}

#[test]
fn pooling_gradients() {
    let x = separated(&[2, 3, 7, 7], 3);
    check("maxpool", &x, &|g| {
        g.add("op", MaxPool2d::new(PoolSpec::new(3, 2).pad(1)), &["x"]);
    });
    check("relu+maxpool", &x, &|g| {
        g.add("op", MaxPool2d::new(PoolSpec::new(2, 2)).with_relu(), &["x"]);
    });
    check("maxpool ceil", &x, &|g| {
        g.add("op", MaxPool2d::new(PoolSpec::new(2, 2).ceil_mode()), &["x"]);
    });
    let x = random_tensor(&[2, 3, 7, 6], 4);
    check("avgpool", &x, &|g| {
        g.add("op", AvgPool2d::new(PoolSpec::new(3, 2).pad(1)), &["x"]);
    });
    check("avgpool no pad", &x, &|g| {
        g.add("op", AvgPool2d::new(PoolSpec::new(3, 2).pad(1).ceil_mode()).exclude_pad(), &["x"]);
    });
    check("global avgpool", &x, &|g| {
        g.add("op", GlobalAvgPool::new(), &["x"]);
    });
}

#[test]
fn dense_and_elementwise_gradients() {
    let x = random_tensor(&[5, 7], 5);
    check("linear", &x, &|g| {
        g.layer("op", |p| Linear::new(p, 7, 4, Init::Glorot), &["x"]);
    });
    // Linear over the last axis of a rank-4 input (every leading index a row).
    check("linear rank 4", &random_tensor(&[2, 3, 2, 7], 15), &|g| {
        g.layer("op", |p| Linear::new(p, 7, 4, Init::Glorot), &["x"]);
    });
    let xs = separated(&[5, 7], 6);
    check("linear+relu", &xs, &|g| {
        g.layer("op", |p| Ok(Linear::new(p, 7, 4, Init::He)?.with_relu()), &["x"]);
    });
    check("relu", &xs, &|g| {
        g.add("op", Activation::relu(), &["x"]);
    });
    check("leaky relu", &xs, &|g| {
        g.add("op", Activation::leaky_relu(0.2), &["x"]);
    });
    check("sigmoid", &x, &|g| {
        g.add("op", Activation::sigmoid(), &["x"]);
    });
    check("tanh", &x, &|g| {
        g.add("op", Activation::tanh(), &["x"]);
    });
    check("softmax", &x, &|g| {
        g.add("op", Softmax::new(), &["x"]);
    });
    let x4 = random_tensor(&[2, 3, 2, 2], 7);
    check("flatten", &x4, &|g| {
        g.add("op", Flatten::new(), &["x"]);
    });
    check("reshape", &x4, &|g| {
        g.add("op", Reshape::new(&[0, 6, 2]), &["x"]);
    });
    check("identity", &x4, &|g| {
        g.add("op", Identity::new(), &["x"]);
    });
}

#[test]
fn two_input_and_multi_output_gradients() {
    let (a, b) = (random_tensor(&[2, 3, 4], 30), random_tensor(&[2, 3, 4], 31));
    let two = || CheckInputs::new().with("a", a.clone()).with("b", b.clone());
    check_with("add", two(), &|g| {
        g.add("op", Add::new(), &["a", "b"]);
    });
    check_with("mul", two(), &|g| {
        g.add("op", Mul::new(), &["a", "b"]);
    });
    check_with("mul of a value with itself", two(), &|g| {
        g.add("op", Mul::new(), &["a", "a"]);
    });
    for axis in 0..3 {
        check_with(&format!("concat axis {axis}"), two(), &|g| {
            g.add("op", Concat::new(axis), &["a", "b", "a"]);
        });
    }
    // Split into three along the last axis; the outputs recombined unevenly so each part's
    // gradient differs.
    check_with("split", two(), &|g| {
        g.add("parts", Split::new(2, &[1, 2, 1]), &["a"]).add("s", Mul::new(), &["parts:0", "parts:2"]).add(
            "op",
            Concat::new(2),
            &["parts:1", "s", "parts:1"],
        );
    });
}

#[test]
fn embedding_gradients() {
    let ids = IntTensor::from_slice(&[2, 3], &[4, 0, 4, 2, 1, 3]).unwrap();
    check_with("embedding", CheckInputs::new().with_int("ids", ids), &|g| {
        g.layer("op", |p| Embedding::new(p, 5, 3), &["ids"]);
    });
}

#[test]
fn batch_norm_gradients() {
    for shape in [vec![6, 4], vec![3, 4, 3, 2]] {
        let x = random_tensor(&shape, 8);
        check("batchnorm train", &x, &|g| {
            g.layer("op", |p| BatchNorm::new(p, 4), &["x"]);
        });
    }
    // Backward needs a training-mode forward pass (evaluation shares buffers between values).
    let ctx = contexts()[0];
    let mut g = GraphBuilder::new(1);
    g.input("x", &[6, 4]).layer("bn", |p| BatchNorm::new(p, 4), &["x"]).output("y", "bn");
    let model = g.build().unwrap();
    let (x, mut state) = (random_tensor(&[6, 4], 8), State::new());
    model.forward(&Ctx::eval(ctx.cfg), &mut state, &[("x", Feed::from(&x))]).unwrap();
    let err = model.backward_from(&ctx, &mut state, &mut Grads::new(model.params()), "y");
    assert!(matches!(err, Err(LayerError::NoForward)));
}

#[test]
fn batch_norm_normalises_and_tracks_statistics() {
    let ctx = contexts()[0];
    let mut x = random_tensor(&[8, 2, 3, 3], 9);
    x.data_mut().iter_mut().for_each(|v| *v = 3.0 * *v + 5.0);
    let mut g = GraphBuilder::new(1);
    g.input("x", x.shape()).layer("bn", |p| BatchNorm::new(p, 2), &["x"]).output("y", "bn");
    let model = g.build().unwrap();
    let mut state = State::new();
    model.forward(&ctx, &mut state, &[("x", Feed::from(&x))]).unwrap();
    let y = model.output(&state, "y").unwrap();
    for c in 0..2 {
        let vals: Vec<f32> = y.data.chunks_exact(18).flat_map(|img| img[c * 9..c * 9 + 9].to_vec()).collect();
        let mean = vals.iter().sum::<f32>() / vals.len() as f32;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / vals.len() as f32;
        assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3, "channel {c}: mean {mean}, var {var}");
    }
    let bn = model.op("bn").unwrap().as_any().downcast_ref::<BatchNorm>().unwrap();
    let (_, _, rm, _, _) = bn.statistics(model.params());
    assert!(rm.iter().all(|&m| (m - 0.5).abs() < 0.1), "running mean moved by momentum 0.1 toward ~5: {rm:?}");
}

#[test]
fn dropout_scales_survivors_and_routes_gradients_through_the_mask() {
    let ctx = contexts()[0];
    let x = Tensor::from_slice(&[1, 10000], &vec![1.0; 10000]).unwrap();
    let mut g = GraphBuilder::new(1);
    g.input("x", x.shape()).add("d", Dropout::new(0.3, 1).unwrap(), &["x"]).output("y", "d");
    let model = g.build().unwrap();
    let mut state = State::new();
    state.keep_input_grads(true);
    model.forward(&ctx, &mut state, &[("x", Feed::from(&x))]).unwrap();
    let y = model.output(&state, "y").unwrap().data.to_vec();
    let dropped = y.iter().filter(|&&v| v == 0.0).count();
    assert!((2700..3300).contains(&dropped), "dropped {dropped} of 10000 at p = 0.3");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    let dy = random_tensor(&[1, 10000], 2);
    model.backward(&ctx, &mut state, &mut Grads::new(model.params()), &[("y", dy.as_ref())]).unwrap();
    let dx = model.input_grad(&state, "x").unwrap();
    for ((&g, &d), &yv) in dx.data.iter().zip(dy.data()).zip(&y) {
        assert_eq!(g, d * yv, "the gradient passes exactly where the value did, with the same scale");
    }
    model.forward(&Ctx::eval(ctx.cfg), &mut state, &[("x", Feed::from(&x))]).unwrap();
    assert_eq!(model.output(&state, "y").unwrap().data, x.data(), "inactive in eval mode");
    assert!(Dropout::new(1.0, 0).is_err() && Dropout::new(-0.1, 0).is_err());
}

/// A graph computing `loss(z, target)` with `z` as an input, its value and input gradient.
fn loss_graph(op: impl Op, z: &Tensor, target: Feed) -> (f32, Vec<f32>) {
    let ctx = contexts()[0];
    let mut g = GraphBuilder::new(1);
    g.input("z", z.shape());
    match target {
        Feed::Int(t) => g.int_input("t", t.shape()),
        Feed::F32(t) => g.input("t", t.shape),
    };
    g.add("loss", op, &["z", "t"]).output("loss", "loss");
    let model = g.build().unwrap();
    let mut state = State::new();
    state.keep_input_grads(true);
    model.forward(&ctx, &mut state, &[("z", Feed::from(z)), ("t", target)]).unwrap();
    let loss = model.output(&state, "loss").unwrap().data[0];
    model.backward_from(&ctx, &mut state, &mut Grads::new(model.params()), "loss").unwrap();
    (loss, model.input_grad(&state, "z").unwrap().data.to_vec())
}

#[test]
fn loss_gradients() {
    let z = random_tensor(&[4, 5], 11);
    let labels = IntTensor::from_slice(&[4], &[0, 4, 2, 2]).unwrap();
    let t = random_tensor(&[4, 5], 12);
    let mut t01 = random_tensor(&[4, 5], 13);
    t01.data_mut().iter_mut().for_each(|v| *v = (*v + 1.0) / 2.0);
    type Loss<'a> = Box<dyn Fn(&Tensor) -> (f32, Vec<f32>) + 'a>;
    let cases: [(&str, Loss); 3] = [
        ("cross-entropy", Box::new(|z: &Tensor| loss_graph(SoftmaxCrossEntropy::new(), z, Feed::from(&labels)))),
        ("mse", Box::new(|z: &Tensor| loss_graph(MeanSquaredError::new(), z, Feed::from(&t)))),
        ("bce", Box::new(|z: &Tensor| loss_graph(BceWithLogits::new(), z, Feed::from(&t01)))),
    ];
    for (name, f) in cases {
        let (_, analytic) = f(&z);
        for (i, &a) in analytic.iter().enumerate() {
            let mut zp = z.clone();
            zp.data_mut()[i] += 1e-2;
            let up = f(&zp).0 as f64;
            zp.data_mut()[i] -= 2e-2;
            let numeric = (up - f(&zp).0 as f64) / 2e-2;
            let a = a as f64;
            assert!((a - numeric).abs() < 2e-3 * (1.0 + numeric.abs()), "{name}[{i}]: analytic {a}, numeric {numeric}");
        }
    }
}

#[test]
fn losses_are_stable_and_exact_on_known_values() {
    // Logits of 1e4: a naive softmax overflows; the loss of the right class is ~0, of a
    // wrong class the logit gap.
    let z = Tensor::from_slice(&[2, 3], &[1e4, 0.0, -1e4, 1e4, 0.0, -1e4]).unwrap();
    let labels = IntTensor::from_slice(&[2], &[0, 1]).unwrap();
    let (loss, g) = loss_graph(SoftmaxCrossEntropy::new(), &z, Feed::from(&labels));
    assert!((loss - 5e3).abs() < 1.0, "mean of 0 and 1e4: {loss}");
    assert!(g.iter().all(|v| v.is_finite()));
    // Uniform logits: log(classes).
    let u = Tensor::zeros(&[3, 10]);
    let l3 = IntTensor::from_slice(&[3], &[1, 2, 3]).unwrap();
    assert!((loss_graph(SoftmaxCrossEntropy::new(), &u, Feed::from(&l3)).0 - 10f32.ln()).abs() < 1e-6);
    let big = Tensor::from_slice(&[1, 2], &[100.0, -100.0]).unwrap();
    let t = Tensor::from_slice(&[1, 2], &[0.0, 1.0]).unwrap();
    let (l, _) = loss_graph(BceWithLogits::new(), &big, Feed::from(&t));
    assert!((l - 100.0).abs() < 1e-3, "bce of two logits 100 wrong by 100: {l}");
}

#[test]
fn bad_labels_are_errors_when_run() {
    let ctx = contexts()[0];
    let mut g = GraphBuilder::new(1);
    g.input("z", &[2, 3])
        .int_input("t", &[2])
        .add("loss", SoftmaxCrossEntropy::new(), &["z", "t"])
        .output("loss", "loss");
    let model = g.build().unwrap();
    let z = Tensor::zeros(&[2, 3]);
    let run = |labels: &[i64]| {
        let t = IntTensor::from_slice(&[labels.len()], labels).unwrap();
        model.forward(&ctx, &mut State::new(), &[("z", Feed::from(&z)), ("t", Feed::from(&t))])
    };
    assert!(run(&[0, 2]).is_ok());
    assert!(matches!(run(&[0, 3]), Err(LayerError::InNode { .. })), "label range");
    assert!(run(&[0, -1]).unwrap_err().to_string().contains("out of range"));
    assert!(run(&[0]).is_err(), "label count");
}

/// A store holding one scalar weight `w`, with gradient `g`.
fn scalar(w: f32, g: f32) -> (Params, Grads) {
    let mut params = Params::new();
    params.add("w", Tensor::from_slice(&[1], &[w]).unwrap(), true).unwrap();
    let mut grads = Grads::new(&params);
    grads.get_mut(params.id("w").unwrap()).unwrap().data_mut()[0] = g;
    (params, grads)
}

fn value(params: &Params) -> f32 {
    params.value(params.id("w").unwrap()).data()[0]
}

fn set_grad(params: &Params, grads: &mut Grads, g: f32) {
    grads.get_mut(params.id("w").unwrap()).unwrap().data_mut()[0] = g;
}

#[test]
fn optimizers_match_hand_computed_updates() {
    // SGD with momentum 0.9, weight decay 0.1, lr 0.5, gradients 1 then 2, w0 = 1.
    let (mut p, mut g) = scalar(1.0, 1.0);
    let mut sgd = Sgd::new()
        .with_momentum(0.9, false)
        .unwrap()
        .with_weight_decay(0.1)
        .unwrap()
        .attach(&p, Select::Trainable)
        .unwrap();
    sgd.step(&mut p, &g, 0.5).unwrap(); // g = 1.1, v = 1.1, w = 1 - 0.55 = 0.45
    assert!((value(&p) - 0.45).abs() < 1e-6);
    set_grad(&p, &mut g, 2.0);
    sgd.step(&mut p, &g, 0.5).unwrap(); // g = 2.045, v = 0.99 + 2.045 = 3.035, w = 0.45 - 1.5175
    assert!((value(&p) - (0.45 - 1.5175)).abs() < 1e-5);

    // Nesterov: w -= lr (g + mu v).
    let (mut p, g) = scalar(1.0, 1.0);
    let mut nag = Sgd::new().with_momentum(0.5, true).unwrap().attach(&p, Select::Trainable).unwrap();
    nag.step(&mut p, &g, 0.1).unwrap(); // v = 1, w = 1 - 0.1 * 1.5
    assert!((value(&p) - 0.85).abs() < 1e-6);

    // Adam's first step moves by lr * g / (|g| + eps) = lr.
    let (mut p, g) = scalar(1.0, -3.0);
    let mut adam = Adam::new().attach(&p, Select::Trainable).unwrap();
    adam.step(&mut p, &g, 0.01).unwrap();
    assert!((value(&p) - 1.01).abs() < 1e-6);
    // AdamW decays the weight by lr * wd before the adaptive step.
    let (mut p, g) = scalar(2.0, 1.0);
    let mut adamw = Adam::adamw(0.5).unwrap().attach(&p, Select::Trainable).unwrap();
    adamw.step(&mut p, &g, 0.1).unwrap(); // 2 * (1 - 0.05) - 0.1
    assert!((value(&p) - 1.8).abs() < 1e-6);
    assert!(Sgd::new().with_momentum(1.5, false).is_err() && Adam::new().with_betas(1.0, 0.9).is_err());
}

#[test]
fn schedules() {
    let step = LrSchedule::Step { every: 10, gamma: 0.5 };
    assert_eq!((step.lr(1.0, 9), step.lr(1.0, 10), step.lr(1.0, 25)), (1.0, 0.5, 0.25));
    let cos = LrSchedule::Cosine { total: 100, min: 0.0 };
    assert!((cos.lr(1.0, 0) - 1.0).abs() < 1e-6 && (cos.lr(1.0, 50) - 0.5).abs() < 1e-6 && cos.lr(1.0, 100) < 1e-6);
    assert_eq!(LrSchedule::Constant.lr(0.3, 1000), 0.3);
    let sgdr = LrSchedule::CosineRestarts { period: 10, decay: 0.5, min: 0.0 };
    assert!((sgdr.lr(1.0, 0) - 1.0).abs() < 1e-6 && (sgdr.lr(1.0, 5) - 0.5).abs() < 1e-6 && sgdr.lr(1.0, 9) < 0.03);
    assert!(
        (sgdr.lr(1.0, 10) - 0.5).abs() < 1e-6 && (sgdr.lr(1.0, 25) - 0.125).abs() < 1e-6,
        "restarts at half the peak"
    );
}

/// A small CNN trained for a few steps: its weights after.
fn train_small(seed: u64, threads: usize) -> Vec<f32> {
    let ctx = Ctx::train(GemmConfig::new(Isa::current().unwrap(), threads).unwrap());
    let (mut g, last) = Sequential::new("x", &[4, 1, 8, 8], seed)
        .layer("c", |p| Ok(Conv2d::new(p, Conv2dSpec::new(1, 4, 3), Init::He)?.with_relu()))
        .add("p", MaxPool2d::new(PoolSpec::new(2, 2)))
        .add("d", Dropout::new(0.2, seed).unwrap())
        .add("f", Flatten::new())
        .layer("l", |p| Linear::new(p, 4 * 3 * 3, 3, Init::Glorot))
        .into_graph()
        .unwrap();
    g.int_input("t", &[4]).add("loss", SoftmaxCrossEntropy::new(), &[&last, "t"]).output("loss", "loss");
    let mut model = g.build().unwrap();
    let mut opt = Adam::new().attach(model.params(), Select::Trainable).unwrap();
    let (mut state, mut grads) = (State::new(), Grads::new(model.params()));
    let t = IntTensor::from_slice(&[4], &[0, 1, 2, 1]).unwrap();
    for step in 0..5 {
        let x = random_tensor(&[4, 1, 8, 8], 100 + step);
        grads.zero();
        model.forward(&ctx, &mut state, &[("x", Feed::from(&x)), ("t", Feed::from(&t))]).unwrap();
        model.backward_from(&ctx, &mut state, &mut grads, "loss").unwrap();
        opt.step(model.params_mut(), &grads, 0.01).unwrap();
    }
    let mut w = Vec::new();
    model.params().visit(&mut |_, t| w.extend_from_slice(t.data()));
    w
}

#[test]
fn training_is_deterministic_for_a_seed_on_any_thread_count() {
    let one = train_small(3, 1);
    for threads in [1, 2, 3] {
        assert_eq!(train_small(3, threads), one, "{threads} threads");
    }
    assert_ne!(one, train_small(4, 1));
}

#[test]
fn bad_shapes_are_errors_when_built() {
    let build = |shape: &[usize], body: &dyn Fn(&mut GraphBuilder)| {
        let mut g = GraphBuilder::new(1);
        g.input("x", shape);
        body(&mut g);
        g.output("y", "op");
        g.build()
    };
    let conv = |g: &mut GraphBuilder| {
        g.layer("op", |p| Conv2d::new(p, Conv2dSpec::new(3, 4, 3), Init::He), &["x"]);
    };
    assert!(build(&[1, 3, 5, 5], &conv).is_ok());
    assert!(build(&[1, 2, 5, 5], &conv).unwrap_err().to_string().contains("\"op\""), "channels, naming the node");
    assert!(build(&[1, 3, 2, 2], &conv).is_err(), "kernel larger than input");
    assert!(build(&[3, 5, 5], &conv).is_err(), "not 4-D");
    let bad_spec = |spec: Conv2dSpec| {
        move |g: &mut GraphBuilder| {
            g.layer("op", |p| Conv2d::new(p, spec, Init::He), &["x"]);
        }
    };
    assert!(build(&[1, 3, 5, 5], &bad_spec(Conv2dSpec::new(3, 4, 3).groups(2))).is_err(), "groups");
    assert!(build(&[1, 3, 5, 5], &bad_spec(Conv2dSpec::new(3, 4, 0))).is_err(), "zero kernel");
    let linear = |g: &mut GraphBuilder| {
        g.layer("op", |p| Linear::new(p, 4, 2, Init::He), &["x"]);
    };
    assert!(build(&[2, 5], &linear).is_err());
    assert!(build(&[2, 4], &|g| {
        g.layer("op", |p| Linear::new(p, 0, 2, Init::He), &["x"]);
    })
    .is_err());
    assert!(Tensor::from_slice(&[2, 2], &[1.0; 3]).is_err());
    assert!(matches!(Sequential::new("x", &[1], 1).build("y"), Err(LayerError::EmptySequential)));
    assert!(build(&[1, 1, 4, 4], &|g| {
        g.add("op", MaxPool2d::new(PoolSpec::new(3, 1).pad(2)), &["x"]);
    })
    .is_err());
    assert!(build(&[2, 4], &|g| {
        g.layer("op", |p| BatchNorm::new(p, 3), &["x"]);
    })
    .is_err());
    assert!(
        build(&[2, 3, 4], &|g| {
            g.add("op", Add::new(), &["x", "x2"]);
        })
        .is_err(),
        "an unknown name"
    );
    let two = |g: &mut GraphBuilder| {
        g.input("x2", &[2, 3, 5]).add("op", Add::new(), &["x", "x2"]);
    };
    assert!(matches!(build(&[2, 3, 4], &two), Err(LayerError::InNode { .. })), "elementwise shapes");
}

/// `y = 2x` with a backward pass that forgets the factor: the checker must catch it.
struct WrongBackward;

impl Op for WrongBackward {
    fn describe(&self) -> String {
        "wrong".into()
    }
    fn infer(&self, inputs: &[op::ValueInfo], _: &Params) -> Result<Vec<op::ValueInfo>, LayerError> {
        Ok(inputs.to_vec())
    }
    fn forward(
        &self,
        _: &op::OpCtx,
        inputs: &[ValueRef],
        outputs: &mut op::Outputs,
        _: &mut op::OpState,
    ) -> Result<(), LayerError> {
        let x = inputs[0].f32("wrong")?;
        outputs[0].resize(x.shape);
        outputs[0].data_mut().iter_mut().zip(x.data).for_each(|(y, &v)| *y = 2.0 * v);
        Ok(())
    }
    fn backward(&self, _: &op::OpCtx, io: op::Backward) -> Result<(), LayerError> {
        if let Some(dx) = io.d_inputs[0].as_deref_mut() {
            dx.resize(io.d_outputs[0].shape);
            dx.data_mut().copy_from_slice(io.d_outputs[0].data);
        }
        Ok(())
    }
}

#[test]
fn gradient_checker_catches_a_wrong_backward_pass() {
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, 3]).add("op", WrongBackward, &["x"]).output("y", "op");
    let mut model = g.build().unwrap();
    let mut inputs = CheckInputs::new().with("x", random_tensor(&[2, 3], 1));
    let r = check_model(&mut model, &contexts()[0], &mut inputs, "y", 1e-2, 10, 1).unwrap();
    assert!(r.max_error > 0.3, "{r:?}");
}

/// In evaluation mode a convolution reuses weights prepared once (the Winograd filter
/// transform), and prepares them again whenever its parameters may have changed or the
/// input size does.
#[test]
fn eval_convolution_reprepares_when_weights_or_sizes_change() {
    let cfg = contexts()[0].cfg;
    let mut g = GraphBuilder::new(5);
    g.input("x", &[1, 16, 16, 16])
        .layer("c", |p| Conv2d::new(p, Conv2dSpec::new(16, 16, 3).pad(1), Init::He), &["x"])
        .output("y", "c");
    let mut model = g.build().unwrap();
    let run = |model: &Model, ctx: Ctx, x: &Tensor| {
        let mut state = State::new();
        model.forward(&ctx, &mut state, &[("x", Feed::from(x))]).unwrap();
        model.output(&state, "y").unwrap().data.to_vec()
    };
    let x = random_tensor(&[1, 16, 16, 16], 60);
    let y1 = run(&model, Ctx::eval(cfg), &x);
    let close = |a: &[f32], b: &[f32], k: f32| a.iter().zip(b).all(|(p, q)| (p - k * q).abs() < 1e-3);
    assert!(close(&y1, &run(&model, Ctx::train(cfg), &x), 1.0), "prepared inference agrees with the per-call path");
    assert_eq!(y1, run(&model, Ctx::eval(cfg), &x), "the second call reuses the preparation");
    let w = model.params().id("c.weight").unwrap();
    model.params_mut().value_mut(w).data_mut().iter_mut().for_each(|v| *v *= 2.0);
    let y2 = run(&model, Ctx::eval(cfg), &x);
    assert!(close(&y2, &y1, 2.0), "new weights are seen (bias is zero, so the output doubles)");
    let bigger = random_tensor(&[2, 16, 20, 12], 61);
    let y3 = run(&model, Ctx::eval(cfg), &bigger);
    assert_eq!(y3.len(), 2 * 16 * 20 * 12);
    assert!(close(&y3, &run(&model, Ctx::train(cfg), &bigger), 1.0));
}

/// The zoo's ops: adaptive pooling (windows that overlap and do not divide the input, and
/// an output larger than the input), channel gathers (a channel taken twice adds both
/// gradients), per-channel affine maps, RBF units and LeCun's scaled tanh.
#[test]
fn zoo_op_gradients() {
    let x = random_tensor(&[2, 3, 7, 6], 21);
    check("adaptive avgpool 3x4", &x, &|g| {
        g.add("op", AdaptiveAvgPool2d::new(3, 4), &["x"]);
    });
    check("adaptive avgpool 9x8", &x, &|g| {
        g.add("op", AdaptiveAvgPool2d::new(9, 8), &["x"]);
    });
    check("channel select", &x, &|g| {
        g.add("op", ChannelSelect::new(&[2, 0, 2]), &["x"]);
    });
    check("channel affine", &x, &|g| {
        g.layer("op", |p| ChannelAffine::new(p, 3), &["x"]);
    });
    let v = random_tensor(&[4, 6], 22);
    check("rbf", &v, &|g| {
        g.layer("op", |p| Rbf::new(p, 6, 5), &["x"]);
    });
    check("lecun tanh", &v, &|g| {
        g.add("op", Activation::lecun_tanh(), &["x"]);
    });
}

/// Entries in no order, a repeated one, a self-loop, and an empty output row (4).
fn sparse_index() -> IntTensor {
    // Row 0: targets; row 1: sources.
    IntTensor::from_slice(&[2, 7], &[1, 0, 3, 1, 2, 0, 1, 2, 4, 0, 2, 3, 2, 4]).unwrap()
}

#[test]
fn sparse_matmul_gradients() {
    let x = random_tensor(&[5, 3], 3);
    let values = random_tensor(&[7], 4);
    let inputs = CheckInputs::new().with("x", x.clone()).with("v", values).with_int("index", sparse_index());
    check_with("sparse matmul weighted", inputs, &|g| {
        g.layer("op", |_| Ok(SparseMatMul::square()), &["index", "v", "x"]);
    });
    let inputs = CheckInputs::new().with("x", x.clone()).with_int("index", sparse_index());
    check_with("sparse matmul unweighted", inputs, &|g| {
        g.layer("op", |_| Ok(SparseMatMul::with_rows(6)), &["index", "x"]);
    });
    // Sparse features times a learned weight, plus a learned bias: a GCN layer's product.
    let inputs = CheckInputs::new().with("v", random_tensor(&[7], 5)).with_int("index", sparse_index());
    check_with("sparse features times a weight", inputs, &|g| {
        g.layer(
            "w",
            |p| Weight::new(p, &[5, 4], Fill::Random { init: Init::Glorot, fan_in: 5, fan_out: 4 }, true),
            &[],
        )
        .layer("xw", |_| Ok(SparseMatMul::with_rows(5)), &["index", "v", "w"])
        .layer("b", |p| Weight::new(p, &[4], Fill::Constant(0.5), false), &[])
        .layer("op", |_| Ok(Add::new()), &["xw", "b"]);
    });
}

#[test]
fn sparse_matmul_follows_a_changed_index_and_rejects_bad_ones() {
    let ctx = contexts()[0];
    let mut g = GraphBuilder::new(1);
    g.input("x", &[3, 2]).int_input("index", &[2, 2]).layer("op", |_| Ok(SparseMatMul::square()), &["index", "x"]);
    g.output("y", "op");
    let model = g.build().unwrap();
    let mut state = State::new();
    let x = Tensor::from_slice(&[3, 2], &[1.0, 2.0, 10.0, 20.0, 100.0, 200.0]).unwrap();
    let run = |state: &mut State, index: &[i64]| -> Result<Vec<f32>, LayerError> {
        let index = IntTensor::from_slice(&[2, index.len() / 2], index).unwrap();
        model.forward(&ctx, state, &[("x", Feed::from(&x)), ("index", Feed::from(&index))])?;
        Ok(model.output(state, "y")?.data.to_vec())
    };
    // y[0] = x[1] + x[2]; then y[2] = x[0] + x[0].
    assert_eq!(run(&mut state, &[0, 0, 1, 2]).unwrap(), vec![110.0, 220.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(run(&mut state, &[2, 2, 0, 0]).unwrap(), vec![0.0, 0.0, 0.0, 0.0, 2.0, 4.0]);
    let bad = run(&mut state, &[0, 3, 1, 2]);
    assert!(matches!(bad, Err(LayerError::IndexRange { .. }) | Err(LayerError::InNode { .. })), "{bad:?}");
    assert!(format!("{}", bad.unwrap_err()).contains("3"), "names the bad index");
}

#[test]
fn sampled_dot_gradients() {
    // Pairs in no order, a repeated one, a self-pair.
    let pairs = IntTensor::from_slice(&[2, 5], &[0, 3, 1, 0, 2, 2, 1, 1, 2, 2]).unwrap();
    let inputs = CheckInputs::new().with("z", random_tensor(&[4, 3], 6)).with_int("pairs", pairs.clone());
    check_with("sampled dot, one operand", inputs, &|g| {
        g.layer("op", |_| Ok(SampledDot::new()), &["pairs", "z"]);
    });
    let inputs = CheckInputs::new()
        .with("u", random_tensor(&[4, 3], 7))
        .with("v", random_tensor(&[3, 3], 8))
        .with_int("pairs", pairs);
    check_with("sampled dot, two operands", inputs, &|g| {
        g.layer("op", |_| Ok(SampledDot::new()), &["pairs", "u", "v"]);
    });
}

#[test]
fn gaussian_kl_gradients_and_value() {
    let inputs = CheckInputs::new().with("mu", random_tensor(&[3, 2], 9)).with("logstd", random_tensor(&[3, 2], 10));
    check_with("gaussian kl", inputs, &|g| {
        g.layer("op", |_| Ok(GaussianKl::new(0.5)), &["mu", "logstd"]);
    });
    // N(0, 1) itself: no divergence.
    let ctx = contexts()[0];
    let mut g = GraphBuilder::new(1);
    g.input("mu", &[2, 2])
        .input("s", &[2, 2])
        .layer("kl", |_| Ok(GaussianKl::new(1.0)), &["mu", "s"])
        .output("y", "kl");
    let model = g.build().unwrap();
    let mut state = State::new();
    let zeros = Tensor::zeros(&[2, 2]);
    model.forward(&ctx, &mut state, &[("mu", Feed::from(&zeros)), ("s", Feed::from(&zeros))]).unwrap();
    assert_eq!(model.output(&state, "y").unwrap().data, &[0.0]);
}

/// The sample is random, so its gradient is checked against the noise it drew.
#[test]
fn gaussian_sample_passes_gradients_through_its_noise() {
    let ctx = contexts()[0];
    let mut g = GraphBuilder::new(1);
    g.input("mu", &[50, 4])
        .input("s", &[50, 4])
        .layer("z", |_| Ok(GaussianSample::new(3)), &["mu", "s"])
        .output("z", "z");
    let model = g.build().unwrap();
    let (mu, s) = (random_tensor(&[50, 4], 1), random_tensor(&[50, 4], 2));
    let mut state = State::new();
    state.keep_input_grads(true);
    model.forward(&ctx, &mut state, &[("mu", Feed::from(&mu)), ("s", Feed::from(&s))]).unwrap();
    let z = model.output(&state, "z").unwrap().data.to_vec();
    let eps: Vec<f32> = z.iter().zip(mu.data()).zip(s.data()).map(|((z, m), s)| (z - m) / s.exp()).collect();
    let mean = eps.iter().sum::<f32>() / eps.len() as f32;
    let var = eps.iter().map(|e| (e - mean).powi(2)).sum::<f32>() / eps.len() as f32;
    assert!(mean.abs() < 0.25 && (var - 1.0).abs() < 0.3, "noise mean {mean}, variance {var}");
    let dz = random_tensor(&[50, 4], 3);
    let mut grads = Grads::new(model.params());
    model.backward(&ctx, &mut state, &mut grads, &[("z", dz.as_ref())]).unwrap();
    let ds = model.input_grad(&state, "s").unwrap().data.to_vec();
    for k in 0..ds.len() {
        let want = dz.data()[k] * eps[k] * s.data()[k].exp();
        assert!((ds[k] - want).abs() < 1e-4, "d logstd[{k}] {} against {want}", ds[k]);
    }
    assert_eq!(model.input_grad(&state, "mu").unwrap().data, dz.data(), "dz passes to mu unchanged");
}

/// Edges of two types (row 0 targets, row 1 sources) with a repeated edge, a self-loop and
/// a node without incoming edges (4); the types of the 7 edges.
fn typed_edges() -> (IntTensor, IntTensor) {
    (sparse_index(), IntTensor::from_slice(&[7], &[1, 0, 1, 1, 0, 0, 1]).unwrap())
}

#[test]
fn aggregation_gradients() {
    let (index, types) = typed_edges();
    for kind in [SegmentKind::Sum, SegmentKind::Mean, SegmentKind::Max] {
        // Separated values keep the maximum's winner fixed under the nudges.
        let inputs = CheckInputs::new().with("x", separated(&[5, 3], 11)).with_int("index", index.clone());
        check_with(&format!("aggregate {kind:?}"), inputs, &|g| {
            g.layer("op", move |_| Ok(Aggregate::new(kind)), &["index", "x"]);
        });
        let inputs = CheckInputs::new()
            .with("x", separated(&[5, 6], 12))
            .with_int("index", index.clone())
            .with_int("types", types.clone());
        check_with(&format!("aggregate {kind:?}, two edge types"), inputs, &|g| {
            g.layer("op", move |_| Ok(Aggregate::typed(kind, 2)), &["index", "x", "types"]);
        });
    }
}

#[test]
fn aggregation_values_on_a_small_graph() {
    let ctx = contexts()[0];
    let (index, types) = typed_edges();
    // x[j] = [j, -j] for type 0 and [10 j, -10 j] for type 1.
    let x: Vec<f32> = (0..5).flat_map(|j| [j as f32, -(j as f32), 10.0 * j as f32, -10.0 * j as f32]).collect();
    let x = Tensor::from_slice(&[5, 4], &x).unwrap();
    let run = |kind| {
        let mut g = GraphBuilder::new(1);
        g.input("x", &[5, 4]).int_input("index", &[2, 7]).int_input("types", &[7]);
        g.layer("op", move |_| Ok(Aggregate::typed(kind, 2)), &["index", "x", "types"]).output("y", "op");
        let model = g.build().unwrap();
        let mut state = State::new();
        let feeds = [("x", Feed::from(&x)), ("index", Feed::from(&index)), ("types", Feed::from(&types))];
        model.forward(&ctx, &mut state, &feeds).unwrap();
        model.output(&state, "y").unwrap().data.to_vec()
    };
    // Edges (target <- source, type): 1<-2 (1), 0<-4 (0), 3<-0 (1), 1<-2 (1), 2<-3 (0),
    // 0<-2 (0), 1<-4 (1). Node 4 receives nothing.
    let sum = run(SegmentKind::Sum);
    assert_eq!(sum, vec![6.0, -6.0, 80.0, -80.0, 3.0, -3.0, 0.0, 0.0, 0.0, 0.0]);
    let max = run(SegmentKind::Max);
    assert_eq!(max, vec![4.0, -2.0, 40.0, -20.0, 3.0, -3.0, 0.0, 0.0, 0.0, 0.0]);
    let mean = run(SegmentKind::Mean);
    assert!((mean[2] - 80.0 / 3.0).abs() < 1e-5 && (mean[0] - 3.0).abs() < 1e-6, "{mean:?}");
}

#[test]
fn fixed_point_gradients_and_convergence() {
    let inputs = CheckInputs::new().with("b", random_tensor(&[5, 3], 13)).with_int("index", sparse_index());
    check_with("fixed point", inputs, &|g| {
        g.layer(
            "v",
            |p| Weight::new(p, &[3, 3], Fill::Random { init: Init::Glorot, fan_in: 3, fan_out: 3 }, true),
            &[],
        )
        .layer("w", |_| Ok(NormBound::new(0.9)), &["v"])
        .layer("op", |_| Ok(FixedPoint::new(1e-7, 500)), &["index", "w", "b"]);
    });
    // A weight outside the ball: the bound's projection is differentiated too.
    let inputs = CheckInputs::new().with("v", random_tensor(&[3, 3], 14)).with("b", random_tensor(&[5, 3], 15));
    check_with("norm bound", inputs.clone().with_int("index", sparse_index()), &|g| {
        g.layer("w", |_| Ok(NormBound::new(0.5)), &["v"]).layer("op", |_| Ok(MatMul::new()), &["b", "w"]);
    });
    // The states satisfy x = tanh(P x W + b), and the iteration count is reported.
    let ctx = contexts()[0];
    let mut g = GraphBuilder::new(3);
    g.input("b", &[5, 3]).input("w", &[3, 3]).int_input("index", &[2, 7]);
    g.layer("op", |_| Ok(FixedPoint::new(1e-6, 200)), &["index", "w", "b"]).output("x", "op").output("n", "op:1");
    let model = g.build().unwrap();
    let (b, index) = (random_tensor(&[5, 3], 16), sparse_index());
    let w = Tensor::from_slice(&[3, 3], &[0.5, -0.2, 0.1, 0.3, 0.4, -0.1, 0.0, 0.2, 0.5]).unwrap();
    let mut state = State::new();
    model
        .forward(&ctx, &mut state, &[("b", Feed::from(&b)), ("w", Feed::from(&w)), ("index", Feed::from(&index))])
        .unwrap();
    let x = model.output(&state, "x").unwrap().data.to_vec();
    let iterations = model.output(&state, "n").unwrap().data[0];
    assert!((2.0..200.0).contains(&iterations), "converged in {iterations} iterations");
    let (t, s) = (&index.data()[..7], &index.data()[7..]);
    for v in 0..5 {
        let incoming: Vec<usize> = (0..7).filter(|&e| t[e] as usize == v).map(|e| s[e] as usize).collect();
        for c in 0..3 {
            let mut z = b.data()[v * 3 + c] as f64;
            for k in 0..3 {
                let m: f64 = incoming.iter().map(|&u| x[u * 3 + k] as f64).sum::<f64>() / incoming.len().max(1) as f64;
                z += m * w.data()[k * 3 + c] as f64;
            }
            assert!((z.tanh() - x[v * 3 + c] as f64).abs() < 1e-5, "node {v} feature {c} is not at the fixed point");
        }
    }
}

#[test]
fn message_passing_layer_gradients() {
    use simdnn::layers::message_passing::{Edges, MessagePassing, Update};
    let (index, types) = typed_edges();
    for update in [Update::Linear(Some(ActivationKind::Tanh)), Update::Linear(None), Update::Gru] {
        let layer = MessagePassing { input: 3, output: 3, edge_types: 2, aggregate: SegmentKind::Mean, update };
        let inputs = CheckInputs::new()
            .with("h", random_tensor(&[5, 3], 17))
            .with_int("index", index.clone())
            .with_int("types", types.clone());
        check_with(&format!("message passing {update:?}"), inputs, &|g| {
            let w = layer.weights(g, "mp").unwrap();
            let edges = Edges { index: "index", types: Some("types") };
            // Two steps with the same weights, as a gated graph network runs them.
            let h1 = layer.apply(g, &w, "step1", "h", edges).unwrap();
            layer.apply(g, &w, "op", &h1, edges).unwrap();
        });
    }
}

#[test]
fn message_passing_runs_the_same_in_training_and_evaluation() {
    use simdnn::layers::message_passing::{Edges, MessagePassing, Update};
    let (index, types) = typed_edges();
    let h = random_tensor(&[5, 3], 18);
    for update in [Update::Linear(Some(ActivationKind::Tanh)), Update::Gru] {
        let layer = MessagePassing { input: 3, output: 3, edge_types: 2, aggregate: SegmentKind::Sum, update };
        let mut g = GraphBuilder::new(5);
        g.input("h", &[5, 3]).int_input("index", &[2, 7]).int_input("types", &[7]);
        let w = layer.weights(&mut g, "mp").unwrap();
        let edges = Edges { index: "index", types: Some("types") };
        let h1 = layer.apply(&mut g, &w, "step1", "h", edges).unwrap();
        let h2 = layer.apply(&mut g, &w, "step2", &h1, edges).unwrap();
        g.output("y", &h2);
        let model = g.build().unwrap();
        let feeds = [("h", Feed::from(&h)), ("index", Feed::from(&index)), ("types", Feed::from(&types))];
        let run = |ctx: Ctx| {
            let mut state = State::new();
            model.forward(&ctx, &mut state, &feeds).unwrap();
            model.output(&state, "y").unwrap().data.to_vec()
        };
        let cfg = contexts()[0].cfg;
        assert_eq!(run(Ctx::train(cfg)), run(Ctx::eval(cfg)), "{update:?}");
    }
}
