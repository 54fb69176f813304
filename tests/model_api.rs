//! What the model API gives the families beyond the CNNs: integer values between nodes,
//! any fan-in, one set of weights under several plans, a prepared structure per caller,
//! gradients for a selection of parameters chosen per backward call, and the fixes of its
//! small defects (an input gradient read after a larger forward pass, a convolution
//! prepared at several input sizes).

mod common;

use common::gemm_configs;
use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::gradcheck::{check_model, random_tensor, CheckInputs};
use simdnn::layers::op::{Backward, OpCtx, OpState, ValueInfo};
use simdnn::layers::ops::*;
use simdnn::layers::*;

fn ctx() -> Ctx {
    Ctx::train(GemmConfig::new(Isa::current().unwrap(), 1).unwrap())
}

fn run(model: &Model, state: &mut State, ctx: Ctx, feeds: &[(&str, Feed)]) -> Vec<f32> {
    model.forward(&ctx, state, feeds).unwrap();
    model.output(state, model.output_names()[0]).unwrap().data.to_vec()
}

/// logits -> argmax (an integer value made by a node) -> embedding of the predicted class.
fn argmax_graph() -> Model {
    let mut g = GraphBuilder::new(3);
    g.input("x", &[4, 5])
        .layer("fc", |p| Linear::new(p, 5, 3, Init::Glorot), &["x"])
        .add("pred", ArgMax::new(), &["fc"])
        .layer("emb", |p| Embedding::new(p, 3, 2), &["pred"])
        .add("pred2", ArgMax::new(), &["emb"])
        .layer("emb2", |p| Embedding::new(p, 2, 6), &["pred2"])
        .add("y", Add::new(), &["emb2", "emb2"])
        .output("y", "y")
        .output("pred", "pred");
    g.build().unwrap()
}

#[test]
fn integer_values_flow_between_nodes() {
    let model = argmax_graph();
    let x = random_tensor(&[4, 5], 1);
    let mut state = State::new();
    model.forward(&ctx(), &mut state, &[("x", Feed::from(&x))]).unwrap();
    // The node's integer output equals the argmax of its input, row by row.
    let mut expected = Vec::new();
    let mut logits = State::new();
    let mut g = GraphBuilder::new(3);
    g.input("x", &[4, 5]).layer("fc", |p| Linear::new(p, 5, 3, Init::Glorot), &["x"]).output("fc", "fc");
    let fc = g.build().unwrap();
    fc.forward(&ctx(), &mut logits, &[("x", Feed::from(&x))]).unwrap();
    argmax_rows(fc.output(&logits, "fc").unwrap(), &mut expected).unwrap();
    let pred = model.int_output(&state, "pred").unwrap();
    assert_eq!(pred.shape, &[4]);
    assert_eq!(pred.data.iter().map(|&p| p as usize).collect::<Vec<_>>(), expected);
    assert!(model.output(&state, "pred").is_err(), "an integer output is not an f32 one");
    assert!(model.int_output(&state, "y").is_err());
    // The embedding after the argmax learns; the linear layer before it gets no gradient
    // (an integer value carries none).
    let mut grads = Grads::new(model.params());
    let dy = Tensor::from_slice(&[4, 6], &[1.0; 24]).unwrap();
    model.backward(&ctx(), &mut state, &mut grads, &[("y", dy.as_ref())]).unwrap();
    let id = |n: &str| model.params().id(n).unwrap();
    assert!(grads.get(id("emb2.weight")).is_some());
    assert!(grads.get(id("fc.weight")).is_none(), "no gradient crosses an integer value");
    // Integer values are planned like f32 ones: in inference their buffers are reused.
    let eval = model.memory_plan(&[], Mode::Eval).unwrap();
    let train = model.memory_plan(&[], Mode::Train).unwrap();
    assert!(eval.buffers < train.buffers, "{eval:?} vs {train:?}");
    assert!(train.total_bytes >= 4 * 5 * 4 + 2 * 4 * 8, "integer values count: {train:?}");
    let mut eval_state = State::new();
    let y_eval = run(&model, &mut eval_state, Ctx::eval(ctx().cfg), &[("x", Feed::from(&x))]);
    assert_eq!(y_eval, run(&model, &mut state, ctx(), &[("x", Feed::from(&x))]));
}

