//! Named kernel instances: every vector loop runs inside a function of its own per
//! instruction set, named `{dtype}_{op}_{tile}_{isa}` (`f32_gemm_12x32_avx512`), compiled with
//! that set's target features and never inlined into its caller.
//!
//! The names make profiles and disassembly readable, and they let `tests/spills.rs` find each
//! instance in a binary and check that no vector register is spilled to the stack inside its
//! inner loops, on any x86-64 machine (compiling AVX-512 code needs no AVX-512 CPU).
//!
//! Driver code (validation, blocking, the split across threads) is generic over [`Simd`] too,
//! but runs without target features: it only picks tile shapes from the token and hands each
//! thread's share to a kernel with [`Simd::run`].

#[cfg(target_arch = "x86_64")]
use super::{Avx2, Avx512};
use super::{Isa, Portable, WithSimd};

/// A [`WithSimd`] computation with one named, non-inlined instance per instruction set,
/// declared with [`instances!`](crate::isa::instances). [`Simd::run`](super::Simd::run)
/// calls the instance of the token's set.
pub trait Kernel: WithSimd + Sized {
    fn on_portable(self, s: Portable) -> Self::Output;
    #[cfg(target_arch = "x86_64")]
    fn on_avx2(self, s: Avx2) -> Self::Output;
    #[cfg(target_arch = "x86_64")]
    fn on_avx512(self, s: Avx512) -> Self::Output;
}

/// One named kernel instance.
#[derive(Clone, Copy, Debug)]
pub struct Instance {
    /// `{dtype}_{op}_{tile}_{isa}`, the function's name in the binary.
    pub name: &'static str,
    pub isa: Isa,
    address: fn() -> usize,
}

impl Instance {
    #[doc(hidden)]
    pub const fn new(name: &'static str, isa: Isa, address: fn() -> usize) -> Instance {
        Instance { name, isa, address }
    }

    /// The function's address in this binary (listing it keeps every instance linked in).
    pub fn address(&self) -> usize {
        (self.address)()
    }

    /// Every named kernel instance of the crate, in module order.
    pub fn all() -> Vec<Instance> {
        [
            crate::gemm::KERNELS,
            crate::conv::KERNELS,
            crate::pool::KERNELS,
            crate::eltwise::KERNELS,
            crate::peak::KERNELS,
            crate::optim::KERNELS,
            crate::rnn::KERNELS,
            crate::sparse::KERNELS,
        ]
        .into_iter()
        .flatten()
        .flat_map(|module| module.iter().copied())
        .collect()
    }
}

/// Declares named instances of [`WithSimd`] computations and implements [`Kernel`] for them,
/// and lists them in the module's `INSTANCES`:
///
/// ```ignore
/// instances! {
///     /// One thread's block of C.
///     fn(BlockTask<'_, '_>) => f32_gemm_4x8_portable, f32_gemm_6x16_avx2, f32_gemm_12x32_avx512;
///     fn(Chains) -> f32 => f32_peak_portable, f32_peak_avx2, f32_peak_avx512;
/// }
/// ```
macro_rules! instances {
    ($($(#[$doc:meta])* fn($op:ty) $(-> $out:ty)? => $portable:ident, $avx2:ident, $avx512:ident;)+) => {
        $(
            impl $crate::isa::Kernel for $op {
                #[inline(always)]
                fn on_portable(self, s: $crate::isa::Portable) -> Self::Output {
                    $portable(self, s)
                }
                #[cfg(target_arch = "x86_64")]
                #[inline(always)]
                fn on_avx2(self, s: $crate::isa::Avx2) -> Self::Output {
                    // SAFETY: the token exists only on CPUs with AVX2 and FMA.
                    unsafe { $avx2(self, s) }
                }
                #[cfg(target_arch = "x86_64")]
                #[inline(always)]
                fn on_avx512(self, s: $crate::isa::Avx512) -> Self::Output {
                    // SAFETY: the token exists only on CPUs with AVX-512F/VL/BW/DQ, AVX2 and FMA.
                    unsafe { $avx512(self, s) }
                }
            }

            $(#[$doc])*
            #[inline(never)]
            fn $portable(op: $op, s: $crate::isa::Portable) -> $crate::isa::instances!(@out $($out)?) {
                $crate::isa::WithSimd::with_simd(op, s)
            }

            $(#[$doc])*
            #[cfg(target_arch = "x86_64")]
            #[inline(never)]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn $avx2(op: $op, s: $crate::isa::Avx2) -> $crate::isa::instances!(@out $($out)?) {
                $crate::isa::WithSimd::with_simd(op, s)
            }

            $(#[$doc])*
            #[cfg(target_arch = "x86_64")]
            #[inline(never)]
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
            unsafe fn $avx512(op: $op, s: $crate::isa::Avx512) -> $crate::isa::instances!(@out $($out)?) {
                $crate::isa::WithSimd::with_simd(op, s)
            }
        )+

        /// This module's named kernel instances.
        #[allow(dead_code)]
        pub(crate) const INSTANCES: &[$crate::isa::Instance] = &[
            $(
                $crate::isa::Instance::new(stringify!($portable), $crate::Isa::Portable, || $portable as fn(_, _) -> _ as usize),
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Instance::new(stringify!($avx2), $crate::Isa::Avx2, || $avx2 as unsafe fn(_, _) -> _ as usize),
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Instance::new(stringify!($avx512), $crate::Isa::Avx512, || $avx512 as unsafe fn(_, _) -> _ as usize),
            )+
        ];
    };
    (@out) => { () };
    (@out $out:ty) => { $out };
}
pub(crate) use instances;
