//! A sparse matrix, given as its entries, times a dense value: message passing's
//! aggregation (`Â H` in a GCN: each node sums its neighbours' rows, weighted by the
//! entries), and sparse features times a weight (a bag-of-words matrix in its non-zeros).
//!
//! The entries come as an integer value `index [2, E]` (row 0: each entry's output row, the
//! edge's target; row 1: its input row, the source) and optionally their values `[E]`,
//! in any order. The op builds the CSR structure (and, for backward, its transpose) once per
//! caller and index, in [`OpState::prepared`], and rebuilds it only when the index changes:
//! values may change every call (edge weights, sparse dropout on the values) at no cost.

use super::gather::check_indices;
use crate::op::{Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, DType, ValueRef};
use crate::LayerError;
use simdnn_kernels::sparse::{sddmm, spmm, Csr, Transposed};

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
        check_indices("sparse matmul output row", &index[..e], rows)?;
        check_indices("sparse matmul input row", &index[e..], cols)?;
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
        let Some(csr) = p.csr.as_ref() else { return Ok(()) };
        let x_slot = io.d_inputs.len() - 1;
        if let Some(dx) = io.d_inputs[x_slot].as_deref_mut() {
            let t = p.transposed.get_or_insert_with(|| csr.transpose());
            t.gather_values(&p.values, &mut p.values_t)?;
            let at = t.csr.as_ref().with_values(Some(&p.values_t))?;
            dx.resize(&[c, f]);
            spmm(cx.cfg(), at, (dy.data, f), f, (dx.data_mut(), f), false)?;
        }
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
