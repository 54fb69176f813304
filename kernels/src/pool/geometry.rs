//! The shape of a 2-D pooling, validated once (PyTorch's output-size rules, ceil mode too).

use crate::conv::require_positive;
use crate::KernelError;

/// Pooling over NCHW planes: `x: [batch, channels, in_h, in_w]` to
/// `y: [batch, channels, out_h, out_w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dGeom {
    pub batch: usize,
    pub channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_h: usize,
    pub pad_w: usize,
    /// Round the output size up, so a last partial window is pooled too (SqueezeNet,
    /// GoogLeNet); a window must still start inside the input or its left padding.
    pub ceil_mode: bool,
}

/// Largest input extent, window or stride along one axis (2^31).
const MAX_EXTENT: usize = 1 << 31;

/// Largest plane whose positions f32 represents exactly (max-pool argmax is tracked in f32
/// lanes).
const MAX_ARGMAX_PLANE: usize = 1 << 24;

impl Pool2dGeom {
    /// A `kernel x kernel` window with stride `stride`, no padding, floor mode.
    pub fn new(batch: usize, channels: usize, (in_h, in_w): (usize, usize), kernel: usize, stride: usize) -> Self {
        Pool2dGeom {
            batch,
            channels,
            in_h,
            in_w,
            kernel_h: kernel,
            kernel_w: kernel,
            stride_h: stride,
            stride_w: stride,
            pad_h: 0,
            pad_w: 0,
            ceil_mode: false,
        }
    }
    pub fn pad(self, h: usize, w: usize) -> Self {
        Pool2dGeom { pad_h: h, pad_w: w, ..self }
    }
    pub fn ceil_mode(self, ceil_mode: bool) -> Self {
        Pool2dGeom { ceil_mode, ..self }
    }

    /// PyTorch's `pooling_output_shape`.
    fn out_len(input: usize, kernel: usize, stride: usize, pad: usize, ceil: bool) -> usize {
        let span = input + 2 * pad - kernel;
        let mut out = (span + if ceil { stride - 1 } else { 0 }) / stride + 1;
        if ceil && (out - 1) * stride >= input + pad {
            out -= 1;
        }
        out
    }

    pub fn validate(&self) -> Result<(), KernelError> {
        let g = self;
        require_positive(&[
            ("batch", g.batch),
            ("channels", g.channels),
            ("in_h", g.in_h),
            ("in_w", g.in_w),
            ("kernel_h", g.kernel_h),
            ("kernel_w", g.kernel_w),
            ("stride_h", g.stride_h),
            ("stride_w", g.stride_w),
        ])?;
        for (axis, input, pad, kernel, stride) in
            [("height", g.in_h, g.pad_h, g.kernel_h, g.stride_h), ("width", g.in_w, g.pad_w, g.kernel_w, g.stride_w)]
        {
            // Every window must hold an input element (PyTorch's rule), and fit the padded input.
            if pad > kernel / 2 {
                return Err(KernelError::PoolPadding { axis, pad, kernel });
            }
            // pad <= kernel / 2, so with a kernel below 2^31 every sum below is far from
            // overflowing; rows of 2^31 values are past any real use.
            if kernel > MAX_EXTENT || input > MAX_EXTENT || stride > MAX_EXTENT {
                return Err(KernelError::SizeOverflow { what: "pooling window or row" });
            }
            if input + 2 * pad < kernel {
                return Err(KernelError::KernelLargerThanInput { axis, input, pad, kernel, dilation: 1 });
            }
        }
        [g.batch, g.channels, g.in_h, g.in_w]
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= isize::MAX as usize / 4)
            .ok_or(KernelError::SizeOverflow { what: "pooling input" })?;
        Ok(())
    }

    /// Checks the geometry and that the plane is small enough to track argmax in f32.
    pub(crate) fn validate_argmax(&self) -> Result<(), KernelError> {
        self.validate()?;
        if self.in_h * self.in_w > MAX_ARGMAX_PLANE {
            return Err(KernelError::SizeOverflow { what: "max-pool plane (argmax beyond 2^24 positions)" });
        }
        Ok(())
    }

    pub fn out_h(&self) -> usize {
        Self::out_len(self.in_h, self.kernel_h, self.stride_h, self.pad_h, self.ceil_mode)
    }
    pub fn out_w(&self) -> usize {
        Self::out_len(self.in_w, self.kernel_w, self.stride_w, self.pad_w, self.ceil_mode)
    }
    pub fn planes(&self) -> usize {
        self.batch * self.channels
    }
    pub fn input_len(&self) -> usize {
        self.planes() * self.in_h * self.in_w
    }
    pub fn output_len(&self) -> usize {
        self.planes() * self.out_h() * self.out_w()
    }

    /// Length of the per-row buffers of the separable kernels: the padded row, or every
    /// window start and its taps, whichever reaches further, plus two vectors of slack for
    /// full-width loads at the end (stride-2 windows load two vectors at a time).
    pub(crate) fn row_buffer_len(&self, lanes: usize) -> usize {
        let starts = (self.out_w() - 1) * self.stride_w + 1;
        (starts + self.kernel_w).max(self.in_w + 2 * self.pad_w) + 2 * lanes
    }

    /// Window extent along one axis for output `o`, PyTorch's average-pool rule: start and
    /// end clipped to the input, and the divisor with or without the padding counted.
    pub(crate) fn window(
        o: usize,
        stride: usize,
        pad: usize,
        kernel: usize,
        input: usize,
        count_pad: bool,
    ) -> (usize, usize, usize) {
        let start = (o * stride) as isize - pad as isize;
        let end = (start + kernel as isize).min((input + pad) as isize);
        let with_pad = (end - start) as usize;
        let (lo, hi) = (start.max(0) as usize, (end.min(input as isize)).max(0) as usize);
        (lo, hi.max(lo), if count_pad { with_pad } else { hi.max(lo) - lo })
    }
}
