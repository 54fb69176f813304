//! Winograd convolution for stride-1 kernels (Lavin & Gray, 2016): F(4x4, 3x3) for 3x3 and
//! F(2x2, 5x5) for 5x5 kernels, both on 6x6 input tiles.
//!
//! Each 4x4 (2x2) block of outputs ("tile") is computed from a 6x6 block of input with 36
//! multiplications per channel pair instead of 144 (100). Channels are the vector dimension
//! throughout, as in channel-blocked (NCHWc) layouts:
//! - each image is copied once into a zero-padded, channel-blocked buffer
//!   (`[channel block][row][column][lane]`), so a tile's 6x6 block is 36 contiguous vector
//!   loads per block of channels, with no bounds checks;
//! - `V = B^T d B` is stored as 36 matrices `V_xi` of `tiles x channels`;
//! - the sums over channels are 36 GEMMs `M_xi = V_xi U_xi` (`[tiles x C] * [C x K]`),
//!   with the filter transform `U = G g G^T` done once per call as `[c][xi][k]`; A (`V_xi`)
//!   is read in place by the GEMM when K is small;
//! - `Y = A^T M A` reads `M_xi` as vectors of output channels and scatters the tiles.
//!
//! Tiles are processed a band of tile rows at a time, so the transformed input and
//! products stay a few MiB whatever the image size.
//!
//! fp32 error: the transforms scale values by up to 8^2 and 5^2, so results carry a few
//! more ulps than direct convolution; `tests/conv.rs` bounds it against an f64 reference.

#![allow(clippy::needless_range_loop)] // index loops keep the vector code closure-free

mod matrices;

use super::{Conv2dGeom, ForwardArgs};
use crate::gemm::{sgemm, CPtr, Epilogue, GemmConfig, MatMut, MatRef};
use crate::isa::{instances, Kernel, Simd, WithSimd};
use crate::scratch::{Scratch, Slot};
use crate::threading::{for_each_chunk_mut, for_each_task, try_for_each_chunk_mut, AlignedSplit};
use crate::KernelError;
use matrices::{bt, F2x5, F4x3, Variant, Vector};
use std::marker::PhantomData;

/// Whether a Winograd algorithm computes this convolution: a 3x3 or 5x5 kernel, stride 1,
/// no dilation, one group.
pub(crate) fn applies(g: &Conv2dGeom) -> bool {
    let square = g.kernel_h == g.kernel_w && (g.kernel_h == 3 || g.kernel_h == 5);
    square && (g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.groups) == (1, 1, 1, 1, 1)
}

/// Largest transformed-input plus product buffer per band of tiles, in f32.
const CHUNK_FLOATS: usize = 1 << 21;

/// Images with fewer tiles than this are grouped into one band (GEMMs of too few rows
/// waste the microkernel).
const MIN_BAND_TILES: usize = 64;

/// A band of tiles: `tc` tiles numbered from tile row `ty0` of the first image in the
/// band; tile `t` is tile `ty0 * tiles_w + t` counted across the band's images.
#[derive(Clone, Copy)]
struct Band {
    ty0: usize,
    tc: usize,
    per_image: usize,
}

impl Band {
    /// Image within the band, tile row and tile column of band tile `t`.
    #[inline(always)]
    fn locate(&self, plan: &Plan, t: usize) -> (usize, usize, usize) {
        let n = self.ty0 * plan.tiles_w + t;
        let (img, r) = (n / self.per_image, n % self.per_image);
        (img, r / plan.tiles_w, r % plan.tiles_w)
    }
}

/// The sizes every stage shares.
#[derive(Clone, Copy)]
struct Plan {
    /// Channels per vector (the path's lane count).
    cb: usize,
    /// Output tile size (the step between input tiles).
    step: usize,
    k_n: usize,
    c_pad: usize,
    k_pad: usize,
    tiles_w: usize,
    /// Padded, blocked input extents: every tile's 6x6 block lies inside.
    hp: usize,
    wp: usize,
}

struct Lanes;
impl WithSimd for Lanes {
    type Output = usize;
    fn with_simd<S: Simd>(self, _: S) -> usize {
        S::LANES
    }
}

