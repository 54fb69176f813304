//! Inference rewrites of a graph: folding batch normalisation into the convolution before
//! it, wherever it stands (inside residual blocks and concatenations too), and fusing a
//! ReLU into the convolution before it.

use super::{Model, Source};
use crate::ops::{Activation, ActivationKind, BatchNorm, Conv2d};
use crate::param::{join_name, Fill, ParamScope};
use crate::LayerError;
use crate::Op;
use simdnn_kernels::conv::{self, BatchNormParams};

impl Model {
    /// Folds every BatchNorm whose input is a convolution's output read by nothing else
    /// (and without a fused ReLU) into that convolution's weights and bias, removing the
    /// BatchNorm node (its readers read the convolution instead; a convolution without a
    /// bias gains `name.bias`). For inference only: the running statistics become
    /// constants. Returns how many were folded.
    pub fn fold_batch_norms(&mut self) -> Result<usize, LayerError> {
        let mut folded = 0;
        loop {
            let g = &*self.graph;
            let found = g.nodes.iter().enumerate().find_map(|(b, node)| {
                node.op.as_any().downcast_ref::<BatchNorm>()?;
                let x = *node.inputs.first()?;
                let Source::Node(c, _) = g.values[x].source else { return None };
                let conv = g.nodes[c].op.as_any().downcast_ref::<Conv2d>()?;
                let single_reader = g.readers[x].len() == 1 && !g.outputs.iter().any(|&(_, o)| o == x);
                (single_reader && !conv.relu()).then_some((b, c))
            });
            let Some((b, c)) = found else { return Ok(folded) };
            self.fold_one(b, c)?;
            folded += 1;
        }
    }

    fn fold_one(&mut self, b: usize, c: usize) -> Result<(), LayerError> {
        let (conv_name, conv) = {
            let node = &self.graph.nodes[c];
            (node.name.clone(), node.op.as_any().downcast_ref::<Conv2d>().expect("checked by the caller"))
        };
        let bn = self.graph.nodes[b].op.as_any().downcast_ref::<BatchNorm>().expect("checked by the caller");
        let (gamma, beta, mean, var, eps) = bn.statistics(&self.params);
        let spec = *conv.spec();
        let (weight, bias) = (conv.weight(), conv.bias());
        let bias = match bias {
            Some(b) => b,
            None => {
                let mut rng = crate::init::rng(0);
                ParamScope::new(&mut self.params, &conv_name, &mut rng).param(
                    "bias",
                    &[spec.out_channels],
                    Fill::Zeros,
                    false,
                )?
            }
        };
        let replacement = conv.with_bias_param(bias);
        let g = spec.geom([1, spec.in_channels, spec.kernel.0, spec.kernel.1]).pad(0, 0).dilation(1, 1);
        let stats = BatchNormParams { gamma: &gamma, beta: &beta, running_mean: &mean, running_var: &var, eps };
        let mut w = std::mem::take(self.params.value_mut(weight));
        let result = conv::fold_batch_norm(&g, &stats, w.data_mut(), self.params.value_mut(bias).data_mut());
        *self.params.value_mut(weight) = w;
        result?;
        self.replace_and_bypass(c, Box::new(replacement), b)
    }

    /// Both inference rewrites: batch norms folded, then ReLUs fused. Returns how many of
    /// each.
    pub fn prepare_inference(&mut self) -> Result<(usize, usize), LayerError> {
        Ok((self.fold_batch_norms()?, self.fuse_relus()?))
    }

    /// Fuses every ReLU whose input is a convolution's output read by nothing else (and
    /// not a graph output) into that convolution's epilogue, removing the ReLU node. For
    /// inference: run it after [`Model::fold_batch_norms`], which leaves convolution, ReLU
    /// pairs where convolution, batch norm, ReLU stood. Returns how many were fused.
    pub fn fuse_relus(&mut self) -> Result<usize, LayerError> {
        let mut fused = 0;
        loop {
            let g = &*self.graph;
            let found = g.nodes.iter().enumerate().find_map(|(r, node)| {
                let act = node.op.as_any().downcast_ref::<Activation>()?;
                let x = *node.inputs.first()?;
                let Source::Node(c, _) = g.values[x].source else { return None };
                let conv = g.nodes[c].op.as_any().downcast_ref::<Conv2d>()?;
                let single_reader = g.readers[x].len() == 1 && !g.outputs.iter().any(|&(_, o)| o == x);
                (act.kind() == ActivationKind::Relu && single_reader && !conv.relu()).then(|| (r, c, conv.relu_fused()))
            });
            let Some((r, c, replacement)) = found else { return Ok(fused) };
            self.replace_and_bypass(c, Box::new(replacement), r)?;
            fused += 1;
        }
    }

    /// Replaces node `c`'s op with `op` and removes node `b`, whose single input (`c`'s
    /// output) its readers and the graph's outputs read instead.
    fn replace_and_bypass(&mut self, c: usize, op: Box<dyn Op>, b: usize) -> Result<(), LayerError> {
        let name = self.graph.nodes[c].name.clone();
        let graph = std::sync::Arc::get_mut(&mut self.graph).ok_or_else(|| LayerError::DuplicateName {
            name: join_name(&name, "(the graph is shared; rewrite it before sharing it)"),
        })?;
        graph.nodes[c].op = op;
        // The batch norm's readers and the outputs read the convolution's value instead.
        let (from, to) = (graph.nodes[b].outputs[0], graph.nodes[b].inputs[0]);
        for node in &mut graph.nodes {
            node.inputs.iter_mut().filter(|v| **v == from).for_each(|v| *v = to);
        }
        graph.outputs.iter_mut().filter(|(_, v)| *v == from).for_each(|(_, v)| *v = to);
        graph.nodes.remove(b);
        // Values name their producer by position: renumber those after the removed node.
        for v in &mut graph.values {
            if let Source::Node(n, k) = v.source {
                if n > b {
                    v.source = Source::Node(n - 1, k);
                }
            }
        }
        graph.index_readers();
        Ok(())
    }
}
