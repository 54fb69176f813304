//! 2-D convolution: forward for inference and training, and the three backward passes.
//!
//! Tensors are NCHW f32 slices (PyTorch's layout); [`Conv2dGeom`] gives every shape. Each
//! image and group is one GEMM on the blocked SGEMM, `y_g = W_g * col(x_g)`, with bias and
//! ReLU fused into its epilogue; a 1x1 stride-1 unpadded convolution multiplies the input
//! planes directly, with no im2col.
//!
//! The course's example, a 5x5 binary image and a 3x3 filter, gives its 3x3 feature map:
//!
//! ```
//! use simdnn_kernels::conv::{conv2d_forward, Conv2dGeom, ConvAlgo};
//! use simdnn_kernels::gemm::GemmConfig;
//! let x = [1., 1., 1., 0., 0., 0., 1., 1., 1., 0., 0., 0., 1., 1., 1., 0., 0., 1., 1., 0., 0., 1., 1., 0., 0.];
//! let w = [1., 0., 1., 0., 1., 0., 1., 0., 1.];
//! let mut y = [0.0; 9];
//! let geom = Conv2dGeom::new(1, 1, (5, 5), 1, (3, 3));
//! conv2d_forward(&GemmConfig::from_env()?, &geom, ConvAlgo::Auto, &x, &w, None, false, &mut y)?;
//! assert_eq!(y, [4., 3., 4., 2., 4., 3., 2., 3., 4.]);
//! # Ok::<(), simdnn_kernels::KernelError>(())
//! ```

mod batch_norm;
mod direct;
mod direct_rows;
mod direct_weight;
mod geometry;
mod im2col;
mod prepared;
mod winograd;

/// The named kernels of convolution.
pub(crate) const KERNELS: &[&[Instance]] =
    &[direct::INSTANCES, direct_rows::INSTANCES, direct_weight::INSTANCES, winograd::INSTANCES, im2col::INSTANCES];

pub use batch_norm::{fold_batch_norm, BatchNormParams};
pub(crate) use geometry::require_positive;
pub use geometry::Conv2dGeom;
pub use prepared::{conv2d_forward_prepared, PreparedConv};

use crate::gemm::{sgemm, Bias, Epilogue, GemmConfig, MatMut, MatRef};
use crate::isa::Instance;
use crate::scratch::{Scratch, Slot};
use crate::threading::{for_each_chunk_mut, try_for_each_chunk_mut};
use crate::KernelError;
use im2col::{Col2im, Im2col};

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

/// Per-group sizes: (input channels, output channels, col rows = C_g R S, output pixels).
fn group_dims(g: &Conv2dGeom) -> (usize, usize, usize, usize) {
    let cg = g.in_channels / g.groups;
    (cg, g.out_channels / g.groups, cg * g.kernel_h * g.kernel_w, g.out_h() * g.out_w())
}

/// `y <- relu?(conv(x, w) + bias)`.
///
/// Shapes: `x: [batch, in_channels, in_h, in_w]`, `w: [out_channels, in_channels / groups,
/// kernel_h, kernel_w]`, `bias: [out_channels]`, `y: [batch, out_channels, out_h, out_w]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    algo: ConvAlgo,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("x", g.input_len(), x.len())?;
    Conv2dGeom::check_len("w", g.weight_len(), w.len())?;
    Conv2dGeom::check_len("y", g.output_len(), y.len())?;
    if let Some(b) = bias {
        Conv2dGeom::check_len("bias", g.out_channels, b.len())?;
    }
    let algo = algo.resolve(g)?;
    run_forward(cfg, g, algo, ForwardArgs { x, w, bias, relu }, None, y)
}