/// The convolution of a geometry [`applies`] accepts.
pub(crate) fn forward(cfg: &GemmConfig, g: &Conv2dGeom, args: ForwardArgs, y: &mut [f32]) -> Result<(), KernelError> {
    let mut u = Scratch::take(Slot::WinogradFilter, filter_len(g));
    transform_filters(cfg, g, args.w, &mut u);
    forward_transformed(cfg, g, args, &u, y)
}

/// Length of the transformed filters `U` of `g`.
pub(crate) fn filter_len(g: &Conv2dGeom) -> usize {
    36 * g.in_channels * g.out_channels
}

/// `U[c][xi][k] = (G w[k][c] G^T)[xi]` into `u` (`filter_len(g)` values): once per weight set,
/// shared by every image (and every thread).
pub(crate) fn transform_filters(cfg: &GemmConfig, g: &Conv2dGeom, w: &[f32], u: &mut [f32]) {
    if g.kernel_h == 5 {
        filter_transform::<F2x5>(cfg, g, w, u);
    } else {
        filter_transform::<F4x3>(cfg, g, w, u);
    }
}

/// The convolution with filters already transformed into `u` by [`transform_filters`].
pub(crate) fn forward_transformed(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    args: ForwardArgs,
    u: &[f32],
    y: &mut [f32],
) -> Result<(), KernelError> {
    if g.kernel_h == 5 {
        forward_with::<F2x5>(cfg, g, args, u, y)
    } else {
        forward_with::<F4x3>(cfg, g, args, u, y)
    }
}

