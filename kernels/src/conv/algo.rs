//! Which algorithm computes a convolution, chosen per layer shape.

use super::{direct_rows, winograd, Conv2dGeom};
use crate::KernelError;

/// Which algorithm computes a convolution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvAlgo {
    /// The fastest implemented algorithm for the shape.
    #[default]
    Auto,
    /// im2col + blocked SGEMM (no im2col for 1x1 stride-1 unpadded convolutions).
    Im2colGemm,
    /// Winograd on 6x6 tiles: F(4x4, 3x3) for 3x3 and F(2x2, 5x5) for 5x5 kernels; stride 1,
    /// no dilation, one group.
    Winograd,
    /// Direct convolution vectorised over output channels (an implicit GEMM on the padded
    /// input): any kernel, stride, padding, dilation and groups.
    Direct,
    /// Direct convolution vectorised along output rows (each vector: consecutive pixels of
    /// one output channel), on a phase-split copy of the input for strided layers: any
    /// kernel, stride, padding, dilation and groups.
    DirectRows,
}

impl ConvAlgo {
    /// Lower-case name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgo::Auto => "auto",
            ConvAlgo::Im2colGemm => "im2col",
            ConvAlgo::Winograd => "winograd",
            ConvAlgo::Direct => "direct",
            ConvAlgo::DirectRows => "direct-rows",
        }
    }

    /// Every algorithm, `Auto` first.
    pub const ALL: [ConvAlgo; 5] =
        [ConvAlgo::Auto, ConvAlgo::Im2colGemm, ConvAlgo::Winograd, ConvAlgo::Direct, ConvAlgo::DirectRows];

    /// Parses `auto`, `im2col`, `winograd`, `direct` or `direct-rows`.
    pub fn from_name(name: &str) -> Option<ConvAlgo> {
        ConvAlgo::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The algorithm `Auto` resolves to for `geom`, or an error if the geometry is invalid
    /// or an explicitly chosen algorithm cannot compute it.
    ///
    /// Winograd where it applies, the channels give its GEMMs some depth (16 or more), and
    /// there are enough 4x4 output tiles in the batch (32 or more, and at least 1/16 of the
    /// input channels) to amortise the per-call filter transform (`K * C` filters).
    /// Measured on AVX2, one thread (GFLOP/s im2col -> Winograd): 64 ch 56x56 batch 1
    /// 53 -> 146, 128 ch 28x28 batch 1 57 -> 122, 256 ch 14x14 batch 8 60 -> 151,
    /// 512 ch 7x7 batch 8 56 -> 89; but 256 ch 14x14 batch 1 (16 tiles) 68 -> 58 and
    /// 512 ch 7x7 batch 1 (4 tiles) 52 -> 20. F(2x2, 5x5) on 5x5 kernels: 96 -> 256 ch
    /// 27x27, batch 8, 80 -> 156, batch 1 82 -> 129.
    ///
    /// Direct along output rows for few input channels per group (4 or fewer) and output
    /// rows of 24 or more, where im2col's matrix is many times the input and few taps feed
    /// each output (batch 8, one thread, GFLOP/s im2col / direct / direct-rows): 7x7
    /// stride 2 from 3 channels 43 / 62 / 79; 11x11 stride 4 52 / 60 / 68-76; 3x3 from 3
    /// channels on 224x224 40 / 31 / 61; LeNet-5's C1 (1 -> 6, 5x5, 32x32, batch 64)
    /// 13 / 11 / 43. Direct over output channels for shorter rows: a 3x3 stride-2 layer
    /// 4 -> 32 channels on 64x64 30 / 43 / 45, but 16x16 outputs leave most of each
    /// row vector empty.
    pub fn resolve(self, geom: &Conv2dGeom) -> Result<ConvAlgo, KernelError> {
        self.resolve_for(geom, false)
    }

    /// [`ConvAlgo::resolve`] for weights prepared once ([`PreparedConv`]): the filter
    /// transform no longer counts per call, so Winograd pays from 16 tiles whatever the
    /// channel count. Prepared, one thread (GFLOP/s im2col -> Winograd): 256 ch 14x14
    /// batch 1 (16 tiles) 75 -> 104; but 512 ch 7x7 batch 1 (4 tiles) 66 -> 51.
    pub fn resolve_prepared(self, geom: &Conv2dGeom) -> Result<ConvAlgo, KernelError> {
        self.resolve_for(geom, true)
    }

    fn resolve_for(self, geom: &Conv2dGeom, prepared: bool) -> Result<ConvAlgo, KernelError> {
        geom.validate()?;
        let tiles = geom.batch * geom.out_h().div_ceil(4) * geom.out_w().div_ceil(4);
        let winograd_pays = if prepared { tiles >= 16 } else { tiles >= 32 && 16 * tiles >= geom.in_channels };
        // Direct copies the input with its padding; refuse padding that multiplies its size.
        let direct_ok = geom.padded_plane() <= 4 * geom.in_h * geom.in_w + 4096;
        // Its phase-split copy likewise (with room for small layers, whose rows round up to
        // whole vectors).
        let input = (geom.in_channels / geom.groups.max(1)).saturating_mul(geom.in_h).saturating_mul(geom.in_w);
        let rows_ok = direct_rows::buffer_len(geom) <= input.saturating_mul(4).saturating_add(1 << 16);
        let thin = geom.in_channels / geom.groups <= 4 && direct_ok;
        let wide = geom.kernel_h * geom.kernel_w >= 25 || geom.stride_h.max(geom.stride_w) >= 2;
        let long_rows = geom.out_w() >= 24 && geom.kernel_h * geom.kernel_w > 1 && rows_ok;
        // Few output channels under a large kernel: one or two vectors of output channels
        // per pixel keep the direct kernel busy, while im2col's matrix is 25x the input.
        // LeNet-5's C3 (6 -> 16, 5x5, 14x14, batch 32, one thread): im2col 21, direct
        // 44 GFLOP/s; C1 (1 -> 6, 5x5, 32x32): 16 against 18.
        let few_outputs = geom.out_channels <= 16 && geom.kernel_h * geom.kernel_w >= 25 && direct_ok;
        match self {
            ConvAlgo::Auto if thin && long_rows => Ok(ConvAlgo::DirectRows),
            ConvAlgo::Auto if (thin && wide) || few_outputs => Ok(ConvAlgo::Direct),
            ConvAlgo::Auto
                if winograd::applies(geom) && geom.in_channels >= 16 && geom.out_channels >= 16 && winograd_pays =>
            {
                Ok(ConvAlgo::Winograd)
            }
            ConvAlgo::Auto => Ok(ConvAlgo::Im2colGemm),
            ConvAlgo::Winograd if !winograd::applies(geom) => Err(KernelError::AlgoNotApplicable {
                algo: "winograd",
                reason: "it needs a 3x3 or 5x5 kernel, stride 1, no dilation and one group",
            }),
            ConvAlgo::Direct if !direct_ok => Err(KernelError::AlgoNotApplicable {
                algo: "direct",
                reason: "its zero-padded copy of the input would be over four times the input",
            }),
            ConvAlgo::DirectRows if !rows_ok => Err(KernelError::AlgoNotApplicable {
                algo: "direct-rows",
                reason: "its zero-padded, phase-split copy of the input would be over four times the input",
            }),
            other => Ok(other),
        }
    }
}
