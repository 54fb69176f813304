//! Photographs and drawings from PNG or JPEG files, prepared the way the models were
//! trained: colour models the torchvision way (the shorter side resized to 256/224 of the
//! input, the centre cropped, ImageNet's mean and deviation per channel), one-channel
//! models like the digit sets (the whole image resized to the input, grey, MNIST's
//! normalisation, light ink on a dark ground).

use super::batch::Preprocess;
use image::imageops::FilterType;
use image::DynamicImage;
use simdnn_layers::Tensor;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PictureError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot decode the image: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("a model reading {channels} channels cannot take photographs (1 or 3)")]
    Channels { channels: usize },
}

/// ImageNet's per-channel mean and standard deviation of RGB values in [0, 1], as
/// torchvision's pretrained models expect them.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Decodes the PNG or JPEG at `path` (the format from its content, not its name).
pub fn read_picture(path: &Path) -> Result<DynamicImage, PictureError> {
    let bytes = std::fs::read(path).map_err(|source| PictureError::Io { path: path.into(), source })?;
    image::load_from_memory(&bytes).map_err(|e| PictureError::Decode { path: path.into(), reason: e.to_string() })
}

/// `picture` as a `[1, channels, h, w]` model input.
pub fn picture_tensor(picture: &DynamicImage, channels: usize, (h, w): (usize, usize)) -> Result<Tensor, PictureError> {
    let mut x = Tensor::zeros(&[1, channels, h, w]);
    match channels {
        3 => {
            // torchvision: Resize(256) then CenterCrop(224), scaled to other inputs.
            let (pw, ph) = (picture.width() as f64, picture.height() as f64);
            let scale = (h.max(w) as f64 * 256.0 / 224.0) / pw.min(ph);
            let (rw, rh) = (((pw * scale).round() as u32).max(w as u32), ((ph * scale).round() as u32).max(h as u32));
            let resized = picture.resize_exact(rw, rh, FilterType::Triangle).to_rgb8();
            let (left, top) = ((rw as usize - w) / 2, (rh as usize - h) / 2);
            for (c, plane) in x.data_mut().chunks_exact_mut(h * w).enumerate() {
                for (i, v) in plane.iter_mut().enumerate() {
                    let p = resized.get_pixel((left + i % w) as u32, (top + i / w) as u32);
                    *v = (p[c] as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
                }
            }
        }
        1 => {
            let grey = picture.resize_exact(w as u32, h as u32, FilterType::Triangle).to_luma8();
            let p = Preprocess::MNIST;
            for (v, g) in x.data_mut().iter_mut().zip(grey.as_raw()) {
                *v = (*g as f32 / 255.0 - p.mean) / p.std;
            }
        }
        channels => return Err(PictureError::Channels { channels }),
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// 400x200, red on the left half, blue on the right.
    fn halves() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(
            400,
            200,
            |x, _| if x < 200 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) },
        ))
    }

    #[test]
    fn colour_pictures_are_resized_cropped_and_normalised_the_torchvision_way() {
        let x = picture_tensor(&halves(), 3, (224, 224)).unwrap();
        assert_eq!(x.shape(), [1, 3, 224, 224]);
        // The shorter side to 256: 512x256, the centre 224x224 from column 144, where the
        // halves meet at column 256 - 144 = 112.
        let at = |c: usize, y: usize, x_: usize| x.data()[(c * 224 + y) * 224 + x_];
        let level = |c: usize, v: f32| (v - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        for (col, rgb) in [(100, [1.0, 0.0, 0.0]), (124, [0.0, 0.0, 1.0])] {
            for (c, v) in rgb.into_iter().enumerate() {
                assert!((at(c, 112, col) - level(c, v)).abs() < 1e-5, "channel {c} column {col}");
            }
        }
    }

    #[test]
    fn grey_models_see_the_whole_picture_normalised_as_mnist() {
        let x = picture_tensor(&halves(), 1, (28, 28)).unwrap();
        assert_eq!(x.shape(), [1, 1, 28, 28]);
        let p = Preprocess::MNIST;
        // Luma of pure red and pure blue (ITU-R BT.601 weights, as the image crate uses).
        let (red, blue) = (x.data()[14 * 28 + 2], x.data()[14 * 28 + 25]);
        assert!(red > blue, "{red} {blue}");
        assert!(red < (1.0 - p.mean) / p.std && blue > -p.mean / p.std);
    }

    #[test]
    fn other_channel_counts_and_undecodable_files_are_errors() {
        assert!(matches!(picture_tensor(&halves(), 2, (8, 8)), Err(PictureError::Channels { channels: 2 })));
        let path = std::env::temp_dir().join(format!("simdnn-not-an-image-{}.png", std::process::id()));
        std::fs::write(&path, b"not an image").unwrap();
        assert!(matches!(read_picture(&path), Err(PictureError::Decode { .. })));
        std::fs::remove_file(&path).unwrap();
    }
}
