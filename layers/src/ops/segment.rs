//! Segment reductions: rows grouped by a sorted segment id per row (the nodes of each graph
//! of a batch of graphs, the edges into each node) reduced to one row per segment by a
//! sum, mean or maximum.

use super::broadcast::with_dims;
use super::gather::{as_rows, check_indices, gather_rows};
use super::scatter::RowCount;
use crate::op::{Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::Params;
use crate::tensor::{check_grad, ValueRef};
use crate::LayerError;

/// How the rows of a segment are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    Sum,
    Mean,
    /// Per column; the gradient goes to the row holding the maximum (the first on ties).
    Max,
}

/// `x [R, ...]` and integer segment ids `[R]`, sorted non-decreasing, to `[S, ...]`: row
/// `s` of the output combines the rows of `x` whose id is `s`. A segment with no rows gives
/// zeros (for the maximum too). Ids out of `0..S` or out of order are errors when run. The
/// segment count `S` is a constant ([`SegmentReduce::new`]) or the first axis of a third
/// input ([`SegmentReduce::like`]).
pub struct SegmentReduce {
    kind: SegmentKind,
    rows: RowCount,
}

/// Marks a segment with no rows in a maximum's saved argmax.
const EMPTY: u32 = u32::MAX;

impl SegmentReduce {
    /// A reduction into `segments` rows.
    pub fn new(kind: SegmentKind, segments: usize) -> Self {
        SegmentReduce { kind, rows: RowCount::Fixed(segments) }
    }

    /// A reduction into as many rows as the first axis of a third input, which is read for
    /// its shape only.
    pub fn like(kind: SegmentKind) -> Self {
        SegmentReduce { kind, rows: RowCount::Like }
    }

    fn name(&self) -> &'static str {
        match self.kind {
            SegmentKind::Sum => "segment sum",
            SegmentKind::Mean => "segment mean",
            SegmentKind::Max => "segment max",
        }
    }
}

/// An error unless the ids are non-decreasing and in `0..segments`.
fn check_ids(ids: &[i64], segments: usize) -> Result<(), LayerError> {
    check_indices("segment id", ids, segments)?;
    match ids.windows(2).find(|w| w[1] < w[0]) {
        Some(w) => Err(LayerError::BadIndices {
            what: "segment ids",
            problem: format!("must be sorted non-decreasing, but {} follows {}", w[1], w[0]),
        }),
        None => Ok(()),
    }
}

/// Calls `f(segment, first, end)` for each run of equal ids (checked, sorted).
fn runs(ids: &[i64], mut f: impl FnMut(usize, usize, usize)) {
    let mut start = 0;
    while start < ids.len() {
        let len = ids[start..].iter().take_while(|&&i| i == ids[start]).count();
        f(ids[start] as usize, start, start + len);
        start += len;
    }
}

impl Op for SegmentReduce {
    fn describe(&self) -> String {
        match self.rows {
            RowCount::Fixed(n) => format!("{} into {n} segments", self.name()),
            RowCount::Like => self.name().into(),
        }
    }

    fn infer(&self, inputs: &[ValueInfo], _: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        self.rows.infer(&self.describe(), inputs)
    }

    fn forward(
        &self,
        _: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        state: &mut OpState,
    ) -> Result<(), LayerError> {
        let (x, ids) = (inputs[0].f32(|| self.describe())?, inputs[1].int(|| self.describe())?);
        if x.shape.first() != Some(&ids.len()) {
            let expected = x.shape.first().copied().unwrap_or(0);
            return Err(LayerError::LabelCount { what: "segment ids", expected, got: ids.len() });
        }
        let segments = self.rows.at(inputs);
        check_ids(ids.data, segments)?;
        let f = x.shape[1..].iter().product::<usize>();
        let y = &mut outputs[0];
        with_dims(x.shape.len(), |d| if d == 0 { segments } else { x.shape[d] }, |s| y.resize(s));
        let y = y.data_mut();
        y.fill(0.0);
        state.indices.clear();
        if f == 0 {
            return Ok(());
        }
        let argmax = &mut state.indices;
        if self.kind == SegmentKind::Max {
            argmax.resize(segments * f, EMPTY);
        }
        runs(ids.data, |s, first, end| {
            let out = &mut y[s * f..][..f];
            match self.kind {
                SegmentKind::Sum | SegmentKind::Mean => {
                    for row in x.data[first * f..end * f].chunks_exact(f) {
                        out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
                    }
                    if self.kind == SegmentKind::Mean {
                        let scale = 1.0 / (end - first) as f32;
                        out.iter_mut().for_each(|o| *o *= scale);
                    }
                }
                SegmentKind::Max => {
                    let arg = &mut argmax[s * f..][..f];
                    out.copy_from_slice(&x.data[first * f..][..f]);
                    arg.fill(first as u32);
                    for r in first + 1..end {
                        for ((o, a), &v) in out.iter_mut().zip(arg.iter_mut()).zip(&x.data[r * f..][..f]) {
                            if v > *o {
                                (*o, *a) = (v, r as u32);
                            }
                        }
                    }
                }
            }
        });
        Ok(())
    }

    fn backward(&self, _: &OpCtx, mut io: Backward) -> Result<(), LayerError> {
        RowCount::zero_like_grad(&mut io);
        let Some(dx) = io.d_inputs[0].as_deref_mut() else { return Ok(()) };
        let (x, ids) = (io.inputs[0].f32(|| self.describe())?, io.inputs[1].int(|| self.describe())?);
        let dy = io.d_outputs[0];
        check_grad(|| self.describe(), io.outputs[0].shape, dy.shape)?;
        let segments = self.rows.at(io.inputs);
        check_ids(ids.data, segments)?;
        let f = x.shape[1..].iter().product::<usize>();
        dx.resize(x.shape);
        let d = dx.data_mut();
        if f == 0 {
            return Ok(());
        }
        match self.kind {
            // Each row gets its segment's gradient (divided by the segment's size for a mean).
            SegmentKind::Sum => gather_rows(dy.data, d, (1, segments, f), as_rows(ids.data)),
            SegmentKind::Mean => runs(ids.data, |s, first, end| {
                let scale = 1.0 / (end - first) as f32;
                for row in d[first * f..end * f].chunks_exact_mut(f) {
                    row.iter_mut().zip(&dy.data[s * f..][..f]).for_each(|(o, g)| *o = g * scale);
                }
            }),
            SegmentKind::Max => {
                let argmax = &io.state.indices;
                if argmax.len() != segments * f {
                    return Err(LayerError::NoForward);
                }
                d.fill(0.0);
                for (k, (&r, &g)) in argmax.iter().zip(dy.data).enumerate() {
                    if r != EMPTY {
                        d[r as usize * f + k % f] += g;
                    }
                }
            }
        }
        Ok(())
    }
}