/// The forward pass of a validated call with a resolved algorithm; `winograd_filters`, if
/// given, are `w` already transformed ([`PreparedConv`]).
fn run_forward(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    algo: ConvAlgo,
    args: ForwardArgs,
    winograd_filters: Option<&[f32]>,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let out_image = g.out_channels * g.out_h() * g.out_w();
    let in_image = g.in_channels * g.in_h * g.in_w;
    let images_of = |first: usize, images: &Conv2dGeom| ForwardArgs {
        x: &args.x[first * in_image..][..images.input_len()],
        ..args
    };
    if algo == ConvAlgo::Winograd {
        // One filter transform (or none, when prepared), on every thread, shared by all
        // images: each thread would otherwise repeat it (36 C K values, 37 MB at 512
        // channels).
        let mut own;
        let u: &[f32] = match winograd_filters {
            Some(u) => u,
            None => {
                own = Scratch::take(Slot::WinogradFilter, winograd::filter_len(g));
                winograd::transform_filters(cfg, g, args.w, &mut own);
                &own
            }
        };
        return per_image_batches(cfg, g, y, out_image, |cfg, images, first, yp| {
            winograd::forward_transformed(cfg, images, images_of(first, images), u, yp)
        });
    }
    per_image_batches(cfg, g, y, out_image, |cfg, images, first, yp| {
        forward_images(cfg, images, algo, images_of(first, images), yp)
    })
}

/// How the images of a call are cut into parts, each computed as a call of its own: a
/// function of the layer and batch alone, never of the thread count. Every kernel inside a
/// part gives the same bits on any number of threads (GEMMs split the output, never a
/// sum), so with the parts fixed a whole pass does too, and training on one thread and on
/// sixteen ends with the same weights.
#[derive(Clone, Copy, Debug)]
struct ImageParts {
    /// Images per part (the last part may have fewer).
    size: usize,
    count: usize,
}

/// At most this many parts: enough to share out evenly over 1, 2, 3, 4, 6 or 12 threads.
const MAX_PARTS: usize = 12;

/// Output pixels a part has at least (a GEMM too narrow to pay for its packing otherwise).
const MIN_PART_PIXELS: usize = 1024;

impl ImageParts {
    /// Parts for a pass over `g` whose per-part results cost `per_part` values of memory
    /// each (the weight gradient's partial sums; 0 when parts write disjoint outputs).
    fn of(g: &Conv2dGeom, per_part: usize) -> ImageParts {
        let pixels = (g.out_h() * g.out_w()).max(1);
        let by_memory = REDUCE_BUDGET.checked_div(per_part).map_or(MAX_PARTS, |n| n.max(1));
        let parts = g.batch.min(MAX_PARTS).min(by_memory).max(1);
        let size = g.batch.div_ceil(parts).max(MIN_PART_PIXELS.div_ceil(pixels)).clamp(1, g.batch.max(1));
        ImageParts { size, count: g.batch.div_ceil(size) }
    }

    /// Part `i`'s images.
    fn images(&self, g: &Conv2dGeom, i: usize) -> Conv2dGeom {
        Conv2dGeom { batch: self.size.min(g.batch - i * self.size), ..*g }
    }

    /// Whether the parts run side by side, one thread each (else one after another, each
    /// on every thread): when they share out evenly enough.
    fn side_by_side(&self, threads: usize) -> bool {
        threads > 1 && (self.count.is_multiple_of(threads) || self.count >= 2 * threads)
    }
}

/// Runs `f(cfg, part_images, part_index, chunk)` for every part of `parts`, with `chunk`
/// part `i`'s `chunk_len`-long piece of `buf` (the last may be shorter): side by side on
/// one thread each, or one after another on all of them.
fn for_parts(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    parts: ImageParts,
    buf: &mut [f32],
    chunk_len: usize,
    f: impl Fn(&GemmConfig, &Conv2dGeom, usize, &mut [f32]) -> Result<(), KernelError> + Sync + Send,
) -> Result<(), KernelError> {
    if parts.side_by_side(cfg.threads()) {
        let one = cfg.with_threads(1)?;
        return try_for_each_chunk_mut(cfg.threads(), buf, chunk_len, |i, chunk| {
            f(&one, &parts.images(g, i), i, chunk)
        });
    }
    for (i, chunk) in buf.chunks_mut(chunk_len).enumerate() {
        f(cfg, &parts.images(g, i), i, chunk)?;
    }
    Ok(())
}

/// Runs `f(cfg, images, first_image, out_part)` over the batch in [`ImageParts`]; `out`
/// holds `out_image` elements per image.
fn per_image_batches(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    out: &mut [f32],
    out_image: usize,
    f: impl Fn(&GemmConfig, &Conv2dGeom, usize, &mut [f32]) -> Result<(), KernelError> + Sync + Send,
) -> Result<(), KernelError> {
    let parts = ImageParts::of(g, 0);
    if parts.count <= 1 {
        return f(cfg, g, 0, out);
    }
    for_parts(cfg, g, parts, out, parts.size * out_image, |cfg, images, i, part| f(cfg, images, i * parts.size, part))
}

