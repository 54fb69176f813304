//! The general graph ops (broadcasting arithmetic, batched matmul, permutes, reshape with an
//! inferred size, slices, index select, scatter-add, segment reductions, cross-entropy over
//! any rank): gradients against finite differences on every ISA path and on two threads,
//! forward passes against naive references on random shapes, and bad inputs as errors that
//! name the node.

mod common;

use common::{gemm_configs, random_vec};
use proptest::prelude::*;
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

/// A graph reading `inputs` (by their names and shapes) into output `y`, the value of the
/// node `op` that `body` adds.
fn build(inputs: &CheckInputs, body: &dyn Fn(&mut GraphBuilder)) -> Result<Model, LayerError> {
    let mut g = GraphBuilder::new(7);
    for (n, t) in &inputs.f32 {
        g.input(n, t.shape());
    }
    for (n, t) in &inputs.int {
        g.int_input(n, t.shape());
    }
    body(&mut g);
    g.output("y", "op");
    g.build()
}

/// Checks the gradients of [`build`]'s graph on every context.
fn check_with(name: &str, inputs: CheckInputs, body: &dyn Fn(&mut GraphBuilder)) {
    for ctx in contexts() {
        let mut model = build(&inputs, body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut inputs = inputs.clone();
        let r = check_model(&mut model, &ctx, &mut inputs, "y", 1e-2, 60, 99).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.checked > 0, "{name}: nothing checked");
        let (isa, threads) = (ctx.isa(), ctx.cfg.threads());
        assert!(r.max_error < TOL, "{name} on {isa:?} x{threads}: {} (error {:.2e})", r.worst, r.max_error);
    }
}

/// One forward pass of [`build`]'s graph on `ctx`: the output's shape and values.
fn run_on(
    ctx: &Ctx,
    inputs: &CheckInputs,
    body: &dyn Fn(&mut GraphBuilder),
) -> Result<(Vec<usize>, Vec<f32>), LayerError> {
    let model = build(inputs, body)?;
    let feed: Vec<(&str, Feed)> = inputs
        .f32
        .iter()
        .map(|(n, t)| (n.as_str(), Feed::from(t)))
        .chain(inputs.int.iter().map(|(n, t)| (n.as_str(), Feed::from(t))))
        .collect();
    let mut state = State::new();
    model.forward(ctx, &mut state, feed.as_slice())?;
    let y = model.output(&state, "y")?;
    Ok((y.shape.to_vec(), y.data.to_vec()))
}

fn run(inputs: &CheckInputs, body: &dyn Fn(&mut GraphBuilder)) -> Result<(Vec<usize>, Vec<f32>), LayerError> {
    run_on(&contexts()[0], inputs, body)
}

fn ints(shape: &[usize], data: &[i64]) -> IntTensor {
    IntTensor::from_slice(shape, data).unwrap()
}

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_slice(shape, &random_vec(shape.iter().product(), seed)).unwrap()
}

/// Values spread at least 0.03 apart and away from zero, so `±eps` nudges cross no kink of
/// a maximum.
fn separated(shape: &[usize], seed: u64) -> Tensor {
    let mut t = random_tensor(shape, seed);
    let mut order: Vec<usize> = (0..t.len()).collect();
    order.sort_by(|&a, &b| t.data()[a].total_cmp(&t.data()[b]));
    for (rank, &i) in order.iter().enumerate() {
        let v = 0.05 + 0.03 * rank as f32;
        t.data_mut()[i] = if rank % 2 == 0 { v } else { -v };
    }
    t
}

/// The multi-index of flat index `i` of `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// The flat index into `shape` (broadcast into `out`) of output multi-index `idx`.
fn broadcast_index(idx: &[usize], shape: &[usize]) -> usize {
    let pad = idx.len() - shape.len();
    let own: Vec<usize> = shape.iter().enumerate().map(|(d, &n)| if n == 1 { 0 } else { idx[d + pad] }).collect();
    ravel(&own, shape)
}

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w}");
    }
}

/// An error of a build or run that names node `op`.
fn names_node<T>(what: &str, r: Result<T, LayerError>) -> String {
    let e = r.err().unwrap_or_else(|| panic!("{what}: expected an error"));
    assert!(matches!(e, LayerError::InNode { .. }) && e.to_string().contains("\"op\""), "{what}: {e}");
    e.to_string()
}

