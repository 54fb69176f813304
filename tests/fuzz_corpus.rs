//! Replays the fuzz corpus (and a few thousand pseudo-random inputs) through the fuzz
//! targets' checks on stable Rust, so CI exercises them without cargo-fuzz.

mod common;

use simdnn::kernels::testing::{fuzz_conv, fuzz_gemm};
use simdnn::models::testing::{fuzz_recurrent, fuzz_weights};
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

#[test]
fn weights_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/weights");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/weights exists") {
        fuzz_weights(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 5, "expected the seed corpus in {}", dir.display());
}

/// The LeNet-5 fixture with bytes of its header and data overwritten at random: each
/// variant must load, or fail with an error.
#[test]
fn weights_with_random_corruptions() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lenet5.safetensors");
    let good = std::fs::read(&path).unwrap();
    fuzz_weights(&good);
    let header = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    for seed in 0..300u64 {
        let noise = common::random_vec(6, seed);
        let mut bytes = good.clone();
        for pair in noise.chunks_exact(2) {
            // Mostly in the JSON header, where structure lives; some in the data.
            let span = if pair[0] > -0.6 { header } else { bytes.len() };
            let at = (((pair[0] + 1.0) / 2.0 * span as f32) as usize).min(span - 1);
            bytes[at] = ((pair[1] + 1.0) * 127.9) as u8;
        }
        if seed % 7 == 0 {
            bytes.truncate(bytes.len() * (seed as usize % 5 + 1) / 6);
        }
        fuzz_weights(&bytes);
    }
}

#[test]
fn recurrent_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/recurrent");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/recurrent exists") {
        fuzz_recurrent(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 5, "expected the seed corpus in {}", dir.display());
}

#[test]
fn recurrent_random_inputs() {
    for seed in 0..1500u64 {
        let bytes: Vec<u8> = common::random_vec(28, seed).iter().map(|v| ((v + 1.0) * 127.9) as u8).collect();
        fuzz_recurrent(&bytes);
    }
}