/// A forward call's inputs, as they travel to the algorithms (lengths validated).
#[derive(Clone, Copy)]
pub(crate) struct ForwardArgs<'a> {
    pub x: &'a [f32],
    pub w: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

/// One algorithm over the images of `g`.
fn forward_images(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    algo: ConvAlgo,
    args: ForwardArgs,
    y: &mut [f32],
) -> Result<(), KernelError> {
    match algo {
        ConvAlgo::Winograd => winograd::forward(cfg, g, args, y),
        ConvAlgo::Direct => {
            direct::forward(cfg, g, args, y);
            Ok(())
        }
        ConvAlgo::DirectRows => {
            direct_rows::forward(cfg, g, args, y);
            Ok(())
        }
        ConvAlgo::Auto | ConvAlgo::Im2colGemm => forward_im2col(cfg, g, args, y),
    }
}

/// Images whose column matrices together stay within this many values are multiplied in
/// one GEMM (small images: LeNet's 14x14 maps give 150 x 100 columns per image, a GEMM too
/// small to pay for its packing; 64 of them side by side make a well-shaped one).
const BATCHED_COLUMNS: usize = 1 << 17;

/// How many images to put side by side in one GEMM: 1 (image by image) unless several fit.
fn images_per_gemm(g: &Conv2dGeom) -> usize {
    let (_, _, crs, pixels) = group_dims(g);
    if g.groups != 1 || g.is_pointwise() {
        return 1;
    }
    (BATCHED_COLUMNS / (crs * pixels).max(1)).clamp(1, g.batch)
}

/// Offsets `(nchw, wide)` of each `pixels`-long output plane of a chunk of `n` images, in
/// NCHW and in the GEMM's `[K x n * pixels]` layout (the images' blocks side by side).
fn plane_offsets(g: &Conv2dGeom, n: usize) -> impl Iterator<Item = (usize, usize)> {
    let (k, pixels) = (g.out_channels, g.out_h() * g.out_w());
    (0..n).flat_map(move |i| (0..k).map(move |c| ((i * k + c) * pixels, (c * n + i) * pixels)))
}

/// NCHW output-shaped planes of a chunk into the GEMM layout.
fn to_wide(g: &Conv2dGeom, nchw: &[f32], wide: &mut [f32], n: usize) {
    let pixels = g.out_h() * g.out_w();
    for (a, b) in plane_offsets(g, n) {
        wide[b..b + pixels].copy_from_slice(&nchw[a..a + pixels]);
    }
}

/// im2col of images `first..first + n` of `x` side by side into `col` (`crs x n * pixels`).
fn batched_columns(cfg: &GemmConfig, g: &Conv2dGeom, x: &[f32], first: usize, n: usize, col: &mut [f32]) {
    let (c, pixels, plane) = (g.in_channels, g.out_h() * g.out_w(), g.in_channels * g.in_h * g.in_w);
    for i in 0..n {
        let (x, col) = (&x[(first + i) * plane..][..plane], &mut col[i * pixels..]);
        cfg.run(Im2col { g, channels: c, x, col, ld: n * pixels, rows: 0..g.out_h() });
    }
}

/// Forward over chunks of images, each one GEMM `W * [col_1 .. col_n]` scattered back to NCHW.
fn forward_batched(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    args: ForwardArgs,
    per: usize,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let ForwardArgs { x, w, bias, relu } = args;
    let (_, k, crs, pixels) = group_dims(g);
    let mut col = Scratch::take(Slot::Im2col, crs * per * pixels);
    let mut wide = Scratch::take(Slot::Gather, k * per * pixels);
    for first in (0..g.batch).step_by(per) {
        let n = per.min(g.batch - first);
        let cols = n * pixels;
        batched_columns(cfg, g, x, first, n, &mut col);
        let epi = Epilogue { bias: bias.map_or(Bias::None, Bias::PerRow), relu };
        let out = MatMut::new(&mut wide[..k * cols], k, cols, cols)?;
        sgemm(
            cfg,
            1.0,
            MatRef::new(w, k, crs, crs)?,
            MatRef::new(&col[..crs * cols], crs, cols, cols)?,
            0.0,
            out,
            epi,
        )?;
        let y_chunk = &mut y[first * k * pixels..][..n * k * pixels];
        for (a, b) in plane_offsets(g, n) {
            y_chunk[a..a + pixels].copy_from_slice(&wide[b..b + pixels]);
        }
    }
    Ok(())
}

