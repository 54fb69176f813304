//! The forward pass: every node in the plan's order, on the caller's [`State`].

use super::feed::{Feed, Feeds};
use super::memory::pool_of;
use super::state::{relend, value_ref, State};
use super::ModelRef;
use crate::op::{Ctx, Mode, OpCtx, Outputs};
use crate::tensor::{IntRef, TensorRef, ValueRef};
use crate::LayerError;
use std::time::{Duration, Instant};

impl<'m> ModelRef<'m> {
    /// Runs the plan on `feed` (every input of the graph, by name). In `Mode::Train` the
    /// state keeps what backward needs.
    pub fn forward(&self, ctx: &Ctx, state: &mut State, feed: &(impl Feeds + ?Sized)) -> Result<(), LayerError> {
        let g = self.graph;
        state.reset_for(g);
        state.trained = false;
        state.written.clear(); // the gradients of an earlier backward pass are stale now
                               // Every input given, with its declared type and rank; no name the graph lacks.
        if let Some(name) = feed.unknown(&|name| g.inputs.iter().any(|(n, _)| n == name)) {
            return Err(LayerError::UnknownInput { name });
        }
        for (name, v) in &g.inputs {
            let f = feed.get(name).ok_or_else(|| LayerError::MissingInput { name: name.clone() })?;
            let want = &g.values[*v].info;
            if f.dtype() != want.dtype || f.shape().len() != want.shape.len() {
                return Err(LayerError::InputMismatch {
                    name: name.clone(),
                    expected: format!("{} of rank {}", want.dtype.name(), want.shape.len()),
                    got: format!("{} of shape {:?}", f.dtype().name(), f.shape()),
                });
            }
        }
        state.select_layout(self, ctx.mode, feed)?;
        let State { layouts, current, storage, int_storage, ops, outs, int_outs, times, scratch, .. } = state;
        let layout = &layouts[current.expect("selected above")];
        for (name, v) in &g.inputs {
            let b = layout.storage_of[*v];
            match feed.get(name).expect("checked above") {
                Feed::F32(t) => {
                    storage[b].resize(t.shape);
                    storage[b].data_mut().copy_from_slice(t.data);
                }
                Feed::Int(t) => {
                    int_storage[b].resize(t.shape());
                    int_storage[b].data_mut().copy_from_slice(t.data());
                }
            }
        }
        let cx = OpCtx { ctx: *ctx, params: self.params };
        for (n, node) in g.nodes.iter().enumerate() {
            if node.op.view_of().is_some() {
                continue;
            }
            // The node's output buffers, taken out of the storage while it writes them.
            outs.clear();
            int_outs.clear();
            for &v in &node.outputs {
                let b = layout.storage_of[v];
                let int = pool_of(layout.infos[v].dtype) == 1;
                outs.push(if int { Default::default() } else { std::mem::take(&mut storage[b]) });
                int_outs.push(if int { std::mem::take(&mut int_storage[b]) } else { Default::default() });
            }
            let start = times.is_some().then(Instant::now);
            let mut refs: Vec<ValueRef> = relend(std::mem::take(&mut scratch.values));
            refs.extend(node.inputs.iter().map(|&v| value_ref(layout, storage, int_storage, v)));
            let result = node.op.forward(&cx, &refs, &mut Outputs::new(outs, int_outs), &mut ops[n]);
            scratch.values = relend(refs);
            record(times, n, 0, start);
            for ((&v, t), i) in node.outputs.iter().zip(outs.drain(..)).zip(int_outs.drain(..)) {
                let b = layout.storage_of[v];
                if pool_of(layout.infos[v].dtype) == 1 {
                    int_storage[b] = i;
                } else {
                    storage[b] = t;
                }
            }
            result.map_err(|e| e.in_node(&node.name))?;
            // An op must give each output the shape it inferred: the plan sized its buffer.
            for &v in &node.outputs {
                let b = layout.storage_of[v];
                let len = if pool_of(layout.infos[v].dtype) == 1 { int_storage[b].len() } else { storage[b].len() };
                if len < layout.infos[v].len() {
                    let e = LayerError::OutputShape {
                        layer: node.op.describe(),
                        expected: layout.infos[v].shape.clone(),
                        got: len,
                    };
                    return Err(e.in_node(&node.name));
                }
            }
        }
        state.trained = ctx.mode == Mode::Train;
        Ok(())
    }

    /// `(node, forward, backward)` times of the last passes of a profiling `state`
    /// ([`State::profile`]).
    pub fn node_times(&self, state: &State) -> Vec<(&'m str, Duration, Duration)> {
        let g = self.graph;
        match &state.times {
            Some(t) if state.graph_id == g.id => {
                g.nodes.iter().zip(t).map(|(n, &[f, b])| (n.name.as_str(), f, b)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The value of output `name` of the last forward pass of `state`.
    fn output_value<'s>(&self, state: &'s State, name: &str) -> Result<ValueRef<'s>, LayerError> {
        let g = self.graph;
        let &(_, v) = g
            .outputs
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| LayerError::UnknownOutput { name: name.to_string() })?;
        let layout = state.layout().filter(|_| state.graph_id == g.id).ok_or(LayerError::NoForward)?;
        Ok(value_ref(layout, &state.storage, &state.int_storage, v))
    }

    /// f32 output `name` of the last forward pass of `state`.
    pub fn output<'s>(&self, state: &'s State, name: &str) -> Result<TensorRef<'s>, LayerError> {
        self.output_value(state, name)?.f32(|| format!("output {name:?}"))
    }

    /// Integer output `name` of the last forward pass of `state` (an argmax, sampled ids).
    pub fn int_output<'s>(&self, state: &'s State, name: &str) -> Result<IntRef<'s>, LayerError> {
        self.output_value(state, name)?.int(|| format!("output {name:?}"))
    }
}

/// Records the time since `start` as node `n`'s pass (0 forward, 1 backward).
pub(super) fn record(times: &mut Option<Vec<[Duration; 2]>>, n: usize, pass: usize, start: Option<Instant>) {
    if let (Some(times), Some(start)) = (times.as_mut(), start) {
        times[n][pass] = start.elapsed();
    }
}
