//! The CSR layout: `row_ptr[i]..row_ptr[i + 1]` are the entries of row `i`, each a column
//! index and (optionally) a value. Indices are `u32`: graphs of up to four billion entries,
//! at half the memory traffic of `usize` in products bound by it.

use crate::KernelError;

/// A borrowed CSR matrix whose structure has been checked: row pointers that start at 0,
/// never decrease and end at the entry count, columns in range, one value per entry (or
/// none: every value 1).
#[derive(Clone, Copy, Debug)]
pub struct CsrRef<'a> {
    rows: usize,
    cols: usize,
    row_ptr: &'a [u32],
    col_idx: &'a [u32],
    values: Option<&'a [f32]>,
}

fn invalid(reason: String) -> KernelError {
    KernelError::InvalidSparse { reason }
}

impl<'a> CsrRef<'a> {
    /// Checks and borrows a CSR matrix of `cols` columns (its rows: `row_ptr.len() - 1`).
    pub fn new(
        cols: usize,
        row_ptr: &'a [u32],
        col_idx: &'a [u32],
        values: Option<&'a [f32]>,
    ) -> Result<Self, KernelError> {
        let Some(rows) = row_ptr.len().checked_sub(1) else {
            return Err(invalid("the row pointers are empty (a matrix of R rows has R + 1)".into()));
        };
        if row_ptr[0] != 0 {
            return Err(invalid(format!("the first row pointer is {}, not 0", row_ptr[0])));
        }
        if let Some(i) = row_ptr.windows(2).position(|w| w[1] < w[0]) {
            return Err(invalid(format!(
                "row pointer {} ({}) is below row pointer {} ({})",
                i + 1,
                row_ptr[i + 1],
                i,
                row_ptr[i]
            )));
        }
        if row_ptr[rows] as usize != col_idx.len() {
            return Err(invalid(format!(
                "the last row pointer is {}, but there are {} entries",
                row_ptr[rows],
                col_idx.len()
            )));
        }
        if let Some(k) = col_idx.iter().position(|&c| c as usize >= cols) {
            return Err(invalid(format!("entry {k} names column {}, but the matrix has {cols} columns", col_idx[k])));
        }
        if let Some(v) = values {
            if v.len() != col_idx.len() {
                return Err(invalid(format!("{} values for {} entries", v.len(), col_idx.len())));
            }
        }
        Ok(CsrRef { rows, cols, row_ptr, col_idx, values })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// The number of stored entries.
    pub fn nnz(&self) -> usize {
        self.col_idx.len()
    }
    pub fn row_ptr(&self) -> &'a [u32] {
        self.row_ptr
    }
    pub fn col_idx(&self) -> &'a [u32] {
        self.col_idx
    }
    pub fn values(&self) -> Option<&'a [f32]> {
        self.values
    }

    /// The same structure with other values, one per entry (none: every value 1).
    pub fn with_values(self, values: Option<&'a [f32]>) -> Result<Self, KernelError> {
        match values {
            Some(v) if v.len() != self.nnz() => Err(invalid(format!("{} values for {} entries", v.len(), self.nnz()))),
            _ => Ok(CsrRef { values, ..self }),
        }
    }
}

/// An owned CSR matrix, checked when made.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    cols: usize,
    row_ptr: Vec<u32>,
    col_idx: Vec<u32>,
    values: Option<Vec<f32>>,
}

/// The transpose of a matrix's structure, and where each of its entries came from: entry
/// `k` of `csr` is entry `source[k]` of the original, so the transpose's values are a
/// gather of the original's ([`Transposed::gather_values`]) however they change.
#[derive(Clone, Debug, PartialEq)]
pub struct Transposed {
    pub csr: Csr,
    pub source: Vec<u32>,
}