#[test]
fn an_op_given_the_wrong_type_is_an_error_naming_the_node() {
    let mut g = GraphBuilder::new(3);
    g.input("x", &[4, 5])
        .add("pred", ArgMax::new(), &["x"])
        .add("bad", Activation::relu(), &["pred"])
        .output("y", "bad");
    let err = g.build().unwrap_err().to_string();
    assert!(err.contains("\"bad\""), "{err}");
    let mut g = GraphBuilder::new(3);
    g.input("x", &[4, 5]).layer("emb", |p| Embedding::new(p, 3, 2), &["x"]).output("y", "emb");
    let err = g.build().unwrap_err().to_string();
    assert!(err.contains("\"emb\""), "{err}");
}

/// A value concatenated from `n` slices of one input: fan-in `n`.
fn wide_concat(n: usize) -> Model {
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, n]).layer("fc", |p| Linear::new(p, n, n, Init::Glorot), &["x"]);
    g.add("cols", Split::new(1, &vec![1; n]), &["fc"]);
    let names: Vec<String> = (0..n).map(|i| if i == 0 { "cols".into() } else { format!("cols:{i}") }).collect();
    let refs: Vec<&str> = names.iter().rev().map(String::as_str).collect();
    g.add("joined", Concat::new(1), &refs).add("act", Activation::tanh(), &["joined"]).output("y", "act");
    g.build().unwrap()
}

#[test]
fn any_fan_in_and_fan_out() {
    // 300 inputs to one node, 300 outputs of another (the old limit was 256).
    let mut model = wide_concat(300);
    let x = random_tensor(&[2, 300], 2);
    let mut state = State::new();
    let y = run(&model, &mut state, ctx(), &[("x", Feed::from(&x))]);
    assert_eq!(y.len(), 600);
    let mut inputs = CheckInputs::new().with("x", x);
    let r = check_model(&mut model, &ctx(), &mut inputs, "y", 1e-2, 30, 3).unwrap();
    assert!(r.max_error < 5e-3, "{} ({:.2e})", r.worst, r.max_error);
    // Any number of backward seeds.
    let mut g = GraphBuilder::new(1);
    g.input("x", &[1, 20]).add("parts", Split::new(1, &[1; 20]), &["x"]);
    let outs: Vec<String> = (0..20).map(|i| if i == 0 { "parts".into() } else { format!("parts:{i}") }).collect();
    for (i, o) in outs.iter().enumerate() {
        g.output(&format!("o{i}"), o);
    }
    let model = g.build().unwrap();
    let mut state = State::new();
    state.keep_input_grads(true);
    model.forward(&ctx(), &mut state, &[("x", Feed::from(&Tensor::zeros(&[1, 20])))]).unwrap();
    let ones: Vec<Tensor> = (0..20).map(|i| Tensor::from_slice(&[1, 1], &[i as f32]).unwrap()).collect();
    let names: Vec<String> = (0..20).map(|i| format!("o{i}")).collect();
    let seeds: Vec<(&str, TensorRef)> = names.iter().zip(&ones).map(|(n, t)| (n.as_str(), t.as_ref())).collect();
    model.backward(&ctx(), &mut state, &mut Grads::new(model.params()), &seeds).unwrap();
    let dx = model.input_grad(&state, "x").unwrap();
    assert_eq!(dx.data, (0..20).map(|i| i as f32).collect::<Vec<_>>());
}

#[test]
fn a_state_keeps_the_plans_it_is_told_to() {
    let model = wide_concat(4);
    let mut state = State::new();
    state.keep_layouts(1);
    for batch in [2, 3, 2, 5] {
        let x = random_tensor(&[batch, 4], batch as u64);
        let y = run(&model, &mut state, ctx(), &[("x", Feed::from(&x))]);
        assert_eq!(y.len(), batch * 4);
    }
}