fn forward_with<V: Variant>(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    args: ForwardArgs,
    u: &[f32],
    y: &mut [f32],
) -> Result<(), KernelError>
where
    for<'a> OutputTransform<'a, V>: Kernel<Output = ()>,
{
    let ForwardArgs { x, bias, relu, .. } = args;
    let cb = cfg.dispatch(Lanes);
    let (c_n, k_n, step) = (g.in_channels, g.out_channels, V::M);
    let (tiles_h, tiles_w) = (g.out_h().div_ceil(step), g.out_w().div_ceil(step));
    let plan = Plan {
        cb,
        step,
        k_n,
        c_pad: c_n.div_ceil(cb) * cb,
        k_pad: k_n.div_ceil(cb) * cb,
        tiles_w,
        hp: tiles_h * step + 6 - step,
        wp: tiles_w * step + 6 - step,
    };
    let Plan { c_pad, k_pad, hp, wp, .. } = plan;
    // A band of tiles: some tile rows of one image, or, for small images, several whole
    // images, so the GEMMs get at least MIN_BAND_TILES rows.
    let per_image = tiles_h * tiles_w;
    let budget = (CHUNK_FLOATS / (36 * (c_pad + k_pad))).max(tiles_w);
    let images = if per_image >= MIN_BAND_TILES { 1 } else { (budget / per_image).clamp(1, g.batch) };
    let band_rows = if images > 1 { tiles_h } else { (budget / tiles_w).clamp(1, tiles_h) };
    let tc_max = images * band_rows * tiles_w;
    let image_len = c_pad * hp * wp;
    let xb_len = images * image_len;
    let mut buf = Scratch::take(Slot::Winograd, xb_len + 36 * tc_max * (c_pad + k_pad) + k_pad);
    let (xb, rest) = buf.split_at_mut(xb_len);
    let (v, rest) = rest.split_at_mut(36 * tc_max * c_pad);
    let (m, bias_pad) = rest.split_at_mut(36 * tc_max * k_pad);
    bias_pad.fill(0.0);
    if let Some(b) = bias {
        bias_pad[..k_n].copy_from_slice(b);
    }
    let threads = cfg.threads();
    let (plane_in, plane_out) = (g.in_h * g.in_w, g.out_h() * g.out_w());
    for b0 in (0..g.batch).step_by(images) {
        let n_img = images.min(g.batch - b0);
        // The images, zero-padded and blocked by channels: xb[image][blk][row][col][lane].
        let x_band = &x[b0 * c_n * plane_in..][..n_img * c_n * plane_in];
        let blocks_per_image = c_pad / cb;
        let per_task = (n_img * blocks_per_image).div_ceil(threads);
        for_each_chunk_mut(threads, &mut xb[..n_img * image_len], per_task * hp * wp * cb, |i, part| {
            for (j, block) in part.chunks_exact_mut(hp * wp * cb).enumerate() {
                let (img, blk) = ((i * per_task + j) / blocks_per_image, (i * per_task + j) % blocks_per_image);
                let channels = cb.min(c_n - blk * cb);
                let x = &x_band[(img * c_n + blk * cb) * plane_in..][..channels * plane_in];
                cfg.run(BlockInput { g, plan, channels, x, block });
            }
        });
        let y_band = CPtr(y[b0 * k_n * plane_out..][..n_img * k_n * plane_out].as_mut_ptr());
        for ty0 in (0..tiles_h).step_by(band_rows) {
            let tc = n_img * band_rows.min(tiles_h - ty0) * tiles_w;
            let band = Band { ty0, tc, per_image };
            let (v, m) = (&mut v[..36 * tc * c_pad], &mut m[..36 * tc * k_pad]);
            let ranges = AlignedSplit::new(tc, threads, 1);
            let v_ptr = CPtr(v.as_mut_ptr());
            let xb: &[f32] = xb;
            for_each_task(threads, ranges.len(), |i| {
                cfg.run(InputTransform { plan, xb, v: v_ptr, band, tiles: ranges.get(i) });
            });
            // The 36 products: several per thread, each on one thread, when there are enough
            // of them (no synchronisation between them, and no thread left waiting on an
            // uneven split of a small product); else each split across the threads.
            let v: &[f32] = v;
            let product = |cfg: &GemmConfig, xi: usize, out: &mut [f32]| -> Result<(), KernelError> {
                let a = MatRef::new(&v[xi * tc * c_pad..][..tc * c_pad], tc, c_n, c_pad)?;
                let b = MatRef::new(&u[xi * k_n..], c_n, k_n, 36 * k_n)?;
                sgemm(cfg, 1.0, a, b, 0.0, MatMut::new(out, tc, k_n, k_pad)?, Epilogue::NONE)
            };
            if threads > 1 && 36 % threads == 0 {
                let one = cfg.with_threads(1)?;
                let per_task = 36 / threads;
                try_for_each_chunk_mut(threads, m, per_task * tc * k_pad, |i, part| {
                    for (j, out) in part.chunks_exact_mut(tc * k_pad).enumerate() {
                        product(&one, i * per_task + j, out)?;
                    }
                    Ok(())
                })?;
            } else {
                for (xi, out) in m.chunks_exact_mut(tc * k_pad).enumerate() {
                    product(cfg, xi, out)?;
                }
            }
            let m: &[f32] = m;
            let bias_pad: &[f32] = bias_pad;
            let blocks = AlignedSplit::new(k_pad / cb, threads, 1);
            for_each_task(threads, blocks.len(), |i| {
                let (b0, b1) = blocks.get(i);
                let op = OutputTransform::<V> {
                    g,
                    plan,
                    m,
                    bias: bias_pad,
                    relu,
                    y: y_band,
                    band,
                    blocks: (b0, b1),
                    variant: PhantomData,
                };
                cfg.run(op);
            });
        }
    }
    Ok(())
}

/// One image's block of `channels <= LANES` input channels, zero-padded and blocked:
/// `block[row][col][lane]`, lane = channel (the layout the input transform loads 36
/// vectors of per tile). Rows of the planes become pixels of the block through
/// `LANES x LANES` transposes.
struct BlockInput<'a> {
    g: &'a Conv2dGeom,
    plan: Plan,
    channels: usize,
    x: &'a [f32],
    block: &'a mut [f32],
}

