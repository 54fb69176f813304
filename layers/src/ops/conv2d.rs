//! 2-D convolution, with an optional fused ReLU, on the kernels' algorithms.

use super::{one_f32, through_fused_relu};
use crate::init::Init;
use crate::op::{expect_f32, Backward, Op, OpCtx, OpState, Outputs, ValueInfo};
use crate::param::{Fill, ParamId, ParamScope, Params};
use crate::tensor::{nchw, ValueRef};
use crate::LayerError;
use simdnn_kernels::conv::{self, Conv2dGeom, ConvAlgo, PreparedConv};
use simdnn_kernels::Isa;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// The hyper-parameters of a convolution (PyTorch's `Conv2d` arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub pad: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
    pub bias: bool,
}

impl Conv2dSpec {
    /// A square `kernel`, stride 1, no padding, one group, with a bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Conv2dSpec {
            in_channels,
            out_channels,
            kernel: (kernel, kernel),
            stride: (1, 1),
            pad: (0, 0),
            dilation: (1, 1),
            groups: 1,
            bias: true,
        }
    }
    pub fn stride(self, s: usize) -> Self {
        Conv2dSpec { stride: (s, s), ..self }
    }
    pub fn pad(self, p: usize) -> Self {
        Conv2dSpec { pad: (p, p), ..self }
    }
    pub fn dilation(self, d: usize) -> Self {
        Conv2dSpec { dilation: (d, d), ..self }
    }
    pub fn groups(self, g: usize) -> Self {
        Conv2dSpec { groups: g, ..self }
    }
    pub fn no_bias(self) -> Self {
        Conv2dSpec { bias: false, ..self }
    }

    /// The geometry for an input `[n, c, h, w]`.
    pub fn geom(&self, [n, c, h, w]: [usize; 4]) -> Conv2dGeom {
        Conv2dGeom::new(n, c, (h, w), self.out_channels, self.kernel)
            .stride(self.stride.0, self.stride.1)
            .pad(self.pad.0, self.pad.1)
            .dilation(self.dilation.0, self.dilation.1)
            .groups(self.groups)
    }

    /// `[out, in / groups, kh, kw]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.out_channels, self.in_channels / self.groups.max(1), self.kernel.0, self.kernel.1]
    }

    /// An error unless the channels divide by the groups and no size is zero.
    fn validate(&self) -> Result<(), LayerError> {
        let (kh, kw) = self.kernel;
        let span = |k: usize, d: usize| d.saturating_mul(k.saturating_sub(1)).saturating_add(1);
        // A one-pixel-output geometry checks channels, groups and sizes.
        self.geom([1, self.in_channels, span(kh, self.dilation.0), span(kw, self.dilation.1)]).pad(0, 0).validate()?;
        Ok(())
    }
}

/// Weights prepared for inference at one input size (the Winograd filter transform done
/// once), valid while the parameters keep their version.
struct Prepared {
    conv: PreparedConv,
    version: u64,
    size: (usize, usize),
    isa: Isa,
}

/// `y = relu?(conv(x, w) + b)` over NCHW tensors.
pub struct Conv2d {
    spec: Conv2dSpec,
    algo: ConvAlgo,
    relu: bool,
    weight: ParamId,
    bias: Option<ParamId>,
    /// Shared by every caller: one per input size (up to [`PREPARED_SIZES`]), recomputed
    /// when the weights change.
    prepared: RwLock<Vec<Arc<Prepared>>>,
    /// How many preparations were computed (a measure for tests).
    preparations: AtomicUsize,
}

/// Input sizes a convolution keeps prepared weights for (callers at several image sizes, a
/// data set's last batch): beyond it the least recently prepared is dropped.
const PREPARED_SIZES: usize = 4;

