//! Arbitrary bytes -> a (possibly malformed) convolution, forward and backward: it must
//! return an error or the reference result, never panic or touch memory out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| simdnn_kernels::testing::fuzz_conv(data));