/// The course's cell unrolled over `steps` on builder `g`: `h_t = tanh(W [x_t; h_{t-1}] + b)`,
/// output the last state. Every step reads the one `cell.weight` and `cell.bias`.
fn unrolled(mut g: GraphBuilder, steps: usize, n: usize, d: usize, h: usize) -> GraphBuilder {
    g.input("x", &[steps, n, d]).input("h_init", &[n, h]);
    let w = g.param("cell.weight", &[h, d + h], Fill::Random { init: Init::Glorot, fan_in: d + h, fan_out: h }, true);
    let b = g.param("cell.bias", &[h], Fill::Constant(0.1), false);
    let (w, b) = (w.unwrap(), b.unwrap());
    g.add("steps", Split::new(0, &vec![1; steps]), &["x"]);
    let mut prev = "h_init".to_string();
    for t in 0..steps {
        let step = if t == 0 { "steps".to_string() } else { format!("steps:{t}") };
        let cell = Linear::from_params(g.params(), w, Some(b)).unwrap();
        g.add(&format!("x{t}"), Reshape::new(&[n, d]), &[&step])
            .add(&format!("xh{t}"), Concat::new(1), &[&format!("x{t}"), &prev])
            .add(&format!("pre{t}"), cell, &[&format!("xh{t}")])
            .add(&format!("h{t}"), Activation::tanh(), &[&format!("pre{t}")]);
        prev = format!("h{t}");
    }
    g.output("h", &prev);
    g
}

#[test]
fn one_set_of_weights_runs_under_several_plans() {
    let (n, d, h) = (2, 3, 4);
    let mut model = unrolled(GraphBuilder::new(5), 3, n, d, h).build().unwrap();
    let count = model.params().count();
    // The same weights unrolled over 7 steps, and with a batch of 5: no parameter added.
    let long = model.plan(|g| unrolled(g, 7, n, d, h)).unwrap();
    let wide = model.plan(|g| unrolled(g, 3, 5, d, h)).unwrap();
    assert_eq!(model.params().count(), count);
    // Against a model of 7 steps built on its own with the weights copied in.
    let mut own = unrolled(GraphBuilder::new(99), 7, n, d, h).build().unwrap();
    for name in ["cell.weight", "cell.bias"] {
        let v = model.params().value(model.params().id(name).unwrap()).clone();
        let id = own.params().id(name).unwrap();
        own.params_mut().value_mut(id).assign(&v);
    }
    let (x7, h0) = (random_tensor(&[7, n, d], 1), random_tensor(&[n, h], 2));
    let feeds = [("x", Feed::from(&x7)), ("h_init", Feed::from(&h0))];
    let mut state = State::new();
    let long_ref = model.with(&long).unwrap();
    long_ref.forward(&ctx(), &mut state, &feeds).unwrap();
    let y_long = long_ref.output(&state, "h").unwrap().data.to_vec();
    assert_eq!(y_long, run(&own, &mut State::new(), ctx(), &feeds));
    // Gradients through the second plan reach the shared weights.
    let mut grads = Grads::new(model.params());
    let dh = Tensor::from_slice(&[n, h], &[1.0; 8]).unwrap();
    long_ref.backward(&ctx(), &mut state, &mut grads, &[("h", dh.as_ref())]).unwrap();
    let mut own_grads = Grads::new(own.params());
    own.forward(&ctx(), &mut state, &feeds).unwrap();
    own.backward(&ctx(), &mut state, &mut own_grads, &[("h", dh.as_ref())]).unwrap();
    let g = |gr: &Grads, m: &Model| gr.get(m.params().id("cell.weight").unwrap()).unwrap().data().to_vec();
    assert_eq!(g(&grads, &model), g(&own_grads, &own));
    // A change of the weights is seen by every plan: they are not copies.
    let x5 = random_tensor(&[3, 5, d], 3);
    let h05 = random_tensor(&[5, h], 4);
    let wide_feeds = [("x", Feed::from(&x5)), ("h_init", Feed::from(&h05))];
    let before = {
        let r = model.with(&wide).unwrap();
        r.forward(&ctx(), &mut state, &wide_feeds).unwrap();
        r.output(&state, "h").unwrap().data.to_vec()
    };
    let b = model.params().id("cell.bias").unwrap();
    model.params_mut().value_mut(b).data_mut().fill(3.0);
    let r = model.with(&wide).unwrap();
    r.forward(&ctx(), &mut state, &wide_feeds).unwrap();
    assert_ne!(r.output(&state, "h").unwrap().data, before.as_slice());
    // A plan runs only on the weights it was declared over, and declares no new weights.
    let other = unrolled(GraphBuilder::new(5), 3, n, d, h).build().unwrap();
    assert!(matches!(other.with(&long), Err(LayerError::OtherWeights)));
    let err = model
        .plan(|mut g| {
            g.input("x", &[2, 8])
                .layer("cell", |p| Linear::new(p, d + 1 + h, h, Init::Glorot), &["x"])
                .output("y", "cell");
            g
        })
        .unwrap_err();
    assert!(err.to_string().contains("cell.weight: shape [4, 8], the model expects [4, 7]"), "{err}");
    let err = model
        .plan(|mut g| {
            g.input("x", &[2, 3]).layer("new", |p| Linear::new(p, 3, 3, Init::Glorot), &["x"]).output("y", "new");
            g
        })
        .unwrap_err();
    assert!(err.to_string().contains("new.weight"), "{err}");
    assert_eq!(model.params().count(), count, "a failed plan leaves the weights as they were");
    assert!(model.with(&long).is_ok());
}

