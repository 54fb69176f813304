//! Instruction-set selection: detect once, allow `SIMDNN_ISA` to force a path, dispatch
//! generic kernels to the chosen one.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(feature = "reference")]
mod emulated;
mod kernel;
mod portable;
mod simd;

#[cfg(target_arch = "x86_64")]
pub use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
pub use avx512::Avx512;
#[cfg(feature = "reference")]
pub use emulated::Emulated512;
pub(crate) use kernel::instances;
pub use kernel::{Instance, Kernel};
pub use portable::Portable;
pub use simd::{Simd, WithSimd};

use crate::KernelError;

/// Each lane's index, as f32 (16 is the widest path's lane count): masks of the first or
/// last lanes, through [`Simd::select_gt`].
pub(crate) const LANE_INDEX: [f32; 16] = [0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12., 13., 14., 15.];

/// Hints the CPU to bring the cache line holding `p` into L1 (no-op where unsupported).
/// Prefetching never faults, so any address is allowed.
#[inline(always)]
pub fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint that cannot fault, and SSE is baseline on x86-64.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// A vector instruction-set path of the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// `wide::f32x4`: runs on every CPU.
    Portable,
    /// AVX2 with FMA (256-bit).
    Avx2,
    /// AVX-512F (512-bit).
    Avx512,
}

/// The environment variable that forces a path: `portable`, `avx2` or `avx512`.
pub const ISA_ENV: &str = "SIMDNN_ISA";

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// Lower-case name, as used by `SIMDNN_ISA`, logs and benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Avx2::detect().is_some(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Avx512::detect().is_some(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every path this CPU can run, slowest first (tests and benchmarks loop over it).
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// The fastest path this CPU supports, ignoring `SIMDNN_ISA`.
    pub fn best() -> Isa {
        *Isa::available().last().expect("portable is always available")
    }

    /// `self` if this CPU supports it, else [`KernelError::IsaUnsupported`].
    pub fn checked(self) -> Result<Isa, KernelError> {
        if self.is_supported() {
            Ok(self)
        } else {
            Err(KernelError::IsaUnsupported { isa: self.name() })
        }
    }

    /// The path chosen from `SIMDNN_ISA` if set, else the best one; an error if the variable
    /// names an unknown path or one the CPU lacks.
    pub fn from_env() -> Result<Isa, KernelError> {
        match std::env::var(ISA_ENV) {
            Ok(v) if !v.trim().is_empty() => v.parse::<Isa>()?.checked(),
            _ => Ok(Isa::best()),
        }
    }

    /// The process-wide default path: [`Isa::from_env`], decided once.
    pub fn current() -> Result<Isa, KernelError> {
        static CHOSEN: OnceLock<Result<Isa, KernelError>> = OnceLock::new();
        CHOSEN.get_or_init(Isa::from_env).clone()
    }

    /// Runs driver code `op` with this path's token (in plain code, without the path's
    /// target features: `op` hands its vector work to kernels with [`Simd::run`]).
    ///
    /// An unsupported path falls back to the portable one; constructing an `Isa` that the CPU
    /// lacks is harmless, only [`Isa::checked`] makes it an error.
    #[inline]
    pub fn dispatch<Op: WithSimd>(self, op: Op) -> Op::Output {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                if let Some(s) = Avx512::detect() {
                    return op.with_simd(s);
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                if let Some(s) = Avx2::detect() {
                    return op.with_simd(s);
                }
            }
            _ => {}
        }
        op.with_simd(Portable::new())
    }

    /// Runs `kernel` in its named instance for this path (the portable one if the CPU lacks
    /// this path).
    #[inline]
    pub fn run<K: Kernel>(self, kernel: K) -> K::Output {
        self.dispatch(RunKernel(kernel))
    }
}

/// [`Isa::run`] as driver code: the token's [`Simd::run`].
struct RunKernel<K>(K);

