//! Elementwise sums, differences and products of two values (residual connections, gates,
//! biases), under NumPy broadcasting: shapes are aligned at the last axis and an axis of 1
//! (or a missing leading axis) is repeated to match the other input.

use super::broadcast::{broadcast_dim, broadcast_shape, broadcast_zip, check_broadcast, with_dims};
use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, ValueRef};
use crate::LayerError;

/// Which elementwise function of two values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Sub,
    Mul,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Add => "add",
            Kind::Sub => "sub",
            Kind::Mul => "mul",
        }
    }

    fn apply(self, u: f32, v: f32) -> f32 {
        match self {
            Kind::Add => u + v,
            Kind::Sub => u - v,
            Kind::Mul => u * v,
        }
    }

    /// `d y / d input k` times `g`, where `u`, `v` are the two inputs' values.
    fn partial(self, k: usize, g: f32, u: f32, v: f32) -> f32 {
        match (self, k) {
            (Kind::Add, _) | (Kind::Sub, 0) => g,
            (Kind::Sub, _) => -g,
            (Kind::Mul, 0) => g * v,
            (Kind::Mul, _) => g * u,
        }
    }
}

const NOT_BROADCASTABLE: &str = "the inputs of an elementwise op (not broadcastable)";

/// The broadcast shape of two f32 inputs, or an error.
fn infer(layer: &str, inputs: &[ValueInfo]) -> Result<Vec<ValueInfo>, LayerError> {
    expect_f32(layer, inputs, 2)?;
    Ok(vec![ValueInfo::f32(&broadcast_shape(NOT_BROADCASTABLE, &inputs[0].shape, &inputs[1].shape)?)])
}

fn forward(kind: Kind, relu: bool, inputs: &[ValueRef], outputs: &mut Outputs) -> Result<(), LayerError> {
    let layer = kind.name();
    let (a, b) = (inputs[0].f32(layer)?, inputs[1].f32(layer)?);
    let act = |s: f32| if relu { s.max(0.0) } else { s };
    let y = &mut outputs[0];
    if a.shape == b.shape {
        y.resize(a.shape);
        for ((o, &u), &v) in y.data_mut().iter_mut().zip(a.data).zip(b.data) {
            *o = act(kind.apply(u, v));
        }
        return Ok(());
    }
    check_broadcast(NOT_BROADCASTABLE, a.shape, b.shape)?;
    with_dims(a.shape.len().max(b.shape.len()), |d| broadcast_dim(a.shape, b.shape, d), |s| y.resize(s));
    let out = y.data_mut();
    if let Some(inner) = row_broadcast(a.shape, b.shape) {
        for (row, a_row) in out.chunks_exact_mut(inner).zip(a.data.chunks_exact(inner)) {
            for ((o, &u), &v) in row.iter_mut().zip(a_row).zip(b.data) {
                *o = act(kind.apply(u, v));
            }
        }
        return Ok(());
    }
    broadcast_zip(a.shape, b.shape, &mut |o, i, j| out[o] = act(kind.apply(a.data[i], b.data[j])));
    Ok(())
}

/// The common broadcast of a bias: `b`'s shape is the trailing axes of `a`'s (leading 1s
/// aside), so `b` repeats once per row of `a` of `b.len()` values; the row length, or
/// `None` for any other broadcast (walked in general).
fn row_broadcast(a: &[usize], b: &[usize]) -> Option<usize> {
    let b = &b[b.iter().position(|&d| d != 1).unwrap_or(b.len())..];
    let inner: usize = b.iter().product();
    (b.len() <= a.len() && a[a.len() - b.len()..] == *b && inner > 0).then_some(inner)
}