impl Conv2d {
    /// A convolution with its weight (`name.weight`, drawn by `init` with fan-in
    /// `C/groups * kh * kw`) and zero bias (`name.bias`) created in `p`.
    pub fn new(p: &mut ParamScope, spec: Conv2dSpec, init: Init) -> Result<Conv2d, LayerError> {
        spec.validate()?;
        let shape = spec.weight_shape();
        let (fan_in, fan_out) = (shape[1] * shape[2] * shape[3], spec.out_channels / spec.groups * shape[2] * shape[3]);
        let weight = p.param("weight", &shape, Fill::Random { init, fan_in, fan_out }, true)?;
        let bias = if spec.bias { Some(p.param("bias", &[spec.out_channels], Fill::Zeros, false)?) } else { None };
        Ok(Conv2d::from_params(spec, weight, bias))
    }

    /// A convolution reading existing parameters (shared or tied weights).
    pub fn from_params(spec: Conv2dSpec, weight: ParamId, bias: Option<ParamId>) -> Conv2d {
        Conv2d {
            spec: Conv2dSpec { bias: bias.is_some(), ..spec },
            algo: ConvAlgo::Auto,
            relu: false,
            weight,
            bias,
            prepared: RwLock::new(Vec::new()),
            preparations: AtomicUsize::new(0),
        }
    }

    /// Applies ReLU in the convolution's epilogue (and its mask in backward).
    pub fn with_relu(self) -> Self {
        Conv2d { relu: true, ..self }
    }

    /// Forces an algorithm (default: `Auto`, the fastest for each shape).
    pub fn with_algo(self, algo: ConvAlgo) -> Self {
        Conv2d { algo, ..self }
    }

    pub fn spec(&self) -> &Conv2dSpec {
        &self.spec
    }
    pub fn weight(&self) -> ParamId {
        self.weight
    }
    pub fn bias(&self) -> Option<ParamId> {
        self.bias
    }
    pub fn relu(&self) -> bool {
        self.relu
    }

    /// A copy of this convolution (same parameters) with ReLU fused (graph rewriting).
    pub(crate) fn relu_fused(&self) -> Conv2d {
        Conv2d { relu: true, ..self.with_bias_param_opt(self.bias) }
    }

    fn with_bias_param_opt(&self, bias: Option<ParamId>) -> Conv2d {
        Conv2d { algo: self.algo, relu: self.relu, ..Conv2d::from_params(self.spec, self.weight, bias) }
    }

    /// This convolution with `bias` as its bias (batch-norm folding gives one).
    pub(crate) fn with_bias_param(&self, bias: ParamId) -> Conv2d {
        self.with_bias_param_opt(Some(bias))
    }

    fn geom(&self, x: &[usize]) -> Result<Conv2dGeom, LayerError> {
        let dims = nchw(|| self.describe(), x)?;
        if dims[1] != self.spec.in_channels {
            return Err(LayerError::InputShape {
                layer: self.describe(),
                expected: format!("[batch, {}, height, width]", self.spec.in_channels),
                got: x.to_vec(),
            });
        }
        let g = self.spec.geom(dims);
        g.validate()?;
        Ok(g)
    }

    /// The prepared weights for this input size, computed once per weight version.
    fn prepared(&self, cx: &OpCtx, g: &Conv2dGeom) -> Result<Arc<Prepared>, LayerError> {
        let (size, version, isa) = ((g.in_h, g.in_w), cx.params.version(), cx.isa());
        let fresh = |p: &&Arc<Prepared>| p.size == size && p.version == version && p.isa == isa;
        if let Some(p) = self.prepared.read().unwrap_or_else(|e| e.into_inner()).iter().find(fresh) {
            return Ok(p.clone());
        }
        let mut cache = self.prepared.write().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.iter().find(fresh) {
            return Ok(p.clone());
        }
        let conv = PreparedConv::new(cx.cfg(), g, self.algo, cx.param(self.weight).data())?;
        self.preparations.fetch_add(1, Ordering::Relaxed);
        let p = Arc::new(Prepared { conv, version, size, isa });
        // Stale weights and this size's old entry go first, then the oldest beyond the limit.
        cache.retain(|q| q.version == version && !(q.size == size && q.isa == isa));
        if cache.len() >= PREPARED_SIZES {
            cache.remove(0);
        }
        cache.push(p.clone());
        Ok(p)
    }