#[test]
fn broadcasting_arithmetic_gradients() {
    let pairs: [(&[usize], &[usize]); 6] = [
        (&[2, 3, 4], &[3, 1]),
        (&[4], &[2, 1, 4]),
        (&[2, 1, 5], &[3, 1]),
        (&[3, 1], &[1, 7]),
        (&[], &[3, 2]),
        (&[2, 3, 5], &[2, 3, 5]),
    ];
    for (sa, sb) in pairs {
        let inputs = CheckInputs::new().with("a", random_tensor(sa, 1)).with("b", random_tensor(sb, 2));
        check_with(&format!("add {sa:?} {sb:?}"), inputs.clone(), &|g| {
            g.add("op", Add::new(), &["a", "b"]);
        });
        check_with(&format!("sub {sa:?} {sb:?}"), inputs.clone(), &|g| {
            g.add("op", Sub::new(), &["a", "b"]);
        });
        check_with(&format!("mul {sa:?} {sb:?}"), inputs, &|g| {
            g.add("op", Mul::new(), &["a", "b"]);
        });
    }
    let a = CheckInputs::new().with("a", random_tensor(&[3, 1], 3));
    check_with("mul of a value with itself", a, &|g| {
        g.add("op", Mul::new(), &["a", "a"]);
    });
}

/// The fused ReLU of a broadcasting add equals an add then a ReLU node, values and
/// gradients.
#[test]
fn broadcast_add_with_relu_equals_add_then_relu() {
    let inputs = CheckInputs::new().with("a", random_tensor(&[2, 3, 4], 4)).with("b", random_tensor(&[3, 1], 5));
    let grads = |fused: bool| {
        let model = build(&inputs, &|g| {
            if fused {
                g.add("op", Add::new().with_relu(), &["a", "b"]);
            } else {
                g.add("s", Add::new(), &["a", "b"]).add("op", Activation::relu(), &["s"]);
            }
        })
        .unwrap();
        let ctx = contexts()[0];
        let mut state = State::new();
        state.keep_input_grads(true);
        let feed = [("a", Feed::from(&inputs.f32[0].1)), ("b", Feed::from(&inputs.f32[1].1))];
        model.forward(&ctx, &mut state, &feed).unwrap();
        let y = model.output(&state, "y").unwrap().data.to_vec();
        let dy = random_tensor(&[2, 3, 4], 6);
        model.backward(&ctx, &mut state, &mut Grads::new(model.params()), &[("y", dy.as_ref())]).unwrap();
        let g = |n| model.input_grad(&state, n).unwrap().data.to_vec();
        (y, g("a"), g("b"))
    };
    assert_eq!(grads(true), grads(false));
}

/// `(shape a, shape b)` broadcasting to a common shape: an output shape of rank up to 4 and
/// each input derived from it by dropping leading axes and setting axes to 1.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (prop::collection::vec(1usize..5, 0..5), any::<u64>()).prop_map(|(out, bits)| {
        let derive = |bits: u64| {
            let drop = (bits % (out.len() as u64 + 1)) as usize;
            out[drop..].iter().enumerate().map(|(d, &n)| if bits >> (d + 8) & 1 == 1 { 1 } else { n }).collect()
        };
        (derive(bits), derive(bits >> 20))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn broadcasting_arithmetic_matches_reference((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let (a, b) = (tensor(&sa, seed), tensor(&sb, seed ^ 1));
        let inputs = CheckInputs::new().with("a", a.clone()).with("b", b.clone());
        let rank = sa.len().max(sb.len());
        let out: Vec<usize> = (0..rank)
            .map(|d| {
                let dim = |s: &[usize]| if d + s.len() < rank { 1 } else { s[d + s.len() - rank] };
                dim(&sa).max(dim(&sb))
            })
            .collect();
        type F = fn(f64, f64) -> f64;
        let cases: [(&str, F); 4] =
            [("add", |u, v| u + v), ("sub", |u, v| u - v), ("mul", |u, v| u * v), ("add relu", |u, v| (u + v).max(0.0))];
        for (name, f) in cases {
            let (shape, got) = run(&inputs, &|g| {
                match name {
                    "add" => g.add("op", Add::new(), &["a", "b"]),
                    "sub" => g.add("op", Sub::new(), &["a", "b"]),
                    "mul" => g.add("op", Mul::new(), &["a", "b"]),
                    _ => g.add("op", Add::new().with_relu(), &["a", "b"]),
                };
            })
            .unwrap();
            prop_assert_eq!(&shape, &out);
            let want: Vec<f64> = (0..out.iter().product())
                .map(|o| {
                    let idx = unravel(o, &out);
                    let (u, v) = (a.data()[broadcast_index(&idx, &sa)], b.data()[broadcast_index(&idx, &sb)]);
                    f(u as f64, v as f64)
                })
                .collect();
            assert_close(name, &got, &want);
        }
    }
}