/// Counts how often each caller prepared its structure.
#[derive(Default)]
struct Prepared {
    builds: usize,
}

/// `y = x`, preparing a per-caller structure on its first call.
struct Preparing;

impl Op for Preparing {
    fn describe(&self) -> String {
        "preparing".into()
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        Ok(inputs.to_vec())
    }
    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let p = state.prepared::<Prepared>();
        if p.builds == 0 {
            p.builds = 1;
        }
        let x = inputs[0].f32("preparing")?;
        outputs[0].resize(x.shape);
        outputs[0].data_mut().copy_from_slice(x.data);
        Ok(())
    }
    fn backward(&self, _: &OpCtx, _: Backward) -> Result<(), LayerError> {
        Ok(())
    }
}

#[test]
fn each_caller_keeps_its_own_prepared_structure() {
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2]).add("p", Preparing, &["x"]).output("y", "p");
    let model = g.build().unwrap();
    let x = Tensor::zeros(&[2]);
    let (mut a, mut b) = (State::new(), State::new());
    for _ in 0..3 {
        run(&model, &mut a, ctx(), &[("x", Feed::from(&x))]);
    }
    run(&model, &mut b, ctx(), &[("x", Feed::from(&x))]);
    let mut op_state = OpState::default();
    assert_eq!(op_state.prepared::<Prepared>().builds, 0, "created by Default on first use");
    op_state.prepared::<Prepared>().builds = 7;
    assert_eq!(op_state.prepared::<Prepared>().builds, 7, "kept between calls");
    assert_eq!(*op_state.prepared::<u32>(), 0, "another type replaces it");
}

/// Two halves, `g.*` feeding `d.*`, like a GAN's generator and discriminator in one model.
fn two_players() -> Model {
    let mut g = GraphBuilder::new(9);
    g.input("z", &[3, 4])
        .layer("g", |p| Linear::new(p, 4, 5, Init::Glorot), &["z"])
        .add("g_act", Activation::tanh(), &["g"])
        .layer("d", |p| Linear::new(p, 5, 1, Init::Glorot), &["g_act"])
        .add("sq", Mul::new(), &["d", "d"])
        .add("loss", MeanAll, &["sq"])
        .output("loss", "loss");
    g.build().unwrap()
}

/// The mean of all values (a scalar loss for the tests).
struct MeanAll;

impl Op for MeanAll {
    fn describe(&self) -> String {
        "mean".into()
    }
    fn infer(&self, _: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        Ok(vec![ValueInfo::f32(&[])])
    }
    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = inputs[0].f32("mean")?;
        outputs[0].resize(&[]);
        outputs[0].data_mut()[0] = x.data.iter().sum::<f32>() / x.len() as f32;
        Ok(())
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        if let Some(dx) = io.d_inputs[0].as_deref_mut() {
            let (shape, n) = (io.inputs[0].shape(), io.inputs[0].shape().iter().product::<usize>());
            dx.resize(shape);
            dx.data_mut().fill(io.d_outputs[0].data[0] / n as f32);
        }
        Ok(())
    }
}

