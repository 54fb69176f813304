//! Winograd convolution F(4x4, 3x3) for 3x3 stride-1 kernels (Lavin & Gray, 2016).
//!
//! Each 4x4 block of outputs ("tile") is computed from a 6x6 block of input with 36
//! multiplications per channel pair instead of 144. The filter transform `U = G g G^T` is
//! done once per call; the input transform `V = B^T d B` and the output transform
//! `Y = A^T M A` are vectorised across `LANES` tiles at once; the 36 element-wise products
//! summed over channels are 36 GEMMs `M_xi = U_xi V_xi` (`[K x C] * [C x tiles]`) on the
//! blocked SGEMM. Tiles are processed in chunks, so the transformed input and products
//! stay a few MiB whatever the batch.
//!
//! fp32 error: the transforms scale values by up to 8^2 and 5^2, so results carry a few
//! more ulps than direct convolution; `tests/conv.rs` bounds it against an f64 reference.

#![allow(clippy::needless_range_loop)] // index loops keep the vector code closure-free

mod matrices;

use super::Conv2dGeom;
use crate::gemm::{sgemm, CPtr, Epilogue, GemmConfig, MatMut, MatRef};
use crate::isa::{Simd, WithSimd};
use crate::scratch::{Scratch, Slot};
use crate::threading::{for_each_chunk_mut, for_each_task};
use crate::KernelError;
use matrices::{filter_tile, input_tile, output_tile, Vector};

/// Whether F(4x4, 3x3) computes this convolution.
pub(crate) fn applies(g: &Conv2dGeom) -> bool {
    (g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.groups) == (3, 3, 1, 1, 1, 1, 1)
}

/// Positions of a tile: image, and the input row and column its 6x6 block starts at.
#[derive(Clone, Copy)]
struct TileGrid {
    tiles_h: usize,
    tiles_w: usize,
}

impl TileGrid {
    fn locate(&self, g: &Conv2dGeom, t: usize) -> (usize, isize, isize) {
        let per_image = self.tiles_h * self.tiles_w;
        let (b, r) = (t / per_image, t % per_image);
        let (ty, tx) = (r / self.tiles_w, r % self.tiles_w);
        (b, (ty * 4) as isize - g.pad_h as isize, (tx * 4) as isize - g.pad_w as isize)
    }
}

/// Largest transformed-input plus product buffer per chunk of tiles, in f32.
const CHUNK_FLOATS: usize = 1 << 21;

