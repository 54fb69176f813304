//! A message-passing layer (Gilmer et al. 2017) declared into a [`GraphBuilder`] as a few
//! nodes: each node sends a message along each outgoing edge (a linear map of its state,
//! one weight matrix per edge type: `M(h_j, t) = h_j W_t`), each node aggregates the
//! messages it receives ([`Aggregate`]: sum, mean or maximum), and updates its state from
//! the aggregate:
//!
//! - [`Update::Linear`]: `h' = act(m + h W_root + b)` (a graph convolution with a separate
//!   weight for the node itself; Hamilton et al. 2017, Morris et al. 2019);
//! - [`Update::Gru`]: `h' = GRU(m, h)` (Li et al. 2016, gated graph networks: input and
//!   state the same size).
//!
//! The weights are made once ([`MessagePassing::weights`]) and may be applied by several
//! layers ([`MessagePassing::apply`]): a gated graph network applies the same ones at every
//! propagation step.

use crate::init::Init;
use crate::ops::{Activation, ActivationKind, Add, Aggregate, MatMul, Recurrent, Reshape, SegmentKind, Weight};
use crate::param::{Fill, ParamId};
use crate::{GraphBuilder, LayerError};

/// How a node's state is updated from its aggregated messages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Update {
    /// `act(m + h W_root + b)`, with no activation for `None`.
    Linear(Option<ActivationKind>),
    /// A GRU cell with the aggregate as its input and the state as its hidden state.
    Gru,
}

/// A message-passing layer's sizes and choices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MessagePassing {
    pub input: usize,
    pub output: usize,
    pub edge_types: usize,
    pub aggregate: SegmentKind,
    pub update: Update,
}

/// The edges a layer passes messages along: the names of the integer index `[2, E]`
/// (targets, then sources) and, with several edge types, of the types `[E]`.
#[derive(Clone, Copy, Debug)]
pub struct Edges<'a> {
    pub index: &'a str,
    pub types: Option<&'a str>,
}

/// A layer's weights, to apply once or many times.
#[derive(Clone)]
pub struct MessageWeights {
    /// `[input, edge_types * output]`: the messages of every edge type in one product.
    message: ParamId,
    root: Option<(ParamId, ParamId)>,
    gru: Option<Recurrent>,
}

impl MessagePassing {
    /// Creates the weights under `name`: `NAME.message` (Glorot), and `NAME.root` and
    /// `NAME.bias` or the GRU's (`NAME.gru.weight_ih_l0`, ...).
    pub fn weights(&self, g: &mut GraphBuilder, name: &str) -> Result<MessageWeights, LayerError> {
        let MessagePassing { input, output, edge_types, update, .. } = *self;
        if update == Update::Gru && input != output {
            return Err(LayerError::InputShape {
                layer: format!("{name}: a GRU update"),
                expected: format!("a state of {output} features, as the messages"),
                got: vec![input],
            });
        }
        let glorot = |fan_out| Fill::Random { init: Init::Glorot, fan_in: input, fan_out };
        let types = edge_types.max(1);
        let message = g.param(&format!("{name}.message"), &[input, types * output], glorot(output), true)?;
        let (root, gru) = match update {
            Update::Linear(_) => {
                let root = g.param(&format!("{name}.root"), &[input, output], glorot(output), true)?;
                let bias = g.param(&format!("{name}.bias"), &[output], Fill::Constant(0.0), false)?;
                (Some((root, bias)), None)
            }
            Update::Gru => (None, Some(Recurrent::gru(output, output).build(&mut g.scope(&format!("{name}.gru")))?)),
        };
        Ok(MessageWeights { message, root, gru })
    }

    /// Declares one layer named `name` on state `h` (`[N, input]`) with weights `w`;
    /// returns the name of the new state (`[N, output]`).
    pub fn apply(
        &self,
        g: &mut GraphBuilder,
        w: &MessageWeights,
        name: &str,
        h: &str,
        edges: Edges,
    ) -> Result<String, LayerError> {
        let out = self.output;
        let node = |part: &str| format!("{name}.{part}");
        let message = w.message;
        g.layer(&node("wm"), move |_| Ok(Weight::of(message)), &[]).layer(
            &node("messages"),
            |_| Ok(MatMul::new()),
            &[h, &node("wm")],
        );
        let aggregate = Aggregate::typed(self.aggregate, self.edge_types);
        match edges.types {
            Some(types) if self.edge_types > 1 => {
                g.layer(&node("aggregate"), move |_| Ok(aggregate), &[edges.index, &node("messages"), types])
            }
            _ => g.layer(&node("aggregate"), move |_| Ok(aggregate), &[edges.index, &node("messages")]),
        };
        match (self.update, w.root, &w.gru) {
            (Update::Linear(act), Some((root, bias)), _) => {
                g.layer(&node("wr"), move |_| Ok(Weight::of(root)), &[])
                    .layer(&node("root"), |_| Ok(MatMul::new()), &[h, &node("wr")])
                    .layer(&node("sum"), |_| Ok(Add::new()), &[&node("aggregate"), &node("root")])
                    .layer(&node("b"), move |_| Ok(Weight::of(bias)), &[]);
                match act {
                    Some(ActivationKind::Relu) => {
                        g.layer(name, |_| Ok(Add::new().with_relu()), &[&node("sum"), &node("b")]);
                    }
                    Some(kind) => {
                        g.layer(&node("pre"), |_| Ok(Add::new()), &[&node("sum"), &node("b")]).layer(
                            name,
                            move |_| Ok(Activation::new(kind)),
                            &[&node("pre")],
                        );
                    }
                    None => {
                        g.layer(name, |_| Ok(Add::new()), &[&node("sum"), &node("b")]);
                    }
                }
            }
            (Update::Gru, _, Some(gru)) => {
                let gru = gru.clone();
                let seq = || Reshape::inferred(&[1, -1, out as isize]);
                g.add(&node("x"), seq(), &[&node("aggregate")])
                    .add(&node("h0"), seq(), &[h])
                    .layer(&node("gru"), move |_| Ok(gru), &[&node("x"), &node("h0")])
                    .layer(name, |_| Ok(Reshape::inferred(&[-1, out as isize])), &[&format!("{}:1", node("gru"))]);
            }
            _ => {
                g.fail(LayerError::InputShape {
                    layer: format!("{name}: weights made for another update"),
                    expected: format!("{:?}", self.update),
                    got: Vec::new(),
                });
            }
        }
        Ok(name.to_string())
    }
}