#[test]
fn each_backward_call_chooses_which_parameters_learn() {
    let model = two_players();
    let z = random_tensor(&[3, 4], 5);
    let mut state = State::new();
    let mut grads = Grads::new(model.params());
    let id = |n: &str| model.params().id(n).unwrap();
    let ptrs = |grads: &mut Grads| ["g.weight", "d.weight"].map(|n| grads.get_mut(id(n)).map(|t| t.data().as_ptr()));
    grads.select(model.params(), Select::Trainable).unwrap();
    let before = ptrs(&mut grads);
    let mut full = Vec::new();
    for select in [Select::Prefix("d"), Select::Prefix("g"), Select::Trainable, Select::Names(&["d.bias"])] {
        grads.zero();
        let handed = grads.handed_out();
        run(&model, &mut state, ctx(), &[("z", Feed::from(&z))]);
        model.backward_from_selected(&ctx(), &mut state, &mut grads, "loss", select).unwrap();
        let got: Vec<bool> =
            ["g.weight", "g.bias", "d.weight", "d.bias"].iter().map(|n| grads.get(id(n)).is_some()).collect();
        let expected = match select {
            Select::Prefix("d") => [false, false, true, true],
            Select::Prefix("g") => [true, true, false, false],
            Select::Trainable => [true; 4],
            _ => [false, false, false, true],
        };
        assert_eq!(got, expected, "{select:?}");
        assert_eq!(grads.handed_out() - handed, expected.iter().filter(|&&e| e).count(), "{select:?}: work done");
        if matches!(select, Select::Trainable) {
            full = grads.get(id("g.weight")).unwrap().data().to_vec();
        }
    }
    // The generator's gradient through the discriminator is the same whichever way it is
    // selected, and the gradient buffers never moved (no re-allocation).
    grads.zero();
    run(&model, &mut state, ctx(), &[("z", Feed::from(&z))]);
    model.backward_from_selected(&ctx(), &mut state, &mut grads, "loss", Select::Prefix("g")).unwrap();
    assert_eq!(grads.get(id("g.weight")).unwrap().data(), full.as_slice());
    grads.select(model.params(), Select::Trainable).unwrap();
    assert_eq!(ptrs(&mut grads), before);
    // The model itself was never changed: every parameter is still trainable.
    assert_eq!(model.params().trainable_count(), model.params().count());
    assert!(matches!(
        model.backward_from_selected(&ctx(), &mut state, &mut grads, "loss", Select::Names(&["x.weight"])),
        Err(LayerError::UnknownParam { .. })
    ));
}

#[test]
fn an_input_gradient_after_a_larger_forward_pass_is_none() {
    let mut g = GraphBuilder::new(1);
    g.input("x", &[2, 3]).layer("fc", |p| Linear::new(p, 3, 1, Init::Glorot), &["x"]).add("loss", MeanAll, &["fc"]);
    g.output("loss", "loss");
    let model = g.build().unwrap();
    let mut state = State::new();
    state.keep_input_grads(true);
    run(&model, &mut state, ctx(), &[("x", Feed::from(&random_tensor(&[2, 3], 1)))]);
    model.backward_from(&ctx(), &mut state, &mut Grads::new(model.params()), "loss").unwrap();
    assert_eq!(model.input_grad(&state, "x").unwrap().shape, &[2, 3]);
    run(&model, &mut state, ctx(), &[("x", Feed::from(&random_tensor(&[5, 3], 2)))]);
    assert!(model.input_grad(&state, "x").is_none(), "stale after a forward pass");
    model.backward_from(&ctx(), &mut state, &mut Grads::new(model.params()), "loss").unwrap();
    assert_eq!(model.input_grad(&state, "x").unwrap().shape, &[5, 3]);
}

#[test]
fn a_convolution_keeps_prepared_weights_for_several_input_sizes() {
    let mut g = GraphBuilder::new(5);
    g.input("x", &[1, 8, 12, 12])
        .layer("c", |p| Conv2d::new(p, Conv2dSpec::new(8, 8, 3).pad(1), Init::He), &["x"])
        .output("y", "c");
    let model = g.build().unwrap();
    let conv = |m: &Model| m.op("c").unwrap().as_any().downcast_ref::<Conv2d>().unwrap().preparations();
    for cfg in gemm_configs(1) {
        let before = conv(&model);
        let (a, b) = (random_tensor(&[1, 8, 12, 12], 1), random_tensor(&[2, 8, 20, 16], 2));
        let mut outs = Vec::new();
        for x in [&a, &b, &a, &b, &a] {
            outs.push(run(&model, &mut State::new(), Ctx::eval(cfg), &[("x", Feed::from(x))]));
        }
        assert_eq!(conv(&model) - before, 2, "one preparation per input size");
        assert_eq!(outs[0], outs[2]);
        assert_eq!(outs[1], outs[3]);
    }
}