/// `op(a) op(b)` for every batch index, in f64.
fn matmul_reference(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> (Vec<usize>, Vec<f64>) {
    let (sa, sb) = (a.shape(), b.shape());
    let (ra, rb) = (sa.len(), sb.len());
    let (m, k) = if ta { (sa[ra - 1], sa[ra - 2]) } else { (sa[ra - 2], sa[ra - 1]) };
    let n = if tb { sb[rb - 2] } else { sb[rb - 1] };
    let (ba, bb) = (&sa[..ra - 2], &sb[..rb - 2]);
    let rank = ba.len().max(bb.len());
    let batch: Vec<usize> = (0..rank)
        .map(|d| {
            let dim = |s: &[usize]| if d + s.len() < rank { 1 } else { s[d + s.len() - rank] };
            dim(ba).max(dim(bb))
        })
        .collect();
    let mut out = Vec::new();
    for e in 0..batch.iter().product() {
        let idx = unravel(e, &batch);
        let (ia, ib) = (broadcast_index(&idx, ba), broadcast_index(&idx, bb));
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| {
                        let av = if ta { a.data()[ia * m * k + p * m + i] } else { a.data()[ia * m * k + i * k + p] };
                        let bv = if tb { b.data()[ib * k * n + j * k + p] } else { b.data()[ib * k * n + p * n + j] };
                        av as f64 * bv as f64
                    })
                    .sum();
                out.push(s);
            }
        }
    }
    let mut shape = batch;
    shape.extend([m, n]);
    (shape, out)
}

fn matmul(ta: bool, tb: bool) -> MatMul {
    let op = MatMul::new();
    let op = if ta { op.transpose_a() } else { op };
    if tb {
        op.transpose_b()
    } else {
        op
    }
}

#[test]
fn matmul_gradients() {
    type Case = (&'static [usize], &'static [usize], bool, bool);
    let cases: [Case; 10] = [
        (&[3, 5], &[5, 4], false, false),
        (&[7, 13], &[13, 11], false, false),
        (&[2, 3, 5], &[2, 5, 4], false, false),
        (&[2, 3, 5], &[5, 4], false, false),
        (&[3, 5], &[2, 5, 4], false, false),
        (&[2, 5, 3], &[2, 5, 4], true, false),
        (&[2, 3, 5], &[2, 4, 5], false, true),
        (&[5, 3], &[2, 1, 4, 5], true, true),
        (&[2, 1, 3, 5], &[3, 5, 4], false, false),
        (&[3, 1, 5], &[5, 1], false, false),
    ];
    for (sa, sb, ta, tb) in cases {
        let inputs = CheckInputs::new().with("a", random_tensor(sa, 8)).with("b", random_tensor(sb, 9));
        check_with(&format!("matmul {sa:?} {sb:?} ta {ta} tb {tb}"), inputs, &|g| {
            g.add("op", matmul(ta, tb), &["a", "b"]);
        });
    }
    // The same value on both sides: `x^T x`.
    check_with("matmul x^T x", CheckInputs::new().with("a", random_tensor(&[2, 5, 3], 10)), &|g| {
        g.add("op", MatMul::new().transpose_a(), &["a", "a"]);
    });
}

