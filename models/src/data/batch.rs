//! Mini-batches of an [`ImageSet`] as normalised, padded NCHW tensors with integer labels.

use super::ImageSet;
use crate::dataset::Dataset;
use simdnn_layers::init::{rng, shuffle};
use simdnn_layers::{Inputs, IntTensor, LayerError, Tensor};

/// How bytes become network inputs: `(pixel / 255 - mean) / std`, either with `pad`
/// background pixels added on every side (MNIST's 28x28 becomes LeNet-5's 32x32 with
/// `pad = 2`) or resized to `size` (bilinear, half-pixel centres, as torchvision resizes),
/// and the grey channel repeated `channels` times.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    pub mean: f32,
    pub std: f32,
    pub pad: usize,
    /// Resize to `(height, width)` instead of padding.
    pub size: Option<(usize, usize)>,
    pub channels: usize,
}

impl Preprocess {
    /// MNIST's training-set mean and standard deviation (0.1307, 0.3081), as PyTorch's
    /// examples use them; padded to 32x32, one channel.
    pub const MNIST: Preprocess = Preprocess { mean: 0.1307, std: 0.3081, pad: 2, size: None, channels: 1 };

    /// MNIST's normalisation for a model reading `channels` x `input`: padding 28x28 to
    /// 32x32, resizing otherwise.
    pub fn mnist_for(input: (usize, usize), channels: usize, set_rows: usize, set_cols: usize) -> Preprocess {
        let padded = (set_rows + 4, set_cols + 4);
        let size = if input == padded { None } else { Some(input) };
        Preprocess { pad: if size.is_none() { 2 } else { 0 }, size, channels: channels.max(1), ..Preprocess::MNIST }
    }

    /// The `[channels, height, width]` of one preprocessed image of `set`.
    pub fn image_shape(&self, set: &ImageSet) -> [usize; 3] {
        let (h, w) = self.size.unwrap_or((set.rows + 2 * self.pad, set.cols + 2 * self.pad));
        [self.channels, h, w]
    }

    /// Fills `x` (`[indices.len(), channels, H, W]`) and `labels` (`[indices.len()]`) with
    /// the images `indices` of `set`.
    pub fn fill(
        &self,
        set: &ImageSet,
        indices: &[usize],
        x: &mut Tensor,
        labels: &mut IntTensor,
    ) -> Result<(), LayerError> {
        let [c, h, w] = self.image_shape(set);
        x.resize(&[indices.len(), c, h, w]);
        let scale = 1.0 / (255.0 * self.std);
        let background = -self.mean / self.std;
        for (dst, &i) in x.data_mut().chunks_exact_mut(c * h * w).zip(indices) {
            let (first, rest) = dst.split_at_mut(h * w);
            match self.size {
                None => {
                    first.fill(background);
                    for (r, src) in set.image(i).chunks_exact(set.cols).enumerate() {
                        let row = &mut first[(r + self.pad) * w + self.pad..][..set.cols];
                        for (d, &p) in row.iter_mut().zip(src) {
                            *d = p as f32 * scale + background;
                        }
                    }
                }
                Some(_) => {
                    resize_bilinear(set.image(i), (set.rows, set.cols), first, (h, w));
                    first.iter_mut().for_each(|d| *d = *d * scale + background);
                }
            }
            for copy in rest.chunks_exact_mut(h * w) {
                copy.copy_from_slice(first);
            }
        }
        labels.assign(&[indices.len()], indices.iter().map(|&i| i64::from(set.labels[i])))
    }
}

/// Bilinear resampling of a `from` image of bytes into `to` (values still 0-255), sampling
/// at half-pixel centres (`align_corners = false`, PyTorch's and torchvision's default).
pub fn resize_bilinear(src: &[u8], from: (usize, usize), dst: &mut [f32], to: (usize, usize)) {
    let (sh, sw) = from;
    let (dh, dw) = to;
    // The source coordinate of a destination index, clamped at the edges.
    let coord = |i: usize, dst_len: usize, src_len: usize| -> (usize, usize, f32) {
        let x = ((i as f32 + 0.5) * src_len as f32 / dst_len as f32 - 0.5).max(0.0);
        let lo = (x as usize).min(src_len - 1);
        let hi = (lo + 1).min(src_len - 1);
        (lo, hi, x - lo as f32)
    };
    for r in 0..dh {
        let (r0, r1, fr) = coord(r, dh, sh);
        for c in 0..dw {
            let (c0, c1, fc) = coord(c, dw, sw);
            let at = |y: usize, x: usize| src[y * sw + x] as f32;
            let top = at(r0, c0) * (1.0 - fc) + at(r0, c1) * fc;
            let bottom = at(r1, c0) * (1.0 - fc) + at(r1, c1) * fc;
            dst[r * dw + c] = top * (1.0 - fr) + bottom * fr;
        }
    }
}

/// An [`ImageSet`] as a [`Dataset`]: images into input `image`, labels into input `label`.
pub struct LabelledImages {
    pub set: ImageSet,
    pub preprocess: Preprocess,
}

impl LabelledImages {
    pub const IMAGE: &str = "image";
    pub const LABEL: &str = "label";
}

impl Dataset for LabelledImages {
    fn len(&self) -> usize {
        self.set.len()
    }
    fn fill(&self, indices: &[usize], inputs: &mut Inputs) -> Result<(), LayerError> {
        let (images, labels) = inputs.f32_and_int_mut(Self::IMAGE, Self::LABEL);
        self.preprocess.fill(&self.set, indices, images, labels)
    }
}

/// The order images are visited in during `epoch` (0-based): a Fisher-Yates shuffle seeded
/// by the run's seed and the epoch, so a resumed run visits the same batches.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    shuffle(&mut rng(seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)), &mut order);
    order
}
