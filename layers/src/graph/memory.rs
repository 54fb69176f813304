//! Where each value of a pass is stored, for one set of input shapes.
//!
//! Inference reuses a buffer as soon as no later node reads the value in it (liveness over
//! the plan's order, buffers handed out best-fit, a free buffer grown when none is large
//! enough), so a chain needs about its largest input-plus-output pair rather than the sum
//! of its layers. A view (reshape, flatten) shares its input's buffer. Training keeps every
//! value, since backward reads them all.

use super::{Graph, Source};
use crate::op::{Mode, ValueInfo};
use crate::tensor::DType;

/// The storage of every value at one set of input shapes.
pub(crate) struct Layout {
    pub shapes: Vec<Vec<usize>>,
    pub mode: Mode,
    pub infos: Vec<ValueInfo>,
    /// Per value: its buffer (`NONE` for integer values, which graph inputs hold).
    pub storage_of: Vec<usize>,
    /// Per buffer: its size in values.
    pub sizes: Vec<usize>,
}

pub(crate) const NONE: usize = usize::MAX;

/// The planned activation memory of a model at some input shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReport {
    /// Bytes of the buffers the plan hands out: the pass's peak activation memory.
    pub peak_bytes: usize,
    /// Bytes of all f32 values of the pass, as if none shared a buffer.
    pub total_bytes: usize,
    /// Buffers the values share.
    pub buffers: usize,
}

impl Layout {
    pub fn plan(graph: &Graph, infos: Vec<ValueInfo>, shapes: Vec<Vec<usize>>, mode: Mode) -> Layout {
        let n_values = graph.values.len();
        let mut storage_of = vec![NONE; n_values];
        let mut sizes: Vec<usize> = Vec::new();
        // Per buffer: live values in it; free buffers by index.
        let mut users: Vec<usize> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let reuse = mode == Mode::Eval;
        let is_output: Vec<bool> = (0..n_values).map(|v| graph.outputs.iter().any(|&(_, o)| o == v)).collect();
        // The position of each value's last reader (outputs live to the end).
        let mut last_read = vec![None; n_values];
        for (n, node) in graph.nodes.iter().enumerate() {
            for &v in &node.inputs {
                last_read[v] = Some(n);
            }
        }
        let take = |size: usize, sizes: &mut Vec<usize>, users: &mut Vec<usize>, free: &mut Vec<usize>| {
            // Best fit among the free buffers, else the largest one grown, else a new one.
            let fit = free.iter().enumerate().filter(|(_, &b)| sizes[b] >= size).min_by_key(|(_, &b)| sizes[b]);
            let pick = fit.or_else(|| free.iter().enumerate().max_by_key(|(_, &b)| sizes[b])).map(|(i, _)| i);
            let b = match pick {
                Some(i) if reuse => free.swap_remove(i),
                _ => {
                    sizes.push(0);
                    users.push(0);
                    sizes.len() - 1
                }
            };
            sizes[b] = sizes[b].max(size);
            users[b] += 1;
            b
        };
        for (i, &(_, v)) in graph.inputs.iter().enumerate() {
            debug_assert_eq!(graph.values[v].source, Source::Input(i));
            if infos[v].dtype == DType::F32 {
                storage_of[v] = take(infos[v].len(), &mut sizes, &mut users, &mut free);
            }
        }
        let release = |v: usize, storage_of: &[usize], users: &mut Vec<usize>, free: &mut Vec<usize>| {
            let b = storage_of[v];
            if b != NONE {
                users[b] -= 1;
                if users[b] == 0 {
                    free.push(b);
                }
            }
        };
        // Graph inputs nobody reads are free at once.
        for &(_, v) in &graph.inputs {
            if reuse && last_read[v].is_none() && !is_output[v] {
                release(v, &storage_of, &mut users, &mut free);
            }
        }
        for (n, node) in graph.nodes.iter().enumerate() {
            match node.op.view_of() {
                Some(i) => {
                    let b = storage_of[node.inputs[i]];
                    storage_of[node.outputs[0]] = b;
                    if b != NONE {
                        users[b] += 1;
                    }
                }
                None => {
                    for &v in &node.outputs {
                        if infos[v].dtype == DType::F32 {
                            storage_of[v] = take(infos[v].len(), &mut sizes, &mut users, &mut free);
                        }
                    }
                }
            }
            if !reuse {
                continue;
            }
            for (i, &v) in node.inputs.iter().enumerate() {
                let first_use = node.inputs[..i].iter().all(|&u| u != v);
                if first_use && last_read[v] == Some(n) && !is_output[v] {
                    release(v, &storage_of, &mut users, &mut free);
                }
            }
            for &v in &node.outputs {
                if last_read[v].is_none() && !is_output[v] {
                    release(v, &storage_of, &mut users, &mut free);
                }
            }
        }
        Layout { shapes, mode, infos, storage_of, sizes }
    }

    pub fn report(&self) -> MemoryReport {
        let total: usize = self.infos.iter().filter(|i| i.dtype == DType::F32).map(|i| i.len()).sum();
        MemoryReport {
            peak_bytes: self.sizes.iter().sum::<usize>() * 4,
            total_bytes: total * 4,
            buffers: self.sizes.len(),
        }
    }
}