impl<K: Kernel> WithSimd for RunKernel<K> {
    type Output = K::Output;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> K::Output {
        s.run(self.0)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Isa, KernelError> {
        let wanted = s.trim().to_ascii_lowercase();
        Isa::ALL
            .into_iter()
            .find(|i| i.name() == wanted)
            .ok_or_else(|| KernelError::UnknownIsa { given: s.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
            assert_eq!(isa.to_string(), isa.name());
        }
        assert_eq!(" AVX2 ".parse::<Isa>(), Ok(Isa::Avx2));
        assert!(matches!("sse9".parse::<Isa>(), Err(KernelError::UnknownIsa { .. })));
    }

    /// Deinterleaves 0, 1, 2, ... and returns the even and odd lanes, the first vector
    /// with the second shifted in, and the second with the first shifted up, as arrays.
    struct Deinterleave;

    impl WithSimd for Deinterleave {
        type Output = [Vec<f32>; 4];
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Self::Output {
            let src: Vec<f32> = (0..2 * S::LANES).map(|i| i as f32).collect();
            let mut out = [vec![0.0; S::LANES], vec![0.0; S::LANES], vec![0.0; S::LANES], vec![0.0; S::LANES]];
            // SAFETY: src holds 2 * LANES values, every output LANES.
            unsafe {
                let (e, o) = s.load_deinterleave(src.as_ptr());
                let (a, b) = (s.load(src.as_ptr()), s.load(src.as_ptr().add(S::LANES)));
                for (dst, v) in out.iter_mut().zip([e, o, s.shift_in(a, b), s.shift_up(b, a)]) {
                    s.store(dst.as_mut_ptr(), v);
                }
            }
            out
        }
    }

    instances! {
        fn(Deinterleave) -> [Vec<f32>; 4] => test_deinterleave_portable, test_deinterleave_avx2, test_deinterleave_avx512;
        fn(Partial) -> Vec<(Vec<f32>, Vec<f32>)> => test_partial_portable, test_partial_avx2, test_partial_avx512;
        fn(Transpose) -> Vec<Vec<f32>> => test_transpose_portable, test_transpose_avx2, test_transpose_avx512;
    }

    #[test]
    fn deinterleave_and_shifts_on_every_path() {
        let check = |name: &str, [even, odd, shifted_in, shifted_up]: [Vec<f32>; 4]| {
            let lanes = even.len();
            assert_eq!(even, (0..lanes).map(|i| (2 * i) as f32).collect::<Vec<_>>(), "{name} even");
            assert_eq!(odd, (0..lanes).map(|i| (2 * i + 1) as f32).collect::<Vec<_>>(), "{name} odd");
            assert_eq!(shifted_in, (1..=lanes).map(|i| i as f32).collect::<Vec<_>>(), "{name} shift_in");
            assert_eq!(shifted_up, (lanes - 1..2 * lanes - 1).map(|i| i as f32).collect::<Vec<_>>(), "{name} shift_up");
        };
        for isa in Isa::available() {
            check(isa.name(), isa.run(Deinterleave));
        }
        #[cfg(feature = "reference")]
        check("emulated avx512", Emulated512::new().run(Deinterleave));
    }

    /// For every n < LANES: loads n values, stores them after a guard value, and returns
    /// what landed (the lanes past n must load as zero and must not be stored).
    struct Partial;

    impl WithSimd for Partial {
        type Output = Vec<(Vec<f32>, Vec<f32>)>;
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Self::Output {
            let src: Vec<f32> = (1..=S::LANES).map(|i| i as f32).collect();
            (0..S::LANES)
                .map(|n| {
                    let (mut loaded, mut stored) = (vec![-1.0; S::LANES], vec![-1.0; S::LANES + 1]);
                    // SAFETY: n < LANES values read from src and written from stored[1..];
                    // full vectors to and from vectors of LANES.
                    unsafe {
                        let v = s.load_partial(src.as_ptr(), n);
                        s.store(loaded.as_mut_ptr(), v);
                        s.store_partial(stored.as_mut_ptr().add(1), n, s.load(src.as_ptr()));
                    }
                    (loaded, stored)
                })
                .collect()
        }
    }

    #[test]
    fn partial_loads_and_stores_touch_n_lanes_on_every_path() {
        let check = |name: &str, results: Vec<(Vec<f32>, Vec<f32>)>| {
            let lanes = results.len();
            for (n, (loaded, stored)) in results.into_iter().enumerate() {
                let want_loaded: Vec<f32> = (1..=lanes).map(|i| if i <= n { i as f32 } else { 0.0 }).collect();
                assert_eq!(loaded, want_loaded, "{name} load_partial n={n}");
                let want_stored: Vec<f32> =
                    (0..=lanes).map(|i| if (1..=n).contains(&i) { i as f32 } else { -1.0 }).collect();
                assert_eq!(stored, want_stored, "{name} store_partial n={n}");
            }
        };
        for isa in Isa::available() {
            check(isa.name(), isa.run(Partial));
        }
        #[cfg(feature = "reference")]
        check("emulated avx512", Emulated512::new().run(Partial));
    }

    /// Transposes the block whose row `i`, column `j` holds `100 i + j`, and returns the
    /// first LANES output vectors.
    struct Transpose;

    impl WithSimd for Transpose {
        type Output = Vec<Vec<f32>>;
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) -> Self::Output {
            let rows: Vec<Vec<f32>> =
                (0..S::LANES).map(|i| (0..S::LANES).map(|j| (100 * i + j) as f32).collect()).collect();
            let mut block = [s.zero(); 16];
            for (v, row) in block.iter_mut().zip(&rows) {
                // SAFETY: each row holds LANES values.
                *v = unsafe { s.load(row.as_ptr()) };
            }
            let t = s.transpose(block);
            (0..S::LANES)
                .map(|j| {
                    let mut col = vec![0.0; S::LANES];
                    // SAFETY: col holds LANES values.
                    unsafe { s.store(col.as_mut_ptr(), t[j]) };
                    col
                })
                .collect()
        }
    }

    #[test]
    fn transpose_on_every_path() {
        let check = |name: &str, cols: Vec<Vec<f32>>| {
            for (j, col) in cols.iter().enumerate() {
                let want: Vec<f32> = (0..cols.len()).map(|i| (100 * i + j) as f32).collect();
                assert_eq!(col, &want, "{name} column {j}");
            }
        };
        for isa in Isa::available() {
            check(isa.name(), isa.run(Transpose));
        }
        #[cfg(feature = "reference")]
        check("emulated avx512", Emulated512::new().run(Transpose));
    }

    #[test]
    fn portable_is_always_available_and_best_is_supported() {
        assert!(Isa::available().contains(&Isa::Portable));
        assert!(Isa::best().is_supported());
    }
}
