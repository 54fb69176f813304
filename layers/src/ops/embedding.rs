//! Embedding lookup: integer ids to rows of a table.

use crate::init::Init;
use crate::op::{expect_inputs, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::{Fill, ParamId, ParamScope, Params};
use crate::tensor::{DType, ValueRef};
use crate::LayerError;

/// `ids [...] -> [..., dim]`: row `id` of the table `weight [vocab, dim]` for each id.
pub struct Embedding {
    vocab: usize,
    dim: usize,
    weight: ParamId,
}

impl Embedding {
    /// A table `name.weight` of `vocab` rows of `dim` values (uniform, Glorot bound).
    pub fn new(p: &mut ParamScope, vocab: usize, dim: usize) -> Result<Embedding, LayerError> {
        if vocab == 0 || dim == 0 {
            return Err(simdnn_kernels::KernelError::ZeroSize { what: "embedding table" }.into());
        }
        let fill = Fill::Random { init: Init::Glorot, fan_in: dim, fan_out: dim };
        Ok(Embedding { vocab, dim, weight: p.param("weight", &[vocab, dim], fill, false)? })
    }

    /// A lookup reading an existing table (tied input and output embeddings).
    pub fn from_params(params: &Params, weight: ParamId) -> Result<Embedding, LayerError> {
        match *params.value(weight).shape() {
            [vocab, dim] => Ok(Embedding { vocab, dim, weight }),
            ref s => {
                Err(LayerError::ParamShape { name: params.name(weight).into(), expected: vec![0, 0], got: s.to_vec() })
            }
        }
    }
}

impl Op for Embedding {
    fn describe(&self) -> String {
        format!("embedding {}x{}", self.vocab, self.dim)
    }

    fn params(&self) -> Vec<ParamId> {
        vec![self.weight]
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_inputs(&self.describe(), 1, inputs.len())?;
        if inputs[0].dtype != DType::I64 {
            return Err(LayerError::InputType {
                layer: self.describe(),
                expected: DType::I64,
                got: inputs[0].shape.clone(),
            });
        }
        let mut shape = inputs[0].shape.clone();
        shape.push(self.dim);
        Ok(vec![ValueInfo::f32(&shape)])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let ids = inputs[0].int("embedding")?;
        let table = cx.param(self.weight).data();
        let y = &mut outputs[0];
        y.resize_append(ids.shape(), self.dim);
        for (row, &id) in y.data_mut().chunks_exact_mut(self.dim).zip(ids.data()) {
            let i = usize::try_from(id).ok().filter(|&i| i < self.vocab).ok_or(LayerError::LabelRange {
                what: "embedding id",
                label: id,
                classes: self.vocab,
            })?;
            row.copy_from_slice(&table[i * self.dim..][..self.dim]);
        }
        Ok(())
    }

    fn backward(&self, _: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let ids = io.inputs[0].int("embedding")?;
        let Some(dw) = io.grads.get_mut(self.weight) else { return Ok(()) };
        for (g, &id) in io.d_outputs[0].data.chunks_exact(self.dim).zip(ids.data()) {
            // Ids were checked by forward.
            let row = &mut dw.data_mut()[id as usize * self.dim..][..self.dim];
            row.iter_mut().zip(g).for_each(|(d, v)| *d += v);
        }
        Ok(())
    }
}
