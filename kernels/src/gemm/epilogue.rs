//! What happens to a finished tile of C while it is still in registers.

/// A bias added to every element of C, indexed by row or by column.
#[derive(Clone, Copy, Debug, Default)]
pub enum Bias<'a> {
    #[default]
    None,
    /// `bias[i]` is added to row `i` (one value per output channel when C is
    /// `[channels x pixels]`); length `m`.
    PerRow(&'a [f32]),
    /// `bias[j]` is added to column `j` (fully connected layers, `C = X * W^T`); length `n`.
    PerCol(&'a [f32]),
}

/// `C <- relu?(alpha * op(A) * op(B) + beta * C + bias)`: the fused tail of a GEMM.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    pub bias: Bias<'a>,
    pub relu: bool,
}

impl<'a> Epilogue<'a> {
    /// No bias, no activation.
    pub const NONE: Epilogue<'static> = Epilogue { bias: Bias::None, relu: false };

    pub fn bias_per_row(bias: &'a [f32]) -> Self {
        Epilogue { bias: Bias::PerRow(bias), relu: false }
    }
    pub fn bias_per_col(bias: &'a [f32]) -> Self {
        Epilogue { bias: Bias::PerCol(bias), relu: false }
    }
    /// The same epilogue followed by ReLU.
    pub fn relu(self) -> Self {
        Epilogue { relu: true, ..self }
    }

    /// The scalar definition of the epilogue for element `(i, j)` given `alpha * ab` and the
    /// old value of C (ignored when `beta == 0`, so NaN there does not leak: BLAS rule).
    #[inline(always)]
    pub fn apply(&self, i: usize, j: usize, alpha_ab: f32, beta: f32, c_old: f32) -> f32 {
        let mut v = alpha_ab;
        if beta != 0.0 {
            v += beta * c_old;
        }
        v += match self.bias {
            Bias::None => 0.0,
            Bias::PerRow(b) => b[i],
            Bias::PerCol(b) => b[j],
        };
        if self.relu {
            v = v.max(0.0);
        }
        v
    }
}
