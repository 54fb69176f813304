//! How a batch is cut into image parts that do not depend on the thread count.

use super::Conv2dGeom;
use crate::gemm::GemmConfig;
use crate::threading::try_for_each_chunk_mut;
use crate::KernelError;

/// How the images of a call are cut into parts, each computed as a call of its own: a
/// function of the layer and batch alone, never of the thread count. Every kernel inside a
/// part gives the same bits on any number of threads (GEMMs split the output, never a
/// sum), so with the parts fixed a whole pass does too, and training on one thread and on
/// sixteen ends with the same weights.
#[derive(Clone, Copy, Debug)]
pub(super) struct ImageParts {
    /// Images per part (every part has as many: the count divides the batch).
    pub size: usize,
    pub count: usize,
}

/// Most values the partial weight gradients of one call may take (4 MiB): a layer whose
/// gradient is larger is summed in fewer parts (one, over its GEMMs' threads).
const REDUCE_BUDGET: usize = 1 << 20;

/// At most this many parts: enough to share out evenly over 1, 2, 3, 4, 6 or 12 threads.
const MAX_PARTS: usize = 12;

/// Output pixels a part has at least, so its GEMMs stay wide enough to pay for their
/// packing. ResNet-18, batch 8, two threads (ms, best of 3 settings): 128 -> 150, 256 ->
/// 140, 512 -> 122, against 133 before the parts were fixed; 1024 left 14x14 layers in
/// two unequal parts.
const MIN_PART_PIXELS: usize = 512;

impl ImageParts {
    /// Parts for a pass over `g` whose per-part results cost `per_part` values of memory
    /// each (the weight gradient's partial sums; 0 when parts write disjoint outputs).
    pub fn of(g: &Conv2dGeom, per_part: usize) -> ImageParts {
        let pixels = (g.out_h() * g.out_w()).max(1);
        let by_memory = REDUCE_BUDGET.checked_div(per_part).map_or(MAX_PARTS, |n| n.max(1));
        let by_work = (g.batch * pixels / MIN_PART_PIXELS).max(1);
        let most = g.batch.min(MAX_PARTS).min(by_memory).min(by_work).max(1);
        // Equal parts: the largest divisor of the batch within bounds, so that the parts
        // share out evenly over any thread count dividing their number.
        let count = (1..=most).rev().find(|d| g.batch.is_multiple_of(*d)).unwrap_or(1);
        ImageParts { size: g.batch.div_ceil(count).max(1), count }
    }

    /// Part `i`'s images.
    pub fn images(&self, g: &Conv2dGeom, i: usize) -> Conv2dGeom {
        Conv2dGeom { batch: self.size.min(g.batch - i * self.size), ..*g }
    }

    /// Whether the parts run side by side, each thread taking a run of whole parts (else
    /// one after another, each on every thread): when they share out evenly enough.
    pub fn side_by_side(&self, threads: usize) -> bool {
        threads > 1 && (self.count.is_multiple_of(threads) || self.count >= 2 * threads)
    }
}

/// Runs `f(cfg, part_images, part_index, chunk)` for every part of `parts`, with `chunk`
/// part `i`'s `chunk_len`-long piece of `buf` (the last may be shorter): side by side on
/// one thread each, or one after another on all of them.
pub(super) fn for_parts(
    cfg: &GemmConfig,
    g: &Conv2dGeom,
    parts: ImageParts,
    buf: &mut [f32],
    chunk_len: usize,
    f: impl Fn(&GemmConfig, &Conv2dGeom, usize, &mut [f32]) -> Result<(), KernelError> + Sync + Send,
) -> Result<(), KernelError> {
    let threads = cfg.threads();
    if parts.side_by_side(threads) {
        // Each thread takes a run of whole parts (the team runs one task per thread).
        let (one, per_thread) = (cfg.with_threads(1)?, parts.count.div_ceil(threads));
        return try_for_each_chunk_mut(threads, buf, per_thread * chunk_len, |t, run| {
            for (j, chunk) in run.chunks_mut(chunk_len).enumerate() {
                let i = t * per_thread + j;
                f(&one, &parts.images(g, i), i, chunk)?;
            }
            Ok(())
        });
    }
    for (i, chunk) in buf.chunks_mut(chunk_len).enumerate() {
        f(cfg, &parts.images(g, i), i, chunk)?;
    }
    Ok(())
}

/// Runs `f(cfg, images, first_image, out_part)` over the batch in [`ImageParts`]; `out`
/// holds `out_image` elements per image.
pub(super) fn per_image_batches(
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
