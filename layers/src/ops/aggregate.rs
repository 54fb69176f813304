//! Message passing's aggregation (Gilmer et al. 2017, "Neural Message Passing for Quantum
//! Chemistry": `m_i = AGG_{j -> i} M(h_j, e_ji)`): each node combines the messages sent to
//! it along its incoming edges, by a sum, a mean or a per-feature maximum, with one message
//! per edge type (a relational graph: Li et al. 2016's gated graph networks keep a weight
//! matrix per edge type and direction).
//!
//! The messages come as one dense value `x [N, T·F]`, node `j`'s message along an edge of
//! type `t` in columns `t·F..(t+1)·F` (one GEMM computes them all: `H [W_0 … W_{T-1}]`).
//! The edges' structure is built once per caller and index ([`OpState::prepared`]): one CSR
//! matrix per edge type over the sparse kernels ([`simdnn_kernels::sparse::aggregate`]),
//! so every product is a vectorised SpMM, deterministic for any thread count.

use super::gather::check_indices;
use super::segment::SegmentKind;
use crate::op::{Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, DType, ValueRef};
use crate::LayerError;
use simdnn_kernels::sparse::{aggregate, max_entries, Csr, Reduce, Transposed, NO_ENTRY};

/// `index [2, E]` (integer: row 0 each edge's target, row 1 its source), messages
/// `x [N, T·F]` and, with `T > 1` edge types, integer `types [E]` (in `0..T`) to
/// `y [N, F]`: `y[i] = AGG { x[j, types[e]·F ..][..F] : e = (i, j) }`. A node without
/// incoming edges gets zeros; repeated edges count each time. The maximum's gradient goes
/// to the first edge holding it (types in order, then sources in order).
pub struct Aggregate {
    kind: SegmentKind,
    types: usize,
}

impl Aggregate {
    /// An aggregation of messages along edges of one type.
    pub fn new(kind: SegmentKind) -> Self {
        Aggregate { kind, types: 1 }
    }

    /// An aggregation over edges of `types` types, each reading its own block of columns.
    pub fn typed(kind: SegmentKind, types: usize) -> Self {
        Aggregate { kind, types: types.max(1) }
    }

    fn name(&self) -> &'static str {
        match self.kind {
            SegmentKind::Sum => "aggregate sum",
            SegmentKind::Mean => "aggregate mean",
            SegmentKind::Max => "aggregate max",
        }
    }

    /// `(index, x, types)` from 2 or 3 inputs (the types required with several).
    fn split<'v, T>(&self, inputs: &'v [T]) -> Result<(&'v T, &'v T, Option<&'v T>), LayerError> {
        match inputs {
            [index, x] if self.types == 1 => Ok((index, x, None)),
            [index, x, types] => Ok((index, x, Some(types))),
            _ => Err(LayerError::InputCount {
                layer: self.name().into(),
                expected: if self.types == 1 { "2 (index, x) or 3 (index, x, types)" } else { "3 (index, x, types)" }
                    .into(),
                got: inputs.len(),
            }),
        }
    }
}

/// One edge type's matrix.
struct TypeMatrix {
    csr: Csr,
    /// CSR entry `k` is edge `edges[k]` of the index.
    edges: Vec<u32>,
    transposed: Option<Transposed>,
}

/// One caller's structure, kept while the index and types stay the same.
#[derive(Default)]
struct Prepared {
    index: Vec<i64>,
    types: Vec<i64>,
    nodes: usize,
    built: bool,
    matrices: Vec<TypeMatrix>,
    /// Incoming edges of each node, all types.
    degree: Vec<u32>,
    /// The maximum's winning entry per output place (positions over the matrices in turn).
    winners: Vec<u32>,
}

impl Prepared {
    fn update(&mut self, index: &[i64], types: Option<&[i64]>, nodes: usize, kinds: usize) -> Result<(), LayerError> {
        let types = types.unwrap_or(&[]);
        if self.built && self.nodes == nodes && self.index == index && self.types == types {
            return Ok(());
        }
        let e = index.len() / 2;
        check_indices("aggregate index (row 0, targets)", &index[..e], nodes)?;
        check_indices("aggregate index (row 1, sources)", &index[e..], nodes)?;
        check_indices("edge type", types, kinds)?;
        self.degree.clear();
        self.degree.resize(nodes, 0);
        self.matrices.clear();
        for t in 0..kinds {
            let edges: Vec<u32> =
                (0..e).filter(|&k| types.get(k).map_or(0, |&v| v as usize) == t).map(|k| k as u32).collect();
            let targets: Vec<u32> = edges.iter().map(|&k| index[k as usize] as u32).collect();
            let sources: Vec<u32> = edges.iter().map(|&k| index[e + k as usize] as u32).collect();
            for &i in &targets {
                self.degree[i as usize] += 1;
            }
            let (csr, order) = Csr::from_coo_ordered(nodes, nodes, &targets, &sources)?;
            let edges = order.iter().map(|&k| edges[k as usize]).collect();
            self.matrices.push(TypeMatrix { csr, edges, transposed: None });
        }
        for m in &mut self.matrices {
            // The mean's weights, 1 / (the target's edges of all types).
            let rows = m.csr.row_ptr();
            let weights: Vec<f32> = (0..nodes)
                .flat_map(|i| {
                    let weight = 1.0 / self.degree[i].max(1) as f32;
                    std::iter::repeat_n(weight, (rows[i + 1] - rows[i]) as usize)
                })
                .collect();
            m.csr.set_values(Some(weights))?;
        }
        self.index = index.to_vec();
        self.types = types.to_vec();
        self.nodes = nodes;
        self.built = true;
        Ok(())
    }
}

