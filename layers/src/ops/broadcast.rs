//! NumPy broadcasting of two shapes: the shape they broadcast to, and a walk over the
//! output that pairs each output position with the positions of both inputs it reads.
//! Shared by the elementwise ops (add, sub, mul) and by the batch axes of matmul.

use crate::LayerError;

/// Axis `d` of `shape` seen with leading axes of 1 added up to rank `rank`.
pub(crate) fn aligned(shape: &[usize], rank: usize, d: usize) -> usize {
    let pad = rank - shape.len();
    if d < pad {
        1
    } else {
        shape[d - pad]
    }
}

/// The size two aligned axes broadcast to (the one that is not 1).
fn joint(x: usize, y: usize) -> usize {
    if x == 1 {
        y
    } else {
        x
    }
}

/// Axis `d` of the broadcast of `a` and `b` (rank: the larger of theirs).
pub(crate) fn broadcast_dim(a: &[usize], b: &[usize], d: usize) -> usize {
    let rank = a.len().max(b.len());
    joint(aligned(a, rank, d), aligned(b, rank, d))
}

/// An error naming `what` unless `a` and `b` broadcast (aligned at the last axis, each pair
/// of axes equal or one of them 1). Allocates only for the error.
pub(crate) fn check_broadcast(what: &'static str, a: &[usize], b: &[usize]) -> Result<(), LayerError> {
    let rank = a.len().max(b.len());
    let fits = (0..rank).all(|d| {
        let (x, y) = (aligned(a, rank, d), aligned(b, rank, d));
        x == y || x == 1 || y == 1
    });
    if fits {
        Ok(())
    } else {
        Err(LayerError::ShapeMismatch { what, a: a.to_vec(), b: b.to_vec() })
    }
}

/// The shape `a` and `b` broadcast to, or an error naming `what`.
pub(crate) fn broadcast_shape(what: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>, LayerError> {
    check_broadcast(what, a, b)?;
    Ok((0..a.len().max(b.len())).map(|d| broadcast_dim(a, b, d)).collect())
}

/// `f` of the shape whose axis `d` (of `rank`) is `dim(d)`, built on the stack for the usual
/// ranks, so sizing an output allocates nothing.
pub(crate) fn with_dims<R>(rank: usize, dim: impl Fn(usize) -> usize, f: impl FnOnce(&[usize]) -> R) -> R {
    const STACK: usize = 12;
    if rank <= STACK {
        let mut dims = [0; STACK];
        dims.iter_mut().take(rank).enumerate().for_each(|(d, v)| *v = dim(d));
        f(&dims[..rank])
    } else {
        f(&(0..rank).map(dim).collect::<Vec<_>>())
    }
}

/// Calls `f(o, i, j)` for every flat index `o` of the broadcast of shapes `a` and `b`
/// (checked by the caller), in order, with `i` and `j` the flat indices of the values of `a`
/// and `b` it reads. Allocates nothing.
pub(crate) fn broadcast_zip(a: &[usize], b: &[usize], f: &mut impl FnMut(usize, usize, usize)) {
    walk(a, b, 0, (0, 0, 0), f);
}

/// One axis of [`broadcast_zip`]: flat indices are built by Horner's rule, an input's index
/// staying put along an axis where it has size 1.
fn walk(a: &[usize], b: &[usize], d: usize, (o, i, j): (usize, usize, usize), f: &mut impl FnMut(usize, usize, usize)) {
    let rank = a.len().max(b.len());
    if d == rank {
        f(o, i, j);
        return;
    }
    let (da, db) = (aligned(a, rank, d), aligned(b, rank, d));
    let n = joint(da, db);
    let (o, i, j) = (o * n, i * da, j * db);
    let (sa, sb) = (usize::from(da != 1), usize::from(db != 1));
    if d + 1 == rank {
        for k in 0..n {
            f(o + k, i + k * sa, j + k * sb);
        }
    } else {
        for k in 0..n {
            walk(a, b, d + 1, (o + k, i + k * sa, j + k * sb), f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_indices() {
        assert_eq!(broadcast_shape("t", &[2, 3, 4], &[3, 1]).unwrap(), [2, 3, 4]);
        assert_eq!(broadcast_shape("t", &[], &[5]).unwrap(), [5]);
        assert_eq!(broadcast_shape("t", &[3, 1], &[1, 0]).unwrap(), [3, 0]);
        assert!(broadcast_shape("t", &[2, 3], &[4]).is_err());
        let mut seen = Vec::new();
        broadcast_zip(&[2, 1], &[3], &mut |o, i, j| seen.push((o, i, j)));
        assert_eq!(seen, [(0, 0, 0), (1, 0, 1), (2, 0, 2), (3, 1, 0), (4, 1, 1), (5, 1, 2)]);
        let mut count = 0;
        broadcast_zip(&[], &[], &mut |_, _, _| count += 1);
        assert_eq!(count, 1);
        assert_eq!(with_dims(14, |d| d, |s| s.iter().sum::<usize>()), 91);
        assert_eq!(with_dims(3, |d| d + 1, |s| s.to_vec()), [1, 2, 3]);
    }
}
