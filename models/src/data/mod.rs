//! Image datasets for the model examples and tests.
//!
//! Two sources share one in-memory form, [`ImageSet`]:
//!
//! * [`load_idx_dir`] (with [`read_idx_images`] / [`read_idx_labels`]) reads the IDX files of MNIST and
//!   Fashion-MNIST, plain or gzipped;
//! * [`synthetic_digits`] draws handwritten-looking digits from code, so that tests and demos can run
//!   without any download.
//!
//! [`read_picture`] and [`picture_tensor`] prepare one PNG or JPEG for a model.

mod batch;
mod digits;
mod idx;
mod picture;

use std::path::PathBuf;

pub use batch::{epoch_order, LabelledImages, Preprocess};
pub use digits::synthetic_digits;
pub use idx::{load_idx_dir, parse_idx_images, parse_idx_labels, read_idx_images, read_idx_labels};
pub use picture::{picture_tensor, read_picture, PictureError, IMAGENET_MEAN, IMAGENET_STD};

/// A labelled set of greyscale images, u8 pixels row-major, image after image.
///
/// `images.len() == labels.len() * rows * cols`, and every label is below `classes`.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// Pixels of all images, `rows * cols` bytes per image, 0 = background, 255 = full ink.
    pub images: Vec<u8>,
    /// One class label per image.
    pub labels: Vec<u8>,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// Number of classes; labels lie in `0..classes`.
    pub classes: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (`rows * cols`).
    pub fn pixels_per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `i`, row-major.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.pixels_per_image();
        &self.images[i * n..(i + 1) * n]
    }

    /// The images of `classes` only, relabelled `0..classes.len()` in the order given (a
    /// two-class task from a ten-class set, say).
    pub fn keep_classes(&self, classes: &[u8]) -> Result<ImageSet, DataError> {
        let wanted = |c: u8| classes.iter().position(|&k| k == c);
        if let Some(&bad) = classes.iter().find(|&&c| usize::from(c) >= self.classes) {
            return Err(DataError::BadClasses {
                classes: classes.to_vec(),
                reason: format!("the set has no class {bad}"),
            });
        }
        if (1..classes.len()).any(|i| classes[..i].contains(&classes[i])) || classes.len() < 2 {
            return Err(DataError::BadClasses {
                classes: classes.to_vec(),
                reason: "give two or more distinct classes".into(),
            });
        }
        let n = self.pixels_per_image();
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for (i, &label) in self.labels.iter().enumerate() {
            if let Some(new) = wanted(label) {
                images.extend_from_slice(&self.images[i * n..(i + 1) * n]);
                labels.push(new as u8);
            }
        }
        Ok(ImageSet { images, labels, rows: self.rows, cols: self.cols, classes: classes.len() })
    }

    /// How many images each class holds (`classes` entries; labels out of range are not counted).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &label in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(label)) {
                *c += 1;
            }
        }
        counts
    }
}