impl WithSimd for BlockInput<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let BlockInput { g, plan, channels, x, block } = self;
        let (lanes, wp, plane) = (S::LANES, plan.wp, g.in_h * g.in_w);
        debug_assert_eq!(plan.cb, lanes);
        assert!(channels <= lanes && x.len() >= channels * plane && block.len() >= plan.hp * wp * lanes);
        block.fill(0.0);
        for ih in 0..g.in_h {
            // SAFETY: the padded row ih + pad_h, from column pad_w, lies in the block.
            let out_row = unsafe { block.as_mut_ptr().add(((ih + g.pad_h) * wp + g.pad_w) * lanes) };
            let src = x[ih * g.in_w..].as_ptr();
            // SAFETY (both calls): `width` values from column iw of row ih of each of the
            // `channels` planes lie in x (asserted above), and their pixels in the block.
            let mut iw = 0;
            while iw + lanes <= g.in_w {
                unsafe { block_pixels(s, src.add(iw), plane, channels, lanes, out_row.add(iw * lanes)) };
                iw += lanes;
            }
            if iw < g.in_w {
                unsafe { block_pixels(s, src.add(iw), plane, channels, g.in_w - iw, out_row.add(iw * lanes)) };
            }
        }
    }
}

/// `width <= LANES` pixels from `src` of each of `channels <= LANES` planes (`plane` apart),
/// stored as `width` vectors at `out` (lane = channel, the lanes past `channels` zero).
///
/// # Safety
/// Each plane holds `width` readable values from `src`; `out` is valid for `width` vectors.
#[inline(always)]
unsafe fn block_pixels<S: Simd>(s: S, src: *const f32, plane: usize, channels: usize, width: usize, out: *mut f32) {
    let mut rows = [s.zero(); 16];
    // SAFETY: the caller's contract. Constant indices only (conditions inside constant
    // loops), so the block stays in registers.
    unsafe {
        for c in 0..S::LANES {
            if c < channels {
                rows[c] = s.load_upto(src.add(c * plane), width);
            }
        }
        let pixels = s.transpose(rows);
        for q in 0..S::LANES {
            if q < width {
                s.store(out.add(q * S::LANES), pixels[q]);
            }
        }
    }
}

/// `U[c][xi][k] = (G w[k][c] G^T)[xi]`, input channels split across threads, vectorised
/// over blocks of output channels (contiguous in U); each channel's 36 rows are together,
/// so the stores stay within a few pages (the GEMMs read `U_xi` with row stride 36 K).
fn filter_transform<V: Variant>(cfg: &GemmConfig, g: &Conv2dGeom, w: &[f32], u: &mut [f32])
where
    for<'a> FilterTransform<'a, V>: Kernel<Output = ()>,
{
    let (c_n, k_n) = (g.in_channels, g.out_channels);
    let u_ptr = CPtr(u.as_mut_ptr());
    let ranges = AlignedSplit::new(c_n, cfg.threads(), 1);
    for_each_task(cfg.threads(), ranges.len(), |i| {
        cfg.run(FilterTransform::<V> { c_n, k_n, w, u: u_ptr, channels: ranges.get(i), variant: PhantomData });
    });
}

struct FilterTransform<'a, V> {
    c_n: usize,
    k_n: usize,
    w: &'a [f32],
    u: CPtr,
    channels: (usize, usize),
    variant: PhantomData<V>,
}

