//! Reader for the IDX format of MNIST and Fashion-MNIST, plain or gzipped.
//!
//! An IDX file is a 4-byte magic (two zero bytes, an element-type code, the number of dimensions), one
//! big-endian u32 per dimension, then the elements row-major. Only unsigned-byte files are read here:
//! images (3 dimensions, magic 2051) and labels (1 dimension, magic 2049).

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{DataError, ImageSet};

/// Magic of an unsigned-byte file with 3 dimensions (count, rows, cols).
pub(super) const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an unsigned-byte file with 1 dimension (count).
pub(super) const LABELS_MAGIC: u32 = 0x0000_0801;
/// Number of classes of MNIST and Fashion-MNIST.
const IDX_CLASSES: usize = 10;

/// Name of an IDX element-type code, for error messages.
pub(super) fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "u8",
        0x09 => "i8",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "unknown type",
    }
}

/// Reads an IDX image file (magic 2051, u8, 3 dims): returns (pixels, count, rows, cols).
///
/// The file may be gzipped; that is detected from its first bytes, not from its name.
///
/// # Errors
/// [`DataError::Io`] or [`DataError::Gzip`] when the file cannot be read or gunzipped, else as
/// [`parse_idx_images`].
pub fn read_idx_images(path: &Path) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    let bytes = read_maybe_gz(path)?;
    parse_idx_images(&bytes, &path.display().to_string())
}

/// Reads an IDX label file (magic 2049, u8, 1 dim).
///
/// The file may be gzipped; that is detected from its first bytes, not from its name.
///
/// # Errors
/// [`DataError::Io`] or [`DataError::Gzip`] when the file cannot be read or gunzipped, else as
/// [`parse_idx_labels`].
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = read_maybe_gz(path)?;
    parse_idx_labels(&bytes, &path.display().to_string())
}

/// Parses an IDX image file already in memory (after gunzip): returns (pixels, count, rows, cols).
///
/// `what` names the source in error messages.
///
/// # Errors
/// [`DataError::BadMagic`] (not IDX, not u8, not 3 dimensions), [`DataError::Truncated`],
/// [`DataError::TrailingBytes`], [`DataError::Overflow`] or [`DataError::ZeroSize`].
pub fn parse_idx_images(bytes: &[u8], what: &str) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    let (dims, data) = parse_header(bytes, what, IMAGES_MAGIC)?;
    let &[count, rows, cols] = dims.as_slice() else {
        unreachable!("parse_header returns as many dimensions as the magic says")
    };
    if rows == 0 || cols == 0 {
        return Err(DataError::ZeroSize { what: what.to_string(), rows, cols });
    }
    Ok((data.to_vec(), count, rows, cols))
}

/// Parses an IDX label file already in memory (after gunzip).
///
/// `what` names the source in error messages.
///
/// # Errors
/// [`DataError::BadMagic`] (not IDX, not u8, not 1 dimension), [`DataError::Truncated`] or
/// [`DataError::TrailingBytes`].
pub fn parse_idx_labels(bytes: &[u8], what: &str) -> Result<Vec<u8>, DataError> {
    let (_, data) = parse_header(bytes, what, LABELS_MAGIC)?;
    Ok(data.to_vec())
}

