//! One time step of a recurrent cell after its products: the gate nonlinearities and the
//! state update forward, and their derivatives backward, each one vectorised pass over the
//! batch's rows on every ISA path.
//!
//! The caller does the products (the input projections of all steps as one GEMM before the
//! recurrence, the recurrent product of all gates as one GEMM per step); these kernels do
//! everything between two GEMMs, so a step touches its gate values once. Gate orders and the
//! GRU's reset gate follow PyTorch (`torch.nn.RNN`, `LSTM`, `GRU` documentation):
//!
//! - `Tanh` / `Relu`: `h = act(g)`, with `g = W_ih x + b_ih + W_hh h' + b_hh`;
//! - `Lstm`: gates `i, f, g, o`; `c = f c' + i g`, `h = o tanh(c)` (Hochreiter &
//!   Schmidhuber 1997, with the forget gate of Gers et al. 2000);
//! - `Gru`: gates `r, z, n`; `n = tanh(x_n + r (W_hn h' + b_hn))`, `h = (1 - z) n + z h'`
//!   (Cho et al. 2014): the recurrent products stay apart from the input ones (`rec`),
//!   since the reset gate scales only the recurrent part of `n`.
//!
//! Rows marked inactive (a padded sequence past its own end) keep their state (`h = h'`,
//! `c = c'`), output zero, and pass gradients straight through.

mod cell;

use crate::conv::Conv2dGeom;
use crate::gemm::GemmConfig;
use crate::isa::Instance;
use crate::threading::{for_each_task, DisjointChunks};
use crate::KernelError;
use cell::{StepBackward, StepForward};

/// The kind of recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cell {
    /// The simple (Elman) cell with tanh, the course's `h_t = tanh(W [x_t; h_{t-1}] + b)`.
    Tanh,
    /// The simple cell with ReLU.
    Relu,
    Lstm,
    Gru,
}

impl Cell {
    /// Gate blocks of `hidden` values per row: 1, 1, 4 (`i f g o`), 3 (`r z n`).
    pub fn gates(self) -> usize {
        match self {
            Cell::Tanh | Cell::Relu => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
    /// Whether the cell carries a second state (the LSTM's cell state `c`).
    pub fn has_cell_state(self) -> bool {
        self == Cell::Lstm
    }
    /// Whether the recurrent products are kept apart from the input ones (the GRU's `rec`).
    pub fn separate_recurrent(self) -> bool {
        self == Cell::Gru
    }
    pub fn name(self) -> &'static str {
        match self {
            Cell::Tanh => "rnn_tanh",
            Cell::Relu => "rnn_relu",
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }
}

/// The rows of one step: `rows` rows of `hidden` units, which of them are active (empty:
/// all), and the output rows `y` (`y[r * y_stride + y_offset..][..hidden]`).
#[derive(Clone, Copy)]
pub struct StepShape<'a> {
    pub cell: Cell,
    pub rows: usize,
    pub hidden: usize,
    pub active: &'a [bool],
    pub y_stride: usize,
    pub y_offset: usize,
}

impl StepShape<'_> {
    fn check(&self, what: &'static str, len: usize, per_row: usize) -> Result<(), KernelError> {
        Conv2dGeom::check_len(what, self.rows * per_row, len)
    }
    fn check_y(&self, len: usize) -> Result<(), KernelError> {
        if self.y_offset + self.hidden > self.y_stride {
            return Err(KernelError::TensorLength {
                what: "a y row (offset + hidden)",
                expected: self.y_stride,
                got: self.y_offset + self.hidden,
            });
        }
        self.check("y", len, self.y_stride)
    }
    fn check_common(&self) -> Result<(), KernelError> {
        if self.hidden == 0 {
            return Err(KernelError::ZeroSize { what: "hidden size" });
        }
        if !self.active.is_empty() {
            self.check("active rows", self.active.len(), 1)?;
        }
        Ok(())
    }
}