instances! {
    /// The filter transform `G g G^T` of F(4x4, 3x3).
    fn(FilterTransform<'_, F4x3>) => f32_wino_filter_4x3_portable, f32_wino_filter_4x3_avx2, f32_wino_filter_4x3_avx512;
    /// The filter transform `G g G^T` of F(2x2, 5x5).
    fn(FilterTransform<'_, F2x5>) => f32_wino_filter_2x5_portable, f32_wino_filter_2x5_avx2, f32_wino_filter_2x5_avx512;
    /// Channels into the lanes of the blocked, padded input.
    fn(BlockInput<'_>) => f32_wino_block_input_portable, f32_wino_block_input_avx2, f32_wino_block_input_avx512;
    /// The input transform `B^T d B` of 6x6 tiles (both variants).
    fn(InputTransform<'_>) => f32_wino_input_6x6_portable, f32_wino_input_6x6_avx2, f32_wino_input_6x6_avx512;
    /// The output transform `A^T M A` of F(4x4, 3x3), with bias and ReLU.
    fn(OutputTransform<'_, F4x3>) => f32_wino_output_4x3_portable, f32_wino_output_4x3_avx2, f32_wino_output_4x3_avx512;
    /// The output transform `A^T M A` of F(2x2, 5x5), with bias and ReLU.
    fn(OutputTransform<'_, F2x5>) => f32_wino_output_2x5_portable, f32_wino_output_2x5_avx2, f32_wino_output_2x5_avx512;
}

impl<V: Variant> WithSimd for FilterTransform<'_, V> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let FilterTransform { c_n, k_n, w, u, channels, .. } = self;
        let (lanes, r_n) = (S::LANES, V::R);
        // The filters of a block of output channels as vectors (`g[r][t]`, lane = output
        // channel), then `G g` per column and `(G g) G^T` per row through a stage.
        let mut scratch = Scratch::take(Slot::WinogradStage, (25 + 36) * lanes);
        let (g, stage) = scratch.split_at_mut(25 * lanes);
        let (g, stage) = (g.as_mut_ptr(), stage.as_mut_ptr());
        for c in channels.0..channels.1 {
            for k0 in (0..k_n).step_by(lanes) {
                let n = lanes.min(k_n - k0);
                for l in 0..lanes {
                    // Lanes past the last output channel repeat it: computed, not stored.
                    let f = &w[((k0 + l.min(n - 1)) * c_n + c) * r_n * r_n..][..r_n * r_n];
                    for (rt, &v) in f.iter().enumerate() {
                        // SAFETY: 25 vectors of g, (r, t) < (5, 5).
                        unsafe { *g.add((rt / r_n * 5 + rt % r_n) * lanes + l) = v };
                    }
                }
                // SAFETY: g and the stage hold 25 and 36 vectors; U has 36 * c_n * k_n values,
                // row (c, xi) holds k_n from its start, columns k0..k0 + n are inside, and
                // this task alone writes input channel c.
                unsafe {
                    let at =
                        |p: *mut f32, i: usize, j: usize, ld: usize| Vector(s, s.load(p.add((i * ld + j) * lanes)));
                    for t in 0..r_n {
                        let col =
                            V::g_col([at(g, 0, t, 5), at(g, 1, t, 5), at(g, 2, t, 5), at(g, 3, t, 5), at(g, 4, t, 5)]);
                        for i in 0..6 {
                            s.store(stage.add((i * 6 + t) * lanes), col[i].1);
                        }
                    }
                    for i in 0..6 {
                        let zero = Vector(s, s.zero());
                        let mut row = [zero; 5];
                        for t in 0..r_n {
                            row[t] = at(stage, i, t, 6);
                        }
                        let out = V::g_col(row);
                        for j in 0..6 {
                            s.store_upto(u.get().add((c * 36 + i * 6 + j) * k_n + k0), n, out[j].1);
                        }
                    }
                }
            }
        }
    }
}

/// `V[xi][t][c] = (B^T d B)[xi]` for the tiles `tiles` of the band (V rows `t`, `tc` rows
/// per `xi`, `c_pad` columns).
struct InputTransform<'a> {
    plan: Plan,
    xb: &'a [f32],
    v: CPtr,
    band: Band,
    tiles: (usize, usize),
}

impl WithSimd for InputTransform<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let InputTransform { plan, xb, v, band, tiles } = self;
        let Plan { cb, step, c_pad, hp, wp, .. } = plan;
        let tc = band.tc;
        debug_assert_eq!(cb, S::LANES);
        // `B^T d` per column, staged, then `(B^T d) B` per row: 36 vectors do not fit in
        // the registers at once, a column or a row does.
        let mut stage = Scratch::take(Slot::WinogradStage, 36 * cb);
        let stage = stage.as_mut_ptr();
        for t in tiles.0..tiles.1 {
            let (img, ty, tx) = band.locate(&plan, t);
            for blk in 0..c_pad / cb {
                // SAFETY: rows ty*step..+6 and columns tx*step..+6 lie inside the hp x wp
                // blocked plane of every channel block of image img (< the band's images); the
                // stage holds 36 vectors; V has 36 * tc rows of c_pad values and this task
                // alone writes rows t.
                unsafe {
                    let base = xb.as_ptr().add((((img * (c_pad / cb) + blk) * hp + ty * step) * wp + tx * step) * cb);
                    let d = |i: usize, j: usize| Vector(s, s.load(base.add((i * wp + j) * cb)));
                    for j in 0..6 {
                        let col = bt([d(0, j), d(1, j), d(2, j), d(3, j), d(4, j), d(5, j)]);
                        for i in 0..6 {
                            s.store(stage.add((i * 6 + j) * cb), col[i].1);
                        }
                    }
                    let st = |i: usize, j: usize| Vector(s, s.load(stage.add((i * 6 + j) * cb)));
                    for i in 0..6 {
                        let row = bt([st(i, 0), st(i, 1), st(i, 2), st(i, 3), st(i, 4), st(i, 5)]);
                        for j in 0..6 {
                            s.store(v.0.add(((i * 6 + j) * tc + t) * c_pad + blk * cb), row[j].1);
                        }
                    }
                }
            }
        }
    }
}

/// `y = relu?(A^T M A + bias)` for the output-channel blocks `blocks` and every tile of the
/// band (`y` at the band's first image), clipped to the output.
struct OutputTransform<'a, V> {
    g: &'a Conv2dGeom,
    plan: Plan,
    m: &'a [f32],
    bias: &'a [f32],
    relu: bool,
    y: CPtr,
    band: Band,
    blocks: (usize, usize),
    variant: PhantomData<V>,
}

