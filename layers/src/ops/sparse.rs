//! Sparse products as ops, DGL's two primitives:
//!
//! - [`SparseMatMul`] (SpMM): a sparse matrix, given as its entries, times a dense value:
//!   message passing's aggregation (`Â H` in a GCN: each node sums its neighbours' rows,
//!   weighted by the entries), and sparse features times a weight (a bag-of-words matrix in
//!   its non-zeros);
//! - [`SampledDot`] (SDDMM): the dot products of the row pairs an index names (a graph
//!   auto-encoder's edge scores `z_i · z_j`, never the dense `N x N` product).
//!
//! The entries come as an integer value `index [2, E]` (row 0: each entry's output row, the
//! edge's target; row 1: its input row, the source) and optionally their values `[E]`,
//! in any order. Each op builds the CSR structure (and, for backward, its transpose) once per
//! caller and index, in [`OpState::prepared`], and rebuilds it only when the index changes:
//! values may change every call (edge weights, sparse dropout on the values) at no cost.

use super::gather::check_indices;
use crate::op::{Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, DType, ValueRef};
use crate::LayerError;
use simdnn_kernels::sparse::{sddmm, spmm, Csr, CsrRef, Transposed};

/// How many rows the product has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rows {
    /// As many as the dense operand: a square matrix, a graph's adjacency.
    Square,
    Fixed(usize),
}

/// `index [2, E]` (integer), optional `values [E]`, `x [C, F]` to `y [R, F]`:
/// `y[i] = Σ values[e] x[j]` over the entries `e = (i, j)` (every value 1 without `values`).
/// Repeated entries add up. Gradients flow to `x` (the transposed product) and to the
/// values (one dot product per entry, SDDMM).
pub struct SparseMatMul {
    rows: Rows,
}

impl SparseMatMul {
    /// A square sparse matrix: `R = C`, the rows of `x` (a graph's nodes).
    pub fn square() -> Self {
        SparseMatMul { rows: Rows::Square }
    }
    /// A sparse matrix of `rows` rows (sparse features times a weight: `R` nodes, `C`
    /// features).
    pub fn with_rows(rows: usize) -> Self {
        SparseMatMul { rows: Rows::Fixed(rows) }
    }
    fn out_rows(&self, x_rows: usize) -> usize {
        match self.rows {
            Rows::Square => x_rows,
            Rows::Fixed(r) => r,
        }
    }
}

/// One caller's structure, kept while the index stays the same.
#[derive(Default)]
struct Prepared {
    /// The index the structure was built from, and the matrix's size.
    index: Vec<i64>,
    size: (usize, usize),
    csr: Option<Csr>,
    /// CSR entry `k` is given entry `order[k]`.
    order: Vec<u32>,
    /// The transpose, built on the first backward pass.
    transposed: Option<Transposed>,
    /// This call's values in CSR order, and in the transpose's.
    values: Vec<f32>,
    values_t: Vec<f32>,
    /// Per-entry gradients in CSR order.
    d_entries: Vec<f32>,
}

impl Prepared {
    /// Builds the structure unless `index` (checked against `rows x cols`) is the one it has.
    fn update(&mut self, index: &[i64], rows: usize, cols: usize) -> Result<(), LayerError> {
        if self.csr.is_some() && self.size == (rows, cols) && self.index == index {
            return Ok(());
        }
        let e = index.len() / 2;
        check_indices("sparse index (row 0)", &index[..e], rows)?;
        check_indices("sparse index (row 1)", &index[e..], cols)?;
        let targets: Vec<u32> = index[..e].iter().map(|&i| i as u32).collect();
        let sources: Vec<u32> = index[e..].iter().map(|&i| i as u32).collect();
        let (csr, order) = Csr::from_coo_ordered(rows, cols, &targets, &sources)?;
        self.index.clear();
        self.index.extend_from_slice(index);
        self.size = (rows, cols);
        self.csr = Some(csr);
        self.order = order;
        self.transposed = None;
        Ok(())
    }