/// The forward step's tensors; `h*`, `c*`: `rows x hidden`; `gates`: `rows x gates*hidden`.
pub struct ForwardStep<'a> {
    /// In: the pre-activations (for the GRU the input part `W_ih x + b_ih` only); out: the
    /// gate activations, kept for backward.
    pub gates: &'a mut [f32],
    /// The recurrent pre-activations `W_hh h'` (`rows x gates*hidden`): the GRU's always, with
    /// `b_hh` (its reset gate scales them); for the other cells, added to `gates` here, or
    /// empty when the caller added them already.
    pub rec: &'a [f32],
    pub h_prev: &'a [f32],
    /// The LSTM's `c'` and `c`; empty for the other cells.
    pub c_prev: &'a [f32],
    pub c: &'a mut [f32],
    pub h: &'a mut [f32],
    /// The step's output rows (zero where inactive).
    pub y: &'a mut [f32],
}

/// Row runs of one step for the configuration's threads: whole rows, and at least
/// `MIN_PART` gate values each (below that, waking a helper costs more than it saves).
fn row_parts(cfg: &GemmConfig, shape: &StepShape) -> (usize, usize) {
    const MIN_PART: usize = 4096;
    let per_row = shape.cell.gates() * shape.hidden;
    let parts = cfg.threads().min((shape.rows * per_row / MIN_PART).max(1));
    let per = shape.rows.div_ceil(parts);
    (shape.rows.div_ceil(per), per)
}

/// Rows `r0..r1` of a slice of `per_row` values a row (an empty slice stays empty).
fn rows_of(v: &[f32], per_row: usize, r0: usize, r1: usize) -> &[f32] {
    if v.is_empty() {
        v
    } else {
        &v[r0 * per_row..r1 * per_row]
    }
}

/// The rows of one part of a step: its share of the active marks and its output rows.
fn part_shape<'a>(shape: &StepShape<'a>, r0: usize, r1: usize) -> StepShape<'a> {
    let active = if shape.active.is_empty() { shape.active } else { &shape.active[r0..r1] };
    StepShape { rows: r1 - r0, active, ..*shape }
}

/// Runs one forward step, its rows split over the configuration's threads.
pub fn step_forward(cfg: &GemmConfig, shape: StepShape, io: ForwardStep) -> Result<(), KernelError> {
    shape.check_common()?;
    let (gh, h) = (shape.cell.gates() * shape.hidden, shape.hidden);
    shape.check("gates", io.gates.len(), gh)?;
    shape.check("h'", io.h_prev.len(), h)?;
    shape.check("h", io.h.len(), h)?;
    shape.check_y(io.y.len())?;
    if shape.cell.separate_recurrent() || !io.rec.is_empty() {
        shape.check("recurrent gates", io.rec.len(), gh)?;
    }
    if shape.cell.has_cell_state() {
        shape.check("c'", io.c_prev.len(), h)?;
        shape.check("c", io.c.len(), h)?;
    }
    let (parts, per) = row_parts(cfg, &shape);
    if parts == 1 {
        cfg.run(StepForward { shape, io });
        return Ok(());
    }
    let gates = DisjointChunks::new(io.gates, per * gh);
    let c = DisjointChunks::new(io.c, if io.c.is_empty() { 1 } else { per * h });
    let hs = DisjointChunks::new(io.h, per * h);
    let y = DisjointChunks::new(io.y, per * shape.y_stride);
    let (rec, h_prev, c_prev) = (io.rec, io.h_prev, io.c_prev);
    for_each_task(cfg.threads(), parts, |i| {
        let (r0, r1) = (i * per, ((i + 1) * per).min(shape.rows));
        // SAFETY: for_each_task runs each part once, so each chunk is taken once; an empty
        // slice has no chunk to take.
        let (gates, c, h_out, y) =
            unsafe { (gates.take(i), if c_prev.is_empty() { &mut [][..] } else { c.take(i) }, hs.take(i), y.take(i)) };
        let io = ForwardStep {
            gates,
            rec: rows_of(rec, gh, r0, r1),
            h_prev: rows_of(h_prev, h, r0, r1),
            c_prev: rows_of(c_prev, h, r0, r1),
            c,
            h: h_out,
            y,
        };
        cfg.run(StepForward { shape: part_shape(&shape, r0, r1), io });
    });
    Ok(())
}