/// Errors of the data readers, worded for the user.
///
/// `what` fields name the file (or, for the in-memory parsers, whatever the caller passed).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{what}: corrupt gzip stream: {source}")]
    Gzip {
        /// The file that failed.
        what: String,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// A class selection that the set cannot satisfy.
    #[error("classes {classes:?}: {reason}")]
    BadClasses {
        /// The classes asked for.
        classes: Vec<u8>,
        /// What is wrong.
        reason: String,
    },
    /// The first four bytes are not the expected IDX magic number.
    #[error("{what}: {}", magic_problem(*.expected, *.found))]
    BadMagic {
        /// The file that failed.
        what: String,
        /// The magic this reader accepts (2051 for images, 2049 for labels).
        expected: u32,
        /// The magic found.
        found: u32,
    },
    /// Fewer bytes than the header promises.
    #[error("{what}: file is truncated: {part} ends at byte {needed} but the file has only {available} bytes")]
    Truncated {
        /// The file that failed.
        what: String,
        /// Which part was cut short ("the header", "the pixel data", ...).
        part: &'static str,
        /// File length that part needs (everything before it included).
        needed: usize,
        /// Bytes actually there.
        available: usize,
    },
    /// More bytes than the header describes.
    #[error("{what}: {extra} unexpected bytes after the {expected} bytes the header describes")]
    TrailingBytes {
        /// The file that failed.
        what: String,
        /// Bytes the header accounts for (header included).
        expected: usize,
        /// Bytes beyond that.
        extra: usize,
    },
    /// The header's dimensions multiply to more than this machine can address.
    #[error("{what}: header dimensions {dims:?} are too large (their product overflows)")]
    Overflow {
        /// The file that failed.
        what: String,
        /// The dimensions read from the header.
        dims: Vec<u32>,
    },
    /// Images with zero rows or zero columns.
    #[error("{what}: images of {rows}x{cols} pixels are not allowed (zero rows or columns)")]
    ZeroSize {
        /// The file that failed.
        what: String,
        /// Rows read from the header.
        rows: usize,
        /// Columns read from the header.
        cols: usize,
    },
    /// An image file and its label file disagree on the number of items.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: String,
        /// Images it holds.
        n_images: usize,
        /// The label file.
        labels: String,
        /// Labels it holds.
        n_labels: usize,
    },
    /// A label is not below the number of classes.
    #[error("{what}: label {label} at index {index} is out of range (expected 0..{classes})")]
    LabelOutOfRange {
        /// The label file.
        what: String,
        /// Position of the bad label.
        index: usize,
        /// The bad label.
        label: u8,
        /// Number of classes allowed.
        classes: usize,
    },
    /// A set that must hold images holds none.
    #[error("{what}: the set holds no images")]
    EmptySet {
        /// The file that failed.
        what: String,
    },
    /// Train and test images differ in size.
    #[error("{what}: images are {rows}x{cols} but {other} has {other_rows}x{other_cols}")]
    ShapeMismatch {
        /// One image file.
        what: String,
        /// Its rows.
        rows: usize,
        /// Its columns.
        cols: usize,
        /// The other image file.
        other: String,
        /// Its rows.
        other_rows: usize,
        /// Its columns.
        other_cols: usize,
    },
    /// Files of an IDX directory are missing (neither plain nor `.gz` exists).
    #[error("IDX data not found in {}: looked for {}", .dir.display(), list_paths(.looked_for))]
    NotFound {
        /// The directory searched.
        dir: PathBuf,
        /// Every path tried and not found.
        looked_for: Vec<PathBuf>,
    },
    /// A data file whose content does not fit the model (text that is not UTF-8, a series
    /// too short for its windows, an unknown character).
    #[error("{what}: {reason}")]
    Invalid {
        /// The file (or data set) that failed.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

/// Explains why a magic number was rejected, part by part.
fn magic_problem(expected: u32, found: u32) -> String {
    let [z0, z1, ty, dims] = found.to_be_bytes();
    let [_, _, want_ty, want_dims] = expected.to_be_bytes();
    let kind = if expected == idx::IMAGES_MAGIC { "image" } else { "label" };
    let reason = if z0 != 0 || z1 != 0 {
        "not an IDX file (an IDX file starts with two zero bytes)".to_string()
    } else if ty != want_ty {
        format!("element type {ty:#04x} ({}) is not supported, only unsigned bytes (0x08)", idx::type_name(ty))
    } else if dims != want_dims {
        format!("{dims} dimension(s), but an IDX {kind} file has {want_dims}")
    } else {
        "unexpected magic".to_string()
    };
    format!("bad magic {found:#010x} (expected {expected:#010x} = {expected} for an IDX {kind} file): {reason}")
}

/// Joins paths for an error message.
fn list_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::{DataError, ImageSet};

    /// Six one-pixel images of classes 0..3, twice over.
    fn set() -> ImageSet {
        let labels = vec![0, 1, 2, 0, 1, 2];
        ImageSet { images: (10..16).collect(), labels, rows: 1, cols: 1, classes: 3 }
    }

    #[test]
    fn keeping_classes_relabels_them_in_the_order_given() {
        let kept = set().keep_classes(&[2, 0]).unwrap();
        assert_eq!((kept.labels, kept.images, kept.classes), (vec![1, 0, 1, 0], vec![10, 12, 13, 15], 2));
    }

    #[test]
    fn keeping_absent_repeated_or_single_classes_is_an_error() {
        for classes in [&[0, 3][..], &[1, 1], &[1]] {
            assert!(matches!(set().keep_classes(classes), Err(DataError::BadClasses { .. })), "{classes:?}");
        }
    }
}
