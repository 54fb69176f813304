//! Weights prepared once for many forward passes: the algorithm chosen, and for Winograd
//! the filter transform `U = G w G^T` done once per weight set instead of once per call
//! (as inference runtimes prepack their weights when a model is loaded).

use super::{run_forward, winograd, Conv2dGeom, ConvAlgo, ForwardArgs};
use crate::gemm::GemmConfig;
use crate::{AlignedBuf, KernelError};

/// A convolution's weights, prepared for [`conv2d_forward_prepared`].
pub struct PreparedConv {
    /// The geometry prepared for (its batch size is not binding).
    geom: Conv2dGeom,
    algo: ConvAlgo,
    /// The weights as given, for every algorithm but Winograd (empty there).
    weights: AlignedBuf,
    /// Winograd's transformed filters, `36 C K` values.
    winograd_filters: Option<AlignedBuf>,
}

impl PreparedConv {
    /// Resolves `algo` for `g` and prepares `w` (`[out_channels, in_channels / groups, kh,
    /// kw]`) for it. An error for a geometry or weight length that is wrong, or an algorithm
    /// that cannot compute `g`.
    pub fn new(cfg: &GemmConfig, g: &Conv2dGeom, algo: ConvAlgo, w: &[f32]) -> Result<PreparedConv, KernelError> {
        g.validate()?;
        Conv2dGeom::check_len("w", g.weight_len(), w.len())?;
        let algo = algo.resolve_prepared(g)?;
        // Winograd reads only its transformed filters; the others read the weights as given.
        let mut weights = AlignedBuf::zeroed(if algo == ConvAlgo::Winograd { 0 } else { w.len() });
        if algo != ConvAlgo::Winograd {
            weights.as_mut_slice().copy_from_slice(w);
        }
        let winograd_filters = (algo == ConvAlgo::Winograd).then(|| {
            let mut u = AlignedBuf::zeroed(winograd::filter_len(g));
            winograd::transform_filters(cfg, g, w, u.as_mut_slice());
            u
        });
        Ok(PreparedConv { geom: *g, algo, weights, winograd_filters })
    }

    /// The algorithm the prepared weights run on.
    pub fn algo(&self) -> ConvAlgo {
        self.algo
    }
}

/// [`super::conv2d_forward`] with prepared weights. `g` must be the prepared geometry, with
/// any batch size.
pub fn conv2d_forward_prepared(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    prepared: &PreparedConv,
    x: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    let same_batch = Conv2dGeom { batch: prepared.geom.batch, ..*g };
    if same_batch != prepared.geom {
        return Err(KernelError::PreparedGeometry);
    }
    Conv2dGeom::check_len("x", g.input_len(), x.len())?;
    Conv2dGeom::check_len("y", g.output_len(), y.len())?;
    if let Some(b) = bias {
        Conv2dGeom::check_len("bias", g.out_channels, b.len())?;
    }
    let args = ForwardArgs { x, w: prepared.weights.as_slice(), bias, relu };
    run_forward(cfg, g, prepared.algo, args, prepared.winograd_filters.as_ref().map(|u| u.as_slice()), y)
}
