//! The recurrent graph network's state (Scarselli et al. 2009, "The Graph Neural Network
//! Model"): node states that are the fixed point of one transition function applied to
//! every node, `X = F(X) = tanh(P X W + B)`, found by iterating it until the states stop
//! changing, and differentiated at the fixed point (Almeida 1987, Pineda 1987: the
//! gradient solves a second fixed point, iterated the same way, so nothing of the
//! iterations is stored).
//!
//! `P` is the mean over a node's incoming edges (a row-stochastic matrix, zero rows for
//! nodes without edges), `B` the per-node input term (the node's own features through a
//! layer before this one). With `tanh` 1-Lipschitz and `P` averaging, `F` is a contraction
//! with factor `‖W‖₂` in the norm `max_v ‖x_v‖₂`: a `W` bounded below 1 ([`NormBound`])
//! makes the fixed point unique and the iteration converge from any start (Banach).
//!
//! [`NormBound`]: super::NormBound

use super::gather::check_indices;
use crate::op::{Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, DType, ValueRef};
use crate::{LayerError, Tensor};
use simdnn_kernels::eltwise;
use simdnn_kernels::gemm::{sgemm, Epilogue, MatMut, MatRef};
use simdnn_kernels::sparse::{spmm, Csr, Transposed};

/// `index [2, E]` (integer: targets, then sources), `w [H, H]`, `b [N, H]` to the fixed
/// point `x [N, H]` of `x = tanh(P x W + b)`, and the number of iterations it took (`[]`,
/// f32; the second output). Iterations stop when no state moves by more than the
/// tolerance, or at the limit.
pub struct FixedPoint {
    tolerance: f32,
    max_iterations: usize,
}

impl FixedPoint {
    pub fn new(tolerance: f32, max_iterations: usize) -> Self {
        FixedPoint { tolerance, max_iterations: max_iterations.max(1) }
    }
}

const NAME: &str = "fixed point";

/// One caller's structure and buffers.
#[derive(Default)]
struct Prepared {
    index: Vec<i64>,
    nodes: usize,
    mean: Option<Csr>,
    transposed: Option<Transposed>,
    /// The fixed point, `P x`, a next iterate and its pre-activation; the backward pass's
    /// iterate `λ` and `D ⊙ λ`.
    x: Tensor,
    px: Tensor,
    next: Tensor,
    z: Tensor,
    lambda: Tensor,
    delta: Tensor,
}

impl Prepared {
    fn update(&mut self, index: &[i64], nodes: usize) -> Result<(), LayerError> {
        if self.mean.is_some() && self.nodes == nodes && self.index == index {
            return Ok(());
        }
        let e = index.len() / 2;
        check_indices("fixed point index (row 0, targets)", &index[..e], nodes)?;
        check_indices("fixed point index (row 1, sources)", &index[e..], nodes)?;
        let targets: Vec<u32> = index[..e].iter().map(|&i| i as u32).collect();
        let sources: Vec<u32> = index[e..].iter().map(|&i| i as u32).collect();
        let mut csr = Csr::from_coo(nodes, nodes, &targets, &sources, None)?;
        let rows = csr.row_ptr().to_vec();
        let weights: Vec<f32> = (0..nodes)
            .flat_map(|i| {
                let degree = (rows[i + 1] - rows[i]) as usize;
                std::iter::repeat_n(1.0 / degree.max(1) as f32, degree)
            })
            .collect();
        csr.set_values(Some(weights))?;
        self.transposed = Some(csr.transpose());
        self.mean = Some(csr);
        self.index = index.to_vec();
        self.nodes = nodes;
        Ok(())
    }
}