impl Csr {
    /// Checks and takes a CSR matrix (see [`CsrRef::new`]).
    pub fn new(
        cols: usize,
        row_ptr: Vec<u32>,
        col_idx: Vec<u32>,
        values: Option<Vec<f32>>,
    ) -> Result<Csr, KernelError> {
        CsrRef::new(cols, &row_ptr, &col_idx, values.as_deref())?;
        Ok(Csr { cols, row_ptr, col_idx, values })
    }

    /// A `rows x cols` matrix from entries `(row[k], col[k])` with optional values, in any
    /// order: each row's entries sorted by column (a stable sort, so repeated entries stay
    /// in their given order; they are kept, and sum in a product).
    pub fn from_coo(
        rows: usize,
        cols: usize,
        row: &[u32],
        col: &[u32],
        values: Option<&[f32]>,
    ) -> Result<Csr, KernelError> {
        if values.is_some_and(|v| v.len() != row.len()) {
            return Err(invalid(format!("{} values for {} entries", values.map_or(0, <[f32]>::len), row.len())));
        }
        let (mut csr, order) = Csr::from_coo_ordered(rows, cols, row, col)?;
        csr.values = values.map(|v| order.iter().map(|&k| v[k as usize]).collect());
        Ok(csr)
    }

    /// [`Csr::from_coo`]'s structure (no values), and where each entry came from: entry `k`
    /// of the matrix is given entry `order[k]`, so values given in entry order are placed
    /// by a gather (and gradients per entry returned by a scatter) however they change.
    pub fn from_coo_ordered(
        rows: usize,
        cols: usize,
        row: &[u32],
        col: &[u32],
    ) -> Result<(Csr, Vec<u32>), KernelError> {
        if row.len() != col.len() {
            return Err(invalid(format!("{} row indices and {} column indices", row.len(), col.len())));
        }
        if u32::try_from(row.len()).is_err() || u32::try_from(rows.max(cols)).is_err() {
            return Err(invalid(format!("{} entries in a {rows} x {cols} matrix exceed the u32 indices", row.len())));
        }
        if let Some(k) = row.iter().position(|&r| r as usize >= rows) {
            return Err(invalid(format!("entry {k} names row {}, but the matrix has {rows} rows", row[k])));
        }
        if let Some(k) = col.iter().position(|&c| c as usize >= cols) {
            return Err(invalid(format!("entry {k} names column {}, but the matrix has {cols} columns", col[k])));
        }
        // Sort by column, then count rows and place stably: entries in (row, column) order.
        let mut by_col: Vec<u32> = (0..row.len() as u32).collect();
        by_col.sort_by_key(|&k| col[k as usize]);
        let row_ptr = row_pointers(rows, row);
        let mut next = row_ptr.clone();
        let mut col_idx = vec![0u32; row.len()];
        let mut order = vec![0u32; row.len()];
        for k in by_col {
            let at = &mut next[row[k as usize] as usize];
            col_idx[*at as usize] = col[k as usize];
            order[*at as usize] = k;
            *at += 1;
        }
        Ok((Csr { cols, row_ptr, col_idx, values: None }, order))
    }

