//! Borrowed, validated matrix views: a row-major slice with a leading dimension, optionally
//! read transposed. Validation happens once, here, so the kernels can trust the extents.

use crate::KernelError;

/// Elements a `rows x cols` row-major matrix with leading dimension `ld` spans.
fn span(what: &'static str, rows: usize, cols: usize, ld: usize) -> Result<usize, KernelError> {
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    if ld < cols {
        return Err(KernelError::LeadingDimTooSmall { what, ld, cols });
    }
    (rows - 1)
        .checked_mul(ld)
        .and_then(|x| x.checked_add(cols))
        .filter(|&x| x <= isize::MAX as usize / 4)
        .ok_or(KernelError::SizeOverflow { what })
}

fn check_len(what: &'static str, len: usize, rows: usize, cols: usize, ld: usize) -> Result<(), KernelError> {
    let need = span(what, rows, cols, ld)?;
    if len < need {
        return Err(KernelError::SliceTooShort { what, rows, cols, ld, need, got: len });
    }
    Ok(())
}

/// A read-only `rows x cols` matrix: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix whose rows start `ld` elements apart.
    pub fn new(data: &'a [f32], rows: usize, cols: usize, ld: usize) -> Result<Self, KernelError> {
        Self::named("matrix", data, rows, cols, ld)
    }

    /// As [`MatRef::new`], with a name for error messages.
    pub fn named(
        what: &'static str,
        data: &'a [f32],
        rows: usize,
        cols: usize,
        ld: usize,
    ) -> Result<Self, KernelError> {
        check_len(what, data.len(), rows, cols, ld)?;
        Ok(MatRef { data, rows, cols, row_stride: ld, col_stride: 1 })
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }
    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// Element `(i, j)`; panics when out of range (for references and tests).
    pub fn at(&self, i: usize, j: usize) -> f32 {
        assert!(i < self.rows && j < self.cols);
        self.data[i * self.row_stride + j * self.col_stride]
    }

    pub(crate) fn as_ptr(&self) -> *const f32 {
        self.data.as_ptr()
    }
}

/// A writable row-major `rows x cols` matrix with leading dimension `ld`.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    ld: usize,
}

impl<'a> MatMut<'a> {
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize, ld: usize) -> Result<Self, KernelError> {
        check_len("C", data.len(), rows, cols, ld)?;
        Ok(MatMut { data, rows, cols, ld })
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn ld(&self) -> usize {
        self.ld
    }
    /// Element `(i, j)`; panics when out of range (for references and tests).
    pub fn at(&self, i: usize, j: usize) -> f32 {
        assert!(i < self.rows && j < self.cols);
        self.data[i * self.ld + j]
    }
    /// Mutable element `(i, j)`; panics when out of range (for references and tests).
    pub fn at_mut(&mut self, i: usize, j: usize) -> &mut f32 {
        assert!(i < self.rows && j < self.cols);
        &mut self.data[i * self.ld + j]
    }
    pub(crate) fn as_mut_ptr(&mut self) -> *mut f32 {
        self.data.as_mut_ptr()
    }
}