/// `(a shape, b shape, ta, tb)` of a batched product with broadcast batch axes.
fn matmul_case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, bool, bool)> {
    (broadcast_pair(), 1usize..20, 1usize..20, 1usize..20, any::<bool>(), any::<bool>()).prop_map(
        |((ba, bb), m, k, n, ta, tb)| {
            // At most two batch axes: the last ones, which still broadcast.
            let mut sa = ba[ba.len().saturating_sub(2)..].to_vec();
            let mut sb = bb[bb.len().saturating_sub(2)..].to_vec();
            sa.extend(if ta { [k, m] } else { [m, k] });
            sb.extend(if tb { [n, k] } else { [k, n] });
            (sa, sb, ta, tb)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn matmul_matches_reference((sa, sb, ta, tb) in matmul_case(), seed in any::<u64>()) {
        let (a, b) = (tensor(&sa, seed), tensor(&sb, seed ^ 2));
        let inputs = CheckInputs::new().with("a", a.clone()).with("b", b.clone());
        let (shape, want) = matmul_reference(&a, &b, ta, tb);
        for ctx in contexts() {
            let (got_shape, got) = run_on(&ctx, &inputs, &|g| {
                g.add("op", matmul(ta, tb), &["a", "b"]);
            })
            .unwrap();
            prop_assert_eq!(&got_shape, &shape);
            assert_close(&format!("matmul {sa:?} {sb:?} on {:?}", ctx.isa()), &got, &want);
        }
    }
}

#[test]
fn permute_and_transpose_gradients() {
    let x = random_tensor(&[2, 3, 4], 11);
    for axes in [[2, 0, 1], [0, 2, 1], [1, 0, 2]] {
        check_with(&format!("permute {axes:?}"), CheckInputs::new().with("x", x.clone()), &|g| {
            g.add("op", Permute::new(&axes), &["x"]);
        });
    }
    check_with("transpose", CheckInputs::new().with("x", random_tensor(&[2, 3, 5, 2], 12)), &|g| {
        g.add("op", Transpose::new(1, 2), &["x"]);
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn permute_matches_reference(
        shape in prop::collection::vec(1usize..5, 1..6),
        keys in prop::collection::vec(any::<u32>(), 6),
        seed in any::<u64>(),
    ) {
        let mut axes: Vec<usize> = (0..shape.len()).collect();
        axes.sort_by_key(|&d| keys[d]);
        let x = tensor(&shape, seed);
        let out: Vec<usize> = axes.iter().map(|&d| shape[d]).collect();
        let want: Vec<f64> = (0..x.len())
            .map(|o| {
                let idx = unravel(o, &out);
                let mut src = vec![0; shape.len()];
                axes.iter().zip(&idx).for_each(|(&d, &i)| src[d] = i);
                x.data()[ravel(&src, &shape)] as f64
            })
            .collect();
        let (got_shape, got) = run(&CheckInputs::new().with("x", x), &|g| {
            g.add("op", Permute::new(&axes), &["x"]);
        })
        .unwrap();
        prop_assert_eq!(got_shape, out);
        assert_close("permute", &got, &want);
    }
}

#[test]
fn reshape_infers_one_size() {
    let x = CheckInputs::new().with("x", random_tensor(&[2, 3, 4], 13));
    let shape_of = |spec: &'static [isize]| {
        run(&x, &|g| {
            g.add("op", Reshape::inferred(spec), &["x"]);
        })
    };
    assert_eq!(shape_of(&[0, -1]).unwrap().0, [2, 12]);
    assert_eq!(shape_of(&[-1, 4]).unwrap().0, [6, 4]);
    assert_eq!(shape_of(&[3, -1, 2]).unwrap().0, [3, 4, 2]);
    assert_eq!(shape_of(&[-1]).unwrap().1, x.f32[0].1.data(), "a view: the values unchanged");
    names_node("no size fits", shape_of(&[-1, 5]));
    names_node("two inferred sizes", shape_of(&[-1, -1]));
    names_node("a negative size", shape_of(&[-2, 12]));
    names_node("counts differ", shape_of(&[5, 5]));
    assert!(Reshape::inferred(&[0, -1]).view_of().is_some() && Reshape::new(&[0, 12]).view_of().is_some());
    // The batch axis of `Reshape::new` is kept.
    assert_eq!(
        run(&x, &|g| {
            g.add("op", Reshape::new(&[0, 12]), &["x"]);
        })
        .unwrap()
        .0,
        [2, 12]
    );
    check_with("reshape -1", x, &|g| {
        g.add("op", Reshape::inferred(&[0, -1, 2]), &["x"]);
    });
}

#[test]
fn slice_gradients() {
    let x = random_tensor(&[2, 7, 3], 14);
    for (axis, start, end, step) in [(1, 1, 6, 2), (0, 1, 2, 1), (2, 0, 3, 1), (1, 2, 7, 3), (1, 3, 3, 1)] {
        check_with(&format!("slice axis {axis} {start}:{end}:{step}"), CheckInputs::new().with("x", x.clone()), &|g| {
            g.add("op", Slice::new(axis, start, end).step(step), &["x"]);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn slice_matches_reference(
        shape in prop::collection::vec(1usize..7, 1..5),
        picks in (any::<usize>(), any::<usize>(), any::<usize>(), 1usize..4),
        seed in any::<u64>(),
    ) {
        let axis = picks.0 % shape.len();
        let n = shape[axis];
        let (start, len) = (picks.1 % (n + 1), picks.2 % (n + 1));
        let end = (start + len).min(n);
        let step = picks.3;
        let x = tensor(&shape, seed);
        let mut out = shape.clone();
        out[axis] = (start..end).step_by(step).count();
        let want: Vec<f64> = (0..out.iter().product())
            .map(|o| {
                let mut idx = unravel(o, &out);
                idx[axis] = start + idx[axis] * step;
                x.data()[ravel(&idx, &shape)] as f64
            })
            .collect();
        let (got_shape, got) = run(&CheckInputs::new().with("x", x), &|g| {
            g.add("op", Slice::new(axis, start, end).step(step), &["x"]);
        })
        .unwrap();
        prop_assert_eq!(got_shape, out);
        assert_close("slice", &got, &want);
    }
}

#[test]
fn index_select_gradients() {
    let x = random_tensor(&[3, 5, 2], 15);
    // Repeated indices: the gradient of a row read twice is the sum of both.
    let idx = ints(&[4], &[4, 0, 4, 2]);
    for axis in [1, 0] {
        let idx = if axis == 0 { ints(&[2, 2], &[2, 0, 2, 1]) } else { idx.clone() };
        check_with(
            &format!("index select axis {axis}"),
            CheckInputs::new().with("x", x.clone()).with_int("i", idx),
            &|g| {
                g.add("op", IndexSelect::new(axis), &["x", "i"]);
            },
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn index_select_matches_reference(
        shape in prop::collection::vec(1usize..6, 1..4),
        index_shape in prop::collection::vec(0usize..4, 0..3),
        axis in any::<usize>(),
        seed in any::<u64>(),
    ) {
        let axis = axis % shape.len();
        let x = tensor(&shape, seed);
        let k: usize = index_shape.iter().product();
        let index: Vec<i64> = random_vec(k, seed ^ 3).iter().map(|v| ((v + 1.0) / 2.0 * shape[axis] as f32) as i64 % shape[axis] as i64).collect();
        let mut out = shape[..axis].to_vec();
        out.extend(&index_shape);
        out.extend(&shape[axis + 1..]);
        let want: Vec<f64> = (0..out.iter().product())
            .map(|o| {
                let idx = unravel(o, &out);
                let pos = ravel(&idx[axis..axis + index_shape.len()], &index_shape);
                let mut src = idx[..axis].to_vec();
                src.push(index[pos] as usize);
                src.extend(&idx[axis + index_shape.len()..]);
                x.data()[ravel(&src, &shape)] as f64
            })
            .collect();
        let inputs = CheckInputs::new().with("x", x).with_int("i", ints(&index_shape, &index));
        let (got_shape, got) = run(&inputs, &|g| {
            g.add("op", Gather::new(axis), &["x", "i"]);
        })
        .unwrap();
        prop_assert_eq!(got_shape, out);
        assert_close("index select", &got, &want);
    }
}

#[test]
fn scatter_add_gradients() {
    let src = random_tensor(&[6, 3], 16);
    let idx = ints(&[6], &[3, 0, 3, 3, 1, 0]);
    let inputs = CheckInputs::new().with("src", src).with_int("i", idx);
    check_with("scatter-add into 5 rows", inputs.clone(), &|g| {
        g.add("op", ScatterAdd::new(5), &["src", "i"]);
    });
    // Rows from a third input, f32 (its gradient, zero, is checked too) or integer.
    check_with("scatter-add like f32", inputs.clone().with("h", random_tensor(&[4, 2], 17)), &|g| {
        g.add("op", ScatterAdd::like(), &["src", "i", "h"]);
    });
    check_with("scatter-add like int", inputs.clone().with_int("n", ints(&[7], &[0; 7])), &|g| {
        g.add("op", ScatterAdd::like(), &["src", "i", "n"]);
    });
    let (shape, _) = run(&inputs.with_int("n", ints(&[7], &[0; 7])), &|g| {
        g.add("op", ScatterAdd::like(), &["src", "i", "n"]);
    })
    .unwrap();
    assert_eq!(shape, [7, 3]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn scatter_add_matches_reference(
        edges in 0usize..12,
        rows in 1usize..6,
        feat in prop::collection::vec(1usize..4, 0..3),
        seed in any::<u64>(),
    ) {
        let mut shape = vec![edges];
        shape.extend(&feat);
        let src = tensor(&shape, seed);
        let f: usize = feat.iter().product();
        let index: Vec<i64> = random_vec(edges, seed ^ 4).iter().map(|v| ((v + 1.0) / 2.0 * rows as f32) as i64 % rows as i64).collect();
        let mut want = vec![0.0f64; rows * f];
        for (e, &r) in index.iter().enumerate() {
            for c in 0..f {
                want[r as usize * f + c] += src.data()[e * f + c] as f64;
            }
        }
        let inputs = CheckInputs::new().with("src", src).with_int("i", ints(&[edges], &index));
        let (got_shape, got) = run(&inputs, &|g| {
            g.add("op", ScatterAdd::new(rows), &["src", "i"]);
        })
        .unwrap();
        prop_assert_eq!(got_shape[0], rows);
        assert_close("scatter-add", &got, &want);
    }
}

#[test]
fn segment_reduction_gradients() {
    // Segments 1 and 4 are empty.
    let ids = ints(&[6], &[0, 0, 2, 2, 2, 3]);
    for kind in [SegmentKind::Sum, SegmentKind::Mean, SegmentKind::Max] {
        let x = if kind == SegmentKind::Max { separated(&[6, 3], 18) } else { random_tensor(&[6, 3], 18) };
        let inputs = CheckInputs::new().with("x", x).with_int("s", ids.clone());
        check_with(&format!("{kind:?}"), inputs.clone(), &|g| {
            g.add("op", SegmentReduce::new(kind, 5), &["x", "s"]);
        });
        check_with(&format!("{kind:?} like"), inputs.with("h", random_tensor(&[4, 1], 19)), &|g| {
            g.add("op", SegmentReduce::like(kind), &["x", "s", "h"]);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn segment_reductions_match_reference(
        rows in 0usize..14,
        segments in 1usize..6,
        feat in 1usize..5,
        seed in any::<u64>(),
    ) {
        let x = tensor(&[rows, feat], seed);
        let mut ids: Vec<i64> = random_vec(rows, seed ^ 5).iter().map(|v| ((v + 1.0) / 2.0 * segments as f32) as i64 % segments as i64).collect();
        ids.sort();
        for kind in [SegmentKind::Sum, SegmentKind::Mean, SegmentKind::Max] {
            let want: Vec<f64> = (0..segments * feat)
                .map(|o| {
                    let (s, c) = (o / feat, o % feat);
                    let vals: Vec<f64> = (0..rows).filter(|&r| ids[r] == s as i64).map(|r| x.data()[r * feat + c] as f64).collect();
                    match kind {
                        _ if vals.is_empty() => 0.0,
                        SegmentKind::Sum => vals.iter().sum(),
                        SegmentKind::Mean => vals.iter().sum::<f64>() / vals.len() as f64,
                        SegmentKind::Max => vals.iter().cloned().fold(f64::MIN, f64::max),
                    }
                })
                .collect();
            let inputs = CheckInputs::new().with("x", x.clone()).with_int("s", ints(&[rows], &ids));
            let (got_shape, got) = run(&inputs, &|g| {
                g.add("op", SegmentReduce::new(kind, segments), &["x", "s"]);
            })
            .unwrap();
            prop_assert_eq!(got_shape, vec![segments, feat]);
            assert_close(&format!("{kind:?}"), &got, &want);
        }
    }
}

/// Cross-entropy of `logits [..., c]` and labels, weighted by `w` (1 without), ignoring
/// `ignore`, in f64.
fn cross_entropy_reference(logits: &Tensor, labels: &[i64], w: Option<&[f32]>, ignore: Option<i64>) -> f64 {
    let c = *logits.shape().last().unwrap();
    let (mut sum, mut total) = (0.0, 0.0);
    for (r, (row, &l)) in logits.data().chunks_exact(c).zip(labels).enumerate() {
        if Some(l) == ignore {
            continue;
        }
        let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
        let wr = w.map_or(1.0, |w| w[r] as f64);
        sum += wr * (lse - row[l as usize] as f64);
        total += wr;
    }
    if total == 0.0 {
        0.0
    } else {
        sum / total
    }
}

#[test]
fn cross_entropy_over_any_rank() {
    let logits = random_tensor(&[2, 3, 5], 20);
    let labels = ints(&[2, 3], &[4, 0, -100, 2, -100, 1]);
    let all = ints(&[2, 3], &[4, 0, 3, 2, 0, 1]);
    let mut mask = random_tensor(&[2, 3], 21);
    mask.data_mut().iter_mut().for_each(|v| *v = 1.0 + 0.5 * *v);
    let inputs = |l: &IntTensor| CheckInputs::new().with("z", logits.clone()).with_int("t", l.clone());
    check_with("rank 3", inputs(&all), &|g| {
        g.add("op", SoftmaxCrossEntropy::new(), &["z", "t"]);
    });
    check_with("ignore index", inputs(&labels), &|g| {
        g.add("op", SoftmaxCrossEntropy::new().ignore_index(-100), &["z", "t"]);
    });
    // The weights' gradient is checked too.
    check_with("weighted, ignoring", inputs(&labels).with("w", mask.clone()), &|g| {
        g.add("op", SoftmaxCrossEntropy::new().ignore_index(-100), &["z", "t", "w"]);
    });
    type Case<'a> = (&'a IntTensor, Option<&'a Tensor>, Option<i64>);
    let cases: [Case; 4] = [
        (&all, None, None),
        (&labels, None, Some(-100)),
        (&all, Some(&mask), None),
        (&labels, Some(&mask), Some(-100)),
    ];
    for (l, w, ignore) in cases {
        let mut inp = inputs(l);
        if let Some(w) = w {
            inp = inp.with("w", w.clone());
        }
        let (shape, got) = run(&inp, &|g| {
            let op = ignore.map_or(SoftmaxCrossEntropy::new(), |i| SoftmaxCrossEntropy::new().ignore_index(i));
            g.add("op", op, if w.is_some() { &["z", "t", "w"] } else { &["z", "t"] });
        })
        .unwrap();
        assert!(shape.is_empty());
        let want = cross_entropy_reference(&logits, l.data(), w.map(|w| w.data()), ignore);
        assert!((got[0] as f64 - want).abs() < 1e-5, "{ignore:?}, weighted {}: {} vs {want}", w.is_some(), got[0]);
    }
    // Every position ignored: no loss.
    let none = ints(&[2, 3], &[-100; 6]);
    let (_, got) = run(&inputs(&none), &|g| {
        g.add("op", SoftmaxCrossEntropy::new().ignore_index(-100), &["z", "t"]);
    })
    .unwrap();
    assert_eq!(got, [0.0]);
    // The rank-3 loss is the 2-D loss of the same rows, bit for bit.
    let flat = Tensor::from_slice(&[6, 5], logits.data()).unwrap();
    let flat_inputs = CheckInputs::new().with("z", flat).with_int("t", ints(&[6], all.data()));
    let ce = |g: &mut GraphBuilder| {
        g.add("op", SoftmaxCrossEntropy::new(), &["z", "t"]);
    };
    assert_eq!(run(&flat_inputs, &ce).unwrap().1, run(&inputs(&all), &ce).unwrap().1);
}

/// Builds a graph of `inputs` and node `op` computing `op` from the values `reads`.
fn built(inputs: CheckInputs, op: impl Op, reads: &[&str]) -> Result<Model, LayerError> {
    let op = std::cell::Cell::new(Some(op));
    build(&inputs, &|g| {
        g.add("op", op.take().expect("built once"), reads);
    })
}

#[test]
fn bad_shapes_and_types_are_errors_when_built() {
    let f = |shape: &[usize]| CheckInputs::new().with("a", Tensor::zeros(shape));
    let ab = |sa: &[usize], sb: &[usize]| f(sa).with("b", Tensor::zeros(sb));
    let fi = |sa: &[usize], si: &[usize]| f(sa).with_int("i", IntTensor::zeros(si));
    let e = names_node("not broadcastable", built(ab(&[2, 3], &[4]), Add::new(), &["a", "b"]));
    assert!(e.contains("broadcast"), "{e}");
    names_node("sub not broadcastable", built(ab(&[2, 3, 4], &[3, 2]), Sub::new(), &["a", "b"]));
    names_node("mul of an integer", built(fi(&[3], &[3]), Mul::new(), &["a", "i"]));
    for (sa, sb, tb, what) in [
        (&[3, 4][..], &[5, 2][..], false, "inner sizes"),
        (&[3, 4], &[2, 4], false, "inner sizes without the transpose"),
        (&[4], &[4, 2], false, "rank 1"),
        (&[2, 3, 4], &[3, 4, 2], false, "batch axes"),
        (&[3, 4], &[5, 2], true, "inner sizes transposed"),
    ] {
        let op = if tb { MatMul::new().transpose_b() } else { MatMul::new() };
        names_node(what, built(ab(sa, sb), op, &["a", "b"]));
    }
    assert!(built(ab(&[3, 4], &[2, 4]), MatMul::new().transpose_b(), &["a", "b"]).is_ok());
    names_node("not a permutation", built(f(&[2, 3, 4]), Permute::new(&[0, 0, 1]), &["a"]));
    names_node("permutation of another rank", built(f(&[2, 3]), Permute::new(&[2, 0, 1]), &["a"]));
    names_node("transpose past the rank", built(f(&[2, 3]), Transpose::new(0, 2), &["a"]));
    names_node("slice past the end", built(f(&[2, 3]), Slice::new(1, 1, 4), &["a"]));
    names_node("slice step 0", built(f(&[2, 3]), Slice::new(1, 0, 2).step(0), &["a"]));
    // An f32 where an index is needed, and the other way round.
    names_node("f32 index", built(ab(&[4, 3], &[2]), IndexSelect::new(0), &["a", "b"]));
    let two_ints = CheckInputs::new().with_int("i", IntTensor::zeros(&[4])).with_int("j", IntTensor::zeros(&[2]));
    names_node("integer values", built(two_ints, IndexSelect::new(0), &["i", "j"]));
    names_node("index select past the rank", built(fi(&[4], &[2]), IndexSelect::new(1), &["a", "i"]));
    names_node("f32 scatter index", built(ab(&[4, 3], &[4]), ScatterAdd::new(3), &["a", "b"]));
    names_node("scatter index of another length", built(fi(&[4, 3], &[3]), ScatterAdd::new(3), &["a", "i"]));
    names_node("scatter-add like without a third input", built(fi(&[4, 3], &[4]), ScatterAdd::like(), &["a", "i"]));
    names_node("f32 segment ids", built(ab(&[4, 3], &[4]), SegmentReduce::new(SegmentKind::Sum, 2), &["a", "b"]));
    names_node("f32 labels", built(ab(&[4, 3], &[4]), SoftmaxCrossEntropy::new(), &["a", "b"]));
    names_node("labels of another shape", built(fi(&[2, 4, 3], &[4, 2]), SoftmaxCrossEntropy::new(), &["a", "i"]));
    let weights = ab(&[4, 3], &[3]).with_int("i", IntTensor::zeros(&[4]));
    names_node("weights of another shape", built(weights, SoftmaxCrossEntropy::new(), &["a", "i", "b"]));
}

#[test]
fn bad_indices_are_errors_when_run() {
    let x = CheckInputs::new().with("x", random_tensor(&[4, 3], 22));
    let with_index = |i: &[i64]| x.clone().with_int("i", ints(&[i.len()], i));
    let select = |g: &mut GraphBuilder| {
        g.add("op", IndexSelect::new(0), &["x", "i"]);
    };
    assert!(run(&with_index(&[3, 0]), &select).is_ok());
    for bad in [[4, 0], [0, -1]] {
        let e = names_node("index select out of range", run(&with_index(&bad), &select));
        assert!(e.contains("out of range"), "{e}");
    }
    let scatter = |g: &mut GraphBuilder| {
        g.add("op", ScatterAdd::new(2), &["x", "i"]);
    };
    assert!(run(&with_index(&[1, 0, 1, 1]), &scatter).is_ok());
    let e = names_node("scatter-add out of range", run(&with_index(&[1, 0, 2, 1]), &scatter));
    assert!(e.contains("out of range"), "{e}");
    let segment = |g: &mut GraphBuilder| {
        g.add("op", SegmentReduce::new(SegmentKind::Max, 3), &["x", "i"]);
    };
    assert!(run(&with_index(&[0, 0, 2, 2]), &segment).is_ok());
    let e = names_node("unsorted segment ids", run(&with_index(&[0, 2, 1, 2]), &segment));
    assert!(e.contains("sorted"), "{e}");
    let e = names_node("segment id out of range", run(&with_index(&[0, 1, 2, 3]), &segment));
    assert!(e.contains("out of range"), "{e}");
    let ce = |g: &mut GraphBuilder| {
        g.add("op", SoftmaxCrossEntropy::new().ignore_index(-100), &["x", "i"]);
    };
    assert!(run(&with_index(&[0, -100, 2, 1]), &ce).is_ok());
    let e = names_node("label out of range", run(&with_index(&[0, -1, 2, 1]), &ce));
    assert!(e.contains("out of range"), "{e}");
}
