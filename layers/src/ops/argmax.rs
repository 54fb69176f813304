//! The index of the largest value along the last axis, as an integer value of the graph
//! (predicted classes, greedy decoding), for later nodes to gather by or compare.

use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::ValueRef;
use crate::LayerError;

/// The position of the largest value of `row` (the first of equal maxima; 0 if empty).
pub(crate) fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
}

/// `y[...] = argmax_c x[..., c]` (the first of equal maxima). An integer output: no
/// gradient flows through it.
#[derive(Default)]
pub struct ArgMax;

impl ArgMax {
    pub fn new() -> Self {
        ArgMax
    }
}

impl Op for ArgMax {
    fn describe(&self) -> String {
        "argmax".into()
    }
    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32("argmax", inputs, 1)?;
        match inputs[0].shape.split_last() {
            Some((&c, lead)) if c > 0 => Ok(vec![ValueInfo::int(lead)]),
            _ => Err(LayerError::InputShape {
                layer: "argmax".into(),
                expected: "at least one axis, the last not empty".into(),
                got: inputs[0].shape.clone(),
            }),
        }
    }
    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = inputs[0].f32("argmax")?;
        let (&c, lead) = x.shape.split_last().expect("checked by infer");
        let y = outputs.int(0, "argmax")?;
        y.resize(lead);
        for (o, row) in y.data_mut().iter_mut().zip(x.data.chunks_exact(c)) {
            *o = argmax(row) as i64;
        }
        Ok(())
    }
    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        // A step function: zero gradient almost everywhere.
        for dx in io.d_inputs.iter_mut().flatten() {
            dx.resize(io.inputs[0].shape());
            dx.data_mut().fill(0.0);
        }
        Ok(())
    }
}