/// Output rows per strip when one image's column matrix outgrows `BATCHED_COLUMNS` (one
/// group, on any number of threads, so that the bits do not depend on it): the matrix is
/// then built and multiplied a strip of output rows at a time, so it is written and packed
/// while in L2 instead of streaming through L3.
/// 3 -> 64 channels 3x3 on 224x224 (a 27 x 50176 matrix per image), batch 8, one thread:
/// 29 -> 44 GFLOP/s. Not when strips would be under `MIN_STRIP_COLUMNS` wide: deep, small
/// layers gain nothing from them (the GEMM blocks K itself) and lose full column panels
/// (512 channels 7x7, batch 1: strips of 28 and 21 columns, 63-67 against 73-80 GFLOP/s
/// whole, best of runs).
fn strip_rows(g: &Conv2dGeom) -> Option<usize> {
    let (_, _, crs, pixels) = group_dims(g);
    let row = crs * g.out_w();
    let rows = (BATCHED_COLUMNS / row.max(1)).clamp(1, g.out_h());
    let wide = rows * g.out_w() >= MIN_STRIP_COLUMNS;
    (g.groups == 1 && !g.is_pointwise() && crs * pixels > BATCHED_COLUMNS && wide).then_some(rows)
}

/// The narrowest strip worth its GEMM: four full column panels.
const MIN_STRIP_COLUMNS: usize = 64;

/// Forward image by image, a strip of `rows` output rows per GEMM written in place into y.
fn forward_strips(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    args: ForwardArgs,
    rows: usize,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let ForwardArgs { x, w, bias, relu } = args;
    let (c, k, crs, pixels) = group_dims(g);
    let (plane, ow_n) = (c * g.in_h * g.in_w, g.out_w());
    let mut col = Scratch::take(Slot::Im2col, crs * rows * ow_n);
    let epi = Epilogue { bias: bias.map_or(Bias::None, Bias::PerRow), relu };
    let w_m = MatRef::new(w, k, crs, crs)?;
    for b in 0..g.batch {
        let x_b = &x[b * plane..][..plane];
        for oh0 in (0..g.out_h()).step_by(rows) {
            let oh1 = (oh0 + rows).min(g.out_h());
            let cols = (oh1 - oh0) * ow_n;
            cfg.run(Im2col { g, channels: c, x: x_b, col: &mut col, ld: cols, rows: oh0..oh1 });
            // Columns oh0 * ow_n.. of every output plane of image b (row stride: the plane).
            let y_strip = &mut y[b * k * pixels + oh0 * ow_n..][..(k - 1) * pixels + cols];
            let out = MatMut::new(y_strip, k, cols, pixels)?;
            sgemm(cfg, 1.0, w_m, MatRef::new(&col[..crs * cols], crs, cols, cols)?, 0.0, out, epi)?;
        }
    }
    Ok(())
}

/// The im2col + GEMM forward pass, image after image (or several images per GEMM).
fn forward_im2col(cfg: &GemmConfig, g: &Conv2dGeom, args: ForwardArgs, y: &mut [f32]) -> Result<(), KernelError> {
    let per = images_per_gemm(g);
    if per > 1 {
        return forward_batched(cfg, g, args, per, y);
    }
    if let Some(rows) = strip_rows(g) {
        return forward_strips(cfg, g, args, rows, y);
    }
    let ForwardArgs { x, w, bias, relu } = args;
    let (_, kg, crs, pixels) = group_dims(g);
    let mut col = Scratch::take(Slot::Im2col, if g.is_pointwise() { 0 } else { crs * pixels });
    for b in 0..g.batch {
        for grp in 0..g.groups {
            let cols = columns(cfg, g, x, b, grp, &mut col)?;
            let w_g = MatRef::new(&w[grp * kg * crs..][..kg * crs], kg, crs, crs)?;
            let y_bg = &mut y[(b * g.out_channels + grp * kg) * pixels..][..kg * pixels];
            let bias = bias.map_or(Bias::None, |v| Bias::PerRow(&v[grp * kg..(grp + 1) * kg]));
            sgemm(cfg, 1.0, w_g, cols, 0.0, MatMut::new(y_bg, kg, pixels, pixels)?, Epilogue { bias, relu })?;
        }
    }
    Ok(())
}

