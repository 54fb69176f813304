//! Arbitrary bytes -> a (possibly malformed) recurrent layer and its inputs, forward and
//! backward: it must return an error or a result, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| simdnn_models::testing::fuzz_recurrent(data));
