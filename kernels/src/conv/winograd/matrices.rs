//! The transforms of Winograd's minimal filtering algorithms F(4x4, 3x3) and F(2x2, 5x5), from
//! Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), with
//! interpolation points 0, +-1, +-2 and infinity. Both use 6x6 input tiles, so they share
//! the input transform `B^T`; F(4x4, 3x3):
//!
//! ```text
//! B^T = [4  0 -5  0 1 0]    G = [ 1/4     0     0]    A^T = [1 1  1 1  1 0]
//!       [0 -4 -4  1 1 0]        [-1/6  -1/6  -1/6]          [0 1 -1 2 -2 0]
//!       [0  4 -4 -1 1 0]        [-1/6   1/6  -1/6]          [0 1  1 4  4 0]
//!       [0 -2 -1  2 1 0]        [1/24  1/12   1/6]          [0 1 -1 8 -8 1]
//!       [0  2 -1 -2 1 0]        [1/24 -1/12   1/6]
//!       [0  4  0 -5 0 1]        [   0     0     1]
//! ```
//!
//! A 4x4 output tile is `A^T [(G g G^T) . (B^T d B)] A` for a 6x6 input tile `d` and a 3x3
//! filter `g`. F(2x2, 5x5) evaluates the 5-tap filter at the same points with the same
//! scales (row `i` of G is `s_i [1, p_i, p_i^2, p_i^3, p_i^4]`, `s = 1/4, -1/6, -1/6, 1/24,
//! 1/24` for `p = 0, 1, -1, 2, -2`, and `[0 0 0 0 1]` at infinity) and keeps the first two
//! rows of the interpolation, `A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 1]`.
//!
//! Each product is written out as the sums it is (the zeros skipped), once for scalars and
//! vectors alike through [`Lane`].

#![allow(clippy::needless_range_loop)] // index loops keep the transforms closure-free

use crate::isa::Simd;

/// The arithmetic the transforms need, on scalars (filter transform, tests) or vectors.
pub(crate) trait Lane: Copy {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn scale(self, k: f32) -> Self;
}

impl Lane for f32 {
    #[inline(always)]
    fn add(self, o: f32) -> f32 {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: f32) -> f32 {
        self - o
    }
    #[inline(always)]
    fn scale(self, k: f32) -> f32 {
        self * k
    }
}

/// A vector of `S` with its token, so transforms on vectors read like the scalar ones.
#[derive(Clone, Copy)]
pub(crate) struct Vector<S: Simd>(pub S, pub S::V);

impl<S: Simd> Lane for Vector<S> {
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Vector(self.0, self.0.add(self.1, o.1))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Vector(self.0, self.0.sub(self.1, o.1))
    }
    #[inline(always)]
    fn scale(self, k: f32) -> Self {
        Vector(self.0, self.0.mul(self.1, self.0.splat(k)))
    }
}

/// `B^T d` for one column `d` of six values.
#[inline(always)]
pub(crate) fn bt<L: Lane>(d: [L; 6]) -> [L; 6] {
    let [d0, d1, d2, d3, d4, d5] = d;
    let (d2x4, d1x4) = (d2.scale(4.0), d1.scale(4.0));
    let (d1x2, d3x2) = (d1.scale(2.0), d3.scale(2.0));
    [
        d0.scale(4.0).sub(d2.scale(5.0)).add(d4),
        d3.add(d4).sub(d1x4).sub(d2x4),
        d4.sub(d3).add(d1x4).sub(d2x4),
        d3x2.sub(d1x2).add(d4).sub(d2),
        d1x2.sub(d3x2).add(d4).sub(d2),
        d1.scale(4.0).sub(d3.scale(5.0)).add(d5),
    ]
}

