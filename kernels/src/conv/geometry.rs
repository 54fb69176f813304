//! The shape of a 2-D convolution, validated once; all output-size arithmetic lives here.

use crate::KernelError;

/// [`KernelError::ZeroSize`] for the first size that is zero.
pub(crate) fn require_positive(sizes: &[(&'static str, usize)]) -> Result<(), KernelError> {
    match sizes.iter().find(|(_, v)| *v == 0) {
        Some(&(what, _)) => Err(KernelError::ZeroSize { what }),
        None => Ok(()),
    }
}

/// A 2-D convolution over NCHW tensors (PyTorch's layout):
/// input `x: [batch, in_channels, in_h, in_w]`, weight
/// `w: [out_channels, in_channels / groups, kernel_h, kernel_w]`, bias `[out_channels]`,
/// output `y: [batch, out_channels, out_h, out_w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeom {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_h: usize,
    pub pad_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub groups: usize,
}

impl Conv2dGeom {
    /// Stride 1, no padding, no dilation, one group.
    pub fn new(
        batch: usize,
        in_channels: usize,
        (in_h, in_w): (usize, usize),
        out_channels: usize,
        (kernel_h, kernel_w): (usize, usize),
    ) -> Self {
        Conv2dGeom {
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel_h,
            kernel_w,
            stride_h: 1,
            stride_w: 1,
            pad_h: 0,
            pad_w: 0,
            dilation_h: 1,
            dilation_w: 1,
            groups: 1,
        }
    }
    pub fn stride(self, h: usize, w: usize) -> Self {
        Conv2dGeom { stride_h: h, stride_w: w, ..self }
    }
    pub fn pad(self, h: usize, w: usize) -> Self {
        Conv2dGeom { pad_h: h, pad_w: w, ..self }
    }
    pub fn dilation(self, h: usize, w: usize) -> Self {
        Conv2dGeom { dilation_h: h, dilation_w: w, ..self }
    }
    pub fn groups(self, groups: usize) -> Self {
        Conv2dGeom { groups, ..self }
    }

    /// Output size along one axis: `(in + 2 pad - dilation (kernel - 1) - 1) / stride + 1`,
    /// or `None` when the dilated kernel does not fit the padded input.
    fn out_len(input: usize, pad: usize, kernel: usize, dilation: usize, stride: usize) -> Option<usize> {
        let span = dilation.checked_mul(kernel.checked_sub(1)?)?.checked_add(1)?;
        let padded = input.checked_add(pad.checked_mul(2)?)?;
        Some(padded.checked_sub(span)? / stride + 1)
    }

    /// Checks every contract: positive sizes, a kernel that fits, channels divisible by the
    /// groups, and tensor sizes that fit in memory.
    pub fn validate(&self) -> Result<(), KernelError> {
        let g = self;
        require_positive(&[
            ("batch", g.batch),
            ("in_channels", g.in_channels),
            ("in_h", g.in_h),
            ("in_w", g.in_w),
            ("out_channels", g.out_channels),
            ("kernel_h", g.kernel_h),
            ("kernel_w", g.kernel_w),
            ("stride_h", g.stride_h),
            ("stride_w", g.stride_w),
            ("dilation_h", g.dilation_h),
            ("dilation_w", g.dilation_w),
            ("groups", g.groups),
        ])?;
        for (what, channels) in [("in_channels", g.in_channels), ("out_channels", g.out_channels)] {
            if channels % g.groups != 0 {
                return Err(KernelError::GroupsMismatch { what, channels, groups: g.groups });
            }
        }
        for (axis, input, pad, kernel, dilation, stride) in [
            ("height", g.in_h, g.pad_h, g.kernel_h, g.dilation_h, g.stride_h),
            ("width", g.in_w, g.pad_w, g.kernel_w, g.dilation_w, g.stride_w),
        ] {
            if Self::out_len(input, pad, kernel, dilation, stride).is_none() {
                return Err(KernelError::KernelLargerThanInput { axis, input, pad, kernel, dilation });
            }
        }
        // The zero-padded input (direct convolution) must be addressable too.
        let padded = |input: usize, pad: usize| pad.checked_mul(2).and_then(|p| p.checked_add(input));
        let padded_plane = padded(g.in_h, g.pad_h).zip(padded(g.in_w, g.pad_w)).and_then(|(h, w)| h.checked_mul(w));
        padded_plane
            .and_then(|p| p.checked_mul(g.in_channels))
            .filter(|&n| n <= isize::MAX as usize / 4)
            .ok_or(KernelError::SizeOverflow { what: "padded convolution input" })?;
        let sizes = [
            [g.batch, g.in_channels, g.in_h, g.in_w],
            [g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w],
            [g.batch, g.out_channels, g.out_h(), g.out_w()],
        ];
        for dims in sizes {
            dims.iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .filter(|&n| n <= isize::MAX as usize / 4)
                .ok_or(KernelError::SizeOverflow { what: "convolution tensor" })?;
        }
        Ok(())
    }

    /// Output height (valid geometry only; 0 otherwise).
    pub fn out_h(&self) -> usize {
        Self::out_len(self.in_h, self.pad_h, self.kernel_h, self.dilation_h, self.stride_h).unwrap_or(0)
    }
    /// Output width (valid geometry only; 0 otherwise).
    pub fn out_w(&self) -> usize {
        Self::out_len(self.in_w, self.pad_w, self.kernel_w, self.dilation_w, self.stride_w).unwrap_or(0)
    }
    /// Elements of `x`.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.in_h * self.in_w
    }
    /// Elements of `w`.
    pub fn weight_len(&self) -> usize {
        self.out_channels * (self.in_channels / self.groups) * self.kernel_h * self.kernel_w
    }
    /// Elements of `y`.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_h() * self.out_w()
    }
    /// Multiply-adds of the direct algorithm: the yardstick for GFLOP/s of every algorithm.
    pub fn macs(&self) -> usize {
        self.output_len() * (self.in_channels / self.groups) * self.kernel_h * self.kernel_w
    }
    /// Elements of one zero-padded input plane.
    pub(crate) fn padded_plane(&self) -> usize {
        (self.in_h + 2 * self.pad_h) * (self.in_w + 2 * self.pad_w)
    }

    /// True when the convolution is a plain matrix product over the pixels (1x1, stride 1,
    /// no padding): no im2col needed.
    pub fn is_pointwise(&self) -> bool {
        (self.kernel_h, self.kernel_w, self.stride_h, self.stride_w, self.pad_h, self.pad_w) == (1, 1, 1, 1, 0, 0)
    }

    /// Checks that a tensor has the length this geometry gives it.
    pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), KernelError> {
        if expected == got {
            Ok(())
        } else {
            Err(KernelError::TensorLength { what, expected, got })
        }
    }
}
