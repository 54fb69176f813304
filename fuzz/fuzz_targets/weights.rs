//! Arbitrary bytes -> a (possibly malformed) LeNet-5 weights file, read, built and run: it
//! must give an error or a result, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| simdnn_models::testing::fuzz_weights(data));
