//! Every layer's backward pass against finite differences (on every ISA path and on two
//! threads), the losses' gradients, optimizers against hand-computed updates, BatchNorm
//! folding, determinism and bad-input errors.

mod common;

use common::gemm_configs;
use simdnn::kernels::gemm::GemmConfig;
use simdnn::layers::gradcheck::{check_layer, random_tensor};
use simdnn::layers::*;

/// Finite differences in f32 with `eps = 1e-2` agree to about 1e-3 on smooth layers.
const TOL: f64 = 5e-3;

fn contexts() -> Vec<Ctx> {
    let mut c: Vec<Ctx> = gemm_configs(1).into_iter().map(Ctx::train).collect();
    c.push(Ctx::train(GemmConfig::new(simdnn::kernels::Isa::current().unwrap(), 2).unwrap()));
    c
}

fn check(name: &str, make: &dyn Fn() -> Box<dyn Layer>, x: &Tensor) {
    for ctx in contexts() {
        let mut layer = make();
        let r = check_layer(layer.as_mut(), &ctx, x, 1e-2, 60, 99).unwrap_or_else(|e| panic!("{name}: {e}"));
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

fn rng() -> init::Rng {
    init::rng(5)
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
        check(&format!("{spec:?}"), &|| Box::new(Conv2d::new(spec, Init::He, &mut rng()).unwrap()), &x);
    }
}

/// Fused ReLU epilogues (convolution, linear) against the same layer followed by a ReLU
/// layer: finite differences would straddle the kink wherever a pre-activation is near 0.
#[test]
fn fused_relu_equals_layer_then_relu() {
    type Make = fn() -> Box<dyn Layer>;
    let cases: [(Make, Make, Vec<usize>); 2] = [
        (
            || Box::new(Conv2d::new(Conv2dSpec::new(3, 4, 3), Init::He, &mut rng()).unwrap().with_relu()),
            || Box::new(Conv2d::new(Conv2dSpec::new(3, 4, 3), Init::He, &mut rng()).unwrap()),
            vec![2, 3, 6, 6],
        ),
        (
            || Box::new(Linear::new(7, 5, Init::He, &mut rng()).unwrap().with_relu()),
            || Box::new(Linear::new(7, 5, Init::He, &mut rng()).unwrap()),
            vec![3, 7],
        ),
    ];
    for ctx in contexts() {
        for (fused, plain, shape) in &cases {
            let x = random_tensor(shape, 2);
            let mut a = fused();
            let mut b = Sequential::new();
            b.push("l", plain());
            b.push("r", Box::new(Activation::relu()));
            let ya = a.forward(&ctx, &x).unwrap().clone();
            assert_eq!(&ya, b.forward(&ctx, &x).unwrap(), "{}", a.describe());
            let dy = random_tensor(ya.shape(), 3);
            let dxa = a.backward(&ctx, &x, &dy).unwrap().clone();
            assert_eq!(&dxa, b.backward(&ctx, &x, &dy).unwrap(), "{} input gradient", a.describe());
            let (mut ga, mut gb) = (Vec::new(), Vec::new());
            a.visit_params("", &mut |_, p| ga.push(p.grad.clone()));
            b.visit_params("", &mut |_, p| gb.push(p.grad.clone()));
            assert_eq!(ga, gb, "{} parameter gradients", a.describe());
        }
    }
}

#[test]
fn pooling_gradients() {
    let x = separated(&[2, 3, 7, 7], 3);
    check("maxpool", &|| Box::new(MaxPool2d::new(PoolSpec::new(3, 2).pad(1))), &x);
    check("relu+maxpool", &|| Box::new(MaxPool2d::new(PoolSpec::new(2, 2)).with_relu()), &x);
    check("maxpool ceil", &|| Box::new(MaxPool2d::new(PoolSpec::new(2, 2).ceil_mode())), &x);
    let x = random_tensor(&[2, 3, 7, 6], 4);
    check("avgpool", &|| Box::new(AvgPool2d::new(PoolSpec::new(3, 2).pad(1))), &x);
    check("avgpool no pad", &|| Box::new(AvgPool2d::new(PoolSpec::new(3, 2).pad(1).ceil_mode()).exclude_pad()), &x);
    check("global avgpool", &|| Box::new(GlobalAvgPool::new()), &x);
}

#[test]
fn dense_and_elementwise_gradients() {
    let x = random_tensor(&[5, 7], 5);
    check("linear", &|| Box::new(Linear::new(7, 4, Init::Glorot, &mut rng()).unwrap()), &x);
    let xs = separated(&[5, 7], 6);
    check("linear+relu", &|| Box::new(Linear::new(7, 4, Init::He, &mut rng()).unwrap().with_relu()), &xs);
    check("relu", &|| Box::new(Activation::relu()), &xs);
    check("sigmoid", &|| Box::new(Activation::sigmoid()), &x);
    check("tanh", &|| Box::new(Activation::tanh()), &x);
    check("softmax", &|| Box::new(Softmax::new()), &x);
    let x4 = random_tensor(&[2, 3, 2, 2], 7);
    check("flatten", &|| Box::new(Flatten::new()), &x4);
    check("identity", &|| Box::new(Identity::new()), &x4);
}

#[test]
fn batch_norm_gradients_in_both_modes() {
    for shape in [vec![6, 4], vec![3, 4, 3, 2]] {
        let x = random_tensor(&shape, 8);
        check("batchnorm train", &|| Box::new(BatchNorm::new(4).unwrap()), &x);
        for ctx in contexts() {
            let mut bn = BatchNorm::new(4).unwrap();
            bn.forward(&ctx, &x).unwrap(); // moves the running statistics away from 0 / 1
            let eval = Ctx::eval(ctx.cfg);
            let r = check_layer(&mut bn, &eval, &x, 1e-2, 60, 3).unwrap();
            assert!(r.max_error < TOL, "batchnorm eval: {}", r.worst);
        }
    }
}

#[test]
fn batch_norm_normalises_and_tracks_statistics() {
    let ctx = contexts()[0];
    let mut x = random_tensor(&[8, 2, 3, 3], 9);
    x.data_mut().iter_mut().for_each(|v| *v = 3.0 * *v + 5.0);
    let mut bn = BatchNorm::new(2).unwrap();
    let y = bn.forward(&ctx, &x).unwrap().clone();
    for c in 0..2 {
        let vals: Vec<f32> = y.data().chunks_exact(18).flat_map(|img| img[c * 9..c * 9 + 9].to_vec()).collect();
        let mean = vals.iter().sum::<f32>() / vals.len() as f32;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / vals.len() as f32;
        assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3, "channel {c}: mean {mean}, var {var}");
    }
    let (_, _, rm, _, _) = bn.statistics();
    assert!(rm.iter().all(|&m| (m - 0.5).abs() < 0.1), "running mean moved by momentum 0.1 toward ~5: {rm:?}");
}