#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let (c_n, k_n) = (g.in_channels, g.out_channels);
    let grid = TileGrid { tiles_h: g.out_h().div_ceil(4), tiles_w: g.out_w().div_ceil(4) };
    let total = g.batch * grid.tiles_h * grid.tiles_w;
    let lanes = cfg.blocking().nr.clamp(8, 16); // a multiple of every path's lane count
    let chunk = (CHUNK_FLOATS / (36 * (c_n + k_n))).max(lanes).min(total.div_ceil(lanes) * lanes) / lanes * lanes;
    let mut buf = Scratch::take(Slot::Winograd, 36 * (k_n * c_n + (c_n + k_n) * chunk));
    let (u, rest) = buf.split_at_mut(36 * k_n * c_n);
    let (v, m) = rest.split_at_mut(36 * c_n * chunk);
    let threads = cfg.threads();
    // U[k][xi][c] = (G w[k][c] G^T)[xi], output channels split across threads; the GEMMs
    // read U_xi with row stride 36 * C.
    let per_task = k_n.div_ceil(threads);
    for_each_chunk_mut(threads, u, per_task * 36 * c_n, |i, part| {
        for (kk, uk) in part.chunks_exact_mut(36 * c_n).enumerate() {
            let k = i * per_task + kk;
            for c in 0..c_n {
                let f = &w[(k * c_n + c) * 9..][..9];
                let t = filter_tile([[f[0], f[1], f[2]], [f[3], f[4], f[5]], [f[6], f[7], f[8]]]);
                for (xi, val) in t.iter().flatten().enumerate() {
                    uk[xi * c_n + c] = *val;
                }
            }
        }
    });
    let y_ptr = CPtr(y.as_mut_ptr());
    for t0 in (0..total).step_by(chunk) {
        let tc = chunk.min((total - t0).div_ceil(lanes) * lanes);
        // Tile origins, and whether the whole 6x6 block lies inside the input.
        let origins: Vec<(usize, isize, isize, bool)> = (t0..t0 + tc)
            .map(|t| {
                let (b, y0, x0) = grid.locate(g, t.min(total - 1));
                let inside = y0 >= 0 && x0 >= 0 && y0 + 6 <= g.in_h as isize && x0 + 6 <= g.in_w as isize;
                (b, y0, x0, inside)
            })
            .collect();
        // V is laid out [c][xi][tile], so each thread transforms whole channels into a
        // slice of its own; the GEMMs read it with row stride 36 * tc.
        let v = &mut v[..36 * c_n * tc];
        let per_task = c_n.div_ceil(threads);
        for_each_chunk_mut(threads, v, per_task * 36 * tc, |i, vp| {
            let channels = (i * per_task, ((i + 1) * per_task).min(c_n));
            cfg.dispatch(InputTransform { g, x, v: vp, origins: &origins, channels, t0, tc, total });
        });
        for xi in 0..36 {
            let a = MatRef::new(&u[xi * c_n..], k_n, c_n, 36 * c_n)?;
            let b = MatRef::new(&v[xi * tc..], c_n, tc, 36 * tc)?;
            let out = MatMut::new(&mut m[xi * k_n * tc..][..k_n * tc], k_n, tc, tc)?;
            sgemm(cfg, 1.0, a, b, 0.0, out, Epilogue::NONE)?;
        }
        let m = &m[..36 * k_n * tc];
        let per_task = k_n.div_ceil(threads);
        for_each_task(threads, k_n.div_ceil(per_task), |p| {
            let outs = (p * per_task, ((p + 1) * per_task).min(k_n));
            cfg.dispatch(OutputTransform { g, grid, m, bias, relu, y: y_ptr, outs, t0, tc, total });
        });
    }
    Ok(())
}

/// `V[c][xi][t - t0] = (B^T d B)[xi]` for the channels `channels` (V's part for them
/// starts at `v`) and the tiles `t0..t0 + tc` (zero past `total`).
struct InputTransform<'a> {
    g: &'a Conv2dGeom,
    x: &'a [f32],
    v: &'a mut [f32],
    origins: &'a [(usize, isize, isize, bool)],
    channels: (usize, usize),
    t0: usize,
    tc: usize,
    total: usize,
}