impl<V: Variant> WithSimd for OutputTransform<'_, V> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let OutputTransform { g, plan, m, bias, relu, y, band, blocks, .. } = self;
        let Plan { cb, k_n, k_pad, .. } = plan;
        let tc = band.tc;
        let (oh_n, ow_n, step) = (g.out_h(), g.out_w(), V::M);
        // `A^T m` per column, staged, then `(A^T m) A` per row into `out` (a vector per
        // output pixel, lane = channel), which is scattered into the channel planes.
        let mut scratch = Scratch::take(Slot::WinogradStage, (24 + 16) * cb);
        let (stage, out) = scratch.split_at_mut(24 * cb);
        let (stage, out) = (stage.as_mut_ptr(), out.as_mut_ptr());
        for t in 0..tc {
            let (img, ty, tx) = band.locate(&plan, t);
            let (oy, ox) = (ty * step, tx * step);
            let (rows, cols) = (step.min(oh_n - oy), step.min(ow_n - ox));
            for blk in blocks.0..blocks.1 {
                let k0 = blk * cb;
                // SAFETY: M has 36 * tc rows of k_pad values (columns past k_n hold stale but
                // initialised values, never stored); bias holds k_pad values; the stage and
                // out hold 24 and 16 vectors.
                unsafe {
                    let mv =
                        |i: usize, j: usize| Vector(s, s.load(m.as_ptr().add(((i * 6 + j) * tc + t) * k_pad + k0)));
                    for j in 0..6 {
                        let col = V::a_col([mv(0, j), mv(1, j), mv(2, j), mv(3, j), mv(4, j), mv(5, j)]);
                        for i in 0..step {
                            s.store(stage.add((i * 6 + j) * cb), col[i].1);
                        }
                    }
                    let b = s.load(bias.as_ptr().add(k0));
                    let st = |i: usize, j: usize| Vector(s, s.load(stage.add((i * 6 + j) * cb)));
                    for i in 0..step {
                        let row = V::a_col([st(i, 0), st(i, 1), st(i, 2), st(i, 3), st(i, 4), st(i, 5)]);
                        for j in 0..step {
                            let mut val = s.add(row[j].1, b);
                            if relu {
                                val = s.max(val, s.zero());
                            }
                            s.store(out.add((i * 4 + j) * cb), val);
                        }
                    }
                }
                for lane in 0..cb.min(k_n - k0) {
                    // SAFETY: plane k0 + lane of image img of the band's output; rows and
                    // columns are clipped to it, and this task alone writes its channel blocks.
                    let plane = unsafe {
                        std::slice::from_raw_parts_mut(y.0.add((img * k_n + k0 + lane) * oh_n * ow_n), oh_n * ow_n)
                    };
                    for i in 0..rows {
                        for j in 0..cols {
                            // SAFETY: out holds 16 vectors of cb values.
                            plane[(oy + i) * ow_n + ox + j] = unsafe { *out.add((i * 4 + j) * cb + lane) };
                        }
                    }
                }
            }
        }
    }
}