fn backward(kind: Kind, relu: bool, io: Backward) -> Result<(), LayerError> {
    let layer = kind.name();
    let (y, dy) = (io.outputs[0], io.d_outputs[0]);
    check_grad(layer, y.shape, dy.shape)?;
    let (a, b) = (io.inputs[0].f32(layer)?, io.inputs[1].f32(layer)?);
    check_broadcast(NOT_BROADCASTABLE, a.shape, b.shape)?;
    // The gradient through the fused ReLU.
    let g = |o: usize| if relu && y.data[o] <= 0.0 { 0.0 } else { dy.data[o] };
    for (k, dx) in io.d_inputs.iter_mut().enumerate() {
        let Some(dx) = dx.as_deref_mut() else { continue };
        let x = if k == 0 { a } else { b };
        dx.resize(x.shape);
        let d = dx.data_mut();
        if a.shape == b.shape {
            for (o, d) in d.iter_mut().enumerate() {
                *d = kind.partial(k, g(o), a.data[o], b.data[o]);
            }
        } else if let (Kind::Add, Some(inner)) = (kind, row_broadcast(a.shape, b.shape)) {
            // Adding a bias: the gradient itself (through the ReLU) for the first input,
            // its sums down the rows for the bias, a row at a time.
            d.fill(0.0);
            for (start, (dy_row, y_row)) in dy.data.chunks_exact(inner).zip(y.data.chunks_exact(inner)).enumerate() {
                let target = if k == 0 { &mut d[start * inner..][..inner] } else { &mut d[..] };
                for ((t, &g), &out) in target.iter_mut().zip(dy_row).zip(y_row) {
                    *t += if relu && out <= 0.0 { 0.0 } else { g };
                }
            }
        } else if let Some(inner) = row_broadcast(a.shape, b.shape) {
            // A broadcast row: the first input's gradient elementwise, the second's summed
            // over rows.
            d.fill(0.0);
            for start in (0..a.data.len()).step_by(inner) {
                for j in 0..inner {
                    let o = start + j;
                    let v = kind.partial(k, g(o), a.data[o], b.data[j]);
                    d[if k == 0 { o } else { j }] += v;
                }
            }
        } else {
            // Summed over the axes the input was repeated along.
            d.fill(0.0);
            broadcast_zip(a.shape, b.shape, &mut |o, i, j| {
                d[if k == 0 { i } else { j }] += kind.partial(k, g(o), a.data[i], b.data[j]);
            });
        }
    }
    Ok(())
}

/// The [`Op`] of an elementwise struct, whose `parts()` gives its function and fused ReLU.
macro_rules! elementwise_op {
    ($t:ty) => {
        impl Op for $t {
            fn describe(&self) -> String {
                let (kind, relu) = self.parts();
                format!("{}{}", kind.name(), if relu { " +relu" } else { "" })
            }
            fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
                infer(self.parts().0.name(), inputs)
            }
            fn forward(
                &self,
                _: &OpCtx,
                inputs: &[ValueRef],
                outputs: &mut Outputs,
                _: &mut OpState,
            ) -> Result<(), LayerError> {
                let (kind, relu) = self.parts();
                forward(kind, relu, inputs, outputs)
            }
            fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
                let (kind, relu) = self.parts();
                backward(kind, relu, io)
            }
        }
    };
}

/// `y = relu?(a + b)`.
#[derive(Default)]
pub struct Add {
    relu: bool,
}

impl Add {
    pub fn new() -> Self {
        Add { relu: false }
    }
    /// ReLU after the sum (ResNet's blocks end so).
    pub fn with_relu(self) -> Self {
        Add { relu: true }
    }
    fn parts(&self) -> (Kind, bool) {
        (Kind::Add, self.relu)
    }
}

elementwise_op!(Add);

/// `y = a - b` elementwise.
#[derive(Default)]
pub struct Sub;

impl Sub {
    pub fn new() -> Self {
        Sub
    }
    fn parts(&self) -> (Kind, bool) {
        (Kind::Sub, false)
    }
}

elementwise_op!(Sub);

/// `y = a * b` elementwise.
#[derive(Default)]
pub struct Mul;

impl Mul {
    pub fn new() -> Self {
        Mul
    }
    fn parts(&self) -> (Kind, bool) {
        (Kind::Mul, false)
    }
}

elementwise_op!(Mul);