impl WithSimd for InputTransform<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let InputTransform { g, x, v, origins, channels, t0, tc, total } = self;
        let (lanes, c_n, plane) = (S::LANES, g.in_channels, g.in_h * g.in_w);
        let mut d = [[[0.0f32; 16]; 6]; 6];
        for c in channels.0..channels.1 {
            for t in (t0..t0 + tc).step_by(lanes) {
                for l in 0..lanes {
                    let tile = t + l;
                    if tile >= total {
                        for row in d.iter_mut() {
                            for e in row.iter_mut() {
                                e[l] = 0.0;
                            }
                        }
                        continue;
                    }
                    let (b, y0, x0, inside) = origins[tile - t0];
                    let xp = &x[(b * c_n + c) * plane..][..plane];
                    if inside {
                        let base = y0 as usize * g.in_w + x0 as usize;
                        for (i, row) in d.iter_mut().enumerate() {
                            let src = &xp[base + i * g.in_w..][..6];
                            for (e, &v) in row.iter_mut().zip(src) {
                                e[l] = v;
                            }
                        }
                        continue;
                    }
                    for (i, row) in d.iter_mut().enumerate() {
                        let ih = y0 + i as isize;
                        let inside = ih >= 0 && (ih as usize) < g.in_h;
                        for (j, e) in row.iter_mut().enumerate() {
                            let iw = x0 + j as isize;
                            e[l] = if inside && iw >= 0 && (iw as usize) < g.in_w {
                                xp[ih as usize * g.in_w + iw as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
                // SAFETY: each d entry holds 16 >= LANES values; this part of V holds
                // 36 * tc values per channel, and t - t0 + lanes <= tc.
                unsafe {
                    let mut dv = [[Vector(s, s.zero()); 6]; 6];
                    for i in 0..6 {
                        for j in 0..6 {
                            dv[i][j] = Vector(s, s.load(d[i][j].as_ptr()));
                        }
                    }
                    let tile = input_tile(dv);
                    for i in 0..6 {
                        for j in 0..6 {
                            let at = ((c - channels.0) * 36 + i * 6 + j) * tc + (t - t0);
                            s.store(v.as_mut_ptr().add(at), tile[i][j].1);
                        }
                    }
                }
            }
        }
    }
}

/// `y = relu?(A^T M A + bias)` for the output channels `outs` and the tiles
/// `t0..t0 + tc`, clipped to the output.
struct OutputTransform<'a> {
    g: &'a Conv2dGeom,
    grid: TileGrid,
    m: &'a [f32],
    bias: Option<&'a [f32]>,
    relu: bool,
    y: CPtr,
    outs: (usize, usize),
    t0: usize,
    tc: usize,
    total: usize,
}

impl WithSimd for OutputTransform<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let OutputTransform { g, grid, m, bias, relu, y, outs, t0, tc, total } = self;
        let (lanes, k_n) = (S::LANES, g.out_channels);
        let (oh_n, ow_n) = (g.out_h(), g.out_w());
        let mut out = [[[0.0f32; 16]; 4]; 4];
        for k in outs.0..outs.1 {
            let b_k = s.splat(bias.map_or(0.0, |b| b[k]));
            for t in (t0..t0 + tc).step_by(lanes) {
                // SAFETY: M rows hold tc values from t - t0, and t - t0 + lanes <= tc; each
                // out entry holds 16 >= LANES values.
                unsafe {
                    let mut mv = [[Vector(s, s.zero()); 6]; 6];
                    for i in 0..6 {
                        for j in 0..6 {
                            mv[i][j] = Vector(s, s.load(m.as_ptr().add(((i * 6 + j) * k_n + k) * tc + (t - t0))));
                        }
                    }
                    let tile = output_tile(mv);
                    for i in 0..4 {
                        for j in 0..4 {
                            let mut v = s.add(tile[i][j].1, b_k);
                            if relu {
                                v = s.max(v, s.zero());
                            }
                            s.store(out[i][j].as_mut_ptr(), v);
                        }
                    }
                }
                // Lanes past the last tile (the chunk is padded to whole vectors) are dropped.
                for l in 0..lanes.min(total.saturating_sub(t)) {
                    let (b, y0, x0) = grid.locate(g, t + l);
                    let (oy, ox) = ((y0 + g.pad_h as isize) as usize, (x0 + g.pad_w as isize) as usize);
                    // SAFETY: plane (b, k) of y, validated to hold batch * K planes of
                    // oh_n * ow_n; this task alone writes channel k, and the tile's rows and
                    // columns are clipped to the plane.
                    let yp =
                        unsafe { std::slice::from_raw_parts_mut(y.0.add((b * k_n + k) * oh_n * ow_n), oh_n * ow_n) };
                    for (i, row) in out.iter().enumerate().take(oh_n.saturating_sub(oy)) {
                        for (j, e) in row.iter().enumerate().take(ow_n.saturating_sub(ox)) {
                            yp[(oy + i) * ow_n + ox + j] = e[l];
                        }
                    }
                }
            }
        }
    }
}
