//! A chain, the convenient special case of a graph: each node reads the one before it.

use super::{GraphBuilder, Model};
use crate::op::Op;
use crate::param::ParamScope;
use crate::LayerError;

/// Builds a chain from one input: `Sequential::new("image", &[1, 1, 28, 28], seed)`, then
/// `.layer("conv1", |p| Conv2d::new(p, ...), ...)` and `.add("flat", Flatten::new())`, then
/// [`Sequential::build`] with the name of the output. [`Sequential::into_graph`] hands the
/// builder over to add more (a loss node reading the chain's end and labels, say).
pub struct Sequential {
    graph: GraphBuilder,
    last: String,
    len: usize,
}

impl Sequential {
    /// A chain reading input `input` (example shape `shape`), parameters drawn from `seed`.
    pub fn new(input: &str, shape: &[usize], seed: u64) -> Sequential {
        let mut graph = GraphBuilder::new(seed);
        graph.input(input, shape);
        Sequential { graph, last: input.to_string(), len: 0 }
    }

    /// Appends node `name` computing `op` from the previous node's output.
    pub fn add(mut self, name: &str, op: impl Op) -> Self {
        self.graph.add(name, op, &[&self.last]);
        self.last = name.to_string();
        self.len += 1;
        self
    }

    /// Appends node `name` whose op `make` builds with parameters named under `name`.
    pub fn layer<O: Op>(mut self, name: &str, make: impl FnOnce(&mut ParamScope) -> Result<O, LayerError>) -> Self {
        self.graph.layer(name, make, &[&self.last]);
        self.last = name.to_string();
        self.len += 1;
        self
    }

    /// The name of the chain's last value.
    pub fn last(&self) -> &str {
        &self.last
    }

    /// The chain as a graph builder (to add nodes that are not a chain), with the name of
    /// its last value.
    pub fn into_graph(self) -> Result<(GraphBuilder, String), LayerError> {
        if self.len == 0 {
            return Err(LayerError::EmptySequential);
        }
        Ok((self.graph, self.last))
    }

    /// The model, its last value exposed as output `output`.
    pub fn build(self, output: &str) -> Result<Model, LayerError> {
        let (mut graph, last) = self.into_graph()?;
        graph.output(output, &last);
        graph.build()
    }
}
