//! Replays the fuzz corpus (and a few thousand pseudo-random inputs) through the fuzz
//! targets' checks on stable Rust, so CI exercises them without cargo-fuzz.

mod common;

use simdnn::kernels::testing::{fuzz_conv, fuzz_gemm};
use std::path::Path;

#[test]
fn gemm_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/gemm");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/gemm exists") {
        let path = entry.unwrap().path();
        fuzz_gemm(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n >= 5, "expected the seed corpus in {}", dir.display());
}

#[test]
fn gemm_random_inputs() {
    for seed in 0..3000u64 {
        let bytes: Vec<u8> = common::random_vec(32, seed).iter().map(|v| ((v + 1.0) * 127.9) as u8).collect();
        fuzz_gemm(&bytes);
    }
}

#[test]
fn conv_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/conv2d");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/conv2d exists") {
        fuzz_conv(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 5, "expected the seed corpus in {}", dir.display());
}

#[test]
fn conv_random_inputs() {
    for seed in 0..1500u64 {
        let bytes: Vec<u8> = common::random_vec(20, seed).iter().map(|v| ((v + 1.0) * 127.9) as u8).collect();
        fuzz_conv(&bytes);
    }
}