/// Checks the magic and sizes of an unsigned-byte IDX file; returns its dimensions and its data,
/// which is exactly as long as the dimensions say.
///
/// Nothing is allocated from header values: lengths are checked against `bytes` first.
fn parse_header<'a>(bytes: &'a [u8], what: &str, magic: u32) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let truncated =
        |part, needed| DataError::Truncated { what: what.to_string(), part, needed, available: bytes.len() };
    let Some(head) = bytes.first_chunk::<4>() else {
        return Err(truncated("the magic number", 4));
    };
    let found = u32::from_be_bytes(*head);
    if found != magic {
        return Err(DataError::BadMagic { what: what.to_string(), expected: magic, found });
    }
    let ndims = usize::from(head[3]);
    let header_len = 4 + 4 * ndims;
    let Some(header) = bytes.get(4..header_len) else {
        return Err(truncated("the header", header_len));
    };
    let raw: Vec<u32> = header.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
    let overflow = || DataError::Overflow { what: what.to_string(), dims: raw.clone() };
    let mut dims = Vec::with_capacity(ndims);
    let mut payload: usize = 1;
    for &d in &raw {
        let d = usize::try_from(d).map_err(|_| overflow())?;
        payload = payload.checked_mul(d).ok_or_else(overflow)?;
        dims.push(d);
    }
    let total = header_len.checked_add(payload).ok_or_else(overflow)?;
    if bytes.len() < total {
        return Err(truncated(if ndims == 1 { "the label data" } else { "the pixel data" }, total));
    }
    if bytes.len() > total {
        return Err(DataError::TrailingBytes { what: what.to_string(), expected: total, extra: bytes.len() - total });
    }
    Ok((dims, &bytes[header_len..]))
}

/// Reads a whole file, gunzipping it when it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    // The decompressed size is unknown up front; read_to_end grows the buffer only as data arrives.
    let mut out = Vec::new();
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip { what: path.display().to_string(), source })?;
    Ok(out)
}

/// Finds `dir/name` or else `dir/name.gz`; on failure returns both candidates.
fn find_plain_or_gz(dir: &Path, name: &str) -> Result<PathBuf, [PathBuf; 2]> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err([plain, gz])
}