    /// How many times inference weights were prepared (once per input size and weight
    /// version while at most [`PREPARED_SIZES`] sizes alternate).
    pub fn preparations(&self) -> usize {
        self.preparations.load(Ordering::Relaxed)
    }
}

impl Op for Conv2d {
    fn describe(&self) -> String {
        let s = &self.spec;
        let mut d = format!("conv2d {}->{} {}x{}", s.in_channels, s.out_channels, s.kernel.0, s.kernel.1);
        if s.stride != (1, 1) {
            d += &format!(" stride {}", s.stride.0);
        }
        if s.pad != (0, 0) {
            d += &format!(" pad {}", s.pad.0);
        }
        if s.groups != 1 {
            d += &format!(" groups {}", s.groups);
        }
        if self.relu {
            d += " +relu";
        }
        d
    }

    fn params(&self) -> Vec<ParamId> {
        [Some(self.weight), self.bias].into_iter().flatten().collect()
    }

    fn infer(&self, inputs: &[ValueInfo], params: &Params) -> Result<Vec<ValueInfo>, LayerError> {
        expect_f32(&self.describe(), inputs, 1)?;
        let want = self.spec.weight_shape();
        if params.value(self.weight).shape() != want {
            let got = params.value(self.weight).shape().to_vec();
            return Err(LayerError::ParamShape { name: params.name(self.weight).into(), expected: want.to_vec(), got });
        }
        let g = self.geom(&inputs[0].shape)?;
        Ok(vec![ValueInfo::f32(&[g.batch, g.out_channels, g.out_h(), g.out_w()])])
    }

    fn forward(
        &self,
        cx: &OpCtx,
        inputs: &[ValueRef],
        outputs: &mut Outputs,
        _: &mut OpState,
    ) -> Result<(), LayerError> {
        let x = one_f32(|| self.describe(), inputs)?;
        let g = self.geom(x.shape)?;
        let y = &mut outputs[0];
        y.resize(&[g.batch, g.out_channels, g.out_h(), g.out_w()]);
        let bias = self.bias.map(|b| cx.param(b).data());
        if !cx.is_train() {
            let p = self.prepared(cx, &g)?;
            conv::conv2d_forward_prepared(cx.cfg(), &g, &p.conv, x.data, bias, self.relu, y.data_mut())?;
            return Ok(());
        }
        let w = cx.param(self.weight).data();
        conv::conv2d_forward(cx.cfg(), &g, self.algo, x.data, w, bias, self.relu, y.data_mut())?;
        Ok(())
    }

    fn backward(&self, cx: &OpCtx, io: Backward) -> Result<(), LayerError> {
        let x = one_f32(|| self.describe(), io.inputs)?;
        let g = self.geom(x.shape)?;
        let dy = through_fused_relu(cx, self.relu, io.outputs[0], io.d_outputs[0], io.state.tensor(0))?;
        if let Some(dw) = io.grads.get_mut(self.weight) {
            conv::conv2d_backward_weight_accumulate(cx.cfg(), &g, x.data, dy, dw.data_mut())?;
        }
        if let Some(db) = self.bias.and_then(|b| io.grads.get_mut(b)) {
            conv::conv2d_backward_bias_accumulate(&g, dy, db.data_mut())?;
        }
        if let Some(dx) = io.d_inputs[0].as_deref_mut() {
            dx.resize(x.shape);
            conv::conv2d_backward_input(cx.cfg(), &g, cx.param(self.weight).data(), dy, dx.data_mut())?;
        }
        Ok(())
    }

    fn macs(&self, inputs: &[ValueInfo], outputs: &[ValueInfo]) -> u64 {
        let (Some(i), Some(o)) = (inputs.first(), outputs.first()) else { return 0 };
        let [c, kh, kw] = [self.spec.in_channels / self.spec.groups.max(1), self.spec.kernel.0, self.spec.kernel.1];
        let _ = i;
        (o.len() * c * kh * kw) as u64
    }
}
