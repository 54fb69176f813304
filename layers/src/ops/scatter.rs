//! Adding rows into an output by an integer index (message passing: each edge's message
//! summed into its target node), and the input contract it shares with the segment
//! reductions: values `[E, ...]`, an index `[E]`, and the output's row count given either as
//! a constant or by the first axis of a third input.

use super::broadcast::with_dims;
use super::gather::{as_rows, check_indices, expect_types, gather_rows, scatter_add_rows};
use crate::op::{Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, DType, ValueRef};
use crate::LayerError;

/// How many rows an output of grouped rows has.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RowCount {
    /// A constant.
    Fixed(usize),
    /// The first axis of a third input (node features, of either type), read for its shape.
    Like,
}

impl RowCount {
    /// The output's rows for input shapes `shapes` (their count checked by the caller).
    fn of(self, shapes: &[&[usize]]) -> usize {
        match self {
            RowCount::Fixed(n) => n,
            RowCount::Like => shapes.get(2).and_then(|s| s.first()).copied().unwrap_or(0),
        }
    }

    /// `values [E, ...]` f32, `index [E]` integer (and the third input when `Like`) to
    /// `[rows, ...]`, or an error naming `layer`.
    pub(crate) fn infer(self, layer: &str, inputs: &[ValueInfo]) -> Result<Vec<ValueInfo>, LayerError> {
        let (n, roles) = match self {
            RowCount::Fixed(_) => (2, "values and index"),
            RowCount::Like => (3, "values, index and a value whose first axis is the output's rows"),
        };
        if inputs.len() != n {
            return Err(LayerError::InputCount {
                layer: layer.into(),
                expected: format!("{n} ({roles})"),
                got: inputs.len(),
            });
        }
        expect_types(layer, inputs, &[DType::F32, DType::I64])?;
        let (x, index) = (&inputs[0].shape, &inputs[1].shape);
        if x.is_empty() || index.len() != 1 || index[0] != x[0] {
            return Err(LayerError::InputShape {
                layer: layer.into(),
                expected: format!(
                    "values [rows, ...] and an index of one entry per row, [{}]",
                    x.first().unwrap_or(&0)
                ),
                got: if x.is_empty() { x.clone() } else { index.clone() },
            });
        }
        if let Some(like) = inputs.get(2).filter(|l| l.shape.is_empty()) {
            return Err(LayerError::InputShape {
                layer: layer.into(),
                expected: "a value of rank 1 or more (its first axis is the output's rows)".into(),
                got: like.shape.clone(),
            });
        }
        let shapes: Vec<&[usize]> = inputs.iter().map(|i| i.shape.as_slice()).collect();
        let mut out = x.clone();
        out[0] = self.of(&shapes);
        Ok(vec![ValueInfo::f32(&out)])
    }

    /// The output's rows for the inputs of a call.
    pub(crate) fn at(self, inputs: &[ValueRef]) -> usize {
        match self {
            RowCount::Fixed(n) => n,
            RowCount::Like => inputs.get(2).and_then(|v| v.shape().first()).copied().unwrap_or(0),
        }
    }

    /// Zeroes the gradient of the third input (only its shape is read), if wanted.
    pub(crate) fn zero_like_grad(io: &mut Backward) {
        if let (Some(Some(d)), Some(like)) = (io.d_inputs.get_mut(2), io.inputs.get(2)) {
            d.resize(like.shape());
            d.data_mut().fill(0.0);
        }
    }
}

/// `out[index[e], ...] += src[e, ...]` into `out [rows, ...]` starting from zeros: rows of
/// `src [E, ...]` summed by target row, the index `[E]` integer. Rows no index names stay 0;
/// an index outside `0..rows` is an error when run. The gradient of `src` is the output's
/// gathered by the index.
pub struct ScatterAdd {
    rows: RowCount,
}

impl ScatterAdd {
    /// An output of `rows` rows.
    pub fn new(rows: usize) -> Self {
        ScatterAdd { rows: RowCount::Fixed(rows) }
    }

    /// An output with as many rows as the first axis of a third input (the node features
    /// messages are summed onto), which is read for its shape only.
    pub fn like() -> Self {
        ScatterAdd { rows: RowCount::Like }
    }
}

impl Op for ScatterAdd {
    fn describe(&self) -> String {
        match self.rows {
            RowCount::Fixed(n) => format!("scatter-add into {n} rows"),
            RowCount::Like => "scatter-add".into(),
        }
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        self.rows.infer(&self.describe(), inputs)
    }

    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let (src, index) = (inputs[0].f32(|| self.describe())?, inputs[1].int(|| self.describe())?);
        let rows = self.rows.at(inputs);
        if src.shape.first() != Some(&index.len()) {
            let expected = src.shape.first().copied().unwrap_or(0);
            return Err(LayerError::LabelCount { what: "scatter-add index", expected, got: index.len() });
        }
        check_indices("scatter-add: index", index.data, rows)?;
        let y = &mut outputs[0];
        with_dims(src.shape.len(), |d| if d == 0 { rows } else { src.shape[d] }, |s| y.resize(s));
        y.data_mut().fill(0.0);
        let inner = src.shape[1..].iter().product();
        scatter_add_rows(src.data, y.data_mut(), (1, rows, inner), as_rows(index.data));
        Ok(())
    }

    fn backward(&self, _: &OpCtx, mut io: Backward) -> Result<(), LayerError> {
        RowCount::zero_like_grad(&mut io);
        let Some(dsrc) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (src, index) = (io.inputs[0].f32(|| self.describe())?, io.inputs[1].int(|| self.describe())?);
        let dy = io.d_outputs[0];
        check_grad(|| self.describe(), io.outputs[0].shape, dy.shape)?;
        let rows = self.rows.at(io.inputs);
        check_indices("scatter-add: index", index.data, rows)?;
        dsrc.resize(src.shape);
        let inner = src.shape[1..].iter().product();
        gather_rows(dy.data, dsrc.data_mut(), (1, rows, inner), as_rows(index.data));
        Ok(())
    }
}