/// The GEMM's right-hand side for image `b`, group `grp`: the input planes themselves for a
/// pointwise convolution, else their im2col matrix built in `col`.
fn columns<'a>(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &'a [f32],
    b: usize,
    grp: usize,
    col: &'a mut [f32],
) -> Result<MatRef<'a>, KernelError> {
    let (cg, _, crs, pixels) = group_dims(g);
    let plane = g.in_h * g.in_w;
    let x_bg = &x[(b * g.in_channels + grp * cg) * plane..][..cg * plane];
    if g.is_pointwise() {
        MatRef::new(x_bg, cg, pixels, pixels)
    } else {
        im2col_parallel(cfg, g, cg, x_bg, col);
        MatRef::new(col, crs, pixels, pixels)
    }
}

/// Image `b`, group `grp` of an output-shaped tensor (`y` or `dy`): `K_g x pixels`.
fn output_block<'a>(g: &Conv2dGeom, t: &'a [f32], b: usize, grp: usize) -> Result<MatRef<'a>, KernelError> {
    let (_, kg, _, pixels) = group_dims(g);
    MatRef::new(&t[(b * g.out_channels + grp * kg) * pixels..][..kg * pixels], kg, pixels, pixels)
}

/// im2col with the channels split across `threads` (each channel fills its own rows).
fn im2col_parallel(cfg: &GemmConfig, g: &Conv2dGeom, channels: usize, x: &[f32], col: &mut [f32]) {
    let (plane, rows_per_channel) = (g.in_h * g.in_w, g.kernel_h * g.kernel_w * g.out_h() * g.out_w());
    let (threads, ld) = (cfg.threads(), g.out_h() * g.out_w());
    if threads <= 1 || channels < 2 {
        return cfg.run(Im2col { g, channels, x, col, ld, rows: 0..g.out_h() });
    }
    let per_task = channels.div_ceil(threads);
    for_each_chunk_mut(threads, &mut col[..channels * rows_per_channel], per_task * rows_per_channel, |i, part| {
        let n = part.len() / rows_per_channel;
        let x = &x[i * per_task * plane..][..n * plane];
        cfg.run(Im2col { g, channels: n, x, col: part, ld, rows: 0..g.out_h() });
    });
}

/// `dx <- d(loss)/dx` given `dy = d(loss)/dy`: for each image and group,
/// `dcol = W_g^T * dy_g`, scattered back by col2im. `dx` is overwritten. Images are split
/// across threads as in the forward pass.
pub fn conv2d_backward_input(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("w", g.weight_len(), w.len())?;
    Conv2dGeom::check_len("dy", g.output_len(), dy.len())?;
    Conv2dGeom::check_len("dx", g.input_len(), dx.len())?;
    per_image_batches(cfg, g, dx, g.in_channels * g.in_h * g.in_w, |cfg, images, first, dxp| {
        let dyp = &dy[first * g.out_channels * g.out_h() * g.out_w()..][..images.output_len()];
        backward_input_images(cfg, images, w, dyp, dxp)
    })
}

fn backward_input_images(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    let (cg, kg, crs, pixels) = group_dims(g);
    let plane = g.in_h * g.in_w;
    let per = images_per_gemm(g);
    if per > 1 {
        return backward_input_batched(cfg, g, w, dy, per, dx);
    }
    let mut dcol = Scratch::take(Slot::Im2col, if g.is_pointwise() { 0 } else { crs * pixels });
    if !g.is_pointwise() {
        dx.fill(0.0);
    }
    for b in 0..g.batch {
        for grp in 0..g.groups {
            let w_gt = MatRef::new(&w[grp * kg * crs..][..kg * crs], kg, crs, crs)?.t();
            let dy_bg = output_block(g, dy, b, grp)?;
            let dx_bg = &mut dx[(b * g.in_channels + grp * cg) * plane..][..cg * plane];
            if g.is_pointwise() {
                sgemm(cfg, 1.0, w_gt, dy_bg, 0.0, MatMut::new(dx_bg, cg, pixels, pixels)?, Epilogue::NONE)?;
            } else {
                sgemm(cfg, 1.0, w_gt, dy_bg, 0.0, MatMut::new(&mut dcol, crs, pixels, pixels)?, Epilogue::NONE)?;
                cfg.run(Col2im { g, channels: cg, col: &dcol, ld: pixels, dx: dx_bg });
            }
        }
    }
    Ok(())
}

