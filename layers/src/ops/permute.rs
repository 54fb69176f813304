//! Reordering a value's axes (NCHW to NHWC, heads to the front, a matrix transposed): a
//! copy into the new order, not a view.

use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, ValueRef};
use crate::LayerError;

use super::broadcast::with_dims;

/// Which input axis each output axis is.
#[derive(Clone, Debug)]
enum Order {
    /// Output axis `d` is input axis `axes[d]`.
    Axes(Vec<usize>),
    /// Two axes exchanged, the others in place (for any rank).
    Swap(usize, usize),
}

/// `y` with axes reordered: output axis `d` is input axis `axes[d]` (`[0, 2, 1]` transposes
/// the last two axes of a rank-3 value), as NumPy's `transpose` and PyTorch's `permute`.
pub struct Permute {
    order: Order,
}

impl Permute {
    /// Output axis `d` is input axis `axes[d]`; `axes` must be a permutation of the input's
    /// axes (checked when the graph is built).
    pub fn new(axes: &[usize]) -> Self {
        Permute { order: Order::Axes(axes.to_vec()) }
    }

    /// Axes `a` and `b` exchanged, for an input of any rank above both.
    pub fn swap(a: usize, b: usize) -> Self {
        Permute { order: Order::Swap(a, b) }
    }

    /// The input axis of output axis `d`.
    fn axis(&self, d: usize) -> usize {
        match self.order {
            Order::Axes(ref axes) => axes[d],
            Order::Swap(a, b) if d == a => b,
            Order::Swap(a, b) if d == b => a,
            Order::Swap(..) => d,
        }
    }

    /// An error unless the order is a permutation of `rank` axes. Allocates only for the
    /// error.
    fn check(&self, shape: &[usize]) -> Result<(), LayerError> {
        let rank = shape.len();
        let valid = match self.order {
            Order::Axes(ref axes) => {
                axes.len() == rank && axes.iter().enumerate().all(|(i, &x)| x < rank && !axes[..i].contains(&x))
            }
            Order::Swap(a, b) => a < rank && b < rank,
        };
        if valid {
            return Ok(());
        }
        Err(LayerError::InputShape {
            layer: self.describe(),
            expected: match self.order {
                Order::Axes(ref axes) => format!("rank {} (one axis per entry of the permutation)", axes.len()),
                Order::Swap(a, b) => format!("rank above {}", a.max(b)),
            },
            got: shape.to_vec(),
        })
    }

    /// Calls `f(o, i)` for every flat index `o` of the output, in order, with `i` the flat
    /// index of the input value it holds.
    fn walk(&self, x: &[usize], f: &mut impl FnMut(usize, usize)) {
        self.walk_axis(x, 0, (0, 0), f);
    }

    fn walk_axis(&self, x: &[usize], d: usize, (o, i): (usize, usize), f: &mut impl FnMut(usize, usize)) {
        if d == x.len() {
            f(o, i);
            return;
        }
        let p = self.axis(d);
        let (n, stride) = (x[p], x[p + 1..].iter().product::<usize>());
        if d + 1 == x.len() {
            (0..n).for_each(|k| f(o * n + k, i + k * stride));
        } else {
            (0..n).for_each(|k| self.walk_axis(x, d + 1, (o * n + k, i + k * stride), f));
        }
    }
}

impl Op for Permute {
    fn describe(&self) -> String {
        match self.order {
            Order::Axes(ref axes) => format!("permute {axes:?}"),
            Order::Swap(a, b) => format!("transpose {a}<->{b}"),
        }
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32(&self.describe(), inputs, 1)?;
        let x = &inputs[0].shape;
        self.check(x)?;
        Ok(vec![ValueInfo::f32(&(0..x.len()).map(|d| x[self.axis(d)]).collect::<Vec<_>>())])
    }

    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = super::one_f32(|| self.describe(), inputs)?;
        self.check(x.shape)?;
        let y = &mut outputs[0];
        with_dims(x.shape.len(), |d| x.shape[self.axis(d)], |s| y.resize(s));
        let out = y.data_mut();
        self.walk(x.shape, &mut |o, i| out[o] = x.data[i]);
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (x, dy) = (io.inputs[0].f32(|| self.describe())?, io.d_outputs[0]);
        check_grad(|| self.describe(), io.outputs[0].shape, dy.shape)?;
        dx.resize(x.shape);
        let d = dx.data_mut();
        // A permutation: every input position is written once.
        self.walk(x.shape, &mut |o, i| d[i] = dy.data[o]);
        Ok(())
    }
}

/// Two axes exchanged ([`Permute::swap`] under its usual name): `Transpose::new(1, 2)` turns
/// `[b, m, n]` into `[b, n, m]`.
pub struct Transpose(Permute);

impl Transpose {
    pub fn new(a: usize, b: usize) -> Self {
        Transpose(Permute::swap(a, b))
    }
}

impl Op for Transpose {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn infer(&self, inputs: &[ValueInfo], params: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        self.0.infer(inputs, params)
    }
    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        self.0.forward(cx, inputs, outputs, state)
    }
    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        self.0.backward(cx, io)
    }
}