/// The largest absolute difference of two equally long slices.
fn max_change(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

impl Op for FixedPoint {
    fn describe(&self) -> String {
        format!("fixed point (tolerance {:e}, at most {} iterations)", self.tolerance, self.max_iterations)
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        let [index, w, b] = inputs else {
            return Err(LayerError::InputCount {
                layer: NAME.into(),
                expected: "3 (index, w, b)".into(),
                got: inputs.len(),
            });
        };
        let shape_error = |expected: &str, got: &[usize]| LayerError::InputShape {
            layer: NAME.into(),
            expected: expected.into(),
            got: got.to_vec(),
        };
        if index.dtype != DType::I64 || index.shape.len() != 2 || index.shape[0] != 2 {
            return Err(shape_error("an integer index [2, E]", &index.shape));
        }
        let [n, h] = b.shape[..] else { return Err(shape_error("b [N, H]", &b.shape)) };
        if w.dtype != DType::F32 || b.dtype != DType::F32 || w.shape != [h, h] {
            return Err(shape_error(&format!("w [{h}, {h}] (f32, as b's columns)"), &w.shape));
        }
        Ok(vec![ValueInfo::f32(&[n, h]), ValueInfo::f32(&[])])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let (index, w, b) = (inputs[0].int(NAME)?, inputs[1].f32(NAME)?, inputs[2].f32(NAME)?);
        let (n, h) = (b.shape[0], b.shape[1]);
        let p = state.prepared::<Prepared>();
        p.update(index.data(), n)?;
        let mean = p.mean.as_ref().expect("built by update").as_ref();
        let wm = MatRef::new(w.data, h, h, h)?;
        for t in [&mut p.x, &mut p.px, &mut p.next, &mut p.z] {
            t.resize(&[n, h]);
        }
        p.x.data_mut().fill(0.0);
        let mut iterations = 0;
        while iterations < self.max_iterations {
            iterations += 1;
            spmm(cx.cfg(), mean, (p.x.data(), h), h, (p.px.data_mut(), h), false)?;
            p.z.data_mut().copy_from_slice(b.data);
            let z = MatMut::new(p.z.data_mut(), n, h, h)?;
            sgemm(cx.cfg(), 1.0, MatRef::new(p.px.data(), n, h, h)?, wm, 1.0, z, Epilogue::NONE)?;
            eltwise::tanh(cx.isa(), p.z.data(), p.next.data_mut())?;
            let change = max_change(p.next.data(), p.x.data());
            std::mem::swap(&mut p.x, &mut p.next);
            if change <= self.tolerance {
                break;
            }
        }
        // `P x` at the fixed point, for the weight's gradient.
        spmm(cx.cfg(), mean, (p.x.data(), h), h, (p.px.data_mut(), h), false)?;
        outputs[0].resize(&[n, h]);
        outputs[0].data_mut().copy_from_slice(p.x.data());
        outputs[1].resize(&[]);
        outputs[1].data_mut()[0] = iterations as f32;
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let w = io.inputs[1].f32(NAME)?;
        let dy = io.d_outputs[0];
        let p = io.state.prepared::<Prepared>();
        let Some(tr) = p.transposed.as_ref() else { return Err(LayerError::NoForward) };
        let (n, h) = (p.x.shape()[0], p.x.shape()[1]);
        check_grad(NAME, dy.shape, &[n, h])?;
        // λ = G + Jᵀ λ with Jᵀ λ = Pᵀ ((D ⊙ λ) Wᵀ), D = 1 - x² (tanh's derivative).
        let wt = MatRef::new(w.data, h, h, h)?.t();
        for t in [&mut p.lambda, &mut p.delta, &mut p.next, &mut p.z] {
            t.resize(&[n, h]);
        }
        p.lambda.data_mut().copy_from_slice(dy.data);
        let mut iterations = 0;
        while iterations < self.max_iterations {
            iterations += 1;
            eltwise::tanh_backward(cx.isa(), p.x.data(), p.lambda.data(), p.delta.data_mut())?;
            // `next` holds δ Wᵀ, `z` the next λ = G + Pᵀ (δ Wᵀ).
            let u = MatMut::new(p.next.data_mut(), n, h, h)?;
            sgemm(cx.cfg(), 1.0, MatRef::new(p.delta.data(), n, h, h)?, wt, 0.0, u, Epilogue::NONE)?;
            p.z.data_mut().copy_from_slice(dy.data);
            spmm(cx.cfg(), tr.csr.as_ref(), (p.next.data(), h), h, (p.z.data_mut(), h), true)?;
            let change = max_change(p.z.data(), p.lambda.data());
            std::mem::swap(&mut p.lambda, &mut p.z);
            if change <= self.tolerance {
                break;
            }
        }
        // The gradient of the pre-activation at the fixed point: D ⊙ λ.
        eltwise::tanh_backward(cx.isa(), p.x.data(), p.lambda.data(), p.delta.data_mut())?;
        if let Some(dw) = io.d_inputs[1].as_deref_mut() {
            dw.resize(&[h, h]);
            let g = MatMut::new(dw.data_mut(), h, h, h)?;
            let (px, delta) = (MatRef::new(p.px.data(), n, h, h)?.t(), MatRef::new(p.delta.data(), n, h, h)?);
            sgemm(cx.cfg(), 1.0, px, delta, 0.0, g, Epilogue::NONE)?;
        }
        if let Some(db) = io.d_inputs[2].as_deref_mut() {
            db.resize(&[n, h]);
            db.data_mut().copy_from_slice(p.delta.data());
        }
        Ok(())
    }

    fn macs(&self, inputs: &[ValueInfo], _: &[ValueInfo]) -> u64 {
        // One iteration's product (the count varies with the data).
        let (n, h) = (inputs[2].shape[0] as u64, inputs[2].shape[1] as u64);
        n * h * h + inputs[0].shape[1] as u64 * h
    }
}