/// `dcol = W^T [dy_1 .. dy_n]` for chunks of images, scattered back by col2im.
fn backward_input_batched(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    w: &[f32],
    dy: &[f32],
    per: usize,
    dx: &mut [f32],
) -> Result<(), KernelError> {
    let (c, k, crs, pixels) = group_dims(g);
    let plane = c * g.in_h * g.in_w;
    let mut dcol = Scratch::take(Slot::Im2col, crs * per * pixels);
    let mut wide = Scratch::take(Slot::Gather, k * per * pixels);
    dx.fill(0.0);
    for first in (0..g.batch).step_by(per) {
        let n = per.min(g.batch - first);
        let cols = n * pixels;
        to_wide(g, &dy[first * k * pixels..][..n * k * pixels], &mut wide, n);
        let w_t = MatRef::new(w, k, crs, crs)?.t();
        let out = MatMut::new(&mut dcol[..crs * cols], crs, cols, cols)?;
        sgemm(cfg, 1.0, w_t, MatRef::new(&wide[..k * cols], k, cols, cols)?, 0.0, out, Epilogue::NONE)?;
        for i in 0..n {
            let dx = &mut dx[(first + i) * plane..][..plane];
            cfg.run(Col2im { g, channels: c, col: &dcol[i * pixels..], ld: cols, dx });
        }
    }
    Ok(())
}

/// `dw <- d(loss)/dw = sum over images of dy_g * col(x_g)^T`. `dw` is overwritten.
pub fn conv2d_backward_weight(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) -> Result<(), KernelError> {
    backward_weight(cfg, g, x, dy, 0.0, dw)
}

/// `dw <- dw + d(loss)/dw`: [`conv2d_backward_weight`] added to the gradient already there
/// (layers accumulate gradients over calls, e.g. weights shared across time steps).
pub fn conv2d_backward_weight_accumulate(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) -> Result<(), KernelError> {
    backward_weight(cfg, g, x, dy, 1.0, dw)
}

/// Most values the partial weight gradients of one call may take (4 MiB): a layer whose
/// gradient is larger is summed in fewer parts (one, over its GEMMs' threads).
const REDUCE_BUDGET: usize = 1 << 20;

/// `dw <- beta * dw + sum over images`: each of the [`ImageParts`] sums its images into a
/// partial gradient and the partials are added in part order, so the sum has the same
/// bits on any number of threads.
fn backward_weight(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    beta: f32,
    dw: &mut [f32],
) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("x", g.input_len(), x.len())?;
    Conv2dGeom::check_len("dy", g.output_len(), dy.len())?;
    Conv2dGeom::check_len("dw", g.weight_len(), dw.len())?;
    let wlen = g.weight_len();
    let parts = ImageParts::of(g, wlen);
    if parts.count <= 1 {
        return backward_weight_images(cfg, g, x, dy, beta, dw);
    }
    let (in_img, out_img) = (g.in_channels * g.in_h * g.in_w, g.out_channels * g.out_h() * g.out_w());
    let mut partials = Scratch::take(Slot::Reduce, parts.count * wlen);
    for_parts(cfg, g, parts, &mut partials, wlen, |cfg, images, i, part| {
        let first = i * parts.size;
        let (xp, dyp) = (&x[first * in_img..][..images.input_len()], &dy[first * out_img..][..images.output_len()]);
        backward_weight_images(cfg, images, xp, dyp, 0.0, part)
    })?;
    for (j, d) in dw.iter_mut().enumerate() {
        let sum = (0..parts.count).fold(0.0, |s, t| s + partials[t * wlen + j]);
        *d = if beta == 0.0 { sum } else { beta * *d + sum };
    }
    Ok(())
}

