//! The two recurrent ways of computing node states over a graph, shared by the node-level
//! networks ([`super::recurrent`]) and the graph classifier ([`super::graphcls`]):
//!
//! - [`Propagation::Contraction`]: Scarselli et al. 2009's recurrent graph network, one
//!   transition `x = tanh(P x W + b)` iterated to its fixed point, `W` kept inside a ball
//!   of radius below 1 so that the transition is a contraction ([`FixedPoint`],
//!   [`NormBound`]); the iteration count is an output;
//! - [`Propagation::Gated`]: Li et al. 2016's gated graph network, a fixed number of
//!   message-passing steps with one weight matrix per edge type, summed (or averaged), and a GRU update,
//!   the same weights at every step ([`MessagePassing`]).

use super::gcn::{EDGES, EDGE_TYPES};
use simdnn_layers::init::Init;
use simdnn_layers::message_passing::{Edges, MessagePassing, Update};
use simdnn_layers::ops::{FixedPoint, NormBound, SegmentKind, Weight};
use simdnn_layers::{Fill, GraphBuilder, LayerError};

/// How node states are computed from their initial states.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Propagation {
    /// Iterate to the fixed point: `radius` bounds `‖W‖_F` (below 1), the iterations stop
    /// when no state moves by more than `tolerance`, or at `max_iterations`.
    Contraction { radius: f32, tolerance: f32, max_iterations: usize },
    /// `steps` gated steps, the messages combined by `aggregate` (Li et al.: a sum).
    Gated { steps: usize, aggregate: SegmentKind },
}

impl Propagation {
    /// Scarselli et al.'s network with the defaults of this engine's models.
    pub const CONTRACTION: Propagation = Propagation::Contraction { radius: 0.9, tolerance: 1e-4, max_iterations: 100 };

    /// The name of the output holding the iteration count, for a contraction.
    pub fn iterations(&self) -> Option<&'static str> {
        match self {
            Propagation::Contraction { .. } => Some(ITERATIONS),
            Propagation::Gated { .. } => None,
        }
    }
}

/// The output holding a contraction's iteration count.
pub const ITERATIONS: &str = "iterations";

/// Declares the states of a graph's nodes from `h0` (`[N, hidden]`, the node's own input
/// term) along inputs [`EDGES`] and, with several `edge_types`, [`EDGE_TYPES`]; returns the
/// states' name (and exposes [`ITERATIONS`] for a contraction).
pub fn node_states(
    g: &mut GraphBuilder,
    propagation: Propagation,
    hidden: usize,
    edge_types: usize,
    h0: &str,
) -> Result<String, LayerError> {
    match propagation {
        Propagation::Contraction { radius, tolerance, max_iterations } => {
            let glorot = Fill::Random { init: Init::Glorot, fan_in: hidden, fan_out: hidden };
            let v = g.param("transition.weight", &[hidden, hidden], glorot, false)?;
            g.layer("transition.v", move |_| Ok(Weight::of(v)), &[])
                .layer("transition.w", move |_| Ok(NormBound::new(radius)), &["transition.v"])
                .layer("states", move |_| Ok(FixedPoint::new(tolerance, max_iterations)), &[EDGES, "transition.w", h0])
                .output(ITERATIONS, "states:1");
            Ok("states".into())
        }
        Propagation::Gated { steps, aggregate } => {
            let layer = MessagePassing { input: hidden, output: hidden, edge_types, aggregate, update: Update::Gru };
            let weights = layer.weights(g, "propagation")?;
            let edges = Edges { index: EDGES, types: (edge_types > 1).then_some(EDGE_TYPES) };
            let mut h = h0.to_string();
            for step in 1..=steps.max(1) {
                h = layer.apply(g, &weights, &format!("step{step}"), &h, edges)?;
            }
            Ok(h)
        }
    }
}