/// `G g` for one column `g` of three values.
#[inline(always)]
pub(crate) fn g_col<L: Lane>(g: [L; 3]) -> [L; 6] {
    let [g0, g1, g2] = g;
    let outer = g0.add(g2);
    [
        g0.scale(0.25),
        outer.add(g1).scale(-1.0 / 6.0),
        outer.sub(g1).scale(-1.0 / 6.0),
        g0.scale(1.0 / 24.0).add(g1.scale(1.0 / 12.0)).add(g2.scale(1.0 / 6.0)),
        g0.scale(1.0 / 24.0).sub(g1.scale(1.0 / 12.0)).add(g2.scale(1.0 / 6.0)),
        g2,
    ]
}

/// `A^T m` for one column `m` of six values.
#[inline(always)]
pub(crate) fn at<L: Lane>(m: [L; 6]) -> [L; 4] {
    let [m0, m1, m2, m3, m4, m5] = m;
    let (s12, d12, s34, d34) = (m1.add(m2), m1.sub(m2), m3.add(m4), m3.sub(m4));
    [m0.add(s12).add(s34), d12.add(d34.scale(2.0)), s12.add(s34.scale(4.0)), d12.add(d34.scale(8.0)).add(m5)]
}

/// `G g` for one column `g` of five values (F(2x2, 5x5)).
#[inline(always)]
pub(crate) fn g_col5<L: Lane>(g: [L; 5]) -> [L; 6] {
    let [g0, g1, g2, g3, g4] = g;
    let (even, odd) = (g0.add(g2).add(g4), g1.add(g3));
    // At p = +-2: g0 + 4 g2 + 16 g4 and 2 g1 + 8 g3.
    let (even2, odd2) = (g0.add(g2.scale(4.0)).add(g4.scale(16.0)), g1.scale(2.0).add(g3.scale(8.0)));
    [
        g0.scale(0.25),
        even.add(odd).scale(-1.0 / 6.0),
        even.sub(odd).scale(-1.0 / 6.0),
        even2.add(odd2).scale(1.0 / 24.0),
        even2.sub(odd2).scale(1.0 / 24.0),
        g4,
    ]
}

/// `A^T m` for one column `m` of six values (F(2x2, 5x5)).
#[inline(always)]
pub(crate) fn at2<L: Lane>(m: [L; 6]) -> [L; 2] {
    let [m0, m1, m2, m3, m4, m5] = m;
    [m0.add(m1).add(m2).add(m3).add(m4), m1.sub(m2).add(m3.sub(m4).scale(2.0)).add(m5)]
}

/// One Winograd algorithm F(M x M, R x R) on 6x6 tiles: its output tile and kernel sizes
/// and the columns of its filter and output transforms (the input transform `B^T` is
/// shared). Filter columns come with 5 values and output columns go out with 4, of which
/// the first `R` and `M` are used (fixed-size arrays keep the transforms free of loops over
/// run-time bounds). The 2-D transforms apply a column transform to every column, then to
/// every row of the result.
pub(crate) trait Variant: Copy + Send + Sync + 'static {
    const M: usize;
    const R: usize;
    /// `G g` for one column `g` (its first `R` values).
    fn g_col<L: Lane>(g: [L; 5]) -> [L; 6];
    /// `A^T m` for one column `m` of products (the first `M` values of the result).
    fn a_col<L: Lane>(m: [L; 6]) -> [L; 4];

    /// `G g G^T` for a filter given as rows (the first `R` rows and columns). The kernels
    /// run the same steps through a stage; this is their oracle.
    #[cfg(test)]
    fn filter_tile<L: Lane>(g: [[L; 5]; 5]) -> [[L; 6]; 6] {
        let mut cols = [[g[0][0]; 6]; 5];
        for j in 0..Self::R {
            cols[j] = Self::g_col([g[0][j], g[1][j], g[2][j], g[3][j], g[4][j]]);
        }
        let mut out = [[g[0][0]; 6]; 6];
        for i in 0..6 {
            out[i] = Self::g_col([cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i]]);
        }
        out
    }

    /// `A^T m A` for a 6x6 tile of products given as rows (the first `M` rows and columns
    /// of the result).
    #[cfg(test)]
    fn output_tile<L: Lane>(m: [[L; 6]; 6]) -> [[L; 4]; 4] {
        let mut cols = [[m[0][0]; 4]; 6];
        for j in 0..6 {
            cols[j] = Self::a_col([m[0][j], m[1][j], m[2][j], m[3][j], m[4][j], m[5][j]]);
        }
        let mut out = [[m[0][0]; 4]; 4];
        for i in 0..Self::M {
            out[i] = Self::a_col([cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i], cols[5][i]]);
        }
        out
    }
}