impl Op for Aggregate {
    fn describe(&self) -> String {
        match self.types {
            1 => self.name().into(),
            t => format!("{} ({t} edge types)", self.name()),
        }
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        let (index, x, types) = self.split(inputs)?;
        let shape_error = |expected: &str, got: &[usize]| LayerError::InputShape {
            layer: self.name().into(),
            expected: expected.into(),
            got: got.to_vec(),
        };
        let type_error =
            |expected, got: &[usize]| LayerError::InputType { layer: self.name().into(), expected, got: got.to_vec() };
        if index.dtype != DType::I64 {
            return Err(type_error(DType::I64, &index.shape));
        }
        let [2, e] = index.shape[..] else { return Err(shape_error("an index [2, E]", &index.shape)) };
        if let Some(t) = types {
            if t.dtype != DType::I64 {
                return Err(type_error(DType::I64, &t.shape));
            }
            if t.shape != [e] {
                return Err(shape_error("edge types [E], one per edge of the index", &t.shape));
            }
        }
        if x.dtype != DType::F32 {
            return Err(type_error(DType::F32, &x.shape));
        }
        match x.shape[..] {
            [n, cols] if cols % self.types == 0 => Ok(vec![ValueInfo::f32(&[n, cols / self.types])]),
            _ => Err(shape_error(&format!("messages [N, {} * F], a block per edge type", self.types), &x.shape)),
        }
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let (index, x, types) = self.split(inputs)?;
        let (index, x) = (index.int(self.name())?, x.f32(self.name())?);
        let types = types.map(|t| t.int(self.name())).transpose()?;
        let [n, cols] = x.shape[..] else {
            return Err(LayerError::InputShape {
                layer: self.name().into(),
                expected: "[N, T * F]".into(),
                got: x.shape.to_vec(),
            });
        };
        let (ld, f) = (cols, cols / self.types);
        let p = state.prepared::<Prepared>();
        p.update(index.data(), types.as_ref().map(|t| t.data()), n, self.types)?;
        let y = &mut outputs[0];
        y.resize(&[n, f]);
        let cfg = cx.cfg();
        match self.kind {
            SegmentKind::Sum | SegmentKind::Mean => {
                for (t, m) in p.matrices.iter().enumerate() {
                    let a = if self.kind == SegmentKind::Mean {
                        m.csr.as_ref()
                    } else {
                        m.csr.as_ref().with_values(None)?
                    };
                    aggregate(cfg, a, Reduce::Sum, (&x.data[t * f..], ld), f, (y.data_mut(), f), t > 0)?;
                }
            }
            SegmentKind::Max => {
                y.data_mut().fill(f32::NEG_INFINITY);
                for (t, m) in p.matrices.iter().enumerate() {
                    let a = m.csr.as_ref().with_values(None)?;
                    aggregate(cfg, a, Reduce::Max, (&x.data[t * f..], ld), f, (y.data_mut(), f), true)?;
                }
                for (row, &d) in y.data_mut().chunks_exact_mut(f.max(1)).zip(&p.degree) {
                    if d == 0 {
                        row.fill(0.0);
                    }
                }
                if cx.is_train() {
                    p.winners.clear();
                    p.winners.resize(n * f, NO_ENTRY);
                    let mut base = 0u32;
                    for (t, m) in p.matrices.iter().enumerate() {
                        let a = m.csr.as_ref().with_values(None)?;
                        max_entries(a, (&x.data[t * f..], ld), f, y.data(), base, &mut p.winners)?;
                        base += m.csr.nnz() as u32;
                    }
                }
            }
        }
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let (index, x, _) = self.split(io.inputs)?;
        let (index, x) = (index.int(self.name())?, x.f32(self.name())?);
        let dy = io.d_outputs[0];
        let (n, ld) = (x.shape[0], x.shape[1]);
        let f = ld / self.types;
        check_grad(self.name(), dy.shape, &[n, f])?;
        let p = io.state.prepared::<Prepared>();
        let Some(dx) = io.d_inputs[1].as_deref_mut() else { return Ok(()) };
        if !p.built {
            return Err(LayerError::NoForward);
        }
        dx.resize(&[n, ld]);
        match self.kind {
            SegmentKind::Sum | SegmentKind::Mean => {
                for (t, m) in p.matrices.iter_mut().enumerate() {
                    let csr = &m.csr;
                    let tr = m.transposed.get_or_insert_with(|| csr.transpose());
                    let a = if self.kind == SegmentKind::Mean {
                        tr.csr.as_ref()
                    } else {
                        tr.csr.as_ref().with_values(None)?
                    };
                    aggregate(cx.cfg(), a, Reduce::Sum, (dy.data, f), f, (&mut dx.data_mut()[t * f..], ld), false)?;
                }
            }
            SegmentKind::Max => {
                let dx = dx.data_mut();
                dx.fill(0.0);
                let e = index.data().len() / 2;
                let sources = &index.data()[e..];
                let (mut base, mut firsts) = (0usize, Vec::with_capacity(p.matrices.len()));
                for m in &p.matrices {
                    firsts.push(base);
                    base += m.edges.len();
                }
                for (place, &w) in p.winners.iter().enumerate() {
                    if w == NO_ENTRY {
                        continue;
                    }
                    let t = firsts.partition_point(|&b| b <= w as usize) - 1;
                    let edge = p.matrices[t].edges[w as usize - firsts[t]] as usize;
                    dx[sources[edge] as usize * ld + t * f + place % f] += dy.data[place];
                }
            }
        }
        Ok(())
    }
}