/// Reads one images + labels pair into an [`ImageSet`], checking that it is non-empty, that the counts
/// agree and that every label is below 10.
fn load_pair(images_path: &Path, labels_path: &Path) -> Result<ImageSet, DataError> {
    let (images, count, rows, cols) = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    if count == 0 {
        return Err(DataError::EmptySet { what: images_path.display().to_string() });
    }
    if count != labels.len() {
        return Err(DataError::CountMismatch {
            images: images_path.display().to_string(),
            n_images: count,
            labels: labels_path.display().to_string(),
            n_labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| usize::from(l) >= IDX_CLASSES) {
        return Err(DataError::LabelOutOfRange {
            what: labels_path.display().to_string(),
            index,
            label,
            classes: IDX_CLASSES,
        });
    }
    Ok(ImageSet { images, labels, rows, cols, classes: IDX_CLASSES })
}

/// Loads `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`,
/// `t10k-labels-idx1-ubyte[.gz]` from `dir` (whichever of plain / .gz exists; a clear error listing what
/// was looked for if neither), checks counts agree and labels < 10. Returns (train, test).
///
/// # Errors
/// [`DataError::NotFound`] listing every missing file, any error of [`read_idx_images`] /
/// [`read_idx_labels`], and [`DataError::EmptySet`], [`DataError::CountMismatch`],
/// [`DataError::LabelOutOfRange`] or [`DataError::ShapeMismatch`] for sets that do not fit together.
pub fn load_idx_dir(dir: &Path) -> Result<(ImageSet, ImageSet), DataError> {
    const NAMES: [&str; 4] =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
    // Look for all four first, so that one error lists everything that is missing.
    let mut found = Vec::with_capacity(NAMES.len());
    let mut looked_for = Vec::new();
    for name in NAMES {
        match find_plain_or_gz(dir, name) {
            Ok(path) => found.push(path),
            Err(tried) => looked_for.extend(tried),
        }
    }
    if !looked_for.is_empty() {
        return Err(DataError::NotFound { dir: dir.to_path_buf(), looked_for });
    }
    let train = load_pair(&found[0], &found[1])?;
    let test = load_pair(&found[2], &found[3])?;
    if (train.rows, train.cols) != (test.rows, test.cols) {
        return Err(DataError::ShapeMismatch {
            what: found[0].display().to_string(),
            rows: train.rows,
            cols: train.cols,
            other: found[2].display().to_string(),
            other_rows: test.rows,
            other_cols: test.cols,
        });
    }
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    /// Builds an unsigned-byte IDX file from its dimensions and data.
    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let ndims = u8::try_from(dims.len()).expect("few dims");
        let mut out = vec![0, 0, 0x08, ndims];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).expect("write to Vec");
        enc.finish().expect("finish gzip")
    }

    /// A fresh scratch directory for one test.
    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("simdnn-idx-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }

    /// Three 2x3 images with pixel value = index, and their labels.
    fn small_set() -> (Vec<u8>, Vec<u8>) {
        let pixels: Vec<u8> = (0..18).collect();
        (idx_bytes(&[3, 2, 3], &pixels), idx_bytes(&[3], &[7, 0, 9]))
    }

    #[test]
    fn parses_small_images_and_labels() {
        let (images, labels) = small_set();
        let (pixels, n, rows, cols) = parse_idx_images(&images, "img").expect("valid images");
        assert_eq!((n, rows, cols), (3, 2, 3));
        assert_eq!(pixels, (0..18).collect::<Vec<u8>>());
        assert_eq!(parse_idx_labels(&labels, "lbl").expect("valid labels"), vec![7, 0, 9]);
    }

    #[test]
    fn zero_images_is_valid_format() {
        let (pixels, n, rows, cols) = parse_idx_images(&idx_bytes(&[0, 28, 28], &[]), "img").expect("empty ok");
        assert!(pixels.is_empty());
        assert_eq!((n, rows, cols), (0, 28, 28));
    }

    #[test]
    fn round_trip_plain_and_gzipped_files() {
        let dir = scratch_dir("roundtrip");
        let (images, labels) = small_set();
        std::fs::write(dir.join("plain-images"), &images).expect("write");
        std::fs::write(dir.join("plain-labels"), &labels).expect("write");
        // No .gz extension: gzip must be detected from the content.
        std::fs::write(dir.join("zipped-images"), gzip(&images)).expect("write");
        std::fs::write(dir.join("zipped-labels.gz"), gzip(&labels)).expect("write");
        for (img, lbl) in [("plain-images", "plain-labels"), ("zipped-images", "zipped-labels.gz")] {
            let (pixels, n, rows, cols) = read_idx_images(&dir.join(img)).expect("read images");
            assert_eq!((n, rows, cols), (3, 2, 3));
            assert_eq!(pixels, (0..18).collect::<Vec<u8>>());
            assert_eq!(read_idx_labels(&dir.join(lbl)).expect("read labels"), vec![7, 0, 9]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn load_dir_mixing_plain_and_gz() {
        let dir = scratch_dir("loaddir");
        let (images, labels) = small_set();
        std::fs::write(dir.join("train-images-idx3-ubyte"), &images).expect("write");
        std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gzip(&labels)).expect("write");
        std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gzip(&images)).expect("write");
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), &labels).expect("write");
        let (train, test) = load_idx_dir(&dir).expect("load dir");
        for set in [&train, &test] {
            assert_eq!((set.len(), set.rows, set.cols, set.classes), (3, 2, 3, 10));
            assert_eq!(set.image(1), &[6, 7, 8, 9, 10, 11]);
            assert_eq!(set.class_counts(), vec![1, 0, 0, 0, 0, 0, 0, 1, 0, 1]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn load_dir_lists_missing_files() {
        let dir = scratch_dir("missing");
        let (images, _) = small_set();
        std::fs::write(dir.join("train-images-idx3-ubyte"), &images).expect("write");
        let err = load_idx_dir(&dir).expect_err("files missing");
        let DataError::NotFound { looked_for, .. } = &err else { panic!("wrong error: {err}") };
        assert_eq!(looked_for.len(), 6, "both forms of the three missing files");
        let msg = err.to_string();
        assert!(msg.contains("train-labels-idx1-ubyte.gz") && msg.contains("t10k-images-idx3-ubyte"), "{msg}");
        assert!(!msg.contains("train-images"), "present file must not be listed: {msg}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn load_dir_rejects_count_mismatch_bad_labels_and_empty_sets() {
        let dir = scratch_dir("mismatch");
        let (images, labels) = small_set();
        let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).expect("write");
        write("train-images-idx3-ubyte", &images);
        write("t10k-images-idx3-ubyte", &images);
        write("t10k-labels-idx1-ubyte", &labels);

        write("train-labels-idx1-ubyte", &idx_bytes(&[2], &[1, 2]));
        let err = load_idx_dir(&dir).expect_err("count mismatch");
        assert!(matches!(err, DataError::CountMismatch { n_images: 3, n_labels: 2, .. }), "{err}");

        write("train-labels-idx1-ubyte", &idx_bytes(&[3], &[1, 10, 2]));
        let err = load_idx_dir(&dir).expect_err("label 10");
        assert!(matches!(err, DataError::LabelOutOfRange { index: 1, label: 10, .. }), "{err}");

        write("train-images-idx3-ubyte", &idx_bytes(&[0, 2, 3], &[]));
        write("train-labels-idx1-ubyte", &idx_bytes(&[0], &[]));
        let err = load_idx_dir(&dir).expect_err("empty");
        assert!(matches!(err, DataError::EmptySet { .. }), "{err}");

        write("train-images-idx3-ubyte", &idx_bytes(&[3, 3, 2], &[0; 18]));
        write("train-labels-idx1-ubyte", &labels);
        let err = load_idx_dir(&dir).expect_err("shape mismatch");
        assert!(matches!(err, DataError::ShapeMismatch { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_bad_magic() {
        let (images, labels) = small_set();
        // Labels where images are expected and vice versa.
        assert!(matches!(parse_idx_images(&labels, "x"), Err(DataError::BadMagic { found: LABELS_MAGIC, .. })));
        assert!(matches!(parse_idx_labels(&images, "x"), Err(DataError::BadMagic { found: IMAGES_MAGIC, .. })));
        // Not IDX at all.
        let err = parse_idx_images(b"PK\x03\x04 not an idx file", "zip.idx").expect_err("zip");
        assert!(err.to_string().contains("zip.idx") && err.to_string().contains("not an IDX file"), "{err}");
        // Wrong element type: f32 images.
        let mut f32_images = images.clone();
        f32_images[2] = 0x0D;
        let err = parse_idx_images(&f32_images, "f32").expect_err("f32");
        assert!(err.to_string().contains("f32"), "{err}");
        // Wrong number of dimensions.
        let mut four_dims = idx_bytes(&[1, 1, 2, 3], &[0; 6]);
        assert!(matches!(parse_idx_images(&four_dims, "x"), Err(DataError::BadMagic { .. })));
        four_dims[3] = 3;
        // With the magic patched to 3 dims the same bytes are 1x1x2 images plus garbage.
        assert!(matches!(parse_idx_images(&four_dims, "x"), Err(DataError::TrailingBytes { .. })));
    }

    #[test]
    fn rejects_truncated_input() {
        let (images, labels) = small_set();
        for len in 0..images.len() {
            let err = parse_idx_images(&images[..len], "cut").expect_err("truncated images");
            assert!(matches!(err, DataError::Truncated { .. } | DataError::BadMagic { .. }), "len {len}: {err}");
        }
        for len in 0..labels.len() {
            assert!(parse_idx_labels(&labels[..len], "cut").is_err(), "len {len}");
        }
        let err = parse_idx_images(&images[..17], "cut.idx").expect_err("cut");
        assert!(matches!(err, DataError::Truncated { needed: 34, available: 17, .. }), "{err}");
        assert!(err.to_string().contains("cut.idx"), "{err}");
    }

    #[test]
    fn rejects_trailing_garbage() {
        let (mut images, mut labels) = small_set();
        images.push(0);
        labels.extend_from_slice(b"junk");
        assert!(matches!(parse_idx_images(&images, "x"), Err(DataError::TrailingBytes { extra: 1, .. })));
        assert!(matches!(parse_idx_labels(&labels, "x"), Err(DataError::TrailingBytes { extra: 4, .. })));
    }

    #[test]
    fn rejects_overflowing_and_huge_counts_without_allocating() {
        let huge = idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]);
        let err = parse_idx_images(&huge, "huge").expect_err("overflow");
        if usize::BITS <= 64 {
            assert!(matches!(err, DataError::Overflow { .. }), "{err}");
        }
        // A large but representable promise must fail on length, not try to allocate it.
        let big = idx_bytes(&[1 << 30, 1 << 10, 1 << 10], &[0; 8]);
        assert!(parse_idx_images(&big, "big").is_err());
        let labels = idx_bytes(&[u32::MAX], &[1, 2]);
        assert!(matches!(parse_idx_labels(&labels, "x"), Err(DataError::Truncated { .. })));
    }

    #[test]
    fn rejects_zero_rows_or_cols() {
        for dims in [[2, 0, 3], [2, 3, 0], [0, 0, 0]] {
            let err = parse_idx_images(&idx_bytes(&dims, &[]), "flat").expect_err("zero size");
            assert!(matches!(err, DataError::ZeroSize { .. }), "{dims:?}: {err}");
        }
    }

    #[test]
    fn rejects_corrupt_gzip_and_missing_file() {
        let dir = scratch_dir("gzip");
        let (images, _) = small_set();
        let mut zipped = gzip(&images);
        let mid = zipped.len() / 2;
        zipped[mid] ^= 0xFF;
        zipped[mid + 1] ^= 0x55;
        std::fs::write(dir.join("corrupt.gz"), &zipped).expect("write");
        let err = read_idx_images(&dir.join("corrupt.gz")).expect_err("corrupt gzip");
        assert!(matches!(err, DataError::Gzip { .. } | DataError::Truncated { .. }), "{err}");

        let zipped = gzip(&images);
        std::fs::write(dir.join("cut.gz"), &zipped[..zipped.len() - 6]).expect("write");
        assert!(read_idx_images(&dir.join("cut.gz")).is_err(), "gzip without its trailer");

        std::fs::write(dir.join("magic-only.gz"), [0x1f, 0x8b]).expect("write");
        let err = read_idx_images(&dir.join("magic-only.gz")).expect_err("gzip magic only");
        assert!(matches!(err, DataError::Gzip { .. }), "{err}");

        let err = read_idx_labels(&dir.join("absent")).expect_err("missing");
        assert!(matches!(err, DataError::Io { .. }) && err.to_string().contains("absent"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn parsers_never_panic_on_mutations() {
        // Cheap deterministic fuzzing: flip, cut and extend a valid file in many ways.
        let (images, labels) = small_set();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            for base in [&images, &labels] {
                let mut bytes = base.clone();
                let pos = (next() % bytes.len() as u64) as usize;
                bytes[pos] = next() as u8;
                bytes.truncate((next() % (bytes.len() as u64 + 4)) as usize);
                let _ = parse_idx_images(&bytes, "fuzz");
                let _ = parse_idx_labels(&bytes, "fuzz");
            }
        }
    }

    /// Where the real MNIST lives: `SIMDNN_MNIST_DIR`, else `<workspace>/../shared/data/mnist`.
    fn mnist_dir() -> PathBuf {
        match std::env::var_os("SIMDNN_MNIST_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist"),
        }
    }

    #[test]
    fn reads_real_mnist() {
        let dir = mnist_dir();
        if !dir.is_dir() {
            eprintln!("skipping: MNIST not found at {} (set SIMDNN_MNIST_DIR to point at it)", dir.display());
            return;
        }
        let (train, test) = load_idx_dir(&dir).expect("load MNIST");
        assert_eq!((train.len(), train.rows, train.cols, train.classes), (60000, 28, 28, 10));
        assert_eq!((test.len(), test.rows, test.cols, test.classes), (10000, 28, 28, 10));
        assert_eq!(train.images.len(), 60000 * 784);
        assert_eq!(test.images.len(), 10000 * 784);
        assert_eq!(train.class_counts(), vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
        assert_eq!(test.class_counts(), vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
        assert_eq!(train.labels[..10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
        assert_eq!(test.labels[..10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
        let mean = test.images.iter().map(|&p| f64::from(p)).sum::<f64>() / test.images.len() as f64;
        assert!((mean - 33.79).abs() < 0.01, "t10k mean pixel {mean}");
        assert_eq!(test.images.iter().max(), Some(&255));
    }
}
