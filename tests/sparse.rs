//! The sparse kernels (SpMM, its transposed product, the maximum aggregation and its
//! winning entries, SDDMM) against the naive references on
//! random graphs (empty rows, isolated nodes, self-loops, repeated edges, power-law degrees),
//! on every ISA path and thread count, and bit-identical whatever the thread count.

mod common;

use common::{describe, gemm_configs, random_vec};
use proptest::prelude::*;
use simdnn::kernels::reference::sparse as naive;
use simdnn::kernels::sparse::{aggregate, max_entries, sddmm, spmm, Csr, CsrRef, Reduce, NO_ENTRY};
use simdnn::kernels::KernelError;
use std::collections::HashMap;

/// A random graph's adjacency: `rows x cols`, degrees from a power law (a few hubs, many
/// light rows, some empty), self-loops and repeated entries allowed.
fn graph(rows: usize, cols: usize, mean_degree: usize, weighted: bool, seed: u64) -> Csr {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut r, mut c) = (Vec::new(), Vec::new());
    for i in 0..rows {
        // Pareto-like: degree = mean / (4 u), capped; a quarter of the rows are empty.
        let u = (next() % 1000 + 1) as f64 / 1000.0;
        let degree =
            if next() % 4 == 0 { 0 } else { ((mean_degree as f64 * 0.25 / u) as usize).min(4 * mean_degree + 8) };
        for _ in 0..degree {
            r.push(i as u32);
            // Some entries point at the row itself (self-loops).
            let j = if next() % 8 == 0 { i % cols } else { (next() % cols as u64) as usize };
            c.push(j as u32);
        }
    }
    let values = weighted.then(|| random_vec(r.len(), seed ^ 7));
    Csr::from_coo(rows, cols, &r, &c, values.as_deref()).unwrap()
}

fn close(got: &[f32], want: &[f32], what: &str) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} values, expected {}", got.len(), want.len()));
    }
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        if (g - w).abs() > 1e-4 * (1.0 + w.abs()) {
            return Err(format!("{what}: element {k} is {g}, expected {w}"));
        }
    }
    Ok(())
}

