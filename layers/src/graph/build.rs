//! Building a graph: named inputs, nodes that read values by name, named outputs; checked
//! (unknown names, cycles, shapes) when built, not when run.

use super::{Graph, Model, Node, Source, Value};
use crate::init::{rng, Rng};
use crate::op::{Op, ValueInfo};
use crate::param::{Fill, ParamId, ParamScope, Params};
use crate::tensor::DType;
use crate::LayerError;
use std::collections::HashMap;

struct NodeDecl {
    name: String,
    op: Box<dyn Op>,
    inputs: Vec<String>,
}

/// Declares a model: inputs with an example shape, nodes, parameters and outputs.
///
/// A node's outputs are values named after it: `name` for its only (or first) output,
/// `name:k` for output `k`. Nodes may be added in any order; [`GraphBuilder::build`] sorts
/// them and reports a cycle, a name read but never produced, or shapes that do not fit.
pub struct GraphBuilder {
    inputs: Vec<(String, ValueInfo)>,
    nodes: Vec<NodeDecl>,
    outputs: Vec<(String, String)>,
    params: Params,
    rng: Rng,
    /// The first error of a declaration, reported by `build`.
    error: Option<LayerError>,
}

impl GraphBuilder {
    /// An empty graph whose parameters are drawn from `seed`.
    pub fn new(seed: u64) -> GraphBuilder {
        GraphBuilder {
            inputs: Vec::new(),
            nodes: Vec::new(),
            outputs: Vec::new(),
            params: Params::new(),
            rng: rng(seed),
            error: None,
        }
    }

    /// An f32 input; `shape` is an example (the first axis, the batch, may differ at run
    /// time, and so may others where the ops allow).
    pub fn input(&mut self, name: &str, shape: &[usize]) -> &mut Self {
        self.inputs.push((name.to_string(), ValueInfo::f32(shape)));
        self
    }

    /// An integer input (labels, token ids, edge lists).
    pub fn int_input(&mut self, name: &str, shape: &[usize]) -> &mut Self {
        self.inputs.push((name.to_string(), ValueInfo::int(shape)));
        self
    }