    pub fn as_ref(&self) -> CsrRef<'_> {
        CsrRef {
            rows: self.rows(),
            cols: self.cols,
            row_ptr: &self.row_ptr,
            col_idx: &self.col_idx,
            values: self.values.as_deref(),
        }
    }
    pub fn rows(&self) -> usize {
        self.row_ptr.len() - 1
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn nnz(&self) -> usize {
        self.col_idx.len()
    }
    pub fn row_ptr(&self) -> &[u32] {
        &self.row_ptr
    }
    pub fn col_idx(&self) -> &[u32] {
        &self.col_idx
    }
    pub fn values(&self) -> Option<&[f32]> {
        self.values.as_deref()
    }
    /// The values, to rescale in place (`None` when every value is an implicit 1).
    pub fn values_mut(&mut self) -> Option<&mut [f32]> {
        self.values.as_deref_mut()
    }
    /// Replaces the values (one per entry; `None`: every value 1).
    pub fn set_values(&mut self, values: Option<Vec<f32>>) -> Result<(), KernelError> {
        self.as_ref().with_values(values.as_deref())?;
        self.values = values;
        Ok(())
    }

    /// The transpose (`cols x rows`), each of its rows in the original's row order, with the
    /// original entry of each of its entries; its values are gathered from this matrix's.
    pub fn transpose(&self) -> Transposed {
        let (rows, cols) = (self.rows(), self.cols);
        let row_ptr = row_pointers(cols, &self.col_idx);
        let mut next = row_ptr.clone();
        let mut col_idx = vec![0u32; self.nnz()];
        let mut source = vec![0u32; self.nnz()];
        for i in 0..rows {
            for k in self.row_ptr[i] as usize..self.row_ptr[i + 1] as usize {
                let at = &mut next[self.col_idx[k] as usize];
                col_idx[*at as usize] = i as u32;
                source[*at as usize] = k as u32;
                *at += 1;
            }
        }
        let values = self.values.as_ref().map(|v| source.iter().map(|&k| v[k as usize]).collect());
        Transposed { csr: Csr { cols: rows, row_ptr, col_idx, values }, source }
    }
}

/// The row pointers of `rows` rows holding entries in rows `row_of` (a counting sort's
/// offsets: each row's count, summed).
fn row_pointers(rows: usize, row_of: &[u32]) -> Vec<u32> {
    let mut row_ptr = vec![0u32; rows + 1];
    for &r in row_of {
        row_ptr[r as usize + 1] += 1;
    }
    for i in 0..rows {
        row_ptr[i + 1] += row_ptr[i];
    }
    row_ptr
}

impl Transposed {
    /// The transpose's values for the original's `values` (one per entry), into `out`.
    pub fn gather_values(&self, values: &[f32], out: &mut Vec<f32>) -> Result<(), KernelError> {
        if values.len() != self.source.len() {
            return Err(invalid(format!("{} values for {} entries", values.len(), self.source.len())));
        }
        out.clear();
        out.extend(self.source.iter().map(|&k| values[k as usize]));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coo_entries_land_sorted_by_row_then_column() {
        let m = Csr::from_coo(3, 4, &[2, 0, 2, 0], &[1, 3, 0, 0], Some(&[1.0, 2.0, 3.0, 4.0])).unwrap();
        assert_eq!(m.row_ptr(), &[0, 2, 2, 4]);
        assert_eq!(m.col_idx(), &[0, 3, 0, 1]);
        assert_eq!(m.values().unwrap(), &[4.0, 2.0, 3.0, 1.0]);
        let t = m.transpose();
        assert_eq!(t.csr.rows(), 4);
        assert_eq!(t.csr.row_ptr(), &[0, 2, 3, 3, 4]);
        assert_eq!(t.csr.col_idx(), &[0, 2, 2, 0]);
        assert_eq!(t.csr.values().unwrap(), &[4.0, 3.0, 1.0, 2.0]);
        assert_eq!(t.csr.transpose().csr, m, "transposing twice gives the matrix back");
    }

    #[test]
    fn bad_structures_are_errors() {
        assert!(CsrRef::new(2, &[], &[], None).is_err());
        assert!(CsrRef::new(2, &[1, 1], &[0], None).is_err(), "first pointer not 0");
        assert!(CsrRef::new(2, &[0, 2, 1], &[0, 1], None).is_err(), "decreasing pointers");
        assert!(CsrRef::new(2, &[0, 1], &[0, 1], None).is_err(), "last pointer below the entries");
        assert!(CsrRef::new(2, &[0, 1], &[2], None).is_err(), "column out of range");
        assert!(CsrRef::new(2, &[0, 1], &[1], Some(&[1.0, 2.0])).is_err(), "values of another length");
        assert!(Csr::from_coo(2, 2, &[0, 2], &[0, 0], None).is_err(), "row out of range");
        assert!(CsrRef::new(3, &[0, 0, 2], &[2, 0], None).is_ok());
    }
}
