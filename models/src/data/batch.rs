//! Mini-batches of an [`ImageSet`] as normalised, padded NCHW tensors with integer labels.

use super::ImageSet;
use crate::dataset::Dataset;
use simdnn_layers::init::{rng, shuffle};
use simdnn_layers::{Inputs, IntTensor, LayerError, Tensor};

/// How bytes become network inputs: `(pixel / 255 - mean) / std`, with `pad` background
/// pixels added on every side (MNIST's 28x28 becomes LeNet-5's 32x32 with `pad = 2`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    pub mean: f32,
    pub std: f32,
    pub pad: usize,
}

impl Preprocess {
    /// MNIST's training-set mean and standard deviation (0.1307, 0.3081), as PyTorch's
    /// examples use them.
    pub const MNIST: Preprocess = Preprocess { mean: 0.1307, std: 0.3081, pad: 2 };

    /// The `[channels, height, width]` of one preprocessed image of `set`.
    pub fn image_shape(&self, set: &ImageSet) -> [usize; 3] {
        [1, set.rows + 2 * self.pad, set.cols + 2 * self.pad]
    }

    /// Fills `x` (`[indices.len(), 1, H, W]`) and `labels` (`[indices.len()]`) with the
    /// images `indices` of `set`.
    pub fn fill(
        &self,
        set: &ImageSet,
        indices: &[usize],
        x: &mut Tensor,
        labels: &mut IntTensor,
    ) -> Result<(), LayerError> {
        let [_, h, w] = self.image_shape(set);
        x.resize(&[indices.len(), 1, h, w]);
        let scale = 1.0 / (255.0 * self.std);
        let background = -self.mean / self.std;
        for (dst, &i) in x.data_mut().chunks_exact_mut(h * w).zip(indices) {
            dst.fill(background);
            for (r, src) in set.image(i).chunks_exact(set.cols).enumerate() {
                let row = &mut dst[(r + self.pad) * w + self.pad..][..set.cols];
                for (d, &p) in row.iter_mut().zip(src) {
                    *d = p as f32 * scale + background;
                }
            }
        }
        labels.assign(&[indices.len()], indices.iter().map(|&i| i64::from(set.labels[i])))
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