    /// Adds node `name` computing `op` from the values named `inputs`.
    pub fn add(&mut self, name: &str, op: impl Op, inputs: &[&str]) -> &mut Self {
        self.nodes.push(NodeDecl {
            name: name.to_string(),
            op: Box::new(op),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// Adds node `name` whose op `make` builds, creating its parameters under the node's
    /// name (`name.weight`, ...). An error of `make` is reported by `build`.
    pub fn layer<O: Op>(
        &mut self,
        name: &str,
        make: impl FnOnce(&mut ParamScope) -> Result<O, LayerError>,
        inputs: &[&str],
    ) -> &mut Self {
        match make(&mut ParamScope::new(&mut self.params, name, &mut self.rng)) {
            Ok(op) => self.add(name, op, inputs),
            Err(e) => {
                self.error.get_or_insert(e.in_node(name));
                self
            }
        }
    }

    /// Records an error met while declaring the graph (a layer that could not be made);
    /// `build` reports the first.
    pub fn fail(&mut self, e: LayerError) -> &mut Self {
        self.error.get_or_insert(e);
        self
    }

    /// A parameter of the model's own, outside any node (for ops built with explicit ids:
    /// weights shared by several nodes, tied weights).
    pub fn param(&mut self, name: &str, shape: &[usize], fill: Fill, decay: bool) -> Result<ParamId, LayerError> {
        ParamScope::new(&mut self.params, "", &mut self.rng).param(name, shape, fill, decay)
    }

    /// The parameters created so far (to build ops on existing ones with `from_params`).
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The parameter scope `prefix` (for helpers that build several ops of one block).
    pub fn scope(&mut self, prefix: &str) -> ParamScope<'_> {
        ParamScope::new(&mut self.params, prefix, &mut self.rng)
    }

    /// Exposes value `value` as output `name`.
    pub fn output(&mut self, name: &str, value: &str) -> &mut Self {
        self.outputs.push((name.to_string(), value.to_string()));
        self
    }

    /// A builder over existing weights (set to be reused by name), for [`Model::plan`].
    pub(crate) fn over(params: Params) -> GraphBuilder {
        GraphBuilder { params, ..GraphBuilder::new(0) }
    }

    /// Checks the declarations and builds the model.
    pub fn build(self) -> Result<Model, LayerError> {
        let (graph, params) = self.into_graph();
        Ok(Model::new(graph?, params))
    }

    /// The checked plan, and the weights (returned whether or not the plan is valid).
    pub(crate) fn into_graph(self) -> (Result<Graph, LayerError>, Params) {
        let GraphBuilder { inputs, nodes, outputs, params, error, .. } = self;
        let graph = match error {
            Some(e) => Err(e),
            None => plan(inputs, nodes, outputs, &params),
        };
        (graph, params)
    }
}

/// Resolves the names, orders the nodes and infers every shape.
fn plan(
    inputs: Vec<(String, ValueInfo)>,
    nodes: Vec<NodeDecl>,
    outputs: Vec<(String, String)>,
    params: &Params,
) -> Result<Graph, LayerError> {
    {
        // Names: inputs and nodes share one namespace.
        let mut seen = HashMap::new();
        for name in inputs.iter().map(|(n, _)| n).chain(nodes.iter().map(|n| &n.name)) {
            if seen.insert(name.clone(), ()).is_some() || name.contains(':') {
                return Err(LayerError::DuplicateName { name: name.clone() });
            }
        }
        // Resolve every input name to a producer: a graph input, or output k of a node.
        let input_index: HashMap<&str, usize> = inputs.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i)).collect();
        let node_index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.name.as_str(), i)).collect();
        let resolve = |reader: &str, value: &str| -> Result<Source, LayerError> {
            let (base, k) = match value.rsplit_once(':') {
                Some((b, k)) => (b, k.parse::<usize>().ok()),
                None => (value, Some(0)),
            };
            let unknown = || LayerError::UnknownValue { node: reader.to_string(), input: value.to_string() };
            let k = k.ok_or_else(unknown)?;
            if let Some(&i) = input_index.get(base) {
                return if k == 0 { Ok(Source::Input(i)) } else { Err(unknown()) };
            }
            node_index.get(base).map(|&n| Source::Node(n, k)).ok_or_else(unknown)
        };
        let mut reads = Vec::with_capacity(nodes.len());
        for n in &nodes {
            reads.push(n.inputs.iter().map(|v| resolve(&n.name, v)).collect::<Result<Vec<_>, _>>()?);
        }
        let order = topological_order(&nodes, &reads)?;

        // Shape inference in order, creating the values.
        let mut values: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, (name, info))| Value { name: name.clone(), source: Source::Input(i), info: info.clone() })
            .collect();
        let mut produced: HashMap<(usize, usize), usize> = HashMap::new();
        let mut graph_nodes = Vec::with_capacity(nodes.len());
        let mut decls: Vec<Option<NodeDecl>> = nodes.into_iter().map(Some).collect();
        for &n in &order {
            let decl = decls[n].take().expect("each node once");
            let input_values: Vec<usize> = reads[n]
                .iter()
                .zip(&decl.inputs)
                .map(|(s, text)| match *s {
                    Source::Input(i) => Ok(i),
                    // Sorted, so node m is built; k may lie beyond its outputs.
                    Source::Node(m, k) => produced
                        .get(&(m, k))
                        .copied()
                        .ok_or_else(|| LayerError::UnknownValue { node: decl.name.clone(), input: text.clone() }),
                })
                .collect::<Result<_, _>>()?;
            let infos: Vec<ValueInfo> = input_values.iter().map(|&v| values[v].info.clone()).collect();
            let out = decl.op.infer(&infos, params).map_err(|e| e.in_node(&decl.name))?;
            if decl.op.view_of().is_some_and(|i| out.len() != 1 || infos.get(i).map(|x| x.dtype) != Some(out[0].dtype))
            {
                let e = LayerError::InputShape {
                    layer: decl.op.describe(),
                    expected: "a view: one output of its input's type".into(),
                    got: vec![],
                };
                return Err(e.in_node(&decl.name));
            }
            let mut output_values = Vec::with_capacity(out.len());
            for (k, info) in out.into_iter().enumerate() {
                let name = if k == 0 { decl.name.clone() } else { format!("{}:{k}", decl.name) };
                values.push(Value { name, source: Source::Node(graph_nodes.len(), k), info });
                produced.insert((n, k), values.len() - 1);
                output_values.push(values.len() - 1);
            }
            graph_nodes.push(Node { name: decl.name, op: decl.op, inputs: input_values, outputs: output_values });
        }
        let value_index: HashMap<&str, usize> = values.iter().enumerate().map(|(i, v)| (v.name.as_str(), i)).collect();
        let mut graph_outputs = Vec::with_capacity(outputs.len());
        for (name, value) in &outputs {
            let v = value_index
                .get(value.as_str())
                .or_else(|| value_index.get(value.strip_suffix(":0").unwrap_or(value)))
                .copied()
                .ok_or_else(|| LayerError::UnknownOutput { name: value.clone() })?;
            graph_outputs.push((name.clone(), v));
        }
        let graph_inputs = (0..inputs.len()).map(|i| (inputs[i].0.clone(), i)).collect();
        Ok(Graph::new(graph_nodes, values, graph_inputs, graph_outputs))
    }
}

/// Kahn's algorithm over the declared nodes (ties in declaration order); the nodes left when
/// it stalls lie on or behind a cycle.
fn topological_order(nodes: &[NodeDecl], reads: &[Vec<Source>]) -> Result<Vec<usize>, LayerError> {
    let n = nodes.len();
    let mut indegree = vec![0usize; n];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, r) in reads.iter().enumerate() {
        for s in r {
            if let Source::Node(m, _) = *s {
                indegree[i] += 1;
                readers[m].push(i);
            }
        }
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &r in &readers[i] {
            indegree[r] -= 1;
            if indegree[r] == 0 {
                ready.insert(r);
            }
        }
    }
    if order.len() < n {
        let stuck = (0..n).filter(|&i| indegree[i] > 0).map(|i| nodes[i].name.clone()).collect();
        return Err(LayerError::Cycle { nodes: stuck });
    }
    Ok(order)
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
        }
    }
}