#[test]
fn composite_gradients() {
    let x = random_tensor(&[2, 3, 5, 5], 10);
    let body = || {
        Sequential::new()
            .add("a", Conv2d::new(Conv2dSpec::new(3, 3, 3).pad(1), Init::He, &mut rng()).unwrap())
            .add("t", Activation::tanh())
            .add("b", Conv2d::new(Conv2dSpec::new(3, 3, 3).pad(1), Init::He, &mut rng()).unwrap())
    };
    check("residual", &|| Box::new(Residual::new(body())), &x);
    let proj =
        || Sequential::new().add("p", Conv2d::new(Conv2dSpec::new(3, 4, 1).stride(2), Init::He, &mut rng()).unwrap());
    let strided = || {
        Sequential::new()
            .add("a", Conv2d::new(Conv2dSpec::new(3, 4, 3).pad(1).stride(2), Init::He, &mut rng()).unwrap())
            .add("s", Activation::sigmoid())
    };
    check("residual projection", &|| Box::new(Residual::new(strided()).with_shortcut(proj())), &x);
    let fire = || {
        Concat::new(vec![
            Sequential::new().add("e1", Conv2d::new(Conv2dSpec::new(3, 2, 1), Init::He, &mut rng()).unwrap()),
            Sequential::new().add("e3", Conv2d::new(Conv2dSpec::new(3, 3, 3).pad(1), Init::He, &mut rng()).unwrap()),
            Sequential::new().add("id", Identity::new()),
        ])
    };
    check("concat", &|| Box::new(fire()), &x);
    let chain = || {
        Sequential::new()
            .add("c", Conv2d::new(Conv2dSpec::new(3, 4, 3), Init::He, &mut rng()).unwrap())
            .add("bn", BatchNorm::new(4).unwrap())
            .add("p", AvgPool2d::new(PoolSpec::new(2, 1)))
            .add("f", Flatten::new())
            .add("l", Linear::new(4 * 2 * 2, 3, Init::Glorot, &mut rng()).unwrap())
    };
    check("sequential", &|| Box::new(chain()), &x);
}

