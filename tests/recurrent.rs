//! The fused recurrent layers: PyTorch's outputs and gradients on the same weights
//! (committed fixtures that benches/peers/rnn_fixtures.py writes), finite-difference
//! gradient checks of every cell and option on every ISA path, the course's unrolled cell
//! equal to the fused one, and clear errors for bad input.

mod common;

use common::{describe, gemm_configs};
use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::gradcheck::{check_model, random_tensor, CheckInputs};
use simdnn::layers::ops::*;
use simdnn::layers::*;
use simdnn::models::checkpoint::Checkpoint;
use std::collections::HashMap;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rnn").join(format!("{name}.safetensors"))
}

/// max |y - t| / max |t|.
fn relative_error(y: &[f32], t: &[f32]) -> f32 {
    assert_eq!(y.len(), t.len());
    let scale = t.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    y.iter().zip(t).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

fn cell_named(name: &str) -> Cell {
    match name {
        "rnn_tanh" => Cell::Tanh,
        "rnn_relu" => Cell::Relu,
        "lstm" => Cell::Lstm,
        "gru" => Cell::Gru,
        other => panic!("unknown cell {other}"),
    }
}

/// Declares inputs `x` (and `h0`, `c0`, integer `lengths` if asked) and one recurrent node
/// `rnn` reading them.
fn declare_recurrent(
    g: &mut GraphBuilder,
    spec: RecurrentSpec,
    x_shape: &[usize],
    with_state: bool,
    with_lengths: bool,
) {
    g.input("x", x_shape);
    let batch = if spec.batch_first { x_shape[0] } else { x_shape[1] };
    let state = [spec.layers * spec.directions(), batch, spec.hidden];
    let mut inputs = vec!["x"];
    if with_state {
        g.input("h0", &state);
        inputs.push("h0");
        if spec.cell == Cell::Lstm {
            g.input("c0", &state);
            inputs.push("c0");
        }
    }
    if with_lengths {
        g.int_input("lengths", &[batch]);
        inputs.push("lengths");
    }
    g.layer("rnn", |p| spec.build(p), &inputs);
}

/// A graph of one recurrent node with outputs `y`, `h_n` (and `c_n`).
fn recurrent_model(spec: RecurrentSpec, x_shape: &[usize], with_state: bool, with_lengths: bool) -> Model {
    let mut g = GraphBuilder::new(5);
    declare_recurrent(&mut g, spec, x_shape, with_state, with_lengths);
    g.output("y", "rnn").output("h_n", "rnn:1");
    if spec.cell == Cell::Lstm {
        g.output("c_n", "rnn:2");
    }
    g.build().unwrap()
}

struct Fixture {
    ck: Checkpoint,
    meta: HashMap<String, String>,
}

impl Fixture {
    fn read(name: &str) -> Fixture {
        let ck = Checkpoint::read(&fixture(name)).unwrap();
        let meta = ck.metadata().unwrap();
        Fixture { ck, meta }
    }
    fn number(&self, key: &str) -> usize {
        self.meta[key].parse().unwrap()
    }
    fn flag(&self, key: &str) -> bool {
        self.meta[key] == "true"
    }
    fn t(&self, name: &str) -> Tensor {
        self.ck.tensor(name).unwrap()
    }
    fn spec(&self) -> RecurrentSpec {
        RecurrentSpec::new(cell_named(&self.meta["cell"]), self.number("input_size"), self.number("hidden_size"))
            .layers(self.number("num_layers"))
            .bidirectional(self.flag("bidirectional"))
            .batch_first(self.flag("batch_first"))
    }
    fn model(&self) -> Model {
        let x = self.t("x");
        let mut model = recurrent_model(self.spec(), x.shape(), self.flag("has_h0"), self.flag("has_lengths"));
        let params = model.params_mut();
        let ids: Vec<ParamId> = params.ids().collect();
        for id in ids {
            let name = params.name(id).to_string();
            let value = self.t(&name);
            assert_eq!(params.value(id).shape(), value.shape(), "{name}");
            params.value_mut(id).data_mut().copy_from_slice(value.data());
        }
        model
    }
}

const CASES: &[&str] =
    &["rnn_tanh", "rnn_relu_bi2", "lstm", "lstm_bi2_state", "lstm_lengths", "gru", "gru_bi2_lengths_batch_first"];

#[test]
fn outputs_and_gradients_equal_pytorchs_on_the_same_weights() {
    for case in CASES {
        let fx = Fixture::read(case);
        let model = fx.model();
        let lstm = fx.spec().cell == Cell::Lstm;
        let x = fx.t("x");
        let (h0, c0) = (fx.flag("has_h0").then(|| fx.t("h0")), (fx.flag("has_h0") && lstm).then(|| fx.t("c0")));
        let lengths = fx.flag("has_lengths").then(|| fx.ck.int_tensor("lengths").unwrap());
        for cfg in gemm_configs(2) {
            let ctx = Ctx::train(cfg);
            let mut state = State::new();
            state.keep_input_grads(true);
            let mut feed = vec![("x", Feed::from(&x))];
            feed.extend(h0.as_ref().map(|t| ("h0", Feed::from(t))));
            feed.extend(c0.as_ref().map(|t| ("c0", Feed::from(t))));
            feed.extend(lengths.as_ref().map(|t| ("lengths", Feed::from(t))));
            model.forward(&ctx, &mut state, &feed[..]).unwrap();
            let outputs: &[&str] = if lstm { &["y", "h_n", "c_n"] } else { &["y", "h_n"] };
            for out in outputs {
                let err = relative_error(model.output(&state, out).unwrap().data, fx.t(out).data());
                assert!(err <= 1e-5, "{case} {out} on {}: relative error {err:e}", describe(&cfg));
            }
            let seeds: Vec<(String, Tensor)> =
                outputs.iter().map(|o| (o.to_string(), fx.t(&format!("d{o}")))).collect();
            let seeds: Vec<(&str, TensorRef)> = seeds.iter().map(|(n, t)| (n.as_str(), t.as_ref())).collect();
            let mut grads = Grads::new(model.params());
            model.backward(&ctx, &mut state, &mut grads, &seeds).unwrap();
            for id in model.params().ids() {
                let name = model.params().name(id);
                let err = relative_error(grads.get(id).unwrap().data(), fx.t(&format!("grad.{name}")).data());
                assert!(err <= 1e-4, "{case} gradient of {name} on {}: relative error {err:e}", describe(&cfg));
            }
            let mut inputs = vec!["x"];
            inputs.extend(h0.as_ref().map(|_| "h0"));
            inputs.extend(c0.as_ref().map(|_| "c0"));
            for input in inputs {
                let got = model.input_grad(&state, input).unwrap();
                let err = relative_error(got.data, fx.t(&format!("grad.{input}")).data());
                assert!(err <= 1e-4, "{case} gradient of {input} on {}: relative error {err:e}", describe(&cfg));
            }
        }
    }
}

/// A graph whose one output concatenates `y`, `h_n` (and `c_n`), flattened, so a
/// gradient check covers all of them.
fn checked_model(spec: RecurrentSpec, x_shape: &[usize], with_state: bool, with_lengths: bool) -> Model {
    let mut g = GraphBuilder::new(9);
    declare_recurrent(&mut g, spec, x_shape, with_state, with_lengths);
    let outs: &[&str] = if spec.cell == Cell::Lstm { &["rnn", "rnn:1", "rnn:2"] } else { &["rnn", "rnn:1"] };
    let mut flat = Vec::new();
    for (i, o) in outs.iter().enumerate() {
        g.add(&format!("flat{i}"), Reshape::inferred(&[-1]), &[o]);
        flat.push(format!("flat{i}"));
    }
    let flat: Vec<&str> = flat.iter().map(String::as_str).collect();
    g.add("all", Concat::new(0), &flat).output("all", "all");
    g.build().unwrap()
}

fn gradient_check(spec: RecurrentSpec, t: usize, n: usize, with_state: bool, lengths: Option<&[i64]>) {
    let x_shape = if spec.batch_first { [n, t, spec.input] } else { [t, n, spec.input] };
    let mut model = checked_model(spec, &x_shape, with_state, lengths.is_some());
    let state_shape = [spec.layers * spec.directions(), n, spec.hidden];
    for cfg in gemm_configs(1) {
        let ctx = Ctx::train(cfg);
        let mut inputs = CheckInputs::new().with("x", random_tensor(&x_shape, 3));
        if with_state {
            inputs = inputs.with("h0", random_tensor(&state_shape, 4));
            if spec.cell == Cell::Lstm {
                inputs = inputs.with("c0", random_tensor(&state_shape, 5));
            }
        }
        if let Some(l) = lengths {
            inputs = inputs.with_int("lengths", IntTensor::from_slice(&[n], l).unwrap());
        }
        let r = check_model(&mut model, &ctx, &mut inputs, "all", 1e-2, 60, 7).unwrap();
        assert!(r.max_error < 1e-2, "{:?} on {}: {} ({:.2e})", spec, describe(&cfg), r.worst, r.max_error);
    }
}

#[test]
fn every_cell_passes_finite_differences_over_several_steps() {
    for cell in [Cell::Tanh, Cell::Relu, Cell::Lstm, Cell::Gru] {
        gradient_check(RecurrentSpec::new(cell, 3, 5), 7, 2, false, None);
        gradient_check(RecurrentSpec::new(cell, 3, 4), 4, 3, true, None);
    }
}

#[test]
fn stacked_bidirectional_batch_first_and_padded_layers_pass_finite_differences() {
    for cell in [Cell::Tanh, Cell::Lstm, Cell::Gru] {
        let spec = RecurrentSpec::new(cell, 3, 4).layers(2).bidirectional(true);
        gradient_check(spec, 5, 3, true, None);
        gradient_check(spec.batch_first(true), 5, 3, true, Some(&[5, 2, 4]));
        gradient_check(RecurrentSpec::new(cell, 2, 3), 6, 4, false, Some(&[1, 6, 3, 2]));
    }
}

/// The course's cell `h_t = tanh(W [x_t; h_{t-1}] + b)` unrolled in the graph, one `W` and
/// `b` for all steps, against the fused `Rnn` on the same weights (`W = [W_ih | W_hh]`,
/// `b = b_ih + b_hh`).
#[test]
fn the_course_cell_unrolled_in_the_graph_equals_the_fused_layer() {
    let (steps, n, d, h) = (6, 3, 4, 5);
    let mut g = GraphBuilder::new(21);
    g.input("x", &[steps, n, d]).input("h_init", &[n, h]);
    let w = g.param("cell.weight", &[h, d + h], Fill::Random { init: Init::Glorot, fan_in: d + h, fan_out: h }, true);
    let w = w.unwrap();
    let b = g.param("cell.bias", &[h], Fill::Constant(0.1), false).unwrap();
    g.add("steps", Split::new(0, &[1; 6]), &["x"]);
    let mut prev = "h_init".to_string();
    let mut hs = Vec::new();
    for t in 0..steps {
        let step = if t == 0 { "steps".to_string() } else { format!("steps:{t}") };
        let cell = Linear::from_params(g.params(), w, Some(b)).unwrap();
        g.add(&format!("x{t}"), Reshape::new(&[n, d]), &[&step])
            .add(&format!("xh{t}"), Concat::new(1), &[&format!("x{t}"), &prev])
            .add(&format!("pre{t}"), cell, &[&format!("xh{t}")])
            .add(&format!("h{t}"), Activation::tanh(), &[&format!("pre{t}")]);
        prev = format!("h{t}");
        hs.push(format!("h{t}"));
    }
    let hs: Vec<&str> = hs.iter().map(String::as_str).collect();
    g.add("ys", Concat::new(0), &hs).output("ys", "ys");
    let unrolled = g.build().unwrap();

    let mut fused = recurrent_model(Recurrent::rnn(d, h), &[steps, n, d], true, false);
    let (wv, bv) = (unrolled.params().value(w).data().to_vec(), unrolled.params().value(b).data().to_vec());
    let params = fused.params_mut();
    let id = |p: &Params, name: &str| p.id(&format!("rnn.{name}")).unwrap();
    let (w_ih, w_hh, b_ih, b_hh) =
        (id(params, "weight_ih_l0"), id(params, "weight_hh_l0"), id(params, "bias_ih_l0"), id(params, "bias_hh_l0"));
    for r in 0..h {
        params.value_mut(w_ih).data_mut()[r * d..][..d].copy_from_slice(&wv[r * (d + h)..][..d]);
        params.value_mut(w_hh).data_mut()[r * h..][..h].copy_from_slice(&wv[r * (d + h) + d..][..h]);
    }
    params.value_mut(b_ih).data_mut().copy_from_slice(&bv);
    params.value_mut(b_hh).data_mut().fill(0.0);

    let (x, h_init) = (random_tensor(&[steps, n, d], 1), random_tensor(&[n, h], 2));
    let dy = random_tensor(&[steps * n, h], 3);
    let ctx = Ctx::train(GemmConfig::new(Isa::current().unwrap(), 1).unwrap());
    let (mut s1, mut s2) = (State::new(), State::new());
    s1.keep_input_grads(true);
    s2.keep_input_grads(true);
    unrolled.forward(&ctx, &mut s1, &[("x", Feed::from(&x)), ("h_init", Feed::from(&h_init))]).unwrap();
    let h0 = Tensor::from_slice(&[1, n, h], h_init.data()).unwrap();
    fused.forward(&ctx, &mut s2, &[("x", Feed::from(&x)), ("h0", Feed::from(&h0))]).unwrap();
    let (y1, y2) = (unrolled.output(&s1, "ys").unwrap(), fused.output(&s2, "y").unwrap());
    assert!(relative_error(y2.data, y1.data) < 1e-6, "outputs differ");
    let (mut g1, mut g2) = (Grads::new(unrolled.params()), Grads::new(fused.params()));
    unrolled.backward(&ctx, &mut s1, &mut g1, &[("ys", dy.as_ref())]).unwrap();
    let dy3 = Tensor::from_slice(&[steps, n, h], dy.data()).unwrap();
    let zero = Tensor::zeros(&[1, n, h]);
    fused.backward(&ctx, &mut s2, &mut g2, &[("y", dy3.as_ref()), ("h_n", zero.as_ref())]).unwrap();
    let (dw, db) = (g1.get(w).unwrap().data(), g1.get(b).unwrap().data());
    let (dw_ih, dw_hh) = (g2.get(w_ih).unwrap().data(), g2.get(w_hh).unwrap().data());
    for r in 0..h {
        assert!(relative_error(&dw_ih[r * d..][..d], &dw[r * (d + h)..][..d]) < 1e-5, "dW_ih row {r}");
        assert!(relative_error(&dw_hh[r * h..][..h], &dw[r * (d + h) + d..][..h]) < 1e-5, "dW_hh row {r}");
    }
    assert!(relative_error(g2.get(b_ih).unwrap().data(), db) < 1e-5);
    assert!(relative_error(g2.get(b_hh).unwrap().data(), db) < 1e-5);
    let dx = |m: &Model, s: &State, name: &str| m.input_grad(s, name).unwrap().data.to_vec();
    assert!(relative_error(&dx(&fused, &s2, "x"), &dx(&unrolled, &s1, "x")) < 1e-5);
    assert!(relative_error(&dx(&fused, &s2, "h0"), &dx(&unrolled, &s1, "h_init")) < 1e-5);
}

#[test]
fn one_model_runs_any_sequence_length() {
    let model = recurrent_model(Recurrent::lstm(3, 4).layers(2), &[5, 2, 3], false, false);
    let ctx = Ctx::eval(GemmConfig::new(Isa::current().unwrap(), 1).unwrap());
    let mut state = State::new();
    for t in [5, 1, 17, 5] {
        let x = random_tensor(&[t, 2, 3], t as u64);
        model.forward(&ctx, &mut state, &[("x", Feed::from(&x))]).unwrap();
        assert_eq!(model.output(&state, "y").unwrap().shape, &[t, 2, 4]);
        assert_eq!(model.output(&state, "h_n").unwrap().shape, &[2, 2, 4]);
    }
}

#[test]
fn the_forget_gate_bias_starts_where_asked() {
    let model = recurrent_model(Recurrent::lstm(3, 4).forget_bias(1.0), &[2, 1, 3], false, false);
    let p = model.params();
    let b_ih = p.value(p.id("rnn.bias_ih_l0").unwrap()).data();
    let b_hh = p.value(p.id("rnn.bias_hh_l0").unwrap()).data();
    assert!(b_ih[4..8].iter().all(|&v| v == 1.0) && b_hh[4..8].iter().all(|&v| v == 0.0));
    assert!(b_ih[..4].iter().all(|&v| v.abs() <= 0.5) && b_ih[..4].iter().any(|&v| v != 0.0), "others drawn");
}

#[test]
fn bad_input_gives_clear_errors() {
    let ctx = Ctx::eval(GemmConfig::new(Isa::current().unwrap(), 1).unwrap());
    let build = |shape: &[usize], state: bool, lengths: bool| {
        let mut g = GraphBuilder::new(1);
        g.input("x", shape);
        let mut inputs = vec!["x"];
        if state {
            g.input("h0", &[1, 2, 5]).input("c0", &[1, 2, 5]);
            inputs.extend(["h0", "c0"]);
        }
        if lengths {
            g.int_input("lengths", &[2]);
            inputs.push("lengths");
        }
        g.layer("rnn", |p| Recurrent::lstm(3, 4).build(p), &inputs).output("y", "rnn");
        g.build().map(|_| ()).unwrap_err().to_string()
    };
    let err = build(&[4, 2, 7], false, false);
    assert!(err.contains("F = 3") && err.contains("[4, 2, 7]"), "{err}");
    let err = build(&[0, 2, 3], false, false);
    assert!(err.contains("at least 1"), "{err}");
    let err = build(&[4, 2, 3], true, false);
    assert!(err.contains("initial state") && err.contains("[1, 2, 4]"), "{err}");

    let model = recurrent_model(Recurrent::gru(3, 4), &[4, 2, 3], false, true);
    let x = random_tensor(&[4, 2, 3], 1);
    let mut state = State::new();
    for bad in [[5, 1], [0, 2], [-1, 3]] {
        let lengths = IntTensor::from_slice(&[2], &bad).unwrap();
        let err = model.forward(&ctx, &mut state, &[("x", Feed::from(&x)), ("lengths", Feed::from(&lengths))]);
        let err = err.unwrap_err().to_string();
        assert!(err.contains("from 1 to the padded length T = 4"), "{err}");
    }
}

/// Steps split their rows over threads, products split their outputs: 1, 2 and 3 threads
/// give the same bits, forward and backward, padded or not.
#[test]
fn any_thread_count_gives_the_same_bits() {
    for cell in [Cell::Tanh, Cell::Lstm, Cell::Gru] {
        let spec = RecurrentSpec::new(cell, 9, 70).layers(2).bidirectional(true);
        let (t, n) = (5, 33);
        let model = recurrent_model(spec, &[t, n, 9], false, true);
        let x = random_tensor(&[t, n, 9], 1);
        let lengths =
            IntTensor::from_slice(&[n], &(0..n as i64).map(|i| 1 + i % t as i64).collect::<Vec<_>>()).unwrap();
        let dy = random_tensor(&[t, n, 140], 2);
        let run = |threads: usize| {
            let ctx = Ctx::train(GemmConfig::new(Isa::current().unwrap(), threads).unwrap());
            let mut state = State::new();
            state.keep_input_grads(true);
            model.forward(&ctx, &mut state, &[("x", Feed::from(&x)), ("lengths", Feed::from(&lengths))]).unwrap();
            let y = model.output(&state, "y").unwrap().data.to_vec();
            let mut grads = Grads::new(model.params());
            model.backward(&ctx, &mut state, &mut grads, &[("y", dy.as_ref())]).unwrap();
            let dx = model.input_grad(&state, "x").unwrap().data.to_vec();
            let dw: Vec<Vec<f32>> = model.params().ids().map(|id| grads.get(id).unwrap().data().to_vec()).collect();
            (y, dx, dw)
        };
        let one = run(1);
        for threads in [2, 3] {
            assert!(one == run(threads), "{cell:?} on {threads} threads differs from 1 thread");
        }
    }
}

/// The step kernels against the f64 reference on random shapes: odd and prime hidden sizes
/// (every vector tail), rows split over threads, inactive rows, outputs written with a
/// stride and offset; forward and backward, every ISA path.
fn check_step(cell: Cell, rows: usize, hidden: usize, threads: usize, seed: u64, padded: bool, y_pad: usize) {
    use simdnn::kernels::reference::rnn as oracle;
    use simdnn::kernels::rnn::{step_backward, step_forward, BackwardStep, ForwardStep, StepShape};
    let (h, gh) = (hidden, cell.gates() * hidden);
    let v =
        |len: usize, k: u64| common::random_vec(len, seed * 16 + k).into_iter().map(|x| 3.0 * x).collect::<Vec<_>>();
    let (pre, rec, h_prev) = (v(rows * gh, 1), v(rows * gh, 2), v(rows * h, 3));
    let lstm = cell == Cell::Lstm;
    let c_prev = if lstm { v(rows * h, 4) } else { Vec::new() };
    // The other cells take recurrent products apart or already added in.
    let rec = if cell == Cell::Gru || seed % 2 == 1 { rec } else { Vec::new() };
    let active: Vec<bool> =
        if padded { (0..rows).map(|r| !(r * 7 + seed as usize).is_multiple_of(3)).collect() } else { vec![] };
    let (y_stride, y_offset) = (h + y_pad, y_pad / 2);
    for cfg in gemm_configs(threads) {
        let shape = StepShape { cell, rows, hidden: h, active: &active, y_stride, y_offset };
        let (mut gates, mut c, mut h_out, mut y) =
            (pre.clone(), vec![0.0; c_prev.len()], vec![0.0; rows * h], vec![7.0; rows * y_stride]);
        let io = ForwardStep {
            gates: &mut gates,
            rec: &rec,
            h_prev: &h_prev,
            c_prev: &c_prev,
            c: &mut c,
            h: &mut h_out,
            y: &mut y,
        };
        step_forward(&cfg, shape, io).unwrap();
        let want = oracle::step_forward(cell, rows, h, &active, &pre, &rec, &h_prev, &c_prev);
        let close = |got: &[f32], want: &[f64], what: &str| {
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (*g as f64 - w).abs() <= 2e-6 * (1.0 + w.abs()),
                    "{cell:?} {what}[{i}] on {}: {g} vs {w}",
                    describe(&cfg)
                );
            }
        };
        let active_rows = |r: usize| active.get(r) != Some(&false);
        close(&h_out, &want.h, "h");
        if lstm {
            close(&c, &want.c, "c");
        }
        for r in 0..rows {
            close(&gates[r * gh..][..gh], &want.gates[r * gh..][..gh], "gates");
            let row = &y[r * y_stride..][..y_stride];
            assert!(row[..y_offset].iter().chain(&row[y_offset + h..]).all(|&v| v == 7.0), "y outside its columns");
            let expect: Vec<f64> = if active_rows(r) { want.h[r * h..][..h].to_vec() } else { vec![0.0; h] };
            close(&row[y_offset..][..h], &expect, "y");
        }
        // Backward from the kernel's own saved values.
        let (dh_next, dy) = (v(rows * h, 5), v(rows * y_stride, 6));
        let mut dc = if lstm { v(rows * h, 7) } else { Vec::new() };
        let dc_in = dc.clone();
        let d_rec_len = if cell == Cell::Gru { rows * gh } else { 0 };
        let (mut d_gates, mut d_rec, mut dh_prev) = (vec![0.0; rows * gh], vec![0.0; d_rec_len], vec![0.0; rows * h]);
        let rec = if cell == Cell::Gru { &rec[..] } else { &[] };
        let io = BackwardStep {
            gates: &gates,
            rec,
            h_prev: &h_prev,
            c_prev: &c_prev,
            c: &c,
            h: &h_out,
            dh_next: &dh_next,
            dy: &dy,
            dc: &mut dc,
            d_gates: &mut d_gates,
            d_rec: &mut d_rec,
            dh_prev: &mut dh_prev,
        };
        step_backward(&cfg, shape, io).unwrap();
        let dh: Vec<f64> = (0..rows * h)
            .map(|i| {
                dh_next[i] as f64
                    + if active_rows(i / h) { dy[(i / h) * y_stride + y_offset + i % h] as f64 } else { 0.0 }
            })
            .collect();
        let want = oracle::step_backward(cell, rows, h, &active, &gates, rec, &h_prev, &c_prev, &c, &dh, &dc_in);
        close(&d_gates, &want.gates, "d gates");
        close(&dh_prev, &want.h, "dh'");
        if lstm {
            close(&dc, &want.c, "dc'");
        }
        if cell == Cell::Gru {
            close(&d_rec, &want.rec, "d rec");
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..proptest::prelude::ProptestConfig::default() })]
    #[test]
    fn step_kernels_match_the_f64_reference(
        cell in 0usize..4,
        rows in 1usize..40,
        hidden in proptest::sample::select(vec![1usize, 2, 7, 13, 16, 17, 31, 33, 64, 97]),
        threads in 1usize..4,
        seed in 0u64..1000,
        padded: bool,
        y_pad in 0usize..5,
    ) {
        let cell = [Cell::Tanh, Cell::Relu, Cell::Lstm, Cell::Gru][cell];
        check_step(cell, rows, hidden, threads, seed, padded, y_pad);
    }
}

#[test]
fn step_kernels_split_over_threads_match_the_reference() {
    // Large enough for the rows to be split (4096 gate values a part).
    for cell in [Cell::Tanh, Cell::Lstm, Cell::Gru] {
        check_step(cell, 67, 129, 3, 5, true, 3);
    }
}