/// The backward step's tensors, the forward step's saved ones plus gradients.
pub struct BackwardStep<'a> {
    /// The gate activations the forward step left.
    pub gates: &'a [f32],
    pub rec: &'a [f32],
    pub h_prev: &'a [f32],
    pub c_prev: &'a [f32],
    /// The LSTM's `c` (for `tanh(c)`); the simple cells' `h` (for the derivative of act).
    pub c: &'a [f32],
    pub h: &'a [f32],
    /// The gradient of `h` from later steps; the step's output gradient rows `dy` (read as `y`).
    pub dh_next: &'a [f32],
    pub dy: &'a [f32],
    /// In: the gradient of `c` from later steps; out: that of `c'` (LSTM; empty else).
    pub dc: &'a mut [f32],
    /// The pre-activation gradients of the input products.
    pub d_gates: &'a mut [f32],
    /// The GRU's pre-activation gradients of the recurrent products (empty else: they equal
    /// `d_gates`).
    pub d_rec: &'a mut [f32],
    /// The part of the gradient of `h'` that does not go through `W_hh` (the GRU's `z dh`, an
    /// inactive row's whole `dh`); the caller adds `d_rec W_hh` (or `d_gates W_hh`).
    pub dh_prev: &'a mut [f32],
}

/// Runs one backward step, its rows split over the configuration's threads.
pub fn step_backward(cfg: &GemmConfig, shape: StepShape, io: BackwardStep) -> Result<(), KernelError> {
    shape.check_common()?;
    let (gh, h) = (shape.cell.gates() * shape.hidden, shape.hidden);
    shape.check("gates", io.gates.len(), gh)?;
    shape.check("d gates", io.d_gates.len(), gh)?;
    shape.check("h'", io.h_prev.len(), h)?;
    shape.check("h", io.h.len(), h)?;
    shape.check("dh", io.dh_next.len(), h)?;
    shape.check("dh'", io.dh_prev.len(), h)?;
    shape.check_y(io.dy.len())?;
    if shape.cell.separate_recurrent() {
        shape.check("recurrent gates", io.rec.len(), gh)?;
        shape.check("d recurrent gates", io.d_rec.len(), gh)?;
    }
    if shape.cell.has_cell_state() {
        shape.check("c'", io.c_prev.len(), h)?;
        shape.check("c", io.c.len(), h)?;
        shape.check("dc", io.dc.len(), h)?;
    }
    let (parts, per) = row_parts(cfg, &shape);
    if parts == 1 {
        cfg.run(StepBackward { shape, io });
        return Ok(());
    }
    let lstm = !io.dc.is_empty();
    let gru = !io.d_rec.is_empty();
    let dc = DisjointChunks::new(io.dc, if lstm { per * h } else { 1 });
    let d_gates = DisjointChunks::new(io.d_gates, per * gh);
    let d_rec = DisjointChunks::new(io.d_rec, if gru { per * gh } else { 1 });
    let dh_prev = DisjointChunks::new(io.dh_prev, per * h);
    let BackwardStep { gates, rec, h_prev, c_prev, c, h: hs, dh_next, dy, .. } = io;
    for_each_task(cfg.threads(), parts, |i| {
        let (r0, r1) = (i * per, ((i + 1) * per).min(shape.rows));
        // SAFETY: as in step_forward.
        let (dc, d_gates, d_rec, dh_prev) = unsafe {
            (
                if lstm { dc.take(i) } else { &mut [][..] },
                d_gates.take(i),
                if gru { d_rec.take(i) } else { &mut [][..] },
                dh_prev.take(i),
            )
        };
        let io = BackwardStep {
            gates: rows_of(gates, gh, r0, r1),
            rec: rows_of(rec, gh, r0, r1),
            h_prev: rows_of(h_prev, h, r0, r1),
            c_prev: rows_of(c_prev, h, r0, r1),
            c: rows_of(c, h, r0, r1),
            h: rows_of(hs, h, r0, r1),
            dh_next: rows_of(dh_next, h, r0, r1),
            dy: &dy[r0 * shape.y_stride..(r1 * shape.y_stride).min(dy.len())],
            dc,
            d_gates,
            d_rec,
            dh_prev,
        };
        cfg.run(StepBackward { shape: part_shape(&shape, r0, r1), io });
    });
    Ok(())
}

pub(crate) const KERNELS: &[&[Instance]] = &[cell::INSTANCES];
