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
    /// Per value: its buffer in the pool of its type (f32 or integer).
    pub storage_of: Vec<usize>,
    /// Per buffer of each pool (`[f32, integer]`): its size in values.
    pub sizes: [Vec<usize>; 2],
}

/// The planned activation memory of a model at some input shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReport {
    /// Bytes of the buffers the plan hands out: the pass's peak activation memory.
    pub peak_bytes: usize,
    /// Bytes of all values of the pass, as if none shared a buffer.
    pub total_bytes: usize,
    /// Buffers the values share.
    pub buffers: usize,
}

/// The pool a value's type draws from.
pub(crate) fn pool_of(dtype: DType) -> usize {
    match dtype {
        DType::F32 => 0,
        DType::I64 => 1,
    }
}

/// Bytes of one value of each pool.
const BYTES: [usize; 2] = [4, 8];

/// Buffers of one element type: their sizes, live values and free list.
#[derive(Default)]
struct Pool {
    sizes: Vec<usize>,
    users: Vec<usize>,
    free: Vec<usize>,
}

impl Pool {
    /// A buffer of at least `size` values: the best-fitting free one, else the largest free
    /// one grown, else a new one (always a new one without `reuse`).
    fn take(&mut self, size: usize, reuse: bool) -> usize {
        let sizes = &self.sizes;
        let fit = self.free.iter().enumerate().filter(|(_, &b)| sizes[b] >= size).min_by_key(|(_, &b)| sizes[b]);
        let pick = fit.or_else(|| self.free.iter().enumerate().max_by_key(|(_, &b)| sizes[b])).map(|(i, _)| i);
        let b = match pick {
            Some(i) if reuse => self.free.swap_remove(i),
            _ => {
                self.sizes.push(0);
                self.users.push(0);
                self.sizes.len() - 1
            }
        };
        self.sizes[b] = self.sizes[b].max(size);
        self.users[b] += 1;
        b
    }

    fn release(&mut self, b: usize) {
        self.users[b] -= 1;
        if self.users[b] == 0 {
            self.free.push(b);
        }
    }
}

impl Layout {
    pub fn plan(graph: &Graph, infos: Vec<ValueInfo>, shapes: Vec<Vec<usize>>, mode: Mode) -> Layout {
        let n_values = graph.values.len();
        let mut storage_of = vec![0; n_values];
        let mut pools = [Pool::default(), Pool::default()];
        let reuse = mode == Mode::Eval;
        let mut is_output = vec![false; n_values];
        for &(_, o) in &graph.outputs {
            is_output[o] = true;
        }
        // The position of each value's last reader (outputs live to the end).
        let mut last_read = vec![None; n_values];
        for (n, node) in graph.nodes.iter().enumerate() {
            for &v in &node.inputs {
                last_read[v] = Some(n);
            }
        }
        let take = |v: usize, pools: &mut [Pool; 2]| pools[pool_of(infos[v].dtype)].take(infos[v].len(), reuse);
        for (i, &(_, v)) in graph.inputs.iter().enumerate() {
            debug_assert_eq!(graph.values[v].source, Source::Input(i));
            storage_of[v] = take(v, &mut pools);
        }
        let release = |v: usize, storage_of: &[usize], pools: &mut [Pool; 2]| {
            pools[pool_of(infos[v].dtype)].release(storage_of[v]);
        };
        // Graph inputs nobody reads are free at once.
        for &(_, v) in &graph.inputs {
            if reuse && last_read[v].is_none() && !is_output[v] {
                release(v, &storage_of, &mut pools);
            }
        }
        for (n, node) in graph.nodes.iter().enumerate() {
            match node.op.view_of() {
                Some(i) => {
                    let (x, y) = (node.inputs[i], node.outputs[0]);
                    storage_of[y] = storage_of[x];
                    pools[pool_of(infos[x].dtype)].users[storage_of[x]] += 1;
                }
                None => {
                    for &v in &node.outputs {
                        storage_of[v] = take(v, &mut pools);
                    }
                }
            }
            if !reuse {
                continue;
            }
            for (i, &v) in node.inputs.iter().enumerate() {
                let first_use = node.inputs[..i].iter().all(|&u| u != v);
                if first_use && last_read[v] == Some(n) && !is_output[v] {
                    release(v, &storage_of, &mut pools);
                }
            }
            for &v in &node.outputs {
                if last_read[v].is_none() && !is_output[v] {
                    release(v, &storage_of, &mut pools);
                }
            }
        }
        let [f, i] = pools;
        Layout { shapes, mode, infos, storage_of, sizes: [f.sizes, i.sizes] }
    }

    pub fn report(&self) -> MemoryReport {
        let bytes = |sizes: &[usize], p: usize| sizes.iter().sum::<usize>() * BYTES[p];
        let total: usize = self.infos.iter().map(|i| i.len() * BYTES[pool_of(i.dtype)]).sum();
        MemoryReport {
            peak_bytes: bytes(&self.sizes[0], 0) + bytes(&self.sizes[1], 1),
            total_bytes: total,
            buffers: self.sizes[0].len() + self.sizes[1].len(),
        }
    }
}