/// Copies a `rows x f` matrix into rows `ld` apart (padding with NaN, which must never be
/// read).
fn strided(m: &[f32], f: usize, ld: usize) -> Vec<f32> {
    let rows = m.len() / f.max(1);
    let mut out = vec![f32::NAN; rows * ld];
    for i in 0..rows {
        out[i * ld..][..f].copy_from_slice(&m[i * f..][..f]);
    }
    out
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn check_products(
    rows: usize,
    cols: usize,
    degree: usize,
    f: usize,
    pad: usize,
    weighted: bool,
    seed: u64,
) -> Result<(), String> {
    let a = graph(rows, cols, degree, weighted, seed);
    let x = random_vec(cols * f, seed ^ 1);
    let dy = random_vec(rows * f, seed ^ 2);
    let want = naive::spmm(a.row_ptr(), a.col_idx(), a.values(), &x, f);
    let t = a.transpose();
    let want_t = naive::spmm(t.csr.row_ptr(), t.csr.col_idx(), t.csr.values(), &dy, f);
    let (want_max, want_arg) = naive::spmm_max(a.row_ptr(), a.col_idx(), a.values(), &x, f);
    let want_dd = naive::sddmm(a.row_ptr(), a.col_idx(), &dy, &x, f);
    let (ldx, ldy) = (f + pad, f + 2 * pad);
    let xs = strided(&x, f, ldx);
    // Per path (the description before its thread count): the one-thread results.
    let mut first: HashMap<String, (Vec<f32>, Vec<f32>)> = HashMap::new();
    for threads in [1, 2, 3] {
        for cfg in gemm_configs(threads) {
            let at = describe(&cfg);
            let mut y = vec![0.5f32; rows * ldy];
            spmm(&cfg, a.as_ref(), (&xs, ldx), f, (&mut y, ldy), false).map_err(|e| e.to_string())?;
            let y_dense: Vec<f32> = (0..rows).flat_map(|i| y[i * ldy..][..f].to_vec()).collect();
            close(&y_dense, &want, &format!("spmm {at}"))?;
            // Accumulating adds the product to what is there.
            let mut acc = vec![1.0f32; rows * f];
            spmm(&cfg, a.as_ref(), (&x, f), f, (&mut acc, f), true).map_err(|e| e.to_string())?;
            let want_acc: Vec<f32> = want.iter().map(|w| w + 1.0).collect();
            close(&acc, &want_acc, &format!("spmm accumulate {at}"))?;
            let mut yt = vec![0f32; cols * f];
            spmm(&cfg, t.csr.as_ref(), (&dy, f), f, (&mut yt, f), false).map_err(|e| e.to_string())?;
            close(&yt, &want_t, &format!("transposed spmm {at}"))?;
            let mut dd = vec![0f32; a.nnz()];
            sddmm(&cfg, a.as_ref(), (&dy, f), (&xs, ldx), f, &mut dd).map_err(|e| e.to_string())?;
            close(&dd, &want_dd, &format!("sddmm {at}"))?;
            let mut ymax = vec![0.5f32; rows * ldy];
            aggregate(&cfg, a.as_ref(), Reduce::Max, (&xs, ldx), f, (&mut ymax, ldy), false)
                .map_err(|e| e.to_string())?;
            let ymax: Vec<f32> = (0..rows).flat_map(|i| ymax[i * ldy..][..f].to_vec()).collect();
            if !same_bits(&ymax, &want_max) {
                return Err(format!("max aggregation {at}: differs from the reference"));
            }
            let mut arg = vec![NO_ENTRY; rows * f];
            max_entries(a.as_ref(), (&xs, ldx), f, &ymax, 0, &mut arg).map_err(|e| e.to_string())?;
            if arg != want_arg {
                return Err(format!("max entries {at}: differ from the reference"));
            }
            // Taking the maximum into a row leaves rows without entries as they were.
            let mut acc_max = vec![0.25f32; rows * f];
            aggregate(&cfg, a.as_ref(), Reduce::Max, (&x, f), f, (&mut acc_max, f), true).map_err(|e| e.to_string())?;
            let want_acc_max: Vec<f32> =
                (0..rows * f).map(|p| if want_arg[p] == NO_ENTRY { 0.25 } else { want_max[p].max(0.25) }).collect();
            if !same_bits(&acc_max, &want_acc_max) {
                return Err(format!("accumulated max aggregation {at}: differs from the reference"));
            }
            let path = at.split(", ").next().unwrap_or_default().to_string();
            let (y1, d1) = first.entry(path).or_insert_with(|| (y_dense.clone(), dd.clone()));
            if !same_bits(y1, &y_dense) || !same_bits(d1, &dd) {
                return Err(format!("{at}: results differ from one thread's"));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn sparse_products_match_the_references(
        rows in 0usize..300,
        cols in 1usize..300,
        degree in 1usize..12,
        f in prop::sample::select(vec![1usize, 2, 3, 7, 8, 15, 16, 17, 31, 33, 47, 64, 65, 97, 130]),
        pad in 0usize..3,
        weighted in any::<bool>(),
        seed in any::<u64>(),
    ) {
        check_products(rows, cols, degree, f, pad, weighted, seed).map_err(TestCaseError::fail)?;
    }
}

/// Large enough that every thread gets rows, with hubs of hundreds of entries.
#[test]
fn a_large_power_law_graph_splits_across_threads_and_matches() {
    check_products(5000, 4000, 20, 64, 0, true, 3).unwrap();
    check_products(3000, 3000, 8, 16, 1, false, 4).unwrap();
}

#[test]
fn bad_operands_are_errors() {
    let a = graph(10, 8, 3, true, 1);
    let cfg = &gemm_configs(1)[0];
    let x = vec![0f32; 8 * 4];
    let mut y = vec![0f32; 10 * 4];
    let short = spmm(cfg, a.as_ref(), (&x[..30], 4), 4, (&mut y, 4), false);
    assert!(matches!(short, Err(KernelError::SliceTooShort { .. })), "{short:?}");
    let ld = spmm(cfg, a.as_ref(), (&x, 3), 4, (&mut y, 4), false);
    assert!(matches!(ld, Err(KernelError::LeadingDimTooSmall { .. })), "{ld:?}");
    let mut out = vec![0f32; a.nnz() + 1];
    assert!(sddmm(cfg, a.as_ref(), (&y, 4), (&x, 4), 4, &mut out).is_err());
    assert!(matches!(CsrRef::new(8, &[0, 2], &[1, 9], None), Err(KernelError::InvalidSparse { .. })));
}