    /// The transpose, with this call's values (`self.values`) gathered into it.
    fn transposed_with_values(&mut self) -> Result<CsrRef<'_>, LayerError> {
        let csr = self.csr.as_ref().expect("built by update");
        let t = self.transposed.get_or_insert_with(|| csr.transpose());
        t.gather_values(&self.values, &mut self.values_t)?;
        Ok(t.csr.as_ref().with_values(Some(&self.values_t))?)
    }

    /// This call's values in CSR order (all ones without `values`).
    fn place_values(&mut self, values: Option<&[f32]>) {
        self.values.clear();
        match values {
            Some(v) => self.values.extend(self.order.iter().map(|&k| v[k as usize])),
            None => self.values.resize(self.order.len(), 1.0),
        }
    }
}

impl SparseMatMul {
    fn name(&self) -> &'static str {
        "sparse matmul"
    }

    /// `(index, values, x)` from 2 or 3 inputs.
    fn split<'v, T>(&self, inputs: &'v [T]) -> Result<(&'v T, Option<&'v T>, &'v T), LayerError> {
        match inputs {
            [index, x] => Ok((index, None, x)),
            [index, values, x] => Ok((index, Some(values), x)),
            _ => Err(LayerError::InputCount {
                layer: self.name().into(),
                expected: "2 (index, x) or 3 (index, values, x)".into(),
                got: inputs.len(),
            }),
        }
    }
}

impl Op for SparseMatMul {
    fn describe(&self) -> String {
        match self.rows {
            Rows::Square => "sparse matmul (square)".into(),
            Rows::Fixed(r) => format!("sparse matmul ({r} rows)"),
        }
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        let (index, values, x) = self.split(inputs)?;
        let shape_error = |expected: &str, got: &[usize]| LayerError::InputShape {
            layer: self.name().into(),
            expected: expected.into(),
            got: got.to_vec(),
        };
        if index.dtype != DType::I64 {
            return Err(LayerError::InputType {
                layer: self.name().into(),
                expected: DType::I64,
                got: index.shape.clone(),
            });
        }
        let [2, e] = index.shape[..] else { return Err(shape_error("an index [2, E]", &index.shape)) };
        if let Some(v) = values {
            if v.dtype != DType::F32 || v.shape != [e] {
                return Err(shape_error("values [E], one per entry of the index", &v.shape));
            }
        }
        if x.dtype != DType::F32 {
            return Err(LayerError::InputType {
                layer: self.name().into(),
                expected: DType::F32,
                got: x.shape.clone(),
            });
        }
        let [c, f] = x.shape[..] else { return Err(shape_error("a dense operand [C, F]", &x.shape)) };
        Ok(vec![ValueInfo::f32(&[self.out_rows(c), f])])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let (index, values, x) = self.split(inputs)?;
        let (index, x) = (index.int(self.name())?, x.f32(self.name())?);
        let values = values.map(|v| v.f32(self.name())).transpose()?;
        let (c, f) = (x.shape[0], x.shape[1]);
        let r = self.out_rows(c);
        let p = state.prepared::<Prepared>();
        p.update(index.data(), r, c)?;
        p.place_values(values.map(|v| v.data));
        let csr = p.csr.as_ref().expect("built by update");
        let a = csr.as_ref().with_values(Some(&p.values))?;
        let y = &mut outputs[0];
        y.resize(&[r, f]);
        spmm(cx.cfg(), a, (x.data, f), f, (y.data_mut(), f), false)?;
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let (_, values, x) = self.split(io.inputs)?;
        let x = x.f32(self.name())?;
        let dy = io.d_outputs[0];
        let (c, f) = (x.shape[0], x.shape[1]);
        let p = io.state.prepared::<Prepared>();
        if p.csr.is_none() {
            return Ok(());
        }
        let x_slot = io.d_inputs.len() - 1;
        if let Some(dx) = io.d_inputs[x_slot].as_deref_mut() {
            dx.resize(&[c, f]);
            spmm(cx.cfg(), p.transposed_with_values()?, (dy.data, f), f, (dx.data_mut(), f), false)?;
        }
        let csr = p.csr.as_ref().expect("built by forward");
        if let (Some(_), Some(dv)) = (values, io.d_inputs.get_mut(1).and_then(|d| d.as_deref_mut())) {
            check_grad(self.name(), dy.shape, &[self.out_rows(c), f])?;
            p.d_entries.resize(csr.nnz(), 0.0);
            sddmm(cx.cfg(), csr.as_ref(), (dy.data, f), (x.data, f), f, &mut p.d_entries)?;
            dv.resize(&[csr.nnz()]);
            let dv = dv.data_mut();
            for (k, &e) in p.order.iter().enumerate() {
                dv[e as usize] = p.d_entries[k];
            }
        }
        Ok(())
    }
}