/// `dW^T = [col_1 .. col_n] [dy_1 .. dy_n]^T` over chunks of images, then `dw <- beta dw + dW`.
fn backward_weight_batched(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    beta: f32,
    per: usize,
    dw: &mut [f32],
) -> Result<(), KernelError> {
    let (_, kg, crs, pixels) = group_dims(g);
    let mut col = Scratch::take(Slot::Im2col, crs * per * pixels);
    let mut wide = Scratch::take(Slot::Gather, kg * per * pixels);
    let mut dw_t = Scratch::take(Slot::Transpose, crs * kg);
    for first in (0..g.batch).step_by(per) {
        let n = per.min(g.batch - first);
        let cols = n * pixels;
        batched_columns(cfg, g, x, first, n, &mut col);
        to_wide(g, &dy[first * kg * pixels..][..n * kg * pixels], &mut wide, n);
        // dW^T = col * dy^T: the large column matrix is the GEMM's A, read row by row,
        // and only the K rows of dy are read across (dW = dy * col^T would read the
        // column matrix across, C R S strided streams).
        let a = MatRef::new(&col[..crs * cols], crs, cols, cols)?;
        let b = MatRef::new(&wide[..kg * cols], kg, cols, cols)?.t();
        let acc = if first == 0 { 0.0 } else { 1.0 };
        sgemm(cfg, 1.0, a, b, acc, MatMut::new(&mut dw_t, crs, kg, kg)?, Epilogue::NONE)?;
    }
    for (k, row) in dw.chunks_exact_mut(crs).enumerate() {
        for (j, d) in row.iter_mut().enumerate() {
            let v = dw_t[j * kg + k];
            *d = if beta == 0.0 { v } else { beta * *d + v };
        }
    }
    Ok(())
}

fn backward_weight_images(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &[f32],
    beta: f32,
    dw: &mut [f32],
) -> Result<(), KernelError> {
    if direct_weight::applies(g) {
        cfg.run(direct_weight::WeightGradOp { g, x, dy, beta, dw });
        return Ok(());
    }
    let (_, kg, crs, pixels) = group_dims(g);
    let per = images_per_gemm(g);
    if per > 1 {
        return backward_weight_batched(cfg, g, x, dy, beta, per, dw);
    }
    let mut col = Scratch::take(Slot::Im2col, if g.is_pointwise() { 0 } else { crs * pixels });
    for b in 0..g.batch {
        for grp in 0..g.groups {
            let cols = columns(cfg, g, x, b, grp, &mut col)?;
            let dy_bg = output_block(g, dy, b, grp)?;
            let dw_g = MatMut::new(&mut dw[grp * kg * crs..][..kg * crs], kg, crs, crs)?;
            let beta = if b == 0 { beta } else { 1.0 };
            sgemm(cfg, 1.0, dy_bg, cols.t(), beta, dw_g, Epilogue::NONE)?;
        }
    }
    Ok(())
}

/// `db[k] <- sum over images and pixels of dy[.., k, ..]`. `db` is overwritten.
pub fn conv2d_backward_bias(g: &Conv2dGeom, dy: &[f32], db: &mut [f32]) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("dy", g.output_len(), dy.len())?;
    Conv2dGeom::check_len("db", g.out_channels, db.len())?;
    db.fill(0.0);
    conv2d_backward_bias_accumulate(g, dy, db)
}

/// The sum of `v` over eight independent partial sums, which the compiler keeps in one
/// vector register (a single running sum is a serial chain it may not reorder).
fn plane_sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `db <- db + d(loss)/db`: [`conv2d_backward_bias`] added to the gradient already there.
pub fn conv2d_backward_bias_accumulate(g: &Conv2dGeom, dy: &[f32], db: &mut [f32]) -> Result<(), KernelError> {
    g.validate()?;
    Conv2dGeom::check_len("dy", g.output_len(), dy.len())?;
    Conv2dGeom::check_len("db", g.out_channels, db.len())?;
    let pixels = g.out_h() * g.out_w();
    for image in dy.chunks_exact(g.out_channels * pixels) {
        for (d, plane) in db.iter_mut().zip(image.chunks_exact(pixels)) {
            *d += plane_sum(plane);
        }
    }
    Ok(())
}