#[test]
fn dropout_scales_survivors_and_routes_gradients_through_the_mask() {
    let ctx = contexts()[0];
    let x = Tensor::from_slice(&[1, 10000], &vec![1.0; 10000]).unwrap();
    let mut d = Dropout::new(0.3, 1).unwrap();
    let y = d.forward(&ctx, &x).unwrap().clone();
    let dropped = y.data().iter().filter(|&&v| v == 0.0).count();
    assert!((2700..3300).contains(&dropped), "dropped {dropped} of 10000 at p = 0.3");
    assert!(y.data().iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    let dy = random_tensor(&[1, 10000], 2);
    let dx = d.backward(&ctx, &x, &dy).unwrap();
    for ((&g, &d), &yv) in dx.data().iter().zip(dy.data()).zip(y.data()) {
        assert_eq!(g, d * yv, "the gradient passes exactly where the value did, with the same scale");
    }
    let eval = Ctx::eval(ctx.cfg);
    assert_eq!(d.forward(&eval, &x).unwrap().data(), x.data(), "inactive in eval mode");
    assert!(Dropout::new(1.0, 0).is_err() && Dropout::new(-0.1, 0).is_err());
}

/// Central differences of a loss function of the logits.
fn numeric_grad(z: &Tensor, eps: f32, loss: &mut dyn FnMut(&Tensor) -> f32) -> Vec<f64> {
    let mut zp = z.clone();
    (0..z.len())
        .map(|i| {
            zp.data_mut()[i] = z.data()[i] + eps;
            let up = loss(&zp) as f64;
            zp.data_mut()[i] = z.data()[i] - eps;
            let down = loss(&zp) as f64;
            zp.data_mut()[i] = z.data()[i];
            (up - down) / (2.0 * eps as f64)
        })
        .collect()
}

fn assert_grad(what: &str, analytic: &Tensor, numeric: &[f64]) {
    for (i, (&a, &n)) in analytic.data().iter().zip(numeric).enumerate() {
        assert!((a as f64 - n).abs() < 2e-3 * (1.0 + n.abs()), "{what}[{i}]: analytic {a}, numeric {n}");
    }
}

#[test]
fn loss_gradients() {
    let isa = simdnn::kernels::Isa::current().unwrap();
    let z = random_tensor(&[4, 5], 11);
    let labels = [0, 4, 2, 2];
    let mut ce = SoftmaxCrossEntropy::new();
    let (_, g) = ce.forward_backward(isa, &z, &labels).unwrap();
    let g = g.clone();
    let n = numeric_grad(&z, 1e-2, &mut |z| SoftmaxCrossEntropy::new().forward(isa, z, &labels).unwrap());
    assert_grad("cross-entropy", &g, &n);

    let t = random_tensor(&[4, 5], 12);
    let (_, g) = MeanSquaredError::new().forward_backward(&z, &t).map(|(l, g)| (l, g.clone())).unwrap();
    let n = numeric_grad(&z, 1e-2, &mut |z| MeanSquaredError::new().forward_backward(z, &t).unwrap().0);
    assert_grad("mse", &g, &n);

    let mut t01 = random_tensor(&[4, 5], 13);
    t01.data_mut().iter_mut().for_each(|v| *v = (*v + 1.0) / 2.0);
    let (_, g) = BceWithLogits::new().forward_backward(isa, &z, &t01).map(|(l, g)| (l, g.clone())).unwrap();
    let n = numeric_grad(&z, 1e-2, &mut |z| BceWithLogits::new().forward_backward(isa, z, &t01).unwrap().0);
    assert_grad("bce", &g, &n);
}

#[test]
fn losses_are_stable_and_exact_on_known_values() {
    let isa = simdnn::kernels::Isa::current().unwrap();
    // Logits of 1e4: a naive softmax overflows; the loss of the right class is ~0, of a
    // wrong class the logit gap.
    let z = Tensor::from_slice(&[2, 3], &[1e4, 0.0, -1e4, 1e4, 0.0, -1e4]).unwrap();
    let mut ce = SoftmaxCrossEntropy::new();
    let loss = ce.forward(isa, &z, &[0, 1]).unwrap();
    assert!((loss - 5e3).abs() < 1.0, "mean of 0 and 1e4: {loss}");
    let (_, g) = ce.forward_backward(isa, &z, &[0, 1]).unwrap();
    assert!(g.data().iter().all(|v| v.is_finite()));
    // Uniform logits: log(classes).
    let u = Tensor::zeros(&[3, 10]);
    assert!((ce.forward(isa, &u, &[1, 2, 3]).unwrap() - 10f32.ln()).abs() < 1e-6);
    let big = Tensor::from_slice(&[1, 2], &[100.0, -100.0]).unwrap();
    let t = Tensor::from_slice(&[1, 2], &[0.0, 1.0]).unwrap();
    let (l, _) = BceWithLogits::new().forward_backward(isa, &big, &t).unwrap();
    assert!((l - 100.0).abs() < 1e-3, "bce of two logits 100 wrong by 100: {l}");
    assert!(ce.forward(isa, &z, &[0]).is_err(), "label count");
    assert!(ce.forward(isa, &z, &[0, 3]).is_err(), "label range");
}

/// A one-parameter network: a bias-free 1x1 linear layer.
fn scalar_net(w: f32) -> Linear {
    let mut l = Linear::new(1, 1, Init::He, &mut rng()).unwrap().without_bias();
    l.visit_params("", &mut |_, p| p.value.data_mut()[0] = w);
    l
}

fn set_grad(l: &mut Linear, g: f32) {
    l.visit_params("", &mut |_, p| p.grad.data_mut()[0] = g);
}

fn weight(l: &mut Linear) -> f32 {
    let mut w = 0.0;
    l.visit_params("", &mut |_, p| w = p.value.data()[0]);
    w
}

#[test]
fn optimizers_match_hand_computed_updates() {
    // SGD with momentum 0.9, weight decay 0.1, lr 0.5, gradients 1 then 2, w0 = 1.
    let mut l = scalar_net(1.0);
    let mut sgd = Sgd::new().with_momentum(0.9, false).unwrap().with_weight_decay(0.1).unwrap();
    set_grad(&mut l, 1.0);
    sgd.step(&mut l, 0.5).unwrap(); // g = 1.1, v = 1.1, w = 1 - 0.55 = 0.45
    assert!((weight(&mut l) - 0.45).abs() < 1e-6);
    set_grad(&mut l, 2.0);
    sgd.step(&mut l, 0.5).unwrap(); // g = 2.045, v = 0.99 + 2.045 = 3.035, w = 0.45 - 1.5175
    assert!((weight(&mut l) - (0.45 - 1.5175)).abs() < 1e-5);

    // Nesterov: w -= lr (g + mu v).
    let mut l = scalar_net(1.0);
    let mut nag = Sgd::new().with_momentum(0.5, true).unwrap();
    set_grad(&mut l, 1.0);
    nag.step(&mut l, 0.1).unwrap(); // v = 1, w = 1 - 0.1 * 1.5
    assert!((weight(&mut l) - 0.85).abs() < 1e-6);

    // Adam's first step moves by lr * g / (|g| + eps) = lr.
    let mut l = scalar_net(1.0);
    let mut adam = Adam::new();
    set_grad(&mut l, -3.0);
    adam.step(&mut l, 0.01).unwrap();
    assert!((weight(&mut l) - 1.01).abs() < 1e-6);
    // AdamW decays the weight by lr * wd before the adaptive step.
    let mut l = scalar_net(2.0);
    let mut adamw = Adam::adamw(0.5).unwrap();
    set_grad(&mut l, 1.0);
    adamw.step(&mut l, 0.1).unwrap(); // 2 * (1 - 0.05) - 0.1
    assert!((weight(&mut l) - 1.8).abs() < 1e-6);
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

/// A small CNN trained for a few steps.
fn train_small(seed: u64, threads: usize) -> Vec<f32> {
    let cfg = GemmConfig::new(simdnn::kernels::Isa::current().unwrap(), threads).unwrap();
    let ctx = Ctx::train(cfg);
    let mut r = init::rng(seed);
    let mut net = Sequential::new()
        .add("c", Conv2d::new(Conv2dSpec::new(1, 4, 3), Init::He, &mut r).unwrap().with_relu())
        .add("p", MaxPool2d::new(PoolSpec::new(2, 2)))
        .add("d", Dropout::new(0.2, seed).unwrap())
        .add("f", Flatten::new())
        .add("l", Linear::new(4 * 3 * 3, 3, Init::Glorot, &mut r).unwrap());
    net.skip_input_grad();
    let mut opt = Adam::new();
    let mut ce = SoftmaxCrossEntropy::new();
    for step in 0..5 {
        let x = random_tensor(&[4, 1, 8, 8], 100 + step);
        zero_grads(&mut net);
        let logits = net.forward(&ctx, &x).unwrap();
        let (_, g) = ce.forward_backward(ctx.isa(), logits, &[0, 1, 2, 1]).unwrap();
        net.backward(&ctx, &x, g).unwrap();
        opt.step(&mut net, 0.01).unwrap();
    }
    let mut w = Vec::new();
    net.visit_params("", &mut |_, p| w.extend_from_slice(p.value.data()));
    w
}

#[test]
fn training_is_deterministic_for_a_seed_and_thread_count() {
    for threads in [1, 2] {
        assert_eq!(train_small(3, threads), train_small(3, threads), "{threads} threads");
    }
    assert_ne!(train_small(3, 1), train_small(4, 1));
}

#[test]
fn batch_norm_folds_into_the_convolution() {
    let ctx = contexts()[0];
    let mut r = rng();
    let mut net = Sequential::new()
        .add("c", Conv2d::new(Conv2dSpec::new(2, 3, 3).pad(1), Init::He, &mut r).unwrap())
        .add("bn", BatchNorm::new(3).unwrap())
        .add("a", Activation::relu());
    let x = random_tensor(&[4, 2, 5, 5], 20);
    for _ in 0..3 {
        net.forward(&ctx, &x).unwrap(); // running statistics away from their defaults
    }
    net.visit_params("", &mut |name, p| {
        if name == "bn.weight" {
            p.value.data_mut().copy_from_slice(&[0.5, 2.0, -1.0]);
        }
    });
    let eval = Ctx::eval(ctx.cfg);
    let want = net.forward(&eval, &x).unwrap().clone();
    assert_eq!(net.fold_batch_norms().unwrap(), 1);
    assert_eq!(net.len(), 2);
    let got = net.forward(&eval, &x).unwrap();
    for (g, w) in got.data().iter().zip(want.data()) {
        assert!((g - w).abs() < 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
    }
}

#[test]
fn bad_inputs_are_errors() {
    let ctx = contexts()[0];
    let mut conv = Conv2d::new(Conv2dSpec::new(3, 4, 3), Init::He, &mut rng()).unwrap();
    assert!(matches!(conv.forward(&ctx, &Tensor::zeros(&[1, 2, 5, 5])), Err(LayerError::InputShape { .. })));
    assert!(conv.forward(&ctx, &Tensor::zeros(&[1, 3, 2, 2])).is_err(), "kernel larger than input");
    assert!(conv.forward(&ctx, &Tensor::zeros(&[3, 5, 5])).is_err(), "not 4-D");
    conv.forward(&ctx, &Tensor::zeros(&[1, 3, 5, 5])).unwrap();
    assert!(matches!(
        conv.backward(&ctx, &Tensor::zeros(&[1, 3, 5, 5]), &Tensor::zeros(&[1, 4, 2, 2])),
        Err(LayerError::GradShape { .. })
    ));
    assert!(Conv2d::new(Conv2dSpec::new(3, 4, 3).groups(2), Init::He, &mut rng()).is_err(), "groups");
    assert!(Conv2d::new(Conv2dSpec::new(3, 4, 0), Init::He, &mut rng()).is_err(), "zero kernel");
    let mut lin = Linear::new(4, 2, Init::He, &mut rng()).unwrap();
    assert!(lin.forward(&ctx, &Tensor::zeros(&[2, 5])).is_err());
    assert!(Linear::new(0, 2, Init::He, &mut rng()).is_err());
    assert!(Tensor::from_slice(&[2, 2], &[1.0; 3]).is_err());
    assert!(matches!(Sequential::new().forward(&ctx, &Tensor::zeros(&[1])), Err(LayerError::EmptySequential)));
    let mut res =
        Residual::new(Sequential::new().add("c", Conv2d::new(Conv2dSpec::new(3, 4, 1), Init::He, &mut rng()).unwrap()));
    assert!(matches!(res.forward(&ctx, &Tensor::zeros(&[1, 3, 4, 4])), Err(LayerError::ShapeMismatch { .. })));
    assert!(MaxPool2d::new(PoolSpec::new(3, 1).pad(2)).forward(&ctx, &Tensor::zeros(&[1, 1, 4, 4])).is_err());
    assert!(BatchNorm::new(3).unwrap().forward(&ctx, &Tensor::zeros(&[2, 4])).is_err());
}

/// `y = 2x` with a backward pass that forgets the factor: the checker must catch it.
struct WrongBackward {
    y: Tensor,
    dx: Tensor,
}

impl Layer for WrongBackward {
    fn describe(&self) -> String {
        "wrong".into()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, LayerError> {
        Ok(input.to_vec())
    }
    fn forward(&mut self, _: &Ctx, x: &Tensor) -> Result<&Tensor, LayerError> {
        self.y.assign(x);
        self.y.data_mut().iter_mut().for_each(|v| *v *= 2.0);
        Ok(&self.y)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn backward(&mut self, _: &Ctx, _: &Tensor, dy: &Tensor) -> Result<&Tensor, LayerError> {
        self.dx.assign(dy);
        Ok(&self.dx)
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

#[test]
fn gradient_checker_catches_a_wrong_backward_pass() {
    let mut layer = WrongBackward { y: Tensor::default(), dx: Tensor::default() };
    let r = check_layer(&mut layer, &contexts()[0], &random_tensor(&[2, 3], 1), 1e-2, 10, 1).unwrap();
    assert!(r.max_error > 0.3, "{r:?}");
}

/// In evaluation mode a convolution reuses weights prepared once (the Winograd filter
/// transform), and prepares them again whenever its parameters may have changed or the
/// input size does.
#[test]
fn eval_convolution_reprepares_when_weights_or_sizes_change() {
    let ctx = Ctx::eval(contexts()[0].cfg);
    let mut conv = Conv2d::new(Conv2dSpec::new(16, 16, 3).pad(1), Init::He, &mut rng()).unwrap();
    let x = random_tensor(&[1, 16, 16, 16], 60);
    let y1 = conv.forward(&ctx, &x).unwrap().clone();
    let y_train = conv.forward(&Ctx::train(ctx.cfg), &x).unwrap().clone();
    let close = |a: &Tensor, b: &Tensor, k: f32| a.data().iter().zip(b.data()).all(|(p, q)| (p - k * q).abs() < 1e-3);
    assert!(close(&y1, &y_train, 1.0), "prepared inference agrees with the per-call path");
    assert_eq!(&y1, conv.forward(&ctx, &x).unwrap(), "the second call reuses the preparation");
    conv.visit_params("", &mut |name, p| {
        if name == "weight" {
            p.value.data_mut().iter_mut().for_each(|v| *v *= 2.0);
        }
    });
    let y2 = conv.forward(&ctx, &x).unwrap().clone();
    assert!(close(&y2, &y1, 2.0), "new weights are seen (bias is zero, so the output doubles)");
    let bigger = random_tensor(&[2, 16, 20, 12], 61);
    let y3 = conv.forward(&ctx, &bigger).unwrap().clone();
    assert_eq!(y3.shape(), &[2, 16, 20, 12]);
    assert!(close(&y3, conv.forward(&Ctx::train(ctx.cfg), &bigger).unwrap(), 1.0));
}