/// `index [2, P]` (integer) and `u [R, F]`, `v [C, F]` to `s [P]`: `s[e] = u[i] · v[j]` for
/// each pair `e = (i, j)`; with one dense input `z`, `u = v = z` (a graph auto-encoder's
/// decoder on the pairs it scores). Gradients: `du = S v`, `dv = Sᵀ u` for the matrix `S`
/// of the pairs holding the output's gradient (SpMM both).
#[derive(Default)]
pub struct SampledDot;

impl SampledDot {
    pub fn new() -> Self {
        SampledDot
    }
}

impl Op for SampledDot {
    fn describe(&self) -> String {
        "sampled dot".into()
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        let layer = self.describe();
        let (index, dense) = match inputs {
            [index, rest @ ..] if (1..=2).contains(&rest.len()) => (index, rest),
            _ => {
                return Err(LayerError::InputCount {
                    layer,
                    expected: "2 (index, z) or 3 (index, u, v)".into(),
                    got: inputs.len(),
                })
            }
        };
        if index.dtype != DType::I64 || index.shape.len() != 2 || index.shape[0] != 2 {
            return Err(LayerError::InputShape {
                layer,
                expected: "an integer index [2, P]".into(),
                got: index.shape.clone(),
            });
        }
        let f = dense[0].shape.get(1).copied();
        for d in dense {
            if d.dtype != DType::F32 || d.shape.len() != 2 || d.shape.get(1).copied() != f {
                return Err(LayerError::InputShape {
                    layer,
                    expected: "dense [rows, F] operands of one width F".into(),
                    got: d.shape.clone(),
                });
            }
        }
        Ok(vec![ValueInfo::f32(&[index.shape[1]])])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let layer = "sampled dot";
        let index = inputs[0].int(layer)?;
        let u = inputs[1].f32(layer)?;
        let v = inputs.get(2).map_or(Ok(u), |v| v.f32(layer))?;
        let f = u.shape[1];
        let p = state.prepared::<Prepared>();
        p.update(index.data(), u.shape[0], v.shape[0])?;
        let csr = p.csr.as_ref().expect("built by update");
        p.d_entries.resize(csr.nnz(), 0.0);
        sddmm(cx.cfg(), csr.as_ref(), (u.data, f), (v.data, f), f, &mut p.d_entries)?;
        let y = &mut outputs[0];
        y.resize(&[csr.nnz()]);
        let out = y.data_mut();
        for (k, &e) in p.order.iter().enumerate() {
            out[e as usize] = p.d_entries[k];
        }
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let layer = "sampled dot";
        let u = io.inputs[1].f32(layer)?;
        let v = io.inputs.get(2).map_or(Ok(u), |v| v.f32(layer))?;
        let (dy, f) = (io.d_outputs[0], u.shape[1]);
        let p = io.state.prepared::<Prepared>();
        if p.csr.is_none() {
            return Ok(());
        }
        p.place_values(Some(dy.data));
        let shared = io.inputs.len() == 2;
        // du = S v (with one operand: dz = S z + Sᵀ z).
        if let Some(du) = io.d_inputs[1].as_deref_mut() {
            let s_mat = p.csr.as_ref().expect("checked above").as_ref().with_values(Some(&p.values))?;
            du.resize(u.shape);
            spmm(cx.cfg(), s_mat, (v.data, f), f, (du.data_mut(), f), false)?;
            if shared {
                spmm(cx.cfg(), p.transposed_with_values()?, (u.data, f), f, (du.data_mut(), f), true)?;
            }
        }
        if let Some(dv) = io.d_inputs.get_mut(2).and_then(|d| d.as_deref_mut()) {
            dv.resize(v.shape);
            spmm(cx.cfg(), p.transposed_with_values()?, (u.data, f), f, (dv.data_mut(), f), false)?;
        }
        Ok(())
    }
}