/// F(4x4, 3x3).
#[derive(Clone, Copy)]
pub(crate) struct F4x3;

/// F(2x2, 5x5).
#[derive(Clone, Copy)]
pub(crate) struct F2x5;

impl Variant for F4x3 {
    const M: usize = 4;
    const R: usize = 3;
    #[inline(always)]
    fn g_col<L: Lane>(g: [L; 5]) -> [L; 6] {
        g_col([g[0], g[1], g[2]])
    }
    #[inline(always)]
    fn a_col<L: Lane>(m: [L; 6]) -> [L; 4] {
        at(m)
    }
}

impl Variant for F2x5 {
    const M: usize = 2;
    const R: usize = 5;
    #[inline(always)]
    fn g_col<L: Lane>(g: [L; 5]) -> [L; 6] {
        g_col5(g)
    }
    #[inline(always)]
    fn a_col<L: Lane>(m: [L; 6]) -> [L; 4] {
        let [a, b] = at2(m);
        [a, b, a, b] // the last two are not used
    }
}

// The 2-D transforms index arrays explicitly instead of using `array::from_fn` or `map`: a
// closure that failed to inline would be compiled outside the kernel's `#[target_feature]`
// instance and call every intrinsic out of line.

/// `B^T d B` for a 6x6 input tile given as rows (the oracle of the input kernel's stages).
#[cfg(test)]
pub(crate) fn input_tile<L: Lane>(d: [[L; 6]; 6]) -> [[L; 6]; 6] {
    let mut cols = d;
    for j in 0..6 {
        cols[j] = bt([d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]]);
    }
    let mut out = d;
    for i in 0..6 {
        out[i] = bt([cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i], cols[5][i]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u32) -> f32 {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (*seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }

    /// F(4, 3) in one dimension: `A^T [(G g) . (B^T d)]` is the correlation of d with g.
    #[test]
    fn one_dimensional_identity() {
        let mut seed = 7;
        for _ in 0..100 {
            let d: [f32; 6] = std::array::from_fn(|_| lcg(&mut seed));
            let g: [f32; 3] = std::array::from_fn(|_| lcg(&mut seed));
            let (u, v) = (g_col(g), bt(d));
            let y = at(std::array::from_fn(|i| u[i] * v[i]));
            for (i, yi) in y.iter().enumerate() {
                let want: f32 = (0..3).map(|k| d[i + k] * g[k]).sum();
                assert!((yi - want).abs() < 1e-5, "y[{i}] = {yi}, direct {want}");
            }
        }
    }

    /// In two dimensions: the 4x4 tile equals the direct 3x3 correlation of a 6x6 input.
    #[test]
    fn two_dimensional_identity() {
        let mut seed = 11;
        for _ in 0..50 {
            let d: [[f32; 6]; 6] = std::array::from_fn(|_| std::array::from_fn(|_| lcg(&mut seed)));
            let g: [[f32; 5]; 5] =
                std::array::from_fn(|r| std::array::from_fn(|c| if r < 3 && c < 3 { lcg(&mut seed) } else { 0.0 }));
            let (u, v) = (F4x3::filter_tile(g), input_tile(d));
            let y = F4x3::output_tile(std::array::from_fn(|i| std::array::from_fn(|j| u[i][j] * v[i][j])));
            for (i, row) in y.iter().enumerate() {
                for (j, yij) in row.iter().enumerate() {
                    let want: f32 =
                        (0..3).flat_map(|r| (0..3).map(move |c| (r, c))).map(|(r, c)| d[i + r][j + c] * g[r][c]).sum();
                    assert!((yij - want).abs() < 1e-5, "y[{i}][{j}] = {yij}, direct {want}");
                }
            }
        }
    }

    /// Both variants in two dimensions: the M x M tile equals the direct R x R correlation.
    fn variant_identity<V: Variant>() {
        let mut seed = 13;
        for _ in 0..50 {
            let d: [[f32; 6]; 6] = std::array::from_fn(|_| std::array::from_fn(|_| lcg(&mut seed)));
            let g: [[f32; 5]; 5] = std::array::from_fn(|r| {
                std::array::from_fn(|c| if r < V::R && c < V::R { lcg(&mut seed) } else { 0.0 })
            });
            let (u, v) = (V::filter_tile(g), input_tile(d));
            let y = V::output_tile(std::array::from_fn(|i| std::array::from_fn(|j| u[i][j] * v[i][j])));
            for i in 0..V::M {
                for j in 0..V::M {
                    let want: f32 = (0..V::R)
                        .flat_map(|r| (0..V::R).map(move |c| (r, c)))
                        .map(|(r, c)| d[i + r][j + c] * g[r][c])
                        .sum();
                    assert!(
                        (y[i][j] - want).abs() < 1e-5,
                        "F({0}x{0}, {1}x{1}) y[{i}][{j}] = {2}, direct {want}",
                        V::M,
                        V::R,
                        y[i][j]
                    );
                }
            }
        }
    }

    #[test]
    fn both_variants_compute_the_correlation() {
        variant_identity::<F4x3>();
        variant_identity::<F2x5>();
    }

    /// F(2x2, 5x5)'s sums equal its matrices (G from the points and scales, A^T two rows).
    #[test]
    fn f2x5_sums_match_the_matrices() {
        let (p, sc) = ([0.0f32, 1.0, -1.0, 2.0, -2.0], [0.25f32, -1.0 / 6.0, -1.0 / 6.0, 1.0 / 24.0, 1.0 / 24.0]);
        for k in 0..5 {
            let e: [f32; 5] = std::array::from_fn(|i| (i == k) as u8 as f32);
            let col = g_col5(e);
            for i in 0..5 {
                assert!((col[i] - sc[i] * p[i].powi(k as i32)).abs() < 1e-7, "G[{i}][{k}]");
            }
            assert_eq!(col[5], (k == 4) as u8 as f32);
        }
        const AT2: [[f32; 6]; 2] = [[1., 1., 1., 1., 1., 0.], [0., 1., -1., 2., -2., 1.]];
        for k in 0..6 {
            let e: [f32; 6] = std::array::from_fn(|i| (i == k) as u8 as f32);
            assert_eq!(at2(e), [AT2[0][k], AT2[1][k]]);
        }
    }

    /// The explicit sums equal the matrices of the paper, applied as matrix products.
    #[test]
    fn sums_match_the_matrices() {
        const BT: [[f32; 6]; 6] = [
            [4., 0., -5., 0., 1., 0.],
            [0., -4., -4., 1., 1., 0.],
            [0., 4., -4., -1., 1., 0.],
            [0., -2., -1., 2., 1., 0.],
            [0., 2., -1., -2., 1., 0.],
            [0., 4., 0., -5., 0., 1.],
        ];
        const AT: [[f32; 6]; 4] = [
            [1., 1., 1., 1., 1., 0.],
            [0., 1., -1., 2., -2., 0.],
            [0., 1., 1., 4., 4., 0.],
            [0., 1., -1., 8., -8., 1.],
        ];
        for k in 0..6 {
            let e: [f32; 6] = std::array::from_fn(|i| (i == k) as u8 as f32);
            let (b, a) = (bt(e), at(e));
            for i in 0..6 {
                assert_eq!(b[i], BT[i][k]);
            }
            for i in 0..4 {
                assert_eq!(a[i], AT[i][k]);
            }
        }
    }
}
