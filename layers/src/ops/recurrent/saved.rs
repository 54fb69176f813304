//! What one caller of a recurrent layer keeps between forward and backward, and between
//! calls: the saved sequences, the packed recurrent weights and the backward scratch, all
//! reused at their sizes.

use crate::op::OpCtx;
use crate::param::ParamId;
use crate::LayerError;
use simdnn_kernels::gemm::{sgemm, sgemm_packed, Epilogue, MatMut, MatRef, PackedB};
use simdnn_kernels::Isa;

/// The saved sequences of one layer and direction, time-major.
#[derive(Default)]
pub(super) struct DirSaved {
    /// The gate activations of every step, `[T, N, G*H]`.
    pub gates: Vec<f32>,
    /// The GRU's recurrent pre-activations `W_hh h' + b_hh` of every step, `[T, N, 3H]`.
    pub rec: Vec<f32>,
    /// The hidden states, `[T + 1, N, H]`: slot 0 is the initial state of the forward
    /// direction, which writes step t into slot t + 1; the reverse direction starts from
    /// slot T and writes step t into slot t.
    pub hs: Vec<f32>,
    /// The LSTM's cell states, in the slots of `hs`.
    pub cs: Vec<f32>,
    /// The recurrent weights, packed for the forward product (`W_hh^T`) and the backward one
    /// (`W_hh`).
    pub forward_weights: Packed,
    pub backward_weights: Packed,
}

impl DirSaved {
    /// The slots step `t` reads and writes.
    pub fn slots(t: usize, reverse: bool) -> (usize, usize) {
        if reverse {
            (t + 1, t)
        } else {
            (t, t + 1)
        }
    }
}

/// A weight matrix packed for one ISA at one version of the weights, repacked (into the
/// same allocation) when either changes.
#[derive(Default)]
pub(super) struct Packed {
    packed: Option<PackedB>,
    key: Option<(ParamId, u64, Isa)>,
}

impl Packed {
    /// `c <- a * op(w) + beta * c`: on `w` packed once per weight version, or on `w` as it is
    /// for a single row (the GEMV is faster there) or where packing is not available.
    #[allow(clippy::too_many_arguments)]
    pub fn product(
        &mut self,
        cx: &OpCtx,
        id: ParamId,
        w: MatRef,
        a: MatRef,
        beta: f32,
        c: MatMut,
        epi: Epilogue,
    ) -> Result<(), LayerError> {
        let cfg = cx.cfg();
        if a.rows() == 1 || !cfg.packs() {
            sgemm(cfg, 1.0, a, w, beta, c, epi)?;
            return Ok(());
        }
        let key = Some((id, cx.params.version(), cfg.isa()));
        match &mut self.packed {
            Some(p) if self.key == key => {}
            Some(p) => p.repack(cfg.isa(), w)?,
            slot @ None => *slot = Some(PackedB::new(cfg.isa(), w)?),
        }
        self.key = key;
        sgemm_packed(cfg, 1.0, a, self.packed.as_ref().expect("packed above"), beta, c, epi)?;
        Ok(())
    }
}

/// One caller's saved state of a [`super::Recurrent`] layer.
#[derive(Default)]
pub(super) struct Saved {
    /// `(T, N)` of the last forward call.
    pub steps: usize,
    pub batch: usize,
    /// A batch-first input made time-major.
    pub x_time_major: Vec<f32>,
    /// Whether row n is inside its sequence at step t, `[T, N]`; empty without lengths.
    pub active: Vec<bool>,
    /// Per layer and direction.
    pub dirs: Vec<DirSaved>,
    /// The outputs of every layer but the last, time-major (and the last's, batch-first).
    pub layer_out: Vec<Vec<f32>>,
    /// `b_ih + b_hh` of one direction (the cells that add the two).
    pub bias: Vec<f32>,
    /// Backward scratch: the gradients of the gates' pre-activations (input and recurrent
    /// products), of `h` and `h'`, of `c`, and of the layers' outputs.
    pub d_gates: Vec<f32>,
    pub d_rec: Vec<f32>,
    pub dh: Vec<f32>,
    pub dh_prev: Vec<f32>,
    pub dc: Vec<f32>,
    pub d_out: Vec<f32>,
    pub d_in: Vec<f32>,
}

/// `dst [b, a, c] <- src [a, b, c]`: between batch-first and time-major.
pub(super) fn swap_leading(src: &[f32], a: usize, b: usize, c: usize, dst: &mut [f32]) {
    debug_assert!(src.len() == a * b * c && dst.len() == a * b * c);
    for i in 0..a {
        for j in 0..b {
            dst[(j * a + i) * c..][..c].copy_from_slice(&src[(i * b + j) * c..][..c]);
        }
    }
}

/// `v` resized to `len` (contents unspecified; the allocation kept when large enough).
pub(super) fn sized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    v.resize(len, 0.0);
    v
}

/// Two disjoint `len`-long slots of `v`: slot `read` to read, slot `write` to write.
pub(super) fn read_write(v: &mut [f32], len: usize, read: usize, write: usize) -> (&[f32], &mut [f32]) {
    if read < write {
        let (lo, hi) = v.split_at_mut(write * len);
        (&lo[read * len..][..len], &mut hi[..len])
    } else {
        let (lo, hi) = v.split_at_mut(read * len);
        (&hi[..len], &mut lo[write * len..][..len])
    }
}
