//! Naive sparse products, summed in f64 in entry order.

/// `y = A x` for a CSR matrix (`row_ptr`, `col_idx`, values or all ones), `x` of `f`
/// features a row.
pub fn spmm(row_ptr: &[u32], col_idx: &[u32], values: Option<&[f32]>, x: &[f32], f: usize) -> Vec<f32> {
    let rows = row_ptr.len() - 1;
    let mut y = vec![0f32; rows * f];
    for i in 0..rows {
        for j in 0..f {
            let mut sum = 0f64;
            for k in row_ptr[i] as usize..row_ptr[i + 1] as usize {
                let v = values.map_or(1.0, |v| v[k] as f64);
                sum += v * x[col_idx[k] as usize * f + j] as f64;
            }
            y[i * f + j] = sum as f32;
        }
    }
    y
}

/// `out[e] = u[i] · v[j]` for every entry `e = (i, j)`.
pub fn sddmm(row_ptr: &[u32], col_idx: &[u32], u: &[f32], v: &[f32], f: usize) -> Vec<f32> {
    let mut out = vec![0f32; col_idx.len()];
    for i in 0..row_ptr.len() - 1 {
        for k in row_ptr[i] as usize..row_ptr[i + 1] as usize {
            let j = col_idx[k] as usize;
            out[k] = (0..f).map(|t| u[i * f + t] as f64 * v[j * f + t] as f64).sum::<f64>() as f32;
        }
    }
    out
}

/// `y[i] = max_k a_ik x[col_k]` per feature (0 for a row without entries), and per place
/// the first entry holding the maximum (`u32::MAX` for a row without entries).
pub fn spmm_max(row_ptr: &[u32], col_idx: &[u32], values: Option<&[f32]>, x: &[f32], f: usize) -> (Vec<f32>, Vec<u32>) {
    let rows = row_ptr.len() - 1;
    let (mut y, mut arg) = (vec![0f32; rows * f], vec![u32::MAX; rows * f]);
    for i in 0..rows {
        for j in 0..f {
            for k in row_ptr[i] as usize..row_ptr[i + 1] as usize {
                let v = values.map_or(1.0, |v| v[k]) * x[col_idx[k] as usize * f + j];
                if arg[i * f + j] == u32::MAX || v > y[i * f + j] {
                    (y[i * f + j], arg[i * f + j]) = (v, k as u32);
                }
            }
        }
    }
    (y, arg)
}
